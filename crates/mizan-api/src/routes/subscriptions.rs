//! Creator subscriptions: `GET|POST /v1/me/subscription-tiers`,
//! `POST /v1/me/subscription-tiers/{id}/retire`, `GET /v1/people/{handle}/subscription-tiers`,
//! `POST /v1/subscriptions` (with a required `Idempotency-Key`), `GET /v1/subscriptions`,
//! `GET /v1/subscriptions/{id}`, `POST /v1/subscriptions/{id}/cancel` and
//! `GET /v1/me/subscribers`. Renewals run in the background (see [`run_renewals`]).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use mizan_app::apps::Scope;
use mizan_app::creation::Creation;
use mizan_app::identity::Person;
use mizan_app::payments;
use mizan_app::subscriptions::{self, NewTier, RenewalPolicy, SubscriptionView, TierView};
use mizan_core::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::routes::identity::{ledger, JsonBody};
use crate::routes::payments::{
    caller, created_response, idempotency_key, idempotent_response, optional_idempotency_key,
};
use crate::routes::security::any_caller;
use crate::state::AppState;

/// Tiers are the creator's own: their session, never an app.
async fn own_person(state: &AppState, headers: &HeaderMap) -> Result<Person, ApiError> {
    let caller = any_caller(state, headers).await?;
    Ok(caller.require_session()?.clone())
}

/// The renewal policy of this server's config.
pub fn policy(state: &AppState) -> RenewalPolicy {
    RenewalPolicy {
        fee_bps: state.config().subscription_fee_bps,
        grace_seconds: state.config().subscription_grace_seconds,
    }
}

/// The renewal job, every `subscription_renewal_interval_ms` until `stop` reads true.
/// A failed run is logged and retried on the next tick: runs are idempotent.
pub async fn run_renewals(state: AppState, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_millis(state.config().subscription_renewal_interval_ms);
    loop {
        if *stop.borrow() {
            return;
        }
        if let (Some(ledger), Some(vault)) = (state.ledger(), state.vault()) {
            let processor = state.processor();
            let fallback = subscriptions::CardFallback {
                processor: processor.as_ref(),
                vault: &vault,
            };
            let ran = subscriptions::run_renewals(
                &ledger,
                &state.reader(),
                &state.config().limits,
                policy(&state),
                Some(fallback),
                &SystemClock,
            )
            .await;
            drop(ledger);
            if let Err(error) = ran {
                tracing::error!(%error, "subscription renewal run failed");
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierCreateRequest {
    /// 1–40 characters, one line.
    pub name: String,
    /// A month's price, major units ("4.99"): 0.01–1,000.00.
    pub price: String,
    /// `USD`.
    pub currency: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub perks: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TierBody {
    pub id: String,
    /// The creator's handle.
    pub creator: String,
    pub name: String,
    pub price: String,
    pub currency: String,
    pub perks: String,
    /// A retired tier takes no new subscribers; its subscribers keep it.
    pub retired: bool,
    pub created_at: String,
}

impl From<TierView> for TierBody {
    fn from(view: TierView) -> TierBody {
        TierBody {
            id: view.id,
            creator: view.creator,
            name: view.name,
            price: view.price,
            currency: view.currency,
            perks: view.perks,
            retired: view.retired,
            created_at: view.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TierListBody {
    /// In creation order.
    pub items: Vec<TierBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionCreateRequest {
    /// The tier to subscribe to (its creator is the payee).
    pub tier_id: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionBody {
    pub id: String,
    pub subscriber: String,
    pub creator: String,
    pub tier_id: String,
    pub tier_name: String,
    /// A month's price, fixed when subscribing.
    pub price: String,
    pub currency: String,
    /// `active`, `grace` (a renewal failed; retried until `grace_until`), `canceled`
    /// or `lapsed`.
    pub status: String,
    /// Canceled: it ends at `current_period_end` and is not renewed.
    pub cancel_at_period_end: bool,
    /// The current period, 0 for the first; `period + 1` charges were made.
    pub period: u32,
    pub current_period_start: String,
    pub current_period_end: String,
    pub grace_until: Option<String>,
    /// Why the last renewal failed: `insufficient_funds`, `limit_exceeded`, …
    pub last_failure: Option<String>,
    pub last_transfer_id: String,
    pub created_at: String,
}

impl From<SubscriptionView> for SubscriptionBody {
    fn from(view: SubscriptionView) -> SubscriptionBody {
        SubscriptionBody {
            id: view.id,
            subscriber: view.subscriber,
            creator: view.creator,
            tier_id: view.tier_id,
            tier_name: view.tier_name,
            price: view.price,
            currency: view.currency,
            status: view.status.code().to_owned(),
            cancel_at_period_end: view.cancel_at_period_end,
            period: view.period,
            current_period_start: view.current_period_start,
            current_period_end: view.current_period_end,
            grace_until: view.grace_until,
            last_failure: view.last_failure,
            last_transfer_id: view.last_transfer_id,
            created_at: view.created_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriptionListBody {
    /// Newest first.
    pub items: Vec<SubscriptionBody>,
}

fn list(views: Vec<SubscriptionView>) -> Json<SubscriptionListBody> {
    Json(SubscriptionListBody {
        items: views.into_iter().map(SubscriptionBody::from).collect(),
    })
}

/// The caller's own tiers, retired ones included.
#[utoipa::path(
    get,
    path = "/v1/me/subscription-tiers",
    tag = "subscriptions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's tiers", body = TierListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn my_tiers(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TierListBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let tiers = subscriptions::tiers_of(&state.reader(), person.id, true).await?;
    Ok(Json(TierListBody {
        items: tiers.into_iter().map(TierBody::from).collect(),
    }))
}

/// Creates a monthly tier (at most 10 per creator, retired ones included).
#[utoipa::path(
    post,
    path = "/v1/me/subscription-tiers",
    tag = "subscriptions",
    security(("bearer" = [])),
    request_body = TierCreateRequest,
    responses(
        (status = 201, description = "The tier; a retry under the same `Idempotency-Key` answers it again with `Idempotent-Replayed: true`", body = TierBody),
        (status = 400, description = "`invalid_body`, an amount code, `currency_not_supported`, `invalid_tier_name`, `invalid_tier_price`, `invalid_tier_perks` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_tiers`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used for another request", body = Problem, content_type = "application/problem+json")
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry under it never creates a second tier"))
)]
pub async fn create_tier(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TierCreateRequest>,
) -> Result<Response, ApiError> {
    let person = own_person(&state, &headers).await?;
    let price = payments::parse_amount(&request.price, &request.currency)?;
    let tier = NewTier::parse(&request.name, price, &request.perks)?;
    let creation = optional_idempotency_key(&headers)?.map(|key| {
        Creation::new(
            &format!("person:{}:subscription-tiers", person.id),
            &key,
            &subscriptions::tier_canonical(&tier),
            SystemClock.now_ns(),
        )
    });
    let ledger = ledger(&state)?;
    let created = subscriptions::create_tier_once(
        &ledger,
        &state.reader(),
        &person,
        tier,
        creation.as_ref(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    created_response::<TierView, TierBody>(created)
}

/// Retires one of the caller's tiers: no new subscribers; existing ones keep it
/// until they cancel. Retiring again answers the same.
#[utoipa::path(
    post,
    path = "/v1/me/subscription-tiers/{id}/retire",
    tag = "subscriptions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The tier id (32 hex digits)")),
    responses(
        (status = 200, description = "The retired tier", body = TierBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`tier_not_found` (also another creator's tier)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn retire_tier(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TierBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let ledger = ledger(&state)?;
    let view = subscriptions::retire_tier(&ledger, &state.reader(), &person, &id).await?;
    Ok(Json(view.into()))
}

/// A creator's tiers open to new subscribers.
#[utoipa::path(
    get,
    path = "/v1/people/{handle}/subscription-tiers",
    tag = "subscriptions",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "The creator's handle")),
    responses(
        (status = 200, description = "The tiers, retired ones left out", body = TierListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn tiers_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<TierListBody>, ApiError> {
    caller(&state, &headers, Scope::WalletRead).await?;
    let reader = state.reader();
    let creator = mizan_app::social::person_of(&reader, &handle).await?;
    let tiers = subscriptions::tiers_of(&reader, creator.id, false).await?;
    Ok(Json(TierListBody {
        items: tiers.into_iter().map(TierBody::from).collect(),
    }))
}

/// Subscribes the caller to a tier, charging the first month from the wallet at
/// once, exactly once per `Idempotency-Key`. With a platform fee configured, the
/// creator's share and the fee move in one linked chain.
#[utoipa::path(
    post,
    path = "/v1/subscriptions",
    tag = "subscriptions",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; a retry with the same key answers the stored result with `Idempotent-Replayed: true`.")),
    request_body = SubscriptionCreateRequest,
    responses(
        (status = 201, description = "The subscription, charged for its first period", body = SubscriptionBody),
        (status = 400, description = "`invalid_body`, `idempotency_key_required` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, `verification_required` or `capability_unavailable`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`tier_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`already_subscribed`, `tier_retired` or `idempotency_request_in_progress`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds`, `cannot_pay_yourself`, `idempotency_key_reused`, or `limit_exceeded` (with `limit` and `resets_at`; nothing moved)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn subscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SubscriptionCreateRequest>,
) -> Result<Response, ApiError> {
    let subscriber = caller(&state, &headers, Scope::PaymentsWrite).await?;
    let key = idempotency_key(&headers)?;
    let ledger = ledger(&state)?;
    let answer = subscriptions::subscribe(
        &ledger,
        &state.reader(),
        &state.config().limits,
        &subscriber,
        &request.tier_id,
        key,
        state.config().subscription_fee_bps,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let body = SubscriptionBody::from(answer.body.clone());
    idempotent_response(answer.status, answer.replayed, body)
}

/// The caller's subscriptions, newest first.
#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    tag = "subscriptions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Up to 200 subscriptions", body = SubscriptionListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn my_subscriptions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SubscriptionListBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let views =
        subscriptions::subscriptions_of(&state.reader(), person.id, SystemClock.now_ns()).await?;
    Ok(list(views))
}

/// One subscription, to its subscriber or its creator.
#[utoipa::path(
    get,
    path = "/v1/subscriptions/{id}",
    tag = "subscriptions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription id (32 hex digits)")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`subscription_not_found` (also someone else's)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_subscription(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let view =
        subscriptions::subscription_for(&state.reader(), person.id, &id, SystemClock.now_ns())
            .await?;
    Ok(Json(view.into()))
}

/// Cancels: no renewal; active until the end of the paid period (a subscription in
/// grace ends at once). Canceling again answers the same; an ended one 409.
#[utoipa::path(
    post,
    path = "/v1/subscriptions/{id}/cancel",
    tag = "subscriptions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The subscription id (32 hex digits)")),
    responses(
        (status = 200, description = "The subscription, `cancel_at_period_end: true`", body = SubscriptionBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`subscription_not_found` (also the creator's or someone else's)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`subscription_ended`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SubscriptionBody>, ApiError> {
    let person = caller(&state, &headers, Scope::PaymentsWrite).await?;
    let ledger = ledger(&state)?;
    let view =
        subscriptions::cancel(&ledger, &state.reader(), &person, &id, SystemClock.now_ns()).await?;
    Ok(Json(view.into()))
}

/// The caller's subscribers (every subscription to them, with its status).
#[utoipa::path(
    get,
    path = "/v1/me/subscribers",
    tag = "subscriptions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Up to 200 subscriptions, newest first", body = SubscriptionListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn my_subscribers(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SubscriptionListBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let views =
        subscriptions::subscribers_of(&state.reader(), person.id, SystemClock.now_ns()).await?;
    Ok(list(views))
}
