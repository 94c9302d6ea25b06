//! The FluentBit and FluentBitConfig controllers, checked together in one cluster model.
//!
//! A `FluentBitConfig` (short name `fbc`) holds the Fluent Bit configuration; its controller
//! ([`FluentBitConfigController`], [`config`]) renders it into a Secret of the same name. A
//! `FluentBit` (short name `fb`) names that configuration; its controller
//! ([`FluentBitController`], [`fluentbit`]) waits for the Secret (reporting it missing in the
//! status), then keeps a ServiceAccount, a Role, a RoleBinding, a Service and a DaemonSet
//! ([`objects`]) that mounts the Secret and carries its hash on the pod template.
//!
//! One folder, everything the framework needs: the CRDs ([`resource`]), the reconcilers, the
//! desired-state predicates ([`desired`]), the verification scopes ([`verify`]: both
//! controllers in one model, and each alone), the broken variants ([`broken`]) and the shim
//! configuration ([`run`]).

pub mod broken;
pub mod config;
pub mod desired;
pub mod fluentbit;
pub mod objects;
pub mod resource;
pub mod run;
pub mod verify;

pub use config::FluentBitConfigController;
pub use desired::{config_matches, fluent_bit_matches};
pub use fluentbit::FluentBitController;
pub use resource::{
    FluentBit, FluentBitConfig, FluentBitConfigSpec, FluentBitSpec, FluentBitStatus,
    fluent_bit_config_crd, fluent_bit_crd,
};
