//! Randomness as an external request.
//!
//! The Erlang cookie and the default user's credentials are random, and `reconcile_core` is
//! pure: it has no source of randomness. So randomness enters the way every other effect does,
//! as a request: the reconciler sends [`RandomRequest::Fresh`] (only when the Secret to fill
//! does not exist) and puts the answer in the Secret it creates; it never asks again for a
//! Secret that exists, so a value is generated once and never rotated by a later reconcile.
//!
//! * On a real cluster, [`OsRandom`] answers with values from the operating system's random
//!   source (`getrandom`): 32 alphanumeric characters each (about 190 bits).
//! * In the cluster model, [`RandomModel`] answers with *opaque fresh* values: `random-1`,
//!   `random-2`, ..., the smallest ones that no Secret stored in the cluster contains. The
//!   reconciler only copies them (never parses or compares them with anything but other
//!   copies), so what the checker sees of a real random value is exactly what matters: it
//!   differs from every value already stored, which is what makes a regenerated cookie
//!   visible as a change. The model's values are not fresh with respect to values that are
//!   only in flight (in a stale request, or in a local state): the model cannot see those.
//!   Two generations whose values could then coincide in the model are a create that failed
//!   because the Secret already existed (no effect either way) or a write that a correct
//!   controller never sends (an Update of generated data); see `README.md`.
//!
//! Why not derive the cookie from the custom resource's uid (deterministic, no request)? The
//! uid is readable by anyone who can read the custom resource, so the cookie (which grants
//! full control over every node of the cluster) would not be secret; and in the model uids
//! are tokens that the checker renames, which a value *computed* from a uid would escape.
//!
//! Under the request-drop fault a random request can fail ([`RandomError::Unavailable`]): the
//! reconcile fails and is retried.

use anvil_objects::{DynamicObject, Kind};
use anvil_reconciler::Tokens;
use anvil_shim::{BoxFuture, ExternalShim};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::{Deserialize, Serialize};

/// A request for fresh random values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens)]
pub enum RandomRequest {
    /// `count` fresh values for the Secret `namespace/secret` (the names are for logs and
    /// counterexamples only: the values do not depend on them).
    Fresh {
        /// Namespace of the Secret the values are for.
        namespace: String,
        /// Name of the Secret the values are for.
        secret: String,
        /// How many values.
        count: u8,
    },
}

/// Why a random request failed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens)]
pub enum RandomError {
    /// The random source failed (transient).
    Unavailable(String),
}

impl std::fmt::Display for RandomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RandomError::Unavailable(why) => write!(f, "random source unavailable: {why}"),
        }
    }
}

/// The answer to a [`RandomRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Tokens)]
pub enum RandomResponse {
    /// Answer to [`RandomRequest::Fresh`]: exactly `count` values.
    Fresh(Result<Vec<String>, RandomError>),
}

/// Length of a real random value.
pub const VALUE_LEN: usize = 32;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One value of [`VALUE_LEN`] alphanumeric characters from the operating system's random
/// source (rejection sampling, so every character is uniform).
pub fn os_random_value() -> Result<String, RandomError> {
    let mut out = String::with_capacity(VALUE_LEN);
    let mut buf = [0u8; 64];
    while out.len() < VALUE_LEN {
        getrandom::fill(&mut buf).map_err(|e| RandomError::Unavailable(e.to_string()))?;
        for &b in &buf {
            // 62 * 4 = 248: bytes below it map uniformly onto the alphabet
            if b < 248 && out.len() < VALUE_LEN {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

/// The real random source (`anvil run rabbitmq`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl OsRandom {
    /// Answers one request.
    pub fn answer(&self, req: &RandomRequest) -> RandomResponse {
        let RandomRequest::Fresh { count, .. } = req;
        RandomResponse::Fresh((0..*count).map(|_| os_random_value()).collect())
    }
}

impl ExternalShim<RandomRequest, RandomResponse> for OsRandom {
    fn call(&self, req: RandomRequest) -> BoxFuture<'_, RandomResponse> {
        Box::pin(async move { self.answer(&req) })
    }
}

/// Every value stored in the cluster's Secrets (`data`, base64-decoded), as text.
fn stored_secret_texts<'a>(objects: impl Iterator<Item = &'a DynamicObject>) -> Vec<String> {
    let secret = Kind::of::<Secret>();
    let mut out = Vec::new();
    for o in objects.filter(|o| o.kind() == &secret) {
        if let Some(data) = o.body().get("data").and_then(|d| d.as_object()) {
            for v in data.values().filter_map(|v| v.as_str()) {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v) {
                    out.push(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
    }
    out
}

/// The model's answer to `req`: the `count` smallest values `random-<i>` that no stored
/// Secret's data contains (see the module documentation).
pub fn model_answer<'a>(
    req: &RandomRequest,
    objects: impl Iterator<Item = &'a DynamicObject>,
) -> RandomResponse {
    let RandomRequest::Fresh { count, .. } = req;
    let stored = stored_secret_texts(objects);
    // `random-1` is contained in `random-10`: compare whole words.
    let used = |v: &str| {
        stored.iter().any(|t| {
            t.match_indices(v).any(|(i, _)| {
                let end = i + v.len();
                !t[end..].starts_with(|c: char| c.is_ascii_digit())
            })
        })
    };
    let values = (1..)
        .map(|i| format!("random-{i}"))
        .filter(|v| !used(v))
        .take(usize::from(*count))
        .collect();
    RandomResponse::Fresh(Ok(values))
}

/// The answer to a random request that failed (the request-drop fault).
pub fn unavailable(_: &RandomRequest) -> RandomResponse {
    RandomResponse::Fresh(Err(RandomError::Unavailable(
        "transient failure (model)".into(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn os_values_are_alphanumeric_and_distinct() {
        let a = os_random_value().unwrap();
        let b = os_random_value().unwrap();
        assert_eq!(a.len(), VALUE_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
        let RandomResponse::Fresh(Ok(v)) = OsRandom.answer(&RandomRequest::Fresh {
            namespace: "n".into(),
            secret: "s".into(),
            count: 2,
        }) else {
            panic!()
        };
        assert_eq!(v.len(), 2);
        assert_ne!(v[0], v[1]);
    }

    #[test]
    fn model_values_avoid_every_stored_value() {
        let secret = |data: &[(&str, &str)]| {
            let s = Secret {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some("s".into()),
                    ..Default::default()
                },
                data: Some(
                    data.iter()
                        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                        .collect(),
                ),
                ..Default::default()
            };
            DynamicObject::from_typed(&s).unwrap()
        };
        let req = |count| RandomRequest::Fresh {
            namespace: "n".into(),
            secret: "s".into(),
            count,
        };
        assert_eq!(
            model_answer(&req(2), std::iter::empty()),
            RandomResponse::Fresh(Ok(vec!["random-1".into(), "random-2".into()]))
        );
        let stored = [
            secret(&[(".erlang.cookie", "random-1")]),
            secret(&[(
                "default_user.conf",
                "default_user = random-3\ndefault_pass = random-10\n",
            )]),
        ];
        assert_eq!(
            model_answer(&req(3), stored.iter()),
            RandomResponse::Fresh(Ok(vec![
                "random-2".into(),
                "random-4".into(),
                "random-5".into()
            ]))
        );
    }
}
