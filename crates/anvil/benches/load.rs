//! Load benchmark on the real control plane (etcd + kube-apiserver + kube-controller-manager
//! from `anvil-testenv`, a real ZooKeeper server):
//!
//! * 100 `DemoApp`s reconciled by `anvil run demo` (a child process), and the same by a plain
//!   kube-rs controller (`kube::runtime::Controller`, written in `tests/support/load.rs`,
//!   doing the demo's writes; run as a child process too: this binary re-executed);
//! * 20 `ZookeeperCluster`s reconciled by `anvil run zookeeper` against the ZooKeeper server.
//!
//! Each controller gets its own namespace and process. Phase `create`: the custom resources
//! are created at once (16 requests in flight) while the controller runs; phase `update`:
//! all of them get a new spec. Measured per phase: time until every resource matches its
//! desired state (polled every 200 ms), reconciles completed in that time (the shim's
//! `anvil_reconcile_duration_seconds` histogram; the plain controller reports each latency),
//! p50/p99 reconcile latency (estimated from the histogram like Prometheus'
//! `histogram_quantile`, for both; exact values for the plain controller in parentheses),
//! the controller's CPU time; per process: peak RSS (`VmHWM`).
//!
//! ```text
//! cargo bench -p anvil --bench load
//! ANVIL_LOAD_DEMO_CRS=100 ANVIL_LOAD_ZK_CRS=20 ANVIL_LOAD_ROUNDS=3 cargo bench -p anvil --bench load
//! ```
//!
//! It prints a Markdown table (BENCHMARKS.md, "Load"). Nothing here asserts on time.

#[path = "../tests/support/load.rs"]
mod load;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anvil_testenv::{ControlPlane, ZooKeeper};
use anvil_zookeeper::{ZookeeperCluster, ZookeeperClusterSpec};
use kube::api::{Api, Patch, PatchParams, PostParams};
use load::*;
use serde_json::json;

/// Same allocator as the `anvil` binary, for the plain controller's process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in the re-executed benchmark binary that runs the plain controller.
const PLAIN_NAMESPACE_ENV: &str = "ANVIL_LOAD_PLAIN_NAMESPACE";
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("error: {name}={v:?} is not a number");
            std::process::exit(2)
        }),
        Err(_) => default,
    }
}

fn main() {
    if let Ok(ns) = std::env::var(PLAIN_NAMESPACE_ENV) {
        plain_child(&ns);
        return;
    }
    // `cargo bench` passes `--bench` (and maybe a filter); there is nothing to filter.
    let demo_crs = env_usize("ANVIL_LOAD_DEMO_CRS", 100);
    let zk_crs = env_usize("ANVIL_LOAD_ZK_CRS", 20);
    let rounds = env_usize("ANVIL_LOAD_ROUNDS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let reports = rt.block_on(bench(demo_crs, zk_crs, rounds));
    println!();
    println!(
        "profile: {}, {} CPUs, {}",
        if cfg!(debug_assertions) {
            "debug (dev)"
        } else {
            "release (bench)"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        date()
    );
    println!("{TABLE_HEADER}");
    for r in &reports {
        for row in table_rows(r) {
            println!("{row}");
        }
    }
}

fn date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

async fn bench(demo_crs: usize, zk_crs: usize, rounds: usize) -> Vec<RunReport> {
    let cp = ControlPlane::start().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    eprintln!(
        "control plane at {} ready in {:?}",
        cp.server_url(),
        cp.startup_duration()
    );
    let client = cp.client().await.expect("a client");
    cp.apply_crd(anvil_demo::crd()).await.expect("DemoApp CRD");
    cp.apply_crd(anvil_zookeeper::crd())
        .await
        .expect("ZookeeperCluster CRD");
    let mut reports = Vec::new();
    for round in 1..=rounds {
        // anvil run demo.
        let ns = cp.fresh_namespace("load-anvil").await.expect("namespace");
        let p = AnvilProcess::start(&cp, "demo", &ns, &[]).await;
        let phases = demo_phases(&client, &ns, demo_crs, &p, PHASE_TIMEOUT).await;
        let (peak, end) = rss_kib(p.running.pid());
        drop(p);
        reports.push(report(
            format!("`anvil run demo` (round {round})"),
            phases,
            peak,
            end,
        ));
        // The plain kube-rs controller.
        let ns = cp.fresh_namespace("load-plain").await.expect("namespace");
        let p = PlainProcess::start(&cp, &ns).await;
        let phases = demo_phases(&client, &ns, demo_crs, &p, PHASE_TIMEOUT).await;
        let (peak, end) = rss_kib(p.pid());
        drop(p);
        reports.push(report(
            format!("plain kube-rs `Controller` (round {round})"),
            phases,
            peak,
            end,
        ));
    }
    // anvil run zookeeper against a real ZooKeeper server.
    let zk = ZooKeeper::start().unwrap_or_else(|e| panic!("ZooKeeper must start: {e}"));
    let ns = cp.fresh_namespace("load-zk").await.expect("namespace");
    let addr = zk.address();
    let p = AnvilProcess::start(&cp, "zookeeper", &ns, &["--zk-address", &addr]).await;
    let phases = zookeeper_phases(&client, &ns, zk_crs, &addr, &p).await;
    let (peak, end) = rss_kib(p.running.pid());
    drop(p);
    reports.push(report(
        "`anvil run zookeeper`".to_string(),
        phases,
        peak,
        end,
    ));
    reports
}

fn report(controller: String, phases: Vec<Phase>, peak: u64, end: u64) -> RunReport {
    let r = RunReport {
        controller,
        phases,
        peak_rss_kib: peak,
        end_rss_kib: end,
    };
    for row in table_rows(&r) {
        eprintln!("{row}");
    }
    r
}

/// `count` ZookeeperClusters (3 replicas) created at once, then all scaled to 5.
async fn zookeeper_phases(
    client: &kube::Client,
    ns: &str,
    count: usize,
    zk: &str,
    measured: &AnvilProcess,
) -> Vec<Phase> {
    let api = Api::<ZookeeperCluster>::namespaced(client.clone(), ns);
    let mut phases = Vec::new();
    for name in ["create", "update"] {
        let before = measured.stats();
        let cpu_before = cpu_time(measured.pid());
        let began = Instant::now();
        for i in 0..count {
            let cr_name = format!("zk-{i:03}");
            if name == "create" {
                let mut cr =
                    ZookeeperCluster::new(&cr_name, ZookeeperClusterSpec::with_replicas(3));
                cr.metadata.namespace = Some(ns.to_string());
                api.create(&PostParams::default(), &cr)
                    .await
                    .unwrap_or_else(|e| panic!("creating {cr_name}: {e}"));
            } else {
                api.patch(
                    &cr_name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "spec": { "replicas": 5 } })),
                )
                .await
                .unwrap_or_else(|e| panic!("scaling {cr_name}: {e}"));
            }
        }
        let converge = wait_converged(
            &format!("{count} ZookeeperClusters ({name})"),
            count,
            began,
            PHASE_TIMEOUT,
            || zookeeper_converged(client, ns, zk),
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

/// The plain controller in a child process (this binary, re-executed), reporting every
/// reconcile's latency on its stdout.
struct PlainProcess {
    child: Child,
    latencies: Latencies,
    log: std::path::PathBuf,
}

impl PlainProcess {
    async fn start(cp: &ControlPlane, ns: &str) -> PlainProcess {
        let log = std::env::temp_dir().join(format!(
            "anvil-load-plain-{}-{}.log",
            std::process::id(),
            support::free_port()
        ));
        let mut child = Command::new(std::env::current_exe().expect("the benchmark binary"))
            .env(PLAIN_NAMESPACE_ENV, ns)
            .env("KUBECONFIG", cp.kubeconfig_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("the plain controller starts");
        let latencies = Latencies::default();
        let ready = Arc::new(AtomicBool::new(false));
        let stdout = child.stdout.take().expect("piped stdout");
        {
            let (latencies, ready) = (latencies.clone(), ready.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line == "ready" {
                        ready.store(true, Ordering::SeqCst);
                    } else if let Some(nanos) =
                        line.strip_prefix("r ").and_then(|n| n.parse::<u64>().ok())
                    {
                        latencies.push(Duration::from_nanos(nanos));
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the plain controller did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        PlainProcess {
            child,
            latencies,
            log,
        }
    }
}

impl Measured for PlainProcess {
    fn stats(&self) -> Stats {
        // Let the child's printer (every 20 ms) and the reader thread catch up.
        std::thread::sleep(Duration::from_millis(60));
        self.latencies.stats()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn context(&self) -> String {
        format!(
            "----- plain controller log -----\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

impl Drop for PlainProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The re-executed binary: runs the plain controller on `ns` until killed, printing `ready`
/// once it starts and `r <nanoseconds>` per reconcile.
fn plain_child(ns: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot build a client from $KUBECONFIG: {e}");
                std::process::exit(1);
            }
        };
        let latencies = Latencies::default();
        let printer = {
            let latencies = latencies.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let batch =
                        std::mem::take(&mut *latencies.0.lock().unwrap_or_else(|e| e.into_inner()));
                    let mut out = std::io::stdout().lock();
                    for d in &batch {
                        let _ = writeln!(out, "r {}", d.as_nanos());
                    }
                    let _ = out.flush();
                }
            })
        };
        println!("ready");
        let _ = std::io::stdout().flush();
        plain_controller(client, ns, latencies).await;
        printer.abort();
    });
}
