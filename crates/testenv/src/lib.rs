//! Anvil for Rust: testenv (work in progress).
