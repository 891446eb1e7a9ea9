//! The reader that runs beside the batch workloads: history queries must stay
//! correct and fast while the ledger writes.
//!
//! Each round reads the chain head `T`, then:
//! - pages through a random account's whole history up to `T`, oldest first,
//!   checking page sizes, order, bounds and cursors, and replays it; `balances_at`
//!   the same account at `T` must equal the replay (everything at or before `T` is
//!   committed and never changes);
//! - reads two newest-first pages of the hot account;
//! - asks again for the balances of an account at a time checked in an earlier round:
//!   the answer must not have changed.
//!
//! After the run (writer idle) [`Probe::final_check`] compares the chain head, every
//! account's balances and the money moved with what the submitters were told.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mizan_core::AccountId;
use mizan_ledger::store::BalanceReplay;
use mizan_ledger::{Balances, HistoryFilter, HistoryPage, LedgerReader, StoreError};
use mizan_store::Location;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::report::{summarize, LatencySummary};
use super::workload::{nanos, Population, Tally, HOT_ACCOUNT_INDEX};

/// Page size of the history queries.
const PAGE_LIMIT: usize = 100;
/// Most pages read of one random account in one round.
const RANDOM_PAGES_MAX: usize = 1_000;
/// Newest-first pages read of the hot account per round.
const HOT_PAGES: usize = 2;
/// Earlier answers kept to ask again.
const SAMPLES_MAX: usize = 64;
/// Problems kept word for word; the rest are only counted.
const PROBLEMS_KEPT_MAX: usize = 20;
/// Random accounts whose stored balances are compared with `balances_at` at the end.
const FINAL_ACCOUNTS_CHECKED: usize = 100;

#[derive(Debug, Clone, Copy)]
pub struct ProbeConfig {
    pub accounts: u64,
    pub interval: Duration,
}

/// An answer of `balances_at`, asked again later.
#[derive(Debug, Clone, Copy)]
struct Sample {
    account: AccountId,
    timestamp: u64,
    balances: Balances,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryFigures {
    pub rounds: u64,
    /// Every history page, random and hot accounts.
    pub page: LatencySummary,
    pub random_account_page: LatencySummary,
    pub hot_account_page: LatencySummary,
    pub balances_at: LatencySummary,
    /// `balances_at` of the hot account over its whole history, once at the end.
    pub hot_balances_at_final_ms: f64,
    pub problems_total: u64,
    pub problems: Vec<String>,
}

pub struct Probe {
    reader: Box<dyn LedgerReader>,
    config: ProbeConfig,
    rng: SmallRng,
    samples: Vec<Sample>,
    rounds: u64,
    random_page_ns: Vec<u64>,
    hot_page_ns: Vec<u64>,
    balances_at_ns: Vec<u64>,
    hot_balances_at_final_ns: u64,
    problems_total: u64,
    problems: Vec<String>,
}

fn timed<T>(latencies_ns: &mut Vec<u64>, query: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = query();
    latencies_ns.push(nanos(started.elapsed()));
    result
}

impl Probe {
    pub fn open(location: &Location, config: ProbeConfig) -> anyhow::Result<Probe> {
        Ok(Probe {
            reader: location.open_reader()?,
            config,
            rng: SmallRng::seed_from_u64(0x6869_7374_6f72_7900),
            samples: Vec::new(),
            rounds: 0,
            random_page_ns: Vec::new(),
            hot_page_ns: Vec::new(),
            balances_at_ns: Vec::new(),
            hot_balances_at_final_ns: 0,
            problems_total: 0,
            problems: Vec::new(),
        })
    }

    fn problem(&mut self, problem: String) {
        self.problems_total += 1;
        if self.problems.len() < PROBLEMS_KEPT_MAX {
            self.problems.push(problem);
        }
    }

    /// Runs rounds until `stop` is set, pausing `interval` between them.
    pub fn run_until(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if let Err(error) = self.round() {
                self.problem(format!("history query failed: {error}"));
            }
            std::thread::sleep(self.config.interval);
        }
    }

    fn round(&mut self) -> Result<(), StoreError> {
        let head = self.reader.chain_head()?;
        if head.transfers_count == 0 {
            return Ok(());
        }
        self.rounds += 1;
        let account = Population::account_id(self.rng.random_range(0..self.config.accounts));
        self.check_whole_history(account, head.last_timestamp)?;
        self.check_hot_pages(head.last_timestamp)?;
        if !self.samples.is_empty() {
            let sample = self.samples[self.rng.random_range(0..self.samples.len())];
            self.recheck(sample)?;
        }
        Ok(())
    }

    /// Pages through `account`'s history up to `until`, then compares `balances_at`.
    fn check_whole_history(&mut self, account: AccountId, until: u64) -> Result<(), StoreError> {
        let mut filter = HistoryFilter {
            to_timestamp: Some(until),
            limit: PAGE_LIMIT,
            ..HistoryFilter::default()
        };
        let mut replay = BalanceReplay::default();
        let mut previous = None;
        for _ in 0..RANDOM_PAGES_MAX {
            let page = timed(&mut self.random_page_ns, || {
                self.reader.account_history(account, &filter)
            })?;
            if let Err(problem) = check_page(&page, account, &filter, previous) {
                self.problem(format!("history of {account} up to {until}: {problem}"));
                return Ok(());
            }
            for transfer in &page.transfers {
                if let Err(problem) = replay.apply(transfer) {
                    self.problem(format!("history of {account}: {problem}"));
                    return Ok(());
                }
            }
            previous = page.transfers.last().map(|t| t.timestamp);
            match page.next_cursor {
                Some(cursor) => filter.after_timestamp = Some(cursor),
                None => {
                    let expected = replay.balances.get(&account).copied().unwrap_or_default();
                    let sample = Sample {
                        account,
                        timestamp: until,
                        balances: expected,
                    };
                    self.recheck(sample)?;
                    if self.samples.len() < SAMPLES_MAX {
                        self.samples.push(sample);
                    } else {
                        let slot = self.rng.random_range(0..SAMPLES_MAX);
                        self.samples[slot] = sample;
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn check_hot_pages(&mut self, until: u64) -> Result<(), StoreError> {
        let hot = Population::account_id(HOT_ACCOUNT_INDEX);
        let mut filter = HistoryFilter {
            to_timestamp: Some(until),
            newest_first: true,
            limit: PAGE_LIMIT,
            ..HistoryFilter::default()
        };
        let mut previous = None;
        for _ in 0..HOT_PAGES {
            let page = timed(&mut self.hot_page_ns, || {
                self.reader.account_history(hot, &filter)
            })?;
            if let Err(problem) = check_page(&page, hot, &filter, previous) {
                self.problem(format!("newest history of the hot account: {problem}"));
                return Ok(());
            }
            previous = page.transfers.last().map(|t| t.timestamp);
            match page.next_cursor {
                Some(cursor) => filter.after_timestamp = Some(cursor),
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// `balances_at` must give the same answer as before (or as the replay).
    fn recheck(&mut self, sample: Sample) -> Result<(), StoreError> {
        let balances = timed(&mut self.balances_at_ns, || {
            self.reader.balances_at(sample.account, sample.timestamp)
        })?;
        if balances != sample.balances {
            self.problem(format!(
                "balances_at({}, {}) = {balances:?}, expected {:?}",
                sample.account, sample.timestamp, sample.balances
            ));
        }
        Ok(())
    }

    /// After the run, with the writer idle: the chain head counts every transfer,
    /// balances add up to the money moved, and stored balances equal `balances_at`.
    pub fn final_check(&mut self, expected_transfers: u64, tally: &Tally) {
        if let Err(error) = self.try_final_check(expected_transfers, tally) {
            self.problem(format!("final check failed: {error}"));
        }
    }

    fn try_final_check(&mut self, expected_transfers: u64, tally: &Tally) -> anyhow::Result<()> {
        if tally.ok != expected_transfers || !tally.failures.is_empty() {
            self.problem(format!(
                "{} of {expected_transfers} transfers ok; failures {:?}",
                tally.ok, tally.failures
            ));
        }
        let head = self.reader.chain_head()?;
        if head.transfers_count != tally.ok {
            self.problem(format!(
                "chain head counts {} transfers, {} were acknowledged",
                head.transfers_count, tally.ok
            ));
        }
        let accounts = self.reader.all_accounts()?;
        let debits: i128 = accounts.iter().map(|a| i128::from(a.debits_posted)).sum();
        let credits: i128 = accounts.iter().map(|a| i128::from(a.credits_posted)).sum();
        let pending = accounts
            .iter()
            .any(|a| a.debits_pending != 0 || a.credits_pending != 0);
        if accounts.len() as u64 != self.config.accounts
            || debits != tally.amount_ok
            || credits != tally.amount_ok
            || pending
        {
            self.problem(format!(
                "{} accounts, posted debits {debits} and credits {credits}, acknowledged {}, pending {pending}",
                accounts.len(),
                tally.amount_ok
            ));
        }
        let hot_index = usize::try_from(HOT_ACCOUNT_INDEX)?;
        let step = (accounts.len() / FINAL_ACCOUNTS_CHECKED).max(1);
        for (index, account) in accounts.iter().enumerate() {
            if index % step != 0 && index != hot_index {
                continue;
            }
            let started = Instant::now();
            let balances = self.reader.balances_at(account.id, head.last_timestamp)?;
            if account.id == Population::account_id(HOT_ACCOUNT_INDEX) {
                self.hot_balances_at_final_ns = nanos(started.elapsed());
            }
            if balances != account.balances() {
                self.problem(format!(
                    "account {} stores {:?}, balances_at the head gives {balances:?}",
                    account.id,
                    account.balances()
                ));
            }
        }
        for sample in self.samples.clone() {
            self.recheck(sample)?;
        }
        Ok(())
    }

    pub fn figures(self) -> HistoryFigures {
        let mut every_page = self.random_page_ns.clone();
        every_page.extend_from_slice(&self.hot_page_ns);
        HistoryFigures {
            rounds: self.rounds,
            page: summarize(every_page),
            random_account_page: summarize(self.random_page_ns),
            hot_account_page: summarize(self.hot_page_ns),
            balances_at: summarize(self.balances_at_ns),
            hot_balances_at_final_ms: self.hot_balances_at_final_ns as f64 / 1e6,
            problems_total: self.problems_total,
            problems: self.problems,
        }
    }
}

/// What a page of `account`'s history must look like, after a page ending at `previous`.
fn check_page(
    page: &HistoryPage,
    account: AccountId,
    filter: &HistoryFilter,
    previous: Option<u64>,
) -> Result<(), String> {
    if page.transfers.len() > filter.limit {
        return Err(format!(
            "{} transfers on a page of {}",
            page.transfers.len(),
            filter.limit
        ));
    }
    let lower = filter.from_timestamp.unwrap_or(0);
    let upper = filter.to_timestamp.unwrap_or(u64::MAX);
    let mut last = previous;
    for transfer in &page.transfers {
        if transfer.debit_account_id != account && transfer.credit_account_id != account {
            return Err(format!(
                "transfer {} does not touch the account",
                transfer.id
            ));
        }
        if transfer.timestamp < lower || transfer.timestamp > upper {
            return Err(format!("timestamp {} out of bounds", transfer.timestamp));
        }
        let in_order = match last {
            None => true,
            Some(last) if filter.newest_first => transfer.timestamp < last,
            Some(last) => transfer.timestamp > last,
        };
        if !in_order {
            return Err(format!("timestamp {} out of order", transfer.timestamp));
        }
        last = Some(transfer.timestamp);
    }
    if let Some(cursor) = page.next_cursor {
        let full = page.transfers.len() == filter.limit;
        if !full || page.transfers.last().map(|t| t.timestamp) != Some(cursor) {
            return Err(format!(
                "cursor {cursor} after a page of {} transfers",
                page.transfers.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mizan_core::TransferId;
    use mizan_ledger::{Transfer, TransferFlags};

    use super::*;

    fn transfer(timestamp: u64, debit: u64, credit: u64) -> Transfer {
        Transfer {
            id: TransferId::from_raw(u128::from(timestamp)),
            debit_account_id: Population::account_id(debit),
            credit_account_id: Population::account_id(credit),
            amount: 1,
            pending_id: TransferId::from_raw(0),
            ledger: 840,
            code: 1,
            reference: 0,
            flags: TransferFlags::NONE,
            timeout_seconds: 0,
            timestamp,
            hash: [0; 32],
        }
    }

    fn page(transfers: Vec<Transfer>, next_cursor: Option<u64>) -> HistoryPage {
        HistoryPage {
            transfers,
            next_cursor,
        }
    }

    #[test]
    fn pages_must_be_ordered_bounded_and_about_the_account() {
        let account = Population::account_id(1);
        let filter = HistoryFilter {
            to_timestamp: Some(30),
            limit: 2,
            ..HistoryFilter::default()
        };
        let good = page(vec![transfer(10, 1, 2), transfer(20, 3, 1)], Some(20));
        assert_eq!(check_page(&good, account, &filter, None), Ok(()));
        let unordered = page(vec![transfer(20, 1, 2), transfer(10, 3, 1)], None);
        assert!(check_page(&unordered, account, &filter, None).is_err());
        let after_cursor = page(vec![transfer(10, 1, 2)], None);
        assert!(check_page(&after_cursor, account, &filter, Some(10)).is_err());
        let stranger = page(vec![transfer(10, 2, 3)], None);
        assert!(check_page(&stranger, account, &filter, None).is_err());
        let too_late = page(vec![transfer(31, 1, 2)], None);
        assert!(check_page(&too_late, account, &filter, None).is_err());
        let bad_cursor = page(vec![transfer(10, 1, 2)], Some(10));
        assert!(check_page(&bad_cursor, account, &filter, None).is_err());
        let newest_first = HistoryFilter {
            newest_first: true,
            ..filter
        };
        let descending = page(vec![transfer(20, 1, 2), transfer(10, 3, 1)], Some(10));
        assert_eq!(
            check_page(&descending, account, &newest_first, None),
            Ok(())
        );
    }
}
