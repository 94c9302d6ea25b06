//! `x-kubernetes-validations`: compiling the rules with the `cel` crate (once, when the kind
//! is registered), converting values to CEL by their schema, and evaluating the rules at every
//! schema node with `self` (and `oldSelf` for transition rules).

use super::CrdError;
use super::check::FieldError;
use super::schema::{ListType, Node, Ty, member_path};
use cel::common::ast::{Expr, IdedExpr};
use cel::common::types::CelOptional;
use cel::objects::{Key, Map as CelMap};
use cel::{Context, Env, Program, Value as Cel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// One compiled rule.
pub(crate) struct Rule {
    pub source: String,
    program: Program,
    message: Option<String>,
    message_expression: Option<Program>,
    /// Mentions `oldSelf`: evaluated on updates only (when the old value exists, unless
    /// `optionalOldSelf`).
    pub transition: bool,
    optional_old_self: bool,
    reason: Option<String>,
    field_path: Option<String>,
}

/// The CEL environment: the standard library with the strings and lists extensions.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .expect("the strings extension registers");
        env.add_extension(cel::extensions::lists)
            .expect("the lists extension registers");
        Arc::new(env)
    })
}

/// Identifiers a rule may use besides `self`, `oldSelf` and comprehension variables.
const KNOWN_IDENTS: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
    "dyn",
    "optional",
    "strings",
    "lists",
    "math",
    "base64",
];

/// Free identifiers of `e` that are not bound by an enclosing comprehension.
fn free_idents<'a>(e: &'a IdedExpr, bound: &mut Vec<&'a str>, out: &mut Vec<&'a str>) {
    match &e.expr {
        Expr::Ident(n) => {
            if !n.starts_with('@') && !bound.contains(&n.as_str()) {
                out.push(n);
            }
        }
        Expr::Call(c) => {
            c.target.iter().for_each(|t| free_idents(t, bound, out));
            c.args.iter().for_each(|a| free_idents(a, bound, out));
        }
        Expr::Comprehension(c) => {
            free_idents(&c.iter_range, bound, out);
            free_idents(&c.accu_init, bound, out);
            let n = bound.len();
            bound.push(&c.iter_var);
            bound.extend(c.iter_var2.as_deref());
            bound.push(&c.accu_var);
            for x in [&c.loop_cond, &c.loop_step, &c.result] {
                free_idents(x, bound, out);
            }
            bound.truncate(n);
        }
        Expr::List(l) => l.elements.iter().for_each(|x| free_idents(x, bound, out)),
        Expr::Map(m) => {
            for en in &m.entries {
                match &en.expr {
                    cel::common::ast::EntryExpr::StructField(f) => {
                        free_idents(&f.value, bound, out)
                    }
                    cel::common::ast::EntryExpr::MapEntry(me) => {
                        free_idents(&me.key, bound, out);
                        free_idents(&me.value, bound, out);
                    }
                }
            }
        }
        Expr::Select(s) => free_idents(&s.operand, bound, out),
        Expr::Struct(s) => {
            for en in &s.entries {
                if let cel::common::ast::EntryExpr::StructField(f) = &en.expr {
                    free_idents(&f.value, bound, out);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn compile(source: &str, path: &str) -> Result<(Program, bool), CrdError> {
    let program = env()
        .compile(source)
        .map_err(|e| CrdError::new(path, format!("rule {source:?} does not compile: {e}")))?;
    let mut free = Vec::new();
    free_idents(program.expression(), &mut Vec::new(), &mut free);
    let mut transition = false;
    for id in free {
        match id {
            "self" => {}
            "oldSelf" => transition = true,
            id if KNOWN_IDENTS.contains(&id) => {}
            id => {
                return Err(CrdError::new(
                    path,
                    format!("rule {source:?} does not compile: undeclared reference to {id:?}"),
                ));
            }
        }
    }
    Ok((program, transition))
}

/// Compiles the `x-kubernetes-validations` list `v` of the schema node at `path`.
pub(crate) fn compile_rules(v: Option<&Value>, path: &str) -> Result<Vec<Rule>, CrdError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v
        .as_array()
        .ok_or_else(|| CrdError::new(path, "x-kubernetes-validations is not a list"))?;
    let mut rules = Vec::new();
    for r in list {
        let text = |k: &str| r.get(k).and_then(Value::as_str).map(String::from);
        let source = text("rule")
            .ok_or_else(|| CrdError::new(path, format!("a validation rule has no rule: {r}")))?;
        let (program, transition) = compile(&source, path)?;
        let message_expression = match text("messageExpression") {
            Some(m) => Some(compile(&m, path)?.0),
            None => None,
        };
        rules.push(Rule {
            source,
            program,
            message: text("message").filter(|m| !m.is_empty()),
            message_expression,
            transition,
            optional_old_self: r
                .get("optionalOldSelf")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            reason: text("reason"),
            field_path: text("fieldPath"),
        });
    }
    Ok(rules)
}

const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The CEL name of property `k` (the API server's escaping), or `None` if CEL cannot name it.
pub(crate) fn escape(k: &str) -> Option<String> {
    if k.is_empty() || k.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if RESERVED.contains(&k) {
        return Some(format!("__{k}__"));
    }
    let mut out = String::with_capacity(k.len());
    let mut chars = k.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// `v` as a CEL value, typed by its schema `node` (`None`: no schema, by the JSON value).
pub(crate) fn to_cel(node: Option<&Node>, v: &Value) -> Cel {
    let ty = node.map_or(Ty::Any, |n| n.ty);
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match ty {
            Ty::Number => Cel::Float(n.as_f64().unwrap_or(0.0)),
            _ => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Cel::Int(i),
                (None, Some(u)) => Cel::UInt(u),
                _ if ty == Ty::Integer || ty == Ty::IntOrString => {
                    Cel::Int(n.as_f64().unwrap_or(0.0) as i64)
                }
                _ => Cel::Float(n.as_f64().unwrap_or(0.0)),
            },
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(xs) => {
            let items = node.and_then(|n| n.items.as_deref());
            Cel::List(Arc::new(xs.iter().map(|x| to_cel(items, x)).collect()))
        }
        Value::Object(m) => {
            let mut out = HashMap::with_capacity(m.len());
            for (k, x) in m {
                match node {
                    Some(n) if !n.properties.is_empty() => {
                        let i = n.property_index(k);
                        if let Some((i, Some(name))) = i.map(|i| (i, &n.cel_names[i])) {
                            let p = &n.properties[i].1;
                            if !p.pruned(x) {
                                out.insert(name.clone(), to_cel(Some(p), x));
                            }
                        } else if i.is_none() && n.preserve_unknown {
                            out.insert(Key::from(k.as_str()), to_cel(None, x));
                        }
                    }
                    Some(n) if n.additional.is_some() => {
                        out.insert(Key::from(k.as_str()), to_cel(n.additional.as_deref(), x));
                    }
                    _ => {
                        out.insert(Key::from(k.as_str()), to_cel(None, x));
                    }
                }
            }
            Cel::Map(CelMap { map: Arc::new(out) })
        }
    }
}

impl Rule {
    fn error(&self, path: &str, ty: Ty, message: String) -> FieldError {
        let field = match &self.field_path {
            Some(f) if f.starts_with('.') && path.is_empty() => f[1..].to_string(),
            Some(f) => format!("{path}{f}"),
            None => path.to_string(),
        };
        let detail = match self.reason.as_deref() {
            Some("FieldValueForbidden") => format!("Forbidden: {message}"),
            Some("FieldValueRequired") => format!("Required value: {message}"),
            Some("FieldValueDuplicate") => format!("Duplicate value: {message}"),
            _ => format!("Invalid value: \"{}\": {message}", ty.name()),
        };
        FieldError {
            field,
            detail,
            blocking: false,
        }
    }

    fn message(&self, ctx: &Context) -> String {
        if let Some(m) = &self.message_expression
            && let Ok(Cel::String(s)) = m.execute(ctx)
            && !s.trim().is_empty()
        {
            return s.to_string();
        }
        match &self.message {
            Some(m) => m.clone(),
            None => format!("failed rule: {}", self.source),
        }
    }

    /// Evaluates the rule in `ctx`, pushing an error if it fails.
    fn run(&self, ctx: &Context, path: &str, ty: Ty, errs: &mut Vec<FieldError>) {
        match self.program.execute(ctx) {
            Ok(Cel::Bool(true)) => {}
            Ok(Cel::Bool(false)) => errs.push(self.error(path, ty, self.message(ctx))),
            Ok(other) => errs.push(self.error(
                path,
                ty,
                format!("rule {:?} evaluated to {other:?}, not a bool", self.source),
            )),
            Err(e) => errs.push(FieldError {
                field: path.to_string(),
                detail: format!(
                    "Invalid value: \"{}\": rule {:?}: evaluation error: {e}",
                    ty.name(),
                    self.source
                ),
                blocking: false,
            }),
        }
    }
}

/// The element of `old` (a list of type `map`) with the same keys as `x`.
fn correlate<'a>(keys: &[String], x: &Value, old: &'a [Value]) -> Option<&'a Value> {
    old.iter()
        .find(|o| keys.iter().all(|k| o.get(k) == x.get(k)))
}

/// Evaluates every rule at and below `node` for the (defaulted) value `new` at `path`, with
/// `old` the old value at the same path on an update.
pub(crate) fn eval(
    node: &Node,
    path: &str,
    new: &Value,
    old: Option<&Value>,
    errs: &mut Vec<FieldError>,
) {
    if !node.has_rules || new.is_null() {
        return;
    }
    let old = old.filter(|o| !o.is_null());
    if !node.rules.is_empty() {
        let mut ctx = Context::with_env(env().clone());
        ctx.add_variable_from_value("self", to_cel(Some(node), new));
        if let Some(o) = old {
            ctx.add_variable_from_value("oldSelf", to_cel(Some(node), o));
        }
        for r in &node.rules {
            if !r.transition || (old.is_some() && !r.optional_old_self) {
                r.run(&ctx, path, node.ty, errs);
            } else if r.optional_old_self {
                // oldSelf is an optional: `optional.of(old)` on updates, `optional.none()`
                // on creates
                let mut octx = Context::with_env(env().clone());
                octx.add_variable_from_value("self", to_cel(Some(node), new));
                let opt = match old {
                    Some(o) => {
                        match Box::<dyn cel::common::value::Val>::try_from(to_cel(Some(node), o)) {
                            Ok(b) => CelOptional::of(b),
                            Err(_) => CelOptional::none(),
                        }
                    }
                    None => CelOptional::none(),
                };
                octx.add_variable_as_val("oldSelf", Box::new(opt));
                r.run(&octx, path, node.ty, errs);
            }
            // a transition rule on a create: not evaluated
        }
    }
    match new {
        Value::Object(m) => {
            for (k, x) in m {
                let Some(child) = node.member(k) else {
                    continue;
                };
                if child.has_rules && !child.pruned(x) {
                    let o = old.and_then(|o| o.get(k));
                    eval(child, &member_path(node, path, k), x, o, errs);
                }
            }
        }
        Value::Array(xs) => {
            let Some(items) = node.items.as_deref().filter(|i| i.has_rules) else {
                return;
            };
            let olds = old.and_then(Value::as_array);
            for (i, x) in xs.iter().enumerate() {
                // only the items of `map` lists correlate with old items
                let o = match (&node.list_type, olds) {
                    (ListType::Map(keys), Some(olds)) => correlate(keys, x, olds),
                    _ => None,
                };
                eval(items, &format!("{path}[{i}]"), x, o, errs);
            }
        }
        _ => {}
    }
}
