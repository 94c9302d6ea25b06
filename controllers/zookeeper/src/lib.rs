//! The ZooKeeper controller: a `ZookeeperCluster` custom resource (`zookeeper.anvil.dev/v1`,
//! short name `zk`) owns a headless, a client and an admin-server Service, a ConfigMap with
//! `zoo.cfg` (and the log4j/env files the image reads) and a StatefulSet whose pod template
//! carries the ConfigMap's resourceVersion (a configuration change rolls the pods). Before the
//! StatefulSet is created or resized, the znode `/zookeeper-operator/<name>` is made to hold
//! `CLUSTER_SIZE=<replicas>` through the ZooKeeper API, an external request. The CR's status
//! reports the StatefulSet's ready replicas. Modelled on the Pravega zookeeper-operator and on
//! the upstream Anvil ZooKeeper controller.
//!
//! One folder, everything the framework needs: the CRD ([`resource`]), the reconciler
//! ([`reconciler`]), the external system ([`zk`]: request/response types and the znode-store
//! model; [`zk_client`]: the real client; [`run`]: the shim configuration), the
//! desired-state predicate ([`desired`]), the verification scope ([`verify`]) and the broken
//! variants ([`broken`]). See README.md for running it on a cluster.

pub mod broken;
pub mod desired;
pub mod reconciler;
pub mod resource;
pub mod run;
pub mod verify;
pub mod zk;
pub mod zk_client;

pub use desired::{current_state_matches, kube_state_matches, znode_matches};
pub use reconciler::ZookeeperController;
pub use resource::{ZookeeperCluster, ZookeeperClusterSpec, ZookeeperClusterStatus, crd};
pub use zk::{ZkError, ZkRequest, ZkResponse, ZnodeStore, ZnodeView};
