//! The Mizan HTTP API on axum: the server skeleton later endpoints plug into.
//!
//! - [`config`]: [`ServerConfig`] from defaults, an optional TOML file and the environment.
//! - [`error`]: [`ApiError`], answered as `application/problem+json`.
//! - [`state`]: [`AppState`], which owns the ledger writer for the server's lifetime.
//! - [`idempotency`]: `Idempotency-Key` around the routes that act on something.
//! - [`metrics`]: Prometheus metrics for HTTP and the ledger.
//! - [`routes`]: `/healthz`, `/readyz`, `/metrics`, `/v1/openapi.json`, `/v1/docs`.
//! - [`webhooks`]: the worker that delivers outbox events to apps' endpoints.
//! - [`server`]: the router and [`serve`], shared by the `mizan serve` binary and tests.

pub mod config;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod monitoring;
pub mod rate_limit;
pub mod reconcile;
pub mod routes;
pub mod server;
pub mod state;
pub mod sweep;
pub mod telemetry;
pub mod webhooks;

pub use config::{LogFormat, ServerConfig};
pub use error::{ApiError, Problem};
pub use server::{router, router_with, serve, serve_router, shutdown_signal, ServeError};
pub use state::{AppState, StateError};
