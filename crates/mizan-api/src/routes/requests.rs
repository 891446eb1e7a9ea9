//! Money requests (`/v1/requests…`), splits (`POST /v1/splits`), the wallet activity
//! feed (`GET /v1/activity`) and payment receipts (`GET /v1/payments/{id}/receipt`).
//! Handlers parse into domain types first, then call `mizan_app::requests`.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use mizan_app::identity::Handle;
use mizan_app::payments::{self, Note, PaymentError};
use mizan_app::requests::{
    self, ActivityItem, ActivityQuery, Answer, Closing, NewRequest, NewSplit, RequestView,
};
use mizan_core::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem};
use crate::routes::identity::{ledger, JsonBody};
use crate::routes::payments::{caller, idempotency_key, idempotent_response, PaymentBody};
use crate::state::AppState;
use mizan_app::apps::Scope;

use crate::routes::security::{any_caller, require_step_up};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestCreateRequest {
    /// The handle of the person asked to pay.
    pub from: String,
    /// Major units, e.g. "12.34".
    pub amount: String,
    /// ISO 4217; only "USD" for now.
    pub currency: String,
    /// At most 280 characters.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RequestBody {
    pub id: String,
    /// The payer's handle (who is asked).
    pub from: String,
    /// The requester's handle (who is owed).
    pub to: String,
    pub amount: String,
    pub currency: String,
    pub note: String,
    /// "open", "paid", "declined" or "cancelled".
    pub status: String,
    /// The payment that settled the request, once "paid".
    pub payment_id: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl From<RequestView> for RequestBody {
    fn from(view: RequestView) -> RequestBody {
        RequestBody {
            id: view.id,
            from: view.from,
            to: view.to,
            amount: view.amount,
            currency: view.currency,
            note: view.note,
            status: view.status,
            payment_id: view.payment_id,
            created_at: view.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitCreateRequest {
    /// The whole bill the caller paid, major units.
    pub amount: String,
    /// ISO 4217; only "USD" for now.
    pub currency: String,
    /// At most 280 characters.
    #[serde(default)]
    pub note: String,
    /// The handles owing equal shares (1–20, distinct, not the caller).
    pub with: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SplitBody {
    /// One request id per person, in the order of `with`.
    pub request_ids: Vec<String>,
    pub requests: Vec<RequestBody>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// 1–100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// "payment", "funding", "cashout" or "tip".
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// Only activity on or after this UTC day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Only activity on or before this UTC day, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// Only payments with this handle.
    pub counterparty: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActivityItemBody {
    pub transfer_id: String,
    /// RFC 3339 UTC.
    pub timestamp: String,
    /// "in" or "out".
    pub direction: String,
    pub amount: String,
    pub currency: String,
    /// The other person's handle, or "card funding".
    pub counterparty: String,
    pub note: String,
    /// The P2P payment this line belongs to (`GET /v1/payments/{id}/receipt`), if any.
    pub payment_id: Option<String>,
}

impl From<ActivityItem> for ActivityItemBody {
    fn from(item: ActivityItem) -> ActivityItemBody {
        ActivityItemBody {
            transfer_id: item.transfer_id,
            timestamp: item.timestamp,
            direction: item.direction,
            amount: item.amount,
            currency: item.currency,
            counterparty: item.counterparty,
            note: item.note,
            payment_id: item.payment_id,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActivityBody {
    /// Newest first.
    pub items: Vec<ActivityItemBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReceiptBody {
    pub payment: PaymentBody,
    /// The ledger transfer (32 hex digits).
    pub transfer_id: String,
    /// When the ledger committed the transfer, RFC 3339 UTC.
    pub timestamp: String,
    /// The transfer's hash in the ledger's hash chain (64 hex digits).
    pub hash: String,
}

fn answer_response<T>(answer: Answer<T>, body: impl Serialize) -> Result<Response, ApiError> {
    idempotent_response(answer.status, answer.replayed, body)
}

fn request_response(answer: Answer<RequestView>) -> Result<Response, ApiError> {
    let body = RequestBody::from(answer.body.clone());
    answer_response(answer, body)
}

/// Asks another person for money, once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/requests",
    tag = "requests",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; 1–255 visible ASCII characters.")),
    request_body = RequestCreateRequest,
    responses(
        (status = 201, description = "The open request (also for a replay, with `Idempotent-Replayed: true`)", body = RequestBody),
        (status = 400, description = "`invalid_body`, `idempotency_key_required`, `idempotency_key_invalid`, an amount or currency code, or `note_too_long` (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` or `cannot_request_from_yourself`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<RequestCreateRequest>,
) -> Result<Response, ApiError> {
    let person = caller(&state, &headers, Scope::PaymentsWrite).await?;
    let key = idempotency_key(&headers)?;
    let amount = payments::parse_amount(&request.amount, &request.currency)?;
    let from = Handle::parse(&request.from)
        .map_err(|_| unknown_person_in(PaymentError::RecipientNotFound, "from"))?;
    let note = Note::parse(&request.note)?;
    let request = NewRequest { from, amount, note };
    let ledger = ledger(&state)?;
    let answer = requests::create_request(
        &ledger,
        &state.reader(),
        &person,
        request,
        key,
        SystemClock.now_ns(),
    )
    .await
    .map_err(|error| unknown_person_in(error, "from"))?;
    drop(ledger);
    request_response(answer)
}

/// `recipient_not_found` names the field that held the handle: a request's payer is
/// `from`, a split's people are `with` (a payment's `to` is the default).
fn unknown_person_in(error: PaymentError, field: &'static str) -> ApiError {
    let about_person = error == PaymentError::RecipientNotFound;
    let mut api = ApiError::from(error);
    if let (true, ApiError::Refused { field: named, .. }) = (about_person, &mut api) {
        *named = Some(field);
    }
    api
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestListQuery {
    /// 1 to 100; default 50.
    pub limit: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RequestListBody {
    /// Requests the caller made or was asked to pay, newest first, with their status.
    pub items: Vec<RequestBody>,
}

/// Default number of requests a list answers.
const REQUEST_LIST_LIMIT_DEFAULT: usize = 50;

/// The requests the caller made or was asked to pay, newest first.
#[utoipa::path(
    get,
    path = "/v1/requests",
    tag = "requests",
    security(("bearer" = [])),
    params(RequestListQuery),
    responses(
        (status = 200, description = "The requests", body = RequestListBody),
        (status = 400, description = "`invalid_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_requests(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<RequestListQuery>,
) -> Result<Json<RequestListBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let limit = match query.limit.as_deref() {
        None => REQUEST_LIST_LIMIT_DEFAULT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=requests::REQUESTS_LISTED_MAX).contains(limit))
            .ok_or(ApiError::from(PaymentError::InvalidLimit))?,
    };
    let views = requests::requests_of(&state.reader(), person.id, limit).await?;
    Ok(Json(RequestListBody {
        items: views.into_iter().map(RequestBody::from).collect(),
    }))
}

/// A request the caller made or was asked to pay; any other id answers 404.
#[utoipa::path(
    get,
    path = "/v1/requests/{id}",
    tag = "requests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request id (32 hex digits)")),
    responses(
        (status = 200, description = "The request", body = RequestBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`request_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RequestBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let view = requests::request_for(&state.reader(), person.id, &id).await?;
    Ok(Json(RequestBody::from(view)))
}

/// Pays a request the caller was asked to pay: one atomic submission, once per key.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/pay",
    tag = "requests",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The request id"),
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key answers the stored result with `Idempotent-Replayed: true`.")
    ),
    responses(
        (status = 201, description = "The request, now `paid`, with its `payment_id`", body = RequestBody),
        (status = 400, description = "`idempotency_key_required` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`request_action_not_allowed` (the requester cannot pay their own request), or `capability_unavailable` (with `jurisdiction` and `capability`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`request_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`request_not_open`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds`, `idempotency_key_reused`, or `limit_exceeded` (with `limit` and `resets_at`; nothing moved)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn pay_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = any_caller(&state, &headers).await?;
    let person = caller.require(Scope::PaymentsWrite)?.clone();
    let key = idempotency_key(&headers)?;
    let view = requests::request_for(&state.reader(), person.id, &id).await?;
    let amount = mizan_app::payments::parse_amount(&view.amount, &view.currency)?;
    require_step_up(&state, &caller, amount.minor_units()).await?;
    let ledger = ledger(&state)?;
    let answer = requests::pay_request(
        &ledger,
        &state.reader(),
        &state.config().limits,
        &person,
        &id,
        key,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    request_response(answer)
}

async fn close(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    closing: Closing,
) -> Result<Json<RequestBody>, ApiError> {
    let person = caller(state, headers, Scope::PaymentsWrite).await?;
    let ledger = ledger(state)?;
    let view = requests::close_request(
        &ledger,
        &state.reader(),
        &person,
        id,
        closing,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok(Json(RequestBody::from(view)))
}

/// Declines a request the caller was asked to pay.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/decline",
    tag = "requests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "The request, now `declined`", body = RequestBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`request_action_not_allowed` (only the payer declines)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`request_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`request_not_open`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn decline_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RequestBody>, ApiError> {
    close(&state, &headers, &id, Closing::Decline).await
}

/// Cancels a request the caller made.
#[utoipa::path(
    delete,
    path = "/v1/requests/{id}",
    tag = "requests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "The request, now `cancelled`", body = RequestBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`request_action_not_allowed` (only the requester cancels)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`request_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`request_not_open`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn cancel_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RequestBody>, ApiError> {
    close(&state, &headers, &id, Closing::Cancel).await
}

/// Splits a bill the caller paid: one request per listed person, all or nothing.
#[utoipa::path(
    post,
    path = "/v1/splits",
    tag = "requests",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; 1–255 visible ASCII characters.")),
    request_body = SplitCreateRequest,
    responses(
        (status = 201, description = "The requests, equal shares with the remainder on the first", body = SplitBody),
        (status = 400, description = "`invalid_body`, `idempotency_key_required`, an amount or currency code, `note_too_long` or `split_people_invalid` (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused` or `cannot_request_from_yourself`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_split(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SplitCreateRequest>,
) -> Result<Response, ApiError> {
    let person = caller(&state, &headers, Scope::PaymentsWrite).await?;
    let key = idempotency_key(&headers)?;
    let amount = payments::parse_amount(&request.amount, &request.currency)?;
    let note = Note::parse(&request.note)?;
    let with = request
        .with
        .iter()
        .map(|handle| Handle::parse(handle).map_err(|_| PaymentError::RecipientNotFound))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| unknown_person_in(error, "with"))?;
    let split = NewSplit { amount, note, with };
    let ledger = ledger(&state)?;
    let answer = requests::create_split(
        &ledger,
        &state.reader(),
        &person,
        split,
        key,
        SystemClock.now_ns(),
    )
    .await
    .map_err(|error| unknown_person_in(error, "with"))?;
    drop(ledger);
    let requests: Vec<RequestBody> = answer.body.iter().cloned().map(RequestBody::from).collect();
    let body = SplitBody {
        request_ids: requests.iter().map(|request| request.id.clone()).collect(),
        requests,
    };
    answer_response(answer, body)
}

/// The caller's wallet history, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/activity",
    tag = "requests",
    security(("bearer" = [])),
    params(ActivityParams),
    responses(
        (status = 200, description = "A page of activity", body = ActivityBody),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_type`, `invalid_date` or `invalid_counterparty` (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn activity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ActivityParams>,
) -> Result<Json<ActivityBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let query = ActivityQuery::parse(
        params.limit.as_deref(),
        params.cursor.as_deref(),
        params.kind.as_deref(),
    )?
    .with_dates(params.from.as_deref(), params.to.as_deref())?
    .with_counterparty(params.counterparty.as_deref())?;
    let page = requests::activity(&state.reader(), person.id, query).await?;
    Ok(Json(ActivityBody {
        items: page.items.into_iter().map(ActivityItemBody::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A payment with its ledger transfer id, commit time and hash; payer and payee only.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}/receipt",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment id (32 hex digits)")),
    responses(
        (status = 200, description = "The receipt", body = ReceiptBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`payment_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<ReceiptBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let receipt = requests::receipt_for(&state.reader(), person.id, &id).await?;
    Ok(Json(ReceiptBody {
        payment: PaymentBody::from(receipt.payment),
        transfer_id: receipt.transfer_id,
        timestamp: receipt.timestamp,
        hash: receipt.hash,
    }))
}
