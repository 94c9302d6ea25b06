use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The type of an object: its `apiVersion` (`group/version`, or `version` for the core group)
/// and `kind`. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kind {
    api_version: Arc<str>,
    kind: Arc<str>,
}

impl Kind {
    /// A kind from its `apiVersion` and `kind` strings.
    pub fn new(api_version: &str, kind: &str) -> Self {
        Kind {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }

    /// The kind of a typed resource: any `k8s-openapi` type or a kube `CustomResource`.
    pub fn of<K: kube_core::Resource<DynamicType = ()>>() -> Self {
        Kind::new(&K::api_version(&()), &K::kind(&()))
    }

    /// `apiVersion`, e.g. `apps/v1` or `v1`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// `kind`, e.g. `StatefulSet`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }

    /// The API version without the group.
    pub fn version(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(_, v)| v)
            .unwrap_or(&self.api_version)
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn kinds_of_typed_resources() {
        let sts = Kind::of::<StatefulSet>();
        assert_eq!(sts.api_version(), "apps/v1");
        assert_eq!(sts.group(), "apps");
        assert_eq!(sts.version(), "v1");
        let cm = Kind::of::<ConfigMap>();
        assert_eq!(cm.group(), "");
        assert_eq!(cm.version(), "v1");
        assert_eq!(format!("{cm:?}"), "v1/ConfigMap");
    }
}
