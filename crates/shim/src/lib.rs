//! Anvil for Rust: shim (work in progress).
