//! The ledger's state machine: validates a batch of events in order against the
//! balances in a [`WorkingSet`] and applies the ones that pass.
//!
//! The engine does no I/O. The writer loads what a batch needs (accounts, the
//! transfers it names, due expiries) into the working set, runs the engine, and writes
//! its [`BatchOutput`]. Linked chains and atomic submissions are rolled back through an
//! undo log, so a failed chain leaves no trace.

use rustc_hash::FxHashMap;

use mizan_core::{AccountId, TransferId};

use crate::results::{CreateAccountResult, CreateTransferResult};
use crate::types::{
    ledger_is_known, Account, AccountFlags, NewAccount, PendingStatus, Transfer, TransferFlags,
    TransferRequest, PENDING_TIMEOUT_SECONDS_MAX,
};

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// What the engine reads and changes: accounts, known transfers, pending statuses.
#[derive(Debug, Default, Clone)]
pub struct WorkingSet {
    pub accounts: FxHashMap<AccountId, Account>,
    pub transfers: FxHashMap<TransferId, Transfer>,
    pub pending: FxHashMap<TransferId, PendingStatus>,
}

impl WorkingSet {
    /// Forgets the per-batch lookups but keeps the accounts (the writer's cache).
    pub fn clear_transfers(&mut self) {
        self.transfers.clear();
        self.pending.clear();
    }
}

/// One result per transfer: its code and, when it committed, the transfer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOutcome {
    pub result: CreateTransferResult,
    /// Index into [`BatchOutput::transfers`] when `result` is `Ok`.
    pub committed_index: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmissionOutcome {
    pub accounts: Vec<CreateAccountResult>,
    pub transfers: Vec<TransferOutcome>,
    /// The results of the submission's ensured accounts and transfers (see
    /// [`Engine::submit_ensuring`]), in their order.
    pub ensured_accounts: Vec<CreateAccountResult>,
    pub ensured_transfers: Vec<TransferOutcome>,
    /// A `Create` row whose document exists: the submission was not applied.
    pub row_conflict: Option<(String, String)>,
}

impl SubmissionOutcome {
    /// Nothing of the submission applied: `key` was taken. Every event reports
    /// `linked_event_failed`, as in a failed atomic submission.
    pub fn row_conflict(shape: SubmissionShape, key: (String, String)) -> Self {
        let failed = TransferOutcome {
            result: CreateTransferResult::LinkedEventFailed,
            committed_index: None,
        };
        SubmissionOutcome {
            accounts: vec![CreateAccountResult::LinkedEventFailed; shape.accounts],
            transfers: vec![failed; shape.transfers],
            ensured_accounts: vec![CreateAccountResult::LinkedEventFailed; shape.ensured_accounts],
            ensured_transfers: vec![failed; shape.ensured_transfers],
            row_conflict: Some(key),
        }
    }

    /// True when every account and transfer of the submission was newly created,
    /// every ensured one was created or existed already, and no row conflicted.
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

    /// Every event that was applied reports `linked_event_failed` instead: an atomic
    /// submission that failed as a whole.
    fn fail_applied(&mut self) {
        let failed = TransferOutcome {
            result: CreateTransferResult::LinkedEventFailed,
            committed_index: None,
        };
        for result in self.accounts.iter_mut().chain(&mut self.ensured_accounts) {
            if *result == CreateAccountResult::Ok {
                *result = CreateAccountResult::LinkedEventFailed;
            }
        }
        for transfer in self.transfers.iter_mut().chain(&mut self.ensured_transfers) {
            if transfer.result == CreateTransferResult::Ok {
                *transfer = failed;
            }
        }
    }
}

/// How many events of each kind a submission carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmissionShape {
    pub accounts: usize,
    pub transfers: usize,
    pub ensured_accounts: usize,
    pub ensured_transfers: usize,
}

/// Everything a batch changed, ready to be written in one storage transaction.
#[derive(Debug, Clone, Default)]
pub struct BatchOutput {
    /// Committed transfers in timestamp order (hash not yet set).
    pub transfers: Vec<Transfer>,
    pub accounts_created: Vec<Account>,
    pub accounts_updated: Vec<Account>,
    /// New pending transfers and when they expire (0 = never).
    pub pending_created: Vec<(TransferId, u64)>,
    pub pending_resolved: Vec<(TransferId, PendingStatus)>,
}

impl BatchOutput {
    /// True when the batch committed nothing at all.
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty()
            && self.accounts_created.is_empty()
            && self.accounts_updated.is_empty()
    }
}

#[derive(Debug, Clone)]
enum Undo {
    AccountInserted(AccountId),
    AccountChanged(Account),
    TransferInserted(TransferId),
    PendingChanged(TransferId, Option<PendingStatus>),
}

#[derive(Debug, Clone, Copy)]
struct Savepoint {
    undo: usize,
    committed: usize,
}

/// Applies one batch. Create with [`Engine::new`], feed expiries and submissions,
/// then call [`Engine::finish`].
pub struct Engine<'a> {
    working_set: &'a mut WorkingSet,
    now_ns: u64,
    next_timestamp: u64,
    undo: Vec<Undo>,
    committed: Vec<Transfer>,
    /// Every account the batch touched, with its state before the batch (`None` for
    /// accounts the batch created). Not undone on rollback: an account whose changes
    /// were all rolled back simply compares equal to its state before.
    touched: FxHashMap<AccountId, Option<Account>>,
}

impl<'a> Engine<'a> {
    /// `last_timestamp` is the newest timestamp already committed; every event of
    /// this batch gets a larger one.
    pub fn new(working_set: &'a mut WorkingSet, now_ns: u64, last_timestamp: u64) -> Self {
        let first = now_ns.max(last_timestamp.saturating_add(1));
        Engine {
            working_set,
            now_ns: first,
            next_timestamp: first,
            undo: Vec::new(),
            committed: Vec::new(),
            touched: FxHashMap::default(),
        }
    }

    /// The batch's notion of "now" (never before the last committed timestamp).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The newest timestamp this batch handed out (or the one before its first).
    pub fn last_timestamp(&self) -> u64 {
        self.next_timestamp - 1
    }

    fn take_timestamp(&mut self) -> u64 {
        let timestamp = self.next_timestamp;
        self.next_timestamp += 1;
        timestamp
    }

    fn savepoint(&self) -> Savepoint {
        Savepoint {
            undo: self.undo.len(),
            committed: self.committed.len(),
        }
    }

    fn rollback(&mut self, savepoint: Savepoint) {
        while self.undo.len() > savepoint.undo {
            let Some(entry) = self.undo.pop() else { break };
            match entry {
                Undo::AccountInserted(id) => {
                    self.working_set.accounts.remove(&id);
                }
                Undo::AccountChanged(old) => {
                    self.working_set.accounts.insert(old.id, old);
                }
                Undo::TransferInserted(id) => {
                    self.working_set.transfers.remove(&id);
                }
                Undo::PendingChanged(id, old) => match old {
                    Some(status) => {
                        self.working_set.pending.insert(id, status);
                    }
                    None => {
                        self.working_set.pending.remove(&id);
                    }
                },
            }
        }
        self.committed.truncate(savepoint.committed);
    }

    fn set_account(&mut self, account: Account) {
        let old = self.working_set.accounts.insert(account.id, account);
        self.touched.entry(account.id).or_insert(old);
        match old {
            Some(old) => self.undo.push(Undo::AccountChanged(old)),
            None => self.undo.push(Undo::AccountInserted(account.id)),
        }
    }

    fn set_pending(&mut self, id: TransferId, status: PendingStatus) {
        let old = self.working_set.pending.insert(id, status);
        self.undo.push(Undo::PendingChanged(id, old));
    }

    fn commit_transfer(&mut self, transfer: Transfer) -> usize {
        if !transfer.id.is_zero() {
            let previous = self.working_set.transfers.insert(transfer.id, transfer);
            assert!(previous.is_none(), "transfer id committed twice");
            self.undo.push(Undo::TransferInserted(transfer.id));
        }
        self.committed.push(transfer);
        self.committed.len() - 1
    }

    /// Voids the given pending transfers whose timeout has passed. Ids that are no
    /// longer pending (resolved meanwhile) are skipped.
    pub fn expire(&mut self, pending_ids: &[TransferId]) -> usize {
        let mut expired = 0;
        for pending_id in pending_ids {
            let Some(pending) = self.working_set.transfers.get(pending_id).copied() else {
                continue;
            };
            if self.working_set.pending.get(pending_id) != Some(&PendingStatus::Pending) {
                continue;
            }
            let due = pending.expires_at_ns().is_some_and(|at| at <= self.now_ns);
            if !due {
                continue;
            }
            let timestamp = self.take_timestamp();
            self.release_pending(&pending, 0, false);
            self.set_pending(*pending_id, PendingStatus::Expired);
            self.commit_transfer(Transfer {
                id: TransferId::from_raw(0),
                debit_account_id: pending.debit_account_id,
                credit_account_id: pending.credit_account_id,
                amount: pending.amount,
                pending_id: pending.id,
                ledger: pending.ledger,
                code: pending.code,
                reference: pending.reference,
                flags: TransferFlags::EXPIRY,
                timeout_seconds: 0,
                timestamp,
                hash: [0; 32],
            });
            expired += 1;
        }
        expired
    }

    /// Applies one submission: its accounts, then its transfers (with linked chains).
    /// An atomic submission commits all of its events or none.
    pub fn submit(
        &mut self,
        accounts: &[NewAccount],
        transfers: &[TransferRequest],
        atomic: bool,
    ) -> SubmissionOutcome {
        self.submit_ensuring(&[], &[], accounts, transfers, atomic)
    }

    /// [`Engine::submit`] after the *ensured* accounts and transfers: events the
    /// submission needs to exist, created here if their id is free. One whose id is
    /// taken already (`exists`, or `exists_with_different_*`: what exists stands) does
    /// not fail an atomic submission; any other failure does. A limit allowance and its
    /// grant are ensured by whichever movement of the window comes first.
    pub fn submit_ensuring(
        &mut self,
        ensured_accounts: &[NewAccount],
        ensured_transfers: &[TransferRequest],
        accounts: &[NewAccount],
        transfers: &[TransferRequest],
        atomic: bool,
    ) -> SubmissionOutcome {
        let start = self.savepoint();
        let ensured_accounts = ensured_accounts
            .iter()
            .map(|a| self.create_account(a))
            .collect();
        let ensured_transfers = self.create_transfers(ensured_transfers);
        let mut outcome = SubmissionOutcome {
            ensured_accounts,
            ensured_transfers,
            accounts: accounts.iter().map(|a| self.create_account(a)).collect(),
            transfers: self.create_transfers(transfers),
            row_conflict: None,
        };
        if atomic && !outcome.all_ok() {
            self.rollback(start);
            outcome.fail_applied();
        }
        outcome
    }

    fn create_account(&mut self, request: &NewAccount) -> CreateAccountResult {
        let timestamp = self.take_timestamp();
        if let Err(code) = validate_account(request) {
            return code;
        }
        if let Some(existing) = self.working_set.accounts.get(&request.id) {
            return compare_existing_account(request, existing);
        }
        self.set_account(Account::new(request, timestamp));
        CreateAccountResult::Ok
    }

    fn create_transfers(&mut self, requests: &[TransferRequest]) -> Vec<TransferOutcome> {
        let failed = |result| TransferOutcome {
            result,
            committed_index: None,
        };
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut chain_start: Option<(usize, Savepoint)> = None;
        let mut chain_failed = false;
        for (index, request) in requests.iter().enumerate() {
            let linked = request.flags.contains(TransferFlags::LINKED);
            if chain_start.is_none() && linked {
                chain_start = Some((index, self.savepoint()));
                chain_failed = false;
            }
            let is_last = index + 1 == requests.len();
            if linked && is_last {
                // Every event takes one timestamp slot, whether it commits or not.
                self.take_timestamp();
                // The chain never closes: the whole chain fails.
                if let Some((start, savepoint)) = chain_start.take() {
                    self.rollback(savepoint);
                    for outcome in &mut outcomes[start..] {
                        *outcome = failed(CreateTransferResult::LinkedEventFailed);
                    }
                }
                outcomes.push(failed(CreateTransferResult::LinkedEventChainOpen));
                break;
            }
            let outcome = if chain_failed {
                self.take_timestamp();
                failed(CreateTransferResult::LinkedEventFailed)
            } else {
                match self.create_transfer(request) {
                    Ok(committed_index) => TransferOutcome {
                        result: CreateTransferResult::Ok,
                        committed_index: Some(committed_index),
                    },
                    Err(code) => failed(code),
                }
            };
            let this_failed = outcome.result != CreateTransferResult::Ok;
            outcomes.push(outcome);
            if let Some((start, savepoint)) = chain_start {
                if this_failed && !chain_failed {
                    chain_failed = true;
                    self.rollback(savepoint);
                    for earlier in &mut outcomes[start..index] {
                        *earlier = failed(CreateTransferResult::LinkedEventFailed);
                    }
                }
                if !linked {
                    chain_start = None;
                    chain_failed = false;
                }
            }
        }
        outcomes
    }

    fn create_transfer(
        &mut self,
        request: &TransferRequest,
    ) -> Result<usize, CreateTransferResult> {
        let timestamp = self.take_timestamp();
        validate_transfer(request)?;
        if let Some(existing) = self.working_set.transfers.get(&request.id) {
            return Err(compare_existing_transfer(request, existing));
        }
        let transfer = if request.is_resolution() {
            self.resolve_pending(request, timestamp)?
        } else {
            self.apply_regular(request, timestamp)?
        };
        Ok(self.commit_transfer(transfer))
    }

    fn account(
        &self,
        id: AccountId,
        missing: CreateTransferResult,
    ) -> Result<Account, CreateTransferResult> {
        self.working_set.accounts.get(&id).copied().ok_or(missing)
    }

    fn apply_regular(
        &mut self,
        request: &TransferRequest,
        timestamp: u64,
    ) -> Result<Transfer, CreateTransferResult> {
        use CreateTransferResult as R;
        let mut debit = self.account(request.debit_account_id, R::DebitAccountNotFound)?;
        let mut credit = self.account(request.credit_account_id, R::CreditAccountNotFound)?;
        if debit.ledger != credit.ledger {
            return Err(R::AccountsMustHaveTheSameLedger);
        }
        if request.ledger != debit.ledger {
            return Err(R::LedgerMustMatch);
        }
        if debit.flags.contains(AccountFlags::CLOSED) || credit.flags.contains(AccountFlags::CLOSED)
        {
            return Err(R::AccountClosed);
        }
        let amount = balanced_amount(request, &debit, &credit);
        let pending = request.flags.contains(TransferFlags::PENDING);
        if pending {
            checked(debit.debits_pending, amount, R::OverflowsDebitsPending)?;
            checked(credit.credits_pending, amount, R::OverflowsCreditsPending)?;
        } else {
            checked(debit.debits_posted, amount, R::OverflowsDebitsPosted)?;
            checked(credit.credits_posted, amount, R::OverflowsCreditsPosted)?;
        }
        let debits_total = checked(
            debit.debits_pending,
            debit.debits_posted,
            R::OverflowsDebits,
        )
        .and_then(|sum| checked(sum, amount, R::OverflowsDebits))?;
        let credits_total = checked(
            credit.credits_pending,
            credit.credits_posted,
            R::OverflowsCredits,
        )
        .and_then(|sum| checked(sum, amount, R::OverflowsCredits))?;
        if pending
            && timestamp
                .checked_add(u64::from(request.timeout_seconds) * NANOS_PER_SECOND)
                .is_none()
        {
            return Err(R::OverflowsTimeout);
        }
        if debit
            .flags
            .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && debits_total > debit.credits_posted
        {
            return Err(R::ExceedsCredits);
        }
        if credit
            .flags
            .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && credits_total > credit.debits_posted
        {
            return Err(R::ExceedsDebits);
        }
        // All checks passed: nothing below can fail.
        if pending {
            debit.debits_pending += amount;
            credit.credits_pending += amount;
        } else {
            debit.debits_posted += amount;
            credit.credits_posted += amount;
        }
        if request.flags.contains(TransferFlags::CLOSING_DEBIT) {
            debit.flags = debit.flags | AccountFlags::CLOSED;
        }
        if request.flags.contains(TransferFlags::CLOSING_CREDIT) {
            credit.flags = credit.flags | AccountFlags::CLOSED;
        }
        self.set_account(debit);
        self.set_account(credit);
        if pending {
            self.set_pending(request.id, PendingStatus::Pending);
        }
        Ok(Transfer {
            id: request.id,
            debit_account_id: request.debit_account_id,
            credit_account_id: request.credit_account_id,
            amount,
            pending_id: request.pending_id,
            ledger: request.ledger,
            code: request.code,
            reference: request.reference,
            flags: request.flags,
            timeout_seconds: request.timeout_seconds,
            timestamp,
            hash: [0; 32],
        })
    }

    fn resolve_pending(
        &mut self,
        request: &TransferRequest,
        timestamp: u64,
    ) -> Result<Transfer, CreateTransferResult> {
        use CreateTransferResult as R;
        let pending = self
            .working_set
            .transfers
            .get(&request.pending_id)
            .copied()
            .ok_or(R::PendingTransferNotFound)?;
        if !pending.flags.contains(TransferFlags::PENDING) {
            return Err(R::PendingTransferNotPending);
        }
        check_inherited_fields(request, &pending)?;
        let post = request.flags.contains(TransferFlags::POST_PENDING);
        let amount = if post {
            let amount = if request.amount == 0 {
                pending.amount
            } else {
                request.amount
            };
            if amount > pending.amount {
                return Err(R::ExceedsPendingTransferAmount);
            }
            amount
        } else {
            if request.amount != 0 && request.amount != pending.amount {
                return Err(R::PendingTransferHasDifferentAmount);
            }
            pending.amount
        };
        match self.working_set.pending.get(&pending.id).copied() {
            Some(PendingStatus::Pending) => {}
            Some(PendingStatus::Posted) => return Err(R::PendingTransferAlreadyPosted),
            Some(PendingStatus::Voided) => return Err(R::PendingTransferAlreadyVoided),
            Some(PendingStatus::Expired) => return Err(R::PendingTransferExpired),
            None => panic!("pending transfer {:?} has no status", pending.id),
        }
        if pending.expires_at_ns().is_some_and(|at| at <= self.now_ns) {
            return Err(R::PendingTransferExpired);
        }
        let debit = self.account(pending.debit_account_id, R::DebitAccountNotFound)?;
        let credit = self.account(pending.credit_account_id, R::CreditAccountNotFound)?;
        if post {
            let debit_closed = debit.flags.contains(AccountFlags::CLOSED)
                && !pending.flags.contains(TransferFlags::CLOSING_DEBIT);
            let credit_closed = credit.flags.contains(AccountFlags::CLOSED)
                && !pending.flags.contains(TransferFlags::CLOSING_CREDIT);
            if debit_closed || credit_closed {
                return Err(R::AccountClosed);
            }
            checked(debit.debits_posted, amount, R::OverflowsDebitsPosted)?;
            checked(credit.credits_posted, amount, R::OverflowsCreditsPosted)?;
        }
        self.release_pending(&pending, if post { amount } else { 0 }, post);
        self.set_pending(
            pending.id,
            if post {
                PendingStatus::Posted
            } else {
                PendingStatus::Voided
            },
        );
        Ok(Transfer {
            id: request.id,
            debit_account_id: pending.debit_account_id,
            credit_account_id: pending.credit_account_id,
            amount,
            pending_id: pending.id,
            ledger: pending.ledger,
            code: pending.code,
            reference: request.reference,
            flags: request.flags,
            timeout_seconds: 0,
            timestamp,
            hash: [0; 32],
        })
    }

    /// Takes a pending transfer's amount out of the pending balances, posting
    /// `posted_amount` of it when `post`; a void or expiry reopens closed accounts.
    fn release_pending(&mut self, pending: &Transfer, posted_amount: i64, post: bool) {
        let accounts = &self.working_set.accounts;
        let (Some(mut debit), Some(mut credit)) = (
            accounts.get(&pending.debit_account_id).copied(),
            accounts.get(&pending.credit_account_id).copied(),
        ) else {
            panic!("accounts of pending transfer {:?} not loaded", pending.id);
        };
        debit.debits_pending -= pending.amount;
        credit.credits_pending -= pending.amount;
        assert!(
            debit.debits_pending >= 0 && credit.credits_pending >= 0,
            "pending balance below zero"
        );
        if post {
            debit.debits_posted += posted_amount;
            credit.credits_posted += posted_amount;
        } else {
            if pending.flags.contains(TransferFlags::CLOSING_DEBIT) {
                debit.flags = debit.flags.without(AccountFlags::CLOSED);
            }
            if pending.flags.contains(TransferFlags::CLOSING_CREDIT) {
                credit.flags = credit.flags.without(AccountFlags::CLOSED);
            }
        }
        self.set_account(debit);
        self.set_account(credit);
    }

    /// Collects what the batch changed and checks the batch's invariants.
    pub fn finish(self) -> BatchOutput {
        let mut output = BatchOutput::default();
        let mut deltas: FxHashMap<u32, [i128; 4]> = FxHashMap::default();
        let mut touched: Vec<(AccountId, Option<Account>)> = self.touched.into_iter().collect();
        // Id order: the stores write (and PostgreSQL locks) accounts in this order.
        touched.sort_unstable_by_key(|(id, _)| *id);
        for (id, before) in touched {
            let Some(now) = self.working_set.accounts.get(&id).copied() else {
                // Created and rolled back within the batch.
                assert!(before.is_none(), "account {id:?} vanished during the batch");
                continue;
            };
            assert_account_invariants(&now);
            let old = before.map(|a| a.balances()).unwrap_or_default();
            let delta = deltas.entry(now.ledger).or_default();
            delta[0] += i128::from(now.debits_pending) - i128::from(old.debits_pending);
            delta[1] += i128::from(now.credits_pending) - i128::from(old.credits_pending);
            delta[2] += i128::from(now.debits_posted) - i128::from(old.debits_posted);
            delta[3] += i128::from(now.credits_posted) - i128::from(old.credits_posted);
            match before {
                None => output.accounts_created.push(now),
                Some(before) if before != now => output.accounts_updated.push(now),
                Some(_) => {}
            }
        }
        for (ledger, delta) in &deltas {
            assert!(
                delta[0] == delta[1] && delta[2] == delta[3],
                "ledger {ledger} out of balance after batch: {delta:?}"
            );
        }
        let mut last_timestamp = 0;
        for transfer in &self.committed {
            assert!(
                transfer.timestamp > last_timestamp,
                "timestamps must increase"
            );
            last_timestamp = transfer.timestamp;
            if transfer.flags.contains(TransferFlags::PENDING) {
                output
                    .pending_created
                    .push((transfer.id, transfer.expires_at_ns().unwrap_or(0)));
            } else if let Some(status) = resolution_status(transfer.flags) {
                output.pending_resolved.push((transfer.pending_id, status));
            }
        }
        output.transfers = self.committed;
        output
    }
}

/// The pending status a post, void or expiry record leaves behind.
pub fn resolution_status(flags: TransferFlags) -> Option<PendingStatus> {
    if flags.contains(TransferFlags::POST_PENDING) {
        Some(PendingStatus::Posted)
    } else if flags.contains(TransferFlags::VOID_PENDING) {
        Some(PendingStatus::Voided)
    } else if flags.contains(TransferFlags::EXPIRY) {
        Some(PendingStatus::Expired)
    } else {
        None
    }
}

/// Balances are never negative and never break the account's flags.
pub fn assert_account_invariants(account: &Account) {
    assert!(
        account.debits_pending >= 0
            && account.debits_posted >= 0
            && account.credits_pending >= 0
            && account.credits_posted >= 0,
        "negative balance on {:?}",
        account.id
    );
    if account
        .flags
        .contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
    {
        assert!(
            i128::from(account.debits_pending) + i128::from(account.debits_posted)
                <= i128::from(account.credits_posted),
            "debits exceed credits on {:?}",
            account.id
        );
    }
    if account
        .flags
        .contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
    {
        assert!(
            i128::from(account.credits_pending) + i128::from(account.credits_posted)
                <= i128::from(account.debits_posted),
            "credits exceed debits on {:?}",
            account.id
        );
    }
}

fn checked(
    left: i64,
    right: i64,
    overflow: CreateTransferResult,
) -> Result<i64, CreateTransferResult> {
    left.checked_add(right).ok_or(overflow)
}

/// The amount a transfer moves: for balancing transfers, at most what is available.
fn balanced_amount(request: &TransferRequest, debit: &Account, credit: &Account) -> i64 {
    let mut amount = i128::from(request.amount);
    if request.flags.contains(TransferFlags::BALANCING_DEBIT) {
        let available = i128::from(debit.credits_posted)
            - i128::from(debit.debits_posted)
            - i128::from(debit.debits_pending);
        amount = amount.min(available.max(0));
    }
    if request.flags.contains(TransferFlags::BALANCING_CREDIT) {
        let available = i128::from(credit.debits_posted)
            - i128::from(credit.credits_posted)
            - i128::from(credit.credits_pending);
        amount = amount.min(available.max(0));
    }
    // amount is between 0 and request.amount, so it fits.
    i64::try_from(amount).unwrap_or(0)
}

fn check_inherited_fields(
    request: &TransferRequest,
    pending: &Transfer,
) -> Result<(), CreateTransferResult> {
    use CreateTransferResult as R;
    if !request.debit_account_id.is_zero() && request.debit_account_id != pending.debit_account_id {
        return Err(R::PendingTransferHasDifferentDebitAccountId);
    }
    if !request.credit_account_id.is_zero()
        && request.credit_account_id != pending.credit_account_id
    {
        return Err(R::PendingTransferHasDifferentCreditAccountId);
    }
    if request.ledger != 0 && request.ledger != pending.ledger {
        return Err(R::PendingTransferHasDifferentLedger);
    }
    if request.code != 0 && request.code != pending.code {
        return Err(R::PendingTransferHasDifferentCode);
    }
    Ok(())
}

fn validate_account(request: &NewAccount) -> Result<(), CreateAccountResult> {
    use CreateAccountResult as R;
    match request.id.get() {
        0 => return Err(R::IdMustNotBeZero),
        u128::MAX => return Err(R::IdMustNotBeIntMax),
        _ => {}
    }
    let both =
        AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS | AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    if request.flags.contains(both) {
        return Err(R::FlagsAreMutuallyExclusive);
    }
    if request.flags.contains(AccountFlags::CLOSED) {
        return Err(R::FlagsAreReserved);
    }
    if request.ledger == 0 {
        return Err(R::LedgerMustNotBeZero);
    }
    if !ledger_is_known(request.ledger) {
        return Err(R::LedgerMustBeACurrency);
    }
    Ok(())
}

fn compare_existing_account(request: &NewAccount, existing: &Account) -> CreateAccountResult {
    use CreateAccountResult as R;
    // The closed flag changes over an account's life; compare what the caller set.
    if request.flags != existing.flags.without(AccountFlags::CLOSED) {
        R::ExistsWithDifferentFlags
    } else if request.owner != existing.owner {
        R::ExistsWithDifferentOwner
    } else if request.ledger != existing.ledger {
        R::ExistsWithDifferentLedger
    } else if request.code != existing.code {
        R::ExistsWithDifferentCode
    } else {
        R::Exists
    }
}

/// The checks that need nothing but the request itself.
pub fn validate_transfer(request: &TransferRequest) -> Result<(), CreateTransferResult> {
    use CreateTransferResult as R;
    use TransferFlags as F;
    match request.id.get() {
        0 => return Err(R::IdMustNotBeZero),
        u128::MAX => return Err(R::IdMustNotBeIntMax),
        _ => {}
    }
    let flags = request.flags;
    if flags.contains(F::EXPIRY) {
        return Err(R::FlagsAreReserved);
    }
    let kinds = [F::PENDING, F::POST_PENDING, F::VOID_PENDING]
        .iter()
        .filter(|kind| flags.contains(**kind))
        .count();
    let resolution = request.is_resolution();
    let shaping = flags.contains(F::BALANCING_DEBIT)
        || flags.contains(F::BALANCING_CREDIT)
        || flags.contains(F::CLOSING_DEBIT)
        || flags.contains(F::CLOSING_CREDIT);
    if kinds > 1 || (resolution && shaping) {
        return Err(R::FlagsAreMutuallyExclusive);
    }
    let closing = flags.contains(F::CLOSING_DEBIT) || flags.contains(F::CLOSING_CREDIT);
    if closing && !flags.contains(F::PENDING) {
        return Err(R::ClosingTransferMustBePending);
    }
    if resolution {
        match request.pending_id.get() {
            0 => return Err(R::PendingIdMustNotBeZero),
            u128::MAX => return Err(R::PendingIdMustNotBeIntMax),
            pending if pending == request.id.get() => return Err(R::PendingIdMustBeDifferent),
            _ => {}
        }
    } else if !request.pending_id.is_zero() {
        return Err(R::PendingIdMustBeZero);
    }
    if request.timeout_seconds > 0 && !flags.contains(F::PENDING) {
        return Err(R::TimeoutReservedForPendingTransfer);
    }
    if request.timeout_seconds > PENDING_TIMEOUT_SECONDS_MAX {
        return Err(R::TimeoutTooLong);
    }
    if request.amount < 0 {
        return Err(R::AmountMustNotBeNegative);
    }
    if resolution {
        return Ok(());
    }
    match request.debit_account_id.get() {
        0 => return Err(R::DebitAccountIdMustNotBeZero),
        u128::MAX => return Err(R::DebitAccountIdMustNotBeIntMax),
        _ => {}
    }
    match request.credit_account_id.get() {
        0 => return Err(R::CreditAccountIdMustNotBeZero),
        u128::MAX => return Err(R::CreditAccountIdMustNotBeIntMax),
        _ => {}
    }
    if request.debit_account_id == request.credit_account_id {
        return Err(R::AccountsMustBeDifferent);
    }
    if request.ledger == 0 {
        return Err(R::LedgerMustNotBeZero);
    }
    if request.code == 0 {
        return Err(R::CodeMustNotBeZero);
    }
    if request.amount == 0 && !closing {
        return Err(R::AmountMustNotBeZero);
    }
    Ok(())
}

/// Why a re-submitted id is, or is not, the same transfer.
pub fn compare_existing_transfer(
    request: &TransferRequest,
    existing: &Transfer,
) -> CreateTransferResult {
    use CreateTransferResult as R;
    let resolution = request.is_resolution();
    let inherits = |given: u128, stored: u128| (resolution && given == 0) || given == stored;
    let balancing = request.flags.contains(TransferFlags::BALANCING_DEBIT)
        || request.flags.contains(TransferFlags::BALANCING_CREDIT);
    let same_amount = if balancing {
        request.amount >= existing.amount
    } else if resolution {
        request.amount == 0 || request.amount == existing.amount
    } else {
        request.amount == existing.amount
    };
    if request.flags != existing.flags {
        R::ExistsWithDifferentFlags
    } else if request.pending_id != existing.pending_id {
        R::ExistsWithDifferentPendingId
    } else if request.timeout_seconds != existing.timeout_seconds {
        R::ExistsWithDifferentTimeout
    } else if !inherits(
        request.debit_account_id.get(),
        existing.debit_account_id.get(),
    ) {
        R::ExistsWithDifferentDebitAccountId
    } else if !inherits(
        request.credit_account_id.get(),
        existing.credit_account_id.get(),
    ) {
        R::ExistsWithDifferentCreditAccountId
    } else if !same_amount {
        R::ExistsWithDifferentAmount
    } else if request.reference != existing.reference {
        R::ExistsWithDifferentReference
    } else if !inherits(u128::from(request.ledger), u128::from(existing.ledger)) {
        R::ExistsWithDifferentLedger
    } else if !inherits(u128::from(request.code), u128::from(existing.code)) {
        R::ExistsWithDifferentCode
    } else {
        R::Exists
    }
}
