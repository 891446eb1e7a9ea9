//! Payments: the platform's own accounts and money moving from one person's wallet to
//! another's (P2P), exactly once per idempotency key.
//!
//! A payment is one atomic ledger submission: the transfer payer → payee, the
//! `idempotency` claim (a SHA-256 of the canonical request and the response), the
//! `payments` document and the `payment.succeeded` event. A retry under the same key
//! derives the same transfer id and hits the same claim, so it can never move money
//! twice; a taken claim is answered from the stored response.

use std::fmt;

use mizan_core::{AccountId, Currency, Money, MoneyError, TransferId};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, BusinessRow, CreateAccountResult, CreateTransferResult,
    Ledger, NewAccount, Submission, TransferRequest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{
    self, Handle, Person, PersonId, SharedReader, COLLECTION_HANDLES, WALLET_CURRENCY,
};
use crate::time::rfc3339_from_ns;

/// The platform's USD processor clearing account: the other side of card funding. No
/// balance limits — it goes negative by what card processors owe the platform.
pub const PROCESSOR_CLEARING_USD: u128 = 0x4d49_5a41_4e00_0000_0000_0000_0000_0005;
/// The platform's USD revenue account (fees).
pub const PLATFORM_REVENUE_USD: u128 = 0x4d49_5a41_4e00_0000_0000_0000_0000_0004;
/// The `owner` of platform accounts.
pub const PLATFORM_OWNER: u128 = 0;

/// Transfer codes; the numbers never change (the demo uses the same).
pub const TRANSFER_CODE_FUNDING: u16 = 1;
pub const TRANSFER_CODE_P2P: u16 = 2;

pub const NOTE_CHARS_MAX: usize = 280;
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

pub const COLLECTION_IDEMPOTENCY: &str = "idempotency";
pub const COLLECTION_PAYMENTS: &str = "payments";
pub const TOPIC_PAYMENT_SUCCEEDED: &str = "payment.succeeded";
pub const STATUS_SUCCEEDED: &str = "succeeded";
/// The HTTP status a stored first answer had; replays answer the same.
pub const STATUS_CODE_CREATED: u16 = 201;

/// Domain separators of derived ids; bump the version to change a derivation.
const P2P_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.p2p.transfer.v1";
const P2P_PAYMENT_ID_DOMAIN: &[u8] = b"mizan.p2p.payment.v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("an amount is written like \"12.34\"")]
    AmountMalformed,
    #[error("the amount has more decimal places than its currency allows")]
    AmountTooPrecise,
    #[error("the amount is too large")]
    AmountTooLarge,
    #[error("the amount must be greater than zero")]
    AmountMustBePositive,
    #[error("unknown currency code")]
    UnknownCurrency,
    #[error("only USD wallets exist for now")]
    CurrencyNotSupported,
    #[error("a note is at most 280 characters")]
    NoteTooLong,
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyRequired,
    #[error("an Idempotency-Key is 1 to 255 visible ASCII characters")]
    IdempotencyKeyInvalid,
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyRequestInProgress,
    #[error("no person has that handle")]
    RecipientNotFound,
    #[error("you cannot pay yourself")]
    CannotPayYourself,
    #[error("the wallet does not hold enough money")]
    InsufficientFunds,
    #[error("no such payment")]
    PaymentNotFound,
    #[error("no such post")]
    PostNotFound,
    #[error("you cannot request money from yourself")]
    CannotRequestFromYourself,
    #[error("no such request")]
    RequestNotFound,
    #[error("the request is no longer open")]
    RequestNotOpen,
    #[error("only the other party of the request may do that")]
    RequestActionNotAllowed,
    #[error("a split is shared with 1 to 20 distinct other people")]
    SplitPeopleInvalid,
    #[error("the cursor is not one this API gave out")]
    InvalidCursor,
    #[error("a limit is a whole number from 1 to 100")]
    InvalidLimit,
    #[error("an activity type is \"payment\", \"funding\", \"cashout\" or \"tip\"")]
    InvalidActivityType,
    #[error("a date is written YYYY-MM-DD, and `from` is not after `to`")]
    InvalidDate,
    #[error("a counterparty is a handle")]
    InvalidCounterparty,
    #[error("a card number is 12 to 19 digits")]
    CardNumberInvalid,
    #[error("the card was declined: {0}")]
    CardDeclined(DeclineReason),
    #[error("no such funding")]
    FundingNotFound,
    #[error("this funding is not waiting for a challenge answer")]
    FundingNotAwaitingChallenge,
    #[error("a routing number is 9 digits with a valid ABA checksum")]
    RoutingNumberInvalid,
    #[error("an account number is 4 to 17 digits")]
    AccountNumberInvalid,
    #[error("the bank returned the transfer ({0}); the money is back in the wallet")]
    CashoutReturned(crate::cashout::ReturnReason),
    #[error("this would go over your {limit} limit, which resets at {resets_at}")]
    LimitExceeded {
        /// `daily_send`, `weekly_send`, `weekly_cashout` or `weekly_funding`.
        limit: &'static str,
        /// RFC 3339 UTC: when the limit's window ends.
        resets_at: String,
    },
    #[error("{capability} is not available to residents of {jurisdiction}")]
    CapabilityUnavailable {
        jurisdiction: String,
        capability: &'static str,
    },
    #[error("this needs verification tier {tier}; verify your identity first")]
    VerificationRequired { tier: u8 },
    #[error("this account is frozen: money cannot leave it while compliance reviews it")]
    AccountFrozen,
    #[error("a message is 1 to 2,000 characters")]
    MessageInvalid,
    #[error("a paid-DM price is from 0.01 to 1,000.00 USD")]
    DmPriceInvalid,
    #[error(
        "this person charges {0} for a message from people they don't follow; offer it to send"
    )]
    PaidDmRequired(Money),
    #[error("no such paid DM")]
    PaidDmNotFound,
    #[error("this paid DM was already paid out or refunded")]
    PaidDmNotPending,
    #[error("no such saved card")]
    CardNotFound,
    #[error("at most 10 cards can be saved; delete one first")]
    SavedCardsFull,
    #[error("this person's personal data was erased")]
    PersonErased,
    #[error("a tier name is 1 to 40 characters on one line")]
    TierNameInvalid,
    #[error("a tier price is from 0.01 to 1,000.00 USD a month")]
    TierPriceInvalid,
    #[error("tier perks are at most 500 characters")]
    TierPerksInvalid,
    #[error("a creator has at most 10 tiers, retired ones included")]
    TooManyTiers,
    #[error("no such subscription tier")]
    TierNotFound,
    #[error("this tier is retired and takes no new subscribers")]
    TierRetired,
    #[error("you already have a subscription to this creator")]
    AlreadySubscribed,
    #[error("no such subscription")]
    SubscriptionNotFound,
    #[error("this subscription has already ended")]
    SubscriptionEnded,
    /// A bug or a store failure; the detail is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl PaymentError {
    /// The stable code; never change one once published.
    pub fn code(&self) -> &'static str {
        match self {
            PaymentError::AmountMalformed => "amount_malformed",
            PaymentError::AmountTooPrecise => "amount_too_precise",
            PaymentError::AmountTooLarge => "amount_too_large",
            PaymentError::AmountMustBePositive => "amount_must_be_positive",
            PaymentError::UnknownCurrency => "unknown_currency",
            PaymentError::CurrencyNotSupported => "currency_not_supported",
            PaymentError::NoteTooLong => "note_too_long",
            PaymentError::IdempotencyKeyRequired => "idempotency_key_required",
            PaymentError::IdempotencyKeyInvalid => "idempotency_key_invalid",
            PaymentError::IdempotencyKeyReused => "idempotency_key_reused",
            PaymentError::IdempotencyRequestInProgress => "idempotency_request_in_progress",
            PaymentError::RecipientNotFound => "recipient_not_found",
            PaymentError::CannotPayYourself => "cannot_pay_yourself",
            PaymentError::InsufficientFunds => "insufficient_funds",
            PaymentError::PaymentNotFound => "payment_not_found",
            PaymentError::PostNotFound => "post_not_found",
            PaymentError::CannotRequestFromYourself => "cannot_request_from_yourself",
            PaymentError::RequestNotFound => "request_not_found",
            PaymentError::RequestNotOpen => "request_not_open",
            PaymentError::RequestActionNotAllowed => "request_action_not_allowed",
            PaymentError::SplitPeopleInvalid => "split_people_invalid",
            PaymentError::InvalidCursor => "invalid_cursor",
            PaymentError::InvalidLimit => "invalid_limit",
            PaymentError::InvalidActivityType => "invalid_type",
            PaymentError::InvalidDate => "invalid_date",
            PaymentError::InvalidCounterparty => "invalid_counterparty",
            PaymentError::CardNumberInvalid => "card_number_invalid",
            PaymentError::CardDeclined(_) => "card_declined",
            PaymentError::FundingNotFound => "funding_not_found",
            PaymentError::FundingNotAwaitingChallenge => "funding_not_awaiting_challenge",
            PaymentError::RoutingNumberInvalid => "routing_number_invalid",
            PaymentError::AccountNumberInvalid => "account_number_invalid",
            PaymentError::CashoutReturned(_) => "cashout_returned",
            PaymentError::LimitExceeded { .. } => "limit_exceeded",
            PaymentError::CapabilityUnavailable { .. } => "capability_unavailable",
            PaymentError::VerificationRequired { .. } => "verification_required",
            PaymentError::AccountFrozen => "account_frozen",
            PaymentError::MessageInvalid => "invalid_message",
            PaymentError::DmPriceInvalid => "invalid_dm_price",
            PaymentError::PaidDmRequired(_) => "paid_dm_required",
            PaymentError::PaidDmNotFound => "paid_dm_not_found",
            PaymentError::PaidDmNotPending => "paid_dm_not_pending",
            PaymentError::CardNotFound => "card_not_found",
            PaymentError::SavedCardsFull => "saved_cards_full",
            PaymentError::PersonErased => "person_erased",
            PaymentError::TierNameInvalid => "invalid_tier_name",
            PaymentError::TierPriceInvalid => "invalid_tier_price",
            PaymentError::TierPerksInvalid => "invalid_tier_perks",
            PaymentError::TooManyTiers => "too_many_tiers",
            PaymentError::TierNotFound => "tier_not_found",
            PaymentError::TierRetired => "tier_retired",
            PaymentError::AlreadySubscribed => "already_subscribed",
            PaymentError::SubscriptionNotFound => "subscription_not_found",
            PaymentError::SubscriptionEnded => "subscription_ended",
            PaymentError::Internal(_) => "internal_error",
        }
    }

    /// The input field the error is about, if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PaymentError::AmountMalformed
            | PaymentError::AmountTooPrecise
            | PaymentError::AmountTooLarge
            | PaymentError::AmountMustBePositive => Some("amount"),
            PaymentError::UnknownCurrency | PaymentError::CurrencyNotSupported => Some("currency"),
            PaymentError::NoteTooLong => Some("note"),
            PaymentError::RecipientNotFound | PaymentError::CannotPayYourself => Some("to"),
            PaymentError::CannotRequestFromYourself => Some("from"),
            PaymentError::SplitPeopleInvalid => Some("with"),
            PaymentError::InvalidCursor => Some("cursor"),
            PaymentError::InvalidLimit => Some("limit"),
            PaymentError::InvalidActivityType => Some("type"),
            PaymentError::InvalidDate => Some("from"),
            PaymentError::InvalidCounterparty => Some("counterparty"),
            PaymentError::CardNumberInvalid => Some("card_number"),
            PaymentError::RoutingNumberInvalid => Some("routing_number"),
            PaymentError::AccountNumberInvalid => Some("account_number"),
            PaymentError::IdempotencyKeyRequired
            | PaymentError::IdempotencyKeyInvalid
            | PaymentError::IdempotencyKeyReused
            | PaymentError::IdempotencyRequestInProgress
            | PaymentError::InsufficientFunds
            | PaymentError::PostNotFound
            | PaymentError::PaymentNotFound
            | PaymentError::RequestNotFound
            | PaymentError::RequestNotOpen
            | PaymentError::RequestActionNotAllowed
            | PaymentError::CardDeclined(_)
            | PaymentError::FundingNotFound
            | PaymentError::FundingNotAwaitingChallenge
            | PaymentError::CashoutReturned(_)
            | PaymentError::LimitExceeded { .. }
            | PaymentError::CapabilityUnavailable { .. }
            | PaymentError::VerificationRequired { .. }
            | PaymentError::AccountFrozen
            | PaymentError::PaidDmNotFound
            | PaymentError::PaidDmNotPending
            | PaymentError::SavedCardsFull
            | PaymentError::PersonErased
            | PaymentError::Internal(_) => None,
            PaymentError::CardNotFound => Some("card_id"),
            PaymentError::MessageInvalid => Some("text"),
            PaymentError::DmPriceInvalid => Some("price"),
            PaymentError::PaidDmRequired(_) => Some("offer"),
            PaymentError::TierNameInvalid => Some("name"),
            PaymentError::TierPriceInvalid => Some("price"),
            PaymentError::TierPerksInvalid => Some("perks"),
            PaymentError::TierNotFound | PaymentError::TierRetired => Some("tier_id"),
            PaymentError::TooManyTiers
            | PaymentError::AlreadySubscribed
            | PaymentError::SubscriptionNotFound
            | PaymentError::SubscriptionEnded => None,
        }
    }
}

/// Why a card processor declined a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    InsufficientFunds,
    StolenCard,
    /// The cardholder failed the issuer's challenge (3-D Secure).
    AuthenticationFailed,
}

impl DeclineReason {
    pub fn code(self) -> &'static str {
        match self {
            DeclineReason::InsufficientFunds => "insufficient_funds",
            DeclineReason::StolenCard => "stolen_card",
            DeclineReason::AuthenticationFailed => "authentication_failed",
        }
    }
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

pub(crate) fn internal(context: &str, error: impl fmt::Display) -> PaymentError {
    PaymentError::Internal(format!("{context}: {error}"))
}

impl From<identity::IdentityError> for PaymentError {
    fn from(error: identity::IdentityError) -> PaymentError {
        internal("identity", error)
    }
}

/// The accounts the platform itself holds, created once at server start.
pub fn platform_accounts() -> Result<Vec<NewAccount>, PaymentError> {
    let account = |id: u128, code: AccountCode| -> Result<NewAccount, PaymentError> {
        Ok(NewAccount {
            id: AccountId::new(id).map_err(|error| internal("platform account id", error))?,
            ledger: ledger_of(WALLET_CURRENCY),
            code,
            owner: PLATFORM_OWNER,
            flags: AccountFlags::NONE,
        })
    };
    Ok(vec![
        account(PROCESSOR_CLEARING_USD, AccountCode::ProcessorClearing)?,
        account(PLATFORM_REVENUE_USD, AccountCode::PlatformRevenue)?,
    ])
}

/// Creates the platform accounts; finding them already there (`exists`) is success.
/// Blocking: call it before the server starts.
pub fn ensure_platform_accounts(ledger: &Ledger) -> Result<(), PaymentError> {
    let submission = Submission {
        accounts: platform_accounts()?,
        ..Submission::default()
    };
    let result = ledger
        .submit_blocking(submission)
        .map_err(|error| internal("creating platform accounts", error))?;
    let all_there = result.accounts.iter().all(|result| {
        matches!(
            result,
            CreateAccountResult::Ok | CreateAccountResult::Exists
        )
    });
    if !all_there || result.accounts.len() != 2 {
        return Err(internal(
            "creating platform accounts",
            format!("{:?}", result.accounts),
        ));
    }
    Ok(())
}

/// A positive amount in a currency that has wallets: "12.34" + "USD".
pub fn parse_amount(amount_text: &str, currency_text: &str) -> Result<Money, PaymentError> {
    let currency: Currency = currency_text
        .parse()
        .map_err(|_| PaymentError::UnknownCurrency)?;
    if currency != WALLET_CURRENCY {
        return Err(PaymentError::CurrencyNotSupported);
    }
    let amount = Money::parse_major(amount_text, currency).map_err(|error| match error {
        MoneyError::TooPrecise => PaymentError::AmountTooPrecise,
        MoneyError::Overflow => PaymentError::AmountTooLarge,
        MoneyError::UnknownCurrency => PaymentError::UnknownCurrency,
        MoneyError::Malformed | MoneyError::CurrencyMismatch => PaymentError::AmountMalformed,
    })?;
    if !amount.is_positive() {
        return Err(PaymentError::AmountMustBePositive);
    }
    Ok(amount)
}

/// A client's idempotency key: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<IdempotencyKey, PaymentError> {
        let length_ok = (1..=IDEMPOTENCY_KEY_CHARS_MAX).contains(&text.len());
        if length_ok && text.bytes().all(|byte| byte.is_ascii_graphic()) {
            Ok(IdempotencyKey(text.to_owned()))
        } else {
            Err(PaymentError::IdempotencyKeyInvalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A payment note: at most 280 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub fn parse(text: &str) -> Result<Note, PaymentError> {
        if text.chars().count() > NOTE_CHARS_MAX {
            return Err(PaymentError::NoteTooLong);
        }
        Ok(Note(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A P2P payment request, parsed.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub to: Handle,
    pub amount: Money,
    pub note: Note,
}

impl PaymentRequest {
    /// SHA-256 over the canonical form: lowercase handle, minor units, currency, note.
    fn fingerprint(&self) -> Result<String, PaymentError> {
        let canonical = serde_json::json!({
            "to": self.to.as_str(),
            "amount_minor": self.amount.minor_units(),
            "currency": self.amount.currency().code(),
            "note": self.note.as_str(),
        });
        let bytes = serde_json::to_vec(&canonical).map_err(|e| internal("canonical", e))?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }
}

/// A payment as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    pub id: String,
    /// The payer's handle.
    pub from: String,
    /// The payee's handle.
    pub to: String,
    pub amount: String,
    pub currency: String,
    pub note: String,
    pub status: String,
    pub transfer_id: String,
    pub created_at: String,
}

/// A payment as the `payments` collection stores it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PaymentDocument {
    pub(crate) payer: String,
    pub(crate) payee: String,
    pub(crate) amount_minor: i64,
    pub(crate) created_at_ns: u64,
    pub(crate) view: PaymentView,
}

/// What the `idempotency` claim of a payment stores: the request's fingerprint, the
/// status, and the payment the answer is read from. Kept small on purpose: the claim
/// is written with every payment, and its size is write volume.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyRecord {
    request_sha256: String,
    /// When the key was claimed, for the sweep; 0 in claims from before it was kept.
    #[serde(default)]
    claimed_at_ns: u64,
    status: u16,
    payment_id: String,
}

/// A payment answer: the first, or a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOutcome {
    pub status: u16,
    pub payment: PaymentView,
    pub replayed: bool,
}

impl From<crate::creation::CreationError> for PaymentError {
    fn from(error: crate::creation::CreationError) -> PaymentError {
        match error {
            crate::creation::CreationError::KeyReused => PaymentError::IdempotencyKeyReused,
            other => internal("an idempotency claim", other),
        }
    }
}

/// An id from a domain, the payer and the key, with `now_ns` in the high 64 bits
/// ([`crate::ids`]): for the transfers and documents of a movement whose idempotency
/// claim commits with them, so a retry finds the claim and never derives the id again,
/// and the same key used after its claim was swept makes new ids.
pub(crate) fn time_ordered_u128(
    domain: &[u8],
    payer: PersonId,
    key: &IdempotencyKey,
    now_ns: u64,
) -> u128 {
    crate::ids::time_ordered(
        now_ns,
        domain,
        &[&payer.get().to_be_bytes(), key.as_str().as_bytes()],
    )
}

pub(crate) fn idempotency_key(payer: PersonId, key: &IdempotencyKey) -> String {
    format!("{payer}:{}", key.as_str())
}

pub(crate) async fn find_handle(
    reader: &SharedReader,
    handle: &Handle,
) -> Result<Option<PersonId>, PaymentError> {
    let stored =
        identity::read_document(reader, COLLECTION_HANDLES, handle.as_str().to_owned()).await?;
    let Some(body) = stored else {
        return Ok(None);
    };
    let text = String::from_utf8(body).map_err(|error| internal("stored id", error))?;
    Ok(Some(PersonId::parse(&text)?))
}

/// Answers from a stored claim: a replay when the request is the same, else reuse.
async fn answer_stored(
    reader: &SharedReader,
    claim_key: String,
    fingerprint: &str,
) -> Result<Option<PaymentOutcome>, PaymentError> {
    let Some(body) = identity::read_document(reader, COLLECTION_IDEMPOTENCY, claim_key).await?
    else {
        return Ok(None);
    };
    // A claim of another kind (the key was used for a funding) is a reuse too.
    let record: IdempotencyRecord =
        serde_json::from_slice(&body).map_err(|_| PaymentError::IdempotencyKeyReused)?;
    if record.request_sha256 != fingerprint {
        return Err(PaymentError::IdempotencyKeyReused);
    }
    let missing = internal("claim of a missing payment", &record.payment_id);
    let document: PaymentDocument =
        read_by_id(reader, COLLECTION_PAYMENTS, &record.payment_id, missing).await?;
    Ok(Some(PaymentOutcome {
        status: record.status,
        payment: document.view,
        replayed: true,
    }))
}

/// Pays `request.amount` from the payer's wallet to the payee's, once per key.
#[tracing::instrument(skip_all, fields(payer = %payer.id))]
pub async fn pay(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    payer: &Person,
    request: PaymentRequest,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<PaymentOutcome, PaymentError> {
    let fingerprint = request.fingerprint()?;
    let claim_key = idempotency_key(payer.id, &key);
    // No read of the claim first: the submission claims the key with a `Create`, and
    // a taken key makes the writer skip the whole submission (nothing moves) and
    // answer `row_conflict`, after which the stored answer is read below. A retry
    // costs one submission; a first request saves a read.
    let payee = find_handle(reader, &request.to)
        .await?
        .ok_or(PaymentError::RecipientNotFound)?;
    if payee == payer.id {
        return Err(PaymentError::CannotPayYourself);
    }
    let charge = crate::limits::prepare(
        reader,
        limits,
        payer.id,
        crate::limits::Movement::Send,
        now_ns,
    )
    .await?;
    let transfer_id = TransferId::new(time_ordered_u128(
        P2P_TRANSFER_ID_DOMAIN,
        payer.id,
        &key,
        now_ns,
    ))
    .map_err(|error| internal("transfer id", error))?;
    let payment_id = time_ordered_u128(P2P_PAYMENT_ID_DOMAIN, payer.id, &key, now_ns);
    let view = PaymentView {
        id: format!("{payment_id:032x}"),
        from: payer.handle.as_str().to_owned(),
        to: request.to.as_str().to_owned(),
        amount: request.amount.format_major(),
        currency: request.amount.currency().code().to_owned(),
        note: request.note.as_str().to_owned(),
        status: STATUS_SUCCEEDED.to_owned(),
        transfer_id: transfer_id.to_string(),
        created_at: rfc3339_from_ns(now_ns),
    };
    let document = PaymentDocument {
        payer: payer.id.to_string(),
        payee: payee.to_string(),
        amount_minor: request.amount.minor_units(),
        created_at_ns: now_ns,
        view: view.clone(),
    };
    let record = IdempotencyRecord {
        request_sha256: fingerprint.clone(),
        claimed_at_ns: now_ns,
        status: STATUS_CODE_CREATED,
        payment_id: view.id.clone(),
    };
    let transfer = TransferRequest::single(
        transfer_id,
        payer.id.wallet_id(WALLET_CURRENCY)?,
        payee.wallet_id(WALLET_CURRENCY)?,
        request.amount.minor_units(),
        ledger_of(request.amount.currency()),
        TRANSFER_CODE_P2P,
    )
    .with_reference(payment_id);
    let mut transfers = vec![transfer];
    transfers.extend(charge.legs(transfer_id, request.amount.minor_units())?);
    let document_json = to_json(&document)?;
    let submission = Submission {
        transfers,
        rows: vec![
            BusinessRow::Create {
                collection: COLLECTION_IDEMPOTENCY.to_owned(),
                key: claim_key.clone(),
                body: to_json(&record)?,
            },
            BusinessRow::Document {
                collection: COLLECTION_PAYMENTS.to_owned(),
                key: view.id.clone(),
                body: document_json.clone(),
            },
            crate::outbox::event_row(TOPIC_PAYMENT_SUCCEEDED, &document_json, now_ns),
        ],
        atomic: true,
        ensure: charge.ensure(),
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting a payment", error))?;
    if let Some((collection, _)) = &result.row_conflict {
        if collection != COLLECTION_IDEMPOTENCY {
            return Err(internal("unexpected row conflict", collection));
        }
        // No claim by now: it expired and was swept between our submission and this
        // read (the key is 24 hours old). Nothing moved; a retry pays anew.
        return answer_stored(reader, claim_key, &fingerprint)
            .await?
            .ok_or(PaymentError::IdempotencyRequestInProgress);
    }
    match charge.settle(&result.transfers)? {
        CreateTransferResult::Ok => {}
        CreateTransferResult::ExceedsCredits => return Err(PaymentError::InsufficientFunds),
        other => return Err(internal("payment transfer", format!("{other:?}"))),
    }
    tracing::info!(payment = %view.id, transfer = %transfer_id, "payment succeeded");
    Ok(PaymentOutcome {
        status: STATUS_CODE_CREATED,
        payment: view,
        replayed: false,
    })
}

/// How long a payment's idempotency key answers with its first response (Stripe's
/// window). After it the claim may be swept, and the same key pays anew.
pub const IDEMPOTENCY_KEY_TTL_NS: u64 = 24 * 3_600 * 1_000_000_000;
/// Claims one sweep step reads.
pub const SWEEP_PAGE_CLAIMS: usize = 1_000;

/// What the sweep reads of any claim: when it was made, and for a processor intent
/// whether it has its answer (an unresolved one is never swept).
#[derive(Deserialize)]
struct ClaimTime {
    /// Action claims from the first build that kept their time named it otherwise.
    #[serde(default, alias = "started_at_ns")]
    claimed_at_ns: Option<u64>,
    #[serde(default)]
    resolved: Option<bool>,
}

/// One step of the idempotency-key sweep: reads up to [`SWEEP_PAGE_CLAIMS`] claims
/// after `after` (in key order) and deletes those claimed more than
/// [`IDEMPOTENCY_KEY_TTL_NS`] ago. Returns the cursor for the next step (`None` once
/// it has read them all) and how many it deleted.
///
/// Deleting a claim is safe because no use case derives ids from its key alone:
/// movement ids carry the time they were made ([`time_ordered_u128`]), creations
/// take random ids, so the same key used again later makes new ones. Every claim
/// records when it was made (`claimed_at_ns`, action claims included),
/// and a processor intent's only once it is resolved: an intent still waiting for
/// its processor or its reconciler is never swept. Claims written before the time
/// was kept have none: a P2P payment's is recognised by its shape
/// ([`IdempotencyRecord`]) and dated by its payment's time-ordered id, which must
/// match the payment's own time; the others are kept.
pub async fn sweep_expired_claims(
    ledger: &Ledger,
    reader: &SharedReader,
    after: Option<String>,
    now_ns: u64,
) -> Result<(Option<String>, usize), PaymentError> {
    let page = crate::documents::with_prefix(
        reader,
        COLLECTION_IDEMPOTENCY,
        String::new(),
        after,
        SWEEP_PAGE_CLAIMS,
    )
    .await
    .map_err(|error| internal("reading claims", error))?;
    let next = (page.len() == SWEEP_PAGE_CLAIMS)
        .then(|| page.last().map(|(key, _)| key.clone()))
        .flatten();
    let mut expired = Vec::new();
    for (key, body) in page {
        let gone = match dated_claim_expired(&body, now_ns) {
            Some(gone) => gone,
            None => undated_payment_claim_expired(reader, &key, &body, now_ns).await?,
        };
        if gone {
            expired.push(BusinessRow::Delete {
                collection: COLLECTION_IDEMPOTENCY.to_owned(),
                key,
            });
        }
    }
    let deleted = expired.len();
    crate::documents::submit_rows_in_chunks(ledger, expired)
        .await
        .map_err(|error| internal("deleting expired claims", error))?;
    Ok((next, deleted))
}

/// Whether a claim that records when it was made (`claimed_at_ns`) may be swept at
/// `now_ns`: a day old, and not a processor intent still unresolved. `None` for a
/// claim written before the time was recorded.
fn dated_claim_expired(body: &[u8], now_ns: u64) -> Option<bool> {
    let ClaimTime {
        claimed_at_ns: Some(claimed_at_ns @ 1..),
        resolved,
    } = serde_json::from_slice::<ClaimTime>(body).ok()?
    else {
        return None;
    };
    let day_old = now_ns.saturating_sub(claimed_at_ns) >= IDEMPOTENCY_KEY_TTL_NS;
    Some(day_old && resolved != Some(false))
}

/// Whether a claim without its time may be swept at `now_ns`: only a P2P payment's,
/// dated by its payment's time-ordered id, which must match the payment's own time
/// and payer.
async fn undated_payment_claim_expired(
    reader: &SharedReader,
    key: &str,
    body: &[u8],
    now_ns: u64,
) -> Result<bool, PaymentError> {
    let Ok(record) = serde_json::from_slice::<IdempotencyRecord>(body) else {
        return Ok(false);
    };
    let Ok(id) = u128::from_str_radix(&record.payment_id, 16) else {
        return Ok(false);
    };
    let made_ns = (id >> 64) as u64;
    if now_ns.saturating_sub(made_ns) < IDEMPOTENCY_KEY_TTL_NS {
        return Ok(false);
    }
    let Some(stored) =
        identity::read_document(reader, COLLECTION_PAYMENTS, record.payment_id.clone()).await?
    else {
        return Ok(false);
    };
    let Ok(payment) = serde_json::from_slice::<PaymentDocument>(&stored) else {
        return Ok(false);
    };
    let payers_key = key
        .split_once(':')
        .is_some_and(|(payer, _)| payer == payment.payer);
    Ok(payers_key && payment.created_at_ns == made_ns)
}

/// A payment the viewer is a party to (payer or payee); anything else is not found.
pub async fn payment_for(
    reader: &SharedReader,
    viewer: PersonId,
    payment_id: &str,
) -> Result<PaymentView, PaymentError> {
    let document: PaymentDocument = read_by_id(
        reader,
        COLLECTION_PAYMENTS,
        payment_id,
        PaymentError::PaymentNotFound,
    )
    .await?;
    let viewer = viewer.to_string();
    if document.payer != viewer && document.payee != viewer {
        return Err(PaymentError::PaymentNotFound);
    }
    Ok(document.view)
}

/// The document stored under a 32-hex-digit id; any other id, or none stored, is
/// `not_found`.
pub(crate) async fn read_by_id<T: serde::de::DeserializeOwned>(
    reader: &SharedReader,
    collection: &'static str,
    id: &str,
    not_found: PaymentError,
) -> Result<T, PaymentError> {
    let valid_id = id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !valid_id {
        return Err(not_found);
    }
    let key = id.to_ascii_lowercase();
    let Some(body) = identity::read_document(reader, collection, key).await? else {
        return Err(not_found);
    };
    serde_json::from_slice(&body).map_err(|error| internal("a stored document", error))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, PaymentError> {
    serde_json::to_vec(value).map_err(|error| internal("encoding a document", error))
}

/// A payment by its id, whoever its parties are: the operator console's view (the
/// caller checked the operator may look). Any other id, or none stored, is
/// `PaymentNotFound`.
pub async fn payment_by_id(
    reader: &SharedReader,
    payment_id: &str,
) -> Result<PaymentView, PaymentError> {
    let document: PaymentDocument = read_by_id(
        reader,
        COLLECTION_PAYMENTS,
        payment_id,
        PaymentError::PaymentNotFound,
    )
    .await?;
    Ok(document.view)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn amounts_parse_positive_usd_only() {
        assert_eq!(parse_amount("12.34", "USD").unwrap().minor_units(), 1234);
        let cases = [
            ("12.345", "USD", "amount_too_precise"),
            ("abc", "USD", "amount_malformed"),
            ("0", "USD", "amount_must_be_positive"),
            ("-1.00", "USD", "amount_must_be_positive"),
            ("1.00", "XXX", "unknown_currency"),
            ("1.00", "EUR", "currency_not_supported"),
        ];
        for (amount, currency, code) in cases {
            let error = parse_amount(amount, currency).unwrap_err();
            assert_eq!(error.code(), code, "{amount} {currency}");
        }
    }

    #[test]
    fn idempotency_keys_and_notes_have_bounds() {
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        for bad in ["", "has space", "tab\t", "é"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(Note::parse(&"é".repeat(280)).is_ok());
        assert_eq!(
            Note::parse(&"n".repeat(281)),
            Err(PaymentError::NoteTooLong)
        );
    }

    #[test]
    fn dated_claims_expire_after_a_day_unless_an_intent_is_unresolved() {
        let day = IDEMPOTENCY_KEY_TTL_NS;
        let action = br#"{"request_sha256":"x","claimed_at_ns":1000,"attempt":"a","answer":null}"#;
        assert_eq!(dated_claim_expired(action, 1_000 + day - 1), Some(false));
        assert_eq!(dated_claim_expired(action, 1_000 + day), Some(true));
        // An action claim written before the field had its present name.
        let older = br#"{"request_sha256":"x","started_at_ns":1000,"attempt":"a","answer":null}"#;
        assert_eq!(dated_claim_expired(older, 1_000 + day - 1), Some(false));
        assert_eq!(dated_claim_expired(older, 1_000 + day), Some(true));
        let open_intent = br#"{"claimed_at_ns":1000,"resolved":false}"#;
        assert_eq!(dated_claim_expired(open_intent, u64::MAX), Some(false));
        let resolved_intent = br#"{"claimed_at_ns":1000,"resolved":true}"#;
        assert_eq!(
            dated_claim_expired(resolved_intent, 1_000 + day),
            Some(true)
        );
        // No time (or 0, from a claim rewritten before it was kept): not dated here.
        let payment = br#"{"request_sha256":"x","status":201,"payment_id":"1"}"#;
        assert_eq!(dated_claim_expired(payment, u64::MAX), None);
        let zero = br#"{"request_sha256":"x","claimed_at_ns":0,"resolved":true}"#;
        assert_eq!(dated_claim_expired(zero, u64::MAX), None);
    }

    #[test]
    fn movement_ids_depend_on_time_payer_and_key() {
        let payer = PersonId::random();
        let key = IdempotencyKey::parse("key-1").unwrap();
        let other_key = IdempotencyKey::parse("key-2").unwrap();
        let id = |domain, payer, key, now_ns| time_ordered_u128(domain, payer, key, now_ns);
        let first = id(P2P_TRANSFER_ID_DOMAIN, payer, &key, 1_000);
        assert_eq!(first, id(P2P_TRANSFER_ID_DOMAIN, payer, &key, 1_000));
        assert_ne!(first, id(P2P_TRANSFER_ID_DOMAIN, payer, &other_key, 1_000));
        assert_ne!(first, id(P2P_PAYMENT_ID_DOMAIN, payer, &key, 1_000));
        assert_ne!(
            first,
            id(P2P_TRANSFER_ID_DOMAIN, PersonId::random(), &key, 1_000)
        );
        // Made later, it sorts after.
        assert!(id(P2P_TRANSFER_ID_DOMAIN, payer, &key, 1_001) > first);
    }

    #[test]
    fn platform_accounts_are_fixed() {
        let accounts = platform_accounts().unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].code, AccountCode::ProcessorClearing);
        assert_eq!(accounts[0].flags, AccountFlags::NONE);
        assert_eq!(accounts[1].code, AccountCode::PlatformRevenue);
    }
}
