//! Checkpoints the ledger's WAL from a thread of its own.
//!
//! A checkpoint copies the WAL's pages into the database file. SQLite's automatic
//! checkpoint does it inside the writer's `COMMIT` once the WAL holds
//! `WAL_AUTOCHECKPOINT_PAGES`: at thousands of payments a second that is every few
//! seconds, and copying up to 100,000 pages there stalls every caller of the batch.
//!
//! This thread runs a `PASSIVE` checkpoint every [`CHECKPOINT_INTERVAL_MS`] on a
//! connection of its own. A passive checkpoint takes no write lock, so the writer
//! never waits for it; it flushes the WAL before copying and the database file after,
//! as SQLite's own does. Under a steady stream of commits the WAL is rarely copied to
//! its very end when the writer begins a batch, so it still only starts over at the
//! writer's automatic checkpoint; but by then nearly every page is copied, and that
//! checkpoint has little left to do.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mizan_ledger::StoreError;
use rusqlite::Connection;

use super::database_error;

/// Pause between two checkpoints.
pub const CHECKPOINT_INTERVAL_MS: u64 = 200;
/// How often a sleeping checkpointer looks whether it should stop.
const STOP_POLL_MS: u64 = 20;

pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(ledger_path: &Path) -> Result<Checkpointer, StoreError> {
        let connection = Connection::open(ledger_path).map_err(database_error)?;
        connection
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(database_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mizan-checkpoint".into())
            .spawn(move || run(&connection, &flag))
            .map_err(|error| StoreError::Database(error.to_string()))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(connection: &Connection, stop: &AtomicBool) {
    let mut slept_ms = 0;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
        slept_ms += STOP_POLL_MS;
        if slept_ms < CHECKPOINT_INTERVAL_MS {
            continue;
        }
        slept_ms = 0;
        // (busy, frames in the WAL, frames copied): a busy or partial checkpoint
        // is fine, the next one goes on from there.
        let outcome = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        });
        if let Err(error) = outcome {
            tracing::warn!(%error, "checkpointing the ledger's WAL failed; retrying");
        }
    }
}
