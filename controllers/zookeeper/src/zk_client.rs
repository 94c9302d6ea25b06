//! The real ZooKeeper API client behind [`ZkRequest`], on the `zookeeper-client` crate (async,
//! tokio).
//!
//! By default a request goes to the ensemble's client Service
//! ([`ZkRequest::address`], `<name>-client.<namespace>.svc.cluster.local:<port>`), which
//! resolves only inside the cluster. [`ZkClient::fixed`] sends every request to one connect
//! string instead (`anvil run zookeeper --zk-address 127.0.0.1:2181`; the end-to-end tests
//! point it at a server on loopback).

use crate::zk::{
    ZNODE_PARENT, ZkError, ZkRequest, ZkResponse, cluster_size_data, cluster_size_path,
};
use std::collections::BTreeMap;
use std::time::Duration;
use zookeeper_client::{Acls, Client, CreateMode, Error};

/// Executes [`ZkRequest`]s against real ZooKeeper servers.
#[derive(Clone, Debug)]
pub struct ZkClient {
    /// `None`: the ensemble's client Service; `Some`: this connect string for every request.
    address: Option<String>,
    /// Bound on one request, connection included.
    timeout: Duration,
}

impl Default for ZkClient {
    fn default() -> Self {
        ZkClient::in_cluster()
    }
}

impl ZkClient {
    /// Sends each request to its ensemble's client Service.
    pub fn in_cluster() -> Self {
        ZkClient {
            address: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends every request to `address` (a ZooKeeper connect string, e.g. `127.0.0.1:2181`).
    pub fn fixed(address: impl Into<String>) -> Self {
        ZkClient {
            address: Some(address.into()),
            timeout: Duration::from_secs(10),
        }
    }

    /// `Some(address)` -> [`ZkClient::fixed`], `None` -> [`ZkClient::in_cluster`].
    pub fn new(address: Option<String>) -> Self {
        address.map_or_else(ZkClient::in_cluster, ZkClient::fixed)
    }

    /// Bounds each request (connection included) by `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect string `req` goes to.
    pub fn address_for(&self, req: &ZkRequest) -> String {
        self.address.clone().unwrap_or_else(|| req.address())
    }

    /// Executes `req`; failures become error responses ([`ZkError::Unavailable`] for
    /// connection problems and timeouts, which the reconciler retries).
    pub async fn execute(&self, req: &ZkRequest) -> ZkResponse {
        let address = self.address_for(req);
        let run = async {
            match req {
                ZkRequest::SetClusterSize { name, size, .. } => {
                    let client = connect(&address, self.timeout).await?;
                    let result =
                        upsert(&client, &cluster_size_path(name), &cluster_size_data(*size)).await;
                    drop(client);
                    result
                }
            }
        };
        let result = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(ZkError::Unavailable(format!(
                "no answer from {address} within {:?}",
                self.timeout
            ))),
        };
        tracing::debug!(?req, %address, ?result, "zookeeper request");
        match req {
            ZkRequest::SetClusterSize { .. } => ZkResponse::SetClusterSize(result),
        }
    }
}

fn map_err(e: Error) -> ZkError {
    match e {
        Error::NoHosts
        | Error::Timeout
        | Error::ConnectionLoss
        | Error::SessionExpired
        | Error::SessionMoved
        | Error::ClientClosed
        | Error::Throttled => ZkError::Unavailable(e.to_string()),
        other => ZkError::Other(other.to_string()),
    }
}

async fn connect(address: &str, timeout: Duration) -> Result<Client, ZkError> {
    Client::connector()
        .with_session_timeout(timeout.max(Duration::from_secs(4)))
        .connect(address)
        .await
        .map_err(|e| ZkError::Unavailable(format!("connect to {address}: {e}")))
}

/// Makes `path` hold `data`: set it, or create it (and [`ZNODE_PARENT`]) when missing.
async fn upsert(client: &Client, path: &str, data: &str) -> Result<(), ZkError> {
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for _ in 0..3 {
        match client.set_data(path, data.as_bytes(), None).await {
            Ok(_) => return Ok(()),
            Err(Error::NoNode) => {}
            Err(e) => return Err(map_err(e)),
        }
        client
            .mkdir(ZNODE_PARENT, &options)
            .await
            .map_err(map_err)?;
        match client.create(path, data.as_bytes(), &options).await {
            Ok(_) => return Ok(()),
            // Someone created it between our set and create: set it again.
            Err(Error::NodeExists) => continue,
            Err(e) => return Err(map_err(e)),
        }
    }
    Err(ZkError::Other(format!(
        "{path} keeps appearing and vanishing"
    )))
}

/// Reads the data of every child of [`ZNODE_PARENT`] (and the parent itself) from the server at
/// `address`: a snapshot for the desired-state predicate ([`crate::ZnodeView`]).
pub async fn read_cluster_size_znodes(address: &str) -> Result<BTreeMap<String, String>, ZkError> {
    let client = connect(address, Duration::from_secs(10)).await?;
    let mut out = BTreeMap::new();
    let children = match client.list_children(ZNODE_PARENT).await {
        Ok(c) => c,
        Err(Error::NoNode) => return Ok(out),
        Err(e) => return Err(map_err(e)),
    };
    out.insert(ZNODE_PARENT.to_string(), String::new());
    for child in children {
        let path = format!("{ZNODE_PARENT}/{child}");
        match client.get_data(&path).await {
            Ok((data, _)) => {
                out.insert(path, String::from_utf8_lossy(&data).into_owned());
            }
            Err(Error::NoNode) => {}
            Err(e) => return Err(map_err(e)),
        }
    }
    Ok(out)
}
