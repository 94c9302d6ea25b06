//! The RBAC permissions a controller needs when the shim runs it: those of its reconciler's
//! requests ([`request_permissions`], the exact HTTP calls [`crate::execute`] makes), those of
//! the runtime around it ([`runtime_permissions`]: watches, the quorum read, Events) and, with
//! leader election, those of its Lease ([`lease_permissions`]).
//!
//! A controller declares the permissions of its reconciler's requests in its [`ShimConfig`]
//! ([`ShimConfig::may`]); `anvil manifests` turns the declaration plus the runtime's needs
//! into a Role or ClusterRole ([`policy_rules`]), and `crates/anvil/tests/permissions.rs`
//! checks the declaration against every request the cluster model sees the reconciler issue
//! in its verification scope (nothing missing, nothing unused). At run time the shim also
//! logs an error for a request outside the declaration.

use std::collections::{BTreeMap, BTreeSet};

use anvil_objects::Kind;
use anvil_reconciler::KubeRequest;
use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::config::ShimConfig;
use crate::execute::api_resource;

/// One RBAC permission: a verb on a resource (a plural, or `plural/subresource`) of an API
/// group (`""` for the core group).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    /// API group (`""`: core).
    pub group: String,
    /// Resource: plural, or `plural/subresource` (e.g. `statefulsets/status`).
    pub resource: String,
    /// Verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`...
    pub verb: String,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {}.{}", self.verb, self.resource, group)
    }
}

impl Permission {
    /// `verb` on `resource` of `group`.
    pub fn new(group: &str, resource: &str, verb: &str) -> Self {
        Permission {
            group: group.to_string(),
            resource: resource.to_string(),
            verb: verb.to_string(),
        }
    }

    /// `verb` on the resource of `kind` (its registered plural, see
    /// [`crate::register_plural`]).
    pub fn on(kind: &Kind, verb: &str) -> Self {
        let ar = api_resource(kind);
        Permission::new(&ar.group, &ar.plural, verb)
    }

    /// `verb` on the `status` subresource of `kind`.
    pub fn on_status(kind: &Kind, verb: &str) -> Self {
        let ar = api_resource(kind);
        Permission::new(&ar.group, &format!("{}/status", ar.plural), verb)
    }
}

/// The permissions that executing `req` with [`crate::execute`] needs:
///
/// | request | permissions |
/// |---|---|
/// | `Get` | `get` |
/// | `List` | `list` (in every namespace when its namespace is empty: a ClusterRole) |
/// | `Create` | `create` |
/// | `Delete` | `delete` |
/// | `Update` | `update` |
/// | `UpdateStatus` | `update` on `<plural>/status` |
/// | `GetThenUpdate` | `get`, `update` |
/// | `GetThenUpdateStatus` | `get`, `update` on `<plural>/status` |
/// | `GetThenDelete` | `get`, `delete` |
///
/// Creating or updating a `Role` or `ClusterRole` also needs every permission the role grants
/// (the API server's privilege-escalation check); binding it then needs nothing more.
pub fn request_permissions(req: &KubeRequest) -> Vec<Permission> {
    let mut out = match req {
        KubeRequest::Get(key) => vec![Permission::on(&key.kind, "get")],
        KubeRequest::List { kind, .. } => vec![Permission::on(kind, "list")],
        KubeRequest::Create(o) => vec![Permission::on(o.kind(), "create")],
        KubeRequest::Delete { key, .. } => vec![Permission::on(&key.kind, "delete")],
        KubeRequest::Update(o) => vec![Permission::on(o.kind(), "update")],
        KubeRequest::UpdateStatus(o) => vec![Permission::on_status(o.kind(), "update")],
        KubeRequest::GetThenUpdate { obj, .. } => vec![
            Permission::on(obj.kind(), "get"),
            Permission::on(obj.kind(), "update"),
        ],
        KubeRequest::GetThenUpdateStatus { obj, .. } => vec![
            Permission::on(obj.kind(), "get"),
            Permission::on_status(obj.kind(), "update"),
        ],
        KubeRequest::GetThenDelete { key, .. } => vec![
            Permission::on(&key.kind, "get"),
            Permission::on(&key.kind, "delete"),
        ],
    };
    match req {
        KubeRequest::Create(o)
        | KubeRequest::Update(o)
        | KubeRequest::GetThenUpdate { obj: o, .. } => {
            let k = o.kind();
            if k.group() == "rbac.authorization.k8s.io"
                && matches!(k.kind(), "Role" | "ClusterRole")
            {
                out.extend(granted_by_role(&o.to_json()));
            }
        }
        _ => {}
    }
    out
}

/// The permissions a Role's or ClusterRole's rules grant (resource rules only; `resourceNames`
/// restrictions are ignored, so this is a superset).
fn granted_by_role(role: &serde_json::Value) -> Vec<Permission> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    out.push(Permission::new(&g, &r, &v));
                }
            }
        }
    }
    out
}

/// What the shim's runtime itself needs for a controller of custom resource `cr` configured
/// by `config`: `list` and `watch` on the custom resource and every owned kind (the
/// controller's watches), `get` on the custom resource (the quorum read at the start of every
/// reconcile), and `create` and `patch` on `events.k8s.io` Events (kube's event recorder:
/// `InvalidSpec` and `Forbidden` Events on the custom resource).
pub fn runtime_permissions(cr: &Kind, config: &ShimConfig) -> Vec<Permission> {
    let mut out = vec![
        Permission::on(cr, "get"),
        Permission::on(cr, "list"),
        Permission::on(cr, "watch"),
        Permission::new("events.k8s.io", "events", "create"),
        Permission::new("events.k8s.io", "events", "patch"),
    ];
    for kind in &config.owned {
        out.push(Permission::on(kind, "list"));
        out.push(Permission::on(kind, "watch"));
    }
    out
}

/// What leader election needs, in the namespace of its Lease: `get`, `create` and `patch`
/// (server-side apply) on `coordination.k8s.io` Leases.
pub fn lease_permissions() -> Vec<Permission> {
    ["get", "create", "patch"]
        .into_iter()
        .map(|v| Permission::new("coordination.k8s.io", "leases", v))
        .collect()
}

/// Groups permissions into RBAC rules: one rule per (group, resource) with its verbs, sorted,
/// so that removing one rule removes every access to one resource.
pub fn policy_rules<'a>(perms: impl IntoIterator<Item = &'a Permission>) -> Vec<PolicyRule> {
    let mut by_resource: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for p in perms {
        by_resource
            .entry((p.group.clone(), p.resource.clone()))
            .or_default()
            .insert(p.verb.clone());
    }
    by_resource
        .into_iter()
        .map(|((group, resource), verbs)| PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(vec![resource]),
            verbs: verbs.into_iter().collect(),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anvil_objects::{DynamicObject, ObjectRef};
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::rbac::v1::Role;

    #[test]
    fn get_then_update_status_needs_get_and_the_status_subresource() {
        crate::register_resource::<StatefulSet>();
        let sts = DynamicObject::from_typed(&StatefulSet {
            metadata: kube::api::ObjectMeta {
                name: Some("s".into()),
                namespace: Some("n".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        let owner = anvil_objects::Owner {
            kind: "X".into(),
            api_version: "x/v1".into(),
            name: "x".into(),
            uid: "u".into(),
        };
        let perms = request_permissions(&KubeRequest::GetThenUpdateStatus { obj: sts, owner });
        assert_eq!(
            perms,
            vec![
                Permission::new("apps", "statefulsets", "get"),
                Permission::new("apps", "statefulsets/status", "update"),
            ]
        );
        let key = ObjectRef::new(Kind::of::<StatefulSet>(), "n", "s");
        assert_eq!(
            request_permissions(&KubeRequest::Get(key)),
            vec![Permission::new("apps", "statefulsets", "get")]
        );
    }

    #[test]
    fn creating_a_role_needs_what_it_grants() {
        crate::register_resource::<Role>();
        let role = DynamicObject::from_typed(&Role {
            metadata: kube::api::ObjectMeta {
                name: Some("r".into()),
                namespace: Some("n".into()),
                ..Default::default()
            },
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["endpoints".into()]),
                verbs: vec!["get".into()],
                ..Default::default()
            }]),
        })
        .unwrap();
        let perms = request_permissions(&KubeRequest::Create(role));
        assert_eq!(
            perms,
            vec![
                Permission::new("rbac.authorization.k8s.io", "roles", "create"),
                Permission::new("", "endpoints", "get"),
            ]
        );
    }

    #[test]
    fn rules_group_verbs_per_resource() {
        let perms = [
            Permission::new("apps", "statefulsets", "get"),
            Permission::new("apps", "statefulsets", "create"),
            Permission::new("", "configmaps", "get"),
        ];
        let rules = policy_rules(&perms);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].resources, Some(vec!["configmaps".to_string()]));
        assert_eq!(
            rules[1].verbs,
            vec!["create".to_string(), "get".to_string()]
        );
    }
}
