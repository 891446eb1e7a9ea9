//! The Mizan side of the bench: accounts, generated transfers, the batch submitters
//! of the uniform and hot workloads and the single-transfer callers of the concurrent
//! one.
//!
//! Transfers are generated from seeds (batch number, caller number), so a run is
//! reproducible whatever the thread interleaving. Transfer ids are time-ordered (a
//! millisecond prefix, then a counter): random ids would cost random index inserts
//! and be unfair to both stores.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use mizan_core::{AccountId, Currency, TransferId};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, CreateAccountResult, CreateTransferResult, Ledger,
    NewAccount, Submission, SubmissionResult, TransferRequest, BATCH_EVENTS_MAX,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Account ids are this plus the account's index plus one.
const ACCOUNT_ID_BASE: u128 = 0xBE0C_0000_0000_0000_0000_0000;
/// The hot account of the hot workload (a normal account in the others).
pub const HOT_ACCOUNT_INDEX: u64 = 0;
/// Share of hot-workload transfers that credit the hot account.
const HOT_SHARE_PERCENT: u32 = 90;
const TRANSFER_CODE: u16 = 1;
/// Amounts are 1 to this many minor units.
const AMOUNT_MAX: i64 = 10_000;
/// Progress goes to stderr every this many transfers.
const PROGRESS_TRANSFERS_STEP: u64 = 1_000_000;
/// Mixed into every seed so runs are reproducible.
const SEED: u64 = 0x6d69_7a61_6e00_0001;

/// Which accounts transfers move money between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Debit and credit accounts uniform over all accounts.
    Uniform,
    /// 90% of transfers credit the hot account; the rest are uniform.
    Hot,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Uniform => "uniform",
            Pattern::Hot => "hot",
        }
    }
}

/// One generated transfer, by account index.
#[derive(Debug, Clone, Copy)]
pub struct Leg {
    pub debit: u64,
    pub credit: u64,
    pub amount: i64,
}

/// Draws a transfer's accounts and amount. `accounts` is at least 2.
pub fn draw(rng: &mut SmallRng, pattern: Pattern, accounts: u64) -> Leg {
    let amount = rng.random_range(1..=AMOUNT_MAX);
    let hot = match pattern {
        Pattern::Uniform => false,
        Pattern::Hot => rng.random_ratio(HOT_SHARE_PERCENT, 100),
    };
    if hot {
        // Any account but the hot one pays it.
        let debit = rng.random_range(1..accounts);
        return Leg {
            debit,
            credit: HOT_ACCOUNT_INDEX,
            amount,
        };
    }
    let debit = rng.random_range(0..accounts);
    let mut credit = rng.random_range(0..accounts - 1);
    if credit >= debit {
        credit += 1;
    }
    Leg {
        debit,
        credit,
        amount,
    }
}

/// A reproducible random stream for one batch or caller.
pub fn rng_for(stream: u64) -> SmallRng {
    SmallRng::seed_from_u64(SEED ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The accounts of one run and the ids of its transfers.
#[derive(Debug, Clone, Copy)]
pub struct Population {
    pub accounts: u64,
    /// The top 48 bits of every transfer id: the run's start in ms since the epoch.
    transfer_id_prefix: u128,
}

impl Population {
    pub fn new(accounts: u64) -> Population {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis())
            .unwrap_or(1);
        Population {
            accounts,
            transfer_id_prefix: (now_ms & 0xFFFF_FFFF_FFFF).max(1) << 80,
        }
    }

    pub fn account_id(index: u64) -> AccountId {
        AccountId::from_raw(ACCOUNT_ID_BASE + u128::from(index) + 1)
    }

    /// The id of the `sequence`-th transfer of the run: increasing with `sequence`.
    pub fn transfer_id(&self, sequence: u64) -> TransferId {
        TransferId::from_raw(self.transfer_id_prefix | u128::from(sequence + 1))
    }

    pub fn transfer(&self, sequence: u64, leg: Leg) -> TransferRequest {
        TransferRequest::single(
            self.transfer_id(sequence),
            Population::account_id(leg.debit),
            Population::account_id(leg.credit),
            leg.amount,
            ledger_of(Currency::USD),
            TRANSFER_CODE,
        )
    }

    /// Creates the accounts: wallets without balance limits, so every transfer can
    /// succeed. Not part of any measured rate.
    pub fn create(&self, ledger: &Ledger) -> anyhow::Result<()> {
        let mut index = 0;
        while index < self.accounts {
            let end = (index + BATCH_EVENTS_MAX as u64).min(self.accounts);
            let accounts: Vec<NewAccount> = (index..end)
                .map(|index| NewAccount {
                    id: Population::account_id(index),
                    ledger: ledger_of(Currency::USD),
                    code: AccountCode::UserWallet,
                    owner: u128::from(index) + 1,
                    flags: AccountFlags::NONE,
                })
                .collect();
            let result = ledger
                .submit_blocking(Submission::accounts(accounts))
                .map_err(|error| anyhow::anyhow!("creating accounts: {error}"))?;
            if let Some(bad) = result
                .accounts
                .iter()
                .find(|result| **result != CreateAccountResult::Ok)
            {
                bail!("creating accounts: {bad}");
            }
            index = end;
        }
        Ok(())
    }
}

/// What came back for the submitted transfers.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub submitted: u64,
    pub ok: u64,
    /// Sum of the amounts committed.
    pub amount_ok: i128,
    /// Result codes other than `ok`, and `error:<code>` for whole submissions refused.
    pub failures: BTreeMap<String, u64>,
}

impl Tally {
    fn record(&mut self, submitted: usize, reply: &Result<SubmissionResult, String>) {
        self.submitted += submitted as u64;
        match reply {
            Ok(result) => {
                for transfer in &result.transfers {
                    if transfer.result == CreateTransferResult::Ok {
                        self.ok += 1;
                        self.amount_ok += transfer.transfer.map_or(0, |t| i128::from(t.amount));
                    } else {
                        *self
                            .failures
                            .entry(transfer.result.as_str().to_owned())
                            .or_default() += 1;
                    }
                }
            }
            Err(code) => {
                *self.failures.entry(format!("error:{code}")).or_default() += submitted as u64;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.submitted += other.submitted;
        self.ok += other.ok;
        self.amount_ok += other.amount_ok;
        for (code, count) in other.failures {
            *self.failures.entry(code).or_default() += count;
        }
    }
}

/// Prints progress to stderr when a million-transfer mark is crossed.
struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    started: Instant,
}

impl Progress {
    fn new(label: &str, total: u64) -> Progress {
        Progress {
            label: label.to_owned(),
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn add(&self, transfers: u64) {
        let before = self.done.fetch_add(transfers, Ordering::Relaxed);
        let after = before + transfers;
        if before / PROGRESS_TRANSFERS_STEP != after / PROGRESS_TRANSFERS_STEP {
            let seconds = self.started.elapsed().as_secs_f64();
            eprintln!(
                "  … {}: {after} / {} transfers, {:.0} transfers/s so far",
                self.label,
                self.total,
                after as f64 / seconds.max(1e-9)
            );
        }
    }
}

pub struct BatchPlan {
    pub label: String,
    pub pattern: Pattern,
    pub transfers: u64,
    pub batch_transfers: usize,
    pub in_flight_submissions: usize,
    pub population: Population,
}

pub struct BatchRun {
    /// From the first send to the last durable reply.
    pub elapsed: Duration,
    /// Per submission, from send to durable reply.
    pub latencies_ns: Vec<u64>,
    /// When each reply came (since the start) and how many transfers it committed.
    pub completions: Vec<(Duration, u64)>,
    pub tally: Tally,
}

/// Workloads (a) and (b): `in_flight_submissions` threads, each sending one
/// submission at a time with `submit_blocking`, so that many are queued at the writer.
pub fn run_batches(ledger: &Ledger, plan: &BatchPlan) -> anyhow::Result<BatchRun> {
    let batch = plan.batch_transfers as u64;
    let batches = plan.transfers.div_ceil(batch);
    let next_batch = AtomicU64::new(0);
    let progress = Progress::new(&plan.label, plan.transfers);
    let started = progress.started;
    let logs = std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..plan.in_flight_submissions)
            .map(|_| {
                scope.spawn(|| {
                    let mut log = SubmitterLog::default();
                    loop {
                        let number = next_batch.fetch_add(1, Ordering::Relaxed);
                        if number >= batches {
                            return log;
                        }
                        let first = number * batch;
                        let count = batch.min(plan.transfers - first);
                        let transfers = batch_transfers(plan, number, first, count);
                        let sent = Instant::now();
                        let reply = ledger
                            .submit_blocking(Submission::transfers(transfers))
                            .map_err(|error| error.code().to_owned());
                        let replied = Instant::now();
                        log.latencies_ns.push(nanos(replied - sent));
                        log.tally.record(count as usize, &reply);
                        let committed = reply.as_ref().map_or(0, |result| {
                            result
                                .transfers
                                .iter()
                                .filter(|t| t.result == CreateTransferResult::Ok)
                                .count() as u64
                        });
                        log.completions.push((replied - started, committed));
                        progress.add(count);
                    }
                })
            })
            .collect();
        submitters
            .into_iter()
            .map(|submitter| submitter.join())
            .collect::<Vec<_>>()
    });
    let elapsed = started.elapsed();
    let mut run = BatchRun {
        elapsed,
        latencies_ns: Vec::new(),
        completions: Vec::new(),
        tally: Tally::default(),
    };
    for log in logs {
        let log = log.map_err(|_| anyhow::anyhow!("a submitter thread panicked"))?;
        run.latencies_ns.extend(log.latencies_ns);
        run.completions.extend(log.completions);
        run.tally.merge(log.tally);
    }
    run.completions.sort_unstable();
    Ok(run)
}

#[derive(Default)]
struct SubmitterLog {
    latencies_ns: Vec<u64>,
    completions: Vec<(Duration, u64)>,
    tally: Tally,
}

fn batch_transfers(plan: &BatchPlan, number: u64, first: u64, count: u64) -> Vec<TransferRequest> {
    let mut rng = rng_for(number);
    (first..first + count)
        .map(|sequence| {
            let leg = draw(&mut rng, plan.pattern, plan.population.accounts);
            plan.population.transfer(sequence, leg)
        })
        .collect()
}

pub fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

pub struct CallPlan {
    pub label: String,
    pub transfers: u64,
    pub callers: usize,
    pub population: Population,
}

pub struct CallRun {
    pub elapsed: Duration,
    /// Per call, from send to durable reply.
    pub latencies_ns: Vec<u64>,
    pub tally: Tally,
}

/// Workload (c): `callers` tasks, each submitting one transfer and awaiting its
/// durable reply before the next; the writer coalesces whatever is queued.
pub fn run_callers(ledger: &Ledger, plan: &CallPlan) -> anyhow::Result<CallRun> {
    let workers = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("starting the callers' runtime")?;
    let next = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress::new(&plan.label, plan.transfers));
    let started = progress.started;
    let logs = runtime.block_on(async {
        let callers: Vec<_> = (0..plan.callers)
            .map(|caller| {
                let context = CallerContext {
                    ledger: ledger.clone(),
                    next: next.clone(),
                    progress: progress.clone(),
                    population: plan.population,
                    total: plan.transfers,
                };
                tokio::spawn(call_repeatedly(context, caller as u64))
            })
            .collect();
        let mut logs = Vec::with_capacity(callers.len());
        for caller in callers {
            logs.push(caller.await);
        }
        logs
    });
    let elapsed = started.elapsed();
    let mut run = CallRun {
        elapsed,
        latencies_ns: Vec::new(),
        tally: Tally::default(),
    };
    for log in logs {
        let log = log.map_err(|_| anyhow::anyhow!("a caller task panicked"))?;
        run.latencies_ns.extend(log.latencies_ns);
        run.tally.merge(log.tally);
    }
    Ok(run)
}

struct CallerContext {
    ledger: Ledger,
    next: Arc<AtomicU64>,
    progress: Arc<Progress>,
    population: Population,
    total: u64,
}

#[derive(Default)]
struct CallerLog {
    latencies_ns: Vec<u64>,
    tally: Tally,
}

/// One caller: claims the next transfer number, submits it alone, waits, repeats.
async fn call_repeatedly(context: CallerContext, caller: u64) -> CallerLog {
    let mut rng = rng_for(u64::MAX - caller);
    let mut log = CallerLog::default();
    loop {
        let sequence = context.next.fetch_add(1, Ordering::Relaxed);
        if sequence >= context.total {
            return log;
        }
        let leg = draw(&mut rng, Pattern::Uniform, context.population.accounts);
        let submission = Submission::transfers(vec![context.population.transfer(sequence, leg)]);
        let sent = Instant::now();
        let reply = context
            .ledger
            .submit(submission)
            .await
            .map_err(|error| error.code().to_owned());
        log.latencies_ns.push(nanos(sent.elapsed()));
        log.tally.record(1, &reply);
        context.progress.add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_ids_increase_and_legs_are_valid() {
        let population = Population::new(10);
        assert!(population.transfer_id(0) < population.transfer_id(1));
        assert!(population.transfer_id(1) < population.transfer_id(8_000));
        for pattern in [Pattern::Uniform, Pattern::Hot] {
            let mut rng = rng_for(1);
            let mut hot = 0;
            for _ in 0..10_000 {
                let leg = draw(&mut rng, pattern, 10);
                assert!(leg.debit < 10 && leg.credit < 10 && leg.debit != leg.credit);
                assert!((1..=AMOUNT_MAX).contains(&leg.amount));
                hot += u32::from(leg.credit == HOT_ACCOUNT_INDEX);
            }
            match pattern {
                // About 1 in 10 credits any given account, 90% (+1% of the rest) the hot one.
                Pattern::Uniform => assert!((800..1_200).contains(&hot)),
                Pattern::Hot => assert!((9_000..9_200).contains(&hot)),
            }
        }
    }
}
