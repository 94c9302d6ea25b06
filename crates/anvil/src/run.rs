//! `anvil run <controller>`: runs a controller against a real cluster through the shim, and
//! `anvil crd <controller>`: prints its CRD.

use crate::registry;
use anvil_objects::Kind;
use anvil_shim::{Health, NoExternalShim, ShimConfig, ShimError};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A controller `anvil run` can run (the broken variants cannot): what it needs on a cluster.
pub struct Runnable {
    /// Name on the command line.
    pub name: &'static str,
    /// The custom resource's kind.
    pub cr: Kind,
    /// Its CRD.
    pub crd: CustomResourceDefinition,
    /// The shim configuration `anvil run` uses: owned kinds (watches) and the permissions the
    /// reconciler's requests need (checked against the model by `tests/permissions.rs`).
    pub config: ShimConfig,
}

/// The shim configuration of the demo: it owns ConfigMaps and StatefulSets; its requests
/// read, create and update both, read the `DemoApp` and update its status.
pub fn demo_config() -> ShimConfig {
    anvil_shim::register_resource::<anvil_demo::DemoApp>();
    ShimConfig::new("demo")
        .owns::<ConfigMap>()
        .owns::<StatefulSet>()
        .may::<ConfigMap>(&["get", "create", "update"])
        .may::<StatefulSet>(&["get", "create", "update"])
        .may::<anvil_demo::DemoApp>(&["get"])
        .may_status::<anvil_demo::DemoApp>(&["update"])
}

/// The controllers `anvil run` and `anvil manifests` accept.
pub const RUNNABLE: &[&str] = &["demo", "zookeeper", "rabbitmq"];

/// The runnable controller called `name`.
pub fn runnable(name: &str) -> Option<Runnable> {
    Some(match name {
        "demo" => Runnable {
            name: "demo",
            cr: Kind::of::<anvil_demo::DemoApp>(),
            crd: anvil_demo::crd(),
            config: demo_config(),
        },
        "zookeeper" => Runnable {
            name: "zookeeper",
            cr: Kind::of::<anvil_zookeeper::ZookeeperCluster>(),
            crd: anvil_zookeeper::crd(),
            config: anvil_zookeeper::run::shim_config(),
        },
        "rabbitmq" => Runnable {
            name: "rabbitmq",
            cr: Kind::of::<anvil_rabbitmq::RabbitmqCluster>(),
            crd: anvil_rabbitmq::crd(),
            config: anvil_rabbitmq::run::shim_config(),
        },
        _ => return None,
    })
}

/// Arguments of `anvil run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The controller to run (`anvil list` names them; broken variants cannot be run).
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
    /// Fault injection: exit (code 86) right after the N-th mutating request of a reconcile.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub crash_after_writes: Option<u64>,
    /// ZooKeeper controller only: the ZooKeeper ensemble to talk to (`host:port`); default: the
    /// ensemble's client Service.
    #[arg(long)]
    pub zk_address: Option<String>,
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
    /// The Lease's name (default: `anvil-<controller>`).
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
}

/// Arguments of `anvil crd`.
#[derive(clap::Args, Debug)]
pub struct CrdArgs {
    /// The controller whose CRD to print.
    pub controller: String,
}

/// `anvil crd`: prints the CRD YAML; exit code 2 for an unknown controller.
pub fn crd(args: &CrdArgs) -> i32 {
    match registry::find(&args.controller).and_then(|c| c.crd) {
        Some(crd) => {
            print!("{}", crd());
            0
        }
        None => {
            eprintln!(
                "error: unknown controller `{}`; `anvil list` names them",
                args.controller
            );
            2
        }
    }
}

/// `anvil run`: exit code 0 after a graceful shutdown, 86 after an injected crash, 2 for
/// usage errors, 1 for any other failure (unreachable cluster, missing CRD...).
pub fn run(args: &RunArgs) -> i32 {
    let runner = match args.controller.as_str() {
        name if RUNNABLE.contains(&name) => name,
        other if registry::find(other).is_some() => {
            eprintln!(
                "error: `{other}` is a deliberately broken variant kept for verification; it cannot be run"
            );
            return 2;
        }
        other => {
            eprintln!("error: unknown controller `{other}`; `anvil list` names them");
            return 2;
        }
    };
    if args.zk_address.is_some() && runner != "zookeeper" {
        eprintln!("error: --zk-address only applies to the zookeeper controller");
        return 2;
    }
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
    match rt.block_on(run_async(runner, args)) {
        Ok(()) => 0,
        Err(ShimError::CrdMissing { crd }) => {
            eprintln!(
                "error: CRD {crd} is not installed; run `anvil crd {runner} | kubectl apply -f -`"
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
            args.lease_name
                .clone()
                .unwrap_or_else(|| format!("anvil-{}", args.controller)),
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
        .with_crash_after_writes(args.crash_after_writes.map(|n| n as usize));
    match &args.namespace {
        Some(ns) => config.with_namespace(ns),
        None => config,
    }
}

async fn run_async(runner: &str, args: &RunArgs) -> Result<(), ShimError> {
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
    let r = runnable(runner).expect("checked by the caller");
    let crd_name = r.crd.metadata.name.clone().unwrap_or_default();
    anvil_shim::check_cluster(&cluster.client, &cluster.url, &crd_name).await?;
    let config = configure(r.config, args, &health);
    match runner {
        "zookeeper" => {
            anvil_zookeeper::run::run(cluster.client, config, args.zk_address.clone()).await
        }
        "rabbitmq" => anvil_rabbitmq::run::run(cluster.client, config).await,
        _ => {
            anvil_shim::run::<anvil_demo::DemoController>(cluster.client, config, NoExternalShim)
                .await
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
