//! Verification tiers, limits and licences: `POST /v1/me/verification` (tier 1),
//! `POST /v1/me/verification/document` (tier 2), `GET /v1/me/limits`, and the
//! operator's licence table `GET /v1/licences`, `PUT /v1/licences/{jurisdiction}`.
//! Personal fields are [`Secret`]s: never logged, never answered.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use mizan_app::licences::{self, Jurisdiction, Licence};
use mizan_app::limits;
use mizan_app::verification::{
    self, IdentityClaim, IdentityDocument, IdentityInput, VerificationError, VerificationStatus,
};
use mizan_core::{Clock, Money, Secret, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::routes::apps::{require_operator, session_person};
use crate::routes::identity::{ledger, vault, JsonBody};
use crate::state::AppState;

impl From<VerificationError> for ApiError {
    fn from(error: VerificationError) -> ApiError {
        let code = error.code();
        let field = error.field();
        match error {
            VerificationError::LegalNameInvalid
            | VerificationError::DateOfBirthInvalid
            | VerificationError::AddressInvalid
            | VerificationError::JurisdictionInvalid
            | VerificationError::SsnLast4Invalid
            | VerificationError::DocumentTypeInvalid
            | VerificationError::DocumentNumberInvalid => ApiError::Refused {
                status: StatusCode::BAD_REQUEST,
                code,
                title: "Invalid field",
                field,
                detail: error.to_string(),
            },
            VerificationError::DocumentAlreadyUsed => ApiError::Refused {
                status: StatusCode::CONFLICT,
                code,
                title: "Document already used",
                field,
                detail: error.to_string(),
            },
            VerificationError::PersonErased => ApiError::Refused {
                status: StatusCode::GONE,
                code,
                title: "Personal data erased",
                field,
                detail: error.to_string(),
            },
            VerificationError::VerificationFailed => ApiError::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                title: "Verification failed",
                field,
                detail: error.to_string(),
            },
            VerificationError::IdentityNotVerified => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                code,
                title: "Verification required",
                field,
                detail: error.to_string(),
            },
            VerificationError::Internal(detail) => {
                tracing::error!(%detail, "verification use case failed");
                ApiError::Internal
            }
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationAddress {
    /// Street and number, at most 200 characters.
    #[schema(value_type = String)]
    pub line1: Secret<String>,
    #[schema(value_type = String)]
    pub city: Secret<String>,
    #[schema(value_type = String)]
    pub postal_code: Secret<String>,
    /// USPS state code (`CA`), required when `country` is `US`.
    #[serde(default)]
    pub state: Option<String>,
    /// ISO 3166-1 alpha-2 (`US`, `GB`).
    pub country: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationRequest {
    /// 1–200 characters.
    #[schema(value_type = String)]
    pub legal_name: Secret<String>,
    /// YYYY-MM-DD; 18 or older.
    #[schema(value_type = String)]
    pub date_of_birth: Secret<String>,
    pub address: VerificationAddress,
    /// The last 4 digits of the SSN; required for US residents. Sandbox: `0000` fails.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub ssn_last4: Option<Secret<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentVerificationRequest {
    /// `passport`, `drivers_license` or `national_id`.
    pub document_type: String,
    /// 1–40 letters or digits. Sandbox: a number ending `0000` fails.
    #[schema(value_type = String)]
    pub document_number: Secret<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationBody {
    /// 0 (unverified), 1 (identity verified) or 2 (document verified).
    pub tier: u8,
    /// `US-CA`, `GB`, …; null before tier 1.
    pub residence: Option<String>,
}

impl From<VerificationStatus> for VerificationBody {
    fn from(status: VerificationStatus) -> VerificationBody {
        VerificationBody {
            tier: status.tier.number(),
            residence: status.residence,
        }
    }
}

/// Verifies the caller's identity (tier 1) through the identity provider; their
/// residence decides what they may do, their tier their limits (at once).
#[utoipa::path(
    post,
    path = "/v1/me/verification",
    tag = "compliance",
    security(("bearer" = [])),
    request_body = VerificationRequest,
    responses(
        (status = 200, description = "Verified: the new tier and residence", body = VerificationBody),
        (status = 400, description = "`invalid_body`, `legal_name_invalid`, `date_of_birth_invalid`, `address_invalid`, `jurisdiction_invalid` or `ssn_last4_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`verification_failed`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn verify_identity(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<VerificationRequest>,
) -> Result<Json<VerificationBody>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let now_ns = SystemClock.now_ns();
    let input = IdentityInput {
        legal_name: request.legal_name.expose(),
        date_of_birth: request.date_of_birth.expose(),
        address_line: request.address.line1.expose(),
        city: request.address.city.expose(),
        postal_code: request.address.postal_code.expose(),
        state: request.address.state.as_deref(),
        country: &request.address.country,
        ssn_last4: request
            .ssn_last4
            .as_ref()
            .map(|digits| digits.expose().as_str()),
    };
    let claim = IdentityClaim::parse(&input, now_ns)?;
    let ledger = ledger(&state)?;
    let verifier = state.verifier();
    let vault = vault(&state)?;
    let status = verification::verify_identity(
        &ledger,
        &state.reader(),
        verifier.as_ref(),
        &vault,
        &state.screener(),
        person.id,
        claim,
        now_ns,
    )
    .await?;
    Ok(Json(status.into()))
}

/// Verifies an identity document of the caller (tier 2); needs tier 1 first.
#[utoipa::path(
    post,
    path = "/v1/me/verification/document",
    tag = "compliance",
    security(("bearer" = [])),
    request_body = DocumentVerificationRequest,
    responses(
        (status = 200, description = "Verified: tier 2", body = VerificationBody),
        (status = 400, description = "`invalid_body`, `document_type_invalid` or `document_number_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`, or `verification_required` (tier 1 first)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`document_already_used`: another person verified with this document number (found by blind index in the vault)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`person_erased`: the caller's personal data was erased", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`verification_failed`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn verify_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<DocumentVerificationRequest>,
) -> Result<Json<VerificationBody>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let document =
        IdentityDocument::parse(&request.document_type, request.document_number.expose())?;
    let ledger = ledger(&state)?;
    let verifier = state.verifier();
    let vault = vault(&state)?;
    let status = verification::verify_document(
        &ledger,
        &state.reader(),
        verifier.as_ref(),
        &vault,
        person.id,
        document,
        SystemClock.now_ns(),
    )
    .await?;
    Ok(Json(status.into()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimitBody {
    /// `daily_send`, `weekly_send`, `weekly_cashout` or `weekly_funding`.
    pub limit: String,
    /// The tier's limit for the window, e.g. "250.00"; "0.00" means not allowed.
    pub amount: String,
    /// What this window has used.
    pub used: String,
    pub remaining: String,
    pub currency: String,
    /// RFC 3339 UTC: when the window ends (weeks end Monday 00:00 UTC).
    pub resets_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimitsBody {
    pub tier: u8,
    pub residence: Option<String>,
    /// The jurisdiction the licence table is read under (`UNVERIFIED` before tier 1).
    pub jurisdiction: String,
    /// What that jurisdiction allows.
    pub capabilities: LicenceBody,
    pub limits: Vec<LimitBody>,
}

/// The caller's tier, what their residence allows, and every limit with what the
/// current window used of it.
#[utoipa::path(
    get,
    path = "/v1/me/limits",
    tag = "compliance",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Tier, capabilities and limits", body = LimitsBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn my_limits(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<LimitsBody>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let reader = state.reader();
    let (status, usage) = limits::usage(
        &reader,
        &state.config().limits,
        person.id,
        SystemClock.now_ns(),
    )
    .await?;
    let jurisdiction = status.jurisdiction();
    let licence = licences::licence_for(&reader, &jurisdiction).await?;
    let usd = |minor: i64| Money::from_minor(minor, mizan_core::Currency::USD).format_major();
    let limits = usage
        .into_iter()
        .map(|row| LimitBody {
            amount: usd(row.amount_minor),
            used: usd(row.used_minor),
            remaining: usd((row.amount_minor - row.used_minor).max(0)),
            currency: "USD".to_owned(),
            limit: row.limit,
            resets_at: row.resets_at,
        })
        .collect();
    Ok(Json(LimitsBody {
        tier: status.tier.number(),
        residence: status.residence.clone(),
        jurisdiction: jurisdiction.as_str().to_owned(),
        capabilities: licence.into(),
        limits,
    }))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenceBody {
    pub p2p: bool,
    pub cashout: bool,
    pub savings: bool,
    pub cards: bool,
}

impl From<Licence> for LicenceBody {
    fn from(licence: Licence) -> LicenceBody {
        LicenceBody {
            p2p: licence.p2p,
            cashout: licence.cashout,
            savings: licence.savings,
            cards: licence.cards,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LicenceRow {
    /// `US-CA`, `GB`, or `UNVERIFIED` (people before tier 1) or `DEFAULT`
    /// (jurisdictions without an entry).
    pub jurisdiction: String,
    #[serde(flatten)]
    pub licence: LicenceBody,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LicencesBody {
    pub licences: Vec<LicenceRow>,
}

/// The licence table: every US state, `UNVERIFIED`, `DEFAULT` and every country set
/// (operator token).
#[utoipa::path(
    get,
    path = "/v1/licences",
    tag = "compliance",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The licence table", body = LicencesBody),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_licences(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<LicencesBody>, ApiError> {
    require_operator(&state, &headers)?;
    let rows = licences::table(&state.reader()).await?;
    Ok(Json(LicencesBody {
        licences: rows
            .into_iter()
            .map(|(jurisdiction, licence)| LicenceRow {
                jurisdiction,
                licence: licence.into(),
            })
            .collect(),
    }))
}

/// Enables or disables capabilities for a jurisdiction (operator token); applies to
/// the next movement.
#[utoipa::path(
    put,
    path = "/v1/licences/{jurisdiction}",
    tag = "compliance",
    security(("bearer" = [])),
    params(("jurisdiction" = String, Path, description = "`US-CA`, a country code such as `GB`, `UNVERIFIED` or `DEFAULT`")),
    request_body = LicenceBody,
    responses(
        (status = 200, description = "The licence now in force", body = LicenceRow),
        (status = 400, description = "`invalid_body` or `jurisdiction_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn put_licence(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(jurisdiction): Path<String>,
    JsonBody(request): JsonBody<LicenceBody>,
) -> Result<Json<LicenceRow>, ApiError> {
    require_operator(&state, &headers)?;
    let jurisdiction =
        Jurisdiction::parse_key(&jurisdiction).ok_or_else(|| ApiError::InvalidField {
            code: "jurisdiction_invalid",
            field: "jurisdiction",
            detail: "a jurisdiction is US-XX, a two-letter country code, UNVERIFIED or DEFAULT"
                .to_owned(),
        })?;
    let licence = Licence {
        p2p: request.p2p,
        cashout: request.cashout,
        savings: request.savings,
        cards: request.cards,
    };
    let ledger = ledger(&state)?;
    licences::set_licence(
        &ledger,
        &crate::routes::cases::api_operator()?,
        &jurisdiction,
        licence,
        SystemClock.now_ns(),
    )
    .await?;
    Ok(Json(LicenceRow {
        jurisdiction: jurisdiction.as_str().to_owned(),
        licence: licence.into(),
    }))
}
