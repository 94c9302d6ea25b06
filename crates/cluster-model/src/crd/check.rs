//! The schema keywords the API server enforces on a (defaulted) value, with its field
//! errors.

use super::schema::{ListType, Node, Ty};
use serde_json::{Map, Value};
use std::fmt;

/// A field path, built on the stack while walking a value and printed only for an error.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Field(&'a str),
    Index(usize),
    Key(&'a str),
}

impl<'a> Path<'a> {
    /// The object itself.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn field(&'a self, k: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Field(k),
        }
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    fn key(&'a self, k: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Key(k),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at_root = match self.parent {
            Some(p) => {
                p.fmt(f)?;
                matches!(p.seg, Seg::Root)
            }
            None => true,
        };
        match self.seg {
            Seg::Root => Ok(()),
            Seg::Field(k) if at_root => write!(f, "{k}"),
            Seg::Field(k) => write!(f, ".{k}"),
            Seg::Index(i) => write!(f, "[{i}]"),
            Seg::Key(k) => write!(f, "[{k}]"),
        }
    }
}

/// One field error, as the API server's `field.Error` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path (`spec.replicas`, `spec.ports[0]`, `spec.labels[key]`); empty for the
    /// object itself (printed `<nil>`, as the API server prints it).
    pub field: String,
    /// What is wrong (`Invalid value: "integer": replicas must be at least 3`).
    pub detail: String,
    /// A type error: the API server then skips the CEL rules.
    pub blocking: bool,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            // the API server's nil field path
            write!(f, "<nil>: {}", self.detail)
        } else {
            write!(f, "{}: {}", self.field, self.detail)
        }
    }
}

fn err(errs: &mut Vec<FieldError>, field: &Path<'_>, detail: String) {
    errs.push(FieldError {
        field: field.to_string(),
        detail,
        blocking: false,
    });
}

/// An error of a kind after which the API server does not evaluate the CEL rules (a type,
/// `required`, `enum`, `maxLength`, `maxItems` or `maxProperties` violation).
fn blocking(errs: &mut Vec<FieldError>, field: &Path<'_>, detail: String) {
    errs.push(FieldError {
        field: field.to_string(),
        detail,
        blocking: true,
    });
}

/// A value as the API server prints it in `Invalid value: ...`.
fn shown(v: &Value) -> String {
    match v {
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        v => v.to_string(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

impl Node {
    /// Whether `v` is absent for this schema: null and not nullable (the API server prunes it).
    pub(crate) fn pruned(&self, v: &Value) -> bool {
        v.is_null() && !self.nullable
    }

    fn type_ok(&self, v: &Value) -> bool {
        match (self.ty, v) {
            (Ty::Any, _) => true,
            (_, Value::Null) => self.nullable,
            (Ty::Object, Value::Object(_))
            | (Ty::Array, Value::Array(_))
            | (Ty::String, Value::String(_))
            | (Ty::Boolean, Value::Bool(_))
            | (Ty::Number, Value::Number(_))
            | (Ty::IntOrString, Value::String(_)) => true,
            (Ty::Integer | Ty::IntOrString, Value::Number(n)) => is_integer(n),
            _ => false,
        }
    }

    /// The schema keywords at `path` for the (defaulted) value `v`, then its members.
    pub(crate) fn check(&self, path: &Path<'_>, v: &Value, errs: &mut Vec<FieldError>) {
        if v.is_null() {
            // nullable: accepted; otherwise pruned by the API server
            return;
        }
        if !self.type_ok(v) {
            let t = if self.ty == Ty::IntOrString {
                "integer,string"
            } else {
                self.ty.name()
            };
            errs.push(FieldError {
                field: path.to_string(),
                detail: format!(
                    "Invalid value: \"{}\": {path} in body must be of type {t}: \"{}\"",
                    json_type(v),
                    json_type(v)
                ),
                blocking: true,
            });
            return;
        }
        if let Some(e) = &self.enumeration
            && !e.contains(v)
        {
            let supported: Vec<String> = e.iter().map(Value::to_string).collect();
            blocking(
                errs,
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    shown(v),
                    supported.join(", ")
                ),
            );
        }
        match v {
            Value::Number(n) => self.check_number(path, v, n.as_f64().unwrap_or(0.0), errs),
            Value::String(s) => self.check_string(path, v, s, errs),
            Value::Array(xs) => self.check_array(path, xs, errs),
            Value::Object(m) => self.check_object(path, v, m, errs),
            _ => {}
        }
    }

    fn check_number(&self, path: &Path<'_>, v: &Value, x: f64, errs: &mut Vec<FieldError>) {
        let (sv, num) = (shown(v), |b: f64| Value::from(b).to_string());
        let num = |b: f64| {
            if b.fract() == 0.0 && b.abs() < 1e15 {
                (b as i64).to_string()
            } else {
                num(b)
            }
        };
        if let Some((b, ex)) = self.minimum
            && (x < b || (ex && x == b))
        {
            let rel = if ex {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let b = num(b);
            err(
                errs,
                path,
                format!("Invalid value: {sv}: {path} in body should be {rel} {b}"),
            );
        }
        if let Some((b, ex)) = self.maximum
            && (x > b || (ex && x == b))
        {
            let rel = if ex {
                "less than"
            } else {
                "less than or equal to"
            };
            let b = num(b);
            err(
                errs,
                path,
                format!("Invalid value: {sv}: {path} in body should be {rel} {b}"),
            );
        }
        if let Some(m) = self.multiple_of
            && m != 0.0
            && (x / m).fract() != 0.0
        {
            let m = num(m);
            err(
                errs,
                path,
                format!("Invalid value: {sv}: {path} in body should be a multiple of {m}"),
            );
        }
    }

    fn check_string(&self, path: &Path<'_>, v: &Value, s: &str, errs: &mut Vec<FieldError>) {
        if self.ty == Ty::IntOrString {
            return;
        }
        let n = s.chars().count();
        if let Some(max) = self.max_length
            && n > max
        {
            blocking(
                errs,
                path,
                format!("Too long: may not be more than {max} bytes"),
            );
        }
        if let Some(min) = self.min_length
            && n < min
        {
            let sv = shown(v);
            err(
                errs,
                path,
                format!("Invalid value: {sv}: {path} in body should be at least {min} chars long"),
            );
        }
        if let Some((p, re)) = &self.pattern
            && !re.is_match(s)
        {
            let sv = shown(v);
            err(
                errs,
                path,
                format!("Invalid value: {sv}: {path} in body should match '{p}'"),
            );
        }
    }

    fn check_array(&self, path: &Path<'_>, xs: &[Value], errs: &mut Vec<FieldError>) {
        if let Some(max) = self.max_items
            && xs.len() > max
        {
            blocking(
                errs,
                path,
                format!("Too many: {}: must have at most {max} items", xs.len()),
            );
        }
        if let Some(min) = self.min_items
            && xs.len() < min
        {
            err(
                errs,
                path,
                format!(
                    "Invalid value: {}: {path} in body should have at least {min} items",
                    xs.len()
                ),
            );
        }
        if let Some(items) = self.items.as_deref() {
            for (i, x) in xs.iter().enumerate() {
                items.check(&path.index(i), x, errs);
            }
        }
        let key = |x: &Value| match &self.list_type {
            ListType::Map(keys) => Some(keys.iter().map(|k| x.get(k).cloned()).collect::<Vec<_>>()),
            ListType::Set => Some(vec![Some(x.clone())]),
            ListType::Atomic => None,
        };
        for (i, x) in xs.iter().enumerate() {
            if let Some(k) = key(x)
                && xs[..i].iter().any(|y| key(y).as_ref() == Some(&k))
            {
                err(
                    errs,
                    &path.index(i),
                    format!("Duplicate value: {}", shown(x)),
                );
            }
        }
    }

    fn check_object(
        &self,
        path: &Path<'_>,
        _v: &Value,
        m: &Map<String, Value>,
        errs: &mut Vec<FieldError>,
    ) {
        if let Some(max) = self.max_properties
            && m.len() > max
        {
            blocking(
                errs,
                path,
                format!("Too many: {}: must have at most {max} items", m.len()),
            );
        }
        if let Some(min) = self.min_properties
            && m.len() < min
        {
            err(
                errs,
                path,
                format!(
                    "Invalid value: {}: {path} in body should have at least {min} properties",
                    m.len()
                ),
            );
        }
        for r in &self.required {
            let absent = match (m.get(r), self.property(r)) {
                (None, _) => true,
                (Some(v), Some(p)) => p.pruned(v),
                (Some(v), None) => v.is_null(),
            };
            if absent {
                blocking(errs, &path.field(r), "Required value".into());
            }
        }
        for (k, x) in m {
            if let Some(p) = self.property(k) {
                p.check(&path.field(k), x, errs);
            } else if let Some(a) = self.additional.as_deref() {
                a.check(&path.key(k), x, errs);
            }
            // other fields are unknown: the API server prunes them
        }
    }
}
