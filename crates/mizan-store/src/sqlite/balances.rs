//! Balances for SQLite, written lazily.
//!
//! Writing every touched account's row in every commit costs a whole WAL page per
//! account: with random accounts that is most of what a commit writes. The writer
//! already holds every balance in memory (it is the file's only writer), and the
//! transfers are the durable truth. So the accounts table holds balances *as of* a
//! timestamp (`ledger_head.balances_as_of`), flushed every second or two in one of
//! the writer's transactions; the current balance is that row plus the transfers
//! committed after it. Opening the store and reading balances from another
//! connection both replay that short tail, so a crash loses nothing.
//!
//! A busy account (a creator every fan tips, the platform's revenue) can take
//! hundreds of thousands of transfers between two flushes, and each read of it would
//! replay them all. So between flushes the writer also writes, in the batch's own
//! transaction, the balance of each account that took
//! [`BalanceFlush::snapshot_entries`] transfers since its balance was last written,
//! into `hot_balances` with the batch's timestamp. A read starts from whichever is
//! newer for the account: the flushed row or its snapshot. `mizan ledger verify`
//! checks every snapshot newer than the flush against the transfers.

use mizan_core::{AccountId, TransferId};
use mizan_ledger::{Account, AccountFlags, StoreError, Transfer, TransferFlags};
use rustc_hash::FxHashMap;

/// Applies committed transfers (oldest first) to the balances and flags of the
/// accounts in `accounts`; transfers touching other accounts change nothing there.
pub(crate) struct TailReplay<'a> {
    pub accounts: &'a mut FxHashMap<AccountId, Account>,
    /// Pending transfers seen in the tail, for the posts and voids that follow.
    pending: FxHashMap<TransferId, Transfer>,
}

impl<'a> TailReplay<'a> {
    pub fn new(accounts: &'a mut FxHashMap<AccountId, Account>) -> Self {
        TailReplay {
            accounts,
            pending: FxHashMap::default(),
        }
    }

    /// `original` finds a pending transfer committed before the tail.
    pub fn apply(
        &mut self,
        transfer: &Transfer,
        original: &mut dyn FnMut(TransferId) -> Result<Transfer, StoreError>,
    ) -> Result<(), StoreError> {
        let flags = transfer.flags;
        if flags.contains(TransferFlags::PENDING) {
            self.pending.insert(transfer.id, *transfer);
            self.change(transfer.debit_account_id, |a| {
                a.debits_pending += transfer.amount;
                if flags.contains(TransferFlags::CLOSING_DEBIT) {
                    a.flags = a.flags | AccountFlags::CLOSED;
                }
            });
            self.change(transfer.credit_account_id, |a| {
                a.credits_pending += transfer.amount;
                if flags.contains(TransferFlags::CLOSING_CREDIT) {
                    a.flags = a.flags | AccountFlags::CLOSED;
                }
            });
            return Ok(());
        }
        let resolves = flags.contains(TransferFlags::POST_PENDING)
            || flags.contains(TransferFlags::VOID_PENDING)
            || flags.contains(TransferFlags::EXPIRY);
        if !resolves {
            self.change(transfer.debit_account_id, |a| {
                a.debits_posted += transfer.amount
            });
            self.change(transfer.credit_account_id, |a| {
                a.credits_posted += transfer.amount
            });
            return Ok(());
        }
        let touches = self.accounts.contains_key(&transfer.debit_account_id)
            || self.accounts.contains_key(&transfer.credit_account_id);
        if !touches {
            return Ok(());
        }
        let held = match self.pending.remove(&transfer.pending_id) {
            Some(held) => held,
            None => original(transfer.pending_id)?,
        };
        let posted = if flags.contains(TransferFlags::POST_PENDING) {
            transfer.amount
        } else {
            0
        };
        let reopen = !flags.contains(TransferFlags::POST_PENDING);
        self.change(transfer.debit_account_id, |a| {
            a.debits_pending -= held.amount;
            a.debits_posted += posted;
            if reopen && held.flags.contains(TransferFlags::CLOSING_DEBIT) {
                a.flags = a.flags.without(AccountFlags::CLOSED);
            }
        });
        self.change(transfer.credit_account_id, |a| {
            a.credits_pending -= held.amount;
            a.credits_posted += posted;
            if reopen && held.flags.contains(TransferFlags::CLOSING_CREDIT) {
                a.flags = a.flags.without(AccountFlags::CLOSED);
            }
        });
        Ok(())
    }

    fn change(&mut self, id: AccountId, update: impl FnOnce(&mut Account)) {
        if let Some(account) = self.accounts.get_mut(&id) {
            update(account);
        }
    }
}

/// When the writer next writes every changed balance.
#[derive(Debug, Clone, Copy)]
pub struct BalanceFlush {
    /// Flush after this many transfers since the last flush…
    pub every_transfers: u64,
    /// …or after this long, whichever comes first.
    pub every_ms: u64,
    /// Between flushes, an account that took this many transfers since its balance
    /// was last written gets it written alone (`hot_balances`), so a read of a busy
    /// account replays at most about this many.
    pub snapshot_entries: u64,
}

impl Default for BalanceFlush {
    fn default() -> Self {
        BalanceFlush {
            every_transfers: 1_000_000,
            every_ms: 2_000,
            snapshot_entries: 5_000,
        }
    }
}
