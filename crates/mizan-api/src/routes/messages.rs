//! Direct messages and paid DMs: `POST /v1/messages`, `GET /v1/threads`,
//! `GET /v1/threads/{handle}`, `GET|POST /v1/me/dm-settings`, `GET /v1/paid-dms`,
//! `GET /v1/paid-dms/{id}`, `POST /v1/paid-dms/{id}/accept|decline`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use mizan_app::identity::{Person, WALLET_CURRENCY};
use mizan_app::messages::{
    self, DmSettings, MessageText, MessageView, PaidDmPolicy, PaidDmStatus, PaidDmView, Sent,
};
use mizan_app::payments;
use mizan_core::{Clock, Money, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::routes::identity::{ledger, JsonBody};
use crate::routes::payments::{idempotency_key, idempotent_response};
use crate::routes::security::any_caller;
use crate::state::AppState;

/// Messages a thread page answers.
const MESSAGES_PAGE: usize = 50;
/// How often the server records paid DMs the ledger refunded at their deadline.
const PAID_DM_EXPIRY_POLL_MS: u64 = 500;

/// Records, until `stop`, the paid DMs the ledger refunded at their deadline
/// (`paid_dm.refunded`, once each: see `messages::record_expiries`).
pub async fn run_paid_dm_expiries(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = std::time::Duration::from_millis(PAID_DM_EXPIRY_POLL_MS);
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(ledger) = state.ledger() {
            let ran =
                messages::record_expiries(&ledger, &state.reader(), SystemClock.now_ns()).await;
            drop(ledger);
            if let Err(error) = ran {
                tracing::error!(%error, "recording paid DM expiries failed");
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Messages are the person's own: their session, never an app.
async fn own_person(state: &AppState, headers: &HeaderMap) -> Result<Person, ApiError> {
    let caller = any_caller(state, headers).await?;
    Ok(caller.require_session()?.clone())
}

fn policy(state: &AppState) -> PaidDmPolicy {
    PaidDmPolicy {
        cut_bps: state.config().paid_dm_cut_bps,
        timeout_seconds: state.config().paid_dm_timeout_seconds,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageCreateRequest {
    /// The recipient's handle.
    pub to: String,
    /// 1–2,000 characters.
    pub text: String,
    /// What the sender agrees to pay if the recipient charges for messages, in USD
    /// major units (e.g. "5.00"); without it a paid DM answers 402 with the price.
    pub offer: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageBody {
    pub id: String,
    pub thread_id: String,
    pub from: String,
    pub to: String,
    pub text: String,
    pub paid_dm_id: Option<String>,
    /// The checkout card this message is (`GET /v1/checkouts/{id}`), if one.
    pub checkout_id: Option<String>,
    pub created_at: String,
}

impl From<MessageView> for MessageBody {
    fn from(view: MessageView) -> MessageBody {
        MessageBody {
            id: view.id,
            thread_id: view.thread_id,
            from: view.from,
            to: view.to,
            text: view.text,
            paid_dm_id: view.paid_dm_id,
            checkout_id: view.checkout_id,
            created_at: view.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaidDmBody {
    pub id: String,
    pub thread_id: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub price: String,
    /// What the platform keeps when it is paid out.
    pub cut: String,
    pub currency: String,
    /// `pending`, `paid` (the recipient answered), `declined` or `expired` (refunded).
    pub status: String,
    pub pending_transfer_id: String,
    pub created_at: String,
    /// When the ledger refunds the sender if nobody answers.
    pub expires_at: String,
}

fn status_text(status: PaidDmStatus) -> &'static str {
    match status {
        PaidDmStatus::Pending => "pending",
        PaidDmStatus::Paid => "paid",
        PaidDmStatus::Declined => "declined",
        PaidDmStatus::Expired => "expired",
    }
}

impl From<PaidDmView> for PaidDmBody {
    fn from(view: PaidDmView) -> PaidDmBody {
        PaidDmBody {
            id: view.id,
            thread_id: view.thread_id,
            message_id: view.message_id,
            from: view.from,
            to: view.to,
            price: view.price,
            cut: view.cut,
            currency: view.currency,
            status: status_text(view.status).to_owned(),
            pending_transfer_id: view.pending_transfer_id,
            created_at: view.created_at,
            expires_at: view.expires_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SentBody {
    pub message: MessageBody,
    /// The paid DM this message is, when the recipient charges for it.
    pub paid_dm: Option<PaidDmBody>,
    /// Paid DMs this message (a reply) paid out.
    pub settled: Vec<String>,
}

impl From<Sent> for SentBody {
    fn from(sent: Sent) -> SentBody {
        SentBody {
            message: sent.message.into(),
            paid_dm: sent.paid_dm.map(PaidDmBody::from),
            settled: sent.settled,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThreadItem {
    /// The other person's handle.
    pub with: String,
    pub thread_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThreadListBody {
    pub items: Vec<ThreadItem>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageListBody {
    /// Oldest first.
    pub items: Vec<MessageBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PaidDmListBody {
    /// Newest first.
    pub items: Vec<PaidDmBody>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DmSettingsBody {
    /// Whether people you don't follow pay to message you.
    pub paid_dms: bool,
    /// The price in USD major units, when on.
    pub price: Option<String>,
}

impl From<DmSettings> for DmSettingsBody {
    fn from(settings: DmSettings) -> DmSettingsBody {
        DmSettingsBody {
            paid_dms: settings.paid_dms,
            price: settings
                .paid_dms
                .then(|| Money::from_minor(settings.price_minor, WALLET_CURRENCY).format_major()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DmSettingsRequest {
    pub paid_dms: bool,
    /// Required when `paid_dms` is true: 0.01–1,000.00 USD.
    pub price: Option<String>,
}

/// Sends a direct message, once per `Idempotency-Key`. To someone who charges for
/// messages from people they don't follow, it is a paid DM: the price is held until
/// they answer (paid out, less the platform's cut), decline, or the deadline passes
/// (refunded by the ledger). A message to someone whose paid DMs to you are pending
/// pays those out.
#[utoipa::path(
    post,
    path = "/v1/messages",
    tag = "messages",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; a retry with the same key answers the stored result with `Idempotent-Replayed: true`.")),
    request_body = MessageCreateRequest,
    responses(
        (status = 201, description = "The message (and its paid DM)", body = SentBody),
        (status = 400, description = "`invalid_body`, `invalid_message`, an amount code or `idempotency_key_*`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "`paid_dm_required`: the detail says the price; send again with `offer`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_request_in_progress`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds`, `cannot_pay_yourself` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn send_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<MessageCreateRequest>,
) -> Result<Response, ApiError> {
    let sender = own_person(&state, &headers).await?;
    let key = idempotency_key(&headers)?;
    let text = MessageText::parse(&request.text)?;
    let offer = match &request.offer {
        None => None,
        Some(text) => Some(payments::parse_amount(text, WALLET_CURRENCY.code())?),
    };
    let ledger = ledger(&state)?;
    let answer = messages::send_message(
        &ledger,
        &state.reader(),
        &state.config().limits,
        &sender,
        &request.to,
        text,
        offer,
        key,
        policy(&state),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let body = SentBody::from(answer.body.clone());
    idempotent_response(answer.status, answer.replayed, body)
}

/// The people the caller has threads with.
#[utoipa::path(
    get,
    path = "/v1/threads",
    tag = "messages",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The threads", body = ThreadListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn threads(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ThreadListBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let threads = messages::threads_of(&state.reader(), person.id).await?;
    Ok(Json(ThreadListBody {
        items: threads
            .into_iter()
            .map(|thread| ThreadItem {
                with: thread.with,
                thread_id: thread.thread_id,
            })
            .collect(),
    }))
}

/// The latest messages between the caller and a person.
#[utoipa::path(
    get,
    path = "/v1/threads/{handle}",
    tag = "messages",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "The other person's handle")),
    responses(
        (status = 200, description = "Up to 50 messages, oldest first", body = MessageListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn thread(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<MessageListBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let messages =
        messages::thread_messages(&state.reader(), &person, &handle, MESSAGES_PAGE).await?;
    Ok(Json(MessageListBody {
        items: messages.into_iter().map(MessageBody::from).collect(),
    }))
}

/// The caller's paid-DM settings.
#[utoipa::path(
    get,
    path = "/v1/me/dm-settings",
    tag = "messages",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = DmSettingsBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_dm_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<DmSettingsBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    Ok(Json(
        messages::dm_settings(&state.reader(), person.id)
            .await?
            .into(),
    ))
}

/// Opts in to paid DMs at a price, or out.
#[utoipa::path(
    post,
    path = "/v1/me/dm-settings",
    tag = "messages",
    security(("bearer" = [])),
    request_body = DmSettingsRequest,
    responses(
        (status = 200, description = "The settings", body = DmSettingsBody),
        (status = 400, description = "`invalid_body`, an amount code or `invalid_dm_price`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn set_dm_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<DmSettingsRequest>,
) -> Result<Json<DmSettingsBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let price = match (request.paid_dms, request.price.as_deref()) {
        (false, _) => None,
        (true, None) => return Err(payments::PaymentError::DmPriceInvalid.into()),
        (true, Some(text)) => Some(payments::parse_amount(text, WALLET_CURRENCY.code())?),
    };
    let ledger = ledger(&state)?;
    let settings = messages::set_dm_price(&ledger, &person, price).await?;
    Ok(Json(settings.into()))
}

/// The caller's priority inbox: paid DMs sent to them, newest first.
#[utoipa::path(
    get,
    path = "/v1/paid-dms",
    tag = "messages",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Paid DMs with their status", body = PaidDmListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn priority_inbox(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PaidDmListBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let items = messages::priority_inbox(&state.reader(), person.id).await?;
    Ok(Json(PaidDmListBody {
        items: items.into_iter().map(PaidDmBody::from).collect(),
    }))
}

/// A paid DM the caller sent or received, with its status as the ledger has it.
#[utoipa::path(
    get,
    path = "/v1/paid-dms/{id}",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The paid DM id (32 hex digits)")),
    responses(
        (status = 200, description = "The paid DM", body = PaidDmBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`paid_dm_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_paid_dm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PaidDmBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    Ok(Json(
        messages::paid_dm(&state.reader(), person.id, &id)
            .await?
            .into(),
    ))
}

async fn settle(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    accept: bool,
) -> Result<Json<PaidDmBody>, ApiError> {
    let person = own_person(state, headers).await?;
    let ledger = ledger(state)?;
    let view = messages::settle_paid_dm(
        &ledger,
        &state.reader(),
        &person,
        id,
        accept,
        SystemClock.now_ns(),
    )
    .await?;
    Ok(Json(view.into()))
}

/// The recipient accepts a paid DM: the price is paid out, less the platform's cut.
#[utoipa::path(
    post,
    path = "/v1/paid-dms/{id}/accept",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The paid DM id")),
    responses(
        (status = 200, description = "The paid DM, `paid`", body = PaidDmBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required` or `request_action_not_allowed` (only its recipient)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`paid_dm_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`paid_dm_not_pending`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn accept_paid_dm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PaidDmBody>, ApiError> {
    settle(&state, &headers, &id, true).await
}

/// The recipient declines a paid DM: the sender gets the price back.
#[utoipa::path(
    post,
    path = "/v1/paid-dms/{id}/decline",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The paid DM id")),
    responses(
        (status = 200, description = "The paid DM, `declined`", body = PaidDmBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required` or `request_action_not_allowed` (only its recipient)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`paid_dm_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`paid_dm_not_pending`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn decline_paid_dm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PaidDmBody>, ApiError> {
    settle(&state, &headers, &id, false).await
}
