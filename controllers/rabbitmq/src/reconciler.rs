//! The RabbitMQ reconciler: a chain of managed objects, two of them Secrets filled with random
//! values that are generated once, and a StatefulSet that is never scaled down.
//!
//! Steps, in order ([`STEPS`]): the headless Service `<n>-nodes` (epmd 4369, cluster-rpc
//! 25672), the client Service `<n>` (amqp 5672, management 15672, prometheus 15692), the
//! Secret `<n>-erlang-cookie`, the Secret `<n>-default-user` (credentials and
//! `default_user.conf`), the ConfigMap `<n>-plugins-conf` (`enabled_plugins`), the ConfigMap
//! `<n>-server-conf` (`operatorDefaults.conf`, `userDefinedConfiguration.conf`, and
//! `advanced.config` / `rabbitmq-env.conf` when set), the ServiceAccount `<n>-server`, the Role
//! `<n>-peer-discovery` (get endpoints, create events), the RoleBinding `<n>-server`, the
//! StatefulSet `<n>-server`, and the status (`readyReplicas` of the StatefulSet). Every child
//! gets the CR as controller owner; an existing child controlled by anyone else is never
//! adopted (the reconcile fails instead).
//!
//! Two things go beyond the plain Get -> Create-or-Update chain ([`rabbitmq_step`]):
//!
//! * **Generated Secrets** ([`GENERATED`]). When the Get of the cookie or default-user Secret
//!   answers NotFound, the reconciler first asks the random source for fresh values
//!   ([`crate::random`]), keeps them in its local state, and creates the Secret with them. An
//!   existing Secret's generated keys are never rewritten (the desired object leaves them
//!   out, and the merge keeps what is there), so the cookie is generated once and never
//!   rotated by a later reconcile.
//! * **No scale-down** ([`refuses_scale_down`]). When the StatefulSet it read has more
//!   replicas than its snapshot of the CR asks for, the reconcile fails without writing
//!   (the CR's replicas never decrease, so this only happens with a stale snapshot; the next
//!   reconcile reads the CR again). Every StatefulSet Update also carries the resourceVersion
//!   of the read it was built from, so a write built from an older read fails with Conflict.
//!
//! The pod template carries [`CONFIG_HASH_ANNOTATION`], a hash of the user-supplied server
//! configuration (`userDefinedConfiguration.conf`, `advanced.config`, `rabbitmq-env.conf`): a
//! configuration change rolls the pods. The operator defaults' `target_cluster_size_hint`
//! changes with every scale-up but only matters when a cluster first forms, so it is left out
//! of the hash (a scale-up does not restart every node).

use crate::random::{RandomRequest, RandomResponse};
use crate::resource::RabbitmqCluster;
use anvil_objects::{DynamicObject, Kind, Owner, is_controlled_by};
use anvil_reconciler::chain::{
    self, Adopt, ChainReconciler, ChainState, Facts, ManagedObject, Phase, StatusStep, Step,
};
use anvil_reconciler::{ApiError, ErrorReason, KubeResponse, Request, Response};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::ConfigMapProjection;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, KeyToPath, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ProjectedVolumeSource, Secret,
    SecretProjection, SecretVolumeSource, Service, ServiceAccount, ServicePort, ServiceSpec,
    TCPSocketAction, Volume, VolumeMount, VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Annotation on the pod template holding [`config_hash`].
pub const CONFIG_HASH_ANNOTATION: &str = "rabbitmq.anvil.dev/config-hash";
/// Fact: ready replicas of the StatefulSet as last read or written.
pub const FACT_READY: &str = "ready-replicas";
/// Fact: the generated Erlang cookie, from the random source until the Secret is created.
pub const FACT_COOKIE: &str = "generated-erlang-cookie";
/// Fact: the generated default user name, until the Secret is created.
pub const FACT_USERNAME: &str = "generated-username";
/// Fact: the generated default user password, until the Secret is created.
pub const FACT_PASSWORD: &str = "generated-password";

/// Key of the Erlang cookie in its Secret.
pub const COOKIE_KEY: &str = ".erlang.cookie";
/// Keys of the default-user Secret.
pub const USERNAME_KEY: &str = "username";
/// See [`USERNAME_KEY`].
pub const PASSWORD_KEY: &str = "password";
/// See [`USERNAME_KEY`].
pub const DEFAULT_USER_CONF_KEY: &str = "default_user.conf";

/// Ports.
pub const EPMD_PORT: i32 = 4369;
/// See [`EPMD_PORT`].
pub const CLUSTER_RPC_PORT: i32 = 25672;
/// See [`EPMD_PORT`].
pub const AMQP_PORT: i32 = 5672;
/// See [`EPMD_PORT`].
pub const MANAGEMENT_PORT: i32 = 15672;
/// See [`EPMD_PORT`].
pub const PROMETHEUS_PORT: i32 = 15692;

/// The plugins every node runs (the cluster-operator's defaults).
pub const ENABLED_PLUGINS: &str =
    "[rabbitmq_peer_discovery_k8s,rabbitmq_prometheus,rabbitmq_management].";

fn cr_name(cr: &RabbitmqCluster) -> &str {
    cr.metadata.name.as_deref().unwrap_or_default()
}

fn cr_namespace(cr: &RabbitmqCluster) -> &str {
    cr.metadata.namespace.as_deref().unwrap_or_default()
}

/// Name of the headless Service (the StatefulSet's governing Service).
pub fn headless_service_name(cr: &RabbitmqCluster) -> String {
    format!("{}-nodes", cr_name(cr))
}
/// Name of the client Service.
pub fn client_service_name(cr: &RabbitmqCluster) -> String {
    cr_name(cr).to_string()
}
/// Name of the Erlang cookie Secret.
pub fn erlang_cookie_name(cr: &RabbitmqCluster) -> String {
    format!("{}-erlang-cookie", cr_name(cr))
}
/// Name of the default-user Secret.
pub fn default_user_name(cr: &RabbitmqCluster) -> String {
    format!("{}-default-user", cr_name(cr))
}
/// Name of the plugins ConfigMap.
pub fn plugins_config_map_name(cr: &RabbitmqCluster) -> String {
    format!("{}-plugins-conf", cr_name(cr))
}
/// Name of the server configuration ConfigMap.
pub fn server_config_map_name(cr: &RabbitmqCluster) -> String {
    format!("{}-server-conf", cr_name(cr))
}
/// Name of the ServiceAccount.
pub fn service_account_name(cr: &RabbitmqCluster) -> String {
    format!("{}-server", cr_name(cr))
}
/// Name of the Role.
pub fn role_name(cr: &RabbitmqCluster) -> String {
    format!("{}-peer-discovery", cr_name(cr))
}
/// Name of the RoleBinding.
pub fn role_binding_name(cr: &RabbitmqCluster) -> String {
    format!("{}-server", cr_name(cr))
}
/// Name of the StatefulSet.
pub fn stateful_set_name(cr: &RabbitmqCluster) -> String {
    format!("{}-server", cr_name(cr))
}

/// Labels on every child and selecting the pods of `cr`.
pub fn selector_labels(cr: &RabbitmqCluster) -> BTreeMap<String, String> {
    [(
        "app.kubernetes.io/name".to_string(),
        cr_name(cr).to_string(),
    )]
    .into()
}

/// Labels on the pods of `cr`: `spec.labels`, then the selector labels and the operator's
/// component labels.
pub fn pod_labels(cr: &RabbitmqCluster) -> BTreeMap<String, String> {
    let mut labels = cr.spec.labels.clone();
    labels.insert("app.kubernetes.io/component".into(), "rabbitmq".into());
    labels.insert("app.kubernetes.io/part-of".into(), "rabbitmq".into());
    labels.extend(selector_labels(cr));
    labels
}

fn meta(cr: &RabbitmqCluster) -> ObjectMeta {
    ObjectMeta {
        labels: Some(selector_labels(cr)),
        ..Default::default()
    }
}

fn to_dynamic<K: serde::Serialize + kube::Resource<DynamicType = ()>>(
    obj: &K,
) -> Result<DynamicObject, String> {
    DynamicObject::from_typed(obj).map_err(|e| e.to_string())
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        ..Default::default()
    }
}

/// The ports (name, port) of the headless Service.
pub fn headless_ports() -> [(&'static str, i32); 2] {
    [("epmd", EPMD_PORT), ("cluster-rpc", CLUSTER_RPC_PORT)]
}

/// The ports (name, port) of the client Service.
pub fn client_ports() -> [(&'static str, i32); 3] {
    [
        ("amqp", AMQP_PORT),
        ("management", MANAGEMENT_PORT),
        ("prometheus", PROMETHEUS_PORT),
    ]
}

fn service(
    cr: &RabbitmqCluster,
    ports: &[(&str, i32)],
    headless: bool,
) -> Result<DynamicObject, String> {
    to_dynamic(&Service {
        metadata: meta(cr),
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_string()),
            publish_not_ready_addresses: headless.then_some(true),
            ports: Some(ports.iter().map(|(n, p)| service_port(n, *p)).collect()),
            selector: Some(selector_labels(cr)),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn desired_headless_service(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    service(cr, &headless_ports(), true)
}

fn desired_client_service(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    service(cr, &client_ports(), false)
}

fn bytes(s: &str) -> ByteString {
    ByteString(s.as_bytes().to_vec())
}

/// The desired cookie Secret: the generated cookie only while this reconcile holds one (it
/// is about to create the Secret); otherwise no data, so an existing cookie is kept as is.
fn desired_erlang_cookie(cr: &RabbitmqCluster, facts: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&Secret {
        metadata: meta(cr),
        type_: Some("Opaque".into()),
        data: facts
            .get(FACT_COOKIE)
            .map(|c| [(COOKIE_KEY.to_string(), bytes(c))].into()),
        ..Default::default()
    })
}

/// `default_user.conf` for a user name and password (read by RabbitMQ from its `conf.d`).
pub fn default_user_conf(username: &str, password: &str) -> String {
    format!("default_user = {username}\ndefault_pass = {password}\n")
}

/// The non-secret keys of the default-user Secret (service-binding style).
pub fn default_user_public_data(cr: &RabbitmqCluster) -> BTreeMap<String, String> {
    [
        (
            "host".to_string(),
            format!("{}.{}.svc", client_service_name(cr), cr_namespace(cr)),
        ),
        ("port".to_string(), AMQP_PORT.to_string()),
        ("provider".to_string(), "rabbitmq".to_string()),
        ("type".to_string(), "rabbitmq".to_string()),
    ]
    .into()
}

/// The desired default-user Secret: the public keys always; the generated credentials (and
/// `default_user.conf`) only while this reconcile holds them. Existing credentials are kept.
fn desired_default_user(cr: &RabbitmqCluster, facts: &Facts) -> Result<DynamicObject, String> {
    let mut data: BTreeMap<String, ByteString> = default_user_public_data(cr)
        .into_iter()
        .map(|(k, v)| (k, bytes(&v)))
        .collect();
    if let (Some(u), Some(p)) = (facts.get(FACT_USERNAME), facts.get(FACT_PASSWORD)) {
        data.insert(USERNAME_KEY.into(), bytes(u));
        data.insert(PASSWORD_KEY.into(), bytes(p));
        data.insert(
            DEFAULT_USER_CONF_KEY.into(),
            bytes(&default_user_conf(u, p)),
        );
    }
    to_dynamic(&Secret {
        metadata: meta(cr),
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    })
}

/// Forgets the generated values once the Secret is stored (they are not needed again).
fn forget_generated(_: &DynamicObject, facts: &mut Facts) {
    for k in [FACT_COOKIE, FACT_USERNAME, FACT_PASSWORD] {
        facts.remove(k);
    }
}

fn desired_plugins_config_map(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&ConfigMap {
        metadata: meta(cr),
        data: Some([("enabled_plugins".to_string(), ENABLED_PLUGINS.to_string())].into()),
        ..Default::default()
    })
}

/// `operatorDefaults.conf` of `cr` (the cluster-operator's defaults).
pub fn operator_defaults_conf(cr: &RabbitmqCluster) -> String {
    format!(
        "queue_master_locator = min-masters\n\
         disk_free_limit.absolute = 2GB\n\
         cluster_partition_handling = pause_minority\n\
         cluster_formation.peer_discovery_backend = rabbit_peer_discovery_k8s\n\
         cluster_formation.k8s.host = kubernetes.default\n\
         cluster_formation.k8s.address_type = hostname\n\
         cluster_formation.k8s.service_name = {headless}\n\
         cluster_formation.target_cluster_size_hint = {replicas}\n\
         cluster_name = {name}\n",
        headless = headless_service_name(cr),
        replicas = cr.spec.replicas,
        name = cr_name(cr),
    )
}

fn user_config(cr: &RabbitmqCluster) -> (&str, Option<&str>, Option<&str>) {
    fn set(v: Option<&String>) -> Option<&str> {
        v.map(String::as_str).filter(|s| !s.is_empty())
    }
    let c = cr.spec.rabbitmq_config.as_ref();
    (
        c.and_then(|c| c.additional_config.as_deref())
            .unwrap_or_default(),
        set(c.and_then(|c| c.advanced_config.as_ref())),
        set(c.and_then(|c| c.env_config.as_ref())),
    )
}

/// The data of the server configuration ConfigMap of `cr`.
pub fn server_config_data(cr: &RabbitmqCluster) -> BTreeMap<String, String> {
    let (additional, advanced, env) = user_config(cr);
    let mut data: BTreeMap<String, String> = [
        (
            "operatorDefaults.conf".to_string(),
            operator_defaults_conf(cr),
        ),
        (
            "userDefinedConfiguration.conf".to_string(),
            additional.to_string(),
        ),
    ]
    .into();
    if let Some(a) = advanced {
        data.insert("advanced.config".into(), a.into());
    }
    if let Some(e) = env {
        data.insert("rabbitmq-env.conf".into(), e.into());
    }
    data
}

/// 64-bit FNV-1a, written out so that the hash is the same on every platform and release.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            // a separator byte that the parts' text never holds
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The hash of `cr`'s user-supplied server configuration that the pod template carries (16
/// hex digits): `userDefinedConfiguration.conf`, `advanced.config` and `rabbitmq-env.conf`.
pub fn config_hash(cr: &RabbitmqCluster) -> String {
    let (additional, advanced, env) = user_config(cr);
    let opt = |o: Option<&str>| o.map(|s| format!("+{s}")).unwrap_or_default();
    format!("{:016x}", fnv1a(&[additional, &opt(advanced), &opt(env)]))
}

fn desired_server_config_map(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&ConfigMap {
        metadata: meta(cr),
        data: Some(server_config_data(cr)),
        ..Default::default()
    })
}

fn desired_service_account(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&ServiceAccount {
        metadata: meta(cr),
        ..Default::default()
    })
}

/// The Role's rules: get endpoints (peer discovery), create events.
pub fn role_rules() -> Vec<PolicyRule> {
    vec![
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["endpoints".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        },
        PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["events".into()]),
            verbs: vec!["create".into()],
            ..Default::default()
        },
    ]
}

fn desired_role(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&Role {
        metadata: meta(cr),
        rules: Some(role_rules()),
    })
}

/// The RoleBinding's role reference and subjects.
pub fn role_binding(cr: &RabbitmqCluster) -> RoleBinding {
    RoleBinding {
        metadata: meta(cr),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: role_name(cr),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: service_account_name(cr),
            namespace: Some(cr_namespace(cr).to_string()),
            ..Default::default()
        }]),
    }
}

fn desired_role_binding(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&role_binding(cr))
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..Default::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn key_to_path(key: &str, path: &str) -> KeyToPath {
    KeyToPath {
        key: key.into(),
        path: path.into(),
        ..Default::default()
    }
}

/// Where the pods read their configuration (the environment variables RabbitMQ reads; the
/// end-to-end test starts a real node with the same variables pointing into a temporary
/// folder).
pub const SERVER_CONF_DIR: &str = "/etc/rabbitmq/server-conf";

/// The StatefulSet of `cr`.
pub fn stateful_set(cr: &RabbitmqCluster) -> StatefulSet {
    let spec = &cr.spec;
    let mut annotations = spec.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash(cr));
    let setup = Container {
        name: "setup-container".into(),
        image: Some(spec.image.clone()),
        command: Some(vec![
            "sh".into(),
            "-c".into(),
            "cp /tmp/erlang-cookie-secret/.erlang.cookie /var/lib/rabbitmq/.erlang.cookie && \
             chmod 600 /var/lib/rabbitmq/.erlang.cookie && \
             cp /tmp/rabbitmq-plugins/enabled_plugins /operator/enabled_plugins"
                .into(),
        ]),
        volume_mounts: Some(vec![
            mount("plugins-conf", "/tmp/rabbitmq-plugins/"),
            mount("rabbitmq-erlang-cookie", "/var/lib/rabbitmq/"),
            mount("erlang-cookie-secret", "/tmp/erlang-cookie-secret/"),
            mount("rabbitmq-plugins", "/operator"),
        ]),
        ..Default::default()
    };
    let rabbitmq = Container {
        name: "rabbitmq".into(),
        image: Some(spec.image.clone()),
        env: Some(vec![
            env_field("MY_POD_NAME", "metadata.name"),
            env_field("MY_POD_NAMESPACE", "metadata.namespace"),
            env("K8S_SERVICE_NAME", &headless_service_name(cr)),
            env("RABBITMQ_USE_LONGNAME", "true"),
            env(
                "RABBITMQ_NODENAME",
                "rabbit@$(MY_POD_NAME).$(K8S_SERVICE_NAME).$(MY_POD_NAMESPACE)",
            ),
            env(
                "K8S_HOSTNAME_SUFFIX",
                ".$(K8S_SERVICE_NAME).$(MY_POD_NAMESPACE)",
            ),
            env("RABBITMQ_ENABLED_PLUGINS_FILE", "/operator/enabled_plugins"),
            env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                &format!("{SERVER_CONF_DIR}/advanced.config"),
            ),
            env(
                "RABBITMQ_CONF_ENV_FILE",
                &format!("{SERVER_CONF_DIR}/rabbitmq-env.conf"),
            ),
        ]),
        ports: Some(vec![
            container_port("epmd", EPMD_PORT),
            container_port("amqp", AMQP_PORT),
            container_port("management", MANAGEMENT_PORT),
            container_port("prometheus", PROMETHEUS_PORT),
        ]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String("amqp".into()),
                ..Default::default()
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(3),
            success_threshold: Some(1),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            mount("persistence", "/var/lib/rabbitmq/mnesia/"),
            mount("rabbitmq-erlang-cookie", "/var/lib/rabbitmq/"),
            mount("rabbitmq-plugins", "/operator"),
            mount("rabbitmq-confd", "/etc/rabbitmq/conf.d/"),
            mount("server-conf", SERVER_CONF_DIR),
        ]),
        resources: spec.resources.clone(),
        ..Default::default()
    };
    let volumes = vec![
        Volume {
            name: "plugins-conf".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: plugins_config_map_name(cr),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "rabbitmq-confd".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: server_config_map_name(cr),
                            items: Some(vec![
                                key_to_path("operatorDefaults.conf", "10-operatorDefaults.conf"),
                                key_to_path(
                                    "userDefinedConfiguration.conf",
                                    "90-userDefinedConfiguration.conf",
                                ),
                            ]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        secret: Some(SecretProjection {
                            name: default_user_name(cr),
                            items: Some(vec![key_to_path(
                                DEFAULT_USER_CONF_KEY,
                                "11-default_user.conf",
                            )]),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "server-conf".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: server_config_map_name(cr),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "rabbitmq-erlang-cookie".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "erlang-cookie-secret".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(erlang_cookie_name(cr)),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "rabbitmq-plugins".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("persistence".into()),
            labels: Some(selector_labels(cr)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(
                    [(
                        "storage".to_string(),
                        Quantity(spec.persistence.storage.clone()),
                    )]
                    .into(),
                ),
                ..Default::default()
            }),
            storage_class_name: spec.persistence.storage_class_name.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    StatefulSet {
        metadata: meta(cr),
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas),
            service_name: Some(headless_service_name(cr)),
            pod_management_policy: Some(spec.pod_management_policy.clone()),
            persistent_volume_claim_retention_policy: spec
                .persistent_volume_claim_retention_policy
                .clone(),
            selector: LabelSelector {
                match_labels: Some(selector_labels(cr)),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels(cr)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    init_containers: Some(vec![setup]),
                    containers: vec![rabbitmq],
                    volumes: Some(volumes),
                    service_account_name: Some(service_account_name(cr)),
                    security_context: Some(PodSecurityContext {
                        fs_group: Some(0),
                        run_as_user: Some(999),
                        run_as_group: Some(999),
                        ..Default::default()
                    }),
                    termination_grace_period_seconds: Some(604_800),
                    affinity: spec.affinity.clone(),
                    tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![claim]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn desired_stateful_set(cr: &RabbitmqCluster, _: &Facts) -> Result<DynamicObject, String> {
    to_dynamic(&stateful_set(cr))
}

/// `spec.replicas` of a stored StatefulSet (1, the API server's default, when absent).
pub fn stateful_set_replicas(sts: &DynamicObject) -> i64 {
    sts.spec()
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Ready replicas reported in a StatefulSet's status (0 when absent).
pub fn ready_replicas(sts: &DynamicObject) -> i64 {
    sts.status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn record_ready_replicas(sts: &DynamicObject, facts: &mut Facts) {
    facts.insert(FACT_READY, ready_replicas(sts).to_string());
}

fn desired_status(_: &RabbitmqCluster, facts: &Facts) -> Value {
    let ready: i64 = facts
        .get(FACT_READY)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    json!({ "readyReplicas": ready })
}

/// The headless Service step.
pub const HEADLESS_SERVICE: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "headless-service",
    kind: Kind::of::<Service>,
    name: headless_service_name,
    desired: desired_headless_service,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The client Service step.
pub const CLIENT_SERVICE: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "client-service",
    kind: Kind::of::<Service>,
    name: client_service_name,
    desired: desired_client_service,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The Erlang cookie Secret step (a [`GENERATED`] Secret).
pub const ERLANG_COOKIE: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "erlang-cookie",
    kind: Kind::of::<Secret>,
    name: erlang_cookie_name,
    desired: desired_erlang_cookie,
    merge: chain::merge_desired,
    record: forget_generated,
    adopt: Adopt::Never,
};

/// The default-user Secret step (a [`GENERATED`] Secret).
pub const DEFAULT_USER: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "default-user",
    kind: Kind::of::<Secret>,
    name: default_user_name,
    desired: desired_default_user,
    merge: chain::merge_desired,
    record: forget_generated,
    adopt: Adopt::Never,
};

/// The plugins ConfigMap step. ConfigMaps are written whole ([`chain::replace_body`]), so a
/// key the spec no longer asks for (e.g. `advanced.config`) is removed.
pub const PLUGINS_CONFIG_MAP: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "plugins-conf",
    kind: Kind::of::<ConfigMap>,
    name: plugins_config_map_name,
    desired: desired_plugins_config_map,
    merge: chain::replace_body,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The server configuration ConfigMap step.
pub const SERVER_CONFIG_MAP: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "server-conf",
    kind: Kind::of::<ConfigMap>,
    name: server_config_map_name,
    desired: desired_server_config_map,
    merge: chain::replace_body,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The ServiceAccount step.
pub const SERVICE_ACCOUNT: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "service-account",
    kind: Kind::of::<ServiceAccount>,
    name: service_account_name,
    desired: desired_service_account,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The Role step.
pub const ROLE: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "role",
    kind: Kind::of::<Role>,
    name: role_name,
    desired: desired_role,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The RoleBinding step.
pub const ROLE_BINDING: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "role-binding",
    kind: Kind::of::<RoleBinding>,
    name: role_binding_name,
    desired: desired_role_binding,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The StatefulSet step (guarded by [`refuses_scale_down`] in [`rabbitmq_step`]).
pub const STATEFUL_SET: ManagedObject<RabbitmqCluster> = ManagedObject {
    label: "statefulset",
    kind: Kind::of::<StatefulSet>,
    name: stateful_set_name,
    desired: desired_stateful_set,
    merge: chain::merge_desired,
    record: record_ready_replicas,
    adopt: Adopt::Never,
};

/// The status step.
pub const STATUS: StatusStep<RabbitmqCluster> = StatusStep {
    status: desired_status,
};

/// A step of the RabbitMQ chain.
pub type RmqStep = Step<RabbitmqCluster, RandomRequest, RandomResponse>;

/// Every step of a RabbitMQ reconcile, in order.
pub const STEPS: &[RmqStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::Object(ERLANG_COOKIE),
    Step::Object(DEFAULT_USER),
    Step::Object(PLUGINS_CONFIG_MAP),
    Step::Object(SERVER_CONFIG_MAP),
    Step::Object(SERVICE_ACCOUNT),
    Step::Object(ROLE),
    Step::Object(ROLE_BINDING),
    Step::Object(STATEFUL_SET),
    Step::Status(STATUS),
];

/// A managed Secret whose data holds random values: the step's label, and the facts that
/// hold the values from the random source's answer until the Secret is created.
pub struct GeneratedSecret {
    /// Label of the [`ManagedObject`] step.
    pub label: &'static str,
    /// Facts receiving the random values, in the order of the answer.
    pub facts: &'static [&'static str],
}

/// The generated Secrets.
pub const GENERATED: &[GeneratedSecret] = &[
    GeneratedSecret {
        label: ERLANG_COOKIE.label,
        facts: &[FACT_COOKIE],
    },
    GeneratedSecret {
        label: DEFAULT_USER.label,
        facts: &[FACT_USERNAME, FACT_PASSWORD],
    },
];

fn owner_of(cr: &RabbitmqCluster) -> Option<Owner> {
    chain::owner_of(cr)
}

/// True when the StatefulSet `existing` has more replicas than `cr` asks for: writing it
/// from `cr` would scale the cluster down. [`rabbitmq_step`] then fails the reconcile
/// without writing.
pub fn refuses_scale_down(cr: &RabbitmqCluster, existing: &DynamicObject) -> bool {
    stateful_set_replicas(existing) > i64::from(cr.spec.replicas)
}

fn fail<Q>(mut s: ChainState, why: String) -> (ChainState, Option<Request<Q>>) {
    s.phase = Phase::Error(why);
    (s, None)
}

/// What [`rabbitmq_step`] adds to the plain chain (the broken variants switch parts off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guards {
    /// Fail instead of writing a StatefulSet with fewer replicas than the one read.
    pub no_scale_down: bool,
}

/// One `reconcile_core` step of the RabbitMQ controller over `steps`: [`chain::run_step`],
/// plus the generated Secrets and (with `guards.no_scale_down`) the scale-down refusal (see
/// the module documentation).
pub fn rabbitmq_step(
    steps: &[RmqStep],
    guards: Guards,
    cr: &RabbitmqCluster,
    resp: Option<Response<RandomResponse>>,
    mut s: ChainState,
) -> (ChainState, Option<Request<RandomRequest>>) {
    let current = match steps.get(s.step) {
        Some(Step::Object(m)) => Some(m),
        _ => None,
    };
    if let Some(m) = current {
        if let Some(g) = GENERATED.iter().find(|g| g.label == m.label) {
            let have_values = g.facts.iter().all(|f| s.facts.contains_key(f));
            match (&s.phase, &resp) {
                // The Secret does not exist: fresh values first.
                (Phase::AwaitGet, Some(Response::Kube(KubeResponse::Get(Err(e)))))
                    if e.is_not_found() && !have_values =>
                {
                    s.phase = Phase::AwaitExternal;
                    let req = RandomRequest::Fresh {
                        namespace: cr_namespace(cr).to_string(),
                        secret: (m.name)(cr),
                        count: g.facts.len() as u8,
                    };
                    return (s, Some(Request::External(req)));
                }
                (Phase::AwaitExternal, Some(Response::External(RandomResponse::Fresh(r)))) => {
                    return match r {
                        Ok(values) if values.len() == g.facts.len() => {
                            for (f, v) in g.facts.iter().zip(values) {
                                s.facts.insert(f, v.clone());
                            }
                            // Continue as the chain does after a NotFound: create the Secret
                            // (now with the values).
                            s.phase = Phase::AwaitGet;
                            let not_found = ApiError::new(
                                ErrorReason::NotFound,
                                format!("{} not found", (m.name)(cr)),
                            );
                            chain::run_step(
                                steps,
                                cr,
                                Some(Response::Kube(KubeResponse::Get(Err(not_found)))),
                                s,
                            )
                        }
                        Ok(values) => {
                            let why = format!(
                                "{}: the random source answered {} values, not {}",
                                m.label,
                                values.len(),
                                g.facts.len()
                            );
                            fail(s, why)
                        }
                        Err(e) => fail(s, format!("{}: {e}", m.label)),
                    };
                }
                // An existing Secret of ours without its generated data cannot be repaired
                // without rotating the values: say so rather than report success.
                (Phase::AwaitGet, Some(Response::Kube(KubeResponse::Get(Ok(existing)))))
                    if !have_values
                        && owner_of(cr).is_some_and(|o| is_controlled_by(existing, &o))
                        && !generated_keys_present(m.label, existing) =>
                {
                    let why = format!(
                        "{}: {} exists but lacks its generated data; delete it to generate new values",
                        m.label,
                        existing.object_ref()
                    );
                    return fail(s, why);
                }
                _ => {}
            }
        }
        if guards.no_scale_down
            && m.label == STATEFUL_SET.label
            && s.phase == Phase::AwaitGet
            && let Some(Response::Kube(KubeResponse::Get(Ok(existing)))) = &resp
            && refuses_scale_down(cr, existing)
        {
            let why = format!(
                "{}: refusing to scale {} down from {} to {} replicas (the custom resource read \
                 at the start of this reconcile is older than the StatefulSet)",
                m.label,
                existing.object_ref(),
                stateful_set_replicas(existing),
                cr.spec.replicas
            );
            return fail(s, why);
        }
    }
    chain::run_step(steps, cr, resp, s)
}

/// The keys a generated Secret must hold (non-empty) to count as generated.
pub fn generated_keys(label: &str) -> &'static [&'static str] {
    if label == ERLANG_COOKIE.label {
        &[COOKIE_KEY]
    } else if label == DEFAULT_USER.label {
        &[USERNAME_KEY, PASSWORD_KEY, DEFAULT_USER_CONF_KEY]
    } else {
        &[]
    }
}

/// The base64 value of `key` in a Secret's `data`, if present and non-empty.
pub fn secret_data<'a>(secret: &'a DynamicObject, key: &str) -> Option<&'a str> {
    secret
        .body()
        .get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

fn generated_keys_present(label: &str, secret: &DynamicObject) -> bool {
    generated_keys(label)
        .iter()
        .all(|k| secret_data(secret, k).is_some())
}

/// The RabbitMQ controller.
pub struct RabbitmqController;

impl ChainReconciler for RabbitmqController {
    type R = RabbitmqCluster;
    type ExternalRequest = RandomRequest;
    type ExternalResponse = RandomResponse;

    fn steps() -> &'static [RmqStep] {
        STEPS
    }

    fn reconcile_step(
        cr: &RabbitmqCluster,
        resp: Option<Response<RandomResponse>>,
        state: ChainState,
    ) -> (ChainState, Option<Request<RandomRequest>>) {
        rabbitmq_step(
            STEPS,
            Guards {
                no_scale_down: true,
            },
            cr,
            resp,
            state,
        )
    }

    fn validate(cr: &RabbitmqCluster) -> Result<(), String> {
        crate::resource::validate_spec(&cr.spec)
    }
}
