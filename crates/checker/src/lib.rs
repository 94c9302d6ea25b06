//! Anvil for Rust: checker (work in progress).
