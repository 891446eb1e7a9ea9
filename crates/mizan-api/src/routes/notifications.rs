//! The person's notifications: `GET /v1/notifications` (newest first, with how many
//! are unread) and `POST /v1/notifications/seen`. Apps get the same events as
//! webhooks; this list is the person's own (session only).

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use mizan_app::identity::Person;
use mizan_app::notifications::{self, Notification, NOTIFICATIONS_PAGE_MAX};
use mizan_app::payments::PaymentError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem};
use crate::routes::identity::{ledger, JsonBody};
use crate::routes::security::any_caller;
use crate::state::AppState;

const PAGE_DEFAULT: usize = 50;

async fn own_person(state: &AppState, headers: &HeaderMap) -> Result<Person, ApiError> {
    let caller = any_caller(state, headers).await?;
    Ok(caller.require_session()?.clone())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationsQuery {
    /// Only notifications older than this one (the `id` of the previous page's last).
    pub before: Option<String>,
    /// 1–100, default 50.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationBody {
    /// Increasing: a newer notification has a larger id (decimal).
    pub id: String,
    /// `payment_received`, `tip_received`, `request_received`, `request_paid`,
    /// `request_declined`, `paid_dm_received`, `paid_dm_answered`, `paid_dm_refunded`,
    /// `message_received`, `followed`, `cashout_returned`, `funding_failed`,
    /// `new_subscriber`, `subscription_renewed`, `subscription_renewal_failed` or
    /// `subscription_lapsed`.
    pub kind: String,
    /// The other person's handle, when there is one.
    pub from: Option<String>,
    /// Major units, e.g. "12.50", when money is involved.
    pub amount: Option<String>,
    pub currency: Option<String>,
    /// The payment, request, tip, paid DM, cash-out or top-up it is about.
    pub subject_id: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub read: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NotificationsBody {
    /// Newest first.
    pub items: Vec<NotificationBody>,
    /// Unread notifications among the newest 100.
    pub unread: usize,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<String>,
}

fn body_of(notification: &Notification, read: bool) -> NotificationBody {
    NotificationBody {
        id: notification.seq.to_string(),
        kind: notification.kind.code().to_owned(),
        from: notification.from.clone(),
        amount: notification.amount().map(|money| money.format_major()),
        currency: notification.currency.clone(),
        subject_id: notification.subject_id.clone(),
        created_at: notification.occurred_at(),
        read,
    }
}

fn parse_id(text: &str) -> Option<u64> {
    (text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// The caller's notifications, newest first.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "notifications",
    security(("bearer" = [])),
    params(NotificationsQuery),
    responses(
        (status = 200, description = "One page of notifications", body = NotificationsBody),
        (status = 400, description = "`invalid_limit` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_notifications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NotificationsQuery>,
) -> Result<Json<NotificationsBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let limit = query.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=NOTIFICATIONS_PAGE_MAX).contains(&limit) {
        return Err(PaymentError::InvalidLimit.into());
    }
    let before = match query.before.as_deref() {
        None => None,
        Some(text) => Some(parse_id(text).ok_or(PaymentError::InvalidCursor)?),
    };
    let page = notifications::list(&state.reader(), person.id, before, limit).await?;
    let next_before = (page.items.len() == limit)
        .then(|| page.items.last().map(|n| n.seq.to_string()))
        .flatten();
    Ok(Json(NotificationsBody {
        items: page
            .items
            .iter()
            .map(|n| body_of(n, !page.is_unread(n)))
            .collect(),
        unread: page.unread,
        next_before,
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeenRequest {
    /// Marks notifications up to this id as read; default: all of them.
    pub through: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeenBody {
    /// Notifications up to this id are read ("0": none yet).
    pub seen_through: String,
    pub unread: usize,
}

/// Marks the caller's notifications as read (up to `through`, or all). The marker only
/// moves forward.
#[utoipa::path(
    post,
    path = "/v1/notifications/seen",
    tag = "notifications",
    security(("bearer" = [])),
    request_body = SeenRequest,
    responses(
        (status = 200, description = "What is read now", body = SeenBody),
        (status = 400, description = "`invalid_body` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn mark_seen(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SeenRequest>,
) -> Result<Json<SeenBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let through = match request.through.as_deref() {
        None => None,
        Some(text) => Some(parse_id(text).ok_or(PaymentError::InvalidCursor)?),
    };
    let ledger = ledger(&state)?;
    let reader = state.reader();
    let seen = notifications::mark_seen(&ledger, &reader, person.id, through).await?;
    drop(ledger);
    let unread = notifications::unread_count(&reader, person.id).await?;
    Ok(Json(SeenBody {
        seen_through: seen.to_string(),
        unread,
    }))
}
