//! {{name}}: a Kubernetes operator written with Anvil for Rust.
//!
//! A `Website` custom resource ([`resource`]) is served by a StatefulSet whose pods mount a
//! ConfigMap holding the page. The controller is a chain of managed objects ([`reconciler`]);
//! [`desired`] says when the cluster matches a `Website`; [`verify`] checks, exhaustively
//! within its scope, that the controller gets there despite crashes and failed requests and
//! stays there (ESR), and never breaks the safety invariants; [`run`] configures it for a real
//! cluster. [`controller`] ties them together for the command (`src/main.rs`).

pub mod desired;
pub mod reconciler;
pub mod resource;
pub mod run;
pub mod verify;

pub use desired::current_state_matches;
pub use reconciler::WebsiteController;
pub use resource::{Website, WebsiteSpec, WebsiteStatus, crd};

/// The controller as the command knows it: `verify website`, `crd website`, `run website`,
/// `manifests website`.
pub fn controller() -> anvil::Controller {
    anvil::Controller::new(
        "website",
        "Website: a page served by a StatefulSet, from a ConfigMap",
        verify::default_scope,
        verify::check,
    )
    .crd(crd)
    .runs::<WebsiteController>(run::shim_config)
}
