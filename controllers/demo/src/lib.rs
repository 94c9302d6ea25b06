//! The demo controller: a `DemoApp` custom resource (`demo.anvil.dev/v1`) owns a ConfigMap
//! holding its message and a StatefulSet running its image with its replica count. The
//! StatefulSet's pod template carries the ConfigMap's resourceVersion, so a message change
//! rolls the pods; the CR's status reports the StatefulSet's ready replicas.
//!
//! One folder, everything the framework needs: the CRD ([`resource`]), the reconciler
//! ([`reconciler`]), the desired-state predicate ([`desired`]).

pub mod broken;
pub mod desired;
pub mod reconciler;
pub mod resource;
pub mod verify;

pub use desired::current_state_matches;
pub use reconciler::DemoController;
pub use resource::{DemoApp, DemoAppSpec, DemoAppStatus, crd};
