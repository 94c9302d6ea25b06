use thiserror::Error;

/// Why an object could not be converted between its typed, dynamic and JSON forms.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// The JSON is not an object, or lacks `apiVersion`, `kind` or `metadata` in the right shape.
    #[error("malformed object: {0}")]
    Malformed(String),
    /// The object is of another kind than the typed conversion asked for.
    #[error("kind mismatch: expected {expected}, found {found}")]
    KindMismatch {
        /// The kind the caller asked for.
        expected: String,
        /// The kind the object has.
        found: String,
    },
    /// serde could not (de)serialise the object.
    #[error("serialization error: {0}")]
    Serde(String),
}

impl From<serde_json::Error> for ObjectError {
    fn from(e: serde_json::Error) -> Self {
        ObjectError::Serde(e.to_string())
    }
}
