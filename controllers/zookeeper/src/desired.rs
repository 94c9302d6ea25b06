//! The desired-state predicate, used by the checker (ESR) and by the end-to-end tests.
//!
//! The cluster matches a `ZookeeperCluster` when both halves hold:
//!
//! * [`kube_state_matches`] -- the objects in the API server (read through a
//!   [`ClusterView`]): the three Services, the ConfigMap and the StatefulSet exist, are
//!   controlled by the CR, and carry what the spec asks for; the stored CR is the same object
//!   (same uid) and its status reports the StatefulSet's ready replicas;
//! * [`znode_matches`] -- the ZooKeeper ensemble's state (read through a [`ZnodeView`]):
//!   `/zookeeper-operator/<name>` holds `CLUSTER_SIZE=<replicas>`.
//!
//! [`current_state_matches`] is their conjunction. The znode lives outside the API server, so
//! the predicate takes it as a second view rather than folding it into [`ClusterView`]: the
//! cluster model passes its znode-store model, the end-to-end tests a snapshot read from the
//! real ZooKeeper server.

use crate::reconciler::{
    CONFIG_VERSION_ANNOTATION, admin_server_service_name, client_service_name, config_map_data,
    config_map_name, headless_service_name, ready_replicas, stateful_set_name,
};
use crate::resource::ZookeeperCluster;
use crate::zk::{ZnodeView, cluster_size_data, cluster_size_path};
use anvil_objects::{DynamicObject, Kind, ObjectRef, Owner, is_controlled_by};
use anvil_reconciler::ClusterView;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde_json::Value;
use std::collections::BTreeMap;

/// The owner identity of `cr` (`None` before it is stored: no uid yet).
pub fn owner(cr: &ZookeeperCluster) -> Option<Owner> {
    Some(Owner {
        api_version: "zookeeper.anvil.dev/v1".into(),
        kind: "ZookeeperCluster".into(),
        name: cr.metadata.name.clone()?,
        uid: cr.metadata.uid.clone()?,
    })
}

/// Both halves: [`kube_state_matches`] and [`znode_matches`].
pub fn current_state_matches(
    cr: &ZookeeperCluster,
    view: &impl ClusterView,
    znodes: &impl ZnodeView,
) -> bool {
    kube_state_matches(cr, view) && znode_matches(cr, znodes)
}

/// The znode `/zookeeper-operator/<name>` of `cr`'s ensemble holds `CLUSTER_SIZE=<replicas>`.
pub fn znode_matches(cr: &ZookeeperCluster, znodes: &impl ZnodeView) -> bool {
    let name = cr.metadata.name.as_deref().unwrap_or_default();
    let namespace = cr.metadata.namespace.as_deref().unwrap_or_default();
    znodes.znode(namespace, name, &cluster_size_path(name))
        == Some(cluster_size_data(cr.spec.replicas))
}

fn ports_by_name(obj: &DynamicObject, pointer: &str, port_field: &str) -> BTreeMap<String, i64> {
    obj.body()
        .get("spec")
        .and_then(|s| s.pointer(pointer))
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("name")?.as_str()?.to_string(),
                        p.get(port_field)?.as_i64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expect_ports(list: &[(&str, i32)]) -> BTreeMap<String, i64> {
    list.iter()
        .map(|(n, p)| (n.to_string(), i64::from(*p)))
        .collect()
}

/// The Kubernetes half of the desired state (see the module documentation).
pub fn kube_state_matches(cr: &ZookeeperCluster, view: &impl ClusterView) -> bool {
    let Some(owner) = owner(cr) else {
        return false;
    };
    let namespace = cr.metadata.namespace.clone().unwrap_or_default();
    let key = |kind: Kind, name: String| ObjectRef::new(kind, &namespace, name);
    let controlled = |k: ObjectRef| view.get(&k).filter(|o| is_controlled_by(o, &owner));
    let p = &cr.spec.ports;

    // Services: exist, controlled by the CR, expose the spec's ports.
    let services = [
        (
            headless_service_name(cr),
            expect_ports(&[
                ("tcp-client", p.client),
                ("tcp-quorum", p.quorum),
                ("tcp-leader-election", p.leader_election),
                ("tcp-metrics", p.metrics),
                ("tcp-admin-server", p.admin_server),
            ]),
        ),
        (
            client_service_name(cr),
            expect_ports(&[("tcp-client", p.client)]),
        ),
        (
            admin_server_service_name(cr),
            expect_ports(&[("tcp-admin-server", p.admin_server)]),
        ),
    ];
    for (name, ports) in services {
        match controlled(key(Kind::of::<Service>(), name)) {
            Some(svc) if ports_by_name(svc, "/ports", "port") == ports => {}
            _ => return false,
        }
    }

    // ConfigMap: controlled, holds zoo.cfg / log4j / env.sh rendered from the spec.
    let Some(cm) = controlled(key(Kind::of::<ConfigMap>(), config_map_name(cr))) else {
        return false;
    };
    let want: Value = serde_json::to_value(config_map_data(cr)).unwrap_or_default();
    if cm.body().get("data") != Some(&want) {
        return false;
    }

    // StatefulSet: controlled, replicas, governing Service, image, ports, configuration
    // version, config volume, storage.
    let Some(sts) = controlled(key(Kind::of::<StatefulSet>(), stateful_set_name(cr))) else {
        return false;
    };
    let Some(spec) = sts.spec() else {
        return false;
    };
    let at = |ptr: &str| spec.pointer(ptr);
    let replicas_ok = at("/replicas").and_then(Value::as_i64) == Some(i64::from(cr.spec.replicas));
    let service_ok =
        at("/serviceName").and_then(Value::as_str) == Some(headless_service_name(cr).as_str());
    let image_ok = at("/template/spec/containers/0/image").and_then(Value::as_str)
        == Some(cr.spec.image.as_str());
    let version_ok = at("/template/metadata/annotations")
        .and_then(|a| a.get(CONFIG_VERSION_ANNOTATION))
        .and_then(Value::as_str)
        == cm.resource_version();
    let container_ports = ports_by_name(sts, "/template/spec/containers/0/ports", "containerPort");
    let ports_ok = container_ports
        == expect_ports(&[
            ("client", p.client),
            ("quorum", p.quorum),
            ("leader-election", p.leader_election),
            ("metrics", p.metrics),
            ("admin-server", p.admin_server),
        ]);
    let conf_volume_ok = at("/template/spec/volumes")
        .and_then(Value::as_array)
        .is_some_and(|vols| {
            vols.iter().any(|v| {
                v.get("name").and_then(Value::as_str) == Some("conf")
                    && v.pointer("/configMap/name").and_then(Value::as_str)
                        == Some(config_map_name(cr).as_str())
            })
        });
    let storage_ok = if cr.spec.persistence.enabled {
        at("/volumeClaimTemplates/0/spec/resources/requests/storage").and_then(Value::as_str)
            == Some(cr.spec.persistence.storage_size.as_str())
    } else {
        at("/volumeClaimTemplates")
            .and_then(Value::as_array)
            .is_none_or(|v| v.is_empty())
    };
    if !(replicas_ok
        && service_ok
        && image_ok
        && version_ok
        && ports_ok
        && conf_volume_ok
        && storage_ok)
    {
        return false;
    }

    // The stored CR is this one and its status reports the StatefulSet's ready replicas.
    let Some(stored) = view.get(&key(Kind::of::<ZookeeperCluster>(), stateful_set_name(cr))) else {
        return false;
    };
    stored.uid() == cr.metadata.uid.as_deref()
        && stored
            .status()
            .and_then(|s| s.get("readyReplicas"))
            .and_then(Value::as_i64)
            == Some(ready_replicas(sts))
}
