//! Account history for SQLite, kept off the commit path.
//!
//! Indexing each transfer under its two accounts inside the ledger's commit costs
//! two random B-tree inserts per transfer, and SQLite's WAL logs every page they
//! dirty: the commit path slows as the index grows. Instead, transfers are written
//! append-only, and an indexer thread builds the history index afterwards, in
//! immutable *segments*: each one covers a contiguous range of timestamps and is
//! written once, in sorted order, into a fresh table of its own in a separate
//! database file (`<ledger>.history`) — so it never takes the ledger's write lock.
//! Segments are merged in the background (eight of one level make one of the next),
//! keeping the number a query probes small.
//!
//! A query reads the indexed part from the segments and the not-yet-indexed tail
//! (transfers after the watermark) straight from the transfers table, so it is
//! always complete, whatever the indexer's lag.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mizan_ledger::StoreError;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::database_error;

/// Tuning of the history indexer.
#[derive(Debug, Clone, Copy)]
pub struct HistoryConfig {
    /// Most transfers in one freshly built segment.
    pub segment_transfers_max: usize,
    /// An unindexed tail smaller than this waits (up to `tail_wait_ms`) to grow.
    pub segment_transfers_min: usize,
    pub tail_wait_ms: u64,
    /// How many segments of one level are merged into one of the next.
    pub merge_fan_in: usize,
    /// Segments of this level are never merged further.
    pub level_max: i64,
    /// Pause when there is nothing to index.
    pub idle_sleep_ms: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            segment_transfers_max: 65_536,
            segment_transfers_min: 8_192,
            tail_wait_ms: 250,
            merge_fan_in: 8,
            // Level 1 holds 8 × 64k transfers; merging those again would sort
            // millions of entries at once, so at 5M transfers a query probes ~17.
            level_max: 1,
            idle_sleep_ms: 25,
        }
    }
}

/// The history database next to a ledger file.
pub fn history_path(ledger_path: &Path) -> PathBuf {
    let mut name = ledger_path.as_os_str().to_owned();
    name.push(".history");
    PathBuf::from(name)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_until INTEGER NOT NULL,
    next_segment INTEGER NOT NULL
);
INSERT OR IGNORE INTO history_meta (id, indexed_until, next_segment) VALUES (1, 0, 1);
CREATE TABLE IF NOT EXISTS history_segments (
    segment INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    from_timestamp INTEGER NOT NULL,
    to_timestamp INTEGER NOT NULL,
    entries INTEGER NOT NULL
);";

pub fn segment_table(segment: i64) -> String {
    format!("history_segment_{segment}")
}

/// Creates the history database if needed.
pub fn create(ledger_path: &Path) -> Result<(), StoreError> {
    let connection = Connection::open(history_path(ledger_path)).map_err(database_error)?;
    connection
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(database_error)?;
    connection.execute_batch(SCHEMA).map_err(database_error)
}

/// One row of a segment: a transfer's timestamp under one of its accounts.
type Entry = ([u8; 16], i64, i64);

/// The background indexer; stops (and is joined) when dropped.
pub struct Indexer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    pub fn start(ledger_path: &Path, config: HistoryConfig) -> Result<Indexer, StoreError> {
        let ledger = Connection::open_with_flags(
            ledger_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(database_error)?;
        ledger
            .execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(database_error)?;
        let history = Connection::open(history_path(ledger_path)).map_err(database_error)?;
        history
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -262144;")
            .map_err(database_error)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mizan-history-indexer".into())
            .spawn(move || run(ledger, history, config, &flag))
            .map_err(|error| StoreError::Database(error.to_string()))?;
        Ok(Indexer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(ledger: Connection, mut history: Connection, config: HistoryConfig, stop: &AtomicBool) {
    let mut tail_seen_at: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        match index_once(&ledger, &mut history, &config, &mut tail_seen_at) {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(Duration::from_millis(config.idle_sleep_ms)),
            Err(error) => {
                // The tail stays queryable from the transfers table; try again later.
                tracing::error!(%error, "history indexer failed; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

/// Builds one segment or merges one level; false when there was nothing to do.
fn index_once(
    ledger: &Connection,
    history: &mut Connection,
    config: &HistoryConfig,
    tail_seen_at: &mut Option<Instant>,
) -> Result<bool, StoreError> {
    if merge_one_level(history, config)? {
        return Ok(true);
    }
    let (indexed_until, next_segment): (i64, i64) = history
        .query_row(
            "SELECT indexed_until, next_segment FROM history_meta WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(database_error)?;
    let limit = i64::try_from(config.segment_transfers_max).unwrap_or(i64::MAX);
    let mut statement = ledger
        .prepare_cached(
            "SELECT timestamp, debit_account_id, credit_account_id, code FROM transfers \
             WHERE timestamp > ?1 ORDER BY timestamp LIMIT ?2",
        )
        .map_err(database_error)?;
    let mut rows = statement
        .query(params![indexed_until, limit])
        .map_err(database_error)?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut last = indexed_until;
    while let Some(row) = rows.next().map_err(database_error)? {
        let timestamp: i64 = row.get(0).map_err(database_error)?;
        let debit: Vec<u8> = row.get(1).map_err(database_error)?;
        let credit: Vec<u8> = row.get(2).map_err(database_error)?;
        let code: i64 = row.get(3).map_err(database_error)?;
        for account in [debit, credit] {
            let account: [u8; 16] = account
                .try_into()
                .map_err(|_| StoreError::Corrupt("account id is not 16 bytes".into()))?;
            entries.push((account, timestamp, code));
        }
        last = timestamp;
    }
    drop(rows);
    if entries.is_empty() {
        *tail_seen_at = None;
        return Ok(false);
    }
    let transfers = entries.len() / 2;
    let waited = tail_seen_at.get_or_insert_with(Instant::now).elapsed();
    if transfers < config.segment_transfers_min
        && waited < Duration::from_millis(config.tail_wait_ms)
    {
        return Ok(false);
    }
    *tail_seen_at = None;
    entries.sort_unstable();
    let transaction = history.transaction().map_err(database_error)?;
    write_segment(&transaction, next_segment, &entries)?;
    transaction
        .execute(
            "INSERT INTO history_segments (segment, level, from_timestamp, to_timestamp, entries) VALUES (?1, 0, ?2, ?3, ?4)",
            params![next_segment, indexed_until + 1, last, entries.len() as i64],
        )
        .map_err(database_error)?;
    transaction
        .execute(
            "UPDATE history_meta SET indexed_until = ?1, next_segment = ?2 WHERE id = 1",
            params![last, next_segment + 1],
        )
        .map_err(database_error)?;
    transaction.commit().map_err(database_error)?;
    Ok(true)
}

/// Creates a segment table and fills it with `entries`, which must be sorted.
fn write_segment(
    connection: &Connection,
    segment: i64,
    entries: &[Entry],
) -> Result<(), StoreError> {
    let table = segment_table(segment);
    connection
        .execute_batch(&format!(
            "CREATE TABLE {table} (account_id BLOB NOT NULL, timestamp INTEGER NOT NULL, code INTEGER NOT NULL, \
             PRIMARY KEY (account_id, timestamp)) WITHOUT ROWID"
        ))
        .map_err(database_error)?;
    const ROWS_PER_STATEMENT: usize = 256;
    for chunk in super::statement_chunks(entries, ROWS_PER_STATEMENT) {
        let placeholders = vec!["(?,?,?)"; chunk.len()].join(",");
        let mut statement = connection
            .prepare_cached(&format!(
                "INSERT INTO {table} (account_id, timestamp, code) VALUES {placeholders}"
            ))
            .map_err(database_error)?;
        for (index, (account, timestamp, code)) in chunk.iter().enumerate() {
            statement
                .raw_bind_parameter(index * 3 + 1, &account[..])
                .map_err(database_error)?;
            statement
                .raw_bind_parameter(index * 3 + 2, timestamp)
                .map_err(database_error)?;
            statement
                .raw_bind_parameter(index * 3 + 3, code)
                .map_err(database_error)?;
        }
        statement.raw_execute().map_err(database_error)?;
    }
    Ok(())
}

/// Merges the oldest `merge_fan_in` segments of the lowest level that has that many.
fn merge_one_level(history: &mut Connection, config: &HistoryConfig) -> Result<bool, StoreError> {
    let level: Option<i64> = history
        .query_row(
            "SELECT level FROM history_segments WHERE level < ?1 GROUP BY level HAVING count(*) >= ?2 ORDER BY level LIMIT 1",
            params![config.level_max, config.merge_fan_in as i64],
            |row| row.get(0),
        )
        .optional()
        .map_err(database_error)?;
    let Some(level) = level else { return Ok(false) };
    let mut statement = history
        .prepare("SELECT segment, from_timestamp, to_timestamp FROM history_segments WHERE level = ?1 ORDER BY from_timestamp LIMIT ?2")
        .map_err(database_error)?;
    let parts: Vec<(i64, i64, i64)> = statement
        .query_map(params![level, config.merge_fan_in as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map_err(database_error)?
        .collect::<Result<_, _>>()
        .map_err(database_error)?;
    drop(statement);
    let mut entries: Vec<Entry> = Vec::new();
    for (segment, _, _) in &parts {
        let mut read = history
            .prepare(&format!(
                "SELECT account_id, timestamp, code FROM {} ORDER BY account_id, timestamp",
                segment_table(*segment)
            ))
            .map_err(database_error)?;
        let mut rows = read.query([]).map_err(database_error)?;
        while let Some(row) = rows.next().map_err(database_error)? {
            let account: Vec<u8> = row.get(0).map_err(database_error)?;
            let account: [u8; 16] = account
                .try_into()
                .map_err(|_| StoreError::Corrupt("segment account id".into()))?;
            entries.push((
                account,
                row.get(1).map_err(database_error)?,
                row.get(2).map_err(database_error)?,
            ));
        }
    }
    entries.sort_unstable();
    let from = parts.iter().map(|p| p.1).min().unwrap_or(0);
    let to = parts.iter().map(|p| p.2).max().unwrap_or(0);
    let transaction = history.transaction().map_err(database_error)?;
    let segment: i64 = transaction
        .query_row(
            "SELECT next_segment FROM history_meta WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .map_err(database_error)?;
    write_segment(&transaction, segment, &entries)?;
    for (old, _, _) in &parts {
        transaction
            .execute_batch(&format!(
                "DROP TABLE {}; DELETE FROM history_segments WHERE segment = {old};",
                segment_table(*old)
            ))
            .map_err(database_error)?;
    }
    transaction
        .execute(
            "INSERT INTO history_segments (segment, level, from_timestamp, to_timestamp, entries) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![segment, level + 1, from, to, entries.len() as i64],
        )
        .map_err(database_error)?;
    transaction
        .execute(
            "UPDATE history_meta SET next_segment = ?1 WHERE id = 1",
            params![segment + 1],
        )
        .map_err(database_error)?;
    transaction.commit().map_err(database_error)?;
    Ok(true)
}

/// The watermark and the segments overlapping `[lower, upper]`, read from the
/// reader's attached `history` schema.
pub fn segments(
    connection: &Connection,
    lower: i64,
    upper: i64,
) -> Result<(i64, Vec<i64>), StoreError> {
    let indexed_until: i64 = connection
        .query_row(
            "SELECT indexed_until FROM history.history_meta WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .map_err(database_error)?;
    let mut statement = connection
        .prepare_cached(
            "SELECT segment FROM history.history_segments WHERE to_timestamp >= ?1 AND from_timestamp <= ?2 ORDER BY from_timestamp",
        )
        .map_err(database_error)?;
    let segments = statement
        .query_map(params![lower, upper], |row| row.get(0))
        .map_err(database_error)?
        .collect::<Result<Vec<i64>, _>>()
        .map_err(database_error)?;
    Ok((indexed_until, segments))
}
