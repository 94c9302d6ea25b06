//! Shim overhead per reconcile (DESIGN §8): `anvil_shim::reconcile_once::<DemoController>`
//! against a plain kube-rs function issuing the same requests with typed `kube::Api` calls, on
//! the same API server in the same run.
//!
//! ```text
//! cargo run --release -p anvil-shim --example shim_overhead -- N [ROUNDS]
//! ```
//!
//! Starts a private control plane (`anvil_testenv::ControlPlane::start()`), applies the demo
//! CRD, creates 2N `DemoApp`s in a fresh namespace (N for each side), then for each object a
//! first reconcile (creates the ConfigMap, the StatefulSet and the status: 4 GETs + 3 writes)
//! and ROUNDS (default 3) steady-state reconciles (4 GETs, no writes). Shim and plain calls
//! alternate, and which one goes first alternates per object, so both see the same API server
//! load. Prints one JSON line with per-reconcile mean/p50/p95 (milliseconds) and the ratios
//! shim/plain.

use std::time::{Duration, Instant};

use anvil_demo::reconciler::{
    CONFIG_VERSION_ANNOTATION, config_map_name, pod_labels, stateful_set_name,
};
use anvil_demo::{DemoApp, DemoAppSpec, DemoAppStatus, DemoController};
use anvil_shim::{NoExternalShim, Outcome, ShimConfig, reconcile_once};
use anvil_testenv::ControlPlane;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::{Client, Resource};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The plain kube-rs reconcile of `name`: get CR; get ConfigMap -> create; get StatefulSet ->
/// create (pod template annotated with the ConfigMap's resourceVersion); get CR ->
/// replace_status. Returns the number of writes.
async fn plain_first(client: &Client, ns: &str, name: &str) -> Result<usize, BoxError> {
    let apps: Api<DemoApp> = Api::namespaced(client.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let mut writes = 0;

    let cr = apps.get(name).await?;
    let owner = cr.controller_owner_ref(&()).ok_or("CR without uid")?;

    let cm = match cms.get_opt(&config_map_name(&cr)).await? {
        Some(cm) => cm,
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(config_map_name(&cr)),
                    namespace: Some(ns.into()),
                    labels: Some(pod_labels(&cr)),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                data: Some([("message".to_string(), cr.spec.message.clone())].into()),
                ..Default::default()
            };
            writes += 1;
            cms.create(&PostParams::default(), &cm).await?
        }
    };
    let version = cm.metadata.resource_version.clone().unwrap_or_default();

    let sts = match stss.get_opt(&stateful_set_name(&cr)).await? {
        Some(sts) => sts,
        None => {
            let sts = StatefulSet {
                metadata: ObjectMeta {
                    name: Some(stateful_set_name(&cr)),
                    namespace: Some(ns.into()),
                    labels: Some(pod_labels(&cr)),
                    owner_references: Some(vec![owner]),
                    ..Default::default()
                },
                spec: Some(StatefulSetSpec {
                    replicas: Some(cr.spec.replicas),
                    service_name: Some(stateful_set_name(&cr)),
                    selector: LabelSelector {
                        match_labels: Some(pod_labels(&cr)),
                        ..Default::default()
                    },
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(pod_labels(&cr)),
                            annotations: Some(
                                [(CONFIG_VERSION_ANNOTATION.to_string(), version)].into(),
                            ),
                            ..Default::default()
                        }),
                        spec: Some(PodSpec {
                            containers: vec![Container {
                                name: "app".into(),
                                image: Some(cr.spec.image.clone()),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }),
                    },
                    ..Default::default()
                }),
                ..Default::default()
            };
            writes += 1;
            stss.create(&PostParams::default(), &sts).await?
        }
    };
    let ready = sts.status.and_then(|s| s.ready_replicas).unwrap_or(0);

    let mut current = apps.get(name).await?;
    let status = DemoAppStatus {
        ready_replicas: ready,
    };
    if current.status.as_ref() != Some(&status) {
        current.status = Some(status);
        apps.replace_status(name, &PostParams::default(), &current)
            .await?;
        writes += 1;
    }
    Ok(writes)
}

/// The plain steady-state reconcile: the same four GETs, and the checks that decide that no
/// write is needed. Returns the number of writes that would be needed (0 at the fixed point).
async fn plain_steady(client: &Client, ns: &str, name: &str) -> Result<usize, BoxError> {
    let apps: Api<DemoApp> = Api::namespaced(client.clone(), ns);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let stss: Api<StatefulSet> = Api::namespaced(client.clone(), ns);
    let mut needed = 0;
    let cr = apps.get(name).await?;
    let cm = cms.get(&config_map_name(&cr)).await?;
    if cm.data.as_ref().and_then(|d| d.get("message")) != Some(&cr.spec.message) {
        needed += 1;
    }
    let sts = stss.get(&stateful_set_name(&cr)).await?;
    let annotation = sts
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(CONFIG_VERSION_ANNOTATION));
    if annotation != cm.metadata.resource_version.as_ref() {
        needed += 1;
    }
    let ready = sts.status.and_then(|s| s.ready_replicas).unwrap_or(0);
    let current = apps.get(name).await?;
    if current.status.map(|s| s.ready_replicas) != Some(ready) {
        needed += 1;
    }
    Ok(needed)
}

async fn shim(client: &Client, cfg: &ShimConfig, ns: &str, name: &str) -> Result<usize, BoxError> {
    match reconcile_once::<DemoController>(client, cfg, &NoExternalShim, ns, name).await? {
        Outcome::Done { writes, .. } => Ok(writes),
        other => Err(format!("shim reconcile of {name}: {other:?}").into()),
    }
}

async fn create_app(client: &Client, ns: &str, name: &str) -> Result<(), BoxError> {
    let mut app = DemoApp::new(
        name,
        DemoAppSpec {
            replicas: 0,
            image: "registry.example/demo:1".into(),
            message: "hello".into(),
        },
    );
    app.metadata.namespace = Some(ns.into());
    Api::<DemoApp>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

#[derive(Default)]
struct Samples {
    times: Vec<Duration>,
    writes: usize,
}

impl Samples {
    fn push(&mut self, d: Duration, writes: usize) {
        self.times.push(d);
        self.writes += writes;
    }

    fn stats(&self) -> (f64, f64, f64) {
        let mut ms: Vec<f64> = self.times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
        let pct = |p: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((p / 100.0) * (ms.len() - 1) as f64).round() as usize;
            ms[i.min(ms.len() - 1)]
        };
        (mean, pct(50.0), pct(95.0))
    }

    fn json(&self) -> serde_json::Value {
        let (mean, p50, p95) = self.stats();
        json!({
            "n": self.times.len(),
            "writes": self.writes,
            "mean_ms": round3(mean),
            "p50_ms": round3(p50),
            "p95_ms": round3(p95),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn ratios(shim: &Samples, plain: &Samples) -> serde_json::Value {
    let (sm, s50, s95) = shim.stats();
    let (pm, p50, p95) = plain.stats();
    json!({
        "mean": round3(sm / pm),
        "p50": round3(s50 / p50),
        "p95": round3(s95 / p95),
    })
}

async fn timed<F, Fut>(samples: &mut Samples, f: F) -> Result<(), BoxError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<usize, BoxError>>,
{
    let start = Instant::now();
    let writes = f().await?;
    samples.push(start.elapsed(), writes);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);

    let cp = ControlPlane::start()?;
    cp.apply_crd(anvil_demo::crd()).await?;
    let client = cp.client().await?;
    let ns = cp.fresh_namespace("shim-overhead").await?;
    let cfg = ShimConfig::new("anvil-shim-overhead").with_namespace(&ns);

    // Objects, plus one warm-up object per side (connection setup, first-use caches).
    for i in 0..=n {
        create_app(&client, &ns, &format!("shim-{i}")).await?;
        create_app(&client, &ns, &format!("plain-{i}")).await?;
    }
    shim(&client, &cfg, &ns, &format!("shim-{n}")).await?;
    plain_first(&client, &ns, &format!("plain-{n}")).await?;

    let (mut shim_first, mut plain_first_s) = (Samples::default(), Samples::default());
    let (mut shim_steady, mut plain_steady_s) = (Samples::default(), Samples::default());
    let started = Instant::now();
    for i in 0..n {
        let (s, p) = (format!("shim-{i}"), format!("plain-{i}"));
        if i % 2 == 0 {
            timed(&mut shim_first, || shim(&client, &cfg, &ns, &s)).await?;
            timed(&mut plain_first_s, || plain_first(&client, &ns, &p)).await?;
        } else {
            timed(&mut plain_first_s, || plain_first(&client, &ns, &p)).await?;
            timed(&mut shim_first, || shim(&client, &cfg, &ns, &s)).await?;
        }
    }
    for r in 0..rounds {
        for i in 0..n {
            let (s, p) = (format!("shim-{i}"), format!("plain-{i}"));
            if (i + r) % 2 == 0 {
                timed(&mut shim_steady, || shim(&client, &cfg, &ns, &s)).await?;
                timed(&mut plain_steady_s, || plain_steady(&client, &ns, &p)).await?;
            } else {
                timed(&mut plain_steady_s, || plain_steady(&client, &ns, &p)).await?;
                timed(&mut shim_steady, || shim(&client, &cfg, &ns, &s)).await?;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    let line = json!({
        "objects_per_side": n,
        "steady_rounds": rounds,
        "requests_first": "4 GET + 3 writes",
        "requests_steady": "4 GET",
        "shim_first": shim_first.json(),
        "plain_first": plain_first_s.json(),
        "shim_steady": shim_steady.json(),
        "plain_steady": plain_steady_s.json(),
        "ratio_first": ratios(&shim_first, &plain_first_s),
        "ratio_steady": ratios(&shim_steady, &plain_steady_s),
        "seconds": round3(seconds),
        "control_plane_startup_s": round3(cp.startup_duration().as_secs_f64()),
    });
    println!("{line}");
    Ok(())
}
