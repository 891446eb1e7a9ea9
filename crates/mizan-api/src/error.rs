//! [`ApiError`]: every error a client can see, as an RFC 9457 `application/problem+json`
//! body with a stable snake_case `code`. Internal detail is logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request")]
    BadRequest,
    #[error("no route matches the request path")]
    NotFound,
    #[error("the route does not accept this method")]
    MethodNotAllowed,
    #[error("request body larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("unsupported request content type")]
    UnsupportedMediaType,
    #[error("request body could not be processed")]
    UnprocessableEntity,
    #[error("not ready: {reason}")]
    NotReady { reason: &'static str },
    #[error("internal error")]
    Internal,
    #[error("the body is not a JSON object of the expected fields")]
    InvalidBody,
    /// A field of the body failed to parse; `code` is the domain error's code.
    #[error("{detail}")]
    InvalidField {
        code: &'static str,
        field: &'static str,
        detail: String,
    },
    /// A unique value (a handle, an e-mail) is taken.
    #[error("{detail}")]
    Conflict {
        code: &'static str,
        field: &'static str,
        detail: String,
    },
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error("missing, unknown, expired or revoked session")]
    Unauthenticated,
    #[error("too many requests; retry in {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    /// A use case refused the request (a payment, a funding): its own status and code.
    #[error("{detail}")]
    Refused {
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        field: Option<&'static str>,
        detail: String,
    },
    /// A movement refused by a limit, a licence or the verification tier; the
    /// problem carries which and, for a limit, when it resets.
    #[error("{detail}")]
    Compliance {
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: String,
        /// Boxed: it is rare, and `ApiError` stays small on every other path.
        extras: Box<ProblemExtras>,
    },
}

/// The members a compliance problem adds (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ProblemExtras {
    /// `limit_exceeded`: which limit (`daily_send`, `weekly_send`, `weekly_cashout`,
    /// `weekly_funding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// `limit_exceeded`: when the limit's window ends (RFC 3339 UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    /// `capability_unavailable`: the person's jurisdiction (`US-CA`, `GB`, `UNVERIFIED`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// `capability_unavailable`: `p2p`, `cashout`, `savings` or `cards`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// `verification_required`: the tier needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier_required: Option<u8>,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:mizan:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Stable snake_case code clients branch on.
    pub code: String,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The request body field the problem is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(flatten)]
    pub extras: ProblemExtras,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::UnprocessableEntity => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InvalidBody | ApiError::InvalidField { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::InvalidCredentials | ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Refused { status, .. } | ApiError::Compliance { status, .. } => *status,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The stable code; never change one once published.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest => "bad_request",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::UnprocessableEntity => "unprocessable_entity",
            ApiError::NotReady { .. } => "not_ready",
            ApiError::Internal => "internal_error",
            ApiError::InvalidBody => "invalid_body",
            ApiError::InvalidField { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Refused { code, .. }
            | ApiError::Compliance { code, .. } => code,
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::RateLimited { .. } => "rate_limited",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            ApiError::BadRequest => "Bad request",
            ApiError::NotFound => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::UnprocessableEntity => "Unprocessable entity",
            ApiError::NotReady { .. } => "Service not ready",
            ApiError::Internal => "Internal error",
            ApiError::InvalidBody => "Invalid body",
            ApiError::InvalidField { .. } => "Invalid field",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::InvalidCredentials => "Invalid credentials",
            ApiError::Unauthenticated => "Unauthenticated",
            ApiError::Refused { title, .. } | ApiError::Compliance { title, .. } => title,
            ApiError::RateLimited { .. } => "Too many requests",
        }
    }

    /// The body field the error is about, if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::InvalidField { field, .. } | ApiError::Conflict { field, .. } => Some(field),
            ApiError::Refused { field, .. } => *field,
            ApiError::BadRequest
            | ApiError::NotFound
            | ApiError::MethodNotAllowed
            | ApiError::PayloadTooLarge { .. }
            | ApiError::UnsupportedMediaType
            | ApiError::UnprocessableEntity
            | ApiError::NotReady { .. }
            | ApiError::Internal
            | ApiError::InvalidBody
            | ApiError::InvalidCredentials
            | ApiError::Unauthenticated
            | ApiError::Compliance { .. }
            | ApiError::RateLimited { .. } => None,
        }
    }

    /// The error a bare framework response with this status stands for (axum's own
    /// 405s, the body limit's 413s, extractor rejections), if it is one we rewrite.
    pub fn from_status(status: StatusCode, limit_bytes: usize) -> Option<ApiError> {
        match status {
            StatusCode::BAD_REQUEST => Some(ApiError::BadRequest),
            StatusCode::NOT_FOUND => Some(ApiError::NotFound),
            StatusCode::METHOD_NOT_ALLOWED => Some(ApiError::MethodNotAllowed),
            StatusCode::PAYLOAD_TOO_LARGE => Some(ApiError::PayloadTooLarge { limit_bytes }),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(ApiError::UnsupportedMediaType),
            StatusCode::UNPROCESSABLE_ENTITY => Some(ApiError::UnprocessableEntity),
            StatusCode::INTERNAL_SERVER_ERROR => Some(ApiError::Internal),
            _ => None,
        }
    }

    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:mizan:problem:{}", self.code()),
            title: self.title().to_owned(),
            status: self.status().as_u16(),
            code: self.code().to_owned(),
            detail: self.to_string(),
            field: self.field().map(str::to_owned),
            extras: match self {
                ApiError::Compliance { extras, .. } => extras.as_ref().clone(),
                _ => ProblemExtras::default(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let ApiError::RateLimited { retry_after_s } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if self == ApiError::Unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_fields() {
        let problem = ApiError::NotFound.problem();
        assert_eq!(problem.status, 404);
        assert_eq!(problem.code, "not_found");
        assert_eq!(problem.problem_type, "urn:mizan:problem:not_found");
        let json = serde_json::to_value(&problem).unwrap();
        for field in ["type", "title", "status", "code", "detail"] {
            assert!(json.get(field).is_some(), "{field} missing");
        }
    }

    #[test]
    fn codes_are_snake_case() {
        let all = [
            ApiError::BadRequest,
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::PayloadTooLarge { limit_bytes: 1 },
            ApiError::UnsupportedMediaType,
            ApiError::UnprocessableEntity,
            ApiError::Internal,
        ];
        for error in all {
            let code = error.code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert_eq!(ApiError::from_status(error.status(), 1), Some(error));
        }
        assert_eq!(ApiError::NotReady { reason: "x" }.code(), "not_ready");
        for error in [
            ApiError::InvalidBody,
            ApiError::InvalidCredentials,
            ApiError::Unauthenticated,
        ] {
            let code = error.code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
    }
}
