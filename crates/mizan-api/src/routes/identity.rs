//! `POST /v1/people` (sign up), `POST /v1/sessions` (log in), `GET /v1/me` and
//! `DELETE /v1/sessions/current` (log out). Handlers parse their body into domain
//! types first, then call `mizan_app::identity`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mizan_app::identity::{
    self, Email, Handle, IdentityError, LegalName, Password, Person, SESSION_LIFETIME_SECONDS,
    WALLET_CURRENCY,
};
use mizan_app::time::rfc3339_from_ns;
use mizan_core::{Clock, Secret, SystemClock};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mizan_session";

/// A JSON body: any rejection (bad JSON, wrong types, unknown fields, no JSON content
/// type) answers 400 `invalid_body`; only a too-large body keeps its 413.
pub struct JsonBody<T>(pub T);

impl<T> FromRequest<AppState> for JsonBody<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(body_error(&rejection, state)),
        }
    }
}

fn body_error(rejection: &JsonRejection, state: &AppState) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge {
            limit_bytes: state.config().request_body_bytes_max,
        };
    }
    ApiError::InvalidBody
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> ApiError {
        let code = error.code();
        match error {
            IdentityError::InvalidHandle
            | IdentityError::InvalidEmail
            | IdentityError::WeakPassword
            | IdentityError::InvalidLegalName => ApiError::InvalidField {
                code,
                field: error.field().unwrap_or_default(),
                detail: error.to_string(),
            },
            IdentityError::HandleTaken | IdentityError::EmailTaken => ApiError::Conflict {
                code,
                field: error.field().unwrap_or_default(),
                detail: error.to_string(),
            },
            IdentityError::InvalidCredentials => ApiError::InvalidCredentials,
            IdentityError::WrongPassword => ApiError::InvalidField {
                code,
                field: "current_password",
                detail: error.to_string(),
            },
            IdentityError::SessionNotFound => ApiError::Refused {
                status: StatusCode::NOT_FOUND,
                code,
                title: "Not found",
                field: None,
                detail: error.to_string(),
            },
            IdentityError::Unauthenticated => ApiError::Unauthenticated,
            IdentityError::Internal(detail) => {
                tracing::error!(%detail, "identity use case failed");
                ApiError::Internal
            }
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// 3–30 ASCII letters, digits or underscores; case-insensitive.
    pub handle: String,
    pub email: String,
    /// 10–128 characters.
    #[schema(value_type = String, format = Password)]
    pub password: Secret<String>,
    /// Optional: the person's full legal name (1–200 characters). When given it is
    /// sealed in the vault and screened against the sanctions list at once
    /// (docs/COMPLIANCE.md); the answer is the same whatever the screening found.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub legal_name: Option<Secret<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A handle or an e-mail address.
    pub login: String,
    #[schema(value_type = String, format = Password)]
    pub password: Secret<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Wallet {
    /// The ledger account id (32 hex digits).
    pub account_id: String,
    pub currency: String,
    /// Posted balance in major units, e.g. "0.00".
    pub balance: String,
    /// What can be spent now: the posted balance less outgoing holds (a cash-out on
    /// its way, a paid DM in escrow).
    pub available: String,
    /// Incoming money not yet posted (a card top-up waiting for its processor).
    pub pending: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PersonBody {
    pub id: String,
    pub handle: String,
    pub email: String,
    pub wallet: Wallet,
}

#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    /// The bearer token; shown once, stored only as a hash.
    pub token: String,
    /// RFC 3339 UTC.
    pub expires_at: String,
}

pub(crate) fn ledger(state: &AppState) -> Result<mizan_ledger::Ledger, ApiError> {
    state.ledger().ok_or(ApiError::NotReady {
        reason: "shutting down",
    })
}

/// The vault, or 503 `not_ready` once shutdown began.
pub(crate) fn vault(state: &AppState) -> Result<mizan_app::vault::SharedVault, ApiError> {
    state.vault().ok_or(ApiError::NotReady {
        reason: "shutting down",
    })
}

async fn person_body(state: &AppState, person: &Person) -> Result<PersonBody, ApiError> {
    let balances = identity::wallet_balances(&state.reader(), person.id).await?;
    Ok(PersonBody {
        id: person.id.to_string(),
        handle: person.handle.as_str().to_owned(),
        email: person.email.as_str().to_owned(),
        wallet: Wallet {
            account_id: person.id.wallet_id(WALLET_CURRENCY)?.to_string(),
            currency: WALLET_CURRENCY.code().to_owned(),
            balance: balances.posted.format_major(),
            available: balances.available.format_major(),
            pending: balances.pending.format_major(),
        },
    })
}

/// Signs a person up and opens their USD wallet.
#[utoipa::path(
    post,
    path = "/v1/people",
    tag = "identity",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The person and their wallet", body = PersonBody),
        (status = 400, description = "`invalid_body`, `invalid_handle`, `invalid_email`, `weak_password` or `legal_name_invalid` (with `field`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`handle_taken` or `email_taken`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn signup(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<SignupRequest>,
) -> Result<(StatusCode, Json<PersonBody>), ApiError> {
    let handle = Handle::parse(&request.handle)?;
    let email = Email::parse(&request.email)?;
    let password = Password::parse(request.password)?;
    let legal_name = request
        .legal_name
        .as_ref()
        .map(|name| LegalName::parse(name.expose()))
        .transpose()?;
    let ledger = ledger(&state)?;
    let person = mizan_app::sanctions::signup_screened(
        &ledger,
        &vault(&state)?,
        &state.screener(),
        handle,
        email,
        password,
        legal_name.as_ref(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok((
        StatusCode::CREATED,
        Json(person_body(&state, &person).await?),
    ))
}

/// Logs in with a handle or e-mail and a password; answers a bearer token and sets
/// the session cookie.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "identity",
    request_body = LoginRequest,
    responses(
        (status = 201, description = "A new session (30 days)", body = SessionBody),
        (status = 400, description = "`invalid_body`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_credentials`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let ledger = ledger(&state)?;
    let session = identity::login(
        &state.reader(),
        &ledger,
        &request.login,
        request.password,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={SESSION_LIFETIME_SECONDS}",
        session.token.expose()
    );
    let cookie = HeaderValue::from_str(&cookie).map_err(|_| ApiError::Internal)?;
    let body = SessionBody {
        token: session.token.expose().clone(),
        expires_at: rfc3339_from_ns(session.expires_at_ns),
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(body),
    )
        .into_response())
}

/// The session token of a request: `Authorization: Bearer <token>`, else the cookie.
pub(crate) fn session_token(headers: &HeaderMap) -> Result<Secret<String>, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = || {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value)
    };
    bearer
        .or_else(cookie)
        .filter(|token| !token.is_empty())
        .map(|token| Secret::new(token.to_owned()))
        .ok_or(ApiError::Unauthenticated)
}

/// The person the session belongs to, with their wallet.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The person and their wallet", body = PersonBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PersonBody>, ApiError> {
    let person =
        crate::routes::payments::caller(&state, &headers, mizan_app::apps::Scope::WalletRead)
            .await?;
    Ok(Json(person_body(&state, &person).await?))
}

/// Logs out: revokes the session and clears the cookie.
#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = session_token(&headers)?;
    let ledger = ledger(&state)?;
    identity::logout(
        &ledger,
        &state.reader(),
        token.expose(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let clear = HeaderValue::from_static(
        "mizan_session=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0",
    );
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}
