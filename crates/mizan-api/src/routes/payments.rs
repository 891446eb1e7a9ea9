//! `POST /v1/funding` (sandbox card funding), `POST /v1/payments` (P2P, with a
//! required `Idempotency-Key`) and `GET /v1/payments/{id}`. Handlers parse their body
//! into domain types first, then call `mizan_app::funding` / `mizan_app::payments`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mizan_app::apps::Scope;
use mizan_app::cashout::{self, BankAccount};
use mizan_app::creation::{Created, Replay};
use mizan_app::funding::{self, CardNumber};
use mizan_app::identity::{Handle, Person};
use mizan_app::payments::{
    self, IdempotencyKey, Note, PaymentError, PaymentOutcome, PaymentRequest, PaymentView,
};
use mizan_core::{Clock, Secret, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem, ProblemExtras};
use crate::routes::identity::{ledger, vault, JsonBody};
use crate::routes::security::{any_caller, require_step_up};
use crate::state::AppState;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> ApiError {
        let code = error.code();
        let field = error.field();
        let refused =
            |status: StatusCode, title: &'static str, error: PaymentError| ApiError::Refused {
                status,
                code,
                title,
                field,
                detail: error.to_string(),
            };
        match error {
            PaymentError::AmountMalformed
            | PaymentError::AmountTooPrecise
            | PaymentError::AmountTooLarge
            | PaymentError::AmountMustBePositive
            | PaymentError::UnknownCurrency
            | PaymentError::CurrencyNotSupported
            | PaymentError::NoteTooLong
            | PaymentError::CardNumberInvalid
            | PaymentError::RoutingNumberInvalid
            | PaymentError::AccountNumberInvalid
            | PaymentError::IdempotencyKeyRequired
            | PaymentError::IdempotencyKeyInvalid
            | PaymentError::SplitPeopleInvalid
            | PaymentError::InvalidCursor
            | PaymentError::InvalidLimit
            | PaymentError::InvalidActivityType
            | PaymentError::InvalidDate
            | PaymentError::InvalidCounterparty => {
                refused(StatusCode::BAD_REQUEST, "Invalid field", error)
            }
            PaymentError::RecipientNotFound
            | PaymentError::PaymentNotFound
            | PaymentError::PostNotFound
            | PaymentError::RequestNotFound
            | PaymentError::CardNotFound => refused(StatusCode::NOT_FOUND, "Not found", error),
            PaymentError::SavedCardsFull => {
                refused(StatusCode::CONFLICT, "Too many saved cards", error)
            }
            PaymentError::PersonErased => refused(StatusCode::GONE, "Personal data erased", error),
            PaymentError::IdempotencyKeyReused
            | PaymentError::CannotPayYourself
            | PaymentError::CannotRequestFromYourself
            | PaymentError::InsufficientFunds => {
                refused(StatusCode::UNPROCESSABLE_ENTITY, "Payment refused", error)
            }
            PaymentError::RequestNotOpen => refused(StatusCode::CONFLICT, "Request closed", error),
            PaymentError::FundingNotFound => refused(StatusCode::NOT_FOUND, "Not found", error),
            PaymentError::FundingNotAwaitingChallenge => {
                refused(StatusCode::CONFLICT, "Not awaiting a challenge", error)
            }
            PaymentError::IdempotencyRequestInProgress => {
                refused(StatusCode::CONFLICT, "Request in progress", error)
            }
            PaymentError::RequestActionNotAllowed => {
                refused(StatusCode::FORBIDDEN, "Not allowed", error)
            }
            PaymentError::AccountFrozen => refused(StatusCode::FORBIDDEN, "Account frozen", error),
            PaymentError::CashoutReturned(_) => {
                refused(StatusCode::UNPROCESSABLE_ENTITY, "Cash-out returned", error)
            }
            PaymentError::CardDeclined(_) => {
                refused(StatusCode::PAYMENT_REQUIRED, "Card declined", error)
            }
            PaymentError::MessageInvalid | PaymentError::DmPriceInvalid => {
                refused(StatusCode::BAD_REQUEST, "Invalid field", error)
            }
            PaymentError::PaidDmRequired(_) => {
                refused(StatusCode::PAYMENT_REQUIRED, "Paid DM", error)
            }
            PaymentError::PaidDmNotFound => refused(StatusCode::NOT_FOUND, "Not found", error),
            PaymentError::PaidDmNotPending => {
                refused(StatusCode::CONFLICT, "Paid DM settled", error)
            }
            PaymentError::LimitExceeded {
                limit,
                ref resets_at,
            } => ApiError::Compliance {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                title: "Limit exceeded",
                detail: error.to_string(),
                extras: Box::new(ProblemExtras {
                    limit: Some(limit.to_owned()),
                    resets_at: Some(resets_at.clone()),
                    ..ProblemExtras::default()
                }),
            },
            PaymentError::CapabilityUnavailable {
                ref jurisdiction,
                capability,
            } => ApiError::Compliance {
                status: StatusCode::FORBIDDEN,
                code,
                title: "Not available in your jurisdiction",
                detail: error.to_string(),
                extras: Box::new(ProblemExtras {
                    jurisdiction: Some(jurisdiction.clone()),
                    capability: Some(capability.to_owned()),
                    ..ProblemExtras::default()
                }),
            },
            PaymentError::VerificationRequired { tier } => ApiError::Compliance {
                status: StatusCode::FORBIDDEN,
                code,
                title: "Verification required",
                detail: error.to_string(),
                extras: Box::new(ProblemExtras {
                    tier_required: Some(tier),
                    ..ProblemExtras::default()
                }),
            },
            PaymentError::TierNameInvalid
            | PaymentError::TierPriceInvalid
            | PaymentError::TierPerksInvalid => {
                refused(StatusCode::BAD_REQUEST, "Invalid field", error)
            }
            PaymentError::TierNotFound | PaymentError::SubscriptionNotFound => {
                refused(StatusCode::NOT_FOUND, "Not found", error)
            }
            PaymentError::TooManyTiers
            | PaymentError::TierRetired
            | PaymentError::AlreadySubscribed
            | PaymentError::SubscriptionEnded => {
                refused(StatusCode::CONFLICT, "Subscription refused", error)
            }
            PaymentError::Internal(detail) => {
                tracing::error!(%detail, "payment use case failed");
                ApiError::Internal
            }
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FundingRequest {
    /// Major units, e.g. "25.00".
    pub amount: String,
    /// ISO 4217; only "USD" for now.
    pub currency: String,
    /// 12–19 digits, Luhn-valid; tokenized in the vault, never stored anywhere
    /// else or logged (documents keep the token and last four). Give this or
    /// `card_id`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub card_number: Option<Secret<String>>,
    /// A saved card's id (`GET /v1/me/cards`) instead of a number.
    #[serde(default)]
    pub card_id: Option<String>,
    /// With `card_number`: save the card as the caller's default card once the
    /// charge is approved (or awaits its challenge).
    #[serde(default)]
    pub save_card: bool,
}

/// The card a funding request names: a number (optionally saved) or a saved card.
fn card_source(request: FundingRequest) -> Result<funding::CardSource, ApiError> {
    let invalid = |detail: &str| ApiError::InvalidField {
        code: "card_source_invalid",
        field: "card_number",
        detail: detail.to_owned(),
    };
    match (request.card_number, request.card_id) {
        (Some(number), None) => Ok(funding::CardSource::New {
            number: CardNumber::parse(number)?,
            save_as_default: request.save_card,
        }),
        (None, Some(card_id)) if !request.save_card => {
            if card_id.is_empty() || card_id.len() > CARD_ID_BYTES_MAX {
                return Err(PaymentError::CardNotFound.into());
            }
            Ok(funding::CardSource::Saved { card_id })
        }
        (None, Some(_)) => Err(invalid("save_card goes with a new card_number only")),
        (Some(_), Some(_)) | (None, None) => {
            Err(invalid("give exactly one of card_number and card_id"))
        }
    }
}

/// Longest saved-card id accepted (a token is 41 characters).
const CARD_ID_BYTES_MAX: usize = 64;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FundingBody {
    pub id: String,
    /// "succeeded", or "requires_action" (202) while the card's challenge waits for
    /// the cardholder's answer; a decline answers 402.
    pub status: String,
    pub amount: String,
    pub currency: String,
    /// With "requires_action": the request that answers the challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<String>,
}

/// The answer of a funding: 201 succeeded, or 202 requires_action.
fn funding_response(outcome: funding::FundingOutcome) -> Result<Response, ApiError> {
    let id = outcome.funding.id;
    let (status, state, next_action) = if outcome.requires_action {
        let next = format!("POST /v1/funding/{id}/challenge");
        (202, "requires_action", Some(next))
    } else {
        (
            payments::STATUS_CODE_CREATED,
            payments::STATUS_SUCCEEDED,
            None,
        )
    };
    let body = FundingBody {
        id,
        status: state.to_owned(),
        amount: outcome.funding.amount.format_major(),
        currency: outcome.funding.amount.currency().code().to_owned(),
        next_action,
    };
    idempotent_response(status, outcome.replayed, body)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeAnswer {
    /// What the cardholder entered for the issuer (sandbox: "123456" passes).
    #[schema(value_type = String)]
    pub answer: Secret<String>,
}

/// Answers the card challenge of one of the caller's fundings: approved, the wallet
/// is credited; failed, the hold is voided and nothing moves.
#[utoipa::path(
    post,
    path = "/v1/funding/{id}/challenge",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The funding id")),
    request_body = ChallengeAnswer,
    responses(
        (status = 201, description = "The funding succeeded", body = FundingBody),
        (status = 400, description = "`invalid_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`card_declined` (`authentication_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`funding_not_found`, also for another person's funding", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`funding_not_awaiting_challenge`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn answer_challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ChallengeAnswer>,
) -> Result<Response, ApiError> {
    let person = caller(&state, &headers, Scope::PaymentsWrite).await?;
    let ledger = ledger(&state)?;
    let processor = state.processor();
    let outcome = funding::complete_challenge(
        &ledger,
        &state.reader(),
        processor.as_ref(),
        person.id,
        &id,
        request.answer.expose(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    funding_response(outcome)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentCreateRequest {
    /// The payee's handle.
    pub to: String,
    /// Major units, e.g. "12.34".
    pub amount: String,
    /// ISO 4217; only "USD" for now.
    pub currency: String,
    /// At most 280 characters.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentBody {
    pub id: String,
    /// The payer's handle.
    pub from: String,
    /// The payee's handle.
    pub to: String,
    pub amount: String,
    pub currency: String,
    pub note: String,
    /// "succeeded".
    pub status: String,
    /// The ledger transfer (32 hex digits).
    pub transfer_id: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<PaymentView> for PaymentBody {
    fn from(view: PaymentView) -> PaymentBody {
        PaymentBody {
            id: view.id,
            from: view.from,
            to: view.to,
            amount: view.amount,
            currency: view.currency,
            note: view.note,
            status: view.status,
            transfer_id: view.transfer_id,
            created_at: view.created_at,
        }
    }
}

/// The person a request acts for — by their own session, or by an app token that
/// holds `scope` (else 403 `insufficient_scope`).
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<Person, ApiError> {
    let caller = any_caller(state, headers).await?;
    Ok(caller.require(scope)?.clone())
}

/// Puts money in the caller's wallet from a card (sandbox processor).
#[utoipa::path(
    post,
    path = "/v1/funding",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, description = "Required; 1–255 visible ASCII characters. A retry with the same key and body answers the stored result (a decline replays as the same 402) and never charges twice.")
    ),
    request_body = FundingRequest,
    responses(
        (status = 201, description = "The funding succeeded; the wallet is credited (also for a replay, with `Idempotent-Replayed: true`)", body = FundingBody),
        (status = 202, description = "`requires_action`: the card asks for a challenge; answer it at `next_action`. The amount is held, not credited", body = FundingBody),
        (status = 409, description = "`idempotency_request_in_progress`: the first request with this key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`, or `limit_exceeded` (with `limit` = `weekly_funding` and `resets_at`); nothing is held", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, or `verification_required` (with `tier_required`) when the tier may not add money", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`invalid_body`, `amount_malformed`, `amount_too_precise`, `amount_must_be_positive`, `unknown_currency`, `currency_not_supported`, `card_number_invalid` (not 12–19 digits, or fails the Luhn check) or `card_source_invalid` (not exactly one of `card_number` and `card_id`; `save_card` with `card_id`) (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`card_not_found`: `card_id` is not one of the caller's saved cards", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased; no card can be tokenized for them", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`card_declined`; `detail` names the reason (`insufficient_funds`, `stolen_card`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn fund(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<FundingRequest>,
) -> Result<Response, ApiError> {
    let person = caller(&state, &headers, Scope::PaymentsWrite).await?;
    let key = idempotency_key(&headers)?;
    let amount = payments::parse_amount(&request.amount, &request.currency)?;
    let source = card_source(request)?;
    let ledger = ledger(&state)?;
    let vault = vault(&state)?;
    let processor = state.processor();
    let outcome = funding::fund(
        &ledger,
        &state.reader(),
        &state.config().limits,
        processor.as_ref(),
        &vault,
        person.id,
        amount,
        source,
        key,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    funding_response(outcome)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashoutRequest {
    /// Major units, e.g. "25.00".
    pub amount: String,
    /// ISO 4217; only "USD" for now.
    pub currency: String,
    /// 9 digits with a valid ABA checksum.
    pub routing_number: String,
    /// 4–17 digits; tokenized in the vault, never stored anywhere else or logged
    /// (documents keep the token and last four).
    #[schema(value_type = String)]
    pub account_number: Secret<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CashoutBody {
    pub id: String,
    /// Always "settled" (a return answers 422 `cashout_returned`).
    pub status: String,
    pub amount: String,
    pub currency: String,
}

/// Sends money from the caller's wallet to a bank account (sandbox rail), exactly
/// once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/cashouts",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, description = "Required; 1–255 visible ASCII characters. A retry answers the stored result.")
    ),
    request_body = CashoutRequest,
    responses(
        (status = 201, description = "Settled; the wallet is debited (also for a replay, with `Idempotent-Replayed: true`)", body = CashoutBody),
        (status = 400, description = "`invalid_body`, `idempotency_key_required`, an amount or currency code, `routing_number_invalid` or `account_number_invalid` (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, `step_up_required`, `verification_required` (tier 0 may not cash out; with `tier_required`), `capability_unavailable` (with `jurisdiction` and `capability`) or `account_frozen` (compliance froze the account; nothing is held)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_request_in_progress`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased; no bank account can be tokenized for them", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds`, `idempotency_key_reused`, `limit_exceeded` (with `limit` = `weekly_cashout` and `resets_at`; nothing is held), or `cashout_returned` (the bank sent it back; the money is in the wallet again)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn cash_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CashoutRequest>,
) -> Result<Response, ApiError> {
    let caller = any_caller(&state, &headers).await?;
    let person = caller.require(Scope::PaymentsWrite)?.clone();
    let key = idempotency_key(&headers)?;
    let amount = payments::parse_amount(&request.amount, &request.currency)?;
    let account = BankAccount::parse(&request.routing_number, request.account_number)?;
    require_step_up(&state, &caller, amount.minor_units()).await?;
    let ledger = ledger(&state)?;
    let vault = vault(&state)?;
    let payouts = state.payouts();
    let outcome = cashout::cash_out(
        &ledger,
        &state.reader(),
        &state.config().limits,
        payouts.as_ref(),
        &vault,
        &state.screener(),
        person.id,
        amount,
        account,
        key,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let body = CashoutBody {
        id: outcome.id,
        status: "settled".to_owned(),
        amount: outcome.amount.format_major(),
        currency: outcome.amount.currency().code().to_owned(),
    };
    idempotent_response(payments::STATUS_CODE_CREATED, outcome.replayed, body)
}

pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let value = headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .ok_or(PaymentError::IdempotencyKeyRequired)?;
    let text = value
        .to_str()
        .map_err(|_| PaymentError::IdempotencyKeyInvalid)?;
    Ok(IdempotencyKey::parse(text)?)
}

/// The `Idempotency-Key` of a request where it is optional (a creation), if sent.
pub(crate) fn optional_idempotency_key(
    headers: &HeaderMap,
) -> Result<Option<IdempotencyKey>, ApiError> {
    if headers.contains_key(IDEMPOTENCY_KEY_HEADER) {
        idempotency_key(headers).map(Some)
    } else {
        Ok(None)
    }
}

fn payment_request(request: &PaymentCreateRequest) -> Result<PaymentRequest, ApiError> {
    let amount = payments::parse_amount(&request.amount, &request.currency)?;
    let to = Handle::parse(&request.to).map_err(|_| PaymentError::RecipientNotFound)?;
    let note = Note::parse(&request.note)?;
    Ok(PaymentRequest { to, amount, note })
}

fn outcome_response(outcome: PaymentOutcome) -> Result<Response, ApiError> {
    idempotent_response(
        outcome.status,
        outcome.replayed,
        PaymentBody::from(outcome.payment),
    )
}

/// The answer of an idempotent POST: its stored status and body, and on a replay
/// the `Idempotent-Replayed: true` header.
pub(crate) fn idempotent_response(
    status: u16,
    replayed: bool,
    body: impl Serialize,
) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(status).map_err(|_| ApiError::Internal)?;
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response.headers_mut().insert(
            HeaderName::from_static(IDEMPOTENT_REPLAYED_HEADER),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The 201 answer to a creation under an optional `Idempotency-Key`: the new object,
/// or the first answer the claim stored, replayed (`Idempotent-Replayed: true`).
pub(crate) fn created_response<V, B>(created: Created<V>) -> Result<Response, ApiError>
where
    V: serde::de::DeserializeOwned,
    B: From<V> + Serialize,
{
    match created {
        Created::New(view) => {
            idempotent_response(StatusCode::CREATED.as_u16(), false, B::from(view))
        }
        Created::Replayed(Replay::Response(stored)) => {
            let view: V = serde_json::from_value(stored).map_err(|error| {
                tracing::error!(%error, "a stored creation answer");
                ApiError::Internal
            })?;
            idempotent_response(StatusCode::CREATED.as_u16(), true, B::from(view))
        }
    }
}

/// Pays another person from the caller's wallet, exactly once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/payments",
    tag = "payments",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, description = "Required; 1–255 visible ASCII characters. A retry with the same key and body answers the stored payment with `Idempotent-Replayed: true`, for at least 24 hours; after that the key may make a new payment.")
    ),
    request_body = PaymentCreateRequest,
    responses(
        (status = 201, description = "The payment (also for a replay, with `Idempotent-Replayed: true`)", body = PaymentBody),
        (status = 400, description = "`invalid_body`, `idempotency_key_required`, `idempotency_key_invalid`, `amount_malformed`, `amount_too_precise`, `amount_must_be_positive`, `unknown_currency`, `currency_not_supported` or `note_too_long` (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, `step_up_required`, or `capability_unavailable` (P2P is not licensed in the payer's jurisdiction; with `jurisdiction` and `capability`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_request_in_progress`: the key's 24-hour-old claim was being swept at that moment; nothing moved, retry", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`, `cannot_pay_yourself`, `insufficient_funds`, or `limit_exceeded` (with `limit` = `daily_send` or `weekly_send` and `resets_at`; nothing moved)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PaymentCreateRequest>,
) -> Result<Response, ApiError> {
    let caller = any_caller(&state, &headers).await?;
    let person = caller.require(Scope::PaymentsWrite)?.clone();
    let key = idempotency_key(&headers)?;
    let request = payment_request(&request)?;
    require_step_up(&state, &caller, request.amount.minor_units()).await?;
    let ledger = ledger(&state)?;
    let outcome = payments::pay(
        &ledger,
        &state.reader(),
        &state.config().limits,
        &person,
        request,
        key,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    outcome_response(outcome)
}

/// A payment the caller paid or received; any other id answers 404.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment id (32 hex digits)")),
    responses(
        (status = 200, description = "The payment", body = PaymentBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`payment_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PaymentBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let view = payments::payment_for(&state.reader(), person.id, &id).await?;
    Ok(Json(PaymentBody::from(view)))
}
