//! The SQLite store: Mizan's embedded default.
//!
//! One file in the data directory, in WAL mode. The ledger writer commits with
//! `synchronous=NORMAL` and flushes the WAL itself, on a thread of its own, before it
//! replies ([`WalSync`]): a batch is durable when the writer replies, as with
//! `FULL`, and the flush of one batch overlaps the work of the next. A lock file
//! next to the database makes this process its only writer, which lets the ledger
//! writer keep balances in memory. Readers open their own connections and see every
//! committed batch (up to one flush before it is durable).

use std::fs::File;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;
use mizan_core::{AccountId, TransferId};
use mizan_ledger::store::{
    BalanceReplay, BatchWrites, BusinessRow, HistoryFilter, HistoryPage, TransferVisitor,
    HISTORY_PAGE_LIMIT_MAX, LOOKUP_IDS_MAX,
};
use mizan_ledger::{
    Account, AccountCode, AccountFlags, Balances, ChainHead, LedgerReader, LedgerStore,
    PendingStatus, StoreError, Transfer, TransferFlags,
};
use rustc_hash::FxHashMap;
mod balances;
mod checkpoint;
mod history;

pub use balances::BalanceFlush;
pub use history::{history_path, HistoryConfig};

/// Tuning of the SQLite store's background work.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteConfig {
    pub history: HistoryConfig,
    pub balance_flush: BalanceFlush,
}

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_ledger.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_hot_balances.sql"),
    ),
];

/// Rows per multi-row INSERT: 12 columns × 512 rows stays under SQLite's variable limit.
const INSERT_ROWS_MAX: usize = 512;
/// Rows per multi-row account UPDATE (6 values each).
const UPDATE_ROWS_MAX: usize = 1_024;
/// The writer's page cache, in KiB (negative `cache_size` means KiB). Small on
/// purpose: when a B-tree split reorders sibling pages, SQLite parks a page at the
/// locking page's number (1 GiB / page size) for a moment, and at the end of that
/// transaction it then walks its whole page cache to drop pages past the end of the
/// file. With random keys (idempotency claims, notifications) nearly every commit
/// splits a page somewhere, so the walk ran every commit: with 1 GiB of cache it was
/// a quarter of the writer's CPU. The writer's hot pages are the right edges of
/// append-only trees and the interior pages; misses are read from the OS's cache.
const WRITER_CACHE_KIB: i64 = 16_384;
/// Page cache per reader connection, in KiB.
const READER_CACHE_KIB: i64 = 262_144;
/// Memory-mapped bytes of the database file per reader. A reader's page cache is
/// dropped whenever the writer commits (SQLite resets it when the WAL changed), so
/// without a map every read after a commit copies its pages in again.
const READER_MMAP_BYTES: i64 = 1 << 30;
/// Memory-mapped bytes of the database file for the writer: pages it only reads on
/// the way to the ones it changes come from the map instead of its page cache.
/// Measured: 7,380 -> 8,423 payments/s over HTTP.
const WRITER_MMAP_BYTES: i64 = 1 << 30;
/// WAL pages before the automatic checkpoint inside a commit, which also lets the
/// WAL start over. Large, because each one stalls that commit: measured with 4,096,
/// payments over HTTP fell from ~8,100/s to ~6,500/s and their p99 rose from 18 to
/// 48 ms. The [`checkpoint::Checkpointer`] thread has copied nearly everything by then.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 100_000;
/// Rows fetched per step while scanning all transfers.
const SCAN_PAGE_ROWS: i64 = 10_000;

/// Splits `rows` into runs for multi-row statements: full runs of `max`, then the
/// rest in powers of two. Each distinct run length is its own prepared statement, so
/// this keeps them to a handful (small batches would otherwise prepare a new one
/// for every length and thrash the statement cache).
pub(crate) fn statement_chunks<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    assert!(max.is_power_of_two());
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = if rest.len() >= max {
            max
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(take);
        rest = tail;
        Some(chunk)
    })
}

fn database_error(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn id_bytes(id: u128) -> [u8; 16] {
    id.to_be_bytes()
}

fn optional_id(id: u128) -> Option<[u8; 16]> {
    (id != 0).then(|| id.to_be_bytes())
}

fn read_u128(row: &Row<'_>, index: usize) -> Result<u128, StoreError> {
    let bytes: Option<Vec<u8>> = row.get(index).map_err(database_error)?;
    match bytes {
        None => Ok(0),
        Some(bytes) => {
            let array: [u8; 16] = bytes
                .try_into()
                .map_err(|_| corrupt("id is not 16 bytes"))?;
            Ok(u128::from_be_bytes(array))
        }
    }
}

fn read_u64(row: &Row<'_>, index: usize) -> Result<u64, StoreError> {
    let value: i64 = row.get(index).map_err(database_error)?;
    u64::try_from(value).map_err(|_| corrupt("negative timestamp"))
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidQuery("timestamp out of range"))
}

const ACCOUNT_COLUMNS: &str = "id, ledger, code, owner, flags, debits_pending, debits_posted, \
     credits_pending, credits_posted, timestamp";

fn account_from_row(row: &Row<'_>) -> Result<Account, StoreError> {
    let get = |index| row.get::<_, i64>(index).map_err(database_error);
    let code = u16::try_from(get(2)?)
        .ok()
        .and_then(AccountCode::from_number);
    let flags = u16::try_from(get(4)?)
        .ok()
        .and_then(AccountFlags::from_bits);
    Ok(Account {
        id: AccountId::from_raw(read_u128(row, 0)?),
        ledger: u32::try_from(get(1)?).map_err(|_| corrupt("ledger out of range"))?,
        code: code.ok_or_else(|| corrupt("unknown account code"))?,
        owner: read_u128(row, 3)?,
        flags: flags.ok_or_else(|| corrupt("unknown account flags"))?,
        debits_pending: get(5)?,
        debits_posted: get(6)?,
        credits_pending: get(7)?,
        credits_posted: get(8)?,
        timestamp: read_u64(row, 9)?,
    })
}

const TRANSFER_COLUMNS: &str = "t.timestamp, t.id, t.debit_account_id, t.credit_account_id, \
     t.amount, t.pending_id, t.ledger, t.code, t.reference, t.flags, t.timeout_seconds, t.hash";

fn transfer_from_row(row: &Row<'_>) -> Result<Transfer, StoreError> {
    let get = |index| row.get::<_, i64>(index).map_err(database_error);
    let flags = u16::try_from(get(9)?)
        .ok()
        .and_then(TransferFlags::from_bits);
    let hash: Vec<u8> = row.get(11).map_err(database_error)?;
    Ok(Transfer {
        timestamp: read_u64(row, 0)?,
        id: TransferId::from_raw(read_u128(row, 1)?),
        debit_account_id: AccountId::from_raw(read_u128(row, 2)?),
        credit_account_id: AccountId::from_raw(read_u128(row, 3)?),
        amount: get(4)?,
        pending_id: TransferId::from_raw(read_u128(row, 5)?),
        ledger: u32::try_from(get(6)?).map_err(|_| corrupt("ledger out of range"))?,
        code: u16::try_from(get(7)?).map_err(|_| corrupt("code out of range"))?,
        reference: read_u128(row, 8)?,
        flags: flags.ok_or_else(|| corrupt("unknown transfer flags"))?,
        timeout_seconds: u32::try_from(get(10)?).map_err(|_| corrupt("timeout out of range"))?,
        hash: hash
            .try_into()
            .map_err(|_| corrupt("hash is not 32 bytes"))?,
    })
}

fn chain_head(connection: &Connection) -> Result<ChainHead, StoreError> {
    connection
        .query_row(
            "SELECT last_timestamp, last_hash, transfers_count FROM ledger_head WHERE id = 1",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .map_err(database_error)
        .and_then(|(timestamp, hash, count)| {
            Ok(ChainHead {
                last_timestamp: u64::try_from(timestamp).map_err(|_| corrupt("head timestamp"))?,
                last_hash: hash.try_into().map_err(|_| corrupt("head hash"))?,
                transfers_count: u64::try_from(count).map_err(|_| corrupt("head count"))?,
            })
        })
}

fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = OFF;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -{WRITER_CACHE_KIB};
             PRAGMA mmap_size = {WRITER_MMAP_BYTES};
             PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};
             PRAGMA busy_timeout = 5000;"
        ))
        .map_err(database_error)
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection
        .execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
        .map_err(database_error)?;
    for (version, sql) in MIGRATIONS {
        let transaction = connection.transaction().map_err(database_error)?;
        let applied: Option<i64> = transaction
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()
            .map_err(database_error)?;
        if applied.is_none() {
            transaction.execute_batch(sql).map_err(database_error)?;
            transaction
                .execute(
                    "INSERT INTO schema_migrations (version) VALUES (?1)",
                    [version],
                )
                .map_err(database_error)?;
        }
        transaction.commit().map_err(database_error)?;
    }
    Ok(())
}

/// Creates the ledger file at `path` whole: migrated in a file beside it, then
/// renamed into place. A process killed while creating leaves no file at `path` (a
/// reader would take a file without the ledger's tables for a broken ledger), and
/// the next start begins again. The caller holds the writer lock.
fn create_migrated(path: &Path) -> Result<(), StoreError> {
    let io = |what: &str, error: std::io::Error| {
        StoreError::Database(format!("{what} {}: {error}", path.display()))
    };
    let mut creating = path.as_os_str().to_owned();
    creating.push(".creating");
    let creating = PathBuf::from(creating);
    for suffix in ["", "-wal", "-shm"] {
        let mut leftover = creating.as_os_str().to_owned();
        leftover.push(suffix);
        match std::fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io("removing a half-created", error)),
        }
    }
    {
        let mut connection = Connection::open(&creating).map_err(database_error)?;
        configure(&connection)?;
        migrate(&mut connection)?;
        // Closing the last connection checkpoints the WAL into the file and removes it.
        connection
            .close()
            .map_err(|(_, error)| database_error(error))?;
    }
    File::open(&creating)
        .and_then(|file| file.sync_all())
        .map_err(|error| io("flushing the new", error))?;
    std::fs::rename(&creating, path).map_err(|error| io("moving into place the new", error))?;
    if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(directory)
            .and_then(|file| file.sync_all())
            .map_err(|error| io("flushing the directory of", error))?;
    }
    Ok(())
}

/// The writer's connection to a SQLite ledger file.
pub struct SqliteStore {
    connection: Connection,
    path: PathBuf,
    /// Transfer ids above this were never committed (ids are usually time-ordered),
    /// so `load_transfers` need not look them up. Only valid because this process is
    /// the file's only writer.
    max_transfer_id: u128,
    /// Each account's row key, for balance updates by slot.
    slots: FxHashMap<AccountId, i64>,
    /// Balances changed since the last flush (committed), newest value each.
    dirty: FxHashMap<AccountId, Account>,
    /// Balances the open transaction changes; merged into `dirty` on commit.
    batch_dirty: Vec<Account>,
    batch_transfers: u64,
    /// The open transaction flushes every balance (and so clears `dirty` on commit).
    batch_flushes: bool,
    transfers_since_flush: u64,
    /// Transfers each account took since its balance was last written (a flush or
    /// its own snapshot in `hot_balances`).
    entries_since_written: FxHashMap<AccountId, u64>,
    last_flush: std::time::Instant,
    balance_flush: BalanceFlush,
    _indexer: history::Indexer,
    _checkpointer: checkpoint::Checkpointer,
    // Held for the store's lifetime: the OS releases the lock when the process dies.
    _lock: File,
}

impl SqliteStore {
    /// Opens (creating if needed) the ledger at `path`, migrates it, and takes the
    /// writer lock. A second process opening the same file gets `StoreError::Locked`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SqliteConfig::default())
    }

    /// [`SqliteStore::open`] with chosen background-work settings.
    pub fn open_with(path: &Path, config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        let lock_path = path.with_extension("lock");
        let lock = File::create(&lock_path)
            .map_err(|error| StoreError::Database(format!("{}: {error}", lock_path.display())))?;
        match lock.try_lock_exclusive() {
            Ok(true) => {}
            Ok(false) => return Err(StoreError::Locked(path.display().to_string())),
            Err(error) => return Err(StoreError::Locked(format!("{}: {error}", path.display()))),
        }
        if !path.exists() {
            create_migrated(path)?;
        }
        let mut connection = Connection::open(path).map_err(database_error)?;
        connection.set_prepared_statement_cache_capacity(64);
        configure(&connection)?;
        migrate(&mut connection)?;
        history::create(path)?;
        let max_transfer_id = connection
            .query_row("SELECT max(id) FROM transfers", [], |row| {
                row.get::<_, Option<Vec<u8>>>(0)
            })
            .map_err(database_error)?
            .map(|bytes| bytes.try_into().map(u128::from_be_bytes))
            .transpose()
            .map_err(|_| corrupt("transfer id is not 16 bytes"))?
            .unwrap_or(0);
        let indexer = history::Indexer::start(path, config.history)?;
        let checkpointer = checkpoint::Checkpointer::start(path)?;
        let slots = load_slots(&connection)?;
        let mut store = SqliteStore {
            connection,
            path: path.to_owned(),
            max_transfer_id,
            slots,
            dirty: FxHashMap::default(),
            batch_dirty: Vec::new(),
            batch_transfers: 0,
            batch_flushes: false,
            transfers_since_flush: 0,
            entries_since_written: FxHashMap::default(),
            last_flush: std::time::Instant::now(),
            balance_flush: config.balance_flush,
            _indexer: indexer,
            _checkpointer: checkpointer,
            _lock: lock,
        };
        store.recover_balances()?;
        Ok(store)
    }

    /// After a crash the accounts table may lag the transfers: the writer's dirty set
    /// died with it. Bring every stored balance up to the chain head now, so later
    /// flushes (which write only what changed since) leave no account behind.
    fn recover_balances(&mut self) -> Result<(), StoreError> {
        let head = chain_head(&self.connection)?;
        let as_of = u64::try_from(balances_as_of(&self.connection)?).unwrap_or(0);
        if as_of >= head.last_timestamp {
            return Ok(());
        }
        let stored: FxHashMap<AccountId, Account> = all_accounts(&self.connection)?
            .into_iter()
            .map(|account| (account.id, account))
            .collect();
        let mut changed: Vec<Account> = current_accounts(&self.connection)?
            .into_iter()
            .filter(|account| stored.get(&account.id) != Some(account))
            .collect();
        changed.sort_unstable_by_key(|account| self.slots.get(&account.id).copied());
        self.connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(database_error)?;
        let written = self.update_balances(&changed).and_then(|()| {
            self.connection
                .execute(
                    "UPDATE ledger_head SET balances_as_of = ?1 WHERE id = 1",
                    [to_i64(head.last_timestamp)?],
                )
                .map_err(database_error)?;
            self.connection
                .execute_batch("COMMIT")
                .map_err(database_error)
        });
        if written.is_err() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only connection for queries.
    pub fn reader(&self) -> Result<SqliteReader, StoreError> {
        SqliteReader::open(&self.path)
    }

    /// Runs raw SQL on the writer's connection; for tests that tamper with the file.
    pub fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        self.connection.execute_batch(sql).map_err(database_error)
    }

    /// Multi-row inserts, binding each value in place: no allocation per value.
    fn insert_transfers(&self, transfers: &[Transfer]) -> Result<(), StoreError> {
        for chunk in statement_chunks(transfers, INSERT_ROWS_MAX) {
            let placeholders = vec!["(?,?,?,?,?,?,?,?,?,?,?,?)"; chunk.len()].join(",");
            let sql = format!(
                "INSERT OR FAIL INTO transfers (timestamp, id, debit_account_id, credit_account_id, \
                 amount, pending_id, ledger, code, reference, flags, timeout_seconds, hash) VALUES {placeholders}"
            );
            let mut statement = self
                .connection
                .prepare_cached(&sql)
                .map_err(database_error)?;
            for (row, transfer) in chunk.iter().enumerate() {
                let first = row * 12 + 1;
                let id = optional_id(transfer.id.get());
                let pending_id = optional_id(transfer.pending_id.get());
                let timestamp = to_i64(transfer.timestamp)?;
                let bind = |statement: &mut rusqlite::CachedStatement<'_>| -> rusqlite::Result<()> {
                    statement.raw_bind_parameter(first, timestamp)?;
                    statement.raw_bind_parameter(first + 1, id.as_ref().map(|bytes| &bytes[..]))?;
                    statement.raw_bind_parameter(
                        first + 2,
                        &id_bytes(transfer.debit_account_id.get())[..],
                    )?;
                    statement.raw_bind_parameter(
                        first + 3,
                        &id_bytes(transfer.credit_account_id.get())[..],
                    )?;
                    statement.raw_bind_parameter(first + 4, transfer.amount)?;
                    statement.raw_bind_parameter(
                        first + 5,
                        pending_id.as_ref().map(|bytes| &bytes[..]),
                    )?;
                    statement.raw_bind_parameter(first + 6, i64::from(transfer.ledger))?;
                    statement.raw_bind_parameter(first + 7, i64::from(transfer.code))?;
                    statement.raw_bind_parameter(first + 8, &id_bytes(transfer.reference)[..])?;
                    statement.raw_bind_parameter(first + 9, i64::from(transfer.flags.bits()))?;
                    statement
                        .raw_bind_parameter(first + 10, i64::from(transfer.timeout_seconds))?;
                    statement.raw_bind_parameter(first + 11, &transfer.hash[..])
                };
                bind(&mut statement).map_err(database_error)?;
            }
            statement.raw_execute().map_err(database_error)?;
        }
        Ok(())
    }

    /// Inserts new accounts as they were created: zero balances, the caller's flags.
    /// What the batch then did to them is in its transfers (replayed from
    /// `balances_as_of`) until the next flush writes it.
    fn insert_accounts(&mut self, created: &[Account]) -> Result<(), StoreError> {
        let mut insert = self
            .connection
            .prepare_cached(&format!(
                "INSERT OR FAIL INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"
            ))
            .map_err(database_error)?;
        for account in created {
            insert
                .execute(params![
                    id_bytes(account.id.get()),
                    i64::from(account.ledger),
                    i64::from(account.code.number()),
                    id_bytes(account.owner),
                    i64::from(account.flags.without(AccountFlags::CLOSED).bits()),
                    0_i64,
                    0_i64,
                    0_i64,
                    0_i64,
                    to_i64(account.timestamp)?,
                ])
                .map_err(database_error)?;
            self.slots
                .insert(account.id, self.connection.last_insert_rowid());
        }
        Ok(())
    }

    /// Writes balances and flags, one multi-row UPDATE per chunk, by row key.
    fn update_balances(&self, updated: &[Account]) -> Result<(), StoreError> {
        for chunk in statement_chunks(updated, UPDATE_ROWS_MAX) {
            let placeholders = vec!["(?,?,?,?,?,?)"; chunk.len()].join(",");
            // One statement per chunk: a hot batch touches thousands of accounts.
            let sql = format!(
                "UPDATE accounts SET flags = v.column2, debits_pending = v.column3, \
                 debits_posted = v.column4, credits_pending = v.column5, credits_posted = v.column6 \
                 FROM (VALUES {placeholders}) AS v WHERE accounts.slot = v.column1"
            );
            let mut statement = self
                .connection
                .prepare_cached(&sql)
                .map_err(database_error)?;
            for (row, account) in chunk.iter().enumerate() {
                let first = row * 6 + 1;
                let slot = *self
                    .slots
                    .get(&account.id)
                    .ok_or_else(|| corrupt("an updated account has no row"))?;
                let bind = |statement: &mut rusqlite::CachedStatement<'_>| -> rusqlite::Result<()> {
                    statement.raw_bind_parameter(first, slot)?;
                    statement.raw_bind_parameter(first + 1, i64::from(account.flags.bits()))?;
                    statement.raw_bind_parameter(first + 2, account.debits_pending)?;
                    statement.raw_bind_parameter(first + 3, account.debits_posted)?;
                    statement.raw_bind_parameter(first + 4, account.credits_pending)?;
                    statement.raw_bind_parameter(first + 5, account.credits_posted)
                };
                bind(&mut statement).map_err(database_error)?;
            }
            let changed = statement.raw_execute().map_err(database_error)?;
            if changed != chunk.len() {
                return Err(corrupt("an updated account does not exist"));
            }
        }
        Ok(())
    }

    /// Writes every balance changed since the last flush (this batch's included) and
    /// records that the accounts table is now current as of `as_of`.
    fn flush_balances(&self, as_of: u64) -> Result<(), StoreError> {
        let mut latest: FxHashMap<AccountId, Account> = self.dirty.clone();
        for account in &self.batch_dirty {
            latest.insert(account.id, *account);
        }
        let mut accounts: Vec<Account> = latest.into_values().collect();
        accounts.sort_unstable_by_key(|account| self.slots.get(&account.id).copied());
        self.update_balances(&accounts)?;
        self.connection
            .prepare_cached("UPDATE ledger_head SET balances_as_of = ?1 WHERE id = 1")
            .and_then(|mut statement| statement.execute([to_i64(as_of).unwrap_or(i64::MAX)]))
            .map_err(database_error)?;
        Ok(())
    }

    /// Between flushes: the balance of every account that took
    /// [`BalanceFlush::snapshot_entries`] transfers since it was last written, as of
    /// this batch, so reads of a busy account replay a short tail.
    fn write_hot_balances(&mut self, writes: &BatchWrites) -> Result<(), StoreError> {
        let threshold = self.balance_flush.snapshot_entries.max(1);
        let mut hot = Vec::new();
        for transfer in &writes.output.transfers {
            for id in [transfer.debit_account_id, transfer.credit_account_id] {
                let entries = self.entries_since_written.entry(id).or_insert(0);
                *entries += 1;
                if *entries == threshold {
                    hot.push(id);
                }
            }
        }
        if hot.is_empty() {
            return Ok(());
        }
        let as_of = to_i64(writes.head.last_timestamp)?;
        let mut upsert = self
            .connection
            .prepare_cached(
                "INSERT INTO hot_balances (account_id, as_of, flags, debits_pending, \
                 debits_posted, credits_pending, credits_posted) VALUES (?1,?2,?3,?4,?5,?6,?7) \
                 ON CONFLICT (account_id) DO UPDATE SET as_of = excluded.as_of, \
                 flags = excluded.flags, debits_pending = excluded.debits_pending, \
                 debits_posted = excluded.debits_posted, \
                 credits_pending = excluded.credits_pending, \
                 credits_posted = excluded.credits_posted",
            )
            .map_err(database_error)?;
        for id in hot {
            self.entries_since_written.remove(&id);
            // The batch's value of the account: it took a transfer, so it changed.
            let Some(account) = self.batch_dirty.iter().rev().find(|a| a.id == id) else {
                continue;
            };
            upsert
                .execute(params![
                    id_bytes(id.get()),
                    as_of,
                    i64::from(account.flags.bits()),
                    account.debits_pending,
                    account.debits_posted,
                    account.credits_pending,
                    account.credits_posted,
                ])
                .map_err(database_error)?;
        }
        Ok(())
    }

    fn write_pending(&self, writes: &BatchWrites) -> Result<(), StoreError> {
        let mut insert = self
            .connection
            .prepare_cached(
                "INSERT OR FAIL INTO pending_transfers (id, status, expires_at) VALUES (?1, 0, ?2)",
            )
            .map_err(database_error)?;
        for (id, expires_at) in &writes.output.pending_created {
            insert
                .execute(params![id_bytes(id.get()), to_i64(*expires_at)?])
                .map_err(database_error)?;
        }
        let mut update = self
            .connection
            .prepare_cached("UPDATE pending_transfers SET status = ?2 WHERE id = ?1 AND status = 0")
            .map_err(database_error)?;
        for (id, status) in &writes.output.pending_resolved {
            let changed = update
                .execute(params![id_bytes(id.get()), i64::from(status.number())])
                .map_err(database_error)?;
            if changed != 1 {
                return Err(corrupt("resolved a pending transfer that was not pending"));
            }
        }
        Ok(())
    }

    fn write_rows(&self, rows: &[BusinessRow]) -> Result<(), StoreError> {
        for row in rows {
            match row {
                // A `Create` was checked absent by the writer, under its write lock.
                BusinessRow::Document {
                    collection,
                    key,
                    body,
                }
                | BusinessRow::Create {
                    collection,
                    key,
                    body,
                } => {
                    self.connection
                        .prepare_cached("INSERT OR REPLACE INTO documents (collection, key, body) VALUES (?1, ?2, ?3)")
                        .and_then(|mut statement| statement.execute(params![collection, key, body]))
                        .map_err(database_error)?;
                }
                BusinessRow::Outbox { topic, payload } => {
                    self.connection
                        .prepare_cached("INSERT INTO outbox (topic, payload) VALUES (?1, ?2)")
                        .and_then(|mut statement| statement.execute(params![topic, payload]))
                        .map_err(database_error)?;
                }
                BusinessRow::Delete { collection, key } => {
                    self.connection
                        .prepare_cached("DELETE FROM documents WHERE collection = ?1 AND key = ?2")
                        .and_then(|mut statement| statement.execute(params![collection, key]))
                        .map_err(database_error)?;
                }
            }
        }
        Ok(())
    }
}

/// The flush of a SQLite ledger whose writer commits with `synchronous=NORMAL`: an
/// `fdatasync` of the WAL file, on a descriptor of its own.
///
/// In WAL mode a commit only appends frames to the WAL; with `NORMAL`, SQLite skips
/// the flush `FULL` makes inside `COMMIT` (it still flushes the WAL before every
/// checkpoint and the database after it). Flushing the WAL ourselves before any
/// caller hears of a batch gives the same guarantee as `FULL` — an acknowledged batch
/// survives a power cut — while the writer goes on with the next batch. A process
/// crash loses nothing either way: the frames are in the OS's cache. SQLite takes no
/// POSIX lock on the WAL file, so a second descriptor of it disturbs none.
struct WalSync {
    path: std::ffi::OsString,
    wal: File,
}

impl WalSync {
    fn open(path: std::ffi::OsString) -> Result<WalSync, StoreError> {
        let wal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| StoreError::Database(format!("opening the WAL: {error}")))?;
        Ok(WalSync { path, wal })
    }

    /// True when the path still names the file we hold. SQLite keeps its WAL while a
    /// connection is open, but should it ever replace the file, flushing the old one
    /// would flush nothing that matters.
    fn current(&self) -> Result<bool, StoreError> {
        use std::os::unix::fs::MetadataExt;
        let held = self.wal.metadata();
        let named = std::fs::metadata(&self.path);
        match (held, named) {
            (Ok(held), Ok(named)) => Ok(held.ino() == named.ino() && held.dev() == named.dev()),
            (Err(error), _) | (_, Err(error)) => Err(StoreError::Database(format!(
                "checking the WAL before a flush: {error}"
            ))),
        }
    }
}

impl mizan_ledger::store::DeferredSync for WalSync {
    fn sync(&mut self) -> Result<(), StoreError> {
        if !self.current()? {
            *self = WalSync::open(self.path.clone())?;
        }
        self.wal
            .sync_data()
            .map_err(|error| StoreError::Database(format!("flushing the WAL: {error}")))
    }
}

impl LedgerStore for SqliteStore {
    fn deferred_sync(
        &mut self,
    ) -> Result<Option<Box<dyn mizan_ledger::store::DeferredSync>>, StoreError> {
        let mut wal_path = self.path.clone().into_os_string();
        wal_path.push("-wal");
        let sync = WalSync::open(wal_path)?;
        self.connection
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(database_error)?;
        Ok(Some(Box::new(sync)))
    }

    fn existing_documents(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT 1 FROM documents WHERE collection = ?1 AND key = ?2")
            .map_err(database_error)?;
        let mut existing = Vec::new();
        for (collection, key) in keys {
            if statement
                .exists(params![collection, key])
                .map_err(database_error)?
            {
                existing.push((collection.clone(), key.clone()));
            }
        }
        Ok(existing)
    }

    fn exclusive(&self) -> bool {
        true
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.connection
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(database_error)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let committed = self
            .connection
            .execute_batch("COMMIT")
            .map_err(database_error);
        if committed.is_ok() {
            if self.batch_flushes {
                self.dirty.clear();
                self.transfers_since_flush = 0;
                self.last_flush = std::time::Instant::now();
            } else {
                for account in self.batch_dirty.drain(..) {
                    self.dirty.insert(account.id, account);
                }
                self.transfers_since_flush += self.batch_transfers;
            }
        }
        self.batch_dirty.clear();
        self.batch_flushes = false;
        committed
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.batch_dirty.clear();
        self.batch_flushes = false;
        if self.connection.is_autocommit() {
            return Ok(());
        }
        self.connection
            .execute_batch("ROLLBACK")
            .map_err(database_error)
    }

    fn lock_chain_head(&mut self) -> Result<ChainHead, StoreError> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        chain_head(&self.connection)
    }

    fn lock_accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        select_accounts(&self.connection, ids)
    }

    fn load_all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        current_accounts(&self.connection)
    }

    fn load_transfers(
        &mut self,
        ids: &[TransferId],
    ) -> Result<Vec<(Transfer, Option<PendingStatus>)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {TRANSFER_COLUMNS}, p.status FROM transfers t \
                 LEFT JOIN pending_transfers p ON p.id = t.id WHERE t.id = ?1"
            ))
            .map_err(database_error)?;
        let mut found = Vec::new();
        for id in ids.iter().filter(|id| id.get() <= self.max_transfer_id) {
            let mut rows = statement
                .query([id_bytes(id.get())])
                .map_err(database_error)?;
            if let Some(row) = rows.next().map_err(database_error)? {
                let transfer = transfer_from_row(row)?;
                let status: Option<i64> = row.get(12).map_err(database_error)?;
                let status = match status {
                    None => None,
                    Some(number) => Some(
                        u8::try_from(number)
                            .ok()
                            .and_then(PendingStatus::from_number)
                            .ok_or_else(|| corrupt("unknown pending status"))?,
                    ),
                };
                found.push((transfer, status));
            }
        }
        Ok(found)
    }

    fn due_expiries(&mut self, now_ns: u64, limit: usize) -> Result<Vec<TransferId>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT id FROM pending_transfers WHERE status = 0 AND expires_at > 0 \
                 AND expires_at <= ?1 ORDER BY expires_at, id LIMIT ?2",
            )
            .map_err(database_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = statement
            .query(params![to_i64(now_ns)?, limit])
            .map_err(database_error)?;
        let mut due = Vec::new();
        while let Some(row) = rows.next().map_err(database_error)? {
            due.push(TransferId::from_raw(read_u128(row, 0)?));
        }
        Ok(due)
    }

    fn write_batch(&mut self, writes: &BatchWrites) -> Result<(), StoreError> {
        self.insert_accounts(&writes.output.accounts_created)?;
        self.batch_dirty.clear();
        self.batch_dirty
            .extend_from_slice(&writes.output.accounts_created);
        self.batch_dirty
            .extend_from_slice(&writes.output.accounts_updated);
        self.batch_transfers = writes.output.transfers.len() as u64;
        self.batch_flushes = self.transfers_since_flush + self.batch_transfers
            >= self.balance_flush.every_transfers
            || self.last_flush.elapsed()
                >= std::time::Duration::from_millis(self.balance_flush.every_ms);
        if self.batch_flushes {
            self.flush_balances(writes.head.last_timestamp)?;
            self.entries_since_written.clear();
        } else {
            self.write_hot_balances(writes)?;
        }
        self.insert_transfers(&writes.output.transfers)?;
        // Raised before the commit: if it fails, a too-high mark only costs lookups.
        for transfer in &writes.output.transfers {
            self.max_transfer_id = self.max_transfer_id.max(transfer.id.get());
        }
        self.write_pending(writes)?;
        self.write_rows(&writes.rows)?;
        let head = &writes.head;
        self.connection
            .prepare_cached("UPDATE ledger_head SET last_timestamp = ?1, last_hash = ?2, transfers_count = ?3 WHERE id = 1")
            .and_then(|mut statement| {
                statement.execute(params![
                    i64::try_from(head.last_timestamp).unwrap_or(i64::MAX),
                    head.last_hash.to_vec(),
                    i64::try_from(head.transfers_count).unwrap_or(i64::MAX),
                ])
            })
            .map_err(database_error)?;
        Ok(())
    }
}

impl Drop for SqliteStore {
    /// A clean shutdown flushes the balances, so the next start replays nothing.
    fn drop(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let flushed = self.begin().and_then(|()| {
            let head = chain_head(&self.connection)?;
            self.flush_balances(head.last_timestamp)?;
            self.connection
                .execute_batch("COMMIT")
                .map_err(database_error)
        });
        if let Err(error) = flushed {
            // Nothing is lost: the next start replays the transfers after the last flush.
            tracing::warn!(%error, "could not flush balances at shutdown");
            let _ = self.rollback();
        }
    }
}

/// The balances as the accounts table holds them: current as of this timestamp.
fn balances_as_of(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .query_row(
            "SELECT balances_as_of FROM ledger_head WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .map_err(database_error)
}

/// `row` with the balances of its `hot_balances` snapshot and that snapshot's time,
/// when it is newer than the flush (`flushed_as_of`) and not after `upper`.
fn hot_balance(
    connection: &Connection,
    row: &Account,
    flushed_as_of: i64,
    upper: i64,
) -> Result<Option<(i64, Account)>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT as_of, flags, debits_pending, debits_posted, credits_pending, \
             credits_posted FROM hot_balances WHERE account_id = ?1 AND as_of > ?2 \
             AND as_of <= ?3",
        )
        .map_err(database_error)?;
    let mut rows = statement
        .query(params![id_bytes(row.id.get()), flushed_as_of, upper])
        .map_err(database_error)?;
    let Some(found) = rows.next().map_err(database_error)? else {
        return Ok(None);
    };
    let number = |index: usize| -> Result<i64, StoreError> {
        found.get::<_, i64>(index).map_err(database_error)
    };
    let flags = u16::try_from(number(1)?)
        .ok()
        .and_then(AccountFlags::from_bits)
        .ok_or_else(|| corrupt("unknown account flags in a hot balance"))?;
    let snapshot = Account {
        flags,
        debits_pending: number(2)?,
        debits_posted: number(3)?,
        credits_pending: number(4)?,
        credits_posted: number(5)?,
        ..*row
    };
    Ok(Some((number(0)?, snapshot)))
}

/// The accounts with a `hot_balances` snapshot newer than the flush.
fn hot_balance_ids(
    connection: &Connection,
    flushed_as_of: i64,
) -> Result<Vec<AccountId>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT account_id FROM hot_balances WHERE as_of > ?1")
        .map_err(database_error)?;
    let mut rows = statement.query([flushed_as_of]).map_err(database_error)?;
    let mut ids = Vec::new();
    while let Some(row) = rows.next().map_err(database_error)? {
        ids.push(AccountId::from_raw(read_u128(row, 0)?));
    }
    Ok(ids)
}

/// One committed transfer by id (a pending transfer the tail resolves).
fn transfer_by_id(connection: &Connection, id: TransferId) -> Result<Transfer, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.id = ?1"
        ))
        .map_err(database_error)?;
    let mut rows = statement
        .query([id_bytes(id.get())])
        .map_err(database_error)?;
    let row = rows
        .next()
        .map_err(database_error)?
        .ok_or_else(|| corrupt("a transfer resolves a pending transfer that does not exist"))?;
    transfer_from_row(row)
}

/// Every account with its current balances: the stored rows plus every transfer
/// committed after `balances_as_of`.
fn current_accounts(connection: &Connection) -> Result<Vec<Account>, StoreError> {
    let as_of = balances_as_of(connection)?;
    let mut accounts: FxHashMap<AccountId, Account> = all_accounts(connection)?
        .into_iter()
        .map(|account| (account.id, account))
        .collect();
    let mut replay = balances::TailReplay::new(&mut accounts);
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.timestamp > ?1 ORDER BY t.timestamp"
        ))
        .map_err(database_error)?;
    let mut rows = statement.query([as_of]).map_err(database_error)?;
    while let Some(row) = rows.next().map_err(database_error)? {
        let transfer = transfer_from_row(row)?;
        replay.apply(&transfer, &mut |id| transfer_by_id(connection, id))?;
    }
    let mut accounts: Vec<Account> = accounts.into_values().collect();
    accounts.sort_unstable_by_key(|account| account.id);
    Ok(accounts)
}

/// Every account's row key.
fn load_slots(connection: &Connection) -> Result<FxHashMap<AccountId, i64>, StoreError> {
    let mut statement = connection
        .prepare("SELECT id, slot FROM accounts")
        .map_err(database_error)?;
    let mut rows = statement.query([]).map_err(database_error)?;
    let mut slots = FxHashMap::default();
    while let Some(row) = rows.next().map_err(database_error)? {
        slots.insert(
            AccountId::from_raw(read_u128(row, 0)?),
            row.get(1).map_err(database_error)?,
        );
    }
    Ok(slots)
}

fn select_accounts(connection: &Connection, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
    if ids.len() > LOOKUP_IDS_MAX * 2 {
        return Err(StoreError::InvalidQuery("too many ids in one lookup"));
    }
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"
        ))
        .map_err(database_error)?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let mut rows = statement
            .query([id_bytes(id.get())])
            .map_err(database_error)?;
        if let Some(row) = rows.next().map_err(database_error)? {
            found.push(account_from_row(row)?);
        }
    }
    Ok(found)
}

fn all_accounts(connection: &Connection) -> Result<Vec<Account>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
        ))
        .map_err(database_error)?;
    let mut rows = statement.query([]).map_err(database_error)?;
    let mut accounts = Vec::new();
    while let Some(row) = rows.next().map_err(database_error)? {
        accounts.push(account_from_row(row)?);
    }
    Ok(accounts)
}

/// A read-only connection to a SQLite ledger.
pub struct SqliteReader {
    connection: Connection,
}

impl SqliteReader {
    pub fn open(path: &Path) -> Result<SqliteReader, StoreError> {
        if !history_path(path).exists() {
            history::create(path)?;
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(database_error)?;
        connection
            .execute_batch(&format!(
                "PRAGMA cache_size = -{}; PRAGMA busy_timeout = 5000; PRAGMA mmap_size = {READER_MMAP_BYTES};",
                READER_CACHE_KIB
            ))
            .map_err(database_error)?;
        let history_file = history_path(path);
        connection
            .execute(
                "ATTACH DATABASE ?1 AS history",
                [history_file.to_string_lossy()],
            )
            .map_err(database_error)?;
        connection.set_prepared_statement_cache_capacity(256);
        Ok(SqliteReader { connection })
    }

    /// Timestamps of the account's transfers in `[lower, upper]`, from the indexed
    /// segments and the unindexed tail, in the requested order, at most `limit`.
    fn history_timestamps(
        &self,
        account: AccountId,
        (lower, upper): (i64, i64),
        code: Option<u16>,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let (indexed_until, segments) = history::segments(&self.connection, lower, upper)?;
        let order = if newest_first { "DESC" } else { "ASC" };
        let code_clause = if code.is_some() {
            "AND code = ?4"
        } else {
            "AND ?4 IS NULL"
        };
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let account_bytes = id_bytes(account.get());
        let code = code.map(i64::from);
        let mut timestamps = Vec::new();
        let mut collect = |sql: &str, lower: i64| -> Result<(), StoreError> {
            let mut statement = self
                .connection
                .prepare_cached(sql)
                .map_err(database_error)?;
            let mut rows = statement
                .query(params![&account_bytes[..], lower, upper, code, limit_sql])
                .map_err(database_error)?;
            while let Some(row) = rows.next().map_err(database_error)? {
                timestamps.push(row.get::<_, i64>(0).map_err(database_error)?);
            }
            Ok(())
        };
        for segment in segments {
            let table = history::segment_table(segment);
            collect(
                &format!(
                    "SELECT timestamp FROM history.{table} WHERE account_id = ?1 AND timestamp >= ?2 \
                     AND timestamp <= ?3 {code_clause} ORDER BY timestamp {order} LIMIT ?5"
                ),
                lower,
            )?;
        }
        let tail_lower = lower.max(indexed_until.saturating_add(1));
        if tail_lower <= upper {
            collect(
                &format!(
                    "SELECT timestamp FROM transfers WHERE timestamp >= ?2 AND timestamp <= ?3 \
                     AND (debit_account_id = ?1 OR credit_account_id = ?1) {code_clause} \
                     ORDER BY timestamp {order} LIMIT ?5"
                ),
                tail_lower,
            )?;
        }
        if newest_first {
            timestamps.sort_unstable_by_key(|t| std::cmp::Reverse(*t));
        } else {
            timestamps.sort_unstable();
        }
        timestamps.dedup();
        timestamps.truncate(limit);
        Ok(timestamps)
    }

    fn transfers_at(&self, timestamps: &[i64]) -> Result<Vec<Transfer>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.timestamp = ?1"
            ))
            .map_err(database_error)?;
        let mut transfers = Vec::with_capacity(timestamps.len());
        for timestamp in timestamps {
            let mut rows = statement.query([timestamp]).map_err(database_error)?;
            let row = rows
                .next()
                .map_err(database_error)?
                .ok_or_else(|| corrupt("history names a missing transfer"))?;
            transfers.push(transfer_from_row(row)?);
        }
        Ok(transfers)
    }

    /// `rows` (stored accounts) brought up to `upper`: each starts from the newer of
    /// the flushed row (as of `flushed_as_of`) and its `hot_balances` snapshot (if
    /// taken at or before `upper`), then replays its transfers after that point.
    fn replay_tails(
        &self,
        rows: &[Account],
        flushed_as_of: i64,
        upper: i64,
    ) -> Result<FxHashMap<AccountId, Account>, StoreError> {
        let mut groups: Vec<(i64, FxHashMap<AccountId, Account>)> = Vec::new();
        let mut from_flush: FxHashMap<AccountId, Account> = FxHashMap::default();
        for row in rows {
            match hot_balance(&self.connection, row, flushed_as_of, upper)? {
                Some((as_of, snapshot)) => {
                    groups.push((as_of, [(row.id, snapshot)].into_iter().collect()));
                }
                None => {
                    from_flush.insert(row.id, *row);
                }
            }
        }
        groups.push((flushed_as_of, from_flush));
        let mut current = FxHashMap::default();
        for (start, mut accounts) in groups {
            let mut timestamps = Vec::new();
            for id in accounts.keys() {
                timestamps.extend(self.history_timestamps(
                    *id,
                    (start.saturating_add(1), upper),
                    None,
                    false,
                    usize::MAX,
                )?);
            }
            timestamps.sort_unstable();
            timestamps.dedup();
            let mut replay = balances::TailReplay::new(&mut accounts);
            for transfer in self.transfers_at(&timestamps)? {
                replay.apply(&transfer, &mut |id| transfer_by_id(&self.connection, id))?;
            }
            current.extend(accounts);
        }
        Ok(current)
    }

    /// Runs `read` in one read transaction, so the history segments, the watermark
    /// and the transfers it sees are one consistent snapshot.
    fn in_snapshot<T>(
        &self,
        read: impl FnOnce(&Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.connection.is_autocommit() {
            // Already inside the caller's snapshot.
            return read(self);
        }
        self.connection
            .execute_batch("BEGIN")
            .map_err(database_error)?;
        let result = read(self);
        let end = self
            .connection
            .execute_batch("COMMIT")
            .map_err(database_error);
        let value = result?;
        end?;
        Ok(value)
    }

    /// The newest timestamp the history indexer has covered (tests wait on it).
    pub fn history_indexed_until(&self) -> Result<u64, StoreError> {
        let value: i64 = self
            .connection
            .query_row(
                "SELECT indexed_until FROM history.history_meta WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .map_err(database_error)?;
        u64::try_from(value).map_err(|_| corrupt("negative watermark"))
    }

    /// How many history segments exist, per level (tests check merging).
    pub fn history_segments_per_level(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut statement = self
            .connection
            .prepare("SELECT level, count(*) FROM history.history_segments GROUP BY level ORDER BY level")
            .map_err(database_error)?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(database_error)?;
        rows.collect::<Result<_, _>>().map_err(database_error)
    }
}

/// The inclusive timestamp range a history filter selects, cursor applied.
pub(crate) fn history_bounds(filter: &HistoryFilter) -> Result<(i64, i64), StoreError> {
    let mut lower = filter.from_timestamp.unwrap_or(0);
    let mut upper = filter.to_timestamp.unwrap_or(i64::MAX as u64);
    if let Some(cursor) = filter.after_timestamp {
        if filter.newest_first {
            upper = upper.min(cursor.saturating_sub(1));
        } else {
            lower = lower.max(cursor.saturating_add(1));
        }
    }
    Ok((to_i64(lower)?, to_i64(upper.min(i64::MAX as u64))?))
}

impl LedgerReader for SqliteReader {
    /// The stored rows plus the transfers committed after `balances_as_of` that
    /// touch them, in one snapshot.
    fn accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        self.in_snapshot(|reader| {
            let as_of = balances_as_of(&reader.connection)?;
            let found = select_accounts(&reader.connection, ids)?;
            let current = reader.replay_tails(&found, as_of, i64::MAX)?;
            Ok(found
                .iter()
                .filter_map(|account| current.get(&account.id).copied())
                .collect())
        })
    }

    fn transfers(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, StoreError> {
        if ids.len() > LOOKUP_IDS_MAX {
            return Err(StoreError::InvalidQuery("too many ids in one lookup"));
        }
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.id = ?1"
            ))
            .map_err(database_error)?;
        let mut found = Vec::new();
        for id in ids {
            let mut rows = statement
                .query([id_bytes(id.get())])
                .map_err(database_error)?;
            if let Some(row) = rows.next().map_err(database_error)? {
                found.push(transfer_from_row(row)?);
            }
        }
        Ok(found)
    }

    fn pending_status(&mut self, id: TransferId) -> Result<Option<PendingStatus>, StoreError> {
        let status: Option<i64> = self
            .connection
            .prepare_cached("SELECT status FROM pending_transfers WHERE id = ?1")
            .map_err(database_error)?
            .query_row([id_bytes(id.get())], |row| row.get(0))
            .optional()
            .map_err(database_error)?;
        status
            .map(|number| {
                u8::try_from(number)
                    .ok()
                    .and_then(PendingStatus::from_number)
                    .ok_or_else(|| corrupt("unknown pending status"))
            })
            .transpose()
    }

    fn account_history(
        &mut self,
        account: AccountId,
        filter: &HistoryFilter,
    ) -> Result<HistoryPage, StoreError> {
        let limit = crate::page_limit(filter)?;
        let bounds = history_bounds(filter)?;
        self.in_snapshot(|reader| {
            let timestamps = reader.history_timestamps(
                account,
                bounds,
                filter.code,
                filter.newest_first,
                limit + 1,
            )?;
            let mut transfers = reader.transfers_at(&timestamps)?;
            let full = transfers.len() > limit;
            transfers.truncate(limit);
            let next_cursor = if full {
                transfers.last().map(|t| t.timestamp)
            } else {
                None
            };
            Ok(HistoryPage {
                transfers,
                next_cursor,
            })
        })
    }

    fn balances_at(&mut self, account: AccountId, timestamp: u64) -> Result<Balances, StoreError> {
        let upper = to_i64(timestamp.min(i64::MAX as u64))?;
        self.in_snapshot(|reader| {
            let as_of = balances_as_of(&reader.connection)?;
            if upper >= as_of {
                // The stored row is the balance at `as_of` (a snapshot at a later
                // point, if there is one): replay only what follows.
                let Some(row) = select_accounts(&reader.connection, &[account])?.pop() else {
                    return Ok(Balances::default());
                };
                let current = reader.replay_tails(&[row], as_of, upper)?;
                return Ok(current
                    .get(&account)
                    .map(Account::balances)
                    .unwrap_or_default());
            }
            let timestamps =
                reader.history_timestamps(account, (0, upper), None, false, usize::MAX)?;
            let mut replay = BalanceReplay::default();
            for transfer in reader.transfers_at(&timestamps)? {
                replay.apply(&transfer).map_err(StoreError::Corrupt)?;
            }
            Ok(replay.balances.get(&account).copied().unwrap_or_default())
        })
    }

    fn chain_head(&mut self) -> Result<ChainHead, StoreError> {
        chain_head(&self.connection)
    }

    fn scan_transfers(&mut self, visit: &mut TransferVisitor<'_>) -> Result<(), StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers t WHERE t.timestamp > ?1 ORDER BY t.timestamp LIMIT ?2"
            ))
            .map_err(database_error)?;
        let mut after: i64 = -1;
        loop {
            let mut rows = statement
                .query(params![after, SCAN_PAGE_ROWS])
                .map_err(database_error)?;
            let mut seen = 0;
            while let Some(row) = rows.next().map_err(database_error)? {
                let transfer = transfer_from_row(row)?;
                after = to_i64(transfer.timestamp)?;
                seen += 1;
                if !visit(&transfer)? {
                    return Ok(());
                }
            }
            if seen < SCAN_PAGE_ROWS {
                return Ok(());
            }
        }
    }

    fn all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        self.in_snapshot(|reader| {
            let accounts = current_accounts(&reader.connection)?;
            // Every busy-account snapshot newer than the flush must agree with the
            // transfers: reads start from it (tamper evidence covers it too).
            let as_of = balances_as_of(&reader.connection)?;
            let snapshotted = hot_balance_ids(&reader.connection, as_of)?;
            for chunk in snapshotted.chunks(LOOKUP_IDS_MAX) {
                let rows = select_accounts(&reader.connection, chunk)?;
                for (id, read) in reader.replay_tails(&rows, as_of, i64::MAX)? {
                    // `current_accounts` answers in id order.
                    let agrees = accounts
                        .binary_search_by_key(&id, |account| account.id)
                        .is_ok_and(|at| {
                            let account = &accounts[at];
                            read.balances() == account.balances() && read.flags == account.flags
                        });
                    if !agrees {
                        return Err(corrupt(&format!(
                            "the hot balance of account {id} disagrees with its transfers"
                        )));
                    }
                }
            }
            Ok(accounts)
        })
    }

    fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        self.connection
            .execute_batch("BEGIN")
            .map_err(database_error)?;
        // A deferred transaction takes its snapshot at the first read: take it now.
        chain_head(&self.connection).map(|_| ())
    }

    fn end_snapshot(&mut self) -> Result<(), StoreError> {
        self.connection
            .execute_batch("COMMIT")
            .map_err(database_error)
    }

    fn documents_with_prefix(
        &mut self,
        collection: &str,
        prefix: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let limit = crate::documents_page_limit(limit)?;
        let upper = crate::prefix_upper_bound(prefix);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT key, body FROM documents WHERE collection = ?1 AND key >= ?2 AND key < ?3 \
                 AND (?4 IS NULL OR key > ?4) ORDER BY key LIMIT ?5",
            )
            .map_err(database_error)?;
        let rows = statement
            .query_map(
                params![collection, prefix, upper, after_key, limit as i64],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(database_error)?;
        rows.collect::<Result<_, _>>().map_err(database_error)
    }

    fn document(&mut self, collection: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        // Cached: requests read documents all the time, and parsing the SQL again
        // each time cost more than the lookup.
        self.connection
            .prepare_cached("SELECT body FROM documents WHERE collection = ?1 AND key = ?2")
            .map_err(database_error)?
            .query_row(params![collection, key], |row| row.get(0))
            .optional()
            .map_err(database_error)
    }

    fn outbox(
        &mut self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT seq, topic, payload FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(database_error)?;
        let mut rows = statement
            .query(params![
                to_i64(after)?,
                i64::try_from(limit.min(HISTORY_PAGE_LIMIT_MAX)).unwrap_or(1)
            ])
            .map_err(database_error)?;
        let mut events = Vec::new();
        while let Some(row) = rows.next().map_err(database_error)? {
            events.push((
                read_u64(row, 0)?,
                row.get(1).map_err(database_error)?,
                row.get(2).map_err(database_error)?,
            ));
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::statement_chunks;

    #[test]
    fn statement_chunks_cover_every_row_in_few_distinct_lengths() {
        let rows: Vec<usize> = (0..1_000).collect();
        for length in [0, 1, 2, 3, 7, 64, 511, 512, 513, 1_000] {
            let chunks: Vec<&[usize]> = statement_chunks(&rows[..length], 512).collect();
            let joined: Vec<usize> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, rows[..length]);
            assert!(chunks
                .iter()
                .all(|c| c.len().is_power_of_two() && c.len() <= 512));
        }
    }
}
