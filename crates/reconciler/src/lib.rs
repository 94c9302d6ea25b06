//! Anvil for Rust: reconciler (work in progress).
