//! The real ZooKeeper client against a real standalone server on loopback.

mod support;

use anvil_zookeeper::zk_client::{ZkClient, read_cluster_size_znodes};
use anvil_zookeeper::{ZkError, ZkRequest, ZkResponse, ZnodeView};
use std::time::Duration;
use support::zk_server::ZkServer;

fn req(name: &str, size: i32) -> ZkRequest {
    ZkRequest::SetClusterSize {
        namespace: "ns".into(),
        name: name.into(),
        client_port: 2181,
        size,
    }
}

#[tokio::test]
async fn set_cluster_size_creates_then_updates_the_znode() {
    let server = ZkServer::start();
    let client = ZkClient::fixed(server.address());
    assert_eq!(client.address_for(&req("a", 3)), server.address());
    assert_eq!(
        ZkClient::in_cluster().address_for(&req("a", 3)),
        "a-client.ns.svc.cluster.local:2181"
    );

    let snapshot = read_cluster_size_znodes(&server.address()).await.unwrap();
    assert!(snapshot.is_empty(), "{snapshot:?}");

    assert_eq!(
        client.execute(&req("a", 3)).await,
        ZkResponse::SetClusterSize(Ok(()))
    );
    let snapshot = read_cluster_size_znodes(&server.address()).await.unwrap();
    assert_eq!(
        snapshot
            .znode("ns", "a", "/zookeeper-operator/a")
            .as_deref(),
        Some("CLUSTER_SIZE=3")
    );

    assert_eq!(
        client.execute(&req("a", 5)).await,
        ZkResponse::SetClusterSize(Ok(()))
    );
    assert_eq!(
        client.execute(&req("b", 3)).await,
        ZkResponse::SetClusterSize(Ok(()))
    );
    let snapshot = read_cluster_size_znodes(&server.address()).await.unwrap();
    assert_eq!(
        snapshot
            .znode("ns", "a", "/zookeeper-operator/a")
            .as_deref(),
        Some("CLUSTER_SIZE=5")
    );
    assert_eq!(
        snapshot
            .znode("ns", "b", "/zookeeper-operator/b")
            .as_deref(),
        Some("CLUSTER_SIZE=3")
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    // Nothing listens on port 1 of loopback.
    let client = ZkClient::fixed("127.0.0.1:1").with_timeout(Duration::from_secs(2));
    match client.execute(&req("a", 3)).await {
        ZkResponse::SetClusterSize(Err(ZkError::Unavailable(_))) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
