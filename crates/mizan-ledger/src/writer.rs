//! The single writer: group commit for every caller of one database.
//!
//! Callers send [`Submission`]s over a bounded channel (back-pressure, not unbounded
//! memory). The writer thread drains up to [`WriterConfig::transaction_events_max`] events,
//! runs them through the [`Engine`] in arrival order, writes the whole batch in one
//! storage transaction and answers every caller only after the commit. A hot account
//! costs nothing extra: its balance is written once per batch, whatever the number of
//! transfers that touched it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mizan_core::{AccountId, Clock, TransferId};
use tokio::sync::{mpsc, oneshot};

use crate::chain::chain_transfers;
use crate::engine::{BatchOutput, Engine, SubmissionOutcome, SubmissionShape, WorkingSet};
use crate::results::{CreateAccountResult, CreateTransferResult};
use crate::store::{BatchWrites, BusinessRow, LedgerStore, StoreError};
use crate::sync::Syncer;
use crate::types::{
    NewAccount, Transfer, TransferRequest, BATCH_EVENTS_MAX, TRANSACTION_EVENTS_MAX,
};

/// Most business rows one submission may carry.
pub const SUBMISSION_ROWS_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most events (accounts + transfers) one submission may carry.
    pub batch_events_max: usize,
    /// Most events in one storage transaction, over all its submissions.
    pub transaction_events_max: usize,
    /// Submissions that may wait in the queue before senders wait.
    pub queue_submissions_max: usize,
    /// Most timed-out pending transfers expired in one batch.
    pub expiries_per_batch_max: usize,
    /// How often an idle writer looks for timed-out pending transfers.
    pub expiry_interval_ms: u64,
    /// Told of every committed batch's business rows (see [`CommitObserver`]).
    pub observer: Option<Arc<dyn CommitObserver>>,
}

/// Told, on the writer's thread, of the business rows of every batch it committed:
/// after the commit, before any of the batch's callers is answered. A cache of
/// documents kept by the process that is the database's only writer can drop what a
/// batch rewrote, so no caller who heard of a write reads the old document.
pub trait CommitObserver: Send + Sync + 'static {
    fn committed(&self, rows: &[BusinessRow]);
    /// Another process committed to the shared database since the writer last
    /// looked ([`LedgerStore::take_foreign_commits`]): what the observer keeps may
    /// be stale. Told at the writer's next batch or idle wake-up
    /// ([`WriterConfig::expiry_interval_ms`]), so that is how long it may have been.
    fn foreign_commits(&self) {}
}

impl std::fmt::Debug for dyn CommitObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommitObserver")
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            batch_events_max: BATCH_EVENTS_MAX,
            transaction_events_max: TRANSACTION_EVENTS_MAX,
            queue_submissions_max: 16_384,
            expiries_per_batch_max: 1_024,
            expiry_interval_ms: 1_000,
            observer: None,
        }
    }
}

/// A unit of work for the ledger: accounts and transfers, plus the business rows
/// that commit if, and only if, all of them are newly created.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    pub accounts: Vec<NewAccount>,
    pub transfers: Vec<TransferRequest>,
    pub rows: Vec<BusinessRow>,
    /// All or nothing. Implied when `rows` is not empty.
    pub atomic: bool,
    /// Accounts and transfers the submission needs to exist, applied before the
    /// others: created when their id is free, and no failure when it is taken (see
    /// [`Engine::submit_ensuring`]).
    pub ensure: Ensure,
}

/// The ensured events of a [`Submission`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ensure {
    pub accounts: Vec<NewAccount>,
    pub transfers: Vec<TransferRequest>,
}

impl Ensure {
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.transfers.is_empty()
    }
}

impl Submission {
    pub fn transfers(transfers: Vec<TransferRequest>) -> Submission {
        Submission {
            transfers,
            ..Submission::default()
        }
    }

    pub fn accounts(accounts: Vec<NewAccount>) -> Submission {
        Submission {
            accounts,
            ..Submission::default()
        }
    }

    fn events(&self) -> usize {
        self.accounts.len()
            + self.transfers.len()
            + self.ensure.accounts.len()
            + self.ensure.transfers.len()
    }

    fn shape(&self) -> SubmissionShape {
        SubmissionShape {
            accounts: self.accounts.len(),
            transfers: self.transfers.len(),
            ensured_accounts: self.ensure.accounts.len(),
            ensured_transfers: self.ensure.transfers.len(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferResult {
    pub result: CreateTransferResult,
    /// The committed transfer (with timestamp and hash) when `result` is `Ok`.
    pub transfer: Option<Transfer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubmissionResult {
    pub accounts: Vec<CreateAccountResult>,
    pub transfers: Vec<TransferResult>,
    /// The results of the submission's [`Ensure`] events, in their order.
    pub ensured_accounts: Vec<CreateAccountResult>,
    pub ensured_transfers: Vec<TransferResult>,
    /// The (collection, key) of a `Create` row that was taken: nothing was applied.
    pub row_conflict: Option<(String, String)>,
}

impl SubmissionResult {
    /// True when every event was newly created (an ensured one: created or there
    /// already) and no row conflicted (so the rows were written too).
    pub fn all_ok(&self) -> bool {
        self.row_conflict.is_none()
            && self.accounts.iter().all(|r| *r == CreateAccountResult::Ok)
            && self
                .transfers
                .iter()
                .all(|t| t.result == CreateTransferResult::Ok)
            && self
                .ensured_accounts
                .iter()
                .all(|r| *r == CreateAccountResult::Ok || r.id_taken())
            && self
                .ensured_transfers
                .iter()
                .all(|t| t.result == CreateTransferResult::Ok || t.result.id_taken())
    }

    /// True when every event already existed identically: a replay.
    pub fn all_exist(&self) -> bool {
        self.accounts
            .iter()
            .all(|r| *r == CreateAccountResult::Exists)
            && self
                .transfers
                .iter()
                .all(|t| t.result == CreateTransferResult::Exists)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("a submission carries {events} events; at most {max} fit in a batch")]
    BatchTooLarge { events: usize, max: usize },
    #[error("a submission carries {rows} business rows; at most {max}")]
    TooManyRows { rows: usize, max: usize },
    #[error("a submission must carry at least one account, transfer or row")]
    EmptySubmission,
    #[error("storage failed; the batch was not committed: {0}")]
    Store(#[from] StoreError),
    #[error("the ledger writer has stopped")]
    Stopped,
}

impl LedgerError {
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::BatchTooLarge { .. } => "batch_too_large",
            LedgerError::TooManyRows { .. } => "too_many_rows",
            LedgerError::EmptySubmission => "empty_submission",
            LedgerError::Store(_) => "storage_unavailable",
            LedgerError::Stopped => "ledger_stopped",
        }
    }
}

/// Counters the writer keeps for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches_committed: AtomicU64,
    pub transfers_committed: AtomicU64,
    pub events_submitted: AtomicU64,
    pub commit_nanos_total: AtomicU64,
    pub last_batch_events: AtomicU64,
    pub batches_failed: AtomicU64,
    /// Flushes that made committed batches durable, when the store defers them.
    pub syncs: AtomicU64,
    pub sync_nanos_total: AtomicU64,
}

pub(crate) type Reply = oneshot::Sender<Result<SubmissionResult, Arc<LedgerError>>>;

struct Request {
    submission: Submission,
    reply: Reply,
}

/// A handle to the writer; clone it freely. The writer stops when every handle is dropped.
#[derive(Clone)]
pub struct Ledger {
    sender: mpsc::Sender<Request>,
    stats: Arc<WriterStats>,
    batch_events_max: usize,
}

impl Ledger {
    /// Starts the writer thread over `store`.
    pub fn start<S: LedgerStore>(
        mut store: S,
        clock: Arc<dyn Clock>,
        config: WriterConfig,
    ) -> Result<(Ledger, JoinHandle<()>), LedgerError> {
        assert!(config.batch_events_max > 0 && config.batch_events_max <= BATCH_EVENTS_MAX);
        assert!(
            config.transaction_events_max >= config.batch_events_max
                && config.transaction_events_max <= TRANSACTION_EVENTS_MAX
        );
        assert!(
            config.transaction_events_max >= config.batch_events_max
                && config.transaction_events_max <= TRANSACTION_EVENTS_MAX
        );
        let mut working_set = WorkingSet::default();
        if store.exclusive() {
            load_cache(&mut store, &mut working_set)?;
        }
        let (sender, receiver) = mpsc::channel(config.queue_submissions_max);
        let stats = Arc::new(WriterStats::default());
        let syncer = match store.deferred_sync()? {
            Some(sync) => Some(Syncer::start(sync, stats.clone())?),
            None => None,
        };
        let writer = Writer {
            store,
            syncer,
            last_committed_head: None,
            clock,
            working_set,
            stats: stats.clone(),
            config: config.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("mizan-ledger-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|error| LedgerError::Store(StoreError::Database(error.to_string())))?;
        let ledger = Ledger {
            sender,
            stats,
            batch_events_max: config.batch_events_max,
        };
        Ok((ledger, handle))
    }

    fn check(&self, submission: &Submission) -> Result<(), LedgerError> {
        let events = submission.events();
        if events > self.batch_events_max {
            return Err(LedgerError::BatchTooLarge {
                events,
                max: self.batch_events_max,
            });
        }
        if submission.rows.len() > SUBMISSION_ROWS_MAX {
            return Err(LedgerError::TooManyRows {
                rows: submission.rows.len(),
                max: SUBMISSION_ROWS_MAX,
            });
        }
        if events == 0 && submission.rows.is_empty() {
            return Err(LedgerError::EmptySubmission);
        }
        Ok(())
    }

    /// Submits and waits until the batch holding it is durable.
    pub async fn submit(
        &self,
        submission: Submission,
    ) -> Result<SubmissionResult, Arc<LedgerError>> {
        self.check(&submission).map_err(Arc::new)?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Request { submission, reply })
            .await
            .map_err(|_| Arc::new(LedgerError::Stopped))?;
        answer.await.map_err(|_| Arc::new(LedgerError::Stopped))?
    }

    /// The same as [`Ledger::submit`] for threads outside an async runtime.
    pub fn submit_blocking(
        &self,
        submission: Submission,
    ) -> Result<SubmissionResult, Arc<LedgerError>> {
        self.check(&submission).map_err(Arc::new)?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .blocking_send(Request { submission, reply })
            .map_err(|_| Arc::new(LedgerError::Stopped))?;
        answer
            .blocking_recv()
            .map_err(|_| Arc::new(LedgerError::Stopped))?
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Submissions waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

fn load_cache<S: LedgerStore>(
    store: &mut S,
    working_set: &mut WorkingSet,
) -> Result<(), StoreError> {
    working_set.accounts.clear();
    for account in store.load_all_accounts()? {
        crate::engine::assert_account_invariants(&account);
        working_set.accounts.insert(account.id, account);
    }
    Ok(())
}

struct Writer<S: LedgerStore> {
    store: S,
    /// Answers batches once durable, when the store's commit does not wait for the disk.
    syncer: Option<Syncer>,
    /// The chain head our last batch committed (shared databases only: it tells
    /// whether another process has written since).
    last_committed_head: Option<crate::chain::ChainHead>,
    clock: Arc<dyn Clock>,
    working_set: WorkingSet,
    stats: Arc<WriterStats>,
    config: WriterConfig,
}

impl<S: LedgerStore> Writer<S> {
    fn run(mut self, mut receiver: mpsc::Receiver<Request>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "ledger writer could not start its timer");
                return;
            }
        };
        let idle = Duration::from_millis(self.config.expiry_interval_ms);
        let mut carried: Option<Request> = None;
        loop {
            if self.syncer.as_ref().is_some_and(Syncer::failed) {
                // Nothing committed from here on could be called durable.
                if let Some(syncer) = &mut self.syncer {
                    syncer.stop();
                }
                return;
            }
            let first = match carried.take() {
                Some(request) => Some(request),
                None => match runtime
                    .block_on(async { tokio::time::timeout(idle, receiver.recv()).await })
                {
                    Ok(Some(request)) => Some(request),
                    Ok(None) => {
                        // Every handle is gone: answer what waits for its flush.
                        if let Some(syncer) = &mut self.syncer {
                            syncer.stop();
                        }
                        return;
                    }
                    Err(_elapsed) => None,
                },
            };
            let mut batch = Vec::new();
            let mut events = 0;
            if let Some(request) = first {
                events += request.submission.events();
                batch.push(request);
                while let Ok(request) = receiver.try_recv() {
                    if events + request.submission.events() > self.config.transaction_events_max {
                        carried = Some(request);
                        break;
                    }
                    events += request.submission.events();
                    batch.push(request);
                }
            }
            self.process(batch);
        }
    }

    fn process(&mut self, batch: Vec<Request>) {
        let started = Instant::now();
        let (submissions, replies): (Vec<Submission>, Vec<Reply>) =
            batch.into_iter().map(|r| (r.submission, r.reply)).unzip();
        let result = self.commit_batch(submissions);
        match result {
            Ok(None) => {}
            Ok(Some((output, outcomes))) => {
                let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.stats.batches_committed.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .transfers_committed
                    .fetch_add(output.transfers.len() as u64, Ordering::Relaxed);
                self.stats
                    .commit_nanos_total
                    .fetch_add(elapsed, Ordering::Relaxed);
                let events: usize = outcomes
                    .iter()
                    .map(|o| {
                        o.accounts.len()
                            + o.transfers.len()
                            + o.ensured_accounts.len()
                            + o.ensured_transfers.len()
                    })
                    .sum();
                self.stats
                    .last_batch_events
                    .store(events as u64, Ordering::Relaxed);
                self.stats
                    .events_submitted
                    .fetch_add(events as u64, Ordering::Relaxed);
                let answers = replies
                    .into_iter()
                    .zip(outcomes)
                    .map(|(reply, outcome)| (reply, resolve(&output, outcome)));
                match &self.syncer {
                    Some(syncer) => syncer.answer_when_durable(answers.collect()),
                    None => {
                        for (reply, result) in answers {
                            // A caller that gave up waiting is no error: its work is
                            // committed.
                            let _ = reply.send(Ok(result));
                        }
                    }
                }
            }
            Err(error) => {
                self.stats.batches_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "ledger batch failed and was rolled back");
                let error = Arc::new(LedgerError::Store(error));
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// Runs one storage transaction. `Ok(None)` when there was nothing to do.
    fn commit_batch(
        &mut self,
        submissions: Vec<Submission>,
    ) -> Result<Option<(BatchOutput, Vec<SubmissionOutcome>)>, StoreError> {
        self.store.begin()?;
        let result = self.build_batch(submissions).and_then(|built| match built {
            // Every event failed: nothing to write, not even the chain head.
            Some((writes, outcomes)) if writes.output.is_empty() && writes.rows.is_empty() => {
                self.store.rollback()?;
                Ok(Some((writes.output, outcomes)))
            }
            Some((writes, outcomes)) => {
                self.last_committed_head = None;
                self.store.write_batch(&writes)?;
                if self.syncer.as_ref().is_some_and(Syncer::failed) {
                    // A flush failed meanwhile: commit nothing more.
                    return Err(StoreError::Closed);
                }
                self.store.commit()?;
                self.last_committed_head = Some(writes.head);
                if let Some(observer) = &self.config.observer {
                    observer.committed(&writes.rows);
                }
                Ok(Some((writes.output, outcomes)))
            }
            None => {
                self.store.rollback()?;
                Ok(None)
            }
        });
        if result.is_err() {
            // The cache may hold balances of the batch that did not commit.
            self.last_committed_head = None;
            let _ = self.store.rollback();
            if self.store.exclusive() {
                load_cache(&mut self.store, &mut self.working_set)?;
            }
        }
        result
    }

    fn build_batch(
        &mut self,
        mut submissions: Vec<Submission>,
    ) -> Result<Option<(BatchWrites, Vec<SubmissionOutcome>)>, StoreError> {
        let mut head = self.store.lock_chain_head()?;
        if self.store.take_foreign_commits() {
            if let Some(observer) = &self.config.observer {
                observer.foreign_commits();
            }
        }
        let now_ns = self
            .clock
            .now_ns()
            .max(head.last_timestamp.saturating_add(1));
        let due = self
            .store
            .due_expiries(now_ns, self.config.expiries_per_batch_max)?;
        if due.is_empty() && submissions.is_empty() {
            return Ok(None);
        }
        let cache_valid = self.last_committed_head == Some(head);
        self.load_working_set(&submissions, &due, cache_valid)?;
        let mut taken = self.taken_document_keys(&submissions)?;
        let mut engine = Engine::new(&mut self.working_set, now_ns, head.last_timestamp);
        engine.expire(&due);
        let mut outcomes: Vec<SubmissionOutcome> = Vec::with_capacity(submissions.len());
        for submission in &submissions {
            if let Some(key) = first_taken_key(submission, &taken) {
                outcomes.push(SubmissionOutcome::row_conflict(submission.shape(), key));
                continue;
            }
            let atomic = submission.atomic || !submission.rows.is_empty();
            let outcome = engine.submit_ensuring(
                &submission.ensure.accounts,
                &submission.ensure.transfers,
                &submission.accounts,
                &submission.transfers,
                atomic,
            );
            if outcome.all_ok() {
                taken.extend(
                    submission
                        .rows
                        .iter()
                        .filter_map(BusinessRow::created_key)
                        .map(|(collection, key)| (collection.to_owned(), key.to_owned())),
                );
            }
            outcomes.push(outcome);
        }
        let last_timestamp = engine.last_timestamp();
        let mut output = engine.finish();
        chain_transfers(&mut head, &mut output.transfers);
        head.last_timestamp = head.last_timestamp.max(last_timestamp);
        let mut rows = Vec::new();
        for (submission, outcome) in submissions.iter_mut().zip(&outcomes) {
            if outcome.all_ok() {
                rows.append(&mut submission.rows);
            }
        }
        Ok(Some((BatchWrites { output, rows, head }, outcomes)))
    }

    /// The documents the batch's `Create` rows name that exist already.
    fn taken_document_keys(
        &mut self,
        submissions: &[Submission],
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        let mut keys: Vec<(String, String)> = submissions
            .iter()
            .flat_map(|submission| submission.rows.iter().filter_map(BusinessRow::created_key))
            .map(|(collection, key)| (collection.to_owned(), key.to_owned()))
            .collect();
        if keys.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(self.store.existing_documents(&keys)?.into_iter().collect())
    }

    /// Loads the transfers a batch names and, unless cached, the accounts it touches.
    /// `cache_valid`: the chain head we locked is the one our last batch committed,
    /// so no other process has changed any balance since.
    fn load_working_set(
        &mut self,
        submissions: &[Submission],
        due: &[TransferId],
        cache_valid: bool,
    ) -> Result<(), StoreError> {
        let mut transfer_ids: Vec<TransferId> = due.to_vec();
        let mut account_ids: Vec<AccountId> = Vec::new();
        for submission in submissions {
            account_ids.extend(submission.accounts.iter().map(|a| a.id));
            account_ids.extend(submission.ensure.accounts.iter().map(|a| a.id));
            for transfer in submission
                .transfers
                .iter()
                .chain(&submission.ensure.transfers)
            {
                transfer_ids.push(transfer.id);
                if transfer.is_resolution() {
                    transfer_ids.push(transfer.pending_id);
                } else {
                    account_ids.push(transfer.debit_account_id);
                    account_ids.push(transfer.credit_account_id);
                }
            }
        }
        transfer_ids.sort_unstable();
        transfer_ids.dedup();
        transfer_ids.retain(|id| !id.is_zero() && id.get() != u128::MAX);
        self.working_set.clear_transfers();
        for (transfer, status) in self.store.load_transfers(&transfer_ids)? {
            if transfer
                .flags
                .contains(crate::types::TransferFlags::PENDING)
            {
                account_ids.push(transfer.debit_account_id);
                account_ids.push(transfer.credit_account_id);
                let status = status.ok_or_else(|| {
                    StoreError::Corrupt(format!("pending transfer {} has no status", transfer.id))
                })?;
                self.working_set.pending.insert(transfer.id, status);
            }
            self.working_set.transfers.insert(transfer.id, transfer);
        }
        if !self.store.exclusive() {
            account_ids.sort_unstable();
            account_ids.dedup();
            account_ids.retain(|id| !id.is_zero() && id.get() != u128::MAX);
            if cache_valid {
                // No other writer committed since our last batch: the balances we
                // hold are the database's; read only the accounts we have not seen.
                account_ids.retain(|id| !self.working_set.accounts.contains_key(id));
            } else {
                self.working_set.accounts.clear();
            }
            for account in self.store.lock_accounts(&account_ids)? {
                self.working_set.accounts.insert(account.id, account);
            }
        }
        Ok(())
    }
}

/// The first document a submission would create that is taken (or that it names twice).
fn first_taken_key(
    submission: &Submission,
    taken: &std::collections::HashSet<(String, String)>,
) -> Option<(String, String)> {
    let mut own: std::collections::HashSet<(&str, &str)> = std::collections::HashSet::new();
    for (collection, key) in submission.rows.iter().filter_map(BusinessRow::created_key) {
        let owned = (collection.to_owned(), key.to_owned());
        if taken.contains(&owned) || !own.insert((collection, key)) {
            return Some(owned);
        }
    }
    None
}

fn resolve(output: &BatchOutput, outcome: SubmissionOutcome) -> SubmissionResult {
    let transfer_results = |outcomes: Vec<crate::engine::TransferOutcome>| {
        outcomes
            .into_iter()
            .map(|t| TransferResult {
                result: t.result,
                transfer: t.committed_index.map(|index| output.transfers[index]),
            })
            .collect()
    };
    SubmissionResult {
        row_conflict: outcome.row_conflict,
        accounts: outcome.accounts,
        transfers: transfer_results(outcome.transfers),
        ensured_accounts: outcome.ensured_accounts,
        ensured_transfers: transfer_results(outcome.ensured_transfers),
    }
}
