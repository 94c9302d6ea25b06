use serde::{Deserialize, Deserializer, Serialize};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// The type of an object: its `apiVersion` (`group/version`, or `version` for the core group)
/// and `kind`. Cheap to clone: both strings are interned for the life of the process (a process sees
/// few kinds), so cloning or dropping a `Kind` -- which the model checker does for every key
/// of every state -- touches no reference count shared between threads.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kind {
    api_version: &'static str,
    kind: &'static str,
}

/// The process-wide interned string equal to `s` (a per-thread cache in front of a global
/// set, so a hit takes no lock).
fn intern(s: &str) -> &'static str {
    thread_local! {
        static LOCAL: RefCell<HashSet<&'static str>> = RefCell::new(HashSet::new());
    }
    static GLOBAL: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    if let Some(hit) = LOCAL.with(|l| l.borrow().get(s).copied()) {
        return hit;
    }
    let mut global = GLOBAL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let interned = match global.get(s) {
        Some(hit) => *hit,
        None => {
            let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
            global.insert(leaked);
            leaked
        }
    };
    LOCAL.with(|l| l.borrow_mut().insert(interned));
    interned
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Parts {
            api_version: String,
            kind: String,
        }
        let p = Parts::deserialize(d)?;
        Ok(Kind::new(&p.api_version, &p.kind))
    }
}

impl Kind {
    /// A kind from its `apiVersion` and `kind` strings.
    pub fn new(api_version: &str, kind: &str) -> Self {
        Kind {
            api_version: intern(api_version),
            kind: intern(kind),
        }
    }

    /// The kind of a typed resource: any `k8s-openapi` type or a kube `CustomResource`.
    pub fn of<K: kube_core::Resource<DynamicType = ()>>() -> Self {
        Kind::new(&K::api_version(&()), &K::kind(&()))
    }

    /// `apiVersion`, e.g. `apps/v1` or `v1`.
    pub fn api_version(&self) -> &str {
        self.api_version
    }

    /// `kind`, e.g. `StatefulSet`.
    pub fn kind(&self) -> &str {
        self.kind
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
            .unwrap_or(self.api_version)
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version, self.kind)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind)
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

    #[test]
    fn interned_kinds_compare_and_round_trip_by_content() {
        let a = Kind::new("apps/v1", "StatefulSet");
        let b = Kind::new(
            &String::from("apps/v1"),
            &"Stateful".replace("ful", "fulSet"),
        );
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.kind(), b.kind()), "one interned copy");
        let other_thread = std::thread::spawn(|| Kind::new("apps/v1", "StatefulSet"))
            .join()
            .unwrap();
        assert!(std::ptr::eq(a.kind(), other_thread.kind()));
        assert!(
            a < Kind::new("v1", "ConfigMap"),
            "ordered by content: apps/v1 < v1"
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"apiVersion": "apps/v1", "kind": "StatefulSet"})
        );
        assert_eq!(serde_json::from_value::<Kind>(json).unwrap(), a);
    }
}
