//! The structural schema of one CRD version, parsed once: its nodes with the keywords the API
//! server enforces (checked in `check.rs`), defaulting, and the schema's
//! `x-kubernetes-validations` rules compiled at every node.

use super::CrdError;
use super::rules::{Rule, compile_rules};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The `type` of a schema node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// No type (`x-kubernetes-preserve-unknown-fields` or an embedded resource): any value.
    Any,
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
    /// `x-kubernetes-int-or-string`.
    IntOrString,
}

impl Ty {
    /// The name the API server prints in `Invalid value: "<type>"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Any | Ty::IntOrString => "",
            Ty::Object => "object",
            Ty::Array => "array",
            Ty::String => "string",
            Ty::Integer => "integer",
            Ty::Number => "number",
            Ty::Boolean => "boolean",
        }
    }
}

/// `x-kubernetes-list-type`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListType {
    Atomic,
    Set,
    /// `map` with its `x-kubernetes-list-map-keys`.
    Map(Vec<String>),
}

/// One node of the structural schema.
pub(crate) struct Node {
    pub ty: Ty,
    pub nullable: bool,
    pub preserve_unknown: bool,
    /// Object properties, sorted by name.
    pub properties: Vec<(String, Node)>,
    /// The CEL names of the properties (escaped as the API server escapes them; `None`: not
    /// accessible from CEL), in the same order.
    pub cel_names: Vec<Option<cel::objects::Key>>,
    /// `items` of an array.
    pub items: Option<Box<Node>>,
    /// `additionalProperties` of a map.
    pub additional: Option<Box<Node>>,
    pub required: Vec<String>,
    pub default: Option<Value>,
    pub enumeration: Option<Vec<Value>>,
    /// `(bound, exclusive)`.
    pub minimum: Option<(f64, bool)>,
    pub maximum: Option<(f64, bool)>,
    pub multiple_of: Option<f64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<(String, regex::Regex)>,
    pub min_items: Option<usize>,
    pub max_items: Option<usize>,
    pub min_properties: Option<usize>,
    pub max_properties: Option<usize>,
    pub list_type: ListType,
    /// The compiled `x-kubernetes-validations` of this node.
    pub rules: Vec<Rule>,
    /// Whether this node or a descendant has rules.
    pub has_rules: bool,
    /// Whether this node or a descendant has a `default`.
    pub has_defaults: bool,
}

fn cel_names(properties: &[(String, Node)]) -> Vec<Option<cel::objects::Key>> {
    properties
        .iter()
        .map(|(k, _)| super::rules::escape(k).map(cel::objects::Key::from))
        .collect()
}

fn usize_of(s: &Map<String, Value>, k: &str) -> Option<usize> {
    s.get(k).and_then(Value::as_u64).map(|n| n as usize)
}

pub(crate) fn child(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path}.{seg}")
    }
}

impl Node {
    /// Parses (and compiles the rules of) the schema `s` found at `path`.
    pub(crate) fn parse(s: &Value, path: &str) -> Result<Node, CrdError> {
        let s = s
            .as_object()
            .ok_or_else(|| CrdError::new(path, "the schema is not an object"))?;
        let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
        let ty = if flag("x-kubernetes-int-or-string") {
            Ty::IntOrString
        } else {
            match s.get("type").and_then(Value::as_str) {
                Some("object") => Ty::Object,
                Some("array") => Ty::Array,
                Some("string") => Ty::String,
                Some("integer") => Ty::Integer,
                Some("number") => Ty::Number,
                Some("boolean") => Ty::Boolean,
                None | Some("") => Ty::Any,
                Some(t) => return Err(CrdError::new(path, format!("unknown type {t:?}"))),
            }
        };
        let mut properties = Vec::new();
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                properties.push((k.clone(), Node::parse(v, &child(path, k))?));
            }
        }
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        let cel_names = cel_names(&properties);
        let items = match s.get("items") {
            Some(i) => Some(Box::new(Node::parse(i, &format!("{path}[*]"))?)),
            None => None,
        };
        let additional = match s.get("additionalProperties") {
            Some(a @ Value::Object(_)) => Some(Box::new(Node::parse(a, &format!("{path}[*]"))?)),
            _ => None,
        };
        let bound = |k: &str, ex: &str| s.get(k).and_then(Value::as_f64).map(|b| (b, flag(ex)));
        let pattern = match s.get("pattern").and_then(Value::as_str) {
            Some(p) => {
                let re = regex::Regex::new(p).map_err(|e| {
                    CrdError::new(path, format!("pattern {p:?} does not compile: {e}"))
                })?;
                Some((p.to_string(), re))
            }
            None => None,
        };
        let list_type = match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                s.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|ks| {
                        ks.iter()
                            .filter_map(|k| k.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        };
        let rules = compile_rules(s.get("x-kubernetes-validations"), path)?;
        let children = properties
            .iter()
            .map(|(_, n)| n)
            .chain(items.as_deref())
            .chain(additional.as_deref());
        let (mut has_rules, mut has_defaults) = (!rules.is_empty(), false);
        for c in children {
            has_rules |= c.has_rules;
            has_defaults |= c.has_defaults || c.default.is_some();
        }
        Ok(Node {
            ty,
            nullable: flag("nullable"),
            preserve_unknown: flag("x-kubernetes-preserve-unknown-fields"),
            properties,
            cel_names,
            items,
            additional,
            required: s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            default: s.get("default").cloned(),
            enumeration: s.get("enum").and_then(Value::as_array).cloned(),
            minimum: bound("minimum", "exclusiveMinimum"),
            maximum: bound("maximum", "exclusiveMaximum"),
            multiple_of: s.get("multipleOf").and_then(Value::as_f64),
            min_length: usize_of(s, "minLength"),
            max_length: usize_of(s, "maxLength"),
            pattern,
            min_items: usize_of(s, "minItems"),
            max_items: usize_of(s, "maxItems"),
            min_properties: usize_of(s, "minProperties"),
            max_properties: usize_of(s, "maxProperties"),
            list_type,
            rules,
            has_rules,
            has_defaults,
        })
    }

    /// The index of property `k` in `properties` and `cel_names`.
    pub(crate) fn property_index(&self, k: &str) -> Option<usize> {
        self.properties
            .binary_search_by(|(p, _)| p.as_str().cmp(k))
            .ok()
    }

    /// The schema of property `k`.
    pub(crate) fn property(&self, k: &str) -> Option<&Node> {
        self.property_index(k).map(|i| &self.properties[i].1)
    }

    /// Adds property `k` (not yet present) with schema `node`.
    pub(crate) fn add_property(&mut self, k: &str, node: Node) {
        self.properties.push((k.to_string(), node));
        self.properties.sort_by(|a, b| a.0.cmp(&b.0));
        self.cel_names = cel_names(&self.properties);
    }

    /// The schema of a member `k` of this object or map.
    pub(crate) fn member(&self, k: &str) -> Option<&Node> {
        self.property(k).or(self.additional.as_deref())
    }

    /// `v` with the schema's defaults applied (borrowed when there are none to apply).
    pub(crate) fn defaulted<'a>(&self, v: &'a Value) -> Cow<'a, Value> {
        if !self.has_defaults {
            return Cow::Borrowed(v);
        }
        let mut v = v.clone();
        self.apply_defaults(&mut v);
        Cow::Owned(v)
    }

    /// Structural defaulting, as the API server does before validation: a missing property
    /// with a `default` (or a null one that is not nullable) gets the default, recursively.
    fn apply_defaults(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, p) in &self.properties {
                    if let Some(d) = &p.default {
                        let missing = match m.get(k) {
                            None => true,
                            Some(Value::Null) => !p.nullable,
                            Some(_) => false,
                        };
                        if missing {
                            m.insert(k.clone(), d.clone());
                        }
                    }
                    if p.has_defaults
                        && let Some(c) = m.get_mut(k)
                    {
                        p.apply_defaults(c);
                    }
                }
                if let Some(a) = self.additional.as_deref().filter(|a| a.has_defaults) {
                    for c in m.values_mut() {
                        a.apply_defaults(c);
                    }
                }
            }
            Value::Array(xs) => {
                if let Some(i) = self.items.as_deref().filter(|i| i.has_defaults) {
                    for c in xs {
                        i.apply_defaults(c);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The path of member `k` of the object or map at `path` described by `parent`.
pub(crate) fn member_path(parent: &Node, path: &str, k: &str) -> String {
    if parent.property(k).is_some() {
        child(path, k)
    } else {
        format!("{path}[{k}]")
    }
}
