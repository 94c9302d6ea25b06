//! The error type of this crate.

use std::time::Duration;

/// Everything that can go wrong while provisioning, starting or using a test control plane.
#[derive(Debug, thiserror::Error)]
pub enum TestEnvError {
    /// The etcd / kube-apiserver / kube-controller-manager binaries could not be found or built.
    #[error("cannot provision control-plane binaries: {0}")]
    Provision(String),
    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A component exited early or the control plane did not become ready; `logs` holds the
    /// tails of every component's log.
    #[error("control plane failed to start: {message}\n{logs}")]
    Startup {
        /// What failed.
        message: String,
        /// Tails of the components' logs.
        logs: String,
    },
    /// Certificates or keys could not be generated.
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// The kubeconfig written for the control plane could not be loaded.
    #[error("cannot load kubeconfig: {0}")]
    Kubeconfig(String),
    /// An argument was unusable (e.g. a CRD without a name).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A request to the API server failed.
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    /// A condition was not reached in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// The condition waited for.
        what: String,
        /// How long was waited.
        timeout: Duration,
    },
    /// A component of the control plane exited although it was not killed on purpose.
    #[error("{component} exited unexpectedly ({status})")]
    Exited {
        /// The component's name (`etcd`, `kube-apiserver`, `kube-controller-manager`).
        component: &'static str,
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// A fault-injection call does not fit the component's state (e.g. restarting a component
    /// that runs, pausing one that was killed, or a component this control plane lacks).
    #[error("{0}")]
    Fault(String),
    /// The process-wide shared control plane failed to start (the message is the original
    /// error, repeated for every caller).
    #[error("shared control plane is unavailable: {0}")]
    Shared(String),
}

impl TestEnvError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        TestEnvError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = TestEnvError> = std::result::Result<T, E>;
