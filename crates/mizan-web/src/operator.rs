//! The operator console (being written).
use axum::Router;
use mizan_api::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
