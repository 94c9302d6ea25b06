use crate::Tokens;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The API server's failure reasons (`Status.reason`), plus `TransactionAbort` for the
/// atomic `GetThen*` requests and `Other` for everything else (including transport failures).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens,
)]
pub enum ErrorReason {
    /// The object does not exist (404).
    NotFound,
    /// An object with that name exists (409 on create).
    AlreadyExists,
    /// A precondition (resourceVersion, uid) failed (409).
    Conflict,
    /// The object failed validation (422).
    Invalid,
    /// The request was malformed (400).
    BadRequest,
    /// The request was not allowed (403).
    Forbidden,
    /// The server failed (500).
    InternalError,
    /// The request timed out (504).
    Timeout,
    /// The server timed out processing the request (500 with retry).
    ServerTimeout,
    /// The server is rate-limiting the client (429, API priority and fairness).
    TooManyRequests,
    /// A `GetThen*` request found the object no longer owned as required.
    TransactionAbort,
    /// Anything else: unknown reasons, transport failures, undecodable responses.
    Other,
}

impl ErrorReason {
    /// The reason for a `Status.reason` string and HTTP code, as the API server sends them.
    pub fn from_status(reason: &str, code: u16) -> Self {
        match reason {
            "NotFound" => ErrorReason::NotFound,
            "AlreadyExists" => ErrorReason::AlreadyExists,
            "Conflict" => ErrorReason::Conflict,
            "Invalid" => ErrorReason::Invalid,
            "BadRequest" => ErrorReason::BadRequest,
            "Forbidden" => ErrorReason::Forbidden,
            "InternalError" => ErrorReason::InternalError,
            "Timeout" => ErrorReason::Timeout,
            "ServerTimeout" => ErrorReason::ServerTimeout,
            "TooManyRequests" => ErrorReason::TooManyRequests,
            _ => match code {
                404 => ErrorReason::NotFound,
                409 => ErrorReason::Conflict,
                422 => ErrorReason::Invalid,
                400 => ErrorReason::BadRequest,
                403 => ErrorReason::Forbidden,
                504 => ErrorReason::Timeout,
                429 => ErrorReason::TooManyRequests,
                500 => ErrorReason::InternalError,
                _ => ErrorReason::Other,
            },
        }
    }
}

/// A failed request: the reason (what reconcilers branch on) and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Tokens)]
pub struct ApiError {
    /// Why it failed.
    pub reason: ErrorReason,
    /// What the server (or the shim) said.
    pub message: String,
}

impl ApiError {
    /// An error with a reason and message.
    pub fn new(reason: ErrorReason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
        }
    }

    /// Maps an API server `Status`. A `Status` that reports success is not an error; it is
    /// still mapped to `Other` rather than dropped, because the caller got it on a failure
    /// path: a failure is never turned into success.
    pub fn from_status(status: &kube_core::Status) -> Self {
        let reason = ErrorReason::from_status(&status.reason, status.code);
        let message = if status.message.is_empty() {
            format!("{} ({})", status.reason, status.code)
        } else {
            status.message.clone()
        };
        ApiError { reason, message }
    }

    /// True for `NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.reason == ErrorReason::NotFound
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(feature = "kube")]
impl From<&kube::Error> for ApiError {
    /// API errors keep their reason; every other client error (transport, TLS, decoding,
    /// configuration) is `Other`, never success.
    fn from(e: &kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => ApiError::from_status(status),
            other => ApiError::new(ErrorReason::Other, other.to_string()),
        }
    }
}

#[cfg(feature = "kube")]
impl From<kube::Error> for ApiError {
    fn from(e: kube::Error) -> Self {
        ApiError::from(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(reason: &str, code: u16) -> kube_core::Status {
        kube_core::Status {
            status: Some(kube_core::response::StatusSummary::Failure),
            code,
            message: "boom".into(),
            metadata: None,
            reason: reason.into(),
            details: None,
        }
    }

    #[test]
    fn every_server_reason_maps_to_itself() {
        for (reason, code, expected) in [
            ("NotFound", 404, ErrorReason::NotFound),
            ("AlreadyExists", 409, ErrorReason::AlreadyExists),
            ("Conflict", 409, ErrorReason::Conflict),
            ("Invalid", 422, ErrorReason::Invalid),
            ("BadRequest", 400, ErrorReason::BadRequest),
            ("Forbidden", 403, ErrorReason::Forbidden),
            ("InternalError", 500, ErrorReason::InternalError),
            ("Timeout", 504, ErrorReason::Timeout),
            ("ServerTimeout", 500, ErrorReason::ServerTimeout),
        ] {
            let e = ApiError::from_status(&status(reason, code));
            assert_eq!(e.reason, expected, "{reason}");
            assert_eq!(e.message, "boom");
        }
    }

    #[test]
    fn unknown_reasons_fall_back_to_the_code_and_then_to_other() {
        assert_eq!(
            ApiError::from_status(&status("", 404)).reason,
            ErrorReason::NotFound
        );
        assert_eq!(
            ApiError::from_status(&status("Gone", 410)).reason,
            ErrorReason::Other
        );
        assert_eq!(
            ApiError::from_status(&status("", 0)).reason,
            ErrorReason::Other
        );
        // Even a status claiming success, when handed over as an error, stays an error.
        let mut ok = status("", 200);
        ok.status = Some(kube_core::response::StatusSummary::Success);
        assert_eq!(ApiError::from_status(&ok).reason, ErrorReason::Other);
    }

    #[cfg(feature = "kube")]
    #[test]
    fn kube_errors_never_become_success() {
        let api = kube::Error::Api(Box::new(status("Conflict", 409)));
        assert_eq!(ApiError::from(&api).reason, ErrorReason::Conflict);
        let serde_err = serde_json::from_str::<u8>("x").unwrap_err();
        let decode = kube::Error::SerdeError(serde_err);
        let mapped = ApiError::from(&decode);
        assert_eq!(mapped.reason, ErrorReason::Other);
        assert!(
            mapped.message.contains("deserializing"),
            "{}",
            mapped.message
        );
    }
}
