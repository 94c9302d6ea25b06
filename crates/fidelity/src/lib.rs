//! # anvil-fidelity
//!
//! Differential tests of the executable API server model ([`anvil_cluster_model::Etcd`])
//! against a real kube-apiserver (with kube-controller-manager) from `anvil-testenv`.
//!
//! * [`ops`]: generated symbolic request sequences (small name pool; resourceVersions, uids
//!   and generated names referred to symbolically: latest, oldest, bogus);
//! * [`run`]: runs one sequence on both sides (a fresh namespace on the real server, a fresh
//!   [`anvil_cluster_model::Etcd`] in the model), comparing every answer and the final store;
//! * [`compare`]: consistent renaming of resourceVersions/uids/generated names, normalisation,
//!   server defaults, and the single list of known differences (see `FIDELITY.md`);
//! * [`kinds`]: the kinds used, including the test CRD `Widget`.
//!
//! The number of sequences is `ANVIL_FIDELITY_CASES` (default [`DEFAULT_CASES`]).

pub mod compare;
pub mod kinds;
pub mod ops;
pub mod run;

use std::sync::OnceLock;

/// Sequences run by `cargo test` when `ANVIL_FIDELITY_CASES` is unset.
pub const DEFAULT_CASES: u32 = 100;

/// The number of cases to run: `ANVIL_FIDELITY_CASES` or `default`.
pub fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The shared test harness: a tokio runtime, the shared control plane with the test CRD
/// applied, and a client.
pub struct Harness {
    /// Runtime the client lives on (proptest bodies are synchronous).
    pub runtime: tokio::runtime::Runtime,
    /// The control plane.
    pub control_plane: &'static anvil_testenv::ControlPlane,
    /// A client.
    pub client: kube::Client,
}

impl Harness {
    /// The process-wide harness (starts the control plane and applies the CRD on first use).
    pub fn get() -> &'static Harness {
        static H: OnceLock<Harness> = OnceLock::new();
        H.get_or_init(|| {
            let control_plane =
                anvil_testenv::ControlPlane::shared().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                control_plane.has_controller_manager(),
                "the fidelity tests need kube-controller-manager"
            );
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            anvil_shim::register_plural(&kinds::widget_kind(), "widgets");
            let client = runtime.block_on(async {
                control_plane
                    .apply_crd(kinds::widget_crd())
                    .await
                    .unwrap_or_else(|e| panic!("cannot apply the test CRD: {e}"));
                control_plane
                    .client()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            });
            Harness {
                runtime,
                control_plane,
                client,
            }
        })
    }

    /// A fresh namespace.
    pub fn namespace(&self, prefix: &str) -> String {
        self.runtime
            .block_on(self.control_plane.fresh_namespace(prefix))
            .unwrap_or_else(|e| panic!("cannot create a namespace: {e}"))
    }

    /// Runs one sequence in a fresh namespace; `Err` describes the first difference.
    pub fn run_sequence(&self, seq: &ops::Sequence) -> Result<run::Stats, String> {
        let t0 = std::time::Instant::now();
        let ns = self.namespace("fidelity");
        let t1 = t0.elapsed();
        self.runtime.block_on(async {
            let mut r = run::Run::new(&self.client, ns);
            let result = r.run(seq).await;
            let t2 = t0.elapsed();
            r.cleanup().await;
            if std::env::var_os("ANVIL_FIDELITY_VERBOSE").is_some() {
                eprintln!(
                    "sequence of {} requests: namespace {t1:?}, run {:?}, cleanup {:?}, {}",
                    seq.ops.len(),
                    t2 - t1,
                    t0.elapsed() - t2,
                    if result.is_ok() { "ok" } else { "DIFFERENT" }
                );
            }
            r.stats.sequences = 1;
            result.map(|()| r.stats)
        })
    }
}
