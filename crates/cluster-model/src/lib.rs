//! Anvil for Rust: cluster-model (work in progress).
