//! The router, its middleware, and [`serve`]: run until a shutdown future completes,
//! then stop the ledger writer.

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use crate::error::{ApiError, PROBLEM_CONTENT_TYPE};
use crate::metrics::UNMATCHED_ROUTE;
use crate::rate_limit::RateKey;
use crate::routes::{
    apps, cases, checkout, compliance, docs, health, identity, messages, metrics, notifications,
    payments, requests, security, social, subscriptions, vault,
};
use crate::state::{AppState, StateError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("serving HTTP: {0}")]
    Http(#[from] std::io::Error),
    #[error("stopping the ledger: {0}")]
    State(#[from] StateError),
}

/// Every API route, with the middleware: tracing, metrics, problem+json for framework
/// errors, panic catching and the request body limit (innermost).
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// [`router`] with `pages` (the web app's routes) merged in before the middleware, so
/// pages share the body limit, panic catching, IP rate limit, metrics and tracing.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let body_limit_bytes = state.config().request_body_bytes_max;
    pages
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/openapi.json", get(docs::openapi_json))
        .route("/v1/docs", get(docs::docs_page))
        .route("/v1/people", post(identity::signup))
        .route(
            "/v1/sessions",
            post(identity::login).get(security::list_sessions),
        )
        .route("/v1/sessions/current", delete(identity::logout))
        .route("/v1/sessions/current/step-up", post(security::step_up))
        .route("/v1/sessions/{id}", delete(security::revoke_session))
        .route("/v1/me/password", post(security::change_password))
        .route("/v1/me/export", get(security::export))
        .route("/v1/me/erase", post(vault::erase))
        .route("/v1/me/cards", get(vault::list_cards))
        .route("/v1/me/cards/{id}", delete(vault::delete_card))
        .route("/v1/me/totp", post(security::begin_totp))
        .route("/v1/me/totp/confirm", post(security::confirm_totp))
        .route("/v1/me", get(identity::me))
        .route("/v1/me/verification", post(compliance::verify_identity))
        .route(
            "/v1/me/verification/document",
            post(compliance::verify_document),
        )
        .route("/v1/me/limits", get(compliance::my_limits))
        .route("/v1/licences", get(compliance::list_licences))
        .route("/v1/licences/{jurisdiction}", put(compliance::put_licence))
        .route("/v1/cases", get(cases::list_cases).post(cases::open_case))
        .route("/v1/cases/{id}", get(cases::get_case))
        .route("/v1/cases/{id}/assign", post(cases::assign_case))
        .route("/v1/cases/{id}/notes", post(cases::note_case))
        .route("/v1/cases/{id}/decision", post(cases::decide_case))
        .route("/v1/cases/{id}/sar", get(cases::sar_draft))
        .route("/v1/sanctions/reload", post(cases::reload_sanctions))
        .route("/v1/reports/ctr", get(cases::ctr_drafts))
        .route("/v1/monitoring/scan", post(cases::monitoring_scan))
        .route("/v1/funding", post(payments::fund))
        .route("/v1/cashouts", post(payments::cash_out))
        .route(
            "/v1/funding/{id}/challenge",
            post(payments::answer_challenge),
        )
        .route("/v1/payments", post(payments::create_payment))
        .route("/v1/payments/{id}", get(payments::get_payment))
        .route("/v1/payments/{id}/receipt", get(requests::receipt))
        .route(
            "/v1/requests",
            post(requests::create_request).get(requests::list_requests),
        )
        .route(
            "/v1/requests/{id}",
            get(requests::get_request).delete(requests::cancel_request),
        )
        .route("/v1/requests/{id}/pay", post(requests::pay_request))
        .route("/v1/requests/{id}/decline", post(requests::decline_request))
        .route("/v1/splits", post(requests::create_split))
        .route("/v1/activity", get(requests::activity))
        .route("/v1/people/{handle}", get(social::get_profile))
        .route(
            "/v1/people/{handle}/follow",
            post(social::follow).delete(social::unfollow),
        )
        .route("/v1/people/{handle}/posts", get(social::posts_of))
        .route("/v1/me/profile", post(social::edit_profile))
        .route("/v1/posts", post(social::create_post))
        .route("/v1/posts/{id}", get(social::get_post))
        .route("/v1/feed", get(social::feed))
        .route("/v1/tips", post(social::create_tip))
        .route(
            "/v1/me/subscription-tiers",
            get(subscriptions::my_tiers).post(subscriptions::create_tier),
        )
        .route(
            "/v1/me/subscription-tiers/{id}/retire",
            post(subscriptions::retire_tier),
        )
        .route(
            "/v1/people/{handle}/subscription-tiers",
            get(subscriptions::tiers_of),
        )
        .route(
            "/v1/subscriptions",
            get(subscriptions::my_subscriptions).post(subscriptions::subscribe),
        )
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::get_subscription),
        )
        .route("/v1/subscriptions/{id}/cancel", post(subscriptions::cancel))
        .route("/v1/me/subscribers", get(subscriptions::my_subscribers))
        .route("/v1/messages", post(messages::send_message))
        .route("/v1/threads", get(messages::threads))
        .route("/v1/threads/{handle}", get(messages::thread))
        .route(
            "/v1/threads/{handle}/checkouts",
            post(checkout::create_checkout),
        )
        .route("/v1/checkouts/{id}", get(checkout::get_checkout))
        .route("/v1/checkouts/{id}/pay", post(checkout::pay_checkout))
        .route("/v1/orders", get(checkout::list_orders))
        .route(
            "/v1/me/dm-settings",
            get(messages::get_dm_settings).post(messages::set_dm_settings),
        )
        .route("/v1/notifications", get(notifications::list_notifications))
        .route("/v1/notifications/seen", post(notifications::mark_seen))
        .route("/v1/paid-dms", get(messages::priority_inbox))
        .route("/v1/paid-dms/{id}", get(messages::get_paid_dm))
        .route("/v1/paid-dms/{id}/accept", post(messages::accept_paid_dm))
        .route("/v1/paid-dms/{id}/decline", post(messages::decline_paid_dm))
        .route("/v1/apps", post(apps::create_app).get(apps::list_apps))
        .route("/v1/app/link-requests", post(apps::create_link_request))
        .route("/v1/app/tokens", post(apps::create_app_token))
        .route(
            "/v1/app/webhook-endpoints",
            post(apps::create_endpoint).get(apps::list_endpoints),
        )
        .route("/v1/app/webhook-deliveries", get(apps::list_deliveries))
        .route(
            "/v1/app/webhook-deliveries/{id}/replay",
            post(apps::replay_delivery),
        )
        .route("/v1/me/link-requests", get(apps::my_link_requests))
        .route(
            "/v1/me/link-requests/{id}/approve",
            post(apps::approve_link_request),
        )
        .route(
            "/v1/me/link-requests/{id}/decline",
            post(apps::decline_link_request),
        )
        .route("/v1/me/apps", get(apps::my_apps))
        .route("/v1/me/apps/{app_id}", delete(apps::revoke_app))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::actions,
        ))
        .layer(RequestBodyLimitLayer::new(body_limit_bytes))
        .layer(CatchPanicLayer::custom(|_panic| {
            ApiError::Internal.into_response()
        }))
        .layer(middleware::from_fn_with_state(
            body_limit_bytes,
            problem_responses,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), limit_ip))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes: stops accepting, lets
/// in-flight requests finish (for at most `shutdown_grace_ms`), then drops the ledger
/// handle and joins the writer thread.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = router(state.clone());
    serve_router(listener, app, state, shutdown).await
}

/// [`serve`] with a router built by the caller from [`router`] (tests add routes).
pub async fn serve_router<F>(
    listener: TcpListener,
    app: Router,
    state: AppState,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "listening");
    }
    let grace_ms = state.config().shutdown_grace_ms;
    let (stop_webhooks, webhooks_stopped) = tokio::sync::watch::channel(false);
    let monitoring_worker = tokio::spawn(crate::monitoring::run(
        state.clone(),
        webhooks_stopped.clone(),
    ));
    let reconcile_worker = tokio::spawn(crate::reconcile::run(
        state.clone(),
        webhooks_stopped.clone(),
    ));
    let sweep_worker = tokio::spawn(crate::sweep::run(state.clone(), webhooks_stopped.clone()));
    let webhook_worker = tokio::spawn(crate::webhooks::run(state.clone(), webhooks_stopped));
    let (stop_renewals, renewals_stopped) = tokio::sync::watch::channel(false);
    let renewal_worker = tokio::spawn(crate::routes::subscriptions::run_renewals(
        state.clone(),
        renewals_stopped,
    ));
    let (stop_expiries, expiries_stopped) = tokio::sync::watch::channel(false);
    let expiry_worker = tokio::spawn(crate::routes::messages::run_paid_dm_expiries(
        state.clone(),
        expiries_stopped,
    ));
    let (signalled, on_signal) = oneshot::channel::<()>();
    let closing_state = state.clone();
    let shutdown = async move {
        shutdown.await;
        closing_state.begin_shutdown();
        let _ = signalled.send(());
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .into_future();
    let grace_expired = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(Duration::from_millis(grace_ms)).await,
            Err(_) => std::future::pending().await,
        }
    };
    let served = tokio::select! {
        served = server => served,
        () = grace_expired => {
            tracing::warn!(grace_ms, "shutdown grace expired; no longer waiting for open requests");
            Ok(())
        }
    };
    // After an expired grace, a request still running keeps its task (and anything it
    // cloned) until it ends; the writer joins once the last `Ledger` clone is dropped,
    // so handlers must not keep a `Ledger` beyond their request.
    let _ = stop_webhooks.send(true);
    if let Err(error) = webhook_worker.await {
        tracing::error!(%error, "the webhook worker panicked");
    }
    if let Err(error) = monitoring_worker.await {
        tracing::error!(%error, "the monitoring worker panicked");
    }
    if let Err(error) = reconcile_worker.await {
        tracing::error!(%error, "the intent reconciler panicked");
    }
    if let Err(error) = sweep_worker.await {
        tracing::error!(%error, "the idempotency-key sweep panicked");
    }
    let _ = stop_renewals.send(true);
    if let Err(error) = renewal_worker.await {
        tracing::error!(%error, "the subscription renewal worker panicked");
    }
    let _ = stop_expiries.send(true);
    if let Err(error) = expiry_worker.await {
        tracing::error!(%error, "the paid DM expiry worker panicked");
    }
    tracing::info!("HTTP server stopped; stopping the ledger writer");
    let stopped = state.shutdown().await;
    served?;
    stopped?;
    tracing::info!("ledger writer stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

fn route_label(request: &Request) -> String {
    request.extensions().get::<MatchedPath>().map_or_else(
        || UNMATCHED_ROUTE.to_owned(),
        |path| path.as_str().to_owned(),
    )
}

/// The method as a metric label; methods outside the standard set share one label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// A span per request: method, route and path; never the query string or body.
fn request_span(request: &Request<Body>) -> tracing::Span {
    tracing::info_span!(
        "http_request",
        method = method_label(request.method()),
        route = %route_label(request),
        path = %request.uri().path(),
    )
}

/// Counts every request but the operational probes against its client IP.
async fn limit_ip(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let probe = matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics");
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    if let (false, Some(ip)) = (probe, peer) {
        let now_ns = mizan_core::Clock::now_ns(&mizan_core::SystemClock);
        if let Err(retry_after_s) = state.rate_limits().ip.check(RateKey::Ip(ip), now_ns) {
            return ApiError::RateLimited { retry_after_s }.into_response();
        }
    }
    next.run(request).await
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_label(&request);
    let response = next.run(request).await;
    state.metrics().observe_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Rewrites the framework's own error responses (axum's 405, the body limit's 413,
/// extractor rejections) as problem+json, keeping their status and headers (`Allow`).
/// Responses that are already problem+json, or HTML pages, pass as they are.
async fn problem_responses(
    State(body_limit_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    // Problems are already problem+json; web pages render their own errors as HTML.
    let answered = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| {
            let value = value.as_bytes();
            value.starts_with(PROBLEM_CONTENT_TYPE.as_bytes()) || value.starts_with(b"text/html")
        });
    if answered {
        return response;
    }
    let Some(error) = ApiError::from_status(status, body_limit_bytes) else {
        return response;
    };
    let (mut parts, _framework_body) = response.into_parts();
    let (_, body) = error.into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    Response::from_parts(parts, body)
}
