//! Anvil for Rust: a real control plane for integration tests.
//!
//! [`ControlPlane`] runs etcd, kube-apiserver and kube-controller-manager on loopback, so tests
//! exercise the real API server semantics, the real garbage collector and the real built-in
//! controllers (StatefulSet, ...). No kubelet runs: pods are created but never scheduled.
//!
//! Binaries come from `KUBEBUILDER_ASSETS` (controller-runtime's envtest convention) or from
//! `scripts/provision-control-plane.sh`, which builds them from Go modules into a cache outside
//! the repository on first use. If neither works, [`ControlPlane::start`] fails with an error
//! explaining what was tried: tests fail loudly, they never skip.
//!
//! Faults of the platform ([`Component`]): on a private instance, [`ControlPlane::kill`] and
//! [`ControlPlane::restart`] a component (same ports, certificates and etcd data directory),
//! [`ControlPlane::pause`] and [`ControlPlane::resume`] it (SIGSTOP / SIGCONT: connections hang
//! instead of failing), [`ControlPlane::wait_ready`] for the API server, and
//! [`ControlPlane::check_running`] that nothing else died. [`ZooKeeper`] runs a real standalone
//! ZooKeeper server (from `scripts/provision-zookeeper.sh`) for the zookeeper controller.
//!
//! ```no_run
//! # async fn demo() -> Result<(), anvil_testenv::TestEnvError> {
//! let cp = anvil_testenv::ControlPlane::shared()?;
//! let client = cp.client().await?;
//! let ns = cp.fresh_namespace("demo").await?;
//! # let _ = (client, ns); Ok(()) }
//! ```

mod certs;
mod error;
mod faults;
mod process;
mod provision;
mod zookeeper;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use error::{Result, TestEnvError};
pub use faults::Component;
pub use zookeeper::ZooKeeper;

/// Polls `check` every 250 ms until it holds; panics naming `what` after `timeout` (for
/// tests: a condition on the real cluster that must become true).
pub async fn eventually<F, Fut>(what: &str, timeout: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// How long to wait for the control plane to become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for namespaces' default service accounts and CRDs to become established.
const OBJECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of each component's log kept by [`ControlPlane::logs`].
const LOG_TAIL_LINES: usize = 40;
/// Field manager used for server-side apply.
const FIELD_MANAGER: &str = "anvil-testenv";

/// One process of the control plane, with what it takes to start it again.
struct Process {
    component: Component,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    /// `None` after [`ControlPlane::kill`], until [`ControlPlane::restart`].
    child: Option<Child>,
}

/// A running etcd + kube-apiserver (+ kube-controller-manager) on 127.0.0.1.
///
/// Instances from [`ControlPlane::start`] stop their processes and delete their working
/// directory on drop (also when a test panics). The instance from [`ControlPlane::shared`]
/// lives until the test process exits; its processes are killed then (`PR_SET_PDEATHSIG` from
/// a long-lived spawner thread, plus a watchdog shell that also removes the directory).
pub struct ControlPlane {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    server: String,
    token: String,
    binaries: PathBuf,
    logs: Vec<(&'static str, PathBuf)>,
    components: Mutex<Vec<Process>>,
    pid_file: PathBuf,
    etcd_url: String,
    has_controller_manager: bool,
    startup: Duration,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server", &self.server)
            .field("dir", &self.dir.path())
            .field("binaries", &self.binaries)
            .field("has_controller_manager", &self.has_controller_manager)
            .finish_non_exhaustive()
    }
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TestEnvError::io("cannot pick a free loopback port", e))
}

fn random_hex() -> String {
    let a = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{a:016x}{:016x}", h.finish())
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents)
        .map_err(|e| TestEnvError::io(format!("cannot write {}", path.display()), e))
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = std::fs::File::open(path) else {
        return "(no log)".to_string();
    };
    let mut buf: VecDeque<String> = VecDeque::with_capacity(lines);
    for line in BufReader::new(file).lines().map_while(|l| l.ok()) {
        if buf.len() == lines {
            buf.pop_front();
        }
        buf.push_back(line);
    }
    buf.into_iter().collect::<Vec<_>>().join("\n")
}

impl ControlPlane {
    /// Starts a new, private control plane (binaries located as described in the crate docs),
    /// waits until `/readyz` is ok, the `default` namespace exists and (with a controller
    /// manager) its `default` service account has been created. Takes a few seconds.
    ///
    /// This blocks the calling thread; it may be called from inside an async test.
    pub fn start() -> Result<ControlPlane> {
        let binaries = provision::locate()?;
        // The startup runs on its own thread with its own runtime, so callers may be inside a
        // tokio runtime themselves.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let b = binaries.clone();
            let result = std::thread::spawn(move || Self::start_with(&b))
                .join()
                .map_err(|_| TestEnvError::Startup {
                    message: "the startup thread panicked".into(),
                    logs: String::new(),
                })?;
            match result {
                Err(TestEnvError::Startup { logs, .. })
                    if attempt < 3 && logs.contains("address already in use") =>
                {
                    tracing::warn!("port collision while starting the control plane; retrying");
                }
                other => return other,
            }
        }
    }

    /// The process-wide control plane, started on first use and shared by all tests of the
    /// test binary. Its processes die when the test process exits.
    pub fn shared() -> Result<&'static ControlPlane> {
        static SHARED: OnceLock<std::result::Result<ControlPlane, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| ControlPlane::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| TestEnvError::Shared(e.clone()))
    }

    fn start_with(binaries: &provision::Binaries) -> Result<ControlPlane> {
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("anvil-testenv-")
            .tempdir()
            .map_err(|e| TestEnvError::io("cannot create a temporary directory", e))?;
        let root = dir.path().to_path_buf();
        let pid_file = root.join("pids");
        process::start_watchdog(&pid_file, &root)?;

        let pki = certs::generate()?;
        let file = |name: &str| root.join(name);
        write(&file("ca.crt"), &pki.ca_cert)?;
        write(&file("ca.key"), &pki.ca_key)?;
        write(&file("apiserver.crt"), &pki.serving_cert)?;
        write(&file("apiserver.key"), &pki.serving_key)?;
        write(&file("sa.key"), &pki.sa_private_key)?;
        write(&file("sa.pub"), &pki.sa_public_key)?;
        let token = random_hex();
        write(
            &file("tokens.csv"),
            &format!("{token},admin,anvil-testenv-admin,\"system:masters\"\n"),
        )?;

        let etcd_client = free_port()?;
        let etcd_peer = free_port()?;
        let api_port = free_port()?;
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = file("kubeconfig");
        write(
            &kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: anvil-testenv\n  cluster:\n    \
                 server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  \
                 user:\n    token: {token}\ncontexts:\n- name: anvil-testenv\n  context:\n    \
                 cluster: anvil-testenv\n    user: admin\n    namespace: default\n\
                 current-context: anvil-testenv\n",
                ca = file("ca.crt").display(),
            ),
        )?;

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let mut cp = ControlPlane {
            pid_file: pid_file.clone(),
            etcd_url: etcd_url.clone(),
            kubeconfig,
            server,
            token,
            binaries: binaries.dir.clone(),
            logs: Vec::new(),
            components: Mutex::new(Vec::new()),
            has_controller_manager: binaries.controller_manager.is_some(),
            startup: Duration::ZERO,
            dir,
        };

        let p = |path: PathBuf| path.display().to_string();
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        cp.spawn(
            Component::Etcd,
            &binaries.etcd,
            vec![
                "--name=default".into(),
                format!("--data-dir={}", p(file("etcd-data"))),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync=true".into(),
                "--log-level=warn".into(),
            ],
        )?;
        cp.spawn(
            Component::ApiServer,
            &binaries.apiserver,
            vec![
                format!("--etcd-servers={etcd_url}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--tls-cert-file={}", p(file("apiserver.crt"))),
                format!("--tls-private-key-file={}", p(file("apiserver.key"))),
                format!("--client-ca-file={}", p(file("ca.crt"))),
                format!("--token-auth-file={}", p(file("tokens.csv"))),
                "--authorization-mode=RBAC".into(),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p(file("sa.pub"))),
                format!("--service-account-signing-key-file={}", p(file("sa.key"))),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--allow-privileged=true".into(),
                format!("--cert-dir={}", p(file("apiserver-certs"))),
                "--profiling=false".into(),
            ],
        )?;
        if let Some(kcm) = &binaries.controller_manager {
            cp.spawn(
                Component::ControllerManager,
                kcm,
                vec![
                    format!("--kubeconfig={}", p(cp.kubeconfig.clone())),
                    "--controllers=*".into(),
                    "--leader-elect=false".into(),
                    "--secure-port=0".into(),
                    format!("--service-account-private-key-file={}", p(file("sa.key"))),
                    format!("--root-ca-file={}", p(file("ca.crt"))),
                    format!("--cluster-signing-cert-file={}", p(file("ca.crt"))),
                    format!("--cluster-signing-key-file={}", p(file("ca.key"))),
                    "--service-cluster-ip-range=10.0.0.0/24".into(),
                    "--profiling=false".into(),
                ],
            )?;
        }

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestEnvError::io("cannot build a tokio runtime", e))?;
        runtime.block_on(cp.wait_started(began))?;
        cp.startup = began.elapsed();
        tracing::info!(server = %cp.server, startup = ?cp.startup, "control plane ready");
        Ok(cp)
    }

    fn spawn(&mut self, component: Component, program: &Path, args: Vec<String>) -> Result<()> {
        let name = component.name();
        let log = self.dir.path().join(format!("{name}.log"));
        let child = process::spawn(program, args.clone(), &log, false)?;
        self.record_pid(child.id())?;
        self.logs.push((name, log.clone()));
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Process {
                component,
                program: program.to_path_buf(),
                args,
                log,
                child: Some(child),
            });
        Ok(())
    }

    /// Appends `pid` to the file the watchdog kills from when the test process is gone.
    fn record_pid(&self, pid: u32) -> Result<()> {
        use std::io::Write;
        let mut pids = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.pid_file)
            .map_err(|e| TestEnvError::io("cannot write the pid file", e))?;
        writeln!(pids, "{pid}").map_err(|e| TestEnvError::io("cannot write the pid file", e))
    }

    /// Fails if a component has exited.
    fn check_alive(&self) -> Result<()> {
        self.check_running().map_err(|e| match e {
            TestEnvError::Exited { component, status } => {
                self.startup_error(format!("{component} exited early ({status})"))
            }
            other => other,
        })
    }

    fn startup_error(&self, message: String) -> TestEnvError {
        TestEnvError::Startup {
            message,
            logs: self.logs(),
        }
    }

    async fn wait_started(&self, began: Instant) -> Result<()> {
        let deadline = began + STARTUP_TIMEOUT;
        let client = self.client().await?;
        // 1. /readyz.
        let mut last;
        loop {
            self.check_alive()?;
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("valid request");
            match client.request_text(req).await {
                Ok(body) if body.trim() == "ok" => break,
                Ok(body) => last = body,
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                return Err(self.startup_error(format!(
                    "kube-apiserver not ready after {STARTUP_TIMEOUT:?}: {last}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // 2. The default namespace, and (with a controller manager) its default service
        // account: this proves the controller manager is up and talking to the API server.
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
        loop {
            self.check_alive()?;
            let ns_ok = matches!(namespaces.get_opt("default").await, Ok(Some(_)));
            let sa_ok = !self.has_controller_manager
                || matches!(accounts.get_opt("default").await, Ok(Some(_)));
            if ns_ok && sa_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.startup_error(format!(
                    "after {STARTUP_TIMEOUT:?}: default namespace present: {ns_ok}, its default \
                     service account present: {sa_ok}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Path of a kubeconfig file for this control plane (admin token in group
    /// `system:masters`, the test CA as certificate authority).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The admin bearer token (group `system:masters`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The folder the etcd / kube-apiserver / kube-controller-manager binaries came from.
    pub fn binaries_dir(&self) -> &Path {
        &self.binaries
    }

    /// Whether a kube-controller-manager runs (always true with binaries from the provisioning
    /// script; `KUBEBUILDER_ASSETS` folders may lack it).
    pub fn has_controller_manager(&self) -> bool {
        self.has_controller_manager
    }

    /// How long [`ControlPlane::start`] took from spawning etcd to readiness.
    pub fn startup_duration(&self) -> Duration {
        self.startup
    }

    /// A new client for this control plane, built from [`ControlPlane::kubeconfig_path`]
    /// (rustls). Call it from the runtime the client will be used on.
    pub async fn client(&self) -> Result<kube::Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| TestEnvError::Kubeconfig(e.to_string()))?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Creates a namespace named `<prefix>-<unique suffix>` and returns its name. With a
    /// controller manager, waits until the namespace's `default` service account exists, so
    /// pods can be admitted in it.
    pub async fn fresh_namespace(&self, prefix: &str) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut clean: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        clean.truncate(40);
        let clean = clean.trim_matches('-');
        let clean = if clean.is_empty() { "test" } else { clean };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{clean}-{n}-{}", &random_hex()[..8]);

        let client = self.client().await?;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
        if self.has_controller_manager {
            let accounts: Api<ServiceAccount> = Api::namespaced(client, &name);
            wait_for(
                &format!("the default service account of namespace {name}"),
                || async { Ok(accounts.get_opt("default").await?.is_some()) },
            )
            .await
            .map_err(|e| self.with_logs(e))?;
        }
        Ok(name)
    }

    /// Server-side applies `crd` and waits until it is `Established` (its resource is served).
    /// Returns the CRD as stored.
    pub async fn apply_crd(
        &self,
        mut crd: CustomResourceDefinition,
    ) -> Result<CustomResourceDefinition> {
        let name =
            crd.metadata.name.clone().ok_or_else(|| {
                TestEnvError::InvalidArgument("the CRD has no metadata.name".into())
            })?;
        crd.metadata.managed_fields = None;
        crd.metadata.resource_version = None;
        crd.metadata.uid = None;
        crd.metadata.creation_timestamp = None;
        crd.status = None;
        let client = self.client().await?;
        let crds: Api<CustomResourceDefinition> = Api::all(client);
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await?;
        let stored = Mutex::new(None);
        wait_for(&format!("CRD {name} to be Established"), || async {
            let current = crds.get(&name).await?;
            let established = current
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                *stored.lock().unwrap_or_else(|e| e.into_inner()) = Some(current);
            }
            Ok(established)
        })
        .await
        .map_err(|e| self.with_logs(e))?;
        Ok(stored
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .expect("set when established"))
    }

    fn with_logs(&self, e: TestEnvError) -> TestEnvError {
        match e {
            TestEnvError::Timeout { what, timeout } => TestEnvError::Startup {
                message: format!("timed out after {timeout:?} waiting for {what}"),
                logs: self.logs(),
            },
            other => other,
        }
    }

    /// The last lines of each component's log (etcd, kube-apiserver, kube-controller-manager),
    /// each under a header.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (name, path) in &self.logs {
            out.push_str(&format!(
                "----- {name} (last {LOG_TAIL_LINES} lines of {}) -----\n",
                path.display()
            ));
            out.push_str(&tail(path, LOG_TAIL_LINES));
            out.push('\n');
        }
        out
    }
}

/// Polls `check` every 100 ms until it returns `Ok(true)`, for at most [`OBJECT_TIMEOUT`].
/// Errors from `check` are retried; the last one is reported on timeout.
async fn wait_for<F, Fut>(what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + OBJECT_TIMEOUT;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
        if Instant::now() > deadline {
            return Err(TestEnvError::Timeout {
                what: match last_error {
                    Some(e) => format!("{what} (last error: {e})"),
                    None => what.to_string(),
                },
                timeout: OBJECT_TIMEOUT,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        // Controller manager first, etcd last. SIGKILL also ends a paused (SIGSTOPped) process.
        for c in components.iter_mut().rev() {
            if let Some(child) = c.child.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        components.clear();
        // `self.dir` (a TempDir) is removed when the fields drop.
    }
}
