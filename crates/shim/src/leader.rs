//! Leader election on a `coordination.k8s.io` Lease (with `kube-lease-manager`), so that
//! several replicas of a controller can run and only one reconciles.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ShimError;
use crate::telemetry;

/// Leader election settings ([`crate::ShimConfig::with_leader_election`]).
///
/// [`crate::run`] first waits until it holds the Lease `namespace/lease_name` (creating it if
/// needed), then starts the controller. The holder renews the Lease `grace` seconds before it
/// expires; when the holder dies, another replica takes over once `lease_duration` seconds
/// have passed since the last renewal. A replica that loses the Lease stops at once:
/// [`crate::run`] returns [`ShimError::LostLeadership`] (`anvil run` exits 1 and is
/// restarted). A graceful shutdown releases the Lease, so a standby takes over immediately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// This replica's identity (the Lease's `holderIdentity`; the pod name in a Deployment).
    pub identity: String,
    /// Seconds a Lease stays valid after its last renewal.
    pub lease_duration: u64,
    /// Seconds before expiry at which the holder renews (less than `lease_duration`).
    pub grace: u64,
}

impl LeaderElection {
    /// A Lease `namespace/lease_name` held as `identity`, valid 15 s, renewed 5 s before expiry.
    pub fn new(
        lease_name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        LeaderElection {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: 15,
            grace: 5,
        }
    }
}

/// The Lease held by this process.
pub(crate) struct Leadership {
    rx: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>,
    controller: String,
}

impl Leadership {
    /// Resolves when the Lease is lost (or its renewal task died).
    pub(crate) async fn lost(&mut self) {
        loop {
            if !*self.rx.borrow_and_update() {
                return;
            }
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Releases the Lease (graceful shutdown), waiting a few seconds at most.
    pub(crate) async fn release(self) {
        let Leadership {
            rx,
            task,
            controller,
        } = self;
        drop(rx);
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        telemetry::set_leader(&controller, false);
        tracing::info!("released the leader Lease");
    }
}

/// Waits until this process holds the Lease; `None` when `shutdown` resolved first.
pub(crate) async fn acquire(
    client: &Client,
    le: &LeaderElection,
    controller: &str,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Option<Leadership>, ShimError> {
    telemetry::set_leader(controller, false);
    let manager = LeaseManagerBuilder::new(client.clone(), &le.lease_name)
        .with_namespace(&le.namespace)
        .with_identity(&le.identity)
        .with_duration(le.lease_duration)
        .with_grace(le.grace)
        .build()
        .await
        .map_err(|e| {
            ShimError::Controller(format!(
                "leader election on Lease {}/{}: {e}",
                le.namespace, le.lease_name
            ))
        })?;
    let (mut rx, task) = manager.watch().await;
    tracing::info!(
        lease = %format!("{}/{}", le.namespace, le.lease_name),
        identity = %le.identity,
        "waiting to become the leader"
    );
    tokio::pin!(shutdown);
    loop {
        if *rx.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = &mut shutdown => {
                drop(rx);
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                return Ok(None);
            }
            changed = rx.changed() => {
                if changed.is_err() {
                    let why = match task.await {
                        Ok(Err(e)) => e.to_string(),
                        Ok(Ok(_)) => "the Lease task stopped".into(),
                        Err(e) => e.to_string(),
                    };
                    return Err(ShimError::Controller(format!("leader election: {why}")));
                }
            }
        }
    }
    telemetry::set_leader(controller, true);
    tracing::info!(identity = %le.identity, "became the leader; starting the controller");
    Ok(Some(Leadership {
        rx,
        task,
        controller: controller.to_string(),
    }))
}
