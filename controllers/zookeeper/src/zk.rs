//! The controller's external system: the ZooKeeper API of the ensemble it manages.
//!
//! The reconciler sends one kind of external request, [`ZkRequest::SetClusterSize`]: make the
//! znode `/zookeeper-operator/<name>` hold `CLUSTER_SIZE=<size>` (creating it and its parent
//! when missing). The ensemble is addressed by the CR's client Service,
//! `<name>-client.<namespace>.svc.cluster.local:<client port>` ([`ZkRequest::address`]); the
//! real shim ([`crate::zk_client`]) can be told to connect elsewhere (tests point it at a
//! server on loopback).
//!
//! [`ZnodeStore`] is the model of the znode stores the checker uses: one store per ensemble,
//! keyed by the ensemble's namespace and name, holding znode data only (no versions: the
//! controller never reads them, and a version counter would make the state space infinite).
//! [`ZnodeView`] is what the desired-state predicate reads: the model's store and a snapshot
//! read from a real server both implement it.

use anvil_reconciler::Tokens;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Parent znode of every cluster-size znode.
pub const ZNODE_PARENT: &str = "/zookeeper-operator";

/// Path of the cluster-size znode of the ensemble `name`.
pub fn cluster_size_path(name: &str) -> String {
    format!("{ZNODE_PARENT}/{name}")
}

/// Data of the cluster-size znode for `size` servers.
pub fn cluster_size_data(size: i32) -> String {
    format!("CLUSTER_SIZE={size}")
}

/// A request to the ZooKeeper API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens)]
pub enum ZkRequest {
    /// Upsert `/zookeeper-operator/<name>` = `CLUSTER_SIZE=<size>` on the ensemble `name` in
    /// `namespace`, reached through its client Service on `client_port`.
    SetClusterSize {
        /// Namespace of the ZookeeperCluster.
        namespace: String,
        /// Name of the ZookeeperCluster.
        name: String,
        /// Client port of the ensemble.
        client_port: i32,
        /// The cluster size to record.
        size: i32,
    },
}

impl ZkRequest {
    /// The in-cluster address of the ensemble the request goes to.
    pub fn address(&self) -> String {
        match self {
            ZkRequest::SetClusterSize {
                namespace,
                name,
                client_port,
                ..
            } => format!("{name}-client.{namespace}.svc.cluster.local:{client_port}"),
        }
    }

    /// The ensemble the request goes to: (namespace, name).
    pub fn ensemble(&self) -> (&str, &str) {
        match self {
            ZkRequest::SetClusterSize {
                namespace, name, ..
            } => (namespace, name),
        }
    }

    /// The response of this request's kind carrying `err`: what a failed request answers.
    pub fn error_response(&self, err: ZkError) -> ZkResponse {
        match self {
            ZkRequest::SetClusterSize { .. } => ZkResponse::SetClusterSize(Err(err)),
        }
    }
}

/// Why a ZooKeeper request failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens)]
pub enum ZkError {
    /// The ensemble could not be reached or the session was lost (transient).
    Unavailable(String),
    /// Anything else the server answered.
    Other(String),
}

impl std::fmt::Display for ZkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZkError::Unavailable(m) => write!(f, "zookeeper unavailable: {m}"),
            ZkError::Other(m) => write!(f, "zookeeper error: {m}"),
        }
    }
}

/// The ZooKeeper API's answer to a [`ZkRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens)]
pub enum ZkResponse {
    /// Answer to [`ZkRequest::SetClusterSize`].
    SetClusterSize(Result<(), ZkError>),
}

/// Read access to znodes, for the desired-state predicate.
pub trait ZnodeView {
    /// Data of the znode at `path` on the ensemble `name` in `namespace`, if it exists.
    fn znode(&self, namespace: &str, name: &str, path: &str) -> Option<String>;
}

/// A snapshot of one server's znodes (path -> data), e.g. read from a real server in the
/// end-to-end tests, where one server stands in for every ensemble.
impl ZnodeView for BTreeMap<String, String> {
    fn znode(&self, _namespace: &str, _name: &str, path: &str) -> Option<String> {
        self.get(path).cloned()
    }
}

/// The model of the ZooKeeper ensembles' znode stores.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens,
)]
pub struct ZnodeStore {
    /// (namespace, ensemble name) -> (path -> data).
    pub ensembles: BTreeMap<(String, String), BTreeMap<String, String>>,
}

impl ZnodeStore {
    /// Executes `req` (it always succeeds: transient failures are injected by the caller, see
    /// [`ZkRequest::error_response`]) and returns the response.
    pub fn handle(&mut self, req: &ZkRequest) -> ZkResponse {
        match req {
            ZkRequest::SetClusterSize {
                namespace,
                name,
                size,
                ..
            } => {
                let nodes = self
                    .ensembles
                    .entry((namespace.clone(), name.clone()))
                    .or_default();
                nodes.insert(ZNODE_PARENT.to_string(), String::new());
                nodes.insert(cluster_size_path(name), cluster_size_data(*size));
                ZkResponse::SetClusterSize(Ok(()))
            }
        }
    }

    /// The response `req` gets when the ensemble is unreachable (nothing is executed).
    pub fn unavailable(req: &ZkRequest) -> ZkResponse {
        req.error_response(ZkError::Unavailable("connection loss (injected)".into()))
    }
}

impl ZnodeView for ZnodeStore {
    fn znode(&self, namespace: &str, name: &str, path: &str) -> Option<String> {
        self.ensembles
            .get(&(namespace.to_string(), name.to_string()))
            .and_then(|nodes| nodes.get(path))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(size: i32) -> ZkRequest {
        ZkRequest::SetClusterSize {
            namespace: "ns".into(),
            name: "zk".into(),
            client_port: 2181,
            size,
        }
    }

    #[test]
    fn set_cluster_size_upserts_and_is_idempotent() {
        let mut store = ZnodeStore::default();
        assert_eq!(store.znode("ns", "zk", "/zookeeper-operator/zk"), None);
        assert_eq!(store.handle(&req(3)), ZkResponse::SetClusterSize(Ok(())));
        assert_eq!(
            store.znode("ns", "zk", "/zookeeper-operator/zk").as_deref(),
            Some("CLUSTER_SIZE=3")
        );
        let once = store.clone();
        store.handle(&req(3));
        assert_eq!(store, once, "a repeated write leaves the same state");
        store.handle(&req(5));
        assert_eq!(
            store.znode("ns", "zk", "/zookeeper-operator/zk").as_deref(),
            Some("CLUSTER_SIZE=5")
        );
        assert_eq!(store.znode("other", "zk", "/zookeeper-operator/zk"), None);
    }

    #[test]
    fn address_is_the_client_service() {
        assert_eq!(req(3).address(), "zk-client.ns.svc.cluster.local:2181");
        assert!(matches!(
            ZnodeStore::unavailable(&req(3)),
            ZkResponse::SetClusterSize(Err(ZkError::Unavailable(_)))
        ));
    }
}
