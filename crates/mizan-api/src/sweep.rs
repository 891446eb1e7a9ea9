//! The idempotency-key sweep, run by `mizan serve`: every
//! [`SWEEP_INTERVAL_SECONDS`] it walks the claims once, page by page, deleting those
//! made more than 24 hours ago (`mizan_app::payments::sweep_expired_claims` says
//! which, and why an unresolved processor intent's stays), so the store does not
//! keep every key for good.

use std::time::Duration;

use mizan_app::payments::sweep_expired_claims;
use mizan_core::{Clock, SystemClock};
use tokio::sync::watch;

use crate::state::AppState;

/// Pause between two walks over the claims.
pub const SWEEP_INTERVAL_SECONDS: u64 = 600;
/// Pause between two pages of one walk, so the sweep never crowds out requests.
const PAGE_PAUSE: Duration = Duration::from_millis(50);

/// Walks the claims once; answers how many it deleted.
async fn walk(state: &AppState, stop: &watch::Receiver<bool>) -> Result<usize, String> {
    let mut after = None;
    let mut deleted = 0;
    loop {
        if *stop.borrow() {
            return Ok(deleted);
        }
        let Some(ledger) = state.ledger() else {
            return Ok(deleted);
        };
        let (next, swept) =
            sweep_expired_claims(&ledger, &state.reader(), after, SystemClock.now_ns())
                .await
                .map_err(|error| error.to_string())?;
        drop(ledger);
        deleted += swept;
        match next {
            Some(key) => after = Some(key),
            None => return Ok(deleted),
        }
        tokio::time::sleep(PAGE_PAUSE).await;
    }
}

/// Runs the sweep until `stop` flips. A walk holds a writer handle only for a page.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs(SWEEP_INTERVAL_SECONDS);
    loop {
        match walk(&state, &stop).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired idempotency keys swept"),
            Err(error) => tracing::error!(%error, "sweeping idempotency keys failed"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}
