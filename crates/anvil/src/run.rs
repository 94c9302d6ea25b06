//! `anvil run <controller>`: runs a controller against a real cluster through the shim, and
//! `anvil crd <controller>`: prints its CRD.

use crate::registry;
use anvil_shim::{NoExternalShim, ShimConfig, ShimError};
use std::path::PathBuf;
use std::time::Duration;

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
        "demo" | "zookeeper" | "rabbitmq" => args.controller.as_str(),
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

fn configure(config: ShimConfig, args: &RunArgs) -> ShimConfig {
    let config = config
        .with_requeue_after(Duration::from_secs(args.requeue_seconds))
        .with_crash_after_writes(args.crash_after_writes.map(|n| n as usize));
    match &args.namespace {
        Some(ns) => config.with_namespace(ns),
        None => config,
    }
}

async fn run_async(runner: &str, args: &RunArgs) -> Result<(), ShimError> {
    let cluster = anvil_shim::connect(args.kubeconfig.as_deref()).await?;
    match runner {
        "zookeeper" => {
            anvil_shim::check_cluster(
                &cluster.client,
                &cluster.url,
                anvil_zookeeper::run::CRD_NAME,
            )
            .await?;
            let config = configure(anvil_zookeeper::run::shim_config(), args);
            anvil_zookeeper::run::run(cluster.client, config, args.zk_address.clone()).await
        }
        "rabbitmq" => {
            anvil_shim::check_cluster(&cluster.client, &cluster.url, anvil_rabbitmq::run::CRD_NAME)
                .await?;
            let config = configure(anvil_rabbitmq::run::shim_config(), args);
            anvil_rabbitmq::run::run(cluster.client, config).await
        }
        _ => {
            anvil_shim::check_cluster(&cluster.client, &cluster.url, "demoapps.demo.anvil.dev")
                .await?;
            anvil_shim::register_resource::<anvil_demo::DemoApp>();
            let config = configure(
                ShimConfig::new("demo")
                    .owns::<k8s_openapi::api::core::v1::ConfigMap>()
                    .owns::<k8s_openapi::api::apps::v1::StatefulSet>(),
                args,
            );
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
