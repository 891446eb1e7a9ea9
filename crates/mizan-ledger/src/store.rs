//! The storage port: what the ledger needs from a database.
//!
//! `mizan-store` implements it for SQLite and PostgreSQL. The writer drives a
//! [`LedgerStore`] from its own thread, one transaction per batch; readers use a
//! [`LedgerReader`] on connections of their own.

use mizan_core::{AccountId, TransferId};
use serde::{Deserialize, Serialize};

use crate::chain::ChainHead;
use crate::engine::BatchOutput;
use crate::types::{Account, Balances, PendingStatus, Transfer};

/// Longest page an account-history query returns.
pub const HISTORY_PAGE_LIMIT_MAX: usize = 1_000;
/// Most ids one batch lookup accepts.
pub const LOOKUP_IDS_MAX: usize = 8_190;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database is in use by another process: {0}")]
    Locked(String),
    #[error("{0}")]
    InvalidQuery(&'static str),
    #[error("a business row conflicts with an existing one: {0}")]
    Conflict(String),
    #[error("the store is closed")]
    Closed,
}

/// A row of business data committed atomically with a submission's transfers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BusinessRow {
    /// Inserts or replaces a document, e.g. a payment record or an idempotency record.
    Document {
        collection: String,
        key: String,
        body: Vec<u8>,
    },
    /// Creates a document that must not exist yet (an idempotency key, a handle):
    /// if it does — committed before, or created earlier in the same batch — the
    /// whole submission fails and nothing of it is written (`row_conflict`).
    Create {
        collection: String,
        key: String,
        body: Vec<u8>,
    },
    /// Appends an event to the outbox, for webhook and event-bus delivery.
    Outbox { topic: String, payload: Vec<u8> },
    /// Removes a document if it exists (an expired idempotency claim, the index entry
    /// of an intent once it is resolved). Rows apply in order, so a later row of the
    /// same batch may write the key again. A `Create` is checked against what was
    /// committed before the batch: it still conflicts with a key a `Delete` earlier in
    /// the same batch removes.
    Delete { collection: String, key: String },
}

impl BusinessRow {
    /// The (collection, key) of the document a row writes or deletes.
    pub fn document_key(&self) -> Option<(&str, &str)> {
        match self {
            BusinessRow::Document {
                collection, key, ..
            }
            | BusinessRow::Create {
                collection, key, ..
            }
            | BusinessRow::Delete { collection, key } => Some((collection, key)),
            BusinessRow::Outbox { .. } => None,
        }
    }

    /// The (collection, key) a `Create` row claims.
    pub fn created_key(&self) -> Option<(&str, &str)> {
        match self {
            BusinessRow::Create {
                collection, key, ..
            } => Some((collection, key)),
            BusinessRow::Document { .. }
            | BusinessRow::Outbox { .. }
            | BusinessRow::Delete { .. } => None,
        }
    }
}

/// Most documents one prefix query returns.
pub const DOCUMENTS_PAGE_LIMIT_MAX: usize = 1_000;

/// Everything one batch writes, in one storage transaction.
#[derive(Debug, Clone, Default)]
pub struct BatchWrites {
    pub output: BatchOutput,
    pub rows: Vec<BusinessRow>,
    pub head: ChainHead,
}

/// Makes committed batches durable, from a thread of its own (see
/// [`LedgerStore::deferred_sync`]).
pub trait DeferredSync: Send + 'static {
    /// Returns once every batch committed before the call is durable.
    fn sync(&mut self) -> Result<(), StoreError>;
}

/// The writer's side of a database. All calls but `load_all_accounts` and
/// `chain_head_unlocked` happen between `begin` and `commit`/`rollback`.
pub trait LedgerStore: Send + 'static {
    /// When the store's `commit` returns before the batch is on disk, the handle that
    /// makes it durable. The writer then calls it from a thread of its own and answers
    /// a batch's callers only after it returned, so the disk flush of one batch
    /// overlaps the work of the next. `None`: `commit` is durable when it returns.
    fn deferred_sync(&mut self) -> Result<Option<Box<dyn DeferredSync>>, StoreError> {
        Ok(None)
    }
    /// True when this process is the database's only writer (SQLite: enforced by a
    /// lock file), so the writer may keep balances in memory across batches. When
    /// false (PostgreSQL), each batch locks and re-reads what it touches.
    fn exclusive(&self) -> bool;
    fn begin(&mut self) -> Result<(), StoreError>;
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self) -> Result<(), StoreError>;
    /// The chain head, locked against other writers until commit.
    fn lock_chain_head(&mut self) -> Result<ChainHead, StoreError>;
    /// After `lock_chain_head`: true (once) when another process committed since
    /// this writer last looked — its previous lock, or its own last commit —
    /// rows-only batches included. Whatever the process keeps in memory of the
    /// database is then stale. A store with one writer (SQLite) answers false.
    fn take_foreign_commits(&mut self) -> bool {
        false
    }
    /// Accounts by id, locked in id order until commit. Missing ids are left out.
    fn lock_accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError>;
    fn load_all_accounts(&mut self) -> Result<Vec<Account>, StoreError>;
    /// Transfers by id with, for pending ones, their status. Missing ids are left out.
    fn load_transfers(
        &mut self,
        ids: &[TransferId],
    ) -> Result<Vec<(Transfer, Option<PendingStatus>)>, StoreError>;
    /// Pending transfers whose timeout is at or before `now_ns`, oldest first.
    fn due_expiries(&mut self, now_ns: u64, limit: usize) -> Result<Vec<TransferId>, StoreError>;
    fn write_batch(&mut self, writes: &BatchWrites) -> Result<(), StoreError>;
    /// Which of these (collection, key) documents exist, inside the batch's transaction.
    fn existing_documents(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String)>, StoreError>;
}

/// Filters for an account's history. Times are ns since the epoch, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistoryFilter {
    pub from_timestamp: Option<u64>,
    pub to_timestamp: Option<u64>,
    pub code: Option<u16>,
    /// Continue after this timestamp (exclusive), from a previous page's `next_cursor`.
    pub after_timestamp: Option<u64>,
    pub newest_first: bool,
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub transfers: Vec<Transfer>,
    /// Pass as `after_timestamp` to get the next page; `None` when this is the last.
    pub next_cursor: Option<u64>,
}

/// Visits committed transfers in timestamp order; return false to stop.
pub type TransferVisitor<'a> = dyn FnMut(&Transfer) -> Result<bool, StoreError> + 'a;

/// Read-only queries, on a connection separate from the writer's.
pub trait LedgerReader: Send {
    fn accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError>;
    fn transfers(&mut self, ids: &[TransferId]) -> Result<Vec<Transfer>, StoreError>;
    fn pending_status(&mut self, id: TransferId) -> Result<Option<PendingStatus>, StoreError>;
    fn account_history(
        &mut self,
        account: AccountId,
        filter: &HistoryFilter,
    ) -> Result<HistoryPage, StoreError>;
    /// The account's balances just after the transfers committed at or before `timestamp`.
    fn balances_at(&mut self, account: AccountId, timestamp: u64) -> Result<Balances, StoreError>;
    fn chain_head(&mut self) -> Result<ChainHead, StoreError>;
    fn scan_transfers(&mut self, visit: &mut TransferVisitor<'_>) -> Result<(), StoreError>;
    /// Starts a read snapshot: every read until `end_snapshot` sees the same state,
    /// whatever commits meanwhile (verification of a live ledger needs it).
    fn begin_snapshot(&mut self) -> Result<(), StoreError>;
    fn end_snapshot(&mut self) -> Result<(), StoreError>;
    fn all_accounts(&mut self) -> Result<Vec<Account>, StoreError>;
    fn document(&mut self, collection: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Documents of `collection` whose key starts with `prefix`, in key order, after
    /// `after_key` (exclusive), at most `limit` (1 to `DOCUMENTS_PAGE_LIMIT_MAX`).
    fn documents_with_prefix(
        &mut self,
        collection: &str,
        prefix: &str,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Outbox events after sequence number `after`, oldest first.
    fn outbox(
        &mut self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError>;
}

/// A reader that answers every call with [`StoreError::Closed`]: what a server swaps
/// in for its real reader at shutdown, so the real one (whose PostgreSQL client must
/// not be dropped on an async worker thread) is closed on a blocking thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClosedReader;

impl LedgerReader for ClosedReader {
    fn accounts(&mut self, _: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        Err(StoreError::Closed)
    }
    fn transfers(&mut self, _: &[TransferId]) -> Result<Vec<Transfer>, StoreError> {
        Err(StoreError::Closed)
    }
    fn pending_status(&mut self, _: TransferId) -> Result<Option<PendingStatus>, StoreError> {
        Err(StoreError::Closed)
    }
    fn account_history(
        &mut self,
        _: AccountId,
        _: &HistoryFilter,
    ) -> Result<HistoryPage, StoreError> {
        Err(StoreError::Closed)
    }
    fn balances_at(&mut self, _: AccountId, _: u64) -> Result<Balances, StoreError> {
        Err(StoreError::Closed)
    }
    fn chain_head(&mut self) -> Result<ChainHead, StoreError> {
        Err(StoreError::Closed)
    }
    fn scan_transfers(&mut self, _: &mut TransferVisitor<'_>) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }
    fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }
    fn end_snapshot(&mut self) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }
    fn all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        Err(StoreError::Closed)
    }
    fn document(&mut self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError::Closed)
    }
    fn documents_with_prefix(
        &mut self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Err(StoreError::Closed)
    }
    fn outbox(&mut self, _: u64, _: usize) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError> {
        Err(StoreError::Closed)
    }
}

/// Replays transfers (oldest first) into account balances. Shared by the stores'
/// `balances_at` (fed one account's history) and by verification (fed everything).
#[derive(Debug, Default)]
pub struct BalanceReplay {
    pub balances: std::collections::HashMap<AccountId, Balances>,
    pending_amounts: std::collections::HashMap<TransferId, i64>,
}

impl BalanceReplay {
    /// Applies one transfer to both of its accounts; an inconsistent history (a
    /// resolution of an unknown pending transfer, an overflow) is described in the error.
    pub fn apply(&mut self, transfer: &Transfer) -> Result<(), String> {
        use crate::types::TransferFlags as F;
        let amount = transfer.amount;
        let (pending_delta, posted_delta) = if transfer.flags.contains(F::PENDING) {
            self.pending_amounts.insert(transfer.id, amount);
            (amount, 0)
        } else if let Some(status) = crate::engine::resolution_status(transfer.flags) {
            let held = self
                .pending_amounts
                .remove(&transfer.pending_id)
                .ok_or_else(|| {
                    format!(
                        "transfer at {} resolves unknown pending transfer {}",
                        transfer.timestamp, transfer.pending_id
                    )
                })?;
            let posted = if status == PendingStatus::Posted {
                amount
            } else {
                0
            };
            (-held, posted)
        } else {
            (0, amount)
        };
        let add = |value: &mut i64, delta: i64| -> Result<(), String> {
            *value = value
                .checked_add(delta)
                .filter(|sum| *sum >= 0)
                .ok_or_else(|| format!("balance out of range at {}", transfer.timestamp))?;
            Ok(())
        };
        let debit = self.balances.entry(transfer.debit_account_id).or_default();
        add(&mut debit.debits_pending, pending_delta)?;
        add(&mut debit.debits_posted, posted_delta)?;
        let credit = self.balances.entry(transfer.credit_account_id).or_default();
        add(&mut credit.credits_pending, pending_delta)?;
        add(&mut credit.credits_posted, posted_delta)?;
        Ok(())
    }
}

/// Lets the writer run over a store chosen at run time (SQLite or PostgreSQL).
impl<T: LedgerStore + ?Sized> LedgerStore for Box<T> {
    fn deferred_sync(&mut self) -> Result<Option<Box<dyn DeferredSync>>, StoreError> {
        (**self).deferred_sync()
    }
    fn exclusive(&self) -> bool {
        (**self).exclusive()
    }
    fn begin(&mut self) -> Result<(), StoreError> {
        (**self).begin()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        (**self).commit()
    }
    fn rollback(&mut self) -> Result<(), StoreError> {
        (**self).rollback()
    }
    fn lock_chain_head(&mut self) -> Result<ChainHead, StoreError> {
        (**self).lock_chain_head()
    }
    fn take_foreign_commits(&mut self) -> bool {
        (**self).take_foreign_commits()
    }
    fn lock_accounts(&mut self, ids: &[AccountId]) -> Result<Vec<Account>, StoreError> {
        (**self).lock_accounts(ids)
    }
    fn load_all_accounts(&mut self) -> Result<Vec<Account>, StoreError> {
        (**self).load_all_accounts()
    }
    fn load_transfers(
        &mut self,
        ids: &[TransferId],
    ) -> Result<Vec<(Transfer, Option<PendingStatus>)>, StoreError> {
        (**self).load_transfers(ids)
    }
    fn due_expiries(&mut self, now_ns: u64, limit: usize) -> Result<Vec<TransferId>, StoreError> {
        (**self).due_expiries(now_ns, limit)
    }
    fn write_batch(&mut self, writes: &BatchWrites) -> Result<(), StoreError> {
        (**self).write_batch(writes)
    }
    fn existing_documents(
        &mut self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String)>, StoreError> {
        (**self).existing_documents(keys)
    }
}
