//! Load on the real control plane: many custom resources reconciled by one controller
//! process, measured (time to converge, reconciles, reconcile latency, CPU time, peak RSS).
//!
//! Shared by the benchmark `benches/load.rs` (100 `DemoApp`s, 20 `ZookeeperCluster`s, and a
//! plain kube-rs controller doing the demo's writes) and the correctness test `tests/load.rs`
//! (fewer objects, no timing assertions). Include it with
//! `#[path = ".../support/load.rs"] mod load;` next to `mod support;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anvil_demo::{DemoApp, DemoAppSpec};
use anvil_objects::Kind;
use anvil_testenv::ControlPlane;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde_json::json;

use crate::support::{Running, anvil, free_port, http_get, snapshot};

/// Upper bounds (seconds) of the shim's `anvil_reconcile_duration_seconds` buckets: 1 ms
/// doubled 15 times (crates/shim/src/telemetry.rs), then `+Inf`.
pub fn bucket_bounds() -> Vec<f64> {
    let mut b: Vec<f64> = (0..16).map(|i| 0.001 * f64::from(1u32 << i)).collect();
    b.push(f64::INFINITY);
    b
}

/// Reconciles seen so far: how many, the cumulative histogram over [`bucket_bounds`], and
/// (when measured directly) every latency.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Reconciles completed.
    pub count: f64,
    /// Cumulative counts per bucket of [`bucket_bounds`].
    pub cumulative: Vec<f64>,
    /// Every latency, when the controller reports them one by one.
    pub exact: Option<Vec<Duration>>,
}

impl Stats {
    fn from_samples(samples: &[Duration]) -> Stats {
        let bounds = bucket_bounds();
        let cumulative = bounds
            .iter()
            .map(|le| samples.iter().filter(|d| d.as_secs_f64() <= *le).count() as f64)
            .collect();
        Stats {
            count: samples.len() as f64,
            cumulative,
            exact: Some(samples.to_vec()),
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Stats) -> Stats {
        let cumulative = self
            .cumulative
            .iter()
            .enumerate()
            .map(|(i, c)| c - before.cumulative.get(i).copied().unwrap_or(0.0))
            .collect();
        let exact = match (&self.exact, &before.exact) {
            (Some(now), Some(then)) => Some(now[then.len().min(now.len())..].to_vec()),
            _ => None,
        };
        Stats {
            count: self.count - before.count,
            cumulative,
            exact,
        }
    }

    /// The `q` quantile estimated from the histogram like Prometheus' `histogram_quantile`
    /// (linear interpolation inside the bucket).
    pub fn histogram_quantile(&self, q: f64) -> Option<Duration> {
        let bounds = bucket_bounds();
        let total = *self.cumulative.last()?;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let i = self.cumulative.iter().position(|c| *c >= rank)?;
        let upper = bounds[i];
        let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
        if upper.is_infinite() {
            return Some(Duration::from_secs_f64(lower));
        }
        let below = if i == 0 { 0.0 } else { self.cumulative[i - 1] };
        let in_bucket = self.cumulative[i] - below;
        let frac = if in_bucket > 0.0 {
            (rank - below) / in_bucket
        } else {
            1.0
        };
        Some(Duration::from_secs_f64(lower + (upper - lower) * frac))
    }

    /// The exact `q` quantile (nearest rank), when every latency is known.
    pub fn exact_quantile(&self, q: f64) -> Option<Duration> {
        let mut v = self.exact.clone()?;
        if v.is_empty() {
            return None;
        }
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// Parses the shim's histogram for `controller` out of a `/metrics` page.
pub fn stats_from_metrics(text: &str, controller: &str) -> Stats {
    let label = format!("controller=\"{controller}\"");
    let bounds = bucket_bounds();
    let mut cumulative = vec![0.0; bounds.len()];
    let mut count = 0.0;
    for line in text.lines().filter(|l| l.contains(&label)) {
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if line.starts_with("anvil_reconcile_duration_seconds_count{") {
            count = value;
        } else if line.starts_with("anvil_reconcile_duration_seconds_bucket{") {
            let le = line
                .split("le=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default();
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            if let Some(i) = bounds
                .iter()
                .position(|b| (b.is_infinite() && le.is_infinite()) || (b - le).abs() < 1e-9)
            {
                cumulative[i] = value;
            }
        }
    }
    Stats {
        count,
        cumulative,
        exact: None,
    }
}

/// Resident set size of process `pid` from `/proc`: (peak `VmHWM`, current `VmRSS`) in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // USER_HZ, the unit of utime/stime, is 100 on Linux (x86_64, arm64).
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// One measured phase of a run.
#[derive(Clone, Debug)]
pub struct Phase {
    /// What happened (`create` or `update`).
    pub name: &'static str,
    /// Custom resources involved.
    pub crs: usize,
    /// From the start of the phase until every custom resource matched.
    pub converge: Duration,
    /// Reconciles completed in that time, with their latencies.
    pub stats: Stats,
    /// CPU time the controller process used in that time.
    pub cpu: Duration,
}

/// One controller's run: its phases and its memory.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Which controller (e.g. `anvil run demo`).
    pub controller: String,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// Peak resident set size of the controller process, KiB.
    pub peak_rss_kib: u64,
    /// Resident set size at the end, KiB.
    pub end_rss_kib: u64,
}

/// A `DemoApp` of the load runs (one replica; pods stay pending: no kubelet).
pub fn demo_app(name: &str, ns: &str, message: &str) -> DemoApp {
    let mut app = DemoApp::new(
        name,
        DemoAppSpec {
            replicas: 1,
            image: "nginx:1".into(),
            message: message.into(),
        },
    );
    app.metadata.namespace = Some(ns.to_string());
    app
}

/// Runs `f` on every item, at most 16 at a time.
async fn concurrently<T, F, Fut>(items: Vec<T>, f: F)
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    futures::stream::iter(items.into_iter().map(f))
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

/// Creates `count` `DemoApp`s `app-000`, ... in `ns`.
pub async fn create_demo_apps(client: &kube::Client, ns: &str, count: usize, message: &str) {
    let api = Api::<DemoApp>::namespaced(client.clone(), ns);
    concurrently((0..count).collect(), |i| {
        let api = api.clone();
        async move {
            let name = format!("app-{i:03}");
            api.create(&PostParams::default(), &demo_app(&name, ns, message))
                .await
                .unwrap_or_else(|e| panic!("creating DemoApp {name}: {e}"));
        }
    })
    .await;
}

/// Sets the message of `DemoApp`s `app-000` .. `app-<count-1>`.
pub async fn update_demo_apps(client: &kube::Client, ns: &str, count: usize, message: &str) {
    let api = Api::<DemoApp>::namespaced(client.clone(), ns);
    concurrently((0..count).collect(), |i| {
        let api = api.clone();
        async move {
            let name = format!("app-{i:03}");
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "message": message } })),
            )
            .await
            .unwrap_or_else(|e| panic!("patching DemoApp {name}: {e}"));
        }
    })
    .await;
}

/// How many of the `DemoApp`s in `ns` match the cluster (`current_state_matches`), of how
/// many.
pub async fn demo_converged(client: &kube::Client, ns: &str) -> (usize, usize) {
    let view = snapshot(
        client,
        ns,
        &[
            Kind::of::<DemoApp>(),
            Kind::of::<ConfigMap>(),
            Kind::of::<StatefulSet>(),
        ],
    )
    .await;
    let apps: Vec<DemoApp> = view
        .values()
        .filter(|o| o.kind() == &Kind::of::<DemoApp>())
        .filter_map(|o| o.to_typed().ok())
        .collect();
    let ok = apps
        .iter()
        .filter(|a| anvil_demo::current_state_matches(a, &view))
        .count();
    (ok, apps.len())
}

/// How many of the `ZookeeperCluster`s in `ns` match the cluster and the ZooKeeper server at
/// `zk`, of how many.
pub async fn zookeeper_converged(client: &kube::Client, ns: &str, zk: &str) -> (usize, usize) {
    use anvil_zookeeper::ZookeeperCluster;
    let view = snapshot(
        client,
        ns,
        &[
            Kind::of::<ZookeeperCluster>(),
            Kind::of::<Service>(),
            Kind::of::<ConfigMap>(),
            Kind::of::<StatefulSet>(),
        ],
    )
    .await;
    let Ok(znodes) = anvil_zookeeper::zk_client::read_cluster_size_znodes(zk).await else {
        return (0, usize::MAX);
    };
    let crs: Vec<ZookeeperCluster> = view
        .values()
        .filter(|o| o.kind() == &Kind::of::<ZookeeperCluster>())
        .filter_map(|o| o.to_typed().ok())
        .collect();
    let ok = crs
        .iter()
        .filter(|c| anvil_zookeeper::current_state_matches(c, &view, &znodes))
        .count();
    (ok, crs.len())
}

/// Polls `converged` every 200 ms until all `expected` objects match; panics with
/// `context()` after `timeout`. Returns the time since `since`.
pub async fn wait_converged<F, Fut>(
    what: &str,
    expected: usize,
    since: Instant,
    timeout: Duration,
    mut converged: F,
    context: impl Fn() -> String,
) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (usize, usize)>,
{
    loop {
        let (ok, total) = converged().await;
        if ok == expected && total == expected {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < timeout,
            "{what}: {ok} of {total} converged (want {expected}) after {timeout:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A controller under measurement.
pub trait Measured {
    /// Reconciles so far.
    fn stats(&self) -> Stats;
    /// The controller's process id (for CPU time and RSS).
    fn pid(&self) -> u32;
    /// What to show when something goes wrong.
    fn context(&self) -> String;
}

/// `anvil run <controller>` as a child process, measured through its `/metrics`.
pub struct AnvilProcess {
    /// The process.
    pub running: Running,
    /// Its metrics port.
    pub port: u16,
    /// The controller's name (the histogram's `controller` label).
    pub name: String,
}

impl AnvilProcess {
    /// Starts `anvil run <controller> --namespace <ns> <extra...>` with the admin kubeconfig
    /// and waits until `/readyz` answers 200.
    pub async fn start(cp: &ControlPlane, controller: &str, ns: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "anvil-load-{controller}-{}-{port}.log",
            std::process::id()
        ));
        let port_s = port.to_string();
        let mut args = vec![
            "run",
            controller,
            "--namespace",
            ns,
            "--metrics-port",
            &port_s,
            "--metrics-host",
            "127.0.0.1",
        ];
        args.extend_from_slice(extra);
        let mut cmd = anvil(&args);
        cmd.env("KUBECONFIG", cp.kubeconfig_path())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn");
        let running = Running::spawn(&mut cmd, log);
        let p = AnvilProcess {
            running,
            port,
            name: controller.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(port, "/readyz").is_none_or(|(c, _)| c != 200) {
            assert!(
                Instant::now() < deadline,
                "anvil run {controller} is not ready after 60 s:\n{}",
                p.running.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        p
    }
}

impl Measured for AnvilProcess {
    fn stats(&self) -> Stats {
        let text = http_get(self.port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        stats_from_metrics(&text, &self.name)
    }

    fn pid(&self) -> u32 {
        self.running.pid()
    }

    fn context(&self) -> String {
        format!("----- controller log -----\n{}", self.running.logs())
    }
}

/// Latencies reported by a controller one by one (the plain kube-rs controller).
#[derive(Clone, Default)]
pub struct Latencies(pub Arc<Mutex<Vec<Duration>>>);

impl Latencies {
    /// Records one reconcile.
    pub fn push(&self, d: Duration) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(d);
    }

    /// Every reconcile so far.
    pub fn stats(&self) -> Stats {
        Stats::from_samples(&self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Measures the demo load on `measured` (already running, watching `ns`): `count`
/// `DemoApp`s created at once, then all of them given a new message. `timeout` bounds each
/// phase.
pub async fn demo_phases(
    client: &kube::Client,
    ns: &str,
    count: usize,
    measured: &dyn Measured,
    timeout: Duration,
) -> Vec<Phase> {
    let mut phases = Vec::new();
    for (name, message) in [("create", "v1"), ("update", "v2")] {
        let before = measured.stats();
        let cpu_before = cpu_time(measured.pid());
        let began = Instant::now();
        if name == "create" {
            create_demo_apps(client, ns, count, message).await;
        } else {
            update_demo_apps(client, ns, count, message).await;
        }
        let converge = wait_converged(
            &format!("{count} DemoApps ({name})"),
            count,
            began,
            timeout,
            || demo_converged(client, ns),
            || measured.context(),
        )
        .await;
        phases.push(Phase {
            name,
            crs: count,
            converge,
            stats: measured.stats().since(&before),
            cpu: cpu_time(measured.pid()).saturating_sub(cpu_before),
        });
    }
    phases
}

/// The plain kube-rs controller of the demo: `kube::runtime::Controller` on `DemoApp`,
/// owning ConfigMaps and StatefulSets, doing the demo's writes (create or update the
/// ConfigMap, then the StatefulSet carrying the ConfigMap's resourceVersion, then the
/// status) the kube-rs way: the custom resource comes from the controller's cache (no
/// quorum read), children are read with a GET before the write, the status is a merge
/// patch. `report` gets the wall time of every reconcile.
pub async fn plain_controller(client: kube::Client, ns: &str, report: Latencies) {
    let ctx = Arc::new(PlainContext {
        apps: Api::namespaced(client.clone(), ns),
        cms: Api::namespaced(client.clone(), ns),
        stss: Api::namespaced(client.clone(), ns),
        report,
    });
    Controller::new(ctx.apps.clone(), watcher::Config::default())
        .owns(ctx.cms.clone(), watcher::Config::default())
        .owns(ctx.stss.clone(), watcher::Config::default())
        .run(plain_reconcile, plain_error_policy, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

struct PlainContext {
    apps: Api<DemoApp>,
    cms: Api<ConfigMap>,
    stss: Api<StatefulSet>,
    report: Latencies,
}

/// Why a plain reconcile failed.
#[derive(Debug)]
pub enum PlainError {
    /// A request failed.
    Kube(kube::Error),
    /// A child exists but another object controls it.
    NotOwned(String),
}

impl std::fmt::Display for PlainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlainError::Kube(e) => write!(f, "{e}"),
            PlainError::NotOwned(what) => write!(f, "{what} is controlled by someone else"),
        }
    }
}

impl std::error::Error for PlainError {}

impl From<kube::Error> for PlainError {
    fn from(e: kube::Error) -> Self {
        PlainError::Kube(e)
    }
}

fn plain_error_policy(_: Arc<DemoApp>, _: &PlainError, _: Arc<PlainContext>) -> Action {
    Action::requeue(Duration::from_secs(1))
}

async fn plain_reconcile(app: Arc<DemoApp>, ctx: Arc<PlainContext>) -> Result<Action, PlainError> {
    let began = Instant::now();
    let result = plain_reconcile_inner(&app, &ctx).await;
    ctx.report.push(began.elapsed());
    result
}

fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

async fn plain_reconcile_inner(app: &DemoApp, ctx: &PlainContext) -> Result<Action, PlainError> {
    use kube::Resource;
    let name = app.metadata.name.clone().unwrap_or_default();
    let uid = app.metadata.uid.clone().unwrap_or_default();
    let owner = app
        .controller_owner_ref(&())
        .ok_or_else(|| PlainError::NotOwned(format!("DemoApp {name} has no uid")))?;
    let labels: BTreeMap<String, String> =
        [("app.kubernetes.io/instance".to_string(), name.clone())].into();
    let pp = PostParams::default();

    // The ConfigMap.
    let cm_name = format!("{name}-config");
    let data: BTreeMap<String, String> = [("message".to_string(), app.spec.message.clone())].into();
    let cm = match ctx.cms.get_opt(&cm_name).await? {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(cm_name.clone()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            ctx.cms.create(&pp, &cm).await?
        }
        Some(current) if !controlled_by(&current.metadata, &uid) => {
            return Err(PlainError::NotOwned(format!("ConfigMap {cm_name}")));
        }
        Some(current) if current.data.as_ref() == Some(&data) => current,
        Some(mut current) => {
            current.data = Some(data);
            ctx.cms.replace(&cm_name, &pp, &current).await?
        }
    };
    let version = cm.metadata.resource_version.clone().unwrap_or_default();

    // The StatefulSet, carrying the ConfigMap's resourceVersion.
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            annotations: Some(
                [(
                    anvil_demo::reconciler::CONFIG_VERSION_ANNOTATION.to_string(),
                    version.clone(),
                )]
                .into(),
            ),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some(app.spec.image.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    let up_to_date = |sts: &StatefulSet| {
        let spec = sts.spec.as_ref();
        let annotation = spec
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(anvil_demo::reconciler::CONFIG_VERSION_ANNOTATION));
        let image = spec
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.as_ref());
        spec.and_then(|s| s.replicas) == Some(app.spec.replicas)
            && annotation == Some(&version)
            && image == Some(&app.spec.image)
    };
    let sts = match ctx.stss.get_opt(&name).await? {
        None => {
            let sts = StatefulSet {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner]),
                    ..Default::default()
                },
                spec: Some(StatefulSetSpec {
                    replicas: Some(app.spec.replicas),
                    service_name: Some(name.clone()),
                    selector: LabelSelector {
                        match_labels: Some(labels),
                        ..Default::default()
                    },
                    template,
                    ..Default::default()
                }),
                ..Default::default()
            };
            ctx.stss.create(&pp, &sts).await?
        }
        Some(current) if !controlled_by(&current.metadata, &uid) => {
            return Err(PlainError::NotOwned(format!("StatefulSet {name}")));
        }
        Some(current) if up_to_date(&current) => current,
        Some(mut current) => {
            if let Some(spec) = current.spec.as_mut() {
                spec.replicas = Some(app.spec.replicas);
                spec.template = template;
            }
            ctx.stss.replace(&name, &pp, &current).await?
        }
    };

    // The status: the StatefulSet's ready replicas.
    let ready = sts
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    if app.status.as_ref().map(|s| s.ready_replicas) != Some(ready) {
        ctx.apps
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "readyReplicas": ready } })),
            )
            .await?;
    }
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// Formats a duration in milliseconds with one decimal, or `-`.
pub fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// One Markdown table row per phase of `report`.
pub fn table_rows(report: &RunReport) -> Vec<String> {
    report
        .phases
        .iter()
        .map(|p| {
            let exact = match (p.stats.exact_quantile(0.5), p.stats.exact_quantile(0.99)) {
                (Some(a), Some(b)) => format!(" (exact {} / {})", ms(Some(a)), ms(Some(b))),
                _ => String::new(),
            };
            format!(
                "| {} | {} | {} | {:.2} | {:.0} | {:.1} | {} / {}{} | {:.2} | {:.1} |",
                report.controller,
                p.name,
                p.crs,
                p.converge.as_secs_f64(),
                p.stats.count,
                p.stats.count / p.converge.as_secs_f64().max(1e-9),
                ms(p.stats.histogram_quantile(0.5)),
                ms(p.stats.histogram_quantile(0.99)),
                exact,
                p.cpu.as_secs_f64(),
                report.peak_rss_kib as f64 / 1024.0,
            )
        })
        .collect()
}

/// The header of [`table_rows`].
pub const TABLE_HEADER: &str = "| controller | phase | CRs | converged after (s) | reconciles | reconciles/s | p50 / p99 latency (ms) | controller CPU (s) | peak RSS (MiB) |\n|---|---|---:|---:|---:|---:|---|---:|---:|";
