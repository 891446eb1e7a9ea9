//! `Idempotency-Key` on requests that act on something that already exists (accept a
//! paid DM, cancel a subscription, decide a case, change a setting): Stripe's
//! semantics around any handler, for the routes whose use case has no claim of its
//! own.
//!
//! A request under a key first claims it with a `Create` row holding the request's
//! fingerprint and the time it started. The claim is then either:
//! - answered: the handler ran and its answer (status, content type, body) is stored
//!   in the claim, so a retry gets the same answer without running it again — except
//!   a successful answer holding a secret shown once, of which only the status is
//!   kept and a retry is refused ([`ActionError::SecretNotReplayable`]);
//! - released: the handler failed on the server's side (5xx) or was rate limited, so
//!   nothing is kept and a retry runs it again;
//! - or left in progress by a crash. A retry meanwhile is told to wait
//!   ([`ActionError::InProgress`]); once the claim is older than
//!   [`ACTION_STALE_AFTER_NS`] a retry takes it over and runs the handler again. The
//!   actions are guarded by their object's state (a paid DM is settled once), so a
//!   second run answers that state rather than acting twice.
//!
//! Claims carry the time of their current run (`claimed_at_ns`, as every claim does),
//! and the key sweep deletes them after [`crate::payments::IDEMPOTENCY_KEY_TTL_NS`]
//! ([`crate::payments::sweep_expired_claims`]).

use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{self, SharedReader};
use crate::payments::{IdempotencyKey, COLLECTION_IDEMPOTENCY};

/// How long a claim may stay in progress before a retry takes it over.
pub const ACTION_STALE_AFTER_NS: u64 = 60 * 1_000_000_000;
/// The largest answer body a claim keeps; a larger answer is not kept, and a retry
/// runs the handler again.
pub const ACTION_ANSWER_BYTES_MAX: usize = 64 * 1024;
/// Every action claim's key starts with this, after which come the caller's scope
/// and the key.
const CLAIM_PREFIX: &str = "action:";

/// Why a request under a key is not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    InProgress,
    #[error("this Idempotency-Key already answered a secret, shown once and not kept")]
    SecretNotReplayable,
    /// A bug or a store failure; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

fn internal(context: &str, error: impl std::fmt::Display) -> ActionError {
    ActionError::Internal(format!("{context}: {error}"))
}

/// The answer a claim keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    /// The body as sent; `None` when it held a secret.
    pub body: Option<String>,
}

/// What an action claim stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionClaim {
    request_sha256: String,
    /// When the current run started (named as in every other claim, for the sweep).
    #[serde(alias = "started_at_ns")]
    claimed_at_ns: u64,
    /// Who started the current run: a retry taking a stale claim over writes its own
    /// and reads it back, so of two takers only the last written runs.
    attempt: String,
    answer: Option<StoredAnswer>,
}

/// An `Idempotency-Key` on an action request, scoped to its caller, with the
/// request's fingerprint.
#[derive(Debug, Clone)]
pub struct Action {
    claim_key: String,
    request_sha256: String,
}

/// What to do with a request under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// Run the handler, then [`Action::finish`].
    Run,
    /// The first answer, to send again with `Idempotent-Replayed: true`.
    Replay(StoredAnswer),
}

impl Action {
    /// `scope` names the caller (`person:<id>`, `operator`); `method`, `path` and
    /// `body` are the request as sent, so the same key with another request — another
    /// route, object or body — is [`ActionError::KeyReused`].
    pub fn new(scope: &str, key: &IdempotencyKey, method: &str, path: &str, body: &[u8]) -> Action {
        let mut hasher = Sha256::new();
        for part in [method.as_bytes(), path.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.update(body);
        Action {
            claim_key: format!("{CLAIM_PREFIX}{scope}:{}", key.as_str()),
            request_sha256: hex::encode(hasher.finalize()),
        }
    }

    fn claim(&self, now_ns: u64, answer: Option<StoredAnswer>) -> Result<Vec<u8>, ActionError> {
        let claim = ActionClaim {
            request_sha256: self.request_sha256.clone(),
            claimed_at_ns: now_ns,
            attempt: hex::encode(rand::random::<[u8; 16]>()),
            answer,
        };
        serde_json::to_vec(&claim).map_err(|error| internal("encoding a claim", error))
    }

    async fn stored(&self, reader: &SharedReader) -> Result<Option<Vec<u8>>, ActionError> {
        identity::read_document(reader, COLLECTION_IDEMPOTENCY, self.claim_key.clone())
            .await
            .map_err(|error| internal("reading a claim", error))
    }

    /// Claims the key, or answers what a request under it already did.
    pub async fn begin(
        &self,
        ledger: &Ledger,
        reader: &SharedReader,
        now_ns: u64,
    ) -> Result<Begun, ActionError> {
        // A claim released between our `Create` and our read: try once more.
        for _ in 0..2 {
            let row = BusinessRow::Create {
                collection: COLLECTION_IDEMPOTENCY.to_owned(),
                key: self.claim_key.clone(),
                body: self.claim(now_ns, None)?,
            };
            let taken = crate::documents::submit_rows(ledger, vec![row])
                .await
                .map_err(|error| internal("claiming a key", error))?;
            if taken.is_none() {
                return Ok(Begun::Run);
            }
            let Some(body) = self.stored(reader).await? else {
                continue;
            };
            // A claim of another kind under the key (a payment's) does not parse.
            let claim: ActionClaim =
                serde_json::from_slice(&body).map_err(|_| ActionError::KeyReused)?;
            if claim.request_sha256 != self.request_sha256 {
                return Err(ActionError::KeyReused);
            }
            return match claim.answer {
                Some(StoredAnswer { body: None, .. }) => Err(ActionError::SecretNotReplayable),
                Some(answer) => Ok(Begun::Replay(answer)),
                None if now_ns.saturating_sub(claim.claimed_at_ns) < ACTION_STALE_AFTER_NS => {
                    Err(ActionError::InProgress)
                }
                None => self.take_over(ledger, reader, now_ns).await,
            };
        }
        Err(ActionError::InProgress)
    }

    /// Replaces a stale claim by one of ours; runs only if ours is what was kept.
    async fn take_over(
        &self,
        ledger: &Ledger,
        reader: &SharedReader,
        now_ns: u64,
    ) -> Result<Begun, ActionError> {
        let body = self.claim(now_ns, None)?;
        let row = BusinessRow::Document {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: self.claim_key.clone(),
            body: body.clone(),
        };
        crate::documents::submit_rows(ledger, vec![row])
            .await
            .map_err(|error| internal("taking a stale claim over", error))?;
        match self.stored(reader).await? {
            Some(kept) if kept == body => Ok(Begun::Run),
            _ => Err(ActionError::InProgress),
        }
    }

    /// After the handler ran: keeps `answer` for retries, or releases the key
    /// (`None`) so a retry runs the handler again.
    pub async fn finish(
        &self,
        ledger: &Ledger,
        answer: Option<StoredAnswer>,
        now_ns: u64,
    ) -> Result<(), ActionError> {
        let row = match answer {
            Some(answer) => BusinessRow::Document {
                collection: COLLECTION_IDEMPOTENCY.to_owned(),
                key: self.claim_key.clone(),
                body: self.claim(now_ns, Some(answer))?,
            },
            None => BusinessRow::Delete {
                collection: COLLECTION_IDEMPOTENCY.to_owned(),
                key: self.claim_key.clone(),
            },
        };
        crate::documents::submit_rows(ledger, vec![row])
            .await
            .map_err(|error| internal("storing an answer", error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text).unwrap()
    }

    #[test]
    fn the_fingerprint_covers_route_object_and_body() {
        let base = Action::new("person:1", &key("k"), "POST", "/v1/a/1", b"{}");
        let same = Action::new("person:1", &key("k"), "POST", "/v1/a/1", b"{}");
        assert_eq!(base.request_sha256, same.request_sha256);
        for other in [
            Action::new("person:1", &key("k"), "POST", "/v1/a/2", b"{}"),
            Action::new("person:1", &key("k"), "POST", "/v1/b/1", b"{}"),
            Action::new("person:1", &key("k"), "POST", "/v1/a/1", b"{\"x\":1}"),
            // The method and path run together must not collide with another split.
            Action::new("person:1", &key("k"), "POST/", "v1/a/1", b"{}"),
        ] {
            assert_ne!(base.request_sha256, other.request_sha256);
        }
        assert_eq!(base.claim_key, "action:person:1:k");
    }
}
