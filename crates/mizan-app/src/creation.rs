//! Optional `Idempotency-Key` on requests that create something (an app, a webhook
//! endpoint, a post, a subscription tier, a case): the key, scoped to its caller and
//! route, is claimed by a `Create` row in the same atomic submission as the object,
//! so a retry never creates a second one. The claim keeps the first answer (unless it
//! held a secret shown once) and the request's fingerprint: the same key with another
//! request is `idempotency_key_reused`.

use mizan_ledger::BusinessRow;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{self, SharedReader};
use crate::payments::{IdempotencyKey, COLLECTION_IDEMPOTENCY};

/// Why a creation under a key was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreationError {
    #[error("this Idempotency-Key was already used with a different request")]
    KeyReused,
    #[error("this Idempotency-Key already created {id}, whose secret was shown once")]
    SecretNotReplayable { id: String },
    /// A bug or a store failure; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// An `Idempotency-Key` on a creating request, scoped to its caller and route, with
/// the request's fingerprint.
#[derive(Debug, Clone)]
pub struct Creation {
    claim_key: String,
    request_sha256: String,
    claimed_at_ns: u64,
}

/// What a creation claim stores: never a secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CreationClaim {
    request_sha256: String,
    /// When the key was claimed, for the sweep; 0 in claims from before it was kept.
    #[serde(default)]
    claimed_at_ns: u64,
    object_id: String,
    /// The first answer, when it held no secret.
    response: Option<serde_json::Value>,
}

/// How a request under a used key is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// The first answer, to send again with `Idempotent-Replayed: true`.
    Response(serde_json::Value),
}

impl Creation {
    /// `scope` names the caller and the route (`operator:apps`,
    /// `app:<id>:webhook-endpoints`); `canonical` is the request in one string;
    /// `now_ns` the time of the request, kept in the claim for the sweep.
    pub fn new(scope: &str, key: &IdempotencyKey, canonical: &str, now_ns: u64) -> Creation {
        Creation {
            claim_key: format!("{scope}:{}", key.as_str()),
            request_sha256: hex::encode(Sha256::digest(canonical.as_bytes())),
            claimed_at_ns: now_ns,
        }
    }

    /// The claim row that commits with the object; `response` only when it holds no
    /// secret.
    pub fn claim_row(
        &self,
        object_id: &str,
        response: Option<serde_json::Value>,
    ) -> Result<BusinessRow, CreationError> {
        let claim = CreationClaim {
            request_sha256: self.request_sha256.clone(),
            claimed_at_ns: self.claimed_at_ns,
            object_id: object_id.to_owned(),
            response,
        };
        Ok(BusinessRow::Create {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: self.claim_key.clone(),
            body: serde_json::to_vec(&claim)
                .map_err(|error| CreationError::Internal(format!("encoding a claim: {error}")))?,
        })
    }

    /// [`Creation::claim_row`] keeping `answer`, which holds no secret, as the first
    /// answer to replay.
    pub fn answer_row(
        &self,
        object_id: &str,
        answer: &impl Serialize,
    ) -> Result<BusinessRow, CreationError> {
        let response = serde_json::to_value(answer)
            .map_err(|error| CreationError::Internal(format!("encoding an answer: {error}")))?;
        self.claim_row(object_id, Some(response))
    }

    /// The answer to a request under this key if the key was used: the stored
    /// response, reuse with another request, or a secret that can't be replayed.
    pub async fn replay(&self, reader: &SharedReader) -> Result<Option<Replay>, CreationError> {
        let Some(body) =
            identity::read_document(reader, COLLECTION_IDEMPOTENCY, self.claim_key.clone())
                .await
                .map_err(|error| CreationError::Internal(format!("reading a claim: {error}")))?
        else {
            return Ok(None);
        };
        // A claim of another kind under the same key (a payment's) does not parse:
        // the key was used for another request.
        let claim: CreationClaim =
            serde_json::from_slice(&body).map_err(|_| CreationError::KeyReused)?;
        if claim.request_sha256 != self.request_sha256 {
            return Err(CreationError::KeyReused);
        }
        match claim.response {
            Some(response) => Ok(Some(Replay::Response(response))),
            None => Err(CreationError::SecretNotReplayable {
                id: claim.object_id,
            }),
        }
    }

    /// After a `Create` conflict: the claim the winner wrote.
    pub async fn replay_after_conflict(
        &self,
        reader: &SharedReader,
    ) -> Result<Replay, CreationError> {
        self.replay(reader).await?.ok_or_else(|| {
            CreationError::Internal(format!(
                "creation claim {} taken but unreadable",
                self.claim_key
            ))
        })
    }
}

/// A creation's answer: new, or the replay of the first.
#[derive(Debug, Clone, PartialEq)]
pub enum Created<T> {
    New(T),
    Replayed(Replay),
}

/// The first answer when a request came with a key (`creation`) already used.
pub async fn replay_used(
    creation: Option<&Creation>,
    reader: &SharedReader,
) -> Result<Option<Replay>, CreationError> {
    match creation {
        Some(creation) => creation.replay(reader).await,
        None => Ok(None),
    }
}

/// After a submission answered a `Create` conflict on `collection`: the winner's
/// answer when it was `creation`'s claim; `None` when it was another row's.
pub async fn replay_conflict(
    creation: Option<&Creation>,
    collection: &str,
    reader: &SharedReader,
) -> Result<Option<Replay>, CreationError> {
    match creation {
        Some(creation) if collection == COLLECTION_IDEMPOTENCY => {
            creation.replay_after_conflict(reader).await.map(Some)
        }
        _ => Ok(None),
    }
}
