//! The PostgreSQL store against a real server, through the ledger writer: every test
//! gets a fresh database, dropped at the end.
//!
//! Set `MIZAN_TEST_POSTGRES_URL` to an admin URL (a role with CREATEDB); the default
//! is the local trust-auth server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, ensure};
use mizan_core::{AccountId, Clock, ManualClock, SystemClock, TransferId};
use mizan_ledger::store::HISTORY_PAGE_LIMIT_MAX;
use mizan_ledger::{
    AccountCode, AccountFlags, Balances, BusinessRow, CreateAccountResult, CreateTransferResult,
    HistoryFilter, Ledger, LedgerReader, NewAccount, PendingStatus, StoreError, Submission,
    SubmissionResult, Transfer, TransferFlags, TransferRequest, WriterConfig,
};
use mizan_store::postgres::{create_test_database, PostgresReader, PostgresStore, TestDatabase};

const ADMIN_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const USD: u32 = 840;
const CODE_PAYMENT: u16 = 1;
const CODE_FEE: u16 = 7;

fn admin_url() -> String {
    std::env::var("MIZAN_TEST_POSTGRES_URL").unwrap_or_else(|_| ADMIN_URL_DEFAULT.to_owned())
}

/// A ledger writer over a fresh database, plus a reader on it.
struct TestLedger {
    ledger: Option<Ledger>,
    writer: Option<JoinHandle<()>>,
    reader: PostgresReader,
    clock: ManualClock,
    // Declared last: dropped after the connections above are closed.
    database: TestDatabase,
}

impl TestLedger {
    fn start() -> anyhow::Result<TestLedger> {
        let database = create_test_database(&admin_url())?;
        let clock = ManualClock::new(SystemClock.now_ns());
        let store = PostgresStore::connect(&database.url)?;
        let reader = store.reader()?;
        let (ledger, writer) =
            Ledger::start(store, Arc::new(clock.clone()), WriterConfig::default())?;
        Ok(TestLedger {
            ledger: Some(ledger),
            writer: Some(writer),
            reader,
            clock,
            database,
        })
    }

    fn ledger(&self) -> anyhow::Result<&Ledger> {
        self.ledger
            .as_ref()
            .ok_or_else(|| anyhow!("the ledger was stopped"))
    }

    fn submit(&self, submission: Submission) -> anyhow::Result<SubmissionResult> {
        submit(self.ledger()?, submission)
    }

    fn transfer(&self, request: TransferRequest) -> anyhow::Result<Transfer> {
        let result = self.submit(Submission::transfers(vec![request]))?;
        let outcome = result.transfers[0];
        ensure!(
            outcome.result == CreateTransferResult::Ok,
            "transfer {:?} failed: {:?}",
            request.id,
            outcome.result
        );
        outcome
            .transfer
            .ok_or_else(|| anyhow!("committed transfer missing"))
    }

    fn balances(&mut self, id: AccountId) -> anyhow::Result<Balances> {
        let accounts = self.reader.accounts(&[id])?;
        ensure!(accounts.len() == 1, "account {id} not found");
        Ok(accounts[0].balances())
    }
}

impl Drop for TestLedger {
    fn drop(&mut self) {
        // The writer stops once its last handle is gone; wait so its connection closes.
        self.ledger.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn submit(ledger: &Ledger, submission: Submission) -> anyhow::Result<SubmissionResult> {
    ledger
        .submit_blocking(submission)
        .map_err(|error| anyhow!("submit failed: {error}"))
}

/// Test ids are small non-zero numbers, valid by construction.
fn account_id(raw: u128) -> AccountId {
    AccountId::from_raw(raw)
}

fn transfer_id(raw: u128) -> TransferId {
    TransferId::from_raw(raw)
}

fn new_account(raw: u128, code: AccountCode, flags: AccountFlags) -> NewAccount {
    NewAccount {
        id: account_id(raw),
        ledger: USD,
        code,
        owner: raw << 64,
        flags,
    }
}

fn payment(id: u128, debit: AccountId, credit: AccountId, amount: i64) -> TransferRequest {
    TransferRequest::single(transfer_id(id), debit, credit, amount, USD, CODE_PAYMENT)
}

fn balances(
    debits_pending: i64,
    debits_posted: i64,
    credits_pending: i64,
    credits_posted: i64,
) -> Balances {
    Balances {
        debits_pending,
        debits_posted,
        credits_pending,
        credits_posted,
    }
}

const OPERATING: u128 = 0x0100;
const ALICE: u128 = 0x0a11;
const BOB: u128 = 0x0b0b;

/// Operating (no limits) and two wallets that cannot be overdrawn.
fn open_accounts(test: &TestLedger) -> anyhow::Result<()> {
    let wallet = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
    let result = test.submit(Submission::accounts(vec![
        new_account(OPERATING, AccountCode::Operating, AccountFlags::NONE),
        new_account(ALICE, AccountCode::UserWallet, wallet),
        new_account(BOB, AccountCode::UserWallet, wallet),
    ]))?;
    ensure!(
        result
            .accounts
            .iter()
            .all(|r| *r == CreateAccountResult::Ok),
        "{result:?}"
    );
    Ok(())
}

/// Single, pending+post, pending+void, a linked chain that commits and one that fails.
/// Returns the six transfers touching Alice, oldest first.
fn run_payments(test: &TestLedger) -> anyhow::Result<Vec<Transfer>> {
    let (operating, alice, bob) = (account_id(OPERATING), account_id(ALICE), account_id(BOB));
    let deposit = test.transfer(payment(1, operating, alice, 10_000))?;
    let hold = test.transfer(payment(2, alice, bob, 3_000).with_flags(TransferFlags::PENDING))?;
    let capture = test.transfer(TransferRequest::resolve(
        transfer_id(3),
        transfer_id(2),
        true,
        2_000,
    ))?;
    let hold_voided =
        test.transfer(payment(4, alice, bob, 1_000).with_flags(TransferFlags::PENDING))?;
    let void = test.transfer(TransferRequest::resolve(
        transfer_id(5),
        transfer_id(4),
        false,
        0,
    ))?;
    let chain = test.submit(Submission::transfers(vec![
        TransferRequest::single(transfer_id(6), alice, bob, 500, USD, CODE_FEE)
            .with_flags(TransferFlags::LINKED),
        payment(7, bob, operating, 200),
    ]))?;
    ensure!(chain.all_ok(), "linked chain failed: {chain:?}");
    let fee = chain.transfers[0]
        .transfer
        .ok_or_else(|| anyhow!("fee not committed"))?;
    let failing = test.submit(Submission::transfers(vec![
        payment(8, alice, bob, 100).with_flags(TransferFlags::LINKED),
        payment(9, alice, bob, 1_000_000),
    ]))?;
    let results: Vec<_> = failing.transfers.iter().map(|t| t.result).collect();
    ensure!(
        results
            == [
                CreateTransferResult::LinkedEventFailed,
                CreateTransferResult::ExceedsCredits
            ],
        "failing chain: {results:?}"
    );
    let replay = test.submit(Submission::transfers(vec![payment(
        1, operating, alice, 10_000,
    )]))?;
    ensure!(
        replay.all_exist(),
        "a re-submitted transfer must exist: {replay:?}"
    );
    ensure!(
        capture.debit_account_id == alice && capture.amount == 2_000,
        "post inherits: {capture:?}"
    );
    Ok(vec![deposit, hold, capture, hold_voided, void, fee])
}

#[test]
fn transfers_balances_and_verification() -> anyhow::Result<()> {
    let mut test = TestLedger::start()?;
    open_accounts(&test)?;
    let alice_history = run_payments(&test)?;

    assert_eq!(
        test.balances(account_id(OPERATING))?,
        balances(0, 10_000, 0, 200)
    );
    assert_eq!(
        test.balances(account_id(ALICE))?,
        balances(0, 2_500, 0, 10_000)
    );
    assert_eq!(test.balances(account_id(BOB))?, balances(0, 200, 0, 2_500));
    assert_eq!(
        test.reader.pending_status(transfer_id(2))?,
        Some(PendingStatus::Posted)
    );
    assert_eq!(
        test.reader.pending_status(transfer_id(4))?,
        Some(PendingStatus::Voided)
    );
    assert_eq!(test.reader.pending_status(transfer_id(1))?, None);

    let found = test
        .reader
        .transfers(&[transfer_id(3), transfer_id(1), transfer_id(99)])?;
    assert_eq!(found, vec![alice_history[2], alice_history[0]]);
    let accounts =
        test.reader
            .accounts(&[account_id(BOB), account_id(0x999), account_id(ALICE)])?;
    let ids: Vec<AccountId> = accounts.iter().map(|a| a.id).collect();
    assert_eq!(ids, vec![account_id(BOB), account_id(ALICE)]);
    assert_eq!(accounts[0].code, AccountCode::UserWallet);
    assert_eq!(accounts[0].owner, BOB << 64);
    assert_eq!(test.reader.all_accounts()?.len(), 3);

    let head = test.reader.chain_head()?;
    assert_eq!(head.transfers_count, 7);
    let report = mizan_ledger::verify::verify(&mut test.reader)?;
    assert_eq!((report.transfers, report.accounts), (7, 3));
    assert_eq!(report.last_hash, hex_of(&head.last_hash));
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Walks every page of a history query and checks each page's size and cursor.
fn all_pages(
    reader: &mut PostgresReader,
    account: AccountId,
    mut filter: HistoryFilter,
) -> anyhow::Result<Vec<Vec<u64>>> {
    let mut pages = Vec::new();
    loop {
        let page = reader.account_history(account, &filter)?;
        let timestamps: Vec<u64> = page.transfers.iter().map(|t| t.timestamp).collect();
        let cursor = page.next_cursor;
        pages.push(timestamps);
        match cursor {
            Some(cursor) => filter.after_timestamp = Some(cursor),
            None => return Ok(pages),
        }
        ensure!(pages.len() < 100, "history paging does not end");
    }
}

#[test]
fn history_pages_and_balances_at() -> anyhow::Result<()> {
    let mut test = TestLedger::start()?;
    open_accounts(&test)?;
    let history = run_payments(&test)?;
    let times: Vec<u64> = history.iter().map(|t| t.timestamp).collect();
    let alice = account_id(ALICE);
    let reader = &mut test.reader;

    let oldest = HistoryFilter {
        limit: 4,
        ..HistoryFilter::default()
    };
    assert_eq!(
        all_pages(reader, alice, oldest)?,
        vec![times[..4].to_vec(), times[4..].to_vec()]
    );
    let exact = HistoryFilter {
        limit: 3,
        ..HistoryFilter::default()
    };
    assert_eq!(
        all_pages(reader, alice, exact)?,
        vec![times[..3].to_vec(), times[3..].to_vec()]
    );
    let newest = HistoryFilter {
        limit: 4,
        newest_first: true,
        ..HistoryFilter::default()
    };
    let mut reversed = times.clone();
    reversed.reverse();
    assert_eq!(
        all_pages(reader, alice, newest)?,
        vec![reversed[..4].to_vec(), reversed[4..].to_vec()]
    );
    // Page sizes outside 1..=HISTORY_PAGE_LIMIT_MAX are refused, never clamped.
    for limit in [0, HISTORY_PAGE_LIMIT_MAX + 1] {
        let refused = HistoryFilter {
            limit,
            ..HistoryFilter::default()
        };
        assert!(reader.account_history(alice, &refused).is_err());
    }
    let largest = HistoryFilter {
        limit: HISTORY_PAGE_LIMIT_MAX,
        ..HistoryFilter::default()
    };
    assert_eq!(all_pages(reader, alice, largest)?, vec![times.clone()]);
    let window = HistoryFilter {
        from_timestamp: Some(times[1]),
        to_timestamp: Some(times[3]),
        limit: 10,
        ..HistoryFilter::default()
    };
    assert_eq!(
        all_pages(reader, alice, window)?,
        vec![times[1..4].to_vec()]
    );
    let fees = HistoryFilter {
        code: Some(CODE_FEE),
        limit: 10,
        ..HistoryFilter::default()
    };
    assert_eq!(all_pages(reader, alice, fees)?, vec![vec![times[5]]]);
    let nothing = HistoryFilter {
        newest_first: true,
        after_timestamp: Some(0),
        limit: 10,
        ..HistoryFilter::default()
    };
    assert!(reader
        .account_history(alice, &nothing)?
        .transfers
        .is_empty());

    assert_eq!(
        reader.balances_at(alice, times[0] - 1)?,
        Balances::default()
    );
    assert_eq!(
        reader.balances_at(alice, times[1])?,
        balances(3_000, 0, 0, 10_000)
    );
    assert_eq!(
        reader.balances_at(alice, times[2])?,
        balances(0, 2_000, 0, 10_000)
    );
    assert_eq!(
        reader.balances_at(alice, times[3])?,
        balances(1_000, 2_000, 0, 10_000)
    );
    assert_eq!(
        reader.balances_at(alice, u64::MAX)?,
        balances(0, 2_500, 0, 10_000)
    );
    Ok(())
}

#[test]
fn a_timed_out_pending_transfer_expires() -> anyhow::Result<()> {
    let mut test = TestLedger::start()?;
    open_accounts(&test)?;
    let (operating, alice, bob) = (account_id(OPERATING), account_id(ALICE), account_id(BOB));
    test.transfer(payment(1, operating, alice, 1_000))?;
    test.transfer(
        payment(2, alice, bob, 400)
            .with_flags(TransferFlags::PENDING)
            .with_timeout(1),
    )?;
    assert_eq!(test.balances(alice)?, balances(400, 0, 0, 1_000));

    test.clock.advance_seconds(2);
    // Any batch first expires what is due.
    test.transfer(payment(3, operating, bob, 5))?;
    assert_eq!(
        test.reader.pending_status(transfer_id(2))?,
        Some(PendingStatus::Expired)
    );
    assert_eq!(test.balances(alice)?, balances(0, 0, 0, 1_000));
    let late_post = test.submit(Submission::transfers(vec![TransferRequest::resolve(
        transfer_id(4),
        transfer_id(2),
        true,
        0,
    )]))?;
    assert_eq!(
        late_post.transfers[0].result,
        CreateTransferResult::PendingTransferExpired
    );

    let page = test.reader.account_history(
        alice,
        &HistoryFilter {
            limit: 10,
            ..HistoryFilter::default()
        },
    )?;
    let expiry = page
        .transfers
        .last()
        .copied()
        .ok_or_else(|| anyhow!("no history"))?;
    assert!(
        expiry.is_expiry() && expiry.id.is_zero() && expiry.pending_id == transfer_id(2),
        "{expiry:?}"
    );
    let report = mizan_ledger::verify::verify(&mut test.reader)?;
    assert_eq!(report.transfers, 4);
    Ok(())
}

#[test]
fn business_rows_commit_with_their_submission() -> anyhow::Result<()> {
    let mut test = TestLedger::start()?;
    open_accounts(&test)?;
    let document = |key: &str, body: &[u8]| BusinessRow::Document {
        collection: "payments".into(),
        key: key.into(),
        body: body.to_vec(),
    };
    let event = |payload: &[u8]| BusinessRow::Outbox {
        topic: "payment.settled".into(),
        payload: payload.to_vec(),
    };
    let (operating, alice) = (account_id(OPERATING), account_id(ALICE));
    let committed = test.submit(Submission {
        transfers: vec![payment(1, operating, alice, 10)],
        rows: vec![
            document("p1", b"draft"),
            event(b"one"),
            document("p1", b"final"),
            event(b"two"),
        ],
        ..Submission::default()
    })?;
    assert!(committed.all_ok());
    let refused = test.submit(Submission {
        transfers: vec![payment(2, alice, operating, 1_000_000)],
        rows: vec![document("p2", b"never"), event(b"never")],
        ..Submission::default()
    })?;
    assert_eq!(
        refused.transfers[0].result,
        CreateTransferResult::ExceedsCredits
    );

    assert_eq!(
        test.reader.document("payments", "p1")?,
        Some(b"final".to_vec())
    );
    assert_eq!(test.reader.document("payments", "p2")?, None);
    let events = test.reader.outbox(0, 10)?;
    let payloads: Vec<&[u8]> = events
        .iter()
        .map(|(_, _, payload)| payload.as_slice())
        .collect();
    assert_eq!(payloads, vec![b"one".as_slice(), b"two".as_slice()]);
    assert!(events[0].0 < events[1].0 && events[0].1 == "payment.settled");
    assert_eq!(test.reader.outbox(events[0].0, 10)?.len(), 1);
    Ok(())
}

#[test]
fn two_writers_share_one_database() -> anyhow::Result<()> {
    let mut test = TestLedger::start()?;
    let accounts: Vec<NewAccount> = (1..=4)
        .map(|raw| new_account(raw, AccountCode::Operating, AccountFlags::NONE))
        .collect();
    test.submit(Submission::accounts(accounts))?;
    let second_store = PostgresStore::connect(&test.database.url)?;
    let (second, second_writer) =
        Ledger::start(second_store, Arc::new(SystemClock), WriterConfig::default())?;
    let ledgers = [test.ledger()?.clone(), second];
    let per_thread: u128 = 100;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4_u128)
            .map(|thread| {
                let ledger = ledgers[(thread % 2) as usize].clone();
                scope.spawn(move || -> anyhow::Result<()> {
                    for n in 0..per_thread {
                        let debit = account_id(1 + (n + thread) % 4);
                        let credit = account_id(1 + (n + thread + 1) % 4);
                        let request =
                            payment(1_000 + thread * per_thread + n, debit, credit, 1 + n as i64);
                        let result = submit(&ledger, Submission::transfers(vec![request]))?;
                        ensure!(result.all_ok(), "{result:?}");
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.join().map_err(|_| anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    drop(ledgers);
    second_writer
        .join()
        .map_err(|_| anyhow!("second writer panicked"))?;
    let report = mizan_ledger::verify::verify(&mut test.reader)?;
    assert_eq!(report.transfers, 4 * per_thread as u64);
    Ok(())
}

#[test]
fn migrations_are_idempotent_and_history_is_append_only() -> anyhow::Result<()> {
    let test = TestLedger::start()?;
    open_accounts(&test)?;
    test.transfer(payment(1, account_id(OPERATING), account_id(ALICE), 10))?;
    let again = PostgresStore::connect(&test.database.url)?;
    drop(again);
    let mut client = postgres::Client::connect(&test.database.url, postgres::NoTls)?;
    let versions: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])?
        .get(0);
    assert_eq!(versions, 4);
    let heads: i64 = client
        .query_one("SELECT count(*) FROM ledger_head", &[])?
        .get(0);
    assert_eq!(heads, 1);
    let edit = client.execute("UPDATE transfers SET amount = 11", &[]);
    assert!(edit.is_err(), "transfers must refuse UPDATE");
    let delete = client.execute("DELETE FROM transfers", &[]);
    assert!(delete.is_err(), "transfers must refuse DELETE");
    Ok(())
}

#[test]
fn unknown_codes_and_flags_read_as_corrupt() -> anyhow::Result<()> {
    let mut test = TestLedger::start()?;
    open_accounts(&test)?;
    let mut client = postgres::Client::connect(&test.database.url, postgres::NoTls)?;
    client.execute("UPDATE accounts SET flags = 1024 WHERE code = 10", &[])?;
    let read = test.reader.accounts(&[account_id(OPERATING)]);
    assert!(matches!(read, Err(StoreError::Corrupt(_))), "{read:?}");
    client.execute(
        "UPDATE accounts SET flags = 0, code = 99 WHERE code = 10",
        &[],
    )?;
    let read = test.reader.all_accounts();
    assert!(matches!(read, Err(StoreError::Corrupt(_))), "{read:?}");
    Ok(())
}

/// Sequential scans so far of the tables only the writer reads (the history indexer
/// reads `transfers` too, by ranges a scan may well serve). Call it once the
/// writer's connections are closed: a server process publishes its counts when it
/// exits (while it runs, only now and then).
fn seq_scans(url: &str) -> anyhow::Result<i64> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let row = client.query_one(
        "SELECT coalesce(sum(seq_scan), 0)::bigint FROM pg_stat_user_tables \
         WHERE relname IN ('accounts', 'documents', 'pending_transfers')",
        &[],
    )?;
    Ok(row.get(0))
}

#[test]
fn the_writer_keeps_finding_rows_by_index_as_tables_grow() -> anyhow::Result<()> {
    let test = TestLedger::start()?;
    let accounts = |from: u128, count: u128| -> Vec<NewAccount> {
        (from..from + count)
            .map(|raw| new_account(raw, AccountCode::Operating, AccountFlags::NONE))
            .collect()
    };
    // Every batch names transfer ids below the largest committed one (so the writer
    // probes for them), creates a document (so it checks for taken keys) and touches
    // accounts it must read.
    let batch = |round: u128, transfers: u128| {
        let first = 1_000_000_000 - round * 10_000;
        Submission {
            transfers: (0..transfers)
                .map(|n| payment(first + n, account_id(1 + n % 50), account_id(51), 1))
                .collect(),
            rows: vec![BusinessRow::Create {
                collection: "claims".into(),
                key: format!("round-{round}"),
                body: Vec::new(),
            }],
            ..Submission::default()
        }
    };
    test.submit(Submission::accounts(accounts(1, 51)))?;
    test.transfer(payment(2_000_000_000, account_id(1), account_id(2), 1))?;
    // Small tables: the statements' cached plans are made now.
    for round in 0..10 {
        assert!(test.submit(batch(round, 2))?.all_ok());
    }
    // The tables grow well past what a plan made above would scan cheaply.
    for chunk in 0..10 {
        test.submit(Submission::accounts(accounts(1_000 + chunk * 500, 500)))?;
    }
    for round in 10..50 {
        let transfers = if round < 30 { 500 } else { 2 };
        assert!(test.submit(batch(round, transfers))?.all_ok());
    }
    // Stop the writer (and its history indexer): their counts are published. Setting
    // up a database (its migrations) scans some tables itself: a ledger started and
    // stopped at once counts those.
    let stopped = |mut test: TestLedger| -> anyhow::Result<i64> {
        test.ledger.take();
        if let Some(writer) = test.writer.take() {
            writer.join().map_err(|_| anyhow!("the writer panicked"))?;
        }
        seq_scans(&test.database.url)
    };
    let scanned = stopped(test)?;
    let set_up = stopped(TestLedger::start()?)?;
    assert_eq!(scanned, set_up, "the writer scanned a table");
    Ok(())
}

/// Counts what the writer tells its observer.
#[derive(Default)]
struct Told {
    committed: std::sync::atomic::AtomicUsize,
    foreign: std::sync::atomic::AtomicUsize,
}

impl mizan_ledger::CommitObserver for Told {
    fn committed(&self, _rows: &[BusinessRow]) {
        self.committed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn foreign_commits(&self) {
        self.foreign
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_writer_hears_of_another_process_commit_even_of_rows_only() -> anyhow::Result<()> {
    use std::sync::atomic::Ordering::SeqCst;
    let database = create_test_database(&admin_url())?;
    let told = Arc::new(Told::default());
    let config = WriterConfig {
        observer: Some(told.clone() as Arc<dyn mizan_ledger::CommitObserver>),
        expiry_interval_ms: 20,
        ..WriterConfig::default()
    };
    let (watched, watched_writer) = Ledger::start(
        PostgresStore::connect(&database.url)?,
        Arc::new(SystemClock),
        config,
    )?;
    let (other, other_writer) = Ledger::start(
        PostgresStore::connect(&database.url)?,
        Arc::new(SystemClock),
        WriterConfig::default(),
    )?;
    let row = |key: &str| Submission {
        rows: vec![BusinessRow::Document {
            collection: "sessions".into(),
            key: key.into(),
            body: b"live".to_vec(),
        }],
        ..Submission::default()
    };
    let settle = || std::thread::sleep(std::time::Duration::from_millis(200));
    // Waits (a few seconds at most) until the observer was told `count` times.
    let told_times = |count: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while told.foreign.load(SeqCst) < count && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        told.foreign.load(SeqCst)
    };
    // Its first look finds a past it did not see: told once.
    assert_eq!(told_times(1), 1);
    // Its own commits, however many, are not another process's.
    for n in 0..5 {
        assert!(submit(&watched, row(&format!("own-{n}")))?.all_ok());
    }
    settle();
    assert_eq!(told.foreign.load(SeqCst), 1);
    assert_eq!(told.committed.load(SeqCst), 5);
    // A rows-only batch of the other process leaves the chain head as it was, and is
    // still heard of, once, at the next idle wake-up.
    assert!(submit(&other, row("revoked"))?.all_ok());
    assert_eq!(told_times(2), 2);
    settle();
    assert_eq!(told.foreign.load(SeqCst), 2);
    drop((watched, other));
    for writer in [watched_writer, other_writer] {
        writer.join().map_err(|_| anyhow!("a writer panicked"))?;
    }
    Ok(())
}
