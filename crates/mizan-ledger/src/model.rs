//! A deliberately simple reference model of the ledger, for property tests.
//!
//! It shares no code with the engine: every event is checked against the full
//! list of committed transfers, balances are recomputed by summing that list, and
//! chains are undone by restoring a clone of the whole state. Slow and obviously
//! right, so that the engine (and each store under the writer) can be compared to it.

use std::collections::BTreeMap;

use crate::results::{CreateAccountResult as A, CreateTransferResult as T};
use crate::types::{
    ledger_is_known, AccountCode, AccountFlags as AF, Balances, NewAccount, PendingStatus,
    TransferFlags as TF, TransferRequest, PENDING_TIMEOUT_SECONDS_MAX,
};

#[derive(Debug, Clone)]
struct ModelAccount {
    ledger: u32,
    code: AccountCode,
    owner: u128,
    flags: AF,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTransfer {
    pub id: u128,
    pub debit: u128,
    pub credit: u128,
    pub amount: i64,
    pub pending_id: u128,
    pub ledger: u32,
    pub code: u16,
    pub reference: u128,
    pub flags: TF,
    pub timeout_seconds: u32,
    pub timestamp: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Model {
    accounts: BTreeMap<u128, ModelAccount>,
    pub transfers: Vec<ModelTransfer>,
    last_timestamp: u64,
    batch_start: (usize, usize, u64),
}

impl Model {
    pub fn balances(&self, account: u128) -> Balances {
        let mut b = Balances::default();
        for t in &self.transfers {
            let (pending, posted) = self.effect(t);
            if t.debit == account {
                b.debits_pending += pending;
                b.debits_posted += posted;
            }
            if t.credit == account {
                b.credits_pending += pending;
                b.credits_posted += posted;
            }
        }
        b
    }

    /// (pending delta, posted delta) a committed transfer has on both of its accounts.
    fn effect(&self, t: &ModelTransfer) -> (i64, i64) {
        if t.flags.contains(TF::PENDING) {
            (t.amount, 0)
        } else if t.flags.contains(TF::POST_PENDING) {
            (-self.original(t.pending_id).amount, t.amount)
        } else if t.flags.contains(TF::VOID_PENDING) || t.flags.contains(TF::EXPIRY) {
            (-self.original(t.pending_id).amount, 0)
        } else {
            (0, t.amount)
        }
    }

    fn original(&self, pending_id: u128) -> &ModelTransfer {
        self.transfers
            .iter()
            .find(|t| t.id == pending_id && pending_id != 0)
            .unwrap_or_else(|| panic!("model: missing pending {pending_id}"))
    }

    pub fn account_flags(&self, account: u128) -> Option<AF> {
        self.accounts.get(&account).map(|a| {
            let closed = self.transfers.iter().any(|t| {
                let closing = (t.flags.contains(TF::CLOSING_DEBIT) && t.debit == account)
                    || (t.flags.contains(TF::CLOSING_CREDIT) && t.credit == account);
                closing
                    && self.status(t.id) != Some(PendingStatus::Voided)
                    && self.status(t.id) != Some(PendingStatus::Expired)
            });
            if closed {
                a.flags | AF::CLOSED
            } else {
                a.flags
            }
        })
    }

    pub fn status(&self, pending_id: u128) -> Option<PendingStatus> {
        let original = self
            .transfers
            .iter()
            .find(|t| t.id == pending_id && t.flags.contains(TF::PENDING))?;
        let resolution = self.transfers.iter().find(|t| t.pending_id == original.id);
        Some(match resolution {
            None => PendingStatus::Pending,
            Some(r) if r.flags.contains(TF::POST_PENDING) => PendingStatus::Posted,
            Some(r) if r.flags.contains(TF::VOID_PENDING) => PendingStatus::Voided,
            Some(_) => PendingStatus::Expired,
        })
    }

    /// Marks the start of a writer batch.
    pub fn begin_batch(&mut self) {
        self.batch_start = (
            self.accounts.len(),
            self.transfers.len(),
            self.last_timestamp,
        );
    }

    /// A batch that committed nothing writes nothing: not even the timestamps its
    /// failed events took.
    pub fn end_batch(&mut self) {
        let (accounts, transfers, last_timestamp) = self.batch_start;
        if self.accounts.len() == accounts && self.transfers.len() == transfers {
            self.last_timestamp = last_timestamp;
        }
    }

    /// The time a batch starting at clock time `clock` runs at: never before the
    /// last timestamp handed out.
    pub fn batch_now(&self, clock: u64) -> u64 {
        clock.max(self.last_timestamp + 1)
    }

    fn next_timestamp(&mut self, now: u64) -> u64 {
        self.last_timestamp = (self.last_timestamp + 1).max(now);
        self.last_timestamp
    }

    /// Expires every pending transfer whose deadline is at or before `now`, oldest
    /// deadline first (then lowest id), as the stores return them.
    pub fn expire(&mut self, now: u64) {
        let mut due: Vec<(u64, u128)> = self
            .transfers
            .iter()
            .filter(|t| t.flags.contains(TF::PENDING) && t.timeout_seconds > 0)
            .filter(|t| self.status(t.id) == Some(PendingStatus::Pending))
            .map(|t| {
                (
                    t.timestamp + u64::from(t.timeout_seconds) * 1_000_000_000,
                    t.id,
                )
            })
            .filter(|(deadline, _)| *deadline <= now)
            .collect();
        due.sort();
        for (_, id) in due {
            let p = self.original(id).clone();
            let timestamp = self.next_timestamp(now);
            self.transfers.push(ModelTransfer {
                id: 0,
                flags: TF::EXPIRY,
                pending_id: id,
                timeout_seconds: 0,
                timestamp,
                ..p
            });
        }
    }

    pub fn create_account(&mut self, a: &NewAccount, now: u64) -> A {
        self.next_timestamp(now);
        let id = a.id.get();
        if id == 0 {
            return A::IdMustNotBeZero;
        }
        if id == u128::MAX {
            return A::IdMustNotBeIntMax;
        }
        if a.flags.contains(AF::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && a.flags.contains(AF::CREDITS_MUST_NOT_EXCEED_DEBITS)
        {
            return A::FlagsAreMutuallyExclusive;
        }
        if a.flags.contains(AF::CLOSED) {
            return A::FlagsAreReserved;
        }
        if a.ledger == 0 {
            return A::LedgerMustNotBeZero;
        }
        if !ledger_is_known(a.ledger) {
            return A::LedgerMustBeACurrency;
        }
        if let Some(e) = self.accounts.get(&id) {
            return if e.flags != a.flags {
                A::ExistsWithDifferentFlags
            } else if e.owner != a.owner {
                A::ExistsWithDifferentOwner
            } else if e.ledger != a.ledger {
                A::ExistsWithDifferentLedger
            } else if e.code != a.code {
                A::ExistsWithDifferentCode
            } else {
                A::Exists
            };
        }
        self.accounts.insert(
            id,
            ModelAccount {
                ledger: a.ledger,
                code: a.code,
                owner: a.owner,
                flags: a.flags,
            },
        );
        A::Ok
    }

    /// Applies a submission like the writer does; `now` is the batch time.
    pub fn submit(
        &mut self,
        accounts: &[NewAccount],
        transfers: &[TransferRequest],
        atomic: bool,
        now: u64,
    ) -> (Vec<A>, Vec<T>) {
        let before = self.clone();
        let mut account_results: Vec<A> = accounts
            .iter()
            .map(|a| self.create_account(a, now))
            .collect();
        let mut results = vec![T::Ok; transfers.len()];
        let mut i = 0;
        while i < transfers.len() {
            let mut end = i;
            while end < transfers.len() && transfers[end].flags.contains(TF::LINKED) {
                end += 1;
            }
            if end == transfers.len() {
                // Open chain at the end of the submission.
                for r in &mut results[i..] {
                    *r = T::LinkedEventFailed;
                }
                let last = transfers.len() - 1;
                // Every event takes one timestamp slot, whether it commits or not.
                for _ in i..=last {
                    self.next_timestamp(now);
                }
                results[last] = T::LinkedEventChainOpen;
                break;
            }
            let snapshot = self.clone();
            let mut failed = None;
            for k in i..=end {
                if failed.is_some() {
                    self.next_timestamp(now);
                    results[k] = T::LinkedEventFailed;
                    continue;
                }
                let r = self.create_transfer(&transfers[k], now);
                results[k] = r;
                if r != T::Ok {
                    failed = Some(k);
                }
            }
            if let Some(k) = failed {
                let last_timestamp = self.last_timestamp;
                *self = Model {
                    last_timestamp,
                    ..snapshot
                };
                for (j, r) in results.iter_mut().enumerate().take(end + 1).skip(i) {
                    if j != k {
                        *r = T::LinkedEventFailed;
                    }
                }
            }
            i = end + 1;
        }
        let all_ok =
            account_results.iter().all(|r| *r == A::Ok) && results.iter().all(|r| *r == T::Ok);
        if atomic && !all_ok {
            let last_timestamp = self.last_timestamp;
            *self = Model {
                last_timestamp,
                ..before
            };
            for r in &mut account_results {
                if *r == A::Ok {
                    *r = A::LinkedEventFailed;
                }
            }
            for r in &mut results {
                if *r == T::Ok {
                    *r = T::LinkedEventFailed;
                }
            }
        }
        (account_results, results)
    }

    fn create_transfer(&mut self, t: &TransferRequest, now: u64) -> T {
        let timestamp = self.next_timestamp(now);
        match self.check_transfer(t, now, timestamp) {
            Ok(committed) => {
                self.transfers.push(committed);
                T::Ok
            }
            Err(code) => code,
        }
    }

    fn check_transfer(
        &self,
        t: &TransferRequest,
        now: u64,
        timestamp: u64,
    ) -> Result<ModelTransfer, T> {
        let f = t.flags;
        let id = t.id.get();
        let post = f.contains(TF::POST_PENDING);
        let void = f.contains(TF::VOID_PENDING);
        let pending = f.contains(TF::PENDING);
        let resolve = post || void;
        let closing = f.contains(TF::CLOSING_DEBIT) || f.contains(TF::CLOSING_CREDIT);
        let balancing = f.contains(TF::BALANCING_DEBIT) || f.contains(TF::BALANCING_CREDIT);
        if id == 0 {
            return Err(T::IdMustNotBeZero);
        }
        if id == u128::MAX {
            return Err(T::IdMustNotBeIntMax);
        }
        if f.contains(TF::EXPIRY) {
            return Err(T::FlagsAreReserved);
        }
        if u8::from(pending) + u8::from(post) + u8::from(void) > 1
            || (resolve && (closing || balancing))
        {
            return Err(T::FlagsAreMutuallyExclusive);
        }
        if closing && !pending {
            return Err(T::ClosingTransferMustBePending);
        }
        let pid = t.pending_id.get();
        if resolve {
            if pid == 0 {
                return Err(T::PendingIdMustNotBeZero);
            }
            if pid == u128::MAX {
                return Err(T::PendingIdMustNotBeIntMax);
            }
            if pid == id {
                return Err(T::PendingIdMustBeDifferent);
            }
        } else if pid != 0 {
            return Err(T::PendingIdMustBeZero);
        }
        if t.timeout_seconds > 0 && !pending {
            return Err(T::TimeoutReservedForPendingTransfer);
        }
        if t.timeout_seconds > PENDING_TIMEOUT_SECONDS_MAX {
            return Err(T::TimeoutTooLong);
        }
        if t.amount < 0 {
            return Err(T::AmountMustNotBeNegative);
        }
        let (debit, credit) = (t.debit_account_id.get(), t.credit_account_id.get());
        if !resolve {
            if debit == 0 {
                return Err(T::DebitAccountIdMustNotBeZero);
            }
            if debit == u128::MAX {
                return Err(T::DebitAccountIdMustNotBeIntMax);
            }
            if credit == 0 {
                return Err(T::CreditAccountIdMustNotBeZero);
            }
            if credit == u128::MAX {
                return Err(T::CreditAccountIdMustNotBeIntMax);
            }
            if debit == credit {
                return Err(T::AccountsMustBeDifferent);
            }
            if t.ledger == 0 {
                return Err(T::LedgerMustNotBeZero);
            }
            if t.code == 0 {
                return Err(T::CodeMustNotBeZero);
            }
            if t.amount == 0 && !closing {
                return Err(T::AmountMustNotBeZero);
            }
        }
        if let Some(e) = self.transfers.iter().find(|x| x.id == id) {
            return Err(exists_code(t, e));
        }
        if resolve {
            self.check_resolution(t, now, timestamp)
        } else {
            self.check_regular(t, timestamp)
        }
    }

    fn check_regular(&self, t: &TransferRequest, timestamp: u64) -> Result<ModelTransfer, T> {
        let (debit, credit) = (t.debit_account_id.get(), t.credit_account_id.get());
        let d = self.accounts.get(&debit).ok_or(T::DebitAccountNotFound)?;
        let c = self.accounts.get(&credit).ok_or(T::CreditAccountNotFound)?;
        if d.ledger != c.ledger {
            return Err(T::AccountsMustHaveTheSameLedger);
        }
        if t.ledger != d.ledger {
            return Err(T::LedgerMustMatch);
        }
        let (d_flags, c_flags) = (
            self.account_flags(debit).unwrap_or(d.flags),
            self.account_flags(credit).unwrap_or(c.flags),
        );
        if d_flags.contains(AF::CLOSED) || c_flags.contains(AF::CLOSED) {
            return Err(T::AccountClosed);
        }
        let db = self.balances(debit);
        let cb = self.balances(credit);
        let mut amount = i128::from(t.amount);
        if t.flags.contains(TF::BALANCING_DEBIT) {
            let room = i128::from(db.credits_posted)
                - i128::from(db.debits_posted)
                - i128::from(db.debits_pending);
            amount = amount.min(room.max(0));
        }
        if t.flags.contains(TF::BALANCING_CREDIT) {
            let room = i128::from(cb.debits_posted)
                - i128::from(cb.credits_posted)
                - i128::from(cb.credits_pending);
            amount = amount.min(room.max(0));
        }
        let limit = i128::from(i64::MAX);
        if t.flags.contains(TF::PENDING) {
            if i128::from(db.debits_pending) + amount > limit {
                return Err(T::OverflowsDebitsPending);
            }
            if i128::from(cb.credits_pending) + amount > limit {
                return Err(T::OverflowsCreditsPending);
            }
        } else {
            if i128::from(db.debits_posted) + amount > limit {
                return Err(T::OverflowsDebitsPosted);
            }
            if i128::from(cb.credits_posted) + amount > limit {
                return Err(T::OverflowsCreditsPosted);
            }
        }
        let debits = i128::from(db.debits_pending) + i128::from(db.debits_posted) + amount;
        let credits = i128::from(cb.credits_pending) + i128::from(cb.credits_posted) + amount;
        if debits > limit {
            return Err(T::OverflowsDebits);
        }
        if credits > limit {
            return Err(T::OverflowsCredits);
        }
        if d.flags.contains(AF::DEBITS_MUST_NOT_EXCEED_CREDITS)
            && debits > i128::from(db.credits_posted)
        {
            return Err(T::ExceedsCredits);
        }
        if c.flags.contains(AF::CREDITS_MUST_NOT_EXCEED_DEBITS)
            && credits > i128::from(cb.debits_posted)
        {
            return Err(T::ExceedsDebits);
        }
        Ok(ModelTransfer {
            id: t.id.get(),
            debit,
            credit,
            amount: i64::try_from(amount).unwrap_or(0),
            pending_id: 0,
            ledger: t.ledger,
            code: t.code,
            reference: t.reference,
            flags: t.flags,
            timeout_seconds: t.timeout_seconds,
            timestamp,
        })
    }

    fn check_resolution(
        &self,
        t: &TransferRequest,
        now: u64,
        timestamp: u64,
    ) -> Result<ModelTransfer, T> {
        let p = self
            .transfers
            .iter()
            .find(|x| x.id == t.pending_id.get())
            .ok_or(T::PendingTransferNotFound)?;
        if !p.flags.contains(TF::PENDING) {
            return Err(T::PendingTransferNotPending);
        }
        let given = |value: u128, stored: u128| value == 0 || value == stored;
        if !given(t.debit_account_id.get(), p.debit) {
            return Err(T::PendingTransferHasDifferentDebitAccountId);
        }
        if !given(t.credit_account_id.get(), p.credit) {
            return Err(T::PendingTransferHasDifferentCreditAccountId);
        }
        if !given(u128::from(t.ledger), u128::from(p.ledger)) {
            return Err(T::PendingTransferHasDifferentLedger);
        }
        if !given(u128::from(t.code), u128::from(p.code)) {
            return Err(T::PendingTransferHasDifferentCode);
        }
        let post = t.flags.contains(TF::POST_PENDING);
        let amount = if post {
            let amount = if t.amount == 0 { p.amount } else { t.amount };
            if amount > p.amount {
                return Err(T::ExceedsPendingTransferAmount);
            }
            amount
        } else {
            if t.amount != 0 && t.amount != p.amount {
                return Err(T::PendingTransferHasDifferentAmount);
            }
            p.amount
        };
        match self.status(p.id) {
            Some(PendingStatus::Posted) => return Err(T::PendingTransferAlreadyPosted),
            Some(PendingStatus::Voided) => return Err(T::PendingTransferAlreadyVoided),
            Some(PendingStatus::Expired) => return Err(T::PendingTransferExpired),
            Some(PendingStatus::Pending) | None => {}
        }
        if p.timeout_seconds > 0
            && p.timestamp + u64::from(p.timeout_seconds) * 1_000_000_000 <= now
        {
            return Err(T::PendingTransferExpired);
        }
        if post {
            let closed_here = |account: u128, closing_flag: TF| {
                self.account_flags(account)
                    .is_some_and(|f| f.contains(AF::CLOSED))
                    && !p.flags.contains(closing_flag)
            };
            if closed_here(p.debit, TF::CLOSING_DEBIT) || closed_here(p.credit, TF::CLOSING_CREDIT)
            {
                return Err(T::AccountClosed);
            }
            let limit = i128::from(i64::MAX);
            if i128::from(self.balances(p.debit).debits_posted) + i128::from(amount) > limit {
                return Err(T::OverflowsDebitsPosted);
            }
            if i128::from(self.balances(p.credit).credits_posted) + i128::from(amount) > limit {
                return Err(T::OverflowsCreditsPosted);
            }
        }
        Ok(ModelTransfer {
            id: t.id.get(),
            debit: p.debit,
            credit: p.credit,
            amount,
            pending_id: p.id,
            ledger: p.ledger,
            code: p.code,
            reference: t.reference,
            flags: t.flags,
            timeout_seconds: 0,
            timestamp,
        })
    }
}

fn exists_code(t: &TransferRequest, e: &ModelTransfer) -> T {
    let resolve = t.is_resolution();
    let same = |given: u128, stored: u128| given == stored || (resolve && given == 0);
    let balancing = t.flags.contains(TF::BALANCING_DEBIT) || t.flags.contains(TF::BALANCING_CREDIT);
    let amount_same = if balancing {
        t.amount >= e.amount
    } else {
        t.amount == e.amount || (resolve && t.amount == 0)
    };
    if t.flags != e.flags {
        T::ExistsWithDifferentFlags
    } else if t.pending_id.get() != e.pending_id {
        T::ExistsWithDifferentPendingId
    } else if t.timeout_seconds != e.timeout_seconds {
        T::ExistsWithDifferentTimeout
    } else if !same(t.debit_account_id.get(), e.debit) {
        T::ExistsWithDifferentDebitAccountId
    } else if !same(t.credit_account_id.get(), e.credit) {
        T::ExistsWithDifferentCreditAccountId
    } else if !amount_same {
        T::ExistsWithDifferentAmount
    } else if t.reference != e.reference {
        T::ExistsWithDifferentReference
    } else if !same(u128::from(t.ledger), u128::from(e.ledger)) {
        T::ExistsWithDifferentLedger
    } else if !same(u128::from(t.code), u128::from(e.code)) {
        T::ExistsWithDifferentCode
    } else {
        T::Exists
    }
}
