//! Helpers of the end-to-end tests.

pub mod fluent_conf;
