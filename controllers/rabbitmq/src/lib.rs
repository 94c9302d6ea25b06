//! The RabbitMQ controller: a `RabbitmqCluster` custom resource (`rabbitmq.anvil.dev/v1`,
//! short name `rbmq`) owns a headless and a client Service, an Erlang cookie Secret and a
//! default-user Secret (random values, generated once and never rotated), a plugins and a
//! server-configuration ConfigMap, a ServiceAccount, Role and RoleBinding for peer discovery,
//! and a StatefulSet whose pod template carries a hash of the server configuration (a
//! configuration change rolls the pods) and whose replicas never decrease. The CR's status
//! reports the StatefulSet's ready replicas. Modelled on the RabbitMQ cluster-operator and on
//! the upstream Anvil RabbitMQ controller.
//!
//! One folder, everything the framework needs: the CRD ([`resource`]), the reconciler
//! ([`reconciler`]), randomness as an external request ([`random`]: request/response types,
//! the model's answer and the real source), the desired-state predicate and the transition
//! properties ([`desired`]), the verification scope ([`verify`]), the broken variants
//! ([`broken`]) and the shim configuration ([`run`]). See README.md.

pub mod broken;
pub mod desired;
pub mod random;
pub mod reconciler;
pub mod resource;
pub mod run;
pub mod verify;

pub use desired::current_state_matches;
pub use random::{OsRandom, RandomRequest, RandomResponse};
pub use reconciler::RabbitmqController;
pub use resource::{RabbitmqCluster, RabbitmqClusterSpec, RabbitmqClusterStatus, crd};
