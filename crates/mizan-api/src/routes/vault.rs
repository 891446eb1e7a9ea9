//! The caller's saved cards (`GET /v1/me/cards`, `DELETE /v1/me/cards/{id}`) and
//! the erasure of their personal data (`POST /v1/me/erase`). Card numbers live in
//! the vault only; these routes see tokens and last 4 digits.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use mizan_app::time::rfc3339_from_ns;
use mizan_app::vault::{self, SavedCard};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::routes::apps::session_person;
use crate::routes::identity::{ledger, vault as shared_vault};
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardBody {
    /// The card's id (its vault token): fund from it with `card_id`.
    pub id: String,
    pub last4: String,
    /// The default card is charged for renewals; at most one card is default.
    pub default: bool,
    /// RFC 3339 UTC.
    pub saved_at: String,
}

impl From<SavedCard> for CardBody {
    fn from(card: SavedCard) -> CardBody {
        CardBody {
            id: card.id,
            last4: card.last4,
            default: card.default,
            saved_at: rfc3339_from_ns(card.saved_at_ns),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardsBody {
    /// The default card first.
    pub cards: Vec<CardBody>,
}

/// The caller's saved cards (last 4 digits only), the default first.
#[utoipa::path(
    get,
    path = "/v1/me/cards",
    tag = "payments",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The saved cards", body = CardsBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_cards(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<CardsBody>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let cards = vault::saved_cards(&state.reader(), person.id).await?;
    Ok(Json(CardsBody {
        cards: cards.into_iter().map(CardBody::from).collect(),
    }))
}

/// Forgets one of the caller's saved cards. If it was the default, the oldest
/// remaining card becomes the default.
#[utoipa::path(
    delete,
    path = "/v1/me/cards/{id}",
    tag = "payments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The card's id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`card_not_found`, also for another person's card", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn delete_card(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let person = session_person(&state, &headers).await?;
    let ledger = ledger(&state)?;
    vault::delete_saved_card(&ledger, &state.reader(), person.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErasureBody {
    /// False when the caller's personal data had been erased already.
    pub erased_now: bool,
}

/// Erases the caller's personal data by crypto-shredding: their vault data key is
/// deleted, so their legal name, date of birth, address, SSN last 4, document
/// numbers, card and bank numbers can never be read again, and their saved cards are
/// forgotten. The ledger's money history stays, intact and verifiable. Cannot be
/// undone; new personal data for the person is refused afterwards (`person_erased`).
#[utoipa::path(
    post,
    path = "/v1/me/erase",
    tag = "identity",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Erased (or already erased)", body = ErasureBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn erase(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ErasureBody>, ApiError> {
    let person = session_person(&state, &headers).await?;
    let ledger = ledger(&state)?;
    let shared = shared_vault(&state)?;
    let erased_now = vault::erase(&ledger, &shared, person.id).await?;
    tracing::info!(person = %person.id, erased_now, "personal data erased");
    Ok(Json(ErasureBody { erased_now }))
}
