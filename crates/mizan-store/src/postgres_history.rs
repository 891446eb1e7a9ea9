//! Account history for PostgreSQL, kept off the commit path.
//!
//! The writer appends transfers only. This indexer, on a connection (and so a
//! server process, and a core) of its own, copies each new transfer's two
//! (account, timestamp, code) entries into `account_history` and advances
//! `history_watermark` in the same transaction: after a crash it resumes where the
//! watermark says. Several `mizan` processes may each run one: the watermark row
//! lock lets one at a time advance it. Queries read `account_history` up to the
//! watermark and the transfers after it (see `history_sql` in `postgres.rs`).
//!
//! Transfers commit in timestamp order (every writer holds the chain-head lock), so
//! every transfer at or before the newest committed timestamp is visible: the
//! indexer never skips one that commits later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use postgres::{Client, NoTls};

/// Most transfers indexed in one transaction.
const INDEX_TRANSFERS_MAX: i64 = 100_000;
/// Pause when there is nothing to index, or after an error.
const IDLE_SLEEP_MS: u64 = 20;
const ERROR_SLEEP_MS: u64 = 500;

/// The background indexer; stops (and is joined) when dropped.
pub struct HistoryIndexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HistoryIndexer {
    pub fn start(url: &str) -> HistoryIndexer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let url = url.to_owned();
        let thread = std::thread::Builder::new()
            .name("mizan-pg-history".into())
            .spawn(move || run(&url, &flag))
            .map_err(|error| tracing::error!(%error, "could not start the history indexer"))
            .ok();
        HistoryIndexer { stop, thread }
    }
}

impl Drop for HistoryIndexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(url: &str, stop: &AtomicBool) {
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::SeqCst) {
        let connected = match client.take() {
            Some(existing) if !existing.is_closed() => Ok(existing),
            _ => Client::connect(url, NoTls),
        };
        let pause = match connected {
            Ok(mut connection) => {
                let outcome = index_once(&mut connection);
                client = Some(connection);
                match outcome {
                    Ok(true) => 0,
                    Ok(false) => IDLE_SLEEP_MS,
                    Err(error) => {
                        tracing::error!(%error, "history indexer failed; retrying");
                        ERROR_SLEEP_MS
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "history indexer cannot connect; retrying");
                ERROR_SLEEP_MS
            }
        };
        if pause > 0 {
            std::thread::sleep(Duration::from_millis(pause));
        }
    }
}

/// Indexes the next run of transfers; false when there was none.
fn index_once(client: &mut Client) -> Result<bool, postgres::Error> {
    let mut transaction = client.transaction()?;
    let indexed_until: i64 = transaction
        .query_one(
            "SELECT indexed_until FROM history_watermark WHERE id = 1 FOR UPDATE",
            &[],
        )?
        .get(0);
    let upto: Option<i64> = transaction
        .query_one(
            "SELECT max(timestamp) FROM (SELECT timestamp FROM transfers WHERE timestamp > $1 \
             ORDER BY timestamp LIMIT $2) AS next",
            &[&indexed_until, &INDEX_TRANSFERS_MAX],
        )?
        .get(0);
    let Some(upto) = upto else {
        transaction.commit()?;
        return Ok(false);
    };
    // Sorted, so the inserts walk the primary key in order.
    transaction.execute(
        "INSERT INTO account_history (account_id, timestamp, code) \
         SELECT account_id, timestamp, code FROM ( \
           SELECT debit_account_id AS account_id, timestamp, code FROM transfers WHERE timestamp > $1 AND timestamp <= $2 \
           UNION ALL \
           SELECT credit_account_id, timestamp, code FROM transfers WHERE timestamp > $1 AND timestamp <= $2 \
         ) AS entries ORDER BY account_id, timestamp",
        &[&indexed_until, &upto],
    )?;
    transaction.execute(
        "UPDATE history_watermark SET indexed_until = $1 WHERE id = 1",
        &[&upto],
    )?;
    transaction.commit()?;
    Ok(true)
}
