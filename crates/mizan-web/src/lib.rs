//! The web app people use in a browser, served by `mizan serve` next to the API:
//! server-rendered HTML (maud), one small script and one stylesheet embedded in the
//! binary, no front-end build step.
//!
//! - [`visitor`]: who is asking (session cookie), in which language, and the CSRF
//!   token every form carries.
//! - [`layout`]: the page shell, form fields, and security headers.
//! - [`people`]: sign-up, log-in and the wallet pages.
//! - [`social`]: the feed, profiles, posts and tips.
//! - [`messages`]: direct messages and paid DMs.
//! - [`operator`]: the operator console under `/ops`.
//! - [`live`]: server-sent events, so a payment received appears without a reload.
//! - [`i18n`]: English and Arabic strings, amounts and dates.
//!
//! Pages call the same `mizan_app` use cases as the JSON API; they never touch the
//! ledger directly. Every POST is a plain HTML form (works without JavaScript) with a
//! CSRF token and, for money movements, an idempotency key generated with the page,
//! so a double submit is a replay, never a second payment.

pub mod i18n;
pub mod layout;
pub mod live;
pub mod messages;
pub mod notifications;
pub mod operator;
pub mod people;
pub mod social;
pub mod subscriptions;
pub mod verification;
pub mod visitor;

use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use mizan_api::AppState;

use crate::i18n::{Lang, T};

/// The stylesheet and script, embedded.
const APP_CSS: &str = include_str!("../assets/app.css");
const APP_JS: &str = include_str!("../assets/app.js");

/// Every page route, with the page security headers. Merge into the API router with
/// `mizan_api::router_with`.
pub fn pages() -> Router<AppState> {
    let live = live::Live::new();
    Router::new()
        .route("/", get(people::home))
        .route("/signup", get(people::signup_page).post(people::signup))
        .route("/login", get(people::login_page).post(people::login))
        .route("/logout", post(people::logout))
        .route("/send", get(people::send_page).post(people::send))
        .route("/request", get(people::request_page).post(people::request))
        .route("/requests", get(people::requests_page))
        .route("/requests/{id}/{action}", post(people::answer_request))
        .route("/split", get(people::split_page).post(people::split))
        .route(
            "/add-money",
            get(people::add_money_page).post(people::add_money),
        )
        .route(
            "/add-money/{id}/challenge",
            get(people::challenge_page).post(people::challenge),
        )
        .route(
            "/cash-out",
            get(people::cash_out_page).post(people::cash_out),
        )
        .route("/activity", get(people::activity_page))
        .route("/receipts/{id}", get(people::receipt_page))
        .route("/apps", get(people::apps_page))
        .route("/apps/{id}/revoke", post(people::revoke_app))
        .route("/link-requests/{id}/{action}", post(people::answer_link))
        .route("/settings", get(people::settings_page))
        .route("/verification", get(verification::verification_page))
        .route(
            "/verification/identity",
            post(verification::verify_identity),
        )
        .route(
            "/verification/document",
            post(verification::verify_document),
        )
        .route("/settings/password", post(people::change_password))
        .route("/settings/totp", post(people::begin_totp))
        .route("/settings/totp/confirm", post(people::confirm_totp))
        .route(
            "/settings/sessions/{id}/revoke",
            post(people::revoke_session),
        )
        .route("/notifications", get(notifications::notifications_page))
        .route("/messages", get(messages::inbox_page))
        .route(
            "/messages/{handle}",
            get(messages::thread_page).post(messages::send),
        )
        .route("/dm-price", post(messages::set_price))
        .route(
            "/messages/{handle}/checkouts",
            post(messages::post_checkout),
        )
        .route("/checkouts/{id}/pay", post(messages::pay_checkout))
        .route("/orders", get(messages::orders_page))
        .route("/paid-dms/{id}/{action}", post(messages::settle))
        .route("/feed", get(social::feed_page))
        .route("/posts", post(social::create_post))
        .route("/posts/{id}", get(social::post_page))
        .route("/posts/{id}/tip", post(social::tip_post))
        .route("/people/{handle}", get(social::profile_page))
        .route("/people/{handle}/tip", post(social::tip_profile))
        .route("/people/{handle}/{action}", post(social::set_follow))
        .route("/profile", post(social::edit_profile))
        .route(
            "/subscribe/{tier}",
            get(subscriptions::confirm_page).post(subscriptions::subscribe),
        )
        .route("/subscriptions", get(subscriptions::subscriptions_page))
        .route("/subscriptions/{id}/cancel", post(subscriptions::cancel))
        .route(
            "/subscriptions/tiers",
            get(subscriptions::tiers_page).post(subscriptions::create_tier),
        )
        .route(
            "/subscriptions/tiers/{id}/retire",
            post(subscriptions::retire_tier),
        )
        .route(
            "/subscriptions/subscribers",
            get(subscriptions::subscribers_page),
        )
        .route("/lang/{lang}", get(people::set_language))
        .route("/handles", get(people::handle_suggestions))
        .route("/live/summary", get(people::live_summary))
        .route("/events", get(live::events))
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .merge(operator::routes())
        .layer(axum::Extension(live))
        .layer(middleware::map_response(layout::security_headers))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Why a page could not be shown; rendered as a page in the visitor's language.
#[derive(Debug)]
pub enum WebError {
    /// No (live) session: go to the log-in page, then come back.
    LogInFirst {
        back_to: String,
    },
    NotFound(Lang),
    /// The form's CSRF token did not match (or the request came from another site).
    FormExpired(Lang),
    RateLimited(Lang, u64),
    /// A bug or a store failure; the detail is logged, never shown.
    Internal(Lang, String),
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (lang, status, text) = match self {
            WebError::LogInFirst { back_to } => {
                let target = format!("/login?next={}", layout::query_escape(&back_to));
                return layout::redirect(&target);
            }
            WebError::NotFound(lang) => (lang, StatusCode::NOT_FOUND, T::NotFound),
            WebError::FormExpired(lang) => (lang, StatusCode::FORBIDDEN, T::FormExpired),
            WebError::RateLimited(lang, retry_after_s) => {
                let mut response =
                    layout::message_page(lang, StatusCode::TOO_MANY_REQUESTS, T::Busy);
                if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
            WebError::Internal(lang, detail) => {
                tracing::error!(%detail, "a web page failed");
                (lang, StatusCode::INTERNAL_SERVER_ERROR, T::SomethingWrong)
            }
        };
        layout::message_page(lang, status, text)
    }
}
