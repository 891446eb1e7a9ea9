//! The periodic transaction-monitoring scan (`monitoring_scan_seconds`); the rules
//! and the scan itself are in `mizan_compliance::monitoring` and
//! `mizan_app::monitoring`.

use std::time::Duration;

use mizan_core::{Clock, SystemClock};
use tokio::sync::watch;

use crate::state::AppState;

/// Runs the transaction-monitoring scan of everyone every `monitoring_scan_seconds`
/// (docs/COMPLIANCE.md) until `stop` flips; 0 runs none. A scan holds a writer
/// handle only while it runs, so shutdown waits for at most the scan in progress.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let seconds = state.config().monitoring_scan_seconds;
    if seconds == 0 {
        return;
    }
    let interval = Duration::from_secs(seconds);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(interval) => {}
        }
        if *stop.borrow() {
            return;
        }
        let Some(ledger) = state.ledger() else {
            return;
        };
        let now_ns = SystemClock.now_ns();
        let scanned = mizan_app::monitoring::scan_all(
            &ledger,
            &state.reader(),
            &state.config().monitoring,
            now_ns,
        )
        .await;
        drop(ledger);
        match scanned {
            Ok(report) => tracing::info!(
                people = report.people,
                cases_opened = report.cases_opened,
                "periodic monitoring scan"
            ),
            Err(error) => tracing::error!(%error, "periodic monitoring scan failed"),
        }
    }
}
