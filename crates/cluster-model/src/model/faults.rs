//! Fault classes, their switches, and the errors each failure can answer.
//!
//! Every fault class has a switch that a weakly fair `Disable` step eventually turns off:
//! faults happen any number of times, then stop (DESIGN §5).
//!
//! | fault | scope switch | effect |
//! |---|---|---|
//! | crash | `faults.crash` | the controller restarts: ongoing reconciles are lost, requests in flight become stale |
//! | transient failure | `faults.drop` (Timeout only) or `faults.transient` (every error below) | the request is **not** executed; the sender gets an error |
//! | applied, then failed | `faults.lost_response` | the request **is** executed; the sender gets an error instead of the response |
//! | other writers | `faults.other_deletes`, `faults.other_updates` | someone else deletes or updates a managed object |
//! | pod loss | `faults.pod_losses` | a StatefulSet's ready count drops |

use anvil_reconciler::{ErrorReason, KubeRequest, Request};

/// Fault classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Controller crash.
    Crash,
    /// Transient request failure (not executed).
    Drop,
    /// Applied, then failed (executed, response lost).
    LostResponse,
    /// Other writers.
    OtherWriter,
    /// Pod loss.
    PodLoss,
}

impl Fault {
    /// Every fault class.
    pub const ALL: [Fault; 5] = [
        Fault::Crash,
        Fault::Drop,
        Fault::LostResponse,
        Fault::OtherWriter,
        Fault::PodLoss,
    ];
}

/// Fault switches (on = the fault may still happen).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaultState {
    /// Crash switch.
    pub crash: bool,
    /// Transient-failure switch.
    pub drop: bool,
    /// Applied-then-failed switch.
    pub lost_response: bool,
    /// Other-writer switch.
    pub other: bool,
    /// Pod-loss switch.
    pub pod_loss: bool,
}

impl FaultState {
    /// Whether fault class `f` may still happen.
    pub fn get(&self, f: Fault) -> bool {
        match f {
            Fault::Crash => self.crash,
            Fault::Drop => self.drop,
            Fault::LostResponse => self.lost_response,
            Fault::OtherWriter => self.other,
            Fault::PodLoss => self.pod_loss,
        }
    }
    /// Sets the switch of `f`.
    pub fn set(&mut self, f: Fault, v: bool) {
        match f {
            Fault::Crash => self.crash = v,
            Fault::Drop => self.drop = v,
            Fault::LostResponse => self.lost_response = v,
            Fault::OtherWriter => self.other = v,
            Fault::PodLoss => self.pod_loss = v,
        }
    }
}

/// Errors the shim can surface for a Kubernetes request that the API server did not execute:
/// the server's transient failures (504 Timeout, 500 ServerTimeout and InternalError, 429
/// TooManyRequests), transport failures (`Other`), and for `GetThen*` the `Conflict` the shim
/// returns when its bounded retry gives up (runtime rule R4).
pub fn transient_kube_errors(req: &KubeRequest) -> &'static [ErrorReason] {
    const BASE: &[ErrorReason] = &[
        ErrorReason::Timeout,
        ErrorReason::ServerTimeout,
        ErrorReason::InternalError,
        ErrorReason::TooManyRequests,
        ErrorReason::Other,
    ];
    const GET_THEN: &[ErrorReason] = &[
        ErrorReason::Timeout,
        ErrorReason::ServerTimeout,
        ErrorReason::InternalError,
        ErrorReason::TooManyRequests,
        ErrorReason::Other,
        ErrorReason::Conflict,
    ];
    match req {
        KubeRequest::GetThenUpdate { .. }
        | KubeRequest::GetThenUpdateStatus { .. }
        | KubeRequest::GetThenDelete { .. } => GET_THEN,
        _ => BASE,
    }
}

/// Errors a client can see for a request the API server **did** execute: the response timed
/// out (504 from the server, or the client's own timeout) or the connection broke after the
/// commit (`Other`).
pub const LOST_RESPONSE_ERRORS: &[ErrorReason] = &[ErrorReason::Timeout, ErrorReason::Other];

/// The errors a transient failure of `req` may answer under the scope's switches: only
/// `Timeout` with `drop`, every error of [`transient_kube_errors`] with `transient`. External
/// requests have one error answer (their model's `drop_response`), listed as `Timeout`.
pub fn transient_errors<Q>(req: &Request<Q>, all: bool) -> &'static [ErrorReason] {
    match req {
        Request::Kube(k) if all => transient_kube_errors(k),
        _ => &[ErrorReason::Timeout],
    }
}

/// The errors an applied-then-failed request may answer (one for external requests).
pub fn lost_response_errors<Q>(req: &Request<Q>) -> &'static [ErrorReason] {
    match req {
        Request::Kube(_) => LOST_RESPONSE_ERRORS,
        Request::External(_) => &[ErrorReason::Timeout],
    }
}
