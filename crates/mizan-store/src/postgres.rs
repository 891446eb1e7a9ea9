//! PostgreSQL store: the ledger's tables in a database that several `mizan`
//! processes may share.
//!
//! The writer side ([`PostgresStore`]) is not exclusive: every batch locks the
//! `ledger_head` row first, so batches from different processes commit one after
//! another, then locks and re-reads the accounts it touches. A batch is a handful of
//! statements whatever its size: binary COPY for new transfers and accounts, and one
//! `unnest` statement each for balance updates and pending statuses.
//!
//! 128-bit ids travel as `uuid` (the big-endian bytes of the u128) through [`SqlUuid`].

use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;

use bytes::BytesMut;
use mizan_core::{AccountId, TransferId};
use mizan_ledger::store::{BalanceReplay, BatchWrites, TransferVisitor, LOOKUP_IDS_MAX};
use mizan_ledger::{
    Account, AccountCode, AccountFlags, Balances, BusinessRow, ChainHead, HistoryFilter,
    HistoryPage, LedgerReader, LedgerStore, PendingStatus, StoreError, Transfer, TransferFlags,
};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use postgres::{Client, IsolationLevel, NoTls, Row, Statement};

pub use testing::{create_test_database, drop_test_database, TestDatabase};

/// The schema, in order. A version is applied once and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_ledger.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_history_off_commit_path.sql"),
    ),
    (
        3,
        include_str!("../migrations/postgres/0003_documents_bytewise_keys.sql"),
    ),
    (
        4,
        include_str!("../migrations/postgres/0004_commit_counter.sql"),
    ),
];

/// Advisory lock key that serializes migrations across processes ("mizan" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6d_69_7a_61_6e;

/// Rows fetched per round trip when streaming all transfers.
const SCAN_PAGE_ROWS: i32 = 10_000;
/// Rows fetched per query when replaying one account's history.
const REPLAY_PAGE_ROWS: usize = 10_000;
/// Longest outbox page one call returns.
const OUTBOX_PAGE_LIMIT_MAX: usize = 10_000;

const ACCOUNT_COLUMNS: &str = "id, ledger, code, owner, flags, debits_pending, debits_posted, \
     credits_pending, credits_posted, timestamp";
/// How many columns `ACCOUNT_COLUMNS` names.
const ACCOUNT_COLUMN_COUNT: usize = 10;
const TRANSFER_COLUMNS: &str = "timestamp, id, debit_account_id, credit_account_id, amount, \
     pending_id, ledger, code, reference, flags, timeout_seconds, hash";
/// The same, qualified with the alias `t` (for joins).
const TRANSFER_COLUMNS_T: &str = "t.timestamp, t.id, t.debit_account_id, t.credit_account_id, \
     t.amount, t.pending_id, t.ledger, t.code, t.reference, t.flags, t.timeout_seconds, t.hash";

/// COPY column types, in the order of `TRANSFER_COLUMNS`.
const TRANSFER_COPY_TYPES: [Type; 12] = [
    Type::INT8,
    Type::UUID,
    Type::UUID,
    Type::UUID,
    Type::INT8,
    Type::UUID,
    Type::INT8,
    Type::INT4,
    Type::UUID,
    Type::INT4,
    Type::INT8,
    Type::BYTEA,
];
/// COPY column types, in the order of `ACCOUNT_COLUMNS`.
const ACCOUNT_COPY_TYPES: [Type; 10] = [
    Type::UUID,
    Type::INT8,
    Type::INT4,
    Type::UUID,
    Type::INT4,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
];

/// A u128 as a PostgreSQL `uuid`: its 16 big-endian bytes, in binary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlUuid(pub u128);

impl SqlUuid {
    /// NULL for zero: how the optional id columns store "none".
    fn non_zero(value: u128) -> Option<SqlUuid> {
        (value != 0).then_some(SqlUuid(value))
    }
}

impl ToSql for SqlUuid {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for SqlUuid {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<SqlUuid, Box<dyn StdError + Sync + Send>> {
        let bytes: [u8; 16] = raw.try_into()?;
        Ok(SqlUuid(u128::from_be_bytes(bytes)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

/// Wraps a driver error with what was being done. The driver's messages carry no
/// password; at most ids and constraint names.
fn database(context: &'static str) -> impl FnOnce(postgres::Error) -> StoreError {
    move |error| StoreError::Database(format!("{context}: {error}"))
}

fn corrupt(text: String) -> StoreError {
    StoreError::Corrupt(text)
}

/// A value the ledger hands us that PostgreSQL's signed column cannot hold is a bug
/// upstream; refuse the batch rather than store something else.
fn to_bigint(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Database(format!("{what} {value} does not fit in bigint")))
}

/// Query bounds beyond bigint mean "no bound".
fn clamp_bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn column<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|error| corrupt(format!("column {index} unreadable: {error}")))
}

fn unsigned<T: TryFrom<i64>>(value: i64, what: &'static str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| corrupt(format!("{what} {value} out of range")))
}

fn hash_from(bytes: &[u8], what: &'static str) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| corrupt(format!("{what} is {} bytes, not 32", bytes.len())))
}

/// Decodes a row selected with `ACCOUNT_COLUMNS`, refusing unknown codes and flags.
fn account_from_row(row: &Row) -> Result<Account, StoreError> {
    let id = AccountId::from_raw(column::<SqlUuid>(row, 0)?.0);
    let code_number: i32 = column(row, 2)?;
    let code = u16::try_from(code_number)
        .ok()
        .and_then(AccountCode::from_number)
        .ok_or_else(|| corrupt(format!("account {id} has unknown code {code_number}")))?;
    let flag_bits: i32 = column(row, 4)?;
    let flags = u16::try_from(flag_bits)
        .ok()
        .and_then(AccountFlags::from_bits)
        .ok_or_else(|| corrupt(format!("account {id} has unknown flags {flag_bits}")))?;
    let owner: SqlUuid = column(row, 3)?;
    Ok(Account {
        id,
        ledger: unsigned(column::<i64>(row, 1)?, "account ledger")?,
        code,
        owner: owner.0,
        flags,
        debits_pending: column(row, 5)?,
        debits_posted: column(row, 6)?,
        credits_pending: column(row, 7)?,
        credits_posted: column(row, 8)?,
        timestamp: unsigned(column::<i64>(row, 9)?, "account timestamp")?,
    })
}

/// Decodes a row selected with `TRANSFER_COLUMNS`, refusing unknown flags.
fn transfer_from_row(row: &Row) -> Result<Transfer, StoreError> {
    let timestamp: u64 = unsigned(column::<i64>(row, 0)?, "transfer timestamp")?;
    let id: Option<SqlUuid> = column(row, 1)?;
    let debit: SqlUuid = column(row, 2)?;
    let credit: SqlUuid = column(row, 3)?;
    let pending_id: Option<SqlUuid> = column(row, 5)?;
    let reference: SqlUuid = column(row, 8)?;
    let flag_bits: i32 = column(row, 9)?;
    let flags = u16::try_from(flag_bits)
        .ok()
        .and_then(TransferFlags::from_bits)
        .ok_or_else(|| {
            corrupt(format!(
                "transfer at {timestamp} has unknown flags {flag_bits}"
            ))
        })?;
    let hash: &[u8] = column(row, 11)?;
    Ok(Transfer {
        id: TransferId::from_raw(id.map_or(0, |id| id.0)),
        debit_account_id: AccountId::from_raw(debit.0),
        credit_account_id: AccountId::from_raw(credit.0),
        amount: column(row, 4)?,
        pending_id: TransferId::from_raw(pending_id.map_or(0, |id| id.0)),
        ledger: unsigned(column::<i64>(row, 6)?, "transfer ledger")?,
        code: unsigned(i64::from(column::<i32>(row, 7)?), "transfer code")?,
        reference: reference.0,
        flags,
        timeout_seconds: unsigned(column::<i64>(row, 10)?, "transfer timeout")?,
        timestamp,
        hash: hash_from(hash, "transfer hash")?,
    })
}

fn chain_head_from_row(row: &Row) -> Result<ChainHead, StoreError> {
    let last_hash: &[u8] = column(row, 1)?;
    Ok(ChainHead {
        last_timestamp: unsigned(column::<i64>(row, 0)?, "head timestamp")?,
        last_hash: hash_from(last_hash, "head hash")?,
        transfers_count: unsigned(column::<i64>(row, 2)?, "head transfer count")?,
    })
}

fn pending_status_from(number: i16) -> Result<PendingStatus, StoreError> {
    u8::try_from(number)
        .ok()
        .and_then(PendingStatus::from_number)
        .ok_or_else(|| corrupt(format!("unknown pending status {number}")))
}

/// Connects and brings the schema up to date. Several processes may do this at
/// once: an advisory lock lets one apply each migration while the others wait.
fn connect_migrated(url: &str) -> Result<Client, StoreError> {
    let mut client = Client::connect(url, NoTls).map_err(database("connect"))?;
    let mut transaction = client.transaction().map_err(database("migrate"))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_KEY])
        .map_err(database("migration lock"))?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .map_err(database("create schema_migrations"))?;
    let applied: HashSet<i64> = transaction
        .query("SELECT version FROM schema_migrations", &[])
        .map_err(database("read schema_migrations"))?
        .iter()
        .map(|row| row.try_get::<_, i64>(0))
        .collect::<Result<_, _>>()
        .map_err(database("read schema_migrations"))?;
    let known: HashSet<i64> = MIGRATIONS.iter().map(|(version, _)| *version).collect();
    if let Some(unknown) = applied.difference(&known).max() {
        return Err(StoreError::Database(format!(
            "the database has schema version {unknown}, newer than this build knows"
        )));
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        transaction
            .batch_execute(sql)
            .map_err(database("apply migration"))?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .map_err(database("record migration"))?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    transaction
        .commit()
        .map_err(database("commit migrations"))?;
    Ok(client)
}

/// The writer's prepared statements.
struct WriterStatements {
    lock_chain_head: Statement,
    due_expiries: Statement,
    load_transfers: Statement,
    copy_transfers: Statement,
    max_transfer_id: Statement,
    lock_accounts: Statement,
    all_accounts: Statement,
    update_accounts: Statement,
    insert_pending: Statement,
    resolve_pending: Statement,
    upsert_documents: Statement,
    delete_documents: Statement,
    existing_documents: Statement,
    append_outbox: Statement,
    update_head: Statement,
}

impl WriterStatements {
    fn prepare(client: &mut Client) -> Result<WriterStatements, StoreError> {
        let mut prepare = |sql: &str| client.prepare(sql).map_err(database("prepare"));
        Ok(WriterStatements {
            lock_chain_head: prepare(
                "SELECT last_timestamp, last_hash, transfers_count, commits FROM ledger_head \
                 WHERE id = 1 FOR UPDATE",
            )?,
            due_expiries: prepare(
                "SELECT id FROM pending_transfers \
                 WHERE status = 0 AND expires_at > 0 AND expires_at <= $1 \
                 ORDER BY expires_at, id LIMIT $2",
            )?,
            load_transfers: prepare(&format!(
                "SELECT {TRANSFER_COLUMNS_T}, p.status FROM transfers t \
                 LEFT JOIN pending_transfers p ON p.id = t.id WHERE t.id = ANY($1)"
            ))?,
            // uuid has no max() before PostgreSQL 16; the unique index answers this.
            copy_transfers: prepare(&format!(
                "COPY transfers ({TRANSFER_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))?,
            max_transfer_id: prepare(
                "SELECT id FROM transfers WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1",
            )?,
            lock_accounts: prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1) ORDER BY id"
            ))?,
            all_accounts: prepare(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"))?,
            update_accounts: prepare(
                "UPDATE accounts AS a SET debits_pending = u.debits_pending, \
                 debits_posted = u.debits_posted, credits_pending = u.credits_pending, \
                 credits_posted = u.credits_posted, flags = u.flags \
                 FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
                 $6::integer[]) AS u(id, debits_pending, debits_posted, credits_pending, \
                 credits_posted, flags) WHERE a.id = u.id",
            )?,
            insert_pending: prepare(
                "INSERT INTO pending_transfers (id, status, expires_at) \
                 SELECT id, 0, expires_at FROM unnest($1::uuid[], $2::bigint[]) AS p(id, expires_at)",
            )?,
            // Only a pending transfer may be resolved; the row count checks it.
            resolve_pending: prepare(
                "UPDATE pending_transfers AS p SET status = u.status \
                 FROM unnest($1::uuid[], $2::smallint[]) AS u(id, status) \
                 WHERE p.id = u.id AND p.status = 0",
            )?,
            existing_documents: prepare(
                "SELECT d.collection, d.key FROM documents d \
                 JOIN unnest($1::text[], $2::text[]) AS k(collection, key) \
                 ON d.collection = k.collection AND d.key = k.key",
            )?,
            upsert_documents: prepare(
                "INSERT INTO documents (collection, key, body) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) \
                 ON CONFLICT (collection, key) DO UPDATE SET body = EXCLUDED.body",
            )?,
            delete_documents: prepare(
                "DELETE FROM documents WHERE (collection, key) IN \
                 (SELECT * FROM unnest($1::text[], $2::text[]))",
            )?,
            // Sequence numbers follow the rows' order; writers take them one batch
            // at a time (under the head lock), so they also follow commit order.
            append_outbox: prepare(
                "INSERT INTO outbox (topic, payload) \
                 SELECT topic, payload FROM unnest($1::text[], $2::bytea[]) \
                 WITH ORDINALITY AS o(topic, payload, position) ORDER BY position",
            )?,
            update_head: prepare(
                "UPDATE ledger_head SET last_timestamp = $1, last_hash = $2, \
                 transfers_count = $3, commits = commits + 1 WHERE id = 1",
            )?,
        })
    }
}

/// The ledger writer's connection to PostgreSQL.
pub struct PostgresStore {
    /// May hold a password: never printed.
    url: String,
    client: Client,
    statements: WriterStatements,
    /// The head as locked by this transaction, to check the batch against.
    locked_head: Option<ChainHead>,
    /// The head's commit count as this writer last knew it: read under the lock, or
    /// one more once its own batch committed.
    commits_known: Option<i64>,
    /// This transaction's batch counts one more (`update_head` ran).
    counting: bool,
    /// Another process committed since this writer last looked (see
    /// [`LedgerStore::take_foreign_commits`]); true after a new connection, whose
    /// past is unknown.
    foreign_commits: bool,
    _history: crate::postgres_history::HistoryIndexer,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects (without TLS) and applies any missing migrations.
    pub fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let mut client = connect_migrated(url)?;
        // The writer's lookups take arrays of ids (`id = ANY($1)`, a join with
        // `unnest`), by primary key. A prepared statement's generic plan is made once,
        // from the statistics of the moment: made while a table was small, it scans
        // the whole table on every batch ever after (measured: most of the
        // database's time in the HTTP benchmark). Planning every execution instead
        // cost the 64-caller ledger benchmark a fifth of its rate; ruling sequential
        // scans out keeps the cached plans on the indexes.
        client
            .batch_execute("SET enable_seqscan = off")
            .map_err(database("configure writer"))?;
        let statements = WriterStatements::prepare(&mut client)?;
        Ok(PostgresStore {
            url: url.to_owned(),
            client,
            statements,
            locked_head: None,
            commits_known: None,
            counting: false,
            foreign_commits: true,
            _history: crate::postgres_history::HistoryIndexer::start(url),
        })
    }

    /// A reader on a new connection to the same database.
    pub fn reader(&self) -> Result<PostgresReader, StoreError> {
        PostgresReader::connect(&self.url)
    }

    fn copy_transfers(&mut self, transfers: &[Transfer]) -> Result<(), StoreError> {
        if transfers.is_empty() {
            return Ok(());
        }
        // A prepared COPY: a query string would be parsed again, one more round trip.
        let sink = self
            .client
            .copy_in(&self.statements.copy_transfers)
            .map_err(database("copy transfers"))?;
        let mut writer = BinaryCopyInWriter::new(sink, &TRANSFER_COPY_TYPES);
        for transfer in transfers {
            let timestamp = to_bigint(transfer.timestamp, "transfer timestamp")?;
            let id = SqlUuid::non_zero(transfer.id.get());
            let debit = SqlUuid(transfer.debit_account_id.get());
            let credit = SqlUuid(transfer.credit_account_id.get());
            let pending_id = SqlUuid::non_zero(transfer.pending_id.get());
            let ledger = i64::from(transfer.ledger);
            let code = i32::from(transfer.code);
            let reference = SqlUuid(transfer.reference);
            let flags = i32::from(transfer.flags.bits());
            let timeout_seconds = i64::from(transfer.timeout_seconds);
            let hash: &[u8] = &transfer.hash;
            writer
                .write(&[
                    &timestamp,
                    &id,
                    &debit,
                    &credit,
                    &transfer.amount,
                    &pending_id,
                    &ledger,
                    &code,
                    &reference,
                    &flags,
                    &timeout_seconds,
                    &hash,
                ])
                .map_err(database("copy transfers"))?;
        }
        let written = writer.finish().map_err(database("copy transfers"))?;
        expect_rows("transfers copied", written, transfers.len())
    }

    fn copy_accounts(&mut self, accounts: &[Account]) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let sink = self
            .client
            .copy_in(&format!(
                "COPY accounts ({ACCOUNT_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .map_err(database("copy accounts"))?;
        let mut writer = BinaryCopyInWriter::new(sink, &ACCOUNT_COPY_TYPES);
        for account in accounts {
            let id = SqlUuid(account.id.get());
            let ledger = i64::from(account.ledger);
            let code = i32::from(account.code.number());
            let owner = SqlUuid(account.owner);
            let flags = i32::from(account.flags.bits());
            let timestamp = to_bigint(account.timestamp, "account timestamp")?;
            writer
                .write(&[
                    &id,
                    &ledger,
                    &code,
                    &owner,
                    &flags,
                    &account.debits_pending,
                    &account.debits_posted,
                    &account.credits_pending,
                    &account.credits_posted,
                    &timestamp,
                ])
                .map_err(database("copy accounts"))?;
        }
        let written = writer.finish().map_err(database("copy accounts"))?;
        expect_rows("accounts copied", written, accounts.len())
    }

    fn update_accounts(&mut self, accounts: &[Account]) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let ids: Vec<SqlUuid> = accounts.iter().map(|a| SqlUuid(a.id.get())).collect();
        let debits_pending: Vec<i64> = accounts.iter().map(|a| a.debits_pending).collect();
        let debits_posted: Vec<i64> = accounts.iter().map(|a| a.debits_posted).collect();
        let credits_pending: Vec<i64> = accounts.iter().map(|a| a.credits_pending).collect();
        let credits_posted: Vec<i64> = accounts.iter().map(|a| a.credits_posted).collect();
        let flags: Vec<i32> = accounts.iter().map(|a| i32::from(a.flags.bits())).collect();
        let updated = self
            .client
            .execute(
                &self.statements.update_accounts,
                &[
                    &ids,
                    &debits_pending,
                    &debits_posted,
                    &credits_pending,
                    &credits_posted,
                    &flags,
                ],
            )
            .map_err(database("update accounts"))?;
        expect_rows("accounts updated", updated, accounts.len())
    }

    fn write_pending(
        &mut self,
        created: &[(TransferId, u64)],
        resolved: &[(TransferId, PendingStatus)],
    ) -> Result<(), StoreError> {
        if !created.is_empty() {
            let ids: Vec<SqlUuid> = created.iter().map(|(id, _)| SqlUuid(id.get())).collect();
            let expires_at = created
                .iter()
                .map(|(_, at)| to_bigint(*at, "pending expiry"))
                .collect::<Result<Vec<i64>, _>>()?;
            let inserted = self
                .client
                .execute(&self.statements.insert_pending, &[&ids, &expires_at])
                .map_err(database("insert pending transfers"))?;
            expect_rows("pending transfers inserted", inserted, created.len())?;
        }
        if !resolved.is_empty() {
            let ids: Vec<SqlUuid> = resolved.iter().map(|(id, _)| SqlUuid(id.get())).collect();
            let statuses: Vec<i16> = resolved
                .iter()
                .map(|(_, s)| i16::from(s.number()))
                .collect();
            let updated = self
                .client
                .execute(&self.statements.resolve_pending, &[&ids, &statuses])
                .map_err(database("resolve pending transfers"))?;
            if usize::try_from(updated).ok() != Some(resolved.len()) {
                return Err(corrupt(format!(
                    "{} pending transfers to resolve but only {updated} were pending",
                    resolved.len()
                )));
            }
        }
        Ok(())
    }

    fn write_rows(&mut self, rows: &[BusinessRow]) -> Result<(), StoreError> {
        // One upsert cannot touch a key twice: the last write (or delete) of a key
        // wins, as it would row by row.
        let mut documents: HashMap<(&str, &str), Option<&[u8]>> = HashMap::new();
        let mut topics: Vec<&str> = Vec::new();
        let mut payloads: Vec<&[u8]> = Vec::new();
        for row in rows {
            match row {
                // A `Create` was checked absent by the writer, under the head lock.
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
                    documents.insert((collection.as_str(), key.as_str()), Some(body.as_slice()));
                }
                BusinessRow::Delete { collection, key } => {
                    documents.insert((collection.as_str(), key.as_str()), None);
                }
                BusinessRow::Outbox { topic, payload } => {
                    topics.push(topic.as_str());
                    payloads.push(payload.as_slice());
                }
            }
        }
        let (mut written, mut deleted) = (DocumentColumns::default(), DocumentColumns::default());
        for ((collection, key), body) in documents {
            let columns = if body.is_some() {
                &mut written
            } else {
                &mut deleted
            };
            columns.collections.push(collection);
            columns.keys.push(key);
            columns.bodies.extend(body);
        }
        if !written.keys.is_empty() {
            self.client
                .execute(
                    &self.statements.upsert_documents,
                    &[&written.collections, &written.keys, &written.bodies],
                )
                .map_err(database("write documents"))?;
        }
        if !deleted.keys.is_empty() {
            self.client
                .execute(
                    &self.statements.delete_documents,
                    &[&deleted.collections, &deleted.keys],
                )
                .map_err(database("delete documents"))?;
        }
        if !topics.is_empty() {
            let appended = self
                .client
                .execute(&self.statements.append_outbox, &[&topics, &payloads])
                .map_err(database("append outbox"))?;
            expect_rows("outbox events appended", appended, topics.len())?;
        }
        Ok(())
    }

    fn update_head(&mut self, head: &ChainHead) -> Result<(), StoreError> {
        let hash: &[u8] = &head.last_hash;
        let updated = self
            .client
            .execute(
                &self.statements.update_head,
                &[
                    &to_bigint(head.last_timestamp, "head timestamp")?,
                    &hash,
                    &to_bigint(head.transfers_count, "head transfer count")?,
                ],
            )
            .map_err(database("update ledger head"))?;
        expect_rows("ledger head updated", updated, 1)
    }
}

/// Documents of one batch as the columns `unnest` takes.
#[derive(Default)]
struct DocumentColumns<'a> {
    collections: Vec<&'a str>,
    keys: Vec<&'a str>,
    bodies: Vec<&'a [u8]>,
}

fn expect_rows(what: &'static str, actual: u64, expected: usize) -> Result<(), StoreError> {
    if usize::try_from(actual).ok() == Some(expected) {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "{what}: {actual} rows, expected {expected}"
        )))
    }
}

/// The batch must continue the chain this transaction locked: checked before writing.
fn check_batch_continues(locked: &ChainHead, writes: &BatchWrites) -> Result<(), StoreError> {
    let transfers = &writes.output.transfers;
    let count_expected = locked.transfers_count + transfers.len() as u64;
    let mut previous = locked.last_timestamp;
    for transfer in transfers {
        if transfer.timestamp <= previous {
            return Err(StoreError::Database(format!(
                "batch transfer timestamp {} does not follow {previous}",
                transfer.timestamp
            )));
        }
        previous = transfer.timestamp;
    }
    let last_hash = transfers.last().map_or(locked.last_hash, |t| t.hash);
    if writes.head.transfers_count != count_expected
        || writes.head.last_hash != last_hash
        || writes.head.last_timestamp < previous
    {
        return Err(StoreError::Database(
            "batch head does not continue the locked chain head".into(),
        ));
    }
    Ok(())
}

impl LedgerStore for PostgresStore {
    fn existing_documents(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let collections: Vec<&str> = keys
            .iter()
            .map(|(collection, _)| collection.as_str())
            .collect();
        let names: Vec<&str> = keys.iter().map(|(_, key)| key.as_str()).collect();
        let rows = self
            .client
            .query(&self.statements.existing_documents, &[&collections, &names])
            .map_err(database("existing documents"))?;
        rows.iter()
            .map(|row| Ok((column::<String>(row, 0)?, column::<String>(row, 1)?)))
            .collect()
    }

    fn exclusive(&self) -> bool {
        false
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            tracing::warn!("PostgreSQL connection lost; reconnecting");
            *self = PostgresStore::connect(&self.url)?;
        }
        self.locked_head = None;
        self.client
            .batch_execute("BEGIN")
            .map_err(database("begin"))
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        self.locked_head = None;
        let counted = std::mem::take(&mut self.counting);
        self.client
            .batch_execute("COMMIT")
            .map_err(database("commit"))?;
        if counted {
            // Nothing else moves the count while this transaction holds the lock.
            self.commits_known = self.commits_known.map(|count| count + 1);
        }
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.locked_head = None;
        self.counting = false;
        self.client
            .batch_execute("ROLLBACK")
            .map_err(database("rollback"))
    }

    fn lock_chain_head(&mut self) -> Result<ChainHead, StoreError> {
        let row = self
            .client
            .query_one(&self.statements.lock_chain_head, &[])
            .map_err(database("lock chain head"))?;
        let head = chain_head_from_row(&row)?;
        let commits: i64 = column(&row, 3)?;
        if self.commits_known != Some(commits) {
            self.foreign_commits = true;
        }
        self.commits_known = Some(commits);
        self.locked_head = Some(head);
        Ok(head)
    }

    fn take_foreign_commits(&mut self) -> bool {
        std::mem::take(&mut self.foreign_commits)
    }

    fn lock_accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<SqlUuid> = ids.iter().map(|id| SqlUuid(id.get())).collect();
        self.client
            .query(&self.statements.lock_accounts, &[&ids])
            .map_err(database("lock accounts"))?
            .iter()
            .map(account_from_row)
            .collect()
    }

    fn load_all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        self.client
            .query(&self.statements.all_accounts, &[])
            .map_err(database("load accounts"))?
            .iter()
            .map(account_from_row)
            .collect()
    }

    fn load_transfers(
        &mut self,
        ids: &[TransferId],
    ) -> Result<Vec<(Transfer, Option<PendingStatus>)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Ids are usually time-ordered: ids above the largest committed one need no
        // probe. Read under the chain-head lock, so no other writer adds one meanwhile.
        let max_id = match self
            .client
            .query_opt(&self.statements.max_transfer_id, &[])
            .map_err(database("max transfer id"))?
        {
            Some(row) => column::<SqlUuid>(&row, 0)?.0,
            None => 0,
        };
        let ids: Vec<SqlUuid> = ids
            .iter()
            .filter(|id| id.get() <= max_id)
            .map(|id| SqlUuid(id.get()))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(&self.statements.load_transfers, &[&ids])
            .map_err(database("load transfers"))?;
        rows.iter()
            .map(|row| {
                let transfer = transfer_from_row(row)?;
                let status = column::<Option<i16>>(row, 12)?
                    .map(pending_status_from)
                    .transpose()?;
                Ok((transfer, status))
            })
            .collect()
    }

    fn due_expiries(&mut self, now_ns: u64, limit: usize) -> Result<Vec<TransferId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.client
            .query(
                &self.statements.due_expiries,
                &[&clamp_bigint(now_ns), &limit],
            )
            .map_err(database("due expiries"))?
            .iter()
            .map(|row| Ok(TransferId::from_raw(column::<SqlUuid>(row, 0)?.0)))
            .collect()
    }

    fn write_batch(&mut self, writes: &BatchWrites) -> Result<(), StoreError> {
        let locked = self.locked_head.ok_or(StoreError::InvalidQuery(
            "write_batch before lock_chain_head",
        ))?;
        check_batch_continues(&locked, writes)?;
        let output = &writes.output;
        self.copy_transfers(&output.transfers)?;
        self.copy_accounts(&output.accounts_created)?;
        self.update_accounts(&output.accounts_updated)?;
        self.write_pending(&output.pending_created, &output.pending_resolved)?;
        self.write_rows(&writes.rows)?;
        self.update_head(&writes.head)?;
        self.counting = true;
        Ok(())
    }
}

/// The reader's prepared statements.
struct ReaderStatements {
    accounts: Statement,
    transfers: Statement,
    pending_status: Statement,
    /// Indexed by `history_index(newest_first, with_code)`.
    history: [Statement; 4],
    chain_head: Statement,
    scan_transfers: Statement,
    /// An account with the chain head's timestamp after its columns.
    account_at_head: Statement,
    /// Keyset page of the scan, for scans inside a caller's snapshot.
    scan_page: Statement,
    all_accounts: Statement,
    document: Statement,
    documents_with_prefix: Statement,
    outbox: Statement,
}

fn history_index(newest_first: bool, with_code: bool) -> usize {
    usize::from(newest_first) * 2 + usize::from(with_code)
}

/// One account's transfers between `$2` and `$3` (inclusive), at most `$4`: from
/// `account_history` up to the indexer's watermark, and from the transfers after
/// it (a range scan on the timestamp key). One statement, so one snapshot.
fn history_sql(newest_first: bool, with_code: bool) -> String {
    let order = if newest_first { "DESC" } else { "ASC" };
    let code = |table: &str| {
        if with_code {
            format!(" AND {table}.code = $5")
        } else {
            String::new()
        }
    };
    // The watermark is a scalar subquery (an init plan), not a join: each branch then
    // walks its index in order and stops at the limit, even for an account with
    // millions of entries.
    let watermark = "(SELECT indexed_until FROM history_watermark WHERE id = 1)";
    format!(
        "WITH hits AS ( \
           (SELECT h.timestamp FROM account_history h WHERE h.account_id = $1 \
            AND h.timestamp BETWEEN $2 AND $3 AND h.timestamp <= {watermark}{} \
            ORDER BY h.timestamp {order} LIMIT $4) \
           UNION ALL \
           (SELECT t.timestamp FROM transfers t WHERE t.timestamp > {watermark} \
            AND t.timestamp BETWEEN $2 AND $3 AND (t.debit_account_id = $1 OR t.credit_account_id = $1){} \
            ORDER BY t.timestamp {order} LIMIT $4)) \
         SELECT {TRANSFER_COLUMNS} FROM transfers WHERE timestamp IN (SELECT timestamp FROM hits) \
         ORDER BY timestamp {order} LIMIT $4",
        code("h"),
        code("t")
    )
}

impl ReaderStatements {
    fn prepare(client: &mut Client) -> Result<ReaderStatements, StoreError> {
        let mut prepare = |sql: &str| client.prepare(sql).map_err(database("prepare"));
        Ok(ReaderStatements {
            accounts: prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY($1)"
            ))?,
            transfers: prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1)"
            ))?,
            pending_status: prepare("SELECT status FROM pending_transfers WHERE id = $1")?,
            history: [
                prepare(&history_sql(false, false))?,
                prepare(&history_sql(false, true))?,
                prepare(&history_sql(true, false))?,
                prepare(&history_sql(true, true))?,
            ],
            chain_head: prepare(
                "SELECT last_timestamp, last_hash, transfers_count FROM ledger_head WHERE id = 1",
            )?,
            scan_transfers: prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers ORDER BY timestamp"
            ))?,
            account_at_head: prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS}, (SELECT last_timestamp FROM ledger_head WHERE id = 1) \
                 FROM accounts WHERE id = $1"
            ))?,
            scan_page: prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE timestamp > $1 ORDER BY timestamp LIMIT $2"
            ))?,
            all_accounts: prepare(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id"
            ))?,
            document: prepare("SELECT body FROM documents WHERE collection = $1 AND key = $2")?,
            documents_with_prefix: prepare(
                "SELECT key, body FROM documents WHERE collection = $1 AND key >= $2 AND key < $3 \
                 AND ($4::text IS NULL OR key > $4) ORDER BY key LIMIT $5",
            )?,
            outbox: prepare(
                "SELECT seq, topic, payload FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
            )?,
        })
    }
}

/// One page of an account's history, as bounds already resolved from a filter.
#[derive(Debug, Clone, Copy)]
struct HistoryRange {
    from_timestamp: i64,
    to_timestamp: i64,
    code: Option<u16>,
    newest_first: bool,
}

impl HistoryRange {
    /// `None` when the filter cannot match anything.
    fn from_filter(filter: &HistoryFilter) -> Option<HistoryRange> {
        let mut from = filter.from_timestamp.unwrap_or(0);
        let mut to = filter.to_timestamp.unwrap_or(u64::MAX);
        if let Some(after) = filter.after_timestamp {
            if filter.newest_first {
                to = to.min(after.checked_sub(1)?);
            } else {
                from = from.max(after.checked_add(1)?);
            }
        }
        if from > to || i64::try_from(from).is_err() {
            return None;
        }
        Some(HistoryRange {
            from_timestamp: clamp_bigint(from),
            to_timestamp: clamp_bigint(to),
            code: filter.code,
            newest_first: filter.newest_first,
        })
    }
}

/// Queries on a connection of their own.
pub struct PostgresReader {
    /// May hold a password: never printed.
    url: String,
    client: Client,
    statements: ReaderStatements,
    /// Inside `begin_snapshot` … `end_snapshot`.
    in_snapshot: bool,
}

impl std::fmt::Debug for PostgresReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresReader").finish_non_exhaustive()
    }
}

impl PostgresReader {
    /// Connects (without TLS) and applies any missing migrations.
    pub fn connect(url: &str) -> Result<PostgresReader, StoreError> {
        let mut client = connect_migrated(url)?;
        // A generic plan for the history query cannot know that one account (a hot
        // one) has millions of entries and picked a sort over all of them: plan each
        // execution with its real parameters. Even then the statistics lag a table
        // growing by thousands of entries a second: estimating 36 entries of the hot
        // account where there were 600,000, the planner gathered them all in a bitmap
        // and sorted them for a page of 101 (300–600 ms, `auto_explain`). Every read
        // here is a page, a point lookup or an ordered range: an index scan in order,
        // stopping at the limit, is always the right plan.
        client
            .batch_execute("SET plan_cache_mode = force_custom_plan; SET enable_bitmapscan = off")
            .map_err(database("configure reader"))?;
        let statements = ReaderStatements::prepare(&mut client)?;
        Ok(PostgresReader {
            url: url.to_owned(),
            client,
            statements,
            in_snapshot: false,
        })
    }

    /// Keyset pages inside the caller's REPEATABLE READ snapshot.
    fn scan_in_snapshot(&mut self, visit: &mut TransferVisitor<'_>) -> Result<(), StoreError> {
        let mut after: i64 = -1;
        loop {
            let rows = self
                .client
                .query(
                    &self.statements.scan_page,
                    &[&after, &i64::from(SCAN_PAGE_ROWS)],
                )
                .map_err(database("scan transfers"))?;
            for row in &rows {
                let transfer = transfer_from_row(row)?;
                after = to_bigint(transfer.timestamp, "timestamp")?;
                if !visit(&transfer)? {
                    return Ok(());
                }
            }
            if rows.len() < SCAN_PAGE_ROWS as usize {
                return Ok(());
            }
        }
    }

    /// Reconnects when the server dropped the connection (restart, idle timeout).
    fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if self.client.is_closed() {
            tracing::warn!("PostgreSQL reader connection lost; reconnecting");
            *self = PostgresReader::connect(&self.url)?;
        }
        Ok(())
    }

    fn history_rows(
        &mut self,
        account: AccountId,
        range: &HistoryRange,
        limit: usize,
    ) -> Result<Vec<Transfer>, StoreError> {
        let statement =
            &self.statements.history[history_index(range.newest_first, range.code.is_some())];
        let account = SqlUuid(account.get());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match range.code {
            Some(code) => {
                let code = i32::from(code);
                self.client.query(
                    statement,
                    &[
                        &account,
                        &range.from_timestamp,
                        &range.to_timestamp,
                        &limit,
                        &code,
                    ],
                )
            }
            None => self.client.query(
                statement,
                &[&account, &range.from_timestamp, &range.to_timestamp, &limit],
            ),
        }
        .map_err(database("account history"))?;
        rows.iter().map(transfer_from_row).collect()
    }
}

fn check_lookup(ids_count: usize) -> Result<(), StoreError> {
    if ids_count > LOOKUP_IDS_MAX {
        return Err(StoreError::InvalidQuery("too many ids in one lookup"));
    }
    Ok(())
}

/// Rows found for `ids`, in the order asked, each once; missing ids are left out.
fn in_request_order<Id, T>(ids: &[Id], found: Vec<T>, id_of: impl Fn(&T) -> Id) -> Vec<T>
where
    Id: std::hash::Hash + Eq + Copy,
{
    let mut by_id: HashMap<Id, T> = found.into_iter().map(|item| (id_of(&item), item)).collect();
    ids.iter().filter_map(|id| by_id.remove(id)).collect()
}

impl LedgerReader for PostgresReader {
    fn accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        check_lookup(ids.len())?;
        self.ensure_connected()?;
        let keys: Vec<SqlUuid> = ids.iter().map(|id| SqlUuid(id.get())).collect();
        let found = self
            .client
            .query(&self.statements.accounts, &[&keys])
            .map_err(database("accounts"))?
            .iter()
            .map(account_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(in_request_order(ids, found, |account| account.id))
    }

    fn transfers(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, StoreError> {
        check_lookup(ids.len())?;
        self.ensure_connected()?;
        let keys: Vec<SqlUuid> = ids.iter().map(|id| SqlUuid(id.get())).collect();
        let found = self
            .client
            .query(&self.statements.transfers, &[&keys])
            .map_err(database("transfers"))?
            .iter()
            .map(transfer_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(in_request_order(ids, found, |transfer| transfer.id))
    }

    fn pending_status(&mut self, id: TransferId) -> Result<Option<PendingStatus>, StoreError> {
        self.ensure_connected()?;
        self.client
            .query_opt(&self.statements.pending_status, &[&SqlUuid(id.get())])
            .map_err(database("pending status"))?
            .map(|row| pending_status_from(column(&row, 0)?))
            .transpose()
    }

    fn account_history(
        &mut self,
        account: AccountId,
        filter: &HistoryFilter,
    ) -> Result<HistoryPage, StoreError> {
        self.ensure_connected()?;
        let limit = crate::page_limit(filter)?;
        let Some(range) = HistoryRange::from_filter(filter) else {
            return Ok(HistoryPage {
                transfers: Vec::new(),
                next_cursor: None,
            });
        };
        // One row more than the page tells whether another page follows.
        let mut transfers = self.history_rows(account, &range, limit + 1)?;
        let next_cursor = if transfers.len() > limit {
            transfers.truncate(limit);
            transfers.last().map(|t| t.timestamp)
        } else {
            None
        };
        Ok(HistoryPage {
            transfers,
            next_cursor,
        })
    }

    fn balances_at(&mut self, account: AccountId, timestamp: u64) -> Result<Balances, StoreError> {
        self.ensure_connected()?;
        // At or after the chain head the stored row is the answer: no replay. One
        // statement, so the row and the head are one snapshot.
        let current = self
            .client
            .query_opt(&self.statements.account_at_head, &[&SqlUuid(account.get())])
            .map_err(database("balances at"))?;
        match current {
            None => return Ok(Balances::default()),
            Some(row) => {
                let head: i64 = column(&row, ACCOUNT_COLUMN_COUNT)?;
                if clamp_bigint(timestamp) >= head {
                    return Ok(account_from_row(&row)?.balances());
                }
            }
        }
        let mut replay = BalanceReplay::default();
        let mut range = HistoryRange {
            from_timestamp: 0,
            to_timestamp: clamp_bigint(timestamp),
            code: None,
            newest_first: false,
        };
        loop {
            let page = self.history_rows(account, &range, REPLAY_PAGE_ROWS)?;
            for transfer in &page {
                replay.apply(transfer).map_err(|problem| {
                    corrupt(format!("history of account {account}: {problem}"))
                })?;
            }
            let next = page
                .last()
                .filter(|_| page.len() == REPLAY_PAGE_ROWS)
                .and_then(|last| i64::try_from(last.timestamp).ok()?.checked_add(1));
            match next {
                Some(from_timestamp) => range.from_timestamp = from_timestamp,
                None => break,
            }
        }
        Ok(replay.balances.get(&account).copied().unwrap_or_default())
    }

    fn chain_head(&mut self) -> Result<ChainHead, StoreError> {
        self.ensure_connected()?;
        let row = self
            .client
            .query_one(&self.statements.chain_head, &[])
            .map_err(database("chain head"))?;
        chain_head_from_row(&row)
    }

    /// Streams through a portal inside one read-only snapshot, so concurrent
    /// commits neither show up half-way nor cost memory.
    fn scan_transfers(&mut self, visit: &mut TransferVisitor<'_>) -> Result<(), StoreError> {
        self.ensure_connected()?;
        if self.in_snapshot {
            return self.scan_in_snapshot(visit);
        }
        let mut transaction = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(database("scan transfers"))?;
        let portal = transaction
            .bind(&self.statements.scan_transfers, &[])
            .map_err(database("scan transfers"))?;
        loop {
            let rows = transaction
                .query_portal(&portal, SCAN_PAGE_ROWS)
                .map_err(database("scan transfers"))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                if !visit(&transfer_from_row(row)?)? {
                    return Ok(());
                }
            }
        }
        transaction.commit().map_err(database("scan transfers"))
    }

    fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        self.ensure_connected()?;
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(database("begin snapshot"))?;
        self.in_snapshot = true;
        Ok(())
    }

    fn end_snapshot(&mut self) -> Result<(), StoreError> {
        self.in_snapshot = false;
        self.client
            .batch_execute("COMMIT")
            .map_err(database("end snapshot"))
    }

    fn all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        self.ensure_connected()?;
        self.client
            .query(&self.statements.all_accounts, &[])
            .map_err(database("all accounts"))?
            .iter()
            .map(account_from_row)
            .collect()
    }

    fn documents_with_prefix(
        &mut self,
        collection: &str,
        prefix: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.ensure_connected()?;
        let limit = i64::try_from(crate::documents_page_limit(limit)?).unwrap_or(1);
        let upper = crate::prefix_upper_bound(prefix);
        let rows = self
            .client
            .query(
                &self.statements.documents_with_prefix,
                &[&collection, &prefix, &upper, &after_key, &limit],
            )
            .map_err(database("documents with prefix"))?;
        rows.iter()
            .map(|row| Ok((column::<String>(row, 0)?, column::<Vec<u8>>(row, 1)?)))
            .collect()
    }

    fn document(&mut self, collection: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.ensure_connected()?;
        self.client
            .query_opt(&self.statements.document, &[&collection, &key])
            .map_err(database("document"))?
            .map(|row| column::<Vec<u8>>(&row, 0))
            .transpose()
    }

    fn outbox(
        &mut self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        self.ensure_connected()?;
        let limit = i64::try_from(limit.min(OUTBOX_PAGE_LIMIT_MAX)).unwrap_or(0);
        self.client
            .query(&self.statements.outbox, &[&clamp_bigint(after), &limit])
            .map_err(database("outbox"))?
            .iter()
            .map(|row| {
                let seq: i64 = column(row, 0)?;
                Ok((
                    unsigned(seq, "outbox sequence")?,
                    column(row, 1)?,
                    column(row, 2)?,
                ))
            })
            .collect()
    }
}

/// Fresh, throw-away databases for tests (this crate's and the conformance suite's).
pub mod testing {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};

    use mizan_ledger::StoreError;
    use postgres::{Client, NoTls};

    use super::database;

    /// Every test database's name starts with this; nothing else is ever dropped.
    pub const TEST_DATABASE_PREFIX: &str = "mizan_test_";

    /// A database made by [`create_test_database`]; dropped (with any connections
    /// still open to it) when this guard goes out of scope.
    #[derive(Debug)]
    pub struct TestDatabase {
        /// Connection URL of the new database.
        pub url: String,
        pub name: String,
        admin_url: String,
    }

    impl Drop for TestDatabase {
        fn drop(&mut self) {
            if let Err(error) = drop_test_database(&self.admin_url, &self.name) {
                tracing::warn!(%error, name = %self.name, "could not drop test database");
            }
        }
    }

    fn random_suffix() -> String {
        static CREATED: AtomicU64 = AtomicU64::new(0);
        // RandomState is seeded randomly per process and differs on every call.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(CREATED.fetch_add(1, Ordering::Relaxed));
        hasher.write_u32(std::process::id());
        format!("{:016x}", hasher.finish())
    }

    /// `admin_url` with its database replaced by `database` (URL or key=value form).
    pub fn url_with_database(admin_url: &str, database: &str) -> String {
        let Some(scheme_end) = admin_url.find("://") else {
            return format!("{admin_url} dbname={database}");
        };
        let (base, query) = admin_url.split_at(admin_url.find('?').unwrap_or(admin_url.len()));
        let authority_start = scheme_end + 3;
        let authority_end = base[authority_start..]
            .find('/')
            .map_or(base.len(), |slash| authority_start + slash);
        format!("{}/{database}{query}", &base[..authority_end])
    }

    /// Creates `mizan_test_<random hex>` through `admin_url` (any database the role
    /// can connect to, with CREATEDB) and returns its guard.
    pub fn create_test_database(admin_url: &str) -> Result<TestDatabase, StoreError> {
        let name = format!("{TEST_DATABASE_PREFIX}{}", random_suffix());
        let mut admin = Client::connect(admin_url, NoTls).map_err(database("connect admin"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(database("create test database"))?;
        Ok(TestDatabase {
            url: url_with_database(admin_url, &name),
            name,
            admin_url: admin_url.to_owned(),
        })
    }

    /// Drops a database made by [`create_test_database`], closing its connections.
    pub fn drop_test_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
        let suffix_ok = name.strip_prefix(TEST_DATABASE_PREFIX).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !suffix_ok {
            return Err(StoreError::InvalidQuery(
                "only mizan_test_* databases may be dropped",
            ));
        }
        let mut admin = Client::connect(admin_url, NoTls).map_err(database("connect admin"))?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(database("drop test database"))
    }
}
