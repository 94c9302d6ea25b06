//! Anvil for Rust: objects (work in progress).
