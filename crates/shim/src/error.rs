use anvil_objects::ObjectRef;
use anvil_reconciler::ApiError;

/// Exit code of the `anvil run` process when crash injection stopped the controller
/// ([`ShimError::Crashed`]); distinct from 0 (clean shutdown), 1 (errors) and signal codes.
pub const CRASH_EXIT_CODE: i32 = 86;

/// Errors of the shim.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The API server did not answer (transport, TLS, authentication...).
    #[error("cannot reach the API server at {url}: {message}")]
    Unreachable {
        /// The server URL from the kubeconfig.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The custom resource definition is not installed.
    #[error("CRD {crd} is not installed; run `anvil crd <controller> | kubectl apply -f -`")]
    CrdMissing {
        /// The CRD's name (`<plural>.<group>`).
        crd: String,
    },
    /// Loading the kubeconfig or building the client failed.
    #[error("kubernetes client configuration: {0}")]
    Config(String),
    /// An API request of the shim itself (not of the reconciler) failed, e.g. the quorum read of
    /// the custom resource.
    #[error("{context}: {error}")]
    Api {
        /// What the shim was doing.
        context: String,
        /// The API server's (or transport's) error.
        error: ApiError,
    },
    /// A reconcile did not finish within the configured number of steps.
    #[error(
        "reconcile of {object} ran {steps} steps without reaching done or error (runaway reconciler?)"
    )]
    TooManySteps {
        /// The custom resource.
        object: ObjectRef,
        /// The step bound.
        steps: usize,
    },
    /// The custom resource could not be decoded as the reconciler's type.
    #[error("cannot decode {object}: {message}")]
    Decode {
        /// The custom resource.
        object: ObjectRef,
        /// The decoding error.
        message: String,
    },
    /// Crash injection: the controller stopped on purpose after the configured number of
    /// mutating requests in one reconcile (`anvil run` exits with [`CRASH_EXIT_CODE`]).
    #[error("crash injected after mutating request {writes} of the reconcile of {object}")]
    Crashed {
        /// The custom resource whose reconcile crashed.
        object: ObjectRef,
        /// The configured number of mutating requests.
        writes: usize,
    },
    /// Another replica took the leader Lease (or it could not be renewed in time): this
    /// process stopped reconciling at once.
    #[error("lost the leader Lease {lease}; stopping")]
    LostLeadership {
        /// `namespace/name` of the Lease.
        lease: String,
    },
    /// The watch machinery of the controller failed fatally.
    #[error("controller: {0}")]
    Controller(String),
}

impl ShimError {
    /// The process exit code `anvil run` should use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ShimError::Crashed { .. } => CRASH_EXIT_CODE,
            _ => 1,
        }
    }
}
