//! The ZooKeeper reconciler: a chain of managed objects and one ZooKeeper API call.
//!
//! Steps, in order: the headless Service, the client Service, the admin-server Service, the
//! ConfigMap (`zoo.cfg`, `log4j.properties`, `log4j-quiet.properties`, `env.sh`), the
//! cluster-size znode (`/zookeeper-operator/<name>` = `CLUSTER_SIZE=<replicas>`, written
//! before the StatefulSet is created or resized), the StatefulSet (its pod template carries the
//! ConfigMap's resourceVersion, so a configuration change rolls the pods) and the status
//! (`readyReplicas` of the StatefulSet). Every child gets the CR as controller owner; an
//! existing child controlled by anyone else is never adopted (the reconcile fails instead).

use crate::resource::ZookeeperCluster;
use crate::zk::{ZkRequest, ZkResponse};
use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::chain::{
    self, Adopt, ChainReconciler, ExternalStep, Facts, ManagedObject, StatusStep, Step,
};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, ExecAction,
    Lifecycle, LifecycleHandler, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec,
    PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::json;
use std::collections::BTreeMap;

/// Annotation on the pod template holding the ConfigMap's resourceVersion.
pub const CONFIG_VERSION_ANNOTATION: &str = "zookeeper.anvil.dev/config-version";
/// Fact: resourceVersion of the ConfigMap as last read or written.
pub const FACT_CONFIG_VERSION: &str = "config-version";
/// Fact: ready replicas of the StatefulSet as last read or written.
pub const FACT_READY: &str = "ready-replicas";

fn cr_name(cr: &ZookeeperCluster) -> &str {
    cr.metadata.name.as_deref().unwrap_or_default()
}

fn cr_namespace(cr: &ZookeeperCluster) -> &str {
    cr.metadata.namespace.as_deref().unwrap_or_default()
}

/// Name of the headless Service (the StatefulSet's governing Service).
pub fn headless_service_name(cr: &ZookeeperCluster) -> String {
    format!("{}-headless", cr_name(cr))
}

/// Name of the client Service (the address of the ZooKeeper API).
pub fn client_service_name(cr: &ZookeeperCluster) -> String {
    format!("{}-client", cr_name(cr))
}

/// Name of the admin-server Service.
pub fn admin_server_service_name(cr: &ZookeeperCluster) -> String {
    format!("{}-admin-server", cr_name(cr))
}

/// Name of the ConfigMap.
pub fn config_map_name(cr: &ZookeeperCluster) -> String {
    format!("{}-configmap", cr_name(cr))
}

/// Name of the StatefulSet.
pub fn stateful_set_name(cr: &ZookeeperCluster) -> String {
    cr_name(cr).to_string()
}

/// Labels selecting the pods of `cr`.
pub fn selector_labels(cr: &ZookeeperCluster) -> BTreeMap<String, String> {
    [("app".to_string(), cr_name(cr).to_string())].into()
}

/// Labels on the pods of `cr`: the selector labels, `kind: ZookeeperMember` and `spec.labels`.
pub fn pod_labels(cr: &ZookeeperCluster) -> BTreeMap<String, String> {
    let mut labels = cr.spec.labels.clone();
    labels.insert("kind".into(), "ZookeeperMember".into());
    labels.extend(selector_labels(cr));
    labels
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        ..Default::default()
    }
}

fn service(
    cr: &ZookeeperCluster,
    ports: Vec<ServicePort>,
    headless: bool,
) -> Result<DynamicObject, String> {
    let svc = Service {
        metadata: ObjectMeta {
            labels: Some(selector_labels(cr)),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_string()),
            publish_not_ready_addresses: headless.then_some(true),
            ports: Some(ports),
            selector: Some(selector_labels(cr)),
            ..Default::default()
        }),
        ..Default::default()
    };
    DynamicObject::from_typed(&svc).map_err(|e| e.to_string())
}

fn desired_headless_service(cr: &ZookeeperCluster, _: &Facts) -> Result<DynamicObject, String> {
    let p = &cr.spec.ports;
    service(
        cr,
        vec![
            service_port("tcp-client", p.client),
            service_port("tcp-quorum", p.quorum),
            service_port("tcp-leader-election", p.leader_election),
            service_port("tcp-metrics", p.metrics),
            service_port("tcp-admin-server", p.admin_server),
        ],
        true,
    )
}

fn desired_client_service(cr: &ZookeeperCluster, _: &Facts) -> Result<DynamicObject, String> {
    service(
        cr,
        vec![service_port("tcp-client", cr.spec.ports.client)],
        false,
    )
}

fn desired_admin_server_service(cr: &ZookeeperCluster, _: &Facts) -> Result<DynamicObject, String> {
    service(
        cr,
        vec![service_port("tcp-admin-server", cr.spec.ports.admin_server)],
        false,
    )
}

/// `zoo.cfg` of `cr`.
pub fn zoo_cfg(cr: &ZookeeperCluster) -> String {
    let c = &cr.spec.conf;
    let p = &cr.spec.ports;
    format!(
        "4lw.commands.whitelist=cons, envi, conf, crst, srvr, stat, mntr, ruok\n\
         dataDir=/data\n\
         standaloneEnabled=false\n\
         reconfigEnabled=true\n\
         skipACL=yes\n\
         metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
         metricsProvider.httpPort={metrics}\n\
         metricsProvider.exportJvmInfo=true\n\
         initLimit={init}\n\
         syncLimit={sync}\n\
         tickTime={tick}\n\
         globalOutstandingLimit={gol}\n\
         preAllocSize={pre}\n\
         snapCount={snap}\n\
         commitLogCount={clc}\n\
         snapSizeLimitInKb={ssl}\n\
         maxCnxns={mc}\n\
         maxClientCnxns={mcc}\n\
         minSessionTimeout={minst}\n\
         maxSessionTimeout={maxst}\n\
         autopurge.snapRetainCount={src}\n\
         autopurge.purgeInterval={pi}\n\
         quorumListenOnAllIPs={qla}\n\
         admin.serverPort={admin}\n\
         dynamicConfigFile=/data/zoo.cfg.dynamic\n",
        metrics = p.metrics,
        init = c.init_limit,
        sync = c.sync_limit,
        tick = c.tick_time,
        gol = c.global_outstanding_limit,
        pre = c.pre_alloc_size,
        snap = c.snap_count,
        clc = c.commit_log_count,
        ssl = c.snap_size_limit_in_kb,
        mc = c.max_cnxns,
        mcc = c.max_client_cnxns,
        minst = c.min_session_timeout,
        maxst = c.max_session_timeout,
        src = c.auto_purge_snap_retain_count,
        pi = c.auto_purge_purge_interval,
        qla = c.quorum_listen_on_all_ips,
        admin = p.admin_server,
    )
}

const LOG4J: &str = "zookeeper.root.logger=CONSOLE\n\
zookeeper.console.threshold=INFO\n\
log4j.rootLogger=${zookeeper.root.logger}\n\
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
log4j.appender.CONSOLE.Threshold=${zookeeper.console.threshold}\n\
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n\n";

const LOG4J_QUIET: &str = "log4j.rootLogger=CONSOLE\n\
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
log4j.appender.CONSOLE.Threshold=ERROR\n\
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n\
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n\n";

/// `env.sh` of `cr` (read by the image's start, readiness and teardown scripts).
pub fn env_sh(cr: &ZookeeperCluster) -> String {
    let p = &cr.spec.ports;
    let name = cr_name(cr);
    format!(
        "#!/usr/bin/env bash\n\n\
         DOMAIN={headless}.{ns}.svc.cluster.local\n\
         QUORUM_PORT={quorum}\n\
         LEADER_PORT={leader}\n\
         CLIENT_HOST={client_host}\n\
         CLIENT_PORT={client}\n\
         ADMIN_SERVER_HOST={admin_host}\n\
         ADMIN_SERVER_PORT={admin}\n\
         CLUSTER_NAME={name}\n\
         CLUSTER_SIZE={size}\n",
        headless = headless_service_name(cr),
        ns = cr_namespace(cr),
        quorum = p.quorum,
        leader = p.leader_election,
        client_host = client_service_name(cr),
        client = p.client,
        admin_host = admin_server_service_name(cr),
        admin = p.admin_server,
        size = cr.spec.replicas,
    )
}

/// The data of the ConfigMap of `cr`.
pub fn config_map_data(cr: &ZookeeperCluster) -> BTreeMap<String, String> {
    [
        ("zoo.cfg".to_string(), zoo_cfg(cr)),
        ("log4j.properties".to_string(), LOG4J.to_string()),
        (
            "log4j-quiet.properties".to_string(),
            LOG4J_QUIET.to_string(),
        ),
        ("env.sh".to_string(), env_sh(cr)),
    ]
    .into()
}

fn desired_config_map(cr: &ZookeeperCluster, _: &Facts) -> Result<DynamicObject, String> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            labels: Some(selector_labels(cr)),
            ..Default::default()
        },
        data: Some(config_map_data(cr)),
        ..Default::default()
    };
    DynamicObject::from_typed(&cm).map_err(|e| e.to_string())
}

fn exec_probe(script: &str, initial_delay: i32, period: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![script.into()]),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(10),
        failure_threshold: Some(3),
        success_threshold: Some(1),
        ..Default::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..Default::default()
    }
}

/// The StatefulSet of `cr` whose pod template carries `config_version`.
pub fn stateful_set(cr: &ZookeeperCluster, config_version: &str) -> StatefulSet {
    let spec = &cr.spec;
    let p = &spec.ports;
    let mut annotations = spec.annotations.clone();
    annotations.insert(CONFIG_VERSION_ANNOTATION.into(), config_version.into());
    let mut volumes = vec![Volume {
        name: "conf".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map_name(cr),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let claims = if spec.persistence.enabled {
        Some(vec![PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                labels: Some(selector_labels(cr)),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(
                        [(
                            "storage".to_string(),
                            Quantity(spec.persistence.storage_size.clone()),
                        )]
                        .into(),
                    ),
                    ..Default::default()
                }),
                storage_class_name: spec.persistence.storage_class_name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }])
    } else {
        volumes.push(Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        });
        None
    };
    StatefulSet {
        metadata: ObjectMeta {
            labels: Some(selector_labels(cr)),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas),
            service_name: Some(headless_service_name(cr)),
            pod_management_policy: Some("OrderedReady".into()),
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
                    containers: vec![Container {
                        name: "zookeeper".into(),
                        image: Some(spec.image.clone()),
                        image_pull_policy: Some("IfNotPresent".into()),
                        command: Some(vec!["/usr/local/bin/zookeeperStart.sh".into()]),
                        ports: Some(vec![
                            container_port("client", p.client),
                            container_port("quorum", p.quorum),
                            container_port("leader-election", p.leader_election),
                            container_port("metrics", p.metrics),
                            container_port("admin-server", p.admin_server),
                        ]),
                        readiness_probe: Some(exec_probe("zookeeperReady.sh", 10, 10)),
                        liveness_probe: Some(exec_probe("zookeeperLive.sh", 10, 10)),
                        lifecycle: Some(Lifecycle {
                            pre_stop: Some(LifecycleHandler {
                                exec: Some(ExecAction {
                                    command: Some(vec!["zookeeperTeardown.sh".into()]),
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        volume_mounts: Some(vec![
                            VolumeMount {
                                name: "data".into(),
                                mount_path: "/data".into(),
                                ..Default::default()
                            },
                            VolumeMount {
                                name: "conf".into(),
                                mount_path: "/conf".into(),
                                ..Default::default()
                            },
                        ]),
                        resources: spec.resources.clone(),
                        ..Default::default()
                    }],
                    volumes: Some(volumes),
                    affinity: spec.affinity.clone(),
                    tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
                    node_selector: (!spec.node_selector.is_empty())
                        .then(|| spec.node_selector.clone()),
                    ..Default::default()
                }),
            },
            volume_claim_templates: claims,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn desired_stateful_set(cr: &ZookeeperCluster, facts: &Facts) -> Result<DynamicObject, String> {
    let version = facts
        .get(FACT_CONFIG_VERSION)
        .ok_or("the ConfigMap's resourceVersion is not known yet")?;
    DynamicObject::from_typed(&stateful_set(cr, version)).map_err(|e| e.to_string())
}

fn record_config_version(cm: &DynamicObject, facts: &mut Facts) {
    if let Some(rv) = cm.resource_version() {
        facts.insert(FACT_CONFIG_VERSION, rv.to_string());
    }
}

/// Ready replicas reported in a StatefulSet's status (0 when absent).
pub fn ready_replicas(sts: &DynamicObject) -> i64 {
    sts.status()
        .and_then(|s| s.get("readyReplicas"))
        .and_then(|r| r.as_i64())
        .unwrap_or(0)
}

fn record_ready_replicas(sts: &DynamicObject, facts: &mut Facts) {
    facts.insert(FACT_READY, ready_replicas(sts).to_string());
}

fn desired_status(_: &ZookeeperCluster, facts: &Facts) -> serde_json::Value {
    let ready: i64 = facts
        .get(FACT_READY)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    json!({ "readyReplicas": ready })
}

/// The cluster-size request of `cr`.
pub fn set_cluster_size(cr: &ZookeeperCluster, _: &Facts) -> ZkRequest {
    ZkRequest::SetClusterSize {
        namespace: cr_namespace(cr).to_string(),
        name: cr_name(cr).to_string(),
        client_port: cr.spec.ports.client,
        size: cr.spec.replicas,
    }
}

fn check_cluster_size(
    _: &ZookeeperCluster,
    resp: &ZkResponse,
    _: &mut Facts,
) -> Result<(), String> {
    match resp {
        ZkResponse::SetClusterSize(Ok(())) => Ok(()),
        ZkResponse::SetClusterSize(Err(e)) => Err(e.to_string()),
    }
}

/// The headless Service step.
pub const HEADLESS_SERVICE: ManagedObject<ZookeeperCluster> = ManagedObject {
    label: "headless-service",
    kind: Kind::of::<Service>,
    name: headless_service_name,
    desired: desired_headless_service,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The client Service step.
pub const CLIENT_SERVICE: ManagedObject<ZookeeperCluster> = ManagedObject {
    label: "client-service",
    kind: Kind::of::<Service>,
    name: client_service_name,
    desired: desired_client_service,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The admin-server Service step.
pub const ADMIN_SERVER_SERVICE: ManagedObject<ZookeeperCluster> = ManagedObject {
    label: "admin-server-service",
    kind: Kind::of::<Service>,
    name: admin_server_service_name,
    desired: desired_admin_server_service,
    merge: chain::merge_desired,
    record: chain::record_nothing,
    adopt: Adopt::Never,
};

/// The ConfigMap step.
pub const CONFIG_MAP: ManagedObject<ZookeeperCluster> = ManagedObject {
    label: "configmap",
    kind: Kind::of::<ConfigMap>,
    name: config_map_name,
    desired: desired_config_map,
    merge: chain::merge_desired,
    record: record_config_version,
    adopt: Adopt::Never,
};

/// The cluster-size znode step.
pub const ZNODE: ExternalStep<ZookeeperCluster, ZkRequest, ZkResponse> = ExternalStep {
    label: "znode",
    request: set_cluster_size,
    response: check_cluster_size,
};

/// The StatefulSet step.
pub const STATEFUL_SET: ManagedObject<ZookeeperCluster> = ManagedObject {
    label: "statefulset",
    kind: Kind::of::<StatefulSet>,
    name: stateful_set_name,
    desired: desired_stateful_set,
    merge: chain::merge_desired,
    record: record_ready_replicas,
    adopt: Adopt::Never,
};

/// The status step.
pub const STATUS: StatusStep<ZookeeperCluster> = StatusStep {
    status: desired_status,
};

/// A step of the ZooKeeper chain.
pub type ZkStep = Step<ZookeeperCluster, ZkRequest, ZkResponse>;

/// Every step of a ZooKeeper reconcile, in order.
pub const STEPS: &[ZkStep] = &[
    Step::Object(HEADLESS_SERVICE),
    Step::Object(CLIENT_SERVICE),
    Step::Object(ADMIN_SERVER_SERVICE),
    Step::Object(CONFIG_MAP),
    Step::External(ZNODE),
    Step::Object(STATEFUL_SET),
    Step::Status(STATUS),
];

/// The ZooKeeper controller.
pub struct ZookeeperController;

impl ChainReconciler for ZookeeperController {
    type R = ZookeeperCluster;
    type ExternalRequest = ZkRequest;
    type ExternalResponse = ZkResponse;

    fn steps() -> &'static [ZkStep] {
        STEPS
    }

    fn validate(cr: &ZookeeperCluster) -> Result<(), String> {
        crate::resource::validate_spec(&cr.spec)
    }
}
