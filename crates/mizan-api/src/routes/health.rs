//! `GET /healthz` (the process answers) and `GET /readyz` (it can take ledger work).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// Always `ok`.
    pub status: String,
}

fn ok() -> Json<Status> {
    Json(Status {
        status: "ok".to_owned(),
    })
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The server is up", body = Status))
)]
pub async fn healthz() -> Json<Status> {
    ok()
}

/// Readiness: the ledger writer runs, its queue has room and the store answers a read.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready for ledger work", body = Status),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    state
        .readiness()
        .await
        .map(|()| ok())
        .map_err(|reason| ApiError::NotReady { reason })
}
