//! `run <controller>`: runs a controller against a real cluster through the shim, and
//! `crd <controller>`: prints its CRD.

use crate::Cli;
use crate::controller::RunContext;
use anvil_shim::{Health, ShimConfig, ShimError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `run` (a controller's own options, e.g. `--zk-address`, are added by
/// [`Cli::command`] and collected in [`RunArgs::options`]).
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The controller to run (`list` names them; broken variants cannot be run).
    pub controller: String,
    /// Kubeconfig to use (default: `$KUBECONFIG`, then `~/.kube/config`, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Seconds between successful reconciles of the same object.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub requeue_seconds: u64,
    /// Seconds one Kubernetes request of a reconcile (or the readiness probe) may take before
    /// it fails with `Timeout` (an API server that hangs cannot stall reconciles forever).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_seconds: u64,
    /// Fault injection: exit (code 86) right after the N-th mutating request of a reconcile.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub crash_after_writes: Option<u64>,
    /// Serve Prometheus metrics on `/metrics`, and `/healthz` and `/readyz`, on this port
    /// (0: any free port, logged).
    #[arg(long)]
    pub metrics_port: Option<u16>,
    /// The address the metrics port binds to.
    #[arg(long, default_value = "0.0.0.0", requires = "metrics_port")]
    pub metrics_host: std::net::IpAddr,
    /// Reconcile only while holding a Lease, so that several replicas can run (one leads).
    #[arg(long)]
    pub leader_election: bool,
    /// The Lease's name (default: `<command>-<controller>`, e.g. `anvil-demo`).
    #[arg(long, requires = "leader_election")]
    pub lease_name: Option<String>,
    /// The Lease's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: `$POD_NAME`, else host name and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds the Lease stays valid after its last renewal; a standby takes over at most
    /// this long after the leader died.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..))]
    pub lease_duration_seconds: u64,
    /// The controller's own run options that were given (by long flag).
    #[arg(skip)]
    pub options: BTreeMap<String, String>,
}

/// Arguments of `anvil crd`.
#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// The controller whose CRD (or CRDs) to print.
    pub controller: String,
}

/// `crd`: prints the CRD YAML (every CRD of a process that runs several controllers); exit code 2 for an unknown controller or one without a CRD.
pub fn crd(cli: &Cli, args: &CrdArgs) -> i32 {
    match cli.find(&args.controller).and_then(|c| c.crd_yaml()) {
        Some(yaml) => {
            print!("{yaml}");
            0
        }
        None if cli.find(&args.controller).is_some() => {
            eprintln!("error: `{}` has no CRD of its own", args.controller);
            2
        }
        None => {
            eprintln!(
                "error: unknown controller `{}`; `{} list` names them",
                args.controller,
                cli.name()
            );
            2
        }
    }
}

/// `run`: exit code 0 after a graceful shutdown, 86 after an injected crash, 2 for usage
/// errors, 1 for any other failure (unreachable cluster, missing CRD...).
pub fn run(cli: &Cli, args: &RunArgs) -> i32 {
    let Some(c) = cli.find(&args.controller) else {
        eprintln!(
            "error: unknown controller `{}`; `{} list` names them",
            args.controller,
            cli.name()
        );
        return 2;
    };
    let runnable = match c.runnable() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for flag in args.options.keys() {
        if !c.run_options.iter().any(|o| o.long == flag) {
            let users: Vec<_> = cli
                .controllers()
                .iter()
                .filter(|x| x.run_options.iter().any(|o| o.long == flag))
                .map(|x| x.name)
                .collect();
            eprintln!(
                "error: --{flag} only applies to the {} controller{}",
                users.join(", "),
                if users.len() == 1 { "" } else { "s" }
            );
            return 2;
        }
    }
    let runner = c.runner.clone().expect("checked above");
    init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let lease = format!("{}-{}", cli.name(), c.name);
    match rt.block_on(run_async(runnable, runner.run, &lease, args)) {
        Ok(()) => 0,
        Err(ShimError::CrdMissing { crd }) => {
            eprintln!(
                "error: CRD {crd} is not installed; run `{} crd {} | kubectl apply -f -`",
                cli.name(),
                c.name
            );
            1
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn configure(
    config: ShimConfig,
    args: &RunArgs,
    lease: &str,
    health: &Option<std::sync::Arc<Health>>,
) -> ShimConfig {
    let config = match health {
        Some(h) => config.with_health(h.clone()),
        None => config,
    };
    let config = if args.leader_election {
        let identity = args.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "anvil".into());
            format!("{host}-{}", std::process::id())
        });
        let mut le = anvil_shim::LeaderElection::new(
            args.lease_name.clone().unwrap_or_else(|| lease.to_string()),
            args.lease_namespace.clone(),
            identity,
        );
        le.lease_duration = args.lease_duration_seconds;
        le.grace = (args.lease_duration_seconds / 3).max(1);
        config.with_leader_election(le)
    } else {
        config
    };
    let config = config
        .with_requeue_after(Duration::from_secs(args.requeue_seconds))
        .with_request_timeout(Duration::from_secs(args.request_timeout_seconds))
        .with_crash_after_writes(args.crash_after_writes.map(|n| n as usize));
    match &args.namespace {
        Some(ns) => config.with_namespace(ns),
        None => config,
    }
}

async fn run_async(
    r: crate::controller::Runnable,
    run: fn(RunContext) -> crate::controller::RunFuture,
    lease: &str,
    args: &RunArgs,
) -> Result<(), ShimError> {
    let health = match args.metrics_port {
        Some(port) => {
            let health = Health::new();
            let addr = SocketAddr::new(args.metrics_host, port);
            anvil_shim::serve_http(addr, health.clone())
                .await
                .map_err(|e| ShimError::Config(format!("cannot serve metrics on {addr}: {e}")))?;
            Some(health)
        }
        None => None,
    };
    let cluster = anvil_shim::connect(args.kubeconfig.as_deref()).await?;
    for crd in &r.crds {
        let crd_name = crd.metadata.name.clone().unwrap_or_default();
        anvil_shim::check_cluster(&cluster.client, &cluster.url, &crd_name).await?;
    }
    let config = configure(r.config, args, lease, &health);
    run(RunContext {
        client: cluster.client,
        config,
        options: args.options.clone(),
    })
    .await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
