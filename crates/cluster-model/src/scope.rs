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
    /// Other writers deleting objects the controller manages (at most this many times).
    pub other_deletes: u8,
    /// Pod losses lowering a StatefulSet's ready replicas (at most this many times).
    pub pod_losses: u8,
}

/// What is checked: the custom resource's life (specs, edits, deletions), the faults, and the
/// bounds. Printed with every result; a result never claims more than its scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Namespace of the custom resource.
    pub namespace: String,
    /// Name of the custom resource.
    pub name: String,
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
}

impl Scope {
    /// A scope with one spec, no edits, no deletions and no faults.
    pub fn new(namespace: &str, name: &str, spec: Value) -> Self {
        Scope {
            namespace: namespace.into(),
            name: name.into(),
            specs: vec![spec],
            max_edits: 0,
            max_deletes: 0,
            faults: Faults::default(),
            max_stale_requests: 2,
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("scope serialises")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scope:")?;
        writeln!(f, "  custom resource   {}/{}", self.namespace, self.name)?;
        for (i, s) in self.specs.iter().enumerate() {
            let what = if i == 0 {
                "created with"
            } else {
                "edit option"
            };
            writeln!(f, "  {what:<17} {s}")?;
        }
        writeln!(f, "  spec edits        at most {}", self.max_edits)?;
        writeln!(f, "  delete+recreate   at most {}", self.max_deletes)?;
        let mut faults = Vec::new();
        if self.faults.crash {
            faults.push("controller crash/restart".to_string());
        }
        if self.faults.drop {
            faults.push("request drop".to_string());
        }
        if self.faults.other_deletes > 0 {
            faults.push(format!(
                "other-writer deletes (<= {})",
                self.faults.other_deletes
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
        write!(
            f,
            "  stale requests    at most {} in flight",
            self.max_stale_requests
        )
    }
}
