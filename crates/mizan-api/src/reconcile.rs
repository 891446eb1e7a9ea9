//! The reconciler of processor intents, run by `mizan serve` once at start and then
//! every [`RECONCILE_INTERVAL_SECONDS`]; what it does is in `mizan_app::reconcile`.

use std::time::Duration;

use mizan_app::reconcile::{Rails, RECONCILE_INTERVAL_SECONDS};
use mizan_core::{Clock, SystemClock};
use tokio::sync::watch;

use crate::state::AppState;

/// Finishes the fundings and cash-outs a crash left open, at start and then
/// periodically, until `stop` flips. A run holds a writer handle only while it
/// runs, so shutdown waits for at most the run in progress.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let interval = Duration::from_secs(RECONCILE_INTERVAL_SECONDS);
    loop {
        if *stop.borrow() {
            return;
        }
        let (Some(ledger), Some(vault)) = (state.ledger(), state.vault()) else {
            return;
        };
        let (processor, payouts) = (state.processor(), state.payouts());
        let rails = Rails {
            processor: processor.as_ref(),
            payouts: payouts.as_ref(),
            vault: &vault,
        };
        let reconciled =
            mizan_app::reconcile::reconcile(&ledger, &state.reader(), rails, SystemClock.now_ns())
                .await;
        drop(ledger);
        if let Err(error) = reconciled {
            tracing::error!(%error, "reconciling open intents failed");
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
