//! Checkout cards in direct messages: `POST /v1/threads/{handle}/checkouts` (the
//! seller posts a card), `POST /v1/checkouts/{id}/pay` (the buyer pays, one click),
//! `GET /v1/checkouts/{id}` and `GET /v1/orders`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use mizan_app::checkout::{
    self, CheckoutError, CheckoutView, NewCheckout, OrderQuantity, OrderView,
};
use mizan_app::identity::Person;
use mizan_app::payments::IdempotencyKey;
use mizan_app::subscriptions::CardFallback;
use mizan_core::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::routes::identity::{ledger, vault, JsonBody};
use crate::routes::payments::{idempotency_key, idempotent_response, IDEMPOTENCY_KEY_HEADER};
use crate::routes::security::{any_caller, require_step_up};
use crate::state::AppState;

/// Orders a listing answers.
const ORDERS_PAGE: usize = 50;

impl From<CheckoutError> for ApiError {
    fn from(error: CheckoutError) -> ApiError {
        let refused = |status, title, error: CheckoutError| ApiError::Refused {
            status,
            code: error.code(),
            title,
            field: error.field(),
            detail: error.to_string(),
        };
        match error {
            CheckoutError::ItemInvalid
            | CheckoutError::PriceInvalid
            | CheckoutError::QuantityInvalid => {
                refused(StatusCode::BAD_REQUEST, "Invalid field", error)
            }
            CheckoutError::NotFound => refused(StatusCode::NOT_FOUND, "Not found", error),
            CheckoutError::ConversationRequired => {
                refused(StatusCode::CONFLICT, "No conversation yet", error)
            }
            CheckoutError::OwnOffer => refused(StatusCode::UNPROCESSABLE_ENTITY, "Refused", error),
            CheckoutError::SoldOut { .. } => refused(StatusCode::CONFLICT, "Sold out", error),
            CheckoutError::Payment(error) => error.into(),
        }
    }
}

/// Checkouts are the person's own conversation: their session, never an app.
async fn own_person(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(mizan_app::apps::Caller, Person), ApiError> {
    let caller = any_caller(state, headers).await?;
    let person = caller.require_session()?.clone();
    Ok((caller, person))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutCreateRequest {
    /// 1–80 characters, one line.
    pub item: String,
    /// The unit price, major units ("12.00"): 0.01–10,000.00.
    pub price: String,
    /// `USD`.
    pub currency: String,
    /// Units offered: 1–10,000.
    pub quantity: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CheckoutBody {
    pub id: String,
    /// The conversation it was posted in: only for its two people.
    pub thread_id: Option<String>,
    /// The seller's handle.
    pub seller: String,
    /// Who it was offered to in that conversation: only for its two people.
    pub offered_to: Option<String>,
    pub item: String,
    /// The unit price.
    pub price: String,
    pub currency: String,
    /// Units offered.
    pub quantity: i64,
    /// Units left, as the ledger's stock account holds them.
    pub remaining: i64,
    /// True when no unit is left.
    pub sold_out: bool,
    /// The offer's stock account on the units ledger (1000).
    pub stock_account_id: String,
    pub created_at: String,
}

impl From<CheckoutView> for CheckoutBody {
    fn from(view: CheckoutView) -> CheckoutBody {
        CheckoutBody {
            sold_out: view.remaining <= 0,
            id: view.id,
            thread_id: view.party.then_some(view.thread_id),
            seller: view.seller,
            offered_to: view.party.then_some(view.buyer),
            item: view.item,
            price: view.price,
            currency: view.currency,
            quantity: view.quantity,
            remaining: view.remaining,
            stock_account_id: view.stock_account_id,
            created_at: view.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutPayRequest {
    /// Units to buy: 1–100 (default 1).
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderBody {
    pub id: String,
    pub checkout_id: String,
    pub seller: String,
    pub buyer: String,
    pub item: String,
    pub quantity: i64,
    pub unit_price: String,
    /// `unit_price` × `quantity`.
    pub amount: String,
    pub currency: String,
    /// `paid`.
    pub status: String,
    /// Whether the buyer's default saved card topped the wallet up for it.
    pub funded_from_card: bool,
    pub transfer_id: String,
    pub created_at: String,
    /// In a listing: `bought` or `sold`, the caller's side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl From<OrderView> for OrderBody {
    fn from(view: OrderView) -> OrderBody {
        OrderBody {
            id: view.id,
            checkout_id: view.checkout_id,
            seller: view.seller,
            buyer: view.buyer,
            item: view.item,
            quantity: view.quantity,
            unit_price: view.unit_price,
            amount: view.amount,
            currency: view.currency,
            status: view.status,
            funded_from_card: view.funded_from_card,
            transfer_id: view.transfer_id,
            created_at: view.created_at,
            role: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderListBody {
    /// Newest first: what the caller bought and sold.
    pub items: Vec<OrderBody>,
}

/// The seller posts a checkout card in their conversation with `handle`: an item, a
/// unit price and the units available, which the ledger holds as the offer's stock.
/// The other person must have written in the conversation first. With an
/// `Idempotency-Key`, a retry answers the same card.
#[utoipa::path(
    post,
    path = "/v1/threads/{handle}/checkouts",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("handle" = String, Path, description = "The buyer's handle"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry with the same key answers the same card with `Idempotent-Replayed: true`.")
    ),
    request_body = CheckoutCreateRequest,
    responses(
        (status = 201, description = "The card", body = CheckoutBody),
        (status = 400, description = "`invalid_body`, `invalid_item`, an amount code, `invalid_checkout_price`, `invalid_quantity` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`conversation_required`: the other person has not written to you here", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`cannot_pay_yourself` or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
    JsonBody(request): JsonBody<CheckoutCreateRequest>,
) -> Result<Response, ApiError> {
    let (_, seller) = own_person(&state, &headers).await?;
    let key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(_) => Some(idempotency_key(&headers)?),
    };
    let offer = NewCheckout::parse(
        &request.item,
        &request.price,
        &request.currency,
        request.quantity,
    )?;
    let ledger = ledger(&state)?;
    let answer = checkout::create(
        &ledger,
        &state.reader(),
        &seller,
        &handle,
        offer,
        key,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    idempotent_response(
        answer.status,
        answer.replayed,
        CheckoutBody::from(answer.body),
    )
}

/// A checkout card, with the units left: for anyone signed in who has its id (a card
/// may be passed on, like a payment link); its conversation only for its two people.
#[utoipa::path(
    get,
    path = "/v1/checkouts/{id}",
    tag = "messages",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The checkout id (32 hex digits)")),
    responses(
        (status = 200, description = "The card", body = CheckoutBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`checkout_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CheckoutBody>, ApiError> {
    let (_, person) = own_person(&state, &headers).await?;
    let view = checkout::checkout_for(&state.reader(), person.id, &id).await?;
    Ok(Json(view.into()))
}

/// The buyer pays for units of a checkout card, once per `Idempotency-Key`: from the
/// wallet, or from the default saved card when the wallet is short. The money, the
/// units (the offer's stock on the ledger, never below zero), the order and its
/// `order.paid` event move in one atomic submission; more units than are left is
/// `sold_out` with nothing moved. Amounts at or above the step-up threshold need a
/// fresh second factor.
#[utoipa::path(
    post,
    path = "/v1/checkouts/{id}/pay",
    tag = "messages",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The checkout id"),
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key answers the stored order with `Idempotent-Replayed: true`.")
    ),
    request_body = CheckoutPayRequest,
    responses(
        (status = 201, description = "The order", body = OrderBody),
        (status = 400, description = "`invalid_body`, `invalid_quantity` or `idempotency_key_*`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`, `step_up_required`, `account_frozen`, `verification_required` or `capability_unavailable`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`checkout_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`sold_out` (nothing moved) or `idempotency_request_in_progress`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds`, `cannot_buy_own_offer`, `idempotency_key_reused` or `limit_exceeded` (nothing moved)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn pay_checkout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CheckoutPayRequest>,
) -> Result<Response, ApiError> {
    let (caller, buyer) = own_person(&state, &headers).await?;
    let key: IdempotencyKey = idempotency_key(&headers)?;
    let quantity = OrderQuantity::parse(request.quantity)?;
    let reader = state.reader();
    let card = checkout::checkout_for(&reader, buyer.id, &id).await?;
    let unit = mizan_app::payments::parse_amount(&card.price, &card.currency)?;
    let amount_minor = unit
        .minor_units()
        .checked_mul(quantity.get())
        .ok_or(mizan_app::payments::PaymentError::AmountTooLarge)?;
    require_step_up(&state, &caller, amount_minor).await?;
    let ledger = ledger(&state)?;
    let vault = vault(&state)?;
    let processor = state.processor();
    let fallback = CardFallback {
        processor: processor.as_ref(),
        vault: &vault,
    };
    let answer = checkout::pay(
        &ledger,
        &reader,
        &state.config().limits,
        Some(fallback),
        &buyer,
        &id,
        quantity,
        key,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    idempotent_response(answer.status, answer.replayed, OrderBody::from(answer.body))
}

/// What the caller bought and sold through checkout cards, newest first.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "messages",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Up to 50 orders", body = OrderListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_orders(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<OrderListBody>, ApiError> {
    let (_, person) = own_person(&state, &headers).await?;
    let lines = checkout::orders_of(&state.reader(), person.id, ORDERS_PAGE).await?;
    Ok(Json(OrderListBody {
        items: lines
            .into_iter()
            .map(|line| OrderBody {
                role: Some(if line.bought { "bought" } else { "sold" }.to_owned()),
                ..OrderBody::from(line.order)
            })
            .collect(),
    }))
}
