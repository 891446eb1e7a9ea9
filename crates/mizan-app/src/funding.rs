//! Funding: money entering a wallet from a card, through a [`Processor`].
//!
//! A funding is an intent in two submissions: first a pending transfer
//! clearing → wallet and a `fundings` document in status `pending`; then, on the
//! processor's answer, a post (success) or a void (decline) of that transfer with the
//! document updated. A decline therefore never creates money. The card number is
//! held in a [`Secret`] and only its last four digits are ever stored.

use mizan_core::{AccountId, Money, Secret, TransferId};
use mizan_ledger::{ledger_of, BusinessRow, CreateTransferResult, Ledger, Submission};
use mizan_ledger::{TransferFlags, TransferRequest};
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::identity::{self, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    derived_u128, idempotency_key, internal, to_json, DeclineReason, IdempotencyKey, PaymentError,
    COLLECTION_IDEMPOTENCY, PROCESSOR_CLEARING_USD, TRANSFER_CODE_FUNDING,
};

/// Domain separator of funding hold ids, derived from (person, Idempotency-Key).
const FUNDING_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.funding.v1";

pub const CARD_NUMBER_DIGITS_MIN: usize = 12;
pub const CARD_NUMBER_DIGITS_MAX: usize = 19;
/// A pending funding the server never resolves (a crash between the two
/// submissions) is voided by the ledger after this long.
pub const FUNDING_PENDING_TIMEOUT_SECONDS: u32 = 3_600;
pub const COLLECTION_FUNDINGS: &str = "fundings";
pub const TOPIC_FUNDING_SUCCEEDED: &str = "funding.succeeded";
pub const TOPIC_FUNDING_FAILED: &str = "funding.failed";

/// A card number: 12–19 digits. Prints as `***`; only [`CardNumber::last4`] leaves it.
#[derive(Debug, Clone)]
pub struct CardNumber(Secret<String>);

impl CardNumber {
    pub fn parse(text: Secret<String>) -> Result<CardNumber, PaymentError> {
        let digits = text.expose();
        let length_ok = (CARD_NUMBER_DIGITS_MIN..=CARD_NUMBER_DIGITS_MAX).contains(&digits.len());
        if length_ok && digits.bytes().all(|byte| byte.is_ascii_digit()) {
            Ok(CardNumber(text))
        } else {
            Err(PaymentError::CardNumberInvalid)
        }
    }

    pub fn last4(&self) -> String {
        let digits = self.0.expose();
        digits[digits.len() - 4..].to_owned()
    }

    fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// What a processor answered to a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeDecision {
    Approved,
    Declined(DeclineReason),
}

/// A card processor. Implementations translate to and from one processor's API.
pub trait Processor: Send + Sync {
    /// Charges `card`. `intent` (the funding id) is the processor-side idempotency
    /// key: the same intent charged twice must charge once.
    fn charge(&self, intent: &str, card: &CardNumber, amount: Money) -> ChargeDecision;
}

/// A deterministic processor for the sandbox and tests, by card number:
/// `4000000000009995` → insufficient funds, `4000000000009979` → stolen card,
/// anything else (e.g. `4242424242424242`) → approved.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxProcessor;

impl Processor for SandboxProcessor {
    fn charge(&self, _intent: &str, card: &CardNumber, _amount: Money) -> ChargeDecision {
        match card.expose() {
            "4000000000009995" => ChargeDecision::Declined(DeclineReason::InsufficientFunds),
            "4000000000009979" => ChargeDecision::Declined(DeclineReason::StolenCard),
            _ => ChargeDecision::Approved,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingStatus {
    Pending,
    Succeeded,
    Declined,
}

/// A funding as the `fundings` collection stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FundingDocument {
    id: String,
    person: String,
    amount_minor: i64,
    currency: String,
    card_last4: String,
    status: FundingStatus,
    decline_reason: Option<DeclineReason>,
    pending_transfer_id: String,
    created_at_ns: u64,
}

/// A funding that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funding {
    pub id: String,
    pub amount: Money,
}

fn random_transfer_id() -> Result<TransferId, PaymentError> {
    loop {
        let raw: u128 = rand::random();
        if raw != 0 && raw != u128::MAX {
            return TransferId::new(raw).map_err(|error| internal("transfer id", error));
        }
    }
}

/// How a funding submission went: its transfer's result, or the key was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Claimed(CreateTransferResult),
    KeyTaken,
}

async fn submit_one(
    ledger: &Ledger,
    transfer: TransferRequest,
    document: &FundingDocument,
    extra_rows: Vec<BusinessRow>,
    event: Option<(&str, u64)>,
) -> Result<Held, PaymentError> {
    let body = to_json(document)?;
    let mut rows = extra_rows;
    rows.push(BusinessRow::Document {
        collection: COLLECTION_FUNDINGS.to_owned(),
        key: document.id.clone(),
        body: body.clone(),
    });
    if let Some((topic, now_ns)) = event {
        rows.push(crate::outbox::event_row(topic, &body, now_ns));
    }
    let submission = Submission {
        transfers: vec![transfer],
        rows,
        atomic: true,
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting a funding", error))?;
    if result.row_conflict.is_some() {
        return Ok(Held::KeyTaken);
    }
    match result.transfers.as_slice() {
        [outcome] => Ok(Held::Claimed(outcome.result)),
        other => Err(internal("funding results", other.len())),
    }
}

/// What the `idempotency` claim of a funding stores: the request's fingerprint,
/// the funding it started, and the answer once the processor gave one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FundingClaim {
    request_sha256: String,
    funding_id: String,
    amount_minor: i64,
    /// `None` while the processor call is in flight (or was cut off by a crash).
    decline_reason: Option<DeclineReason>,
    resolved: bool,
}

/// A funding answer: the first, or a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingOutcome {
    pub funding: Funding,
    pub replayed: bool,
}

fn fingerprint(person: PersonId, amount: Money, card: &CardNumber) -> String {
    // The card enters only as its last four digits: the claim must not hold a value
    // from which the number could be recovered.
    let canonical = format!(
        "funding|{person}|{}|{}|{}",
        amount.minor_units(),
        amount.currency().code(),
        card.last4()
    );
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Answers from a stored claim: a replay when the request is the same (a decline
/// replays as the same decline), in progress while unresolved, else reuse.
fn answer_claim(claim: &FundingClaim, fingerprint: &str) -> Result<FundingOutcome, PaymentError> {
    if claim.request_sha256 != fingerprint {
        return Err(PaymentError::IdempotencyKeyReused);
    }
    if !claim.resolved {
        return Err(PaymentError::IdempotencyRequestInProgress);
    }
    if let Some(reason) = claim.decline_reason {
        return Err(PaymentError::CardDeclined(reason));
    }
    Ok(FundingOutcome {
        funding: Funding {
            id: claim.funding_id.clone(),
            amount: Money::from_minor(claim.amount_minor, WALLET_CURRENCY),
        },
        replayed: true,
    })
}

/// Charges a card and credits the person's wallet, once per `Idempotency-Key`; a
/// decline moves no money.
///
/// The first submission holds the amount (pending clearing → wallet, with a
/// timeout), claims the key (`Create("idempotency", person:key)`) and writes the
/// funding `pending`; the pending transfer's id is derived from (person, key), so a
/// retry can never hold twice. A retry while the processor call is in flight answers
/// `IdempotencyRequestInProgress`; after it, the stored answer. If the process dies
/// between the two submissions, the hold expires and no money is created.
#[tracing::instrument(skip_all, fields(%person))]
#[allow(clippy::too_many_arguments)]
pub async fn fund(
    ledger: &Ledger,
    reader: &SharedReader,
    processor: &dyn Processor,
    person: PersonId,
    amount: Money,
    card: CardNumber,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<FundingOutcome, PaymentError> {
    let request_sha256 = fingerprint(person, amount, &card);
    let claim_key = idempotency_key(person, &key);
    let pending_id = TransferId::new(derived_u128(FUNDING_TRANSFER_ID_DOMAIN, person, &key))
        .map_err(|error| internal("funding transfer id", error))?;
    let clearing = AccountId::new(PROCESSOR_CLEARING_USD)
        .map_err(|error| internal("clearing account", error))?;
    let mut document = FundingDocument {
        id: format!("{:032x}", pending_id.get()),
        person: person.to_string(),
        amount_minor: amount.minor_units(),
        currency: amount.currency().code().to_owned(),
        card_last4: card.last4(),
        status: FundingStatus::Pending,
        decline_reason: None,
        pending_transfer_id: pending_id.to_string(),
        created_at_ns: now_ns,
    };
    let mut claim = FundingClaim {
        request_sha256: request_sha256.clone(),
        funding_id: document.id.clone(),
        amount_minor: amount.minor_units(),
        decline_reason: None,
        resolved: false,
    };
    let pending = TransferRequest::single(
        pending_id,
        clearing,
        person.wallet_id(WALLET_CURRENCY)?,
        amount.minor_units(),
        ledger_of(WALLET_CURRENCY),
        TRANSFER_CODE_FUNDING,
    )
    .with_flags(TransferFlags::PENDING)
    .with_timeout(FUNDING_PENDING_TIMEOUT_SECONDS);
    let claim_row = BusinessRow::Create {
        collection: COLLECTION_IDEMPOTENCY.to_owned(),
        key: claim_key.clone(),
        body: to_json(&claim)?,
    };
    let held = submit_one(ledger, pending, &document, vec![claim_row], None).await?;
    match held {
        Held::Claimed(CreateTransferResult::Ok) => {}
        Held::Claimed(other) => {
            return Err(internal("funding pending transfer", format!("{other:?}")))
        }
        Held::KeyTaken => {
            let stored = identity::read_document(reader, COLLECTION_IDEMPOTENCY, claim_key)
                .await?
                .ok_or_else(|| internal("claim taken but unreadable", &document.id))?;
            let stored: FundingClaim =
                serde_json::from_slice(&stored).map_err(|_| PaymentError::IdempotencyKeyReused)?;
            return answer_claim(&stored, &request_sha256);
        }
    }
    let decision = processor.charge(&document.id, &card, amount);
    let post = decision == ChargeDecision::Approved;
    match decision {
        ChargeDecision::Approved => document.status = FundingStatus::Succeeded,
        ChargeDecision::Declined(reason) => {
            document.status = FundingStatus::Declined;
            document.decline_reason = Some(reason);
            claim.decline_reason = Some(reason);
        }
    }
    claim.resolved = true;
    let claim_row = BusinessRow::Document {
        collection: COLLECTION_IDEMPOTENCY.to_owned(),
        key: claim_key,
        body: to_json(&claim)?,
    };
    let topic = if post {
        TOPIC_FUNDING_SUCCEEDED
    } else {
        TOPIC_FUNDING_FAILED
    };
    let resolution = TransferRequest::resolve(random_transfer_id()?, pending_id, post, 0);
    let resolved = submit_one(
        ledger,
        resolution,
        &document,
        vec![claim_row],
        Some((topic, now_ns)),
    )
    .await?;
    if resolved != Held::Claimed(CreateTransferResult::Ok) {
        return Err(internal("funding resolution", format!("{resolved:?}")));
    }
    match decision {
        ChargeDecision::Approved => {
            tracing::info!(funding = %document.id, "funding succeeded");
            Ok(FundingOutcome {
                funding: Funding {
                    id: document.id,
                    amount,
                },
                replayed: false,
            })
        }
        ChargeDecision::Declined(reason) => {
            tracing::info!(funding = %document.id, %reason, "funding declined");
            Err(PaymentError::CardDeclined(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn card(text: &str) -> CardNumber {
        CardNumber::parse(Secret::new(text.to_owned())).unwrap()
    }

    #[test]
    fn card_numbers_never_print_and_keep_last4() {
        let number = card("4242424242424242");
        assert!(!format!("{number:?}").contains("4242424242424242"));
        assert_eq!(number.last4(), "4242");
        for bad in ["", "42424242424", "4242 4242 4242 4242", &"4".repeat(20)] {
            assert!(
                CardNumber::parse(Secret::new(bad.to_owned())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sandbox_decides_by_card_number() {
        let amount = Money::from_minor(100, WALLET_CURRENCY);
        let sandbox = SandboxProcessor;
        assert_eq!(
            sandbox.charge("intent", &card("4242424242424242"), amount),
            ChargeDecision::Approved
        );
        assert_eq!(
            sandbox.charge("intent", &card("4000000000009995"), amount),
            ChargeDecision::Declined(DeclineReason::InsufficientFunds)
        );
        assert_eq!(
            sandbox.charge("intent", &card("4000000000009979"), amount),
            ChargeDecision::Declined(DeclineReason::StolenCard)
        );
    }
}
