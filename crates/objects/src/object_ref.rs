use crate::Kind;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;
use std::fmt;

/// The key of an object in the API server: kind, namespace (empty for cluster-scoped kinds)
/// and name.
///
/// Namespace and name are [`SmolStr`]s: strings of up to 23 bytes (Kubernetes names mostly
/// are) are stored inline, so cloning a key allocates nothing. The model checker clones and
/// drops keys in every state it generates. They hash, compare and serialise as strings.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's kind.
    pub kind: Kind,
    /// The namespace; empty for cluster-scoped objects.
    pub namespace: SmolStr,
    /// The name.
    pub name: SmolStr,
}

impl ObjectRef {
    /// A reference from its parts.
    pub fn new(kind: Kind, namespace: impl Into<SmolStr>, name: impl Into<SmolStr>) -> Self {
        ObjectRef {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}
