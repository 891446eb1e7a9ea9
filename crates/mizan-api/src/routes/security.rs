//! A person's own security settings — sessions, password, TOTP and step-up. Every
//! route here needs the person's own session: an app token gets 403
//! `session_required`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use mizan_app::apps::{self, Caller};
use mizan_app::identity::{self, Password};
use mizan_app::time::rfc3339_from_ns;
use mizan_app::totp::{self, TotpError};
use mizan_core::{Clock, Secret, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::rate_limit::RateKey;
use crate::routes::identity::{ledger, session_token, JsonBody};
use crate::state::AppState;

impl From<TotpError> for ApiError {
    fn from(error: TotpError) -> ApiError {
        let code = error.code();
        let refused =
            |status: StatusCode, title: &'static str, field, error: TotpError| ApiError::Refused {
                status,
                code,
                title,
                field,
                detail: error.to_string(),
            };
        match error {
            TotpError::InvalidCode => refused(
                StatusCode::BAD_REQUEST,
                "Invalid field",
                Some("code"),
                error,
            ),
            TotpError::AlreadyEnabled | TotpError::NotEnrolling | TotpError::NotEnabled => {
                refused(StatusCode::CONFLICT, "Conflict", None, error)
            }
            TotpError::StepUpRequired | TotpError::SessionRequired => {
                refused(StatusCode::FORBIDDEN, "Not allowed", None, error)
            }
            TotpError::PersonErased => {
                refused(StatusCode::GONE, "Personal data erased", None, error)
            }
            TotpError::Internal(detail) => {
                tracing::error!(%detail, "totp use case failed");
                ApiError::Internal
            }
        }
    }
}

/// The caller, whoever they are (session or app token), with its session details.
/// Every request on behalf of a person comes through here: authenticated, then
/// counted against the person (own session) or the app (app token).
pub(crate) async fn any_caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = session_token(headers)?;
    let now_ns = SystemClock.now_ns();
    let caller = apps::authenticate(&state.reader(), token.expose(), now_ns).await?;
    let limits = state.rate_limits();
    let counted = match &caller.app_id {
        None => limits
            .person
            .check(RateKey::Person(caller.person.id.get()), now_ns),
        Some(app) => limits.app.check(RateKey::App(app.clone()), now_ns),
    };
    counted.map_err(|retry_after_s| ApiError::RateLimited { retry_after_s })?;
    Ok(caller)
}

/// The caller, who must be a person on their own session.
async fn own_session(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let caller = any_caller(state, headers).await?;
    caller.require_session()?;
    Ok(caller)
}

/// Refuses a movement of `amount_minor` that needs a fresh second factor.
pub(crate) async fn require_step_up(
    state: &AppState,
    caller: &Caller,
    amount_minor: i64,
) -> Result<(), ApiError> {
    totp::require_step_up(
        &state.reader(),
        caller,
        amount_minor,
        state.config().step_up_threshold_minor,
        SystemClock.now_ns(),
    )
    .await?;
    Ok(())
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionItem {
    /// The session id (SHA-256 of its token; not the token).
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    /// True for the session this request came with.
    pub current: bool,
}

/// The caller's live sessions, newest first.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions", body = [SessionItem]),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<SessionItem>>, ApiError> {
    let caller = own_session(&state, &headers).await?;
    let sessions =
        identity::sessions_of(&state.reader(), caller.person.id, SystemClock.now_ns()).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| SessionItem {
                current: caller.session_key.as_deref() == Some(session.id.as_str()),
                id: session.id,
                created_at: rfc3339_from_ns(session.created_at_ns),
                expires_at: rfc3339_from_ns(session.expires_at_ns),
            })
            .collect(),
    ))
}

/// Revokes one of the caller's sessions (e.g. a lost phone).
#[utoipa::path(
    delete,
    path = "/v1/sessions/{id}",
    tag = "identity",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The session id from `GET /v1/sessions`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`, also for another person's session", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn revoke_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = own_session(&state, &headers).await?;
    let ledger = ledger(&state)?;
    identity::revoke_session(&ledger, &state.reader(), caller.person.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    pub current_password: Secret<String>,
    /// 10–128 characters.
    #[schema(value_type = String, format = Password)]
    pub new_password: Secret<String>,
}

/// Changes the password; every other session is signed out.
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "identity",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; other sessions revoked"),
        (status = 400, description = "`invalid_body`, `weak_password` (field `new_password`) or `wrong_password` (field `current_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let caller = own_session(&state, &headers).await?;
    let new = Password::parse(request.new_password).map_err(|error| ApiError::InvalidField {
        code: error.code(),
        field: "new_password",
        detail: error.to_string(),
    })?;
    let ledger = ledger(&state)?;
    identity::change_password(
        &ledger,
        &state.reader(),
        caller.person.id,
        caller.session_key.as_deref(),
        request.current_password,
        new,
        SystemClock.now_ns(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TotpEnrolmentBody {
    /// Base32; shown once. Enter it (or the URI, as a QR code) in an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
}

/// Starts TOTP set-up: a new secret, not active until confirmed with a code.
#[utoipa::path(
    post,
    path = "/v1/me/totp",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The secret to confirm", body = TotpEnrolmentBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`totp_already_enabled`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased, and their second-factor secret with it", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn begin_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<TotpEnrolmentBody>), ApiError> {
    let caller = own_session(&state, &headers).await?;
    let ledger = ledger(&state)?;
    let enrolment = totp::begin(
        &ledger,
        &state.reader(),
        &super::identity::vault(&state)?,
        &caller.person,
        SystemClock.now_ns(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolmentBody {
            secret: enrolment.secret_base32.expose().clone(),
            otpauth_uri: enrolment.otpauth_uri.expose().clone(),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    /// Six digits from the authenticator app.
    #[schema(value_type = String)]
    pub code: Secret<String>,
}

/// Turns TOTP on with a code from the new secret.
#[utoipa::path(
    post,
    path = "/v1/me/totp/confirm",
    tag = "identity",
    security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 204, description = "TOTP is on"),
        (status = 400, description = "`invalid_body` or `invalid_totp_code`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`totp_not_enrolling` or `totp_already_enabled`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased, and their second-factor secret with it", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TotpCode>,
) -> Result<StatusCode, ApiError> {
    let caller = own_session(&state, &headers).await?;
    let ledger = ledger(&state)?;
    totp::confirm(
        &ledger,
        &state.reader(),
        &super::identity::vault(&state)?,
        &caller.person,
        request.code.expose(),
        SystemClock.now_ns(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Proves the second factor on this session: for five minutes it may make payments
/// at or above the step-up amount.
#[utoipa::path(
    post,
    path = "/v1/sessions/current/step-up",
    tag = "identity",
    security(("bearer" = [])),
    request_body = TotpCode,
    responses(
        (status = 204, description = "Stepped up for five minutes"),
        (status = 400, description = "`invalid_body` or `invalid_totp_code` (wrong, expired or already used)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`totp_not_enabled`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased, and their second-factor secret with it", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn step_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TotpCode>,
) -> Result<StatusCode, ApiError> {
    let caller = own_session(&state, &headers).await?;
    let Some(session_key) = caller.session_key.as_deref() else {
        return Err(TotpError::SessionRequired.into());
    };
    let ledger = ledger(&state)?;
    totp::step_up(
        &ledger,
        &state.reader(),
        &super::identity::vault(&state)?,
        &caller.person,
        session_key,
        request.code.expose(),
        SystemClock.now_ns(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Everything Mizan holds about the caller that they may see, as one JSON download:
/// person, wallet, live sessions, linked apps, the whole activity (at most 10,000
/// items; `activity_truncated` says when there were more), verification, the
/// personal data the vault holds (`personal_data`: each reveal is in the vault's
/// access log) and saved cards by last 4.
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export (JSON, as an attachment)", body = Object),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn export(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let caller = own_session(&state, &headers).await?;
    let vault = crate::routes::identity::vault(&state)?;
    let export = mizan_app::export::export(
        &state.reader(),
        &vault,
        &caller.person,
        SystemClock.now_ns(),
    )
    .await?;
    let disposition = format!(
        "attachment; filename=\"mizan-{}.json\"",
        caller.person.handle.as_str()
    );
    let disposition =
        axum::http::HeaderValue::from_str(&disposition).map_err(|_| ApiError::Internal)?;
    Ok((
        [(axum::http::header::CONTENT_DISPOSITION, disposition)],
        Json(export),
    )
        .into_response())
}
