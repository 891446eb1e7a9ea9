//! Funding: money entering a wallet from a card, through a [`Processor`].
//!
//! A funding is an intent in two submissions: first a pending transfer
//! clearing → wallet and a `fundings` document in status `pending`; then, on the
//! processor's answer, a post (success) or a void (decline) of that transfer with the
//! document updated. A decline therefore never creates money. The card number is
//! held in a [`Secret`] and only its last four digits are ever stored.

use std::collections::HashMap;
use std::sync::Mutex;

use mizan_core::{AccountId, Money, Secret, TransferId};
use mizan_ledger::{
    ledger_of, BusinessRow, CreateTransferResult, Ledger, PendingStatus, Submission,
};
use mizan_ledger::{TransferFlags, TransferRequest};
use serde::{Deserialize, Serialize};

use sha2::{Digest, Sha256};

use crate::identity::{self, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    idempotency_key, internal, time_ordered_u128, to_json, DeclineReason, IdempotencyKey,
    PaymentError, COLLECTION_IDEMPOTENCY, PROCESSOR_CLEARING_USD, TRANSFER_CODE_FUNDING,
};
use crate::reconcile::{self, IntentKind, Rails, Reconciled};

/// Domain separator of funding hold ids, derived from (person, Idempotency-Key).
const FUNDING_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.funding.v1";
/// Domain separator of the credit that applies a charge after its hold expired.
const FUNDING_LATE_CREDIT_DOMAIN: &[u8] = b"mizan.funding.late-credit.v1";

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
    /// The issuer wants the cardholder to answer a challenge (3-D Secure) first.
    ChallengeRequired,
}

/// A card processor. Implementations translate to and from one processor's API.
pub trait Processor: Send + Sync {
    /// Charges `card`. `intent` (the funding id) is the processor-side idempotency
    /// key: the same intent charged twice must charge once, and answers what the
    /// intent is now (approved once its challenge was passed, say) — the reconciler
    /// relies on it to learn what an interrupted request was told.
    fn charge(&self, intent: &str, card: &CardNumber, amount: Money) -> ChargeDecision;
    /// Passes the cardholder's answer to the challenge of `intent`; approved or
    /// declined, never another challenge.
    fn complete_challenge(&self, intent: &str, answer: &str) -> ChargeDecision;
}

/// The sandbox card whose charge asks for a challenge (3-D Secure-like).
pub const SANDBOX_CHALLENGE_CARD: &str = "4000000000003220";
/// The answer the sandbox issuer accepts; any other fails authentication.
pub const SANDBOX_CHALLENGE_ANSWER: &str = "123456";
/// Longest challenge answer accepted.
pub const CHALLENGE_ANSWER_CHARS_MAX: usize = 64;
pub const COLLECTION_FUNDING_CHALLENGES: &str = "funding_challenges";
/// A marker per funding whose challenge answer went (or was about to go) to the
/// processor: the reconciler asks the processor again only about those, and leaves
/// a challenge nobody answered alone (asking would reveal the card for nothing).
pub const COLLECTION_CHALLENGE_ANSWERS: &str = "funding_challenge_answers";

/// A deterministic processor for the sandbox and tests, by card number
/// (`4000000000003220` asks for a challenge, answered `123456`):
/// `4000000000009995` → insufficient funds, `4000000000009979` → stolen card,
/// anything else (e.g. `4242424242424242`) → approved.
///
/// Like a real processor it remembers what each intent became: after its challenge
/// is answered, charging the intent again answers the challenge's outcome, not a new
/// challenge. The card-number answers need no memory; the challenge outcomes are
/// kept in this process (at most [`SANDBOX_INTENTS_REMEMBERED_MAX`]), so after a
/// restart an answered challenge reads as unanswered again.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxProcessor;

/// Most challenge outcomes the sandbox remembers; it starts over when full.
pub const SANDBOX_INTENTS_REMEMBERED_MAX: usize = 65_536;

/// The sandbox's memory of answered challenges, by intent: the processor's state,
/// which outlives any one `SandboxProcessor` value as a real processor's would.
static SANDBOX_CHALLENGE_OUTCOMES: Mutex<Option<HashMap<String, ChargeDecision>>> =
    Mutex::new(None);

fn sandbox_outcomes<T>(use_them: impl FnOnce(&mut HashMap<String, ChargeDecision>) -> T) -> T {
    // A poisoned lock only means another thread panicked mid-insert; the map is
    // still a valid map.
    let mut guard = SANDBOX_CHALLENGE_OUTCOMES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    use_them(guard.get_or_insert_with(HashMap::new))
}

impl Processor for SandboxProcessor {
    fn charge(&self, intent: &str, card: &CardNumber, _amount: Money) -> ChargeDecision {
        if let Some(outcome) = sandbox_outcomes(|outcomes| outcomes.get(intent).copied()) {
            return outcome;
        }
        match card.expose() {
            "4000000000009995" => ChargeDecision::Declined(DeclineReason::InsufficientFunds),
            "4000000000009979" => ChargeDecision::Declined(DeclineReason::StolenCard),
            SANDBOX_CHALLENGE_CARD => ChargeDecision::ChallengeRequired,
            _ => ChargeDecision::Approved,
        }
    }

    fn complete_challenge(&self, intent: &str, answer: &str) -> ChargeDecision {
        let outcome = if answer == SANDBOX_CHALLENGE_ANSWER {
            ChargeDecision::Approved
        } else {
            ChargeDecision::Declined(DeclineReason::AuthenticationFailed)
        };
        sandbox_outcomes(|outcomes| {
            if outcomes.len() >= SANDBOX_INTENTS_REMEMBERED_MAX {
                outcomes.clear();
            }
            *outcomes.entry(intent.to_owned()).or_insert(outcome)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingStatus {
    Pending,
    /// Waiting for the cardholder's challenge answer; the hold stays pending.
    RequiresAction,
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
    /// The card's vault token (`tok_card_…`); the number itself is only in the vault.
    #[serde(default)]
    card_token: String,
    status: FundingStatus,
    decline_reason: Option<DeclineReason>,
    pending_transfer_id: String,
    created_at_ns: u64,
    /// The key's `idempotency` claim, so completing a challenge can resolve it.
    #[serde(default)]
    claim_key: String,
}

/// A funding that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funding {
    pub id: String,
    pub amount: Money,
}

pub(crate) fn random_transfer_id() -> Result<TransferId, PaymentError> {
    loop {
        let raw: u128 = rand::random();
        if raw != 0 && raw != u128::MAX {
            return TransferId::new(raw).map_err(|error| internal("transfer id", error));
        }
    }
}

/// How an intent's submission went: its transfer's result, or the key was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    Claimed(CreateTransferResult),
    KeyTaken,
}

/// One submission of a processor intent (a funding, a cash-out): its transfer, its
/// document under `collection/id`, extra rows (the idempotency claim) and, when
/// given, an outbox event carrying the document. With a `charge`, the transfer draws
/// its amount from the person's limit allowances in the same atomic submission.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn submit_intent<D: Serialize>(
    ledger: &Ledger,
    transfer: TransferRequest,
    charge: Option<&crate::limits::Charge>,
    collection: &str,
    id: &str,
    document: &D,
    extra_rows: Vec<BusinessRow>,
    event: Option<(&str, u64)>,
) -> Result<Held, PaymentError> {
    let body = to_json(document)?;
    let mut rows = extra_rows;
    rows.push(BusinessRow::Document {
        collection: collection.to_owned(),
        key: id.to_owned(),
        body: body.clone(),
    });
    if let Some((topic, now_ns)) = event {
        rows.push(crate::outbox::event_row(topic, &body, now_ns));
    }
    let (transfer_id, amount_minor) = (transfer.id, transfer.amount);
    let mut transfers = vec![transfer];
    if let Some(charge) = charge {
        transfers.extend(charge.legs(transfer_id, amount_minor)?);
    }
    let submission = Submission {
        transfers,
        rows,
        atomic: true,
        ensure: charge
            .map(crate::limits::Charge::ensure)
            .unwrap_or_default(),
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting an intent", error))?;
    if result.row_conflict.is_some() {
        return Ok(Held::KeyTaken);
    }
    if let Some(charge) = charge {
        return Ok(Held::Claimed(charge.settle(&result.transfers)?));
    }
    match result.transfers.as_slice() {
        [outcome] => Ok(Held::Claimed(outcome.result)),
        other => Err(internal("intent results", other.len())),
    }
}

/// The second submission of a processor intent: post or void its hold, with the
/// intent's document, its resolved claim and its event.
pub(crate) struct Resolution<'a> {
    /// A `Create` row that must commit with the resolution (else nothing does).
    pub(crate) guard: Option<BusinessRow>,
    pub(crate) pending_id: TransferId,
    pub(crate) post: bool,
    pub(crate) collection: &'a str,
    pub(crate) id: &'a str,
    pub(crate) claim_key: String,
    pub(crate) topic: &'a str,
    pub(crate) now_ns: u64,
    /// Removes the intent from the reconciler's index (and whatever else only an
    /// open intent needs), in the same submission.
    pub(crate) closes: Vec<BusinessRow>,
}

/// How a resolution went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// The hold was posted or voided, with the rows.
    Done,
    /// Its guard was taken: someone else resolved the intent.
    Taken,
    /// The hold expired before the answer came (nothing was written): the answer
    /// must be applied by a transfer of its own ([`crate::reconcile`]).
    HoldExpired,
}

pub(crate) async fn resolve_intent<D: Serialize, R: Serialize>(
    ledger: &Ledger,
    resolution: Resolution<'_>,
    document: &D,
    claim: &IntentClaim<R>,
) -> Result<Resolved, PaymentError> {
    let mut rows = vec![BusinessRow::Document {
        collection: COLLECTION_IDEMPOTENCY.to_owned(),
        key: resolution.claim_key,
        body: to_json(claim)?,
    }];
    rows.extend(resolution.guard);
    rows.extend(resolution.closes);
    let transfer = TransferRequest::resolve(
        random_transfer_id()?,
        resolution.pending_id,
        resolution.post,
        0,
    );
    let resolved = submit_intent(
        ledger,
        transfer,
        None,
        resolution.collection,
        resolution.id,
        document,
        rows,
        Some((resolution.topic, resolution.now_ns)),
    )
    .await?;
    match resolved {
        Held::Claimed(CreateTransferResult::Ok) => Ok(Resolved::Done),
        Held::KeyTaken => Ok(Resolved::Taken),
        Held::Claimed(CreateTransferResult::PendingTransferExpired) => Ok(Resolved::HoldExpired),
        Held::Claimed(other) => Err(internal("intent resolution", format!("{other:?}"))),
    }
}

/// What the `idempotency` claim of a processor intent (a funding, a cash-out) stores:
/// the request's fingerprint, the intent it started, and the answer once there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IntentClaim<R> {
    pub(crate) request_sha256: String,
    /// When the key was claimed, for the sweep; 0 in claims from before it was kept.
    #[serde(default)]
    pub(crate) claimed_at_ns: u64,
    pub(crate) intent_id: String,
    pub(crate) amount_minor: i64,
    /// Why the processor refused, once it did.
    pub(crate) failure: Option<R>,
    /// False while the processor call is in flight (or was cut off by a crash).
    pub(crate) resolved: bool,
    /// Unresolved, waiting for the customer (a card challenge).
    #[serde(default)]
    pub(crate) requires_action: bool,
}

/// What a retry gets from a claim that holds an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimAnswer {
    pub(crate) intent_id: String,
    pub(crate) amount_minor: i64,
    pub(crate) requires_action: bool,
}

impl<R: Copy> IntentClaim<R> {
    /// The stored answer to a retry: the intent id when it succeeded, the refusal
    /// (as `refused` makes it) when not; in progress while unresolved; reuse when the
    /// request differs.
    pub(crate) fn answer(
        &self,
        fingerprint: &str,
        refused: impl Fn(R) -> PaymentError,
    ) -> Result<ClaimAnswer, PaymentError> {
        if self.request_sha256 != fingerprint {
            return Err(PaymentError::IdempotencyKeyReused);
        }
        if !self.resolved && !self.requires_action {
            return Err(PaymentError::IdempotencyRequestInProgress);
        }
        match self.failure {
            Some(reason) => Err(refused(reason)),
            None => Ok(ClaimAnswer {
                intent_id: self.intent_id.clone(),
                amount_minor: self.amount_minor,
                requires_action: !self.resolved,
            }),
        }
    }
}

type FundingClaim = IntentClaim<DeclineReason>;

/// A funding answer: the first, or a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundingOutcome {
    pub funding: Funding,
    /// The cardholder must answer a challenge (`complete_challenge`) before the
    /// money arrives; until then the amount is only held.
    pub requires_action: bool,
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

/// Answers a retry from its stored claim.
fn answer_claim(claim: &FundingClaim, fingerprint: &str) -> Result<FundingOutcome, PaymentError> {
    let answer = claim.answer(fingerprint, PaymentError::CardDeclined)?;
    Ok(FundingOutcome {
        funding: Funding {
            id: answer.intent_id,
            amount: Money::from_minor(answer.amount_minor, WALLET_CURRENCY),
        },
        requires_action: answer.requires_action,
        replayed: true,
    })
}

/// Which card a funding charges.
#[derive(Debug)]
pub enum CardSource {
    /// A number typed in; with `save_as_default`, saved as the person's default
    /// card once the charge is approved (or awaits its challenge).
    New {
        number: CardNumber,
        save_as_default: bool,
    },
    /// A saved card, by its id (`GET /v1/me/cards`).
    Saved { card_id: String },
}

/// The number to charge and its token: a new number is tokenized in the vault
/// (Luhn-checked); a saved card's number is revealed to the payment service, the
/// reveal written to the vault's access log.
async fn card_to_charge(
    vault: &crate::vault::SharedVault,
    reader: &SharedReader,
    person: PersonId,
    source: &CardSource,
) -> Result<(CardNumber, mizan_vault::Token), PaymentError> {
    match source {
        CardSource::New { number, .. } => {
            let token = crate::vault::tokenize_card(vault, person, &number.0).await?;
            Ok((number.clone(), token))
        }
        CardSource::Saved { card_id } => {
            let saved = crate::vault::saved_card(reader, person, card_id).await?;
            let token = mizan_vault::TokenId::parse(&saved.id)
                .map_err(|error| internal("saved card token", error.code()))?;
            let number = crate::vault::reveal_card_for_charge(
                vault,
                person,
                &token,
                "card funding from the person's saved card",
            )
            .await?;
            let card = CardNumber::parse(number)?;
            let info = mizan_vault::Token {
                token,
                person: crate::vault::vault_person(person).map_err(crate::vault::payment_error)?,
                last4: saved.last4,
            };
            Ok((card, info))
        }
    }
}

/// Charges a card (a new number or a saved card) and credits the person's wallet,
/// once per `Idempotency-Key`; a decline moves no money. The card is tokenized in
/// the vault; documents keep its token and last 4 only.
#[tracing::instrument(skip_all, fields(%person))]
#[allow(clippy::too_many_arguments)]
pub async fn fund(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    processor: &dyn Processor,
    vault: &crate::vault::SharedVault,
    person: PersonId,
    amount: Money,
    source: CardSource,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<FundingOutcome, PaymentError> {
    let (card, token) = card_to_charge(vault, reader, person, &source).await?;
    let outcome = fund_card(
        ledger, reader, limits, processor, person, amount, card, &token, key, now_ns,
    )
    .await?;
    if let CardSource::New {
        save_as_default: true,
        ..
    } = source
    {
        crate::vault::save_default_card(ledger, reader, person, &token, now_ns).await?;
    }
    Ok(outcome)
}

/// Charges the person's default saved card (subscription renewals and other
/// charges the person agreed to in advance); `CardNotFound` without one.
#[allow(clippy::too_many_arguments)]
pub async fn charge_default_card(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    processor: &dyn Processor,
    vault: &crate::vault::SharedVault,
    person: PersonId,
    amount: Money,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<FundingOutcome, PaymentError> {
    let default = crate::vault::saved_cards(reader, person)
        .await?
        .into_iter()
        .find(|card| card.default)
        .ok_or(PaymentError::CardNotFound)?;
    let source = CardSource::Saved {
        card_id: default.id,
    };
    fund(
        ledger, reader, limits, processor, vault, person, amount, source, key, now_ns,
    )
    .await
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
#[allow(clippy::too_many_arguments)]
async fn fund_card(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    processor: &dyn Processor,
    person: PersonId,
    amount: Money,
    card: CardNumber,
    token: &mizan_vault::Token,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<FundingOutcome, PaymentError> {
    let request_sha256 = fingerprint(person, amount, &card);
    let claim_key = idempotency_key(person, &key);
    let pending_id = TransferId::new(time_ordered_u128(
        FUNDING_TRANSFER_ID_DOMAIN,
        person,
        &key,
        now_ns,
    ))
    .map_err(|error| internal("funding transfer id", error))?;
    let clearing = AccountId::new(PROCESSOR_CLEARING_USD)
        .map_err(|error| internal("clearing account", error))?;
    let mut document = FundingDocument {
        id: format!("{:032x}", pending_id.get()),
        person: person.to_string(),
        amount_minor: amount.minor_units(),
        currency: amount.currency().code().to_owned(),
        card_last4: card.last4(),
        card_token: token.token.as_str().to_owned(),
        status: FundingStatus::Pending,
        decline_reason: None,
        pending_transfer_id: pending_id.to_string(),
        created_at_ns: now_ns,
        claim_key: claim_key.clone(),
    };
    let mut claim = FundingClaim {
        request_sha256: request_sha256.clone(),
        claimed_at_ns: now_ns,
        intent_id: document.id.clone(),
        amount_minor: amount.minor_units(),
        failure: None,
        resolved: false,
        requires_action: false,
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
    let index_row = reconcile::open_intent_row(IntentKind::Funding, now_ns, &document.id);
    let charge = crate::limits::prepare(
        reader,
        limits,
        person,
        crate::limits::Movement::Funding,
        now_ns,
    )
    .await?;
    let held = submit_intent(
        ledger,
        pending,
        Some(&charge),
        COLLECTION_FUNDINGS,
        &document.id,
        &document,
        vec![claim_row, index_row],
        None,
    )
    .await?;
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
    if decision == ChargeDecision::ChallengeRequired {
        await_challenge(ledger, &mut document, &mut claim).await?;
        return Ok(FundingOutcome {
            funding: Funding {
                id: document.id,
                amount,
            },
            requires_action: true,
            replayed: false,
        });
    }
    match finish(ledger, document, claim, decision, now_ns).await {
        // The reconciler resolved it first (a slow processor): it asked under the
        // same intent, so the claim holds this very answer.
        Err(PaymentError::FundingNotAwaitingChallenge) => {
            let stored = identity::read_document(reader, COLLECTION_IDEMPOTENCY, claim_key)
                .await?
                .ok_or_else(|| internal("resolved claim unreadable", "funding"))?;
            let stored: FundingClaim =
                serde_json::from_slice(&stored).map_err(|error| internal("stored claim", error))?;
            answer_claim(&stored, &request_sha256)
        }
        other => other,
    }
}

/// Records that a funding waits for its card challenge (the hold stays pending).
async fn await_challenge(
    ledger: &Ledger,
    document: &mut FundingDocument,
    claim: &mut FundingClaim,
) -> Result<(), PaymentError> {
    document.status = FundingStatus::RequiresAction;
    claim.requires_action = true;
    let rows = vec![
        BusinessRow::Document {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: document.claim_key.clone(),
            body: to_json(claim)?,
        },
        BusinessRow::Document {
            collection: COLLECTION_FUNDINGS.to_owned(),
            key: document.id.clone(),
            body: to_json(document)?,
        },
    ];
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("funding challenge", error))?;
    tracing::info!(funding = %document.id, "funding awaits a card challenge");
    Ok(())
}

/// Resolves a funding on the processor's final decision: posts the hold (approved)
/// or voids it (declined), with the claim and the event. `guard` rows commit with
/// it (a challenge's `Create`, so two answers cannot both resolve it).
async fn finish(
    ledger: &Ledger,
    mut document: FundingDocument,
    mut claim: FundingClaim,
    decision: ChargeDecision,
    now_ns: u64,
) -> Result<FundingOutcome, PaymentError> {
    let amount = Money::from_minor(document.amount_minor, WALLET_CURRENCY);
    let pending_id: TransferId = document
        .pending_transfer_id
        .parse()
        .map_err(|error| internal("stored pending id", error))?;
    if decision == ChargeDecision::ChallengeRequired {
        return Err(internal("funding", "a second challenge"));
    }
    let (post, topic) = record_decision(&mut document, &mut claim, decision);
    let resolution = Resolution {
        pending_id,
        post,
        collection: COLLECTION_FUNDINGS,
        id: &document.id,
        claim_key: document.claim_key.clone(),
        topic,
        now_ns,
        guard: Some(resolution_guard(&document)),
        closes: closing_rows(&document),
    };
    match resolve_intent(ledger, resolution, &document, &claim).await? {
        Resolved::Done => {}
        Resolved::Taken => return Err(PaymentError::FundingNotAwaitingChallenge),
        // Answered after the hour-long hold (a late challenge answer, a slow
        // processor): a charged card is still credited, once.
        Resolved::HoldExpired => {
            let late = apply_after_expiry(ledger, document.clone(), claim, decision, now_ns);
            match late.await? {
                Reconciled::AppliedAfterExpiry => {}
                Reconciled::AlreadyResolved => {
                    return Err(PaymentError::FundingNotAwaitingChallenge)
                }
                other => return Err(internal("late funding", format!("{other:?}"))),
            }
        }
    }
    match decision {
        ChargeDecision::Declined(reason) => {
            tracing::info!(funding = %document.id, %reason, "funding declined");
            Err(PaymentError::CardDeclined(reason))
        }
        _ => {
            tracing::info!(funding = %document.id, "funding succeeded");
            Ok(FundingOutcome {
                funding: Funding {
                    id: document.id,
                    amount,
                },
                requires_action: false,
                replayed: false,
            })
        }
    }
}

/// Writes the processor's final decision into the document and the claim: whether
/// the hold posts, and the event's topic. A challenge still unanswered counts as
/// failed authentication (only the reconciler passes one, once the hold is gone).
fn record_decision(
    document: &mut FundingDocument,
    claim: &mut FundingClaim,
    decision: ChargeDecision,
) -> (bool, &'static str) {
    let failure = match decision {
        ChargeDecision::Approved => None,
        ChargeDecision::Declined(reason) => Some(reason),
        ChargeDecision::ChallengeRequired => Some(DeclineReason::AuthenticationFailed),
    };
    document.status = match failure {
        None => FundingStatus::Succeeded,
        Some(_) => FundingStatus::Declined,
    };
    document.decline_reason = failure;
    claim.failure = failure;
    claim.resolved = true;
    claim.requires_action = false;
    match failure {
        None => (true, TOPIC_FUNDING_SUCCEEDED),
        Some(_) => (false, TOPIC_FUNDING_FAILED),
    }
}

/// The `Create` row every resolution of a funding carries: of the request, a
/// challenge answer and the reconciler, exactly one resolves it.
fn resolution_guard(document: &FundingDocument) -> BusinessRow {
    BusinessRow::Create {
        collection: COLLECTION_FUNDING_CHALLENGES.to_owned(),
        key: document.id.clone(),
        body: Vec::new(),
    }
}

/// Finishes one open funding for the reconciler ([`crate::reconcile`]): asks the
/// processor again under the funding's id, then posts or voids the hold, or — when
/// the hold expired meanwhile — credits a charged card with a transfer derived from
/// the funding id.
pub(crate) async fn reconcile_funding(
    ledger: &Ledger,
    reader: &SharedReader,
    rails: Rails<'_>,
    id: &str,
    now_ns: u64,
) -> Result<Reconciled, PaymentError> {
    let Some(stored) = identity::read_document(reader, COLLECTION_FUNDINGS, id.to_owned()).await?
    else {
        return Ok(Reconciled::Orphan);
    };
    let mut document: FundingDocument =
        serde_json::from_slice(&stored).map_err(|error| internal("stored funding", error))?;
    let pending_id: TransferId = document
        .pending_transfer_id
        .parse()
        .map_err(|error| internal("stored pending id", error))?;
    let hold = reconcile::hold_status(reader, pending_id).await?;
    // Only a funding waiting for its challenge can have been answered.
    let awaiting = document.status == FundingStatus::RequiresAction;
    let answered = awaiting
        && identity::read_document(reader, COLLECTION_CHALLENGE_ANSWERS, id.to_owned())
            .await?
            .is_some();
    let unanswered = awaiting && !answered;
    if hold == PendingStatus::Pending && unanswered {
        // Waiting for the cardholder: their answer resolves it, or the hold's expiry
        // does. Asking the processor again would reveal the card number for nothing
        // on every pass (and fill the vault's access log).
        return Ok(Reconciled::StillOpen);
    }
    let mut claim = read_claim(reader, &document).await?;
    let person = PersonId::parse(&document.person)?;
    let number = reconcile::reveal_card(rails.vault, person, &document.card_token).await?;
    let card = CardNumber::parse(number)?;
    let amount = Money::from_minor(document.amount_minor, WALLET_CURRENCY);
    let decision = rails.processor.charge(&document.id, &card, amount);
    match hold {
        PendingStatus::Pending if decision == ChargeDecision::ChallengeRequired => {
            if document.status == FundingStatus::Pending {
                await_challenge(ledger, &mut document, &mut claim).await?;
            } else if answered {
                // The answer never reached the processor (a crash in between): the
                // funding waits for an answer again, and is left alone until then.
                let rows = vec![BusinessRow::Delete {
                    collection: COLLECTION_CHALLENGE_ANSWERS.to_owned(),
                    key: id.to_owned(),
                }];
                crate::documents::submit_rows(ledger, rows)
                    .await
                    .map_err(|error| internal("clearing a challenge answer", error))?;
            }
            Ok(Reconciled::StillOpen)
        }
        PendingStatus::Pending => match finish(ledger, document, claim, decision, now_ns).await {
            Ok(_) | Err(PaymentError::CardDeclined(_)) => Ok(Reconciled::Finished),
            Err(PaymentError::FundingNotAwaitingChallenge) => Ok(Reconciled::AlreadyResolved),
            Err(error) => Err(error),
        },
        PendingStatus::Expired => {
            apply_after_expiry(ledger, document, claim, decision, now_ns).await
        }
        PendingStatus::Posted | PendingStatus::Voided => {
            Err(internal("a funding still open over a resolved hold", id))
        }
    }
}

async fn read_claim(
    reader: &SharedReader,
    document: &FundingDocument,
) -> Result<FundingClaim, PaymentError> {
    identity::read_document(reader, COLLECTION_IDEMPOTENCY, document.claim_key.clone())
        .await?
        .map(|body| serde_json::from_slice(&body))
        .transpose()
        .map_err(|error| internal("stored claim", error))?
        .ok_or_else(|| internal("funding without its claim", &document.id))
}

/// A funding whose hold expired before its answer was written: a charged card is
/// credited now, by a transfer whose id derives from the funding (so once); a
/// refused one is only recorded.
/// What a resolved funding no longer needs: its entry in the reconciler's index and
/// the marker of a challenge answer (the marker tells the reconciler an answer may
/// have reached the processor, which only matters while the funding waits for it).
fn closing_rows(document: &FundingDocument) -> Vec<BusinessRow> {
    vec![
        reconcile::close_intent_row(IntentKind::Funding, document.created_at_ns, &document.id),
        BusinessRow::Delete {
            collection: COLLECTION_CHALLENGE_ANSWERS.to_owned(),
            key: document.id.clone(),
        },
    ]
}

async fn apply_after_expiry(
    ledger: &Ledger,
    mut document: FundingDocument,
    mut claim: FundingClaim,
    decision: ChargeDecision,
    now_ns: u64,
) -> Result<Reconciled, PaymentError> {
    let (credit, topic) = record_decision(&mut document, &mut claim, decision);
    let mut rows = vec![
        BusinessRow::Document {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: document.claim_key.clone(),
            body: to_json(&claim)?,
        },
        resolution_guard(&document),
    ];
    rows.extend(closing_rows(&document));
    if !credit {
        let body = to_json(&document)?;
        rows.push(BusinessRow::Document {
            collection: COLLECTION_FUNDINGS.to_owned(),
            key: document.id.clone(),
            body: body.clone(),
        });
        rows.push(crate::outbox::event_row(topic, &body, now_ns));
        let taken = crate::documents::submit_rows(ledger, rows)
            .await
            .map_err(|error| internal("recording a late decline", error))?;
        tracing::info!(funding = %document.id, "a funding declined after its hold expired");
        return Ok(match taken {
            Some(_) => Reconciled::AlreadyResolved,
            None => Reconciled::AppliedAfterExpiry,
        });
    }
    let person = PersonId::parse(&document.person)?;
    let clearing = AccountId::new(PROCESSOR_CLEARING_USD)
        .map_err(|error| internal("clearing account", error))?;
    let transfer = TransferRequest::single(
        reconcile::late_transfer_id(FUNDING_LATE_CREDIT_DOMAIN, &document.id)?,
        clearing,
        person.wallet_id(WALLET_CURRENCY)?,
        document.amount_minor,
        ledger_of(WALLET_CURRENCY),
        TRANSFER_CODE_FUNDING,
    );
    let submitted = submit_intent(
        ledger,
        transfer,
        None,
        COLLECTION_FUNDINGS,
        &document.id,
        &document,
        rows,
        Some((topic, now_ns)),
    )
    .await?;
    match submitted {
        Held::Claimed(CreateTransferResult::Ok) => {
            tracing::warn!(funding = %document.id, "a charged card credited after its hold expired");
            Ok(Reconciled::AppliedAfterExpiry)
        }
        Held::KeyTaken => Ok(Reconciled::AlreadyResolved),
        Held::Claimed(other) => Err(internal("late funding credit", format!("{other:?}"))),
    }
}

/// The cardholder answers the challenge of one of their fundings: the processor
/// approves (the hold posts) or fails it (the hold is voided). Anyone else's funding,
/// or one not waiting, is refused; of two racing answers one resolves it.
#[tracing::instrument(skip_all, fields(%person))]
pub async fn complete_challenge(
    ledger: &Ledger,
    reader: &SharedReader,
    processor: &dyn Processor,
    person: PersonId,
    funding_id: &str,
    answer: &str,
    now_ns: u64,
) -> Result<FundingOutcome, PaymentError> {
    let valid_id = funding_id.len() == 32 && funding_id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_id {
        return Err(PaymentError::FundingNotFound);
    }
    let stored = identity::read_document(reader, COLLECTION_FUNDINGS, funding_id.to_owned())
        .await?
        .ok_or(PaymentError::FundingNotFound)?;
    let document: FundingDocument =
        serde_json::from_slice(&stored).map_err(|error| internal("stored funding", error))?;
    if document.person != person.to_string() {
        return Err(PaymentError::FundingNotFound);
    }
    if document.status != FundingStatus::RequiresAction {
        return Err(PaymentError::FundingNotAwaitingChallenge);
    }
    let claim = read_claim(reader, &document).await?;
    let answer: String = answer.chars().take(CHALLENGE_ANSWER_CHARS_MAX).collect();
    // Marked before the processor hears the answer, so that after a crash the
    // reconciler asks the processor what it decided. A second answer finds the
    // marker there: a `Create` that conflicts changes nothing.
    let rows = vec![BusinessRow::Create {
        collection: COLLECTION_CHALLENGE_ANSWERS.to_owned(),
        key: document.id.clone(),
        body: now_ns.to_string().into_bytes(),
    }];
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("marking a challenge answer", error))?;
    let decision = match processor.complete_challenge(&document.id, &answer) {
        ChargeDecision::ChallengeRequired => {
            ChargeDecision::Declined(DeclineReason::AuthenticationFailed)
        }
        other => other,
    };
    finish(ledger, document, claim, decision, now_ns).await
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
