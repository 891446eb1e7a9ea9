//! A fresh database per test, on either backend, with a clock the test moves.

use std::sync::Arc;
use std::thread::JoinHandle;

use mizan_core::{AccountId, ManualClock, TransferId};
use mizan_ledger::{
    AccountCode, AccountFlags, Ledger, LedgerReader, NewAccount, Submission, SubmissionResult,
    TransferRequest, WriterConfig,
};
use mizan_store::postgres::create_test_database;
use mizan_store::postgres::TestDatabase;
use mizan_store::sqlite::{BalanceFlush, HistoryConfig, SqliteConfig};
use mizan_store::{PostgresReader, PostgresStore, SqliteReader, SqliteStore};

pub const START_NS: u64 = 1_700_000_000_000_000_000;
pub const USD: u32 = 840;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("MIZAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct Fixture {
    pub backend: Backend,
    pub clock: ManualClock,
    directory: tempfile::TempDir,
    database: Option<TestDatabase>,
}

/// A running writer; stopping it waits for the thread to finish.
pub struct Running {
    pub ledger: Ledger,
    handle: JoinHandle<()>,
}

impl Running {
    pub fn stop(self) {
        drop(self.ledger);
        self.handle.join().expect("writer thread panicked");
    }

    pub fn submit(&self, submission: Submission) -> SubmissionResult {
        self.ledger
            .submit_blocking(submission)
            .expect("submission failed")
    }

    pub fn transfers(&self, transfers: Vec<TransferRequest>) -> Vec<&'static str> {
        self.submit(Submission::transfers(transfers))
            .transfers
            .iter()
            .map(|t| t.result.as_str())
            .collect()
    }
}

impl Fixture {
    pub fn new(backend: Backend) -> Fixture {
        Fixture {
            backend,
            clock: ManualClock::new(START_NS),
            directory: tempfile::tempdir().expect("temporary directory"),
            database: (backend == Backend::Postgres).then(|| {
                create_test_database(&postgres_admin_url())
                    .expect("create test database (is PostgreSQL running?)")
            }),
        }
    }

    fn sqlite_path(&self) -> std::path::PathBuf {
        self.directory.path().join("ledger.sqlite")
    }

    fn postgres_url(&self) -> &str {
        &self.database.as_ref().expect("postgres fixture").url
    }

    pub fn start(&self) -> Running {
        let config = WriterConfig {
            expiry_interval_ms: 20,
            ..WriterConfig::default()
        };
        let clock = Arc::new(self.clock.clone());
        let (ledger, handle) = match self.backend {
            Backend::Sqlite => {
                // Tiny history segments, merged often: queries see segments of every
                // level and an unindexed tail at once.
                let history = HistoryConfig {
                    segment_transfers_max: 16,
                    segment_transfers_min: 1,
                    tail_wait_ms: 0,
                    merge_fan_in: 3,
                    level_max: 3,
                    idle_sleep_ms: 1,
                };
                // Balances flushed every few transfers: reads see flushed rows and a
                // replayed tail at once.
                let sqlite_config = SqliteConfig {
                    history,
                    balance_flush: BalanceFlush {
                        every_transfers: 7,
                        every_ms: 60_000,
                        // Busy-account snapshots between flushes, read back too.
                        snapshot_entries: 2,
                    },
                };
                let store = SqliteStore::open_with(&self.sqlite_path(), sqlite_config)
                    .expect("open sqlite");
                Ledger::start(store, clock, config).expect("start writer")
            }
            Backend::Postgres => {
                let store = PostgresStore::connect(self.postgres_url()).expect("connect postgres");
                Ledger::start(store, clock, config).expect("start writer")
            }
        };
        Running { ledger, handle }
    }

    /// A second, independent writer on the same database (another process, in effect).
    pub fn start_second_writer(&self) -> Option<Running> {
        match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(self.start()),
        }
    }

    pub fn reader(&self) -> Box<dyn LedgerReader> {
        match self.backend {
            Backend::Sqlite => Box::new(SqliteReader::open(&self.sqlite_path()).expect("reader")),
            Backend::Postgres => {
                Box::new(PostgresReader::connect(self.postgres_url()).expect("reader"))
            }
        }
    }

    /// Runs raw SQL against the database, bypassing the ledger (tampering tests).
    pub fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let connection = rusqlite::Connection::open(self.sqlite_path()).expect("open");
                connection.execute_batch(sql).expect("execute");
            }
            Backend::Postgres => {
                let mut client = postgres::Client::connect(self.postgres_url(), postgres::NoTls)
                    .expect("connect");
                // The append-only trigger stands in the way of the tamperer, as it should.
                client
                    .batch_execute(&format!(
                        "ALTER TABLE transfers DISABLE TRIGGER transfers_append_only; {sql}; \
                         ALTER TABLE transfers ENABLE TRIGGER transfers_append_only;"
                    ))
                    .expect("execute");
            }
        }
    }

    /// Hex literal of an id in this backend's SQL dialect.
    pub fn id_literal(&self, id: u128) -> String {
        match self.backend {
            Backend::Sqlite => format!("X'{id:032x}'"),
            Backend::Postgres => format!("'{id:032x}'::uuid"),
        }
    }
}

pub fn account_id(id: u128) -> AccountId {
    AccountId::new(id).expect("valid account id")
}

pub fn transfer_id(id: u128) -> TransferId {
    TransferId::new(id).expect("valid transfer id")
}

pub fn wallet(id: u128) -> NewAccount {
    NewAccount {
        id: account_id(id),
        ledger: USD,
        code: AccountCode::UserWallet,
        owner: id,
        flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    }
}

/// An account that may go negative: where money enters from outside.
pub fn clearing(id: u128) -> NewAccount {
    NewAccount {
        id: account_id(id),
        ledger: USD,
        code: AccountCode::ProcessorClearing,
        owner: 0,
        flags: AccountFlags::NONE,
    }
}

pub fn transfer(id: u128, debit: u128, credit: u128, amount: i64) -> TransferRequest {
    TransferRequest::single(
        transfer_id(id),
        account_id(debit),
        account_id(credit),
        amount,
        USD,
        1,
    )
}
