//! `Idempotency-Key` on the POST routes that act on something that already exists
//! ([`ACTION_ROUTES`]): a middleware around their handlers, so a retry under the same
//! key answers the first answer (`Idempotent-Replayed: true`) and never acts twice.
//! The claim's life (answered, released, taken over after a crash) is
//! `mizan_app::actions`.
//!
//! The routes that move money or create something keep their own claim, committed in
//! the same submission as what they write; sign-up and log-in have no caller to scope
//! a key to and answer a new secret each time, so they ignore the header.

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mizan_app::actions::{Action, ActionError, Begun, StoredAnswer, ACTION_ANSWER_BYTES_MAX};
use mizan_app::apps::{self, AppError};
use mizan_app::payments::PaymentError;
use mizan_core::{Clock, SystemClock};

use crate::error::ApiError;
use crate::routes::apps::require_operator;
use crate::routes::identity::session_token;
use crate::routes::payments::{optional_idempotency_key, IDEMPOTENT_REPLAYED_HEADER};
use crate::state::AppState;

/// The POST routes whose answers the middleware keeps, with whether a successful
/// answer holds a secret shown once (then only its status is kept, and a retry is
/// refused with `idempotency_secret_not_replayable`).
pub const ACTION_ROUTES: [(&str, bool); 26] = [
    ("/v1/sessions/current/step-up", false),
    ("/v1/me/password", false),
    ("/v1/me/erase", false),
    ("/v1/me/totp", true),
    ("/v1/me/totp/confirm", false),
    ("/v1/me/verification", false),
    ("/v1/me/verification/document", false),
    ("/v1/me/profile", false),
    ("/v1/me/dm-settings", false),
    ("/v1/me/subscription-tiers/{id}/retire", false),
    ("/v1/me/link-requests/{id}/approve", false),
    ("/v1/me/link-requests/{id}/decline", false),
    ("/v1/cases/{id}/assign", false),
    ("/v1/cases/{id}/notes", false),
    ("/v1/cases/{id}/decision", false),
    ("/v1/sanctions/reload", false),
    ("/v1/monitoring/scan", false),
    ("/v1/funding/{id}/challenge", false),
    ("/v1/requests/{id}/decline", false),
    ("/v1/people/{handle}/follow", false),
    ("/v1/subscriptions/{id}/cancel", false),
    ("/v1/notifications/seen", false),
    ("/v1/paid-dms/{id}/accept", false),
    ("/v1/paid-dms/{id}/decline", false),
    ("/v1/app/tokens", true),
    ("/v1/app/webhook-deliveries/{id}/replay", false),
];

/// Whether `route` is an action route, and whether its answers hold a secret.
fn action_route(method: &Method, route: Option<&MatchedPath>) -> Option<bool> {
    if method != Method::POST {
        return None;
    }
    let route = route?.as_str();
    ACTION_ROUTES
        .iter()
        .find(|(path, _)| *path == route)
        .map(|(_, secret)| *secret)
}

/// Who the key belongs to: the operator, a person on their own session, a person
/// through an app's token, or an app by its API key. `None` when the request has no
/// valid credential: the handler answers it (401), and no key is claimed.
async fn key_scope(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if require_operator(state, headers).is_ok() {
        return Some("operator".to_owned());
    }
    let token = session_token(headers).ok()?;
    let reader = state.reader();
    match apps::authenticate(&reader, token.expose(), SystemClock.now_ns()).await {
        Ok(caller) => {
            let person = caller.person.id;
            return Some(match caller.app_id {
                None => format!("person:{person}"),
                Some(app) => format!("person:{person}:app:{app}"),
            });
        }
        Err(AppError::Unauthenticated) => {}
        Err(_) => return None,
    }
    let app = apps::authenticate_app(&reader, token.expose()).await.ok()?;
    Some(format!("app:{}", app.id))
}

impl From<ActionError> for ApiError {
    fn from(error: ActionError) -> ApiError {
        match error {
            ActionError::KeyReused => PaymentError::IdempotencyKeyReused.into(),
            ActionError::InProgress => PaymentError::IdempotencyRequestInProgress.into(),
            ActionError::SecretNotReplayable => AppError::SecretNotReplayable {
                id: "the first request".to_owned(),
            }
            .into(),
            ActionError::Internal(detail) => {
                tracing::error!(%detail, "idempotent action");
                ApiError::Internal
            }
        }
    }
}

fn replayed(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = Response::new(Body::from(answer.body.unwrap_or_default()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(value) = answer
        .content_type
        .and_then(|value| HeaderValue::from_str(&value).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        HeaderName::from_static(IDEMPOTENT_REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    );
    response
}

/// What a claim keeps of `status` and `body`: nothing when a retry should run the
/// handler again (a server error, a rate limit, an answer too large to keep).
fn kept_answer(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    secret: bool,
) -> Option<StoredAnswer> {
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || body.len() > ACTION_ANSWER_BYTES_MAX
    {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    Some(StoredAnswer {
        status: status.as_u16(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: (!(secret && status.is_success())).then(|| text.to_owned()),
    })
}

/// The middleware: passes through every request but an action route's POST with an
/// `Idempotency-Key` from an authenticated caller.
pub async fn actions(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(secret) = action_route(request.method(), request.extensions().get::<MatchedPath>())
    else {
        return next.run(request).await;
    };
    let key = match optional_idempotency_key(request.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(request).await,
        Err(error) => return error.into_response(),
    };
    let Some(scope) = key_scope(&state, request.headers()).await else {
        return next.run(request).await;
    };
    let Some(ledger) = state.ledger() else {
        return ApiError::NotReady {
            reason: "shutting down",
        }
        .into_response();
    };
    let (parts, body) = request.into_parts();
    let limit_bytes = state.config().request_body_bytes_max;
    let Ok(bytes) = to_bytes(body, limit_bytes).await else {
        return ApiError::PayloadTooLarge { limit_bytes }.into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |value| value.as_str());
    let action = Action::new(&scope, &key, parts.method.as_str(), path_and_query, &bytes);
    let reader = state.reader();
    match action.begin(&ledger, &reader, SystemClock.now_ns()).await {
        Ok(Begun::Run) => {}
        Ok(Begun::Replay(answer)) => return replayed(answer),
        Err(error) => return ApiError::from(error).into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    // Handlers answer small JSON built in memory; a body that can't be read whole is
    // a server error, and the key is released.
    let (answer, body) = match to_bytes(body, usize::MAX).await {
        Ok(body) => (
            kept_answer(parts.status, &parts.headers, &body, secret),
            body,
        ),
        Err(_) => {
            let _ = action.finish(&ledger, None, SystemClock.now_ns()).await;
            return ApiError::Internal.into_response();
        }
    };
    if let Err(error) = action.finish(&ledger, answer, SystemClock.now_ns()).await {
        // The action happened; only its answer was not kept. A retry finds the claim
        // in progress, and after it goes stale runs into the object's new state.
        tracing::error!(%error, "keeping an idempotent answer");
    }
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_route_is_a_post_of_the_api() {
        use utoipa::OpenApi;
        let document = crate::routes::docs::ApiDoc::openapi();
        for (path, _) in ACTION_ROUTES {
            let post = document
                .paths
                .paths
                .get(path)
                .and_then(|item| item.post.as_ref());
            let post = post.unwrap_or_else(|| panic!("{path} is not a POST of the API"));
            let documented = post
                .parameters
                .iter()
                .flatten()
                .any(|parameter| parameter.name == "Idempotency-Key");
            assert!(documented, "{path} does not document its key");
            assert!(post.responses.responses.contains_key("422"), "{path}");
        }
        assert_eq!(action_route(&Method::GET, None), None);
        assert_eq!(action_route(&Method::POST, None), None);
    }

    #[test]
    fn server_errors_rate_limits_and_secrets_are_not_kept() {
        let json = HeaderMap::new();
        assert!(kept_answer(StatusCode::INTERNAL_SERVER_ERROR, &json, b"{}", false).is_none());
        assert!(kept_answer(StatusCode::TOO_MANY_REQUESTS, &json, b"{}", false).is_none());
        let big = vec![b' '; ACTION_ANSWER_BYTES_MAX + 1];
        assert!(kept_answer(StatusCode::OK, &json, &big, false).is_none());
        let secret = kept_answer(StatusCode::OK, &json, b"{\"secret\":1}", true).unwrap();
        assert_eq!(secret.body, None);
        // A refusal holds no secret: it is kept whole.
        let refused = kept_answer(StatusCode::CONFLICT, &json, b"{\"code\":1}", true).unwrap();
        assert_eq!(refused.body.as_deref(), Some("{\"code\":1}"));
    }
}
