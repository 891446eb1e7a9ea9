//! The naive ledger the figures are compared with: what a first version usually
//! looks like, written here and not through the Mizan writer. One durable database
//! transaction per transfer: lock both accounts (row locks in id order on
//! PostgreSQL, the database lock on SQLite), check the balance, update both, insert
//! the transfer, commit.
//!
//! PostgreSQL runs several connections at once (the server serializes them on the
//! row locks, which is the point on the hot account); SQLite has one writer anyway,
//! so it runs one connection with `synchronous=FULL` in WAL mode: each commit is
//! durable before the next starts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use postgres::error::SqlState;
use rusqlite::{params, Connection, TransactionBehavior};

use super::workload::{draw, nanos, rng_for, Leg, Pattern};

/// Every naive account starts with this much, so no transfer is refused for funds.
const OPENING_BALANCE: i64 = 1_000_000_000_000;
/// Retries of a PostgreSQL transaction that hit a deadlock or serialization failure.
const RETRIES_MAX: usize = 5;

const SQLITE_SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    CREATE TABLE naive_accounts (
        id INTEGER PRIMARY KEY,
        balance INTEGER NOT NULL,
        debits_posted INTEGER NOT NULL,
        credits_posted INTEGER NOT NULL
    );
    CREATE TABLE naive_transfers (
        id INTEGER PRIMARY KEY,
        debit_account_id INTEGER NOT NULL,
        credit_account_id INTEGER NOT NULL,
        amount INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX naive_transfers_debit ON naive_transfers (debit_account_id, id);
    CREATE INDEX naive_transfers_credit ON naive_transfers (credit_account_id, id);";

const POSTGRES_SCHEMA: &str = "
    CREATE TABLE naive_accounts (
        id bigint PRIMARY KEY,
        balance bigint NOT NULL,
        debits_posted bigint NOT NULL,
        credits_posted bigint NOT NULL
    );
    CREATE TABLE naive_transfers (
        id bigint PRIMARY KEY,
        debit_account_id bigint NOT NULL,
        credit_account_id bigint NOT NULL,
        amount bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX naive_transfers_debit ON naive_transfers (debit_account_id, id);
    CREATE INDEX naive_transfers_credit ON naive_transfers (credit_account_id, id);";

const SELECT_SQLITE: &str =
    "SELECT id, balance FROM naive_accounts WHERE id IN (?1, ?2) ORDER BY id";
const SELECT_POSTGRES: &str =
    "SELECT id, balance FROM naive_accounts WHERE id IN ($1, $2) ORDER BY id FOR UPDATE";
const DEBIT: &str = "UPDATE naive_accounts SET balance = balance - $2, \
     debits_posted = debits_posted + $2 WHERE id = $1";
const CREDIT: &str = "UPDATE naive_accounts SET balance = balance + $2, \
     credits_posted = credits_posted + $2 WHERE id = $1";
const INSERT_SQLITE: &str = "INSERT INTO naive_transfers \
     (id, debit_account_id, credit_account_id, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_POSTGRES: &str = "INSERT INTO naive_transfers \
     (id, debit_account_id, credit_account_id, amount) VALUES ($1, $2, $3, $4)";
/// Read back after a run; the same text works on both databases.
const TOTALS: &str = "SELECT (SELECT count(*) FROM naive_transfers), \
     (SELECT CAST(COALESCE(sum(balance), 0) AS bigint) FROM naive_accounts), \
     (SELECT CAST(COALESCE(sum(debits_posted), 0) AS bigint) FROM naive_accounts), \
     (SELECT CAST(COALESCE(sum(credits_posted), 0) AS bigint) FROM naive_accounts), \
     (SELECT CAST(COALESCE(sum(amount), 0) AS bigint) FROM naive_transfers)";

pub struct NaivePlan {
    pub pattern: Pattern,
    pub transfers: u64,
    pub accounts: u64,
    /// Concurrent connections (PostgreSQL only).
    pub connections: usize,
}

#[derive(Debug, Default)]
pub struct NaiveRun {
    pub elapsed: Duration,
    pub committed: u64,
    pub amount_committed: i128,
    /// Per transfer: from BEGIN to the durable COMMIT, retries included.
    pub latencies_ns: Vec<u64>,
    pub retries: u64,
    pub failures: BTreeMap<String, u64>,
    pub problems: Vec<String>,
}

impl NaiveRun {
    fn record(&mut self, leg: Leg, latency: Duration, outcome: Result<(), String>) {
        self.latencies_ns.push(nanos(latency));
        match outcome {
            Ok(()) => {
                self.committed += 1;
                self.amount_committed += i128::from(leg.amount);
            }
            Err(code) => *self.failures.entry(code).or_default() += 1,
        }
    }

    fn merge(&mut self, other: NaiveRun) {
        self.committed += other.committed;
        self.amount_committed += other.amount_committed;
        self.latencies_ns.extend(other.latencies_ns);
        self.retries += other.retries;
        for (code, count) in other.failures {
            *self.failures.entry(code).or_default() += count;
        }
    }

    /// The tables must hold what was acknowledged, and money must add up.
    fn check_totals(&mut self, accounts: u64, totals: [i64; 5]) {
        let [transfers, balance, debits, credits, amount] = totals;
        let expected_balance = i128::from(OPENING_BALANCE) * i128::from(accounts);
        if u64::try_from(transfers).ok() != Some(self.committed)
            || i128::from(balance) != expected_balance
            || i128::from(debits) != self.amount_committed
            || i128::from(credits) != self.amount_committed
            || i128::from(amount) != self.amount_committed
        {
            self.problems.push(format!(
                "naive tables hold {transfers} transfers, total balance {balance}, debits {debits}, \
                 credits {credits}, amounts {amount}; acknowledged {} transfers of {}",
                self.committed, self.amount_committed
            ));
        }
    }
}

fn as_i64(value: u64) -> anyhow::Result<i64> {
    i64::try_from(value).context("value out of range")
}

pub fn run_sqlite(path: &Path, plan: &NaivePlan) -> anyhow::Result<NaiveRun> {
    let mut connection =
        Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    connection.execute_batch(SQLITE_SCHEMA)?;
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare(
            "INSERT INTO naive_accounts (id, balance, debits_posted, credits_posted) VALUES (?1, ?2, 0, 0)",
        )?;
        for id in 0..plan.accounts {
            insert.execute(params![as_i64(id)?, OPENING_BALANCE])?;
        }
    }
    transaction.commit()?;
    let mut run = NaiveRun::default();
    let mut rng = rng_for(0);
    let started = Instant::now();
    for sequence in 0..plan.transfers {
        let leg = draw(&mut rng, plan.pattern, plan.accounts);
        let sent = Instant::now();
        let outcome = sqlite_transfer(&mut connection, as_i64(sequence + 1)?, leg)
            .map_err(|error| format!("error:{error}"))
            .and_then(|checked| checked);
        run.record(leg, sent.elapsed(), outcome);
    }
    run.elapsed = started.elapsed();
    let totals = connection.query_row(TOTALS, [], |row| {
        Ok([
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ])
    })?;
    run.check_totals(plan.accounts, totals);
    Ok(run)
}

/// One transfer in its own transaction. The outer error is the database's, the inner
/// one a refusal (insufficient funds); either way nothing is written.
fn sqlite_transfer(
    connection: &mut Connection,
    id: i64,
    leg: Leg,
) -> rusqlite::Result<Result<(), String>> {
    let debit = i64::try_from(leg.debit).unwrap_or(i64::MAX);
    let credit = i64::try_from(leg.credit).unwrap_or(i64::MAX);
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut debit_balance = None;
    {
        let mut select = transaction.prepare_cached(SELECT_SQLITE)?;
        let mut rows = select.query(params![debit, credit])?;
        while let Some(row) = rows.next()? {
            if row.get::<_, i64>(0)? == debit {
                debit_balance = Some(row.get::<_, i64>(1)?);
            }
        }
    }
    match debit_balance {
        None => return Ok(Err("debit_account_not_found".into())),
        Some(balance) if balance < leg.amount => return Ok(Err("exceeds_credits".into())),
        Some(_) => {}
    }
    transaction
        .prepare_cached(&DEBIT.replace('$', "?"))?
        .execute(params![debit, leg.amount])?;
    transaction
        .prepare_cached(&CREDIT.replace('$', "?"))?
        .execute(params![credit, leg.amount])?;
    let now_ns = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    )
    .unwrap_or(0);
    transaction
        .prepare_cached(INSERT_SQLITE)?
        .execute(params![id, debit, credit, leg.amount, now_ns])?;
    transaction.commit()?;
    Ok(Ok(()))
}

pub fn run_postgres(url: &str, plan: &NaivePlan) -> anyhow::Result<NaiveRun> {
    let mut admin = postgres::Client::connect(url, postgres::NoTls)?;
    admin.batch_execute(POSTGRES_SCHEMA)?;
    admin.execute(
        "INSERT INTO naive_accounts SELECT g, $1::bigint, 0, 0 FROM generate_series(0, $2::bigint - 1) AS g",
        &[&OPENING_BALANCE, &as_i64(plan.accounts)?],
    )?;
    admin.batch_execute("ANALYZE naive_accounts")?;
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let workers = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..plan.connections)
            .map(|worker| {
                let next = &next;
                scope.spawn(move || postgres_worker(url, plan, next, worker as u64))
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join())
            .collect::<Vec<_>>()
    });
    let mut run = NaiveRun {
        elapsed: started.elapsed(),
        ..NaiveRun::default()
    };
    for worker in workers {
        let worker = worker.map_err(|_| anyhow::anyhow!("a naive worker panicked"))??;
        run.merge(worker);
    }
    let row = admin.query_one(TOTALS, &[])?;
    let mut totals = [0; 5];
    for (index, total) in totals.iter_mut().enumerate() {
        *total = row.try_get(index)?;
    }
    run.check_totals(plan.accounts, totals);
    Ok(run)
}

struct PostgresStatements {
    select: postgres::Statement,
    debit: postgres::Statement,
    credit: postgres::Statement,
    insert: postgres::Statement,
}

fn postgres_worker(
    url: &str,
    plan: &NaivePlan,
    next: &AtomicU64,
    worker: u64,
) -> anyhow::Result<NaiveRun> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let statements = PostgresStatements {
        select: client.prepare(SELECT_POSTGRES)?,
        debit: client.prepare(DEBIT)?,
        credit: client.prepare(CREDIT)?,
        insert: client.prepare(INSERT_POSTGRES)?,
    };
    let mut rng = rng_for(worker);
    let mut run = NaiveRun::default();
    loop {
        let sequence = next.fetch_add(1, Ordering::Relaxed);
        if sequence >= plan.transfers {
            return Ok(run);
        }
        let leg = draw(&mut rng, plan.pattern, plan.accounts);
        let id = as_i64(sequence + 1)?;
        let sent = Instant::now();
        let mut attempts = 0;
        let outcome = loop {
            match postgres_transfer(&mut client, &statements, id, leg) {
                Ok(checked) => break checked,
                Err(error) if retryable(&error) && attempts < RETRIES_MAX => {
                    attempts += 1;
                    run.retries += 1;
                }
                Err(error) => {
                    let code = error.code().map_or("connection", SqlState::code);
                    break Err(format!("error:{code}"));
                }
            }
        };
        run.record(leg, sent.elapsed(), outcome);
    }
}

fn retryable(error: &postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
    )
}

/// One transfer in its own transaction, both account rows locked in id order.
fn postgres_transfer(
    client: &mut postgres::Client,
    statements: &PostgresStatements,
    id: i64,
    leg: Leg,
) -> Result<Result<(), String>, postgres::Error> {
    let debit = i64::try_from(leg.debit).unwrap_or(i64::MAX);
    let credit = i64::try_from(leg.credit).unwrap_or(i64::MAX);
    let mut transaction = client.transaction()?;
    let rows = transaction.query(&statements.select, &[&debit, &credit])?;
    let mut debit_balance = None;
    for row in &rows {
        if row.try_get::<_, i64>(0)? == debit {
            debit_balance = Some(row.try_get::<_, i64>(1)?);
        }
    }
    match debit_balance {
        // Dropping the transaction rolls it back.
        None => return Ok(Err("debit_account_not_found".into())),
        Some(balance) if balance < leg.amount => return Ok(Err("exceeds_credits".into())),
        Some(_) => {}
    }
    transaction.execute(&statements.debit, &[&debit, &leg.amount])?;
    transaction.execute(&statements.credit, &[&credit, &leg.amount])?;
    transaction.execute(&statements.insert, &[&id, &debit, &credit, &leg.amount])?;
    transaction.commit()?;
    Ok(Ok(()))
}
