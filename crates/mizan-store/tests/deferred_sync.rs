//! The writer answers a batch only after the flush that makes it durable, and stops
//! for good when a flush fails.
//!
//! A SQLite store commits with `synchronous=NORMAL` and hands the writer its flush
//! (`LedgerStore::deferred_sync`). These tests wrap the real store so the flush can
//! be held back or made to fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mizan_core::{AccountId, ManualClock, TransferId};
use mizan_ledger::store::{BatchWrites, DeferredSync};
use mizan_ledger::{
    Account, AccountCode, AccountFlags, ChainHead, Ledger, LedgerReader, LedgerStore, NewAccount,
    PendingStatus, StoreError, Submission, Transfer, WriterConfig,
};
use mizan_store::{SqliteReader, SqliteStore};

/// What the test does to each flush.
#[derive(Clone, Default)]
struct FlushControl {
    /// Flushes wait for a message here (none: they go through).
    gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    fail: Arc<AtomicBool>,
    flushed: Arc<std::sync::atomic::AtomicU64>,
}

struct ControlledSync {
    inner: Box<dyn DeferredSync>,
    control: FlushControl,
}

impl DeferredSync for ControlledSync {
    fn sync(&mut self) -> Result<(), StoreError> {
        if let Some(gate) = self.control.gate.lock().unwrap().as_ref() {
            gate.recv().expect("gate");
        }
        if self.control.fail.load(Ordering::SeqCst) {
            return Err(StoreError::Database("injected flush failure".into()));
        }
        self.inner.sync()?;
        self.control.flushed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The real SQLite store, with its flush under the test's control.
struct Controlled {
    store: SqliteStore,
    control: FlushControl,
}

impl LedgerStore for Controlled {
    fn deferred_sync(&mut self) -> Result<Option<Box<dyn DeferredSync>>, StoreError> {
        let inner = self
            .store
            .deferred_sync()?
            .expect("SQLite defers its flush");
        Ok(Some(Box::new(ControlledSync {
            inner,
            control: self.control.clone(),
        })))
    }
    fn exclusive(&self) -> bool {
        self.store.exclusive()
    }
    fn begin(&mut self) -> Result<(), StoreError> {
        self.store.begin()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.store.commit()
    }
    fn rollback(&mut self) -> Result<(), StoreError> {
        self.store.rollback()
    }
    fn lock_chain_head(&mut self) -> Result<ChainHead, StoreError> {
        self.store.lock_chain_head()
    }
    fn lock_accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        self.store.lock_accounts(ids)
    }
    fn load_all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        self.store.load_all_accounts()
    }
    fn load_transfers(
        &mut self,
        ids: &[TransferId],
    ) -> Result<Vec<(Transfer, Option<PendingStatus>)>, StoreError> {
        self.store.load_transfers(ids)
    }
    fn due_expiries(&mut self, now_ns: u64, limit: usize) -> Result<Vec<TransferId>, StoreError> {
        self.store.due_expiries(now_ns, limit)
    }
    fn write_batch(&mut self, writes: &BatchWrites) -> Result<(), StoreError> {
        self.store.write_batch(writes)
    }
    fn existing_documents(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.store.existing_documents(keys)
    }
}

fn wallet(id: u128) -> NewAccount {
    NewAccount {
        id: AccountId::new(id).unwrap(),
        ledger: mizan_ledger::ledger_of(mizan_core::Currency::USD),
        code: AccountCode::UserWallet,
        owner: id,
        flags: AccountFlags::NONE,
    }
}

fn start(directory: &tempfile::TempDir, control: &FlushControl) -> Ledger {
    let store = SqliteStore::open(&directory.path().join("ledger.sqlite")).unwrap();
    let controlled = Controlled {
        store,
        control: control.clone(),
    };
    let clock = Arc::new(ManualClock::new(1_000_000_000));
    let (ledger, _handle) = Ledger::start(controlled, clock, WriterConfig::default()).unwrap();
    ledger
}

#[test]
fn a_batch_is_answered_only_after_its_flush() {
    let directory = tempfile::tempdir().unwrap();
    let control = FlushControl::default();
    let (open_gate, gate) = mpsc::channel();
    *control.gate.lock().unwrap() = Some(gate);
    let ledger = start(&directory, &control);
    let submitting = ledger.clone();
    let (answered, answer) = mpsc::channel();
    std::thread::spawn(move || {
        let result = submitting.submit_blocking(Submission::accounts(vec![wallet(7)]));
        answered.send(result.map(|r| r.all_ok())).unwrap();
    });
    // Committed (a reader sees it), but not flushed: no answer yet.
    let mut reader = SqliteReader::open(&directory.path().join("ledger.sqlite")).unwrap();
    let id = AccountId::new(7).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reader.accounts(&[id]).unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never committed");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(answer.recv_timeout(Duration::from_millis(200)).is_err());
    assert_eq!(control.flushed.load(Ordering::SeqCst), 0);
    open_gate.send(()).unwrap();
    let outcome = answer
        .recv_timeout(Duration::from_secs(10))
        .expect("answered");
    assert!(outcome.unwrap());
    assert_eq!(control.flushed.load(Ordering::SeqCst), 1);
    // Later flushes go through without the gate.
    *control.gate.lock().unwrap() = None;
    drop(open_gate);
}

#[test]
fn a_failed_flush_fails_its_callers_and_stops_the_writer() {
    let directory = tempfile::tempdir().unwrap();
    let control = FlushControl::default();
    let ledger = start(&directory, &control);
    assert!(ledger
        .submit_blocking(Submission::accounts(vec![wallet(1)]))
        .unwrap()
        .all_ok());
    control.fail.store(true, Ordering::SeqCst);
    let error = ledger
        .submit_blocking(Submission::accounts(vec![wallet(2)]))
        .expect_err("the flush failed");
    assert_eq!(error.code(), "storage_unavailable");
    assert!(
        error.to_string().contains("injected flush failure"),
        "{error}"
    );
    // The writer has stopped: nothing more is taken, even once flushes would work.
    control.fail.store(false, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let error = ledger
            .submit_blocking(Submission::accounts(vec![wallet(3)]))
            .expect_err("stopped");
        if error.code() == "ledger_stopped" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{error}");
    }
    assert_eq!(control.flushed.load(Ordering::SeqCst), 1);
}
