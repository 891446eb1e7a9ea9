//! Apps, links and webhooks.
//!
//! - Operator (`Authorization: Bearer <MIZAN_OPERATOR_TOKEN>`): `POST /v1/apps`,
//!   `GET /v1/apps`.
//! - App (`Authorization: Bearer mzk_…`, its API key): `POST /v1/app/link-requests`,
//!   `POST /v1/app/tokens`, webhook endpoints, deliveries and replay.
//! - Person (their own session only — never an app token): pending link requests,
//!   approve / decline, linked apps, revoke.
//!
//! The three creating POSTs an app (or the operator) may retry take an optional
//! `Idempotency-Key`: a retry never creates a second app, endpoint or link request.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mizan_app::apps::{
    self, AppError, AppView, Created, Creation, ExternalUserId, LinkAsk, LinkRequestView, LinkView,
    Replay, Scope,
};
use mizan_app::identity::Person;
use mizan_app::time::rfc3339_from_ns;
use mizan_app::webhooks::{self, Delivery, DeliveryStatus, Endpoint, WebhookError};
use mizan_core::{Clock, Secret, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem};
use crate::rate_limit::RateKey;
use crate::routes::identity::{ledger, session_token, JsonBody};
use crate::routes::payments::{idempotent_response, optional_idempotency_key};
use crate::state::AppState;

/// Most deliveries one page lists.
pub const DELIVERIES_PAGE_MAX: usize = 100;

impl From<AppError> for ApiError {
    fn from(error: AppError) -> ApiError {
        let code = error.code();
        let field = error.field();
        let refused =
            |status: StatusCode, title: &'static str, error: AppError| ApiError::Refused {
                status,
                code,
                title,
                field,
                detail: error.to_string(),
            };
        match error {
            AppError::InvalidAppName
            | AppError::InvalidExternalUserId
            | AppError::InvalidScope
            | AppError::NoScopes => refused(StatusCode::BAD_REQUEST, "Invalid field", error),
            AppError::PersonNotFound | AppError::LinkRequestNotFound | AppError::LinkNotFound => {
                refused(StatusCode::NOT_FOUND, "Not found", error)
            }
            AppError::ExternalUserIdTaken => refused(StatusCode::CONFLICT, "Conflict", error),
            AppError::ScopeNotGranted | AppError::InsufficientScope | AppError::SessionRequired => {
                refused(StatusCode::FORBIDDEN, "Not allowed", error)
            }
            AppError::Unauthenticated => ApiError::Unauthenticated,
            AppError::IdempotencyKeyReused => refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency key reused",
                error,
            ),
            AppError::SecretNotReplayable { .. } => {
                refused(StatusCode::CONFLICT, "Already created", error)
            }
            AppError::Internal(detail) => {
                tracing::error!(%detail, "apps use case failed");
                ApiError::Internal
            }
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> ApiError {
        let code = error.code();
        let field = error.field();
        let refused =
            |status: StatusCode, title: &'static str, error: WebhookError| ApiError::Refused {
                status,
                code,
                title,
                field,
                detail: error.to_string(),
            };
        match error {
            WebhookError::InvalidUrl
            | WebhookError::InvalidEventType
            | WebhookError::NoEventTypes => {
                refused(StatusCode::BAD_REQUEST, "Invalid field", error)
            }
            WebhookError::TooManyEndpoints => refused(StatusCode::CONFLICT, "Conflict", error),
            WebhookError::DeliveryNotFound => refused(StatusCode::NOT_FOUND, "Not found", error),
            WebhookError::Internal(detail) => {
                tracing::error!(%detail, "webhooks use case failed");
                ApiError::Internal
            }
        }
    }
}

impl From<mizan_app::creation::CreationError> for ApiError {
    fn from(error: mizan_app::creation::CreationError) -> ApiError {
        AppError::from(error).into()
    }
}

/// Constant-time comparison, so the operator token can't be guessed byte by byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn require_operator(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = session_token(headers)?;
    let Some(expected) = state.config().operator_token.as_ref() else {
        return Err(ApiError::Unauthenticated);
    };
    if same_secret(token.expose().as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

pub(crate) async fn calling_app(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AppView, ApiError> {
    let key = session_token(headers)?;
    let app = apps::authenticate_app(&state.reader(), key.expose()).await?;
    state
        .rate_limits()
        .app
        .check(RateKey::App(app.id.clone()), SystemClock.now_ns())
        .map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })?;
    Ok(app)
}

/// The person of a request made with their own session; an app token gets 403.
pub(crate) async fn session_person(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Person, ApiError> {
    let caller = crate::routes::security::any_caller(state, headers).await?;
    Ok(caller.require_session()?.clone())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppCreateRequest {
    /// 1–80 characters, shown to people when the app asks to link.
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AppBody {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// Only in the answer to `POST /v1/apps`: the app's API key, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

fn app_body(app: AppView, api_key: Option<String>) -> AppBody {
    AppBody {
        id: app.id,
        name: app.name,
        created_at: rfc3339_from_ns(app.created_at_ns),
        api_key,
    }
}

/// Registers an app (operator only); the answer holds its API key, shown once.
#[utoipa::path(
    post,
    path = "/v1/apps",
    tag = "apps",
    security(("bearer" = [])),
    request_body = AppCreateRequest,
    responses(
        (status = 201, description = "The app and its API key", body = AppBody),
        (status = 400, description = "`invalid_body`, `invalid_app_name` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: not the operator token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_secret_not_replayable`: the key already registered an app, whose API key was shown once (the detail names the app)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another name", body = Problem, content_type = "application/problem+json")
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry under it never registers a second app"))
)]
pub async fn create_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AppCreateRequest>,
) -> Result<(StatusCode, Json<AppBody>), ApiError> {
    require_operator(&state, &headers)?;
    let creation = optional_idempotency_key(&headers)?.map(|key| {
        Creation::new(
            "operator:apps",
            &key,
            &apps::app_canonical(&request.name),
            SystemClock.now_ns(),
        )
    });
    let ledger = ledger(&state)?;
    let created = apps::register_app_once(
        &ledger,
        Some(&state.reader()),
        &request.name,
        creation.as_ref(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    match created {
        Created::New(created) => {
            let key = created.api_key.expose().clone();
            Ok((StatusCode::CREATED, Json(app_body(created.app, Some(key)))))
        }
        // An app's claim never stores its answer (it holds the API key).
        Created::Replayed(Replay::Response(_)) => Err(ApiError::Internal),
    }
}

/// Every registered app (operator only).
#[utoipa::path(
    get,
    path = "/v1/apps",
    tag = "apps",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The apps", body = [AppBody]),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_apps(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<AppBody>>, ApiError> {
    require_operator(&state, &headers)?;
    let apps = apps::list_apps(&state.reader()).await?;
    Ok(Json(
        apps.into_iter().map(|app| app_body(app, None)).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequestCreate {
    /// The Mizan handle of the person.
    pub handle: String,
    /// The app's own id for its user: 1–128 visible ASCII characters.
    pub external_user_id: String,
    /// `wallet:read`, `payments:write`.
    pub scopes: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LinkRequestBody {
    pub id: String,
    pub app_id: String,
    pub app_name: String,
    pub handle: String,
    pub external_user_id: String,
    pub scopes: Vec<String>,
    /// `pending`, `approved` or `declined`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
}

fn scope_names(scopes: &BTreeSet<Scope>) -> Vec<String> {
    scopes
        .iter()
        .map(|scope| scope.as_str().to_owned())
        .collect()
}

impl From<LinkRequestView> for LinkRequestBody {
    fn from(view: LinkRequestView) -> LinkRequestBody {
        LinkRequestBody {
            scopes: scope_names(&view.scopes),
            id: view.id,
            app_id: view.app_id,
            app_name: view.app_name,
            handle: view.handle,
            external_user_id: view.external_user_id,
            status: view.status,
            created_at: rfc3339_from_ns(view.created_at_ns),
            expires_at: rfc3339_from_ns(view.expires_at_ns),
        }
    }
}

/// The app asks a person to link one of its user ids to them (app key).
#[utoipa::path(
    post,
    path = "/v1/app/link-requests",
    tag = "apps",
    security(("bearer" = [])),
    request_body = LinkRequestCreate,
    responses(
        (status = 201, description = "The pending request; the person approves it in Mizan", body = LinkRequestBody),
        (status = 400, description = "`invalid_body`, `invalid_external_user_id`, `invalid_scope`, `no_scopes` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: not an app key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another request", body = Problem, content_type = "application/problem+json")
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry under it answers the same link request with `Idempotent-Replayed: true`"))
)]
pub async fn create_link_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<LinkRequestCreate>,
) -> Result<Response, ApiError> {
    let app = calling_app(&state, &headers).await?;
    let external = ExternalUserId::parse(&request.external_user_id)?;
    let scopes = Scope::parse_set(&request.scopes)?;
    let link = LinkAsk {
        handle: &request.handle,
        external: &external,
        scopes,
    };
    let scope = format!("app:{}:link-requests", app.id);
    let creation = optional_idempotency_key(&headers)?
        .map(|key| Creation::new(&scope, &key, &link.canonical(), SystemClock.now_ns()));
    let ledger = ledger(&state)?;
    let created = apps::request_link_once(
        &ledger,
        &state.reader(),
        &app,
        link,
        creation.as_ref(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    match created {
        Created::New(view) => {
            Ok((StatusCode::CREATED, Json(LinkRequestBody::from(view))).into_response())
        }
        Created::Replayed(Replay::Response(stored)) => {
            let view: LinkRequestView = serde_json::from_value(stored).map_err(|error| {
                tracing::error!(%error, "a stored link request answer");
                ApiError::Internal
            })?;
            idempotent_response(
                StatusCode::CREATED.as_u16(),
                true,
                LinkRequestBody::from(view),
            )
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppTokenCreate {
    pub external_user_id: String,
    /// A subset of what the person granted.
    pub scopes: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AppTokenBody {
    /// Acts for the person with `scopes` until `expires_at`; shown once.
    pub token: String,
    pub scopes: Vec<String>,
    pub expires_at: String,
}

/// The app trades its key and a linked user id for an hour-long token (app key).
#[utoipa::path(
    post,
    path = "/v1/app/tokens",
    tag = "apps",
    security(("bearer" = [])),
    request_body = AppTokenCreate,
    responses(
        (status = 201, description = "A token acting for the person", body = AppTokenBody),
        (status = 400, description = "`invalid_body`, `invalid_external_user_id`, `invalid_scope` or `no_scopes`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`scope_not_granted`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`link_not_found`: not linked, or revoked", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_app_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AppTokenCreate>,
) -> Result<(StatusCode, Json<AppTokenBody>), ApiError> {
    let app = calling_app(&state, &headers).await?;
    let external = ExternalUserId::parse(&request.external_user_id)?;
    let scopes = Scope::parse_set(&request.scopes)?;
    let ledger = ledger(&state)?;
    let token = apps::issue_token(
        &ledger,
        &state.reader(),
        &app,
        &external,
        scopes,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok((
        StatusCode::CREATED,
        Json(AppTokenBody {
            token: token.token.expose().clone(),
            scopes: scope_names(&token.scopes),
            expires_at: rfc3339_from_ns(token.expires_at_ns),
        }),
    ))
}

/// The caller's link requests waiting for an answer (their own session only).
#[utoipa::path(
    get,
    path = "/v1/me/link-requests",
    tag = "apps",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending requests", body = [LinkRequestBody]),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn my_link_requests(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<LinkRequestBody>>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let pending =
        apps::pending_link_requests(&state.reader(), person.id, SystemClock.now_ns()).await?;
    Ok(Json(pending.into_iter().map(Into::into).collect()))
}

async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    approve: bool,
) -> Result<Json<LinkRequestBody>, ApiError> {
    let person = session_person(state, headers).await?;
    let ledger = ledger(state)?;
    let view = apps::answer_link_request(
        &ledger,
        &state.reader(),
        &person,
        id,
        approve,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok(Json(view.into()))
}

/// Approves a link request: the app may act for the caller with its scopes.
#[utoipa::path(
    post,
    path = "/v1/me/link-requests/{id}/approve",
    tag = "apps",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The link request id")),
    responses(
        (status = 200, description = "The request, now `approved`", body = LinkRequestBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`link_request_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`external_user_id_taken`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn approve_link_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<LinkRequestBody>, ApiError> {
    answer(&state, &headers, &id, true).await
}

/// Declines a link request.
#[utoipa::path(
    post,
    path = "/v1/me/link-requests/{id}/decline",
    tag = "apps",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The link request id")),
    responses(
        (status = 200, description = "The request, now `declined`", body = LinkRequestBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`link_request_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn decline_link_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<LinkRequestBody>, ApiError> {
    answer(&state, &headers, &id, false).await
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LinkBody {
    pub app_id: String,
    pub app_name: String,
    pub external_user_id: String,
    pub scopes: Vec<String>,
    pub linked_at: String,
    /// Set once the person revoked the app.
    pub revoked_at: Option<String>,
}

impl From<LinkView> for LinkBody {
    fn from(view: LinkView) -> LinkBody {
        LinkBody {
            scopes: scope_names(&view.scopes),
            app_id: view.app_id,
            app_name: view.app_name,
            external_user_id: view.external_user_id,
            linked_at: rfc3339_from_ns(view.linked_at_ns),
            revoked_at: view.revoked_at_ns.map(rfc3339_from_ns),
        }
    }
}

/// The apps linked to the caller, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/me/apps",
    tag = "apps",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Linked apps", body = [LinkBody]),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn my_apps(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<LinkBody>>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let links = apps::links_of(&state.reader(), person.id).await?;
    Ok(Json(links.into_iter().map(Into::into).collect()))
}

/// Revokes an app: its tokens stop working at once.
#[utoipa::path(
    delete,
    path = "/v1/me/apps/{app_id}",
    tag = "apps",
    security(("bearer" = [])),
    params(("app_id" = String, Path, description = "The app id")),
    responses(
        (status = 200, description = "The link, now revoked", body = LinkBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`link_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn revoke_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> Result<Json<LinkBody>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let ledger = ledger(&state)?;
    let link = apps::revoke_link(
        &ledger,
        &state.reader(),
        &person,
        &app_id,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok(Json(link.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointCreate {
    /// An http:// or https:// URL, at most 2,048 characters.
    pub url: String,
    /// Event types, e.g. `payment.succeeded`, `request.created`, `funding.failed`.
    pub events: Vec<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EndpointBody {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// Only when created: the signing secret (`whsec_…`), shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn endpoint_body(endpoint: &Endpoint, secret: Option<&Secret<String>>) -> EndpointBody {
    EndpointBody {
        id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        events: endpoint.events.iter().cloned().collect(),
        created_at: rfc3339_from_ns(endpoint.created_at_ns),
        secret: secret.map(|secret| secret.expose().clone()),
    }
}

/// Registers a webhook endpoint (app key); the answer holds its signing secret.
#[utoipa::path(
    post,
    path = "/v1/app/webhook-endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    request_body = EndpointCreate,
    responses(
        (status = 201, description = "The endpoint and its signing secret", body = EndpointBody),
        (status = 400, description = "`invalid_body`, `invalid_url`, `invalid_event_type`, `no_event_types` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_endpoints`, or `idempotency_secret_not_replayable`: the key already created an endpoint, whose signing secret was shown once (the detail names it)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used with another request", body = Problem, content_type = "application/problem+json")
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry under it never creates a second endpoint"))
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<EndpointCreate>,
) -> Result<(StatusCode, Json<EndpointBody>), ApiError> {
    let app = calling_app(&state, &headers).await?;
    let creation = match optional_idempotency_key(&headers)? {
        Some(key) => {
            let mut events = request.events.clone();
            events.sort();
            events.dedup();
            let canonical = format!("endpoint|{}|{}", request.url, events.join(","));
            let scope = format!("app:{}:webhook-endpoints", app.id);
            let creation = Creation::new(&scope, &key, &canonical, SystemClock.now_ns());
            // A used key is answered before the endpoint limit is checked.
            if let Some(Replay::Response(_)) = creation.replay(&state.reader()).await? {
                return Err(ApiError::Internal);
            }
            Some(creation)
        }
        None => None,
    };
    let claim = |id: &str| {
        creation
            .as_ref()
            .and_then(|creation| creation.claim_row(id, None).ok())
    };
    let ledger = ledger(&state)?;
    let created = webhooks::create_endpoint_claimed(
        &ledger,
        &state.reader(),
        &super::identity::vault(&state)?,
        &app,
        &request.url,
        &request.events,
        creation
            .as_ref()
            .map(|_| &claim as webhooks::EndpointClaim<'_>),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    match (created, creation) {
        (Some((endpoint, secret)), _) => Ok((
            StatusCode::CREATED,
            Json(endpoint_body(&endpoint, Some(&secret))),
        )),
        // Lost the race for the key: the winner's claim answers (never with a secret).
        (None, Some(creation)) => {
            let Replay::Response(_) = creation.replay_after_conflict(&state.reader()).await?;
            Err(ApiError::Internal)
        }
        (None, None) => Err(ApiError::Internal),
    }
}

/// The app's webhook endpoints (app key).
#[utoipa::path(
    get,
    path = "/v1/app/webhook-endpoints",
    tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The endpoints (without secrets)", body = [EndpointBody]),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<EndpointBody>>, ApiError> {
    let app = calling_app(&state, &headers).await?;
    let endpoints = webhooks::endpoints_of(&state.reader(), &app.id).await?;
    Ok(Json(
        endpoints
            .iter()
            .map(|endpoint| endpoint_body(endpoint, None))
            .collect(),
    ))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveryBody {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    /// The exact body every attempt sends.
    pub body: String,
}

impl From<Delivery> for DeliveryBody {
    fn from(delivery: Delivery) -> DeliveryBody {
        let status = match delivery.status {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        };
        DeliveryBody {
            next_attempt_at: (delivery.status == DeliveryStatus::Pending)
                .then(|| rfc3339_from_ns(delivery.next_attempt_at_ns)),
            id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: status.to_owned(),
            attempts: delivery.attempts,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            created_at: rfc3339_from_ns(delivery.created_at_ns),
            body: delivery.body,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// The last delivery id of the previous page.
    pub after: Option<String>,
    /// 1–100, default 50.
    pub limit: Option<usize>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveriesPage {
    pub deliveries: Vec<DeliveryBody>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// The app's webhook deliveries, oldest first (app key).
#[utoipa::path(
    get,
    path = "/v1/app/webhook-deliveries",
    tag = "webhooks",
    security(("bearer" = [])),
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "One page of deliveries", body = DeliveriesPage),
        (status = 400, description = "`invalid_limit` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<DeliveriesPage>, ApiError> {
    let app = calling_app(&state, &headers).await?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=DELIVERIES_PAGE_MAX).contains(&limit) {
        return Err(mizan_app::payments::PaymentError::InvalidLimit.into());
    }
    let after = query.after.as_deref();
    let valid_after = after.is_none_or(|after| {
        after.len() <= 64 && after.bytes().all(|b| b.is_ascii_hexdigit() || b == b'_')
    });
    if !valid_after {
        return Err(mizan_app::payments::PaymentError::InvalidCursor.into());
    }
    let deliveries = webhooks::deliveries_of(&state.reader(), &app.id, after, limit).await?;
    let next_after = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|delivery| delivery.id.clone()))
        .flatten();
    Ok(Json(DeliveriesPage {
        deliveries: deliveries.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// Sends a delivery again now, whatever its status; answers the delivery after the
/// attempt (app key).
#[utoipa::path(
    post,
    path = "/v1/app/webhook-deliveries/{id}/replay",
    tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The delivery id")),
    responses(
        (status = 200, description = "The delivery after the new attempt", body = DeliveryBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`delivery_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn replay_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DeliveryBody>, ApiError> {
    let app = calling_app(&state, &headers).await?;
    let delivery = webhooks::delivery_of(&state.reader(), &app.id, &id).await?;
    let delivery = crate::webhooks::replay(&state, delivery).await?;
    Ok(Json(delivery.into()))
}
