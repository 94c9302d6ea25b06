//! The load path of `benches/load.rs`, checked for correctness with fewer objects (no timing
//! assertions; the deadlines only bound a hung run): 20 `DemoApp`s created at once converge
//! under `anvil run demo` (a child process) and under the benchmark's plain kube-rs
//! controller, and converge again after all of them get a new message.

#[path = "support/load.rs"]
mod load;
mod support;

use std::time::Duration;

use anvil_testenv::ControlPlane;
use load::*;

const CRS: usize = 20;
const TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_demo_apps_converge_under_anvil_run() {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    cp.apply_crd(anvil_demo::crd()).await.unwrap();
    let ns = cp.fresh_namespace("load-anvil").await.unwrap();
    let controller = AnvilProcess::start(cp, "demo", &ns, &[]).await;
    let phases = demo_phases(&client, &ns, CRS, &controller, TIMEOUT).await;
    assert_eq!(phases.len(), 2);
    for p in &phases {
        // Every DemoApp was reconciled at least once in each phase, and the shim's histogram
        // counted every reconcile.
        assert!(p.stats.count >= CRS as f64, "{p:?}");
        assert_eq!(
            p.stats.cumulative.last().copied(),
            Some(p.stats.count),
            "{p:?}"
        );
    }
    let (peak, _) = rss_kib(controller.running.pid());
    assert!(peak > 0, "VmHWM of the controller is readable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_demo_apps_converge_under_the_plain_kube_rs_controller() {
    let cp = ControlPlane::shared().unwrap_or_else(|e| panic!("the control plane must start: {e}"));
    let client = cp.client().await.unwrap();
    cp.apply_crd(anvil_demo::crd()).await.unwrap();
    let ns = cp.fresh_namespace("load-plain").await.unwrap();
    let latencies = Latencies::default();
    let controller = tokio::spawn({
        let (client, ns, latencies) = (client.clone(), ns.clone(), latencies.clone());
        async move { plain_controller(client, &ns, latencies).await }
    });
    struct InProcess(Latencies);
    impl Measured for InProcess {
        fn stats(&self) -> Stats {
            self.0.stats()
        }
        fn pid(&self) -> u32 {
            std::process::id()
        }
        fn context(&self) -> String {
            "(the plain controller runs in the test process)".into()
        }
    }
    let phases = demo_phases(&client, &ns, CRS, &InProcess(latencies), TIMEOUT).await;
    controller.abort();
    for p in &phases {
        assert!(p.stats.count >= CRS as f64, "{p:?}");
        let exact = p.stats.exact.as_ref().expect("every latency is known");
        assert_eq!(exact.len() as f64, p.stats.count);
        assert!(p.stats.exact_quantile(0.5) <= p.stats.exact_quantile(0.99));
    }
}

#[test]
fn histogram_quantiles_interpolate_like_prometheus() {
    // 10 reconciles of 1.5 ms (bucket 1..2 ms) and 10 of 3 ms (2..4 ms).
    let samples: Vec<Duration> = std::iter::repeat_n(Duration::from_micros(1500), 10)
        .chain(std::iter::repeat_n(Duration::from_millis(3), 10))
        .collect();
    let mut s = Stats::default();
    for d in &samples {
        let l = Latencies::default();
        l.push(*d);
        let one = l.stats();
        s.count += one.count;
        if s.cumulative.is_empty() {
            s.cumulative = vec![0.0; one.cumulative.len()];
        }
        for (a, b) in s.cumulative.iter_mut().zip(&one.cumulative) {
            *a += b;
        }
    }
    let close = |got: Option<Duration>, want_ms: f64| {
        let got = got.expect("a quantile").as_secs_f64() * 1000.0;
        assert!((got - want_ms).abs() < 1e-3, "{got} ms, want {want_ms} ms");
    };
    // The median is the top of the 1..2 ms bucket; p75 is half-way through 2..4 ms.
    close(s.histogram_quantile(0.5), 2.0);
    close(s.histogram_quantile(0.75), 3.0);
    assert_eq!(
        s.exact_quantile(0.5),
        None,
        "only the per-sample Stats keep latencies"
    );
    let text = "anvil_reconcile_duration_seconds_bucket{controller=\"demo\",le=\"0.001\"} 0\n\
                anvil_reconcile_duration_seconds_bucket{controller=\"demo\",le=\"0.002\"} 10\n\
                anvil_reconcile_duration_seconds_bucket{controller=\"demo\",le=\"0.004\"} 20\n\
                anvil_reconcile_duration_seconds_bucket{controller=\"demo\",le=\"+Inf\"} 20\n\
                anvil_reconcile_duration_seconds_count{controller=\"demo\"} 20\n";
    let parsed = stats_from_metrics(text, "demo");
    assert_eq!(parsed.count, 20.0);
    close(parsed.histogram_quantile(0.75), 3.0);
}
