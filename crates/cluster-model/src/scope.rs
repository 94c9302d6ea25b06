//! The verification scope: which CR specs and edits, which faults, which bounds.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Which faults the environment may inject. Every enabled fault class has a switch that a
/// weakly fair "disable" step eventually turns off: faults happen any number of times, then
/// stop.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Controller crash and restart (local state lost, in-flight requests become stale).
    pub crash: bool,
    /// Request drop: an error reply (`Timeout`) instead of execution.
    pub drop: bool,
    /// Transient failures: like `drop`, but the reply is any error the shim can surface for
    /// the request (Timeout, ServerTimeout, InternalError, TooManyRequests, transport
    /// failures, and Conflict for `GetThen*`). Implies `drop`.
    #[serde(default)]
    pub transient: bool,
    /// Applied, then failed: the API server executes the request but the controller gets an
    /// error (Timeout or a transport failure) instead of the response.
    #[serde(default)]
    pub lost_response: bool,
    /// Other writers deleting objects the controller manages (at most this many times).
    pub other_deletes: u8,
    /// Pod losses lowering a StatefulSet's ready replicas (at most this many times).
    pub pod_losses: u8,
    /// Other writers updating objects the controller manages (at most this many times): they
    /// scale a workload by hand (`spec.replicas` + 1), edit a ConfigMap's or Secret's data, or
    /// annotate anything else.
    #[serde(default)]
    pub other_updates: u8,
}

/// What is checked: the custom resource's life (specs, edits, deletions), the faults, and the
/// bounds. Printed with every result; a result never claims more than its scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Namespace of the custom resource.
    pub namespace: String,
    /// Name of the custom resource (of the first one, when there are several).
    pub name: String,
    /// Custom resources checked together (same kind and namespace, names
    /// [`Scope::cr_names`]), each with the same spec list and its own budget of edits and
    /// deletions: interference between them (child name collisions, list selectors, shared
    /// external state) is in scope.
    #[serde(default = "one")]
    pub crs: u8,
    /// Specs the user may write: the first is the one the CR is created with; each edit
    /// switches to another one of the list.
    pub specs: Vec<Value>,
    /// Maximum number of spec edits.
    pub max_edits: u8,
    /// Maximum number of deletions of the CR (each may be followed by a re-creation with the
    /// current spec and the same name).
    pub max_deletes: u8,
    /// Faults.
    pub faults: Faults,
    /// At most this many requests of crashed controller incarnations ("stale" requests) in
    /// flight; a crash that would exceed it is not taken.
    pub max_stale_requests: usize,
    /// At most this many objects of one kind (other than the CR's) may exist; a state above it
    /// violates the `object_bound` invariant and is not explored further (a controller that
    /// keeps creating objects is a counterexample, not a search that never ends).
    #[serde(default = "default_object_bound")]
    pub max_objects_per_kind: usize,
    /// The other controllers checked in the same model (a controller set, see
    /// [`crate::model::set`]): each with its own custom resource (same namespace), specs, edits
    /// and deletions. Empty for a single controller. The faults above and the bounds are shared
    /// by every member; crashes are per member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<MemberScope>,
    /// Objects that exist before anything happens (written by someone outside the scope, e.g.
    /// a configuration Secret a controller reads), as JSON manifests with kind, apiVersion,
    /// metadata.name and metadata.namespace. Empty by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<Value>,
}

/// The part of a [`Scope`] that belongs to one further member of a controller set: its custom
/// resource's name, specs, edits and deletions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberScope {
    /// The controller's name (as in property names, e.g. `esr:<cr name>`).
    pub controller: String,
    /// Name of its custom resource (in [`Scope::namespace`]).
    pub name: String,
    /// Specs the user may write: the first is the creation spec, the others edit targets.
    pub specs: Vec<Value>,
    /// Maximum number of spec edits.
    #[serde(default)]
    pub max_edits: u8,
    /// Maximum number of deletions (each may be followed by a re-creation).
    #[serde(default)]
    pub max_deletes: u8,
}

fn one() -> u8 {
    1
}

fn default_object_bound() -> usize {
    DEFAULT_OBJECT_BOUND
}

/// The default of [`Scope::max_objects_per_kind`].
pub const DEFAULT_OBJECT_BOUND: usize = 8;

impl Scope {
    /// A scope with one spec, no edits, no deletions and no faults.
    pub fn new(namespace: &str, name: &str, spec: Value) -> Self {
        Scope {
            namespace: namespace.into(),
            name: name.into(),
            crs: 1,
            specs: vec![spec],
            max_edits: 0,
            max_deletes: 0,
            faults: Faults::default(),
            max_stale_requests: 2,
            max_objects_per_kind: DEFAULT_OBJECT_BOUND,
            others: Vec::new(),
            objects: Vec::new(),
        }
    }

    /// The names of the custom resources: `name`, then `name-2`, `name-3`, ...
    pub fn cr_names(&self) -> Vec<String> {
        (0..self.crs.max(1))
            .map(|i| match i {
                0 => self.name.clone(),
                i => format!("{}-{}", self.name, i + 1),
            })
            .collect()
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("scope serialises")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scope:")?;
        for n in self.cr_names() {
            writeln!(f, "  custom resource   {}/{n}", self.namespace)?;
        }
        for (i, s) in self.specs.iter().enumerate() {
            let what = if i == 0 {
                "created with"
            } else {
                "edit option"
            };
            writeln!(f, "  {what:<17} {s}")?;
        }
        let each = if self.crs > 1 { " (each CR)" } else { "" };
        writeln!(f, "  spec edits        at most {}{each}", self.max_edits)?;
        writeln!(f, "  delete+recreate   at most {}{each}", self.max_deletes)?;
        for o in &self.others {
            writeln!(
                f,
                "  controller {}: custom resource {}/{}",
                o.controller, self.namespace, o.name
            )?;
            for (i, s) in o.specs.iter().enumerate() {
                let what = if i == 0 {
                    "created with"
                } else {
                    "edit option"
                };
                writeln!(f, "    {what:<15} {s}")?;
            }
            writeln!(
                f,
                "    spec edits      at most {}\n    delete+recreate at most {}",
                o.max_edits, o.max_deletes
            )?;
        }
        for o in &self.objects {
            writeln!(f, "  existing object   {o}")?;
        }
        if !self.others.is_empty() {
            writeln!(
                f,
                "  (the faults below are shared by the controllers; each crashes on its own)"
            )?;
        }
        let mut faults = Vec::new();
        if self.faults.crash {
            faults.push("controller crash/restart".to_string());
        }
        if self.faults.transient {
            faults
                .push("transient request failures (every error the shim can surface)".to_string());
        } else if self.faults.drop {
            faults.push("request drop (Timeout)".to_string());
        }
        if self.faults.lost_response {
            faults.push("applied-then-failed requests (lost responses)".to_string());
        }
        if self.faults.other_deletes > 0 {
            faults.push(format!(
                "other-writer deletes (<= {})",
                self.faults.other_deletes
            ));
        }
        if self.faults.other_updates > 0 {
            faults.push(format!(
                "other-writer updates (<= {})",
                self.faults.other_updates
            ));
        }
        if self.faults.pod_losses > 0 {
            faults.push(format!("pod losses (<= {})", self.faults.pod_losses));
        }
        if faults.is_empty() {
            faults.push("none".into());
        }
        writeln!(
            f,
            "  faults            {} (each eventually disabled)",
            faults.join(", ")
        )?;
        writeln!(
            f,
            "  stale requests    at most {} in flight",
            self.max_stale_requests
        )?;
        write!(
            f,
            "  objects per kind  at most {} (more is a violation of object_bound)",
            self.max_objects_per_kind
        )
    }
}
