//! The objects a `FluentBit` owns, in their desired form: ServiceAccount, Role (get pods),
//! RoleBinding, Service (metrics port) and DaemonSet (mounting the configuration Secret, the
//! host's log directories unless disabled, the position database, and the configuration hash
//! on the pod template so that a configuration change rolls the pods). All are named like the
//! `FluentBit`.

use crate::resource::FluentBit;
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::chain::{self, Adopt, Facts, ManagedObject};
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, HostPathVolumeSource, PodSpec, PodTemplateSpec,
    SecretVolumeSource, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Annotation on the pod template holding the configuration hash
/// ([`crate::config::config_hash`]).
pub const CONFIG_HASH_ANNOTATION: &str = "fluent.anvil.dev/config-hash";
/// Fact: the configuration hash, recorded when the configuration Secret was read.
pub const FACT_CONFIG_HASH: &str = "config-hash";
/// Where the configuration Secret is mounted.
pub const CONFIG_MOUNT_PATH: &str = "/fluent-bit/config";
/// Where the position database is mounted.
pub const POSITIONS_MOUNT_PATH: &str = "/fluent-bit/tail";
/// Default real path of the container logs on the host.
pub const DEFAULT_CONTAINER_LOG_PATH: &str = "/var/lib/docker/containers";

/// Name of every object of a `FluentBit` (its own name).
pub fn name(cr: &FluentBit) -> String {
    cr.metadata.name.clone().unwrap_or_default()
}

fn namespace(cr: &FluentBit) -> String {
    cr.metadata.namespace.clone().unwrap_or_default()
}

/// The labels that select a `FluentBit`'s pods (the DaemonSet's selector, immutable).
pub fn selector_labels(cr: &FluentBit) -> BTreeMap<String, String> {
    [
        (
            "app.kubernetes.io/name".to_string(),
            "fluent-bit".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), name(cr)),
    ]
    .into()
}

fn pod_labels(cr: &FluentBit) -> BTreeMap<String, String> {
    let mut l = cr.spec.labels.clone();
    l.extend(selector_labels(cr));
    l
}

fn to_dynamic<K: serde::Serialize + kube::Resource<DynamicType = ()>>(
    k: &K,
) -> Result<DynamicObject, String> {
    DynamicObject::from_typed(k).map_err(|e| e.to_string())
}

fn opt_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

fn opt_vec<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn desired_service_account(cr: &FluentBit, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&ServiceAccount {
        metadata: ObjectMeta {
            labels: Some(selector_labels(cr)),
            annotations: opt_map(cr.spec.service_account_annotations.clone()),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The Role's rules: get pods (Fluent Bit's kubernetes filter reads pod metadata).
pub fn role_rules() -> Vec<PolicyRule> {
    vec![PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["pods".into()]),
        verbs: vec!["get".into()],
        ..Default::default()
    }]
}

fn desired_role(cr: &FluentBit, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&Role {
        metadata: ObjectMeta {
            labels: Some(selector_labels(cr)),
            ..Default::default()
        },
        rules: Some(role_rules()),
    })
}

fn desired_role_binding(cr: &FluentBit, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&RoleBinding {
        metadata: ObjectMeta {
            labels: Some(selector_labels(cr)),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name(cr),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name(cr),
            namespace: Some(namespace(cr)),
            ..Default::default()
        }]),
    })
}

fn desired_service(cr: &FluentBit, _: &Facts) -> Result<DynamicObject, String> {
    let mut labels = cr.spec.service_labels.clone();
    labels.extend(selector_labels(cr));
    let mut selector = cr.spec.service_selector.clone();
    selector.extend(selector_labels(cr));
    to_dynamic(&Service {
        metadata: ObjectMeta {
            labels: Some(labels),
            annotations: opt_map(cr.spec.service_annotations.clone()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("metrics".into()),
                port: cr.spec.metrics_port,
                target_port: Some(IntOrString::Int(cr.spec.metrics_port)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn host_path(name: &str, path: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// The pod's volumes and the container's mounts: the configuration Secret (only when
/// `config` names it), the host's logs unless disabled, the position database, and the
/// spec's own.
pub fn volumes(cr: &FluentBit, config: Option<&str>) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut vols = Vec::new();
    let mut mounts = Vec::new();
    if let Some(secret) = config {
        vols.push(Volume {
            name: "config".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(mount("config", CONFIG_MOUNT_PATH, true));
    }
    if !cr.spec.disable_log_volumes {
        let containers = cr
            .spec
            .container_log_real_path
            .clone()
            .unwrap_or_else(|| DEFAULT_CONTAINER_LOG_PATH.into());
        vols.push(host_path("varlog", "/var/log"));
        vols.push(host_path("containerlogs", &containers));
        mounts.push(mount("varlog", "/var/log", false));
        mounts.push(mount("containerlogs", &containers, true));
    }
    vols.push(match &cr.spec.position_db {
        Some(path) => host_path("positions", path),
        None => Volume {
            name: "positions".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    });
    mounts.push(mount("positions", POSITIONS_MOUNT_PATH, false));
    vols.extend(cr.spec.volumes.iter().cloned());
    mounts.extend(cr.spec.volume_mounts.iter().cloned());
    (vols, mounts)
}

/// The desired DaemonSet given the configuration hash (`None`: the configuration Secret was
/// not read, so the pods neither mount it nor carry a hash; only the broken variant creates
/// such a DaemonSet).
pub fn daemon_set(cr: &FluentBit, hash: Option<&str>) -> DaemonSet {
    let s = &cr.spec;
    let config = hash.map(|_| s.fluent_bit_config_name.as_str());
    let (vols, mounts) = volumes(cr, config);
    let mut annotations = s.annotations.clone();
    if let Some(h) = hash {
        annotations.insert(CONFIG_HASH_ANNOTATION.into(), h.into());
    }
    let mut ports = vec![ContainerPort {
        name: Some("metrics".into()),
        container_port: s.metrics_port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }];
    ports.extend(s.ports.iter().cloned());
    let container = Container {
        name: "fluent-bit".into(),
        image: Some(s.image.clone()),
        args: opt_vec(s.args.clone()),
        command: opt_vec(s.command.clone()),
        image_pull_policy: s.image_pull_policy.clone(),
        env: opt_vec(s.env_vars.clone()),
        resources: s.resources.clone(),
        security_context: s.security_context.clone(),
        liveness_probe: s.liveness_probe.clone(),
        readiness_probe: s.readiness_probe.clone(),
        ports: Some(ports),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    DaemonSet {
        metadata: ObjectMeta {
            labels: Some(pod_labels(cr)),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(cr)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels(cr)),
                    annotations: opt_map(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name(cr)),
                    host_network: s.host_network.then_some(true),
                    node_selector: opt_map(s.node_selector.clone()),
                    affinity: s.affinity.clone(),
                    tolerations: opt_vec(s.tolerations.clone()),
                    image_pull_secrets: opt_vec(s.image_pull_secrets.clone()),
                    init_containers: opt_vec(s.init_containers.clone()),
                    volumes: Some(vols),
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn desired_daemon_set(cr: &FluentBit, facts: &Facts) -> Result<DynamicObject, String> {
    let hash = facts
        .get(FACT_CONFIG_HASH)
        .ok_or("the configuration Secret has not been read")?;
    to_dynamic(&daemon_set(cr, Some(hash)))
}

/// The ServiceAccount step.
pub const SERVICE_ACCOUNT: ManagedObject<FluentBit> = ManagedObject {
    label: "serviceaccount",
    kind: Kind::of::<ServiceAccount>,
    name,
    desired: desired_service_account,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The Role step.
pub const ROLE: ManagedObject<FluentBit> = ManagedObject {
    label: "role",
    kind: Kind::of::<Role>,
    name,
    desired: desired_role,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The RoleBinding step.
pub const ROLE_BINDING: ManagedObject<FluentBit> = ManagedObject {
    label: "rolebinding",
    kind: Kind::of::<RoleBinding>,
    name,
    desired: desired_role_binding,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The Service step.
pub const SERVICE: ManagedObject<FluentBit> = ManagedObject {
    label: "service",
    kind: Kind::of::<Service>,
    name,
    desired: desired_service,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The DaemonSet step (needs [`FACT_CONFIG_HASH`]).
pub const DAEMON_SET: ManagedObject<FluentBit> = ManagedObject {
    label: "daemonset",
    kind: Kind::of::<DaemonSet>,
    name,
    desired: desired_daemon_set,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// Every managed object of a `FluentBit`, in reconcile order.
pub const MANAGED: [ManagedObject<FluentBit>; 5] =
    [SERVICE_ACCOUNT, ROLE, ROLE_BINDING, SERVICE, DAEMON_SET];
