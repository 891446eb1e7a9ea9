//! `mizan ledger load`: a transfer load for crash tests.
//!
//! Several caller threads submit transfers and, once the ledger has acknowledged a
//! submission (its batch is durable), print one line per transfer, `<id> <result
//! code>`, and flush. Whatever a line names must therefore survive a `kill -9`.
//!
//! Every transfer is a pure function of its id ([`plan`], [`planned_transfer`]): ids
//! come in scenarios of [`IDS_PER_SCENARIO`], and the scenario number picks the kind,
//! the wallets and the amount. So a later run can rebuild any transfer from its id
//! alone: `--retry-from` re-submits the lines an earlier run printed and checks that
//! each one replays as `exists` (or fails again the same way), and the crash test
//! checks the stored fields against the same functions.
//!
//! Every rejection is deterministic: a wallet only ever pays what the same linked
//! chain just gave it, and the payments meant to fail ask for more money than the
//! load could ever have put into a wallet.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use mizan_core::{AccountId, Clock, Currency, SystemClock, TransferId};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, CreateAccountResult, CreateTransferResult, Ledger,
    NewAccount, Submission, SubmissionResult, TransferFlags, TransferRequest, WriterConfig,
    BATCH_EVENTS_MAX,
};
use mizan_store::Location;

/// Ids reserved per scenario; a scenario uses the first one or two.
pub const IDS_PER_SCENARIO: u128 = 4;
/// Where money enters: an account without balance limits.
pub const CLEARING_ACCOUNT: u128 = 0x10AD_0000_0000;
/// Wallets are `CLEARING_ACCOUNT + 1 ..= CLEARING_ACCOUNT + WALLETS`.
pub const WALLETS: u128 = 16;
/// More than the load could ever credit to a wallet (each credit is below 10,000).
pub const OVERDRAFT_AMOUNT: i64 = 1 << 50;
/// Timeout of the holds that have one; a post that comes later finds it expired.
pub const HOLD_TIMEOUT_SECONDS: u32 = 2;
/// The load's transfer codes.
pub const CODE_FUNDING: u16 = 1;
pub const CODE_PAYMENT: u16 = 2;
pub const CODE_HOLD: u16 = 3;

/// Most scenarios in one submission: keeps each acknowledgement (about 40 bytes a
/// transfer, two transfers a scenario at most) under one atomic pipe write.
const BATCH_SCENARIOS_MAX: u64 = 32;
/// Most caller threads.
const CALLERS_MAX: u64 = 64;
/// Most lines a retry file may hold.
const RETRY_LINES_MAX: usize = 1_000_000;
/// Mismatches named when a replay goes wrong.
const MISMATCHES_SHOWN_MAX: usize = 10;

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// First transfer id (32 hex digits); later ids increase from it. Default: the
    /// current time in nanoseconds, shifted into the top 64 bits.
    #[arg(long, value_parser = parse_id)]
    pub first_id: Option<u128>,
    /// Caller threads submitting at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=CALLERS_MAX))]
    pub callers: u64,
    /// Scenarios per submission (one or two transfers each).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=BATCH_SCENARIOS_MAX))]
    pub batch: u64,
    /// Stop after this many scenarios; without it the load runs until killed.
    #[arg(long)]
    pub count: Option<u64>,
    /// Before the load, re-submit the transfers listed in this file (lines `<id>
    /// <code>`, as printed by an earlier run) and check that each replays as
    /// `exists` or with the same failure.
    #[arg(long)]
    pub retry_from: Option<PathBuf>,
}

fn parse_id(text: &str) -> Result<u128, String> {
    mizan_core::id::parse_u128_hex(text).map_err(|error| error.to_string())
}

/// What a scenario does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Clearing pays a wallet.
    Funding,
    /// Linked: clearing pays wallet A, A pays B the same amount. Both commit.
    LinkedPayment,
    /// Clearing → wallet hold, then a post of all or part of it.
    HoldThenPost,
    /// Clearing → wallet hold, then a void.
    HoldThenVoid,
    /// A wallet pays more than it could ever hold: `exceeds_credits`.
    Overdraft,
    /// Linked: clearing pays A, A overdraws: the whole chain fails.
    LinkedOverdraft,
}

/// The transfers of one scenario: a first submission and, for holds, the
/// resolution sent once the hold is acknowledged `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub scenario: Scenario,
    pub first: Vec<TransferRequest>,
    pub then: Option<TransferRequest>,
}

impl Plan {
    fn transfers(&self) -> impl Iterator<Item = &TransferRequest> {
        self.first.iter().chain(self.then.iter())
    }
}

/// splitmix64: scenario number → well-mixed bits.
fn mix(scenario: u128) -> u64 {
    let mut z = (scenario as u64) ^ ((scenario >> 64) as u64).rotate_left(32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn usd() -> u32 {
    ledger_of(Currency::USD)
}

fn wallet(index: u64) -> u128 {
    CLEARING_ACCOUNT + 1 + u128::from(index) % WALLETS
}

// Ids are not checked here: the ledger rejects 0 and u128::MAX itself, and `run`
// keeps every id it generates away from both.
fn transfer(id: u128, debit: u128, credit: u128, amount: i64, code: u16) -> TransferRequest {
    TransferRequest::single(
        TransferId::from_raw(id),
        AccountId::from_raw(debit),
        AccountId::from_raw(credit),
        amount,
        usd(),
        code,
    )
    .with_reference(id)
}

/// A post or void naming every field of its hold, so the stored record equals it.
fn resolution(
    id: u128,
    hold: &TransferRequest,
    amount: i64,
    flag: TransferFlags,
) -> TransferRequest {
    TransferRequest {
        pending_id: hold.id,
        timeout_seconds: 0,
        flags: flag,
        ..transfer(
            id,
            hold.debit_account_id.get(),
            hold.credit_account_id.get(),
            amount,
            hold.code,
        )
    }
}

/// A clearing → wallet hold (with a timeout or without) and its post or void.
fn hold_and_resolution(
    kind: Scenario,
    first_id: u128,
    payer: u128,
    amount: i64,
    bits: u64,
) -> (TransferRequest, TransferRequest) {
    let timeout = if bits & (1 << 48) == 0 {
        0
    } else {
        HOLD_TIMEOUT_SECONDS
    };
    let hold = transfer(first_id, CLEARING_ACCOUNT, payer, amount, CODE_HOLD)
        .with_flags(TransferFlags::PENDING)
        .with_timeout(timeout);
    let then = if kind == Scenario::HoldThenVoid {
        resolution(first_id + 1, &hold, amount, TransferFlags::VOID_PENDING)
    } else if bits & (1 << 49) == 0 {
        resolution(first_id + 1, &hold, amount, TransferFlags::POST_PENDING)
    } else {
        resolution(first_id + 1, &hold, amount / 2, TransferFlags::POST_PENDING)
    };
    (hold, then)
}

/// The transfers of scenario number `scenario` (ids `4 × scenario` onwards).
pub fn plan(scenario: u128) -> Plan {
    let bits = mix(scenario);
    let first_id = scenario * IDS_PER_SCENARIO;
    let payer_index = bits % WALLETS as u64;
    let payer = wallet(payer_index);
    // Any wallet but the payer: one to WALLETS - 1 places further round.
    let payee = wallet(payer_index + 1 + (bits >> 8) % (WALLETS as u64 - 1));
    let amount = 100 + ((bits >> 16) % 9_900) as i64;
    let kind = match (bits >> 40) % 8 {
        0..=2 => Scenario::Funding,
        3 => Scenario::LinkedPayment,
        4 => Scenario::HoldThenPost,
        5 => Scenario::HoldThenVoid,
        6 => Scenario::Overdraft,
        _ => Scenario::LinkedOverdraft,
    };
    let linked = |request: TransferRequest| request.with_flags(TransferFlags::LINKED);
    let (first, then) = match kind {
        Scenario::Funding => (
            vec![transfer(
                first_id,
                CLEARING_ACCOUNT,
                payer,
                amount,
                CODE_FUNDING,
            )],
            None,
        ),
        Scenario::LinkedPayment | Scenario::LinkedOverdraft => {
            let paid = if kind == Scenario::LinkedPayment {
                amount
            } else {
                OVERDRAFT_AMOUNT
            };
            let funding = transfer(first_id, CLEARING_ACCOUNT, payer, amount, CODE_FUNDING);
            let payment = transfer(first_id + 1, payer, payee, paid, CODE_PAYMENT);
            (vec![linked(funding), payment], None)
        }
        Scenario::HoldThenPost | Scenario::HoldThenVoid => {
            let (hold, then) = hold_and_resolution(kind, first_id, payer, amount, bits);
            (vec![hold], Some(then))
        }
        Scenario::Overdraft => (
            vec![transfer(
                first_id,
                payer,
                payee,
                OVERDRAFT_AMOUNT,
                CODE_PAYMENT,
            )],
            None,
        ),
    };
    Plan {
        scenario: kind,
        first,
        then,
    }
}

/// The transfer the load makes with this id, if it uses the id at all.
pub fn planned_transfer(id: u128) -> Option<TransferRequest> {
    plan(id / IDS_PER_SCENARIO)
        .transfers()
        .find(|transfer| transfer.id.get() == id)
        .copied()
}

/// The clearing account and the wallets, always with the same ids and fields.
pub fn accounts() -> Vec<NewAccount> {
    let clearing = NewAccount {
        id: AccountId::from_raw(CLEARING_ACCOUNT),
        ledger: usd(),
        code: AccountCode::ProcessorClearing,
        owner: 0,
        flags: AccountFlags::NONE,
    };
    let wallets = (1..=WALLETS).map(|number| NewAccount {
        id: AccountId::from_raw(CLEARING_ACCOUNT + number),
        ledger: usd(),
        code: AccountCode::UserWallet,
        owner: number,
        flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    });
    std::iter::once(clearing).chain(wallets).collect()
}

pub fn run(location: &Location, args: &LoadArgs) -> anyhow::Result<ExitCode> {
    let first_id = args
        .first_id
        .unwrap_or_else(|| u128::from(SystemClock.now_ns()) << 64);
    let first_scenario = first_id.div_ceil(IDS_PER_SCENARIO).max(1);
    // Scenario offsets are u64: the last possible id must stay below u128::MAX.
    if first_scenario > u128::MAX / IDS_PER_SCENARIO - 1 - u128::from(u64::MAX) {
        bail!("--first-id {first_id:032x} leaves no room for the load's ids");
    }
    let store = location
        .open_store()
        .with_context(|| format!("opening {}", location.describe()))?;
    let (ledger, writer) = Ledger::start(store, Arc::new(SystemClock), WriterConfig::default())?;
    let result = drive(&ledger, first_scenario, args);
    drop(ledger);
    writer
        .join()
        .map_err(|_| anyhow!("ledger writer panicked"))?;
    result?;
    Ok(ExitCode::SUCCESS)
}

fn drive(ledger: &Ledger, first_scenario: u128, args: &LoadArgs) -> anyhow::Result<()> {
    create_accounts(ledger)?;
    if let Some(path) = &args.retry_from {
        let replayed = replay(ledger, path)?;
        print_lines(&format!("retried {replayed}\n"))?;
    }
    let work = Work {
        first_scenario,
        next_offset: AtomicU64::new(0),
        offset_limit: args.count.unwrap_or(u64::MAX),
        batch: args.batch,
        stop: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        let callers: Vec<_> = (0..args.callers)
            .map(|_| scope.spawn(|| work.call(ledger)))
            .collect();
        callers
            .into_iter()
            .map(|caller| {
                caller
                    .join()
                    .map_err(|_| anyhow!("a caller thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    Ok(())
}

fn submit(ledger: &Ledger, submission: Submission) -> anyhow::Result<SubmissionResult> {
    ledger
        .submit_blocking(submission)
        .map_err(|error| anyhow!("submission failed ({}): {error}", error.code()))
}

fn create_accounts(ledger: &Ledger) -> anyhow::Result<()> {
    let result = submit(ledger, Submission::accounts(accounts()))?;
    for code in &result.accounts {
        match code {
            CreateAccountResult::Ok | CreateAccountResult::Exists => {}
            other => bail!("load account rejected: {other}"),
        }
    }
    Ok(())
}

/// Writes `lines` in one write and flushes: a reader sees whole lines or none.
fn print_lines(lines: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(lines.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Submits `transfers`, then prints one acknowledged line per transfer.
fn submit_and_print(
    ledger: &Ledger,
    transfers: Vec<TransferRequest>,
) -> anyhow::Result<Vec<CreateTransferResult>> {
    let ids: Vec<TransferId> = transfers.iter().map(|t| t.id).collect();
    let result = submit(ledger, Submission::transfers(transfers))?;
    if result.transfers.len() != ids.len() {
        bail!(
            "{} transfers submitted, {} results",
            ids.len(),
            result.transfers.len()
        );
    }
    let mut lines = String::new();
    for (id, outcome) in ids.iter().zip(&result.transfers) {
        writeln!(lines, "{id} {}", outcome.result)?;
    }
    print_lines(&lines)?;
    Ok(result.transfers.iter().map(|t| t.result).collect())
}

/// Scenarios shared out between the caller threads.
struct Work {
    first_scenario: u128,
    next_offset: AtomicU64,
    offset_limit: u64,
    batch: u64,
    /// Set when a caller fails, so the others stop too.
    stop: AtomicBool,
}

impl Work {
    fn call(&self, ledger: &Ledger) -> anyhow::Result<()> {
        let result = self.call_until_done(ledger);
        if result.is_err() {
            self.stop.store(true, Ordering::SeqCst);
        }
        result
    }

    fn call_until_done(&self, ledger: &Ledger) -> anyhow::Result<()> {
        while !self.stop.load(Ordering::SeqCst) {
            let start = self.next_offset.fetch_add(self.batch, Ordering::SeqCst);
            let end = start.saturating_add(self.batch).min(self.offset_limit);
            if start >= end {
                return Ok(());
            }
            let plans: Vec<Plan> = (start..end)
                .map(|offset| plan(self.first_scenario + u128::from(offset)))
                .collect();
            let first: Vec<TransferRequest> =
                plans.iter().flat_map(|p| p.first.iter().copied()).collect();
            let results = submit_and_print(ledger, first.clone())?;
            let held: HashSet<TransferId> = first
                .iter()
                .zip(&results)
                .filter(|(_, result)| **result == CreateTransferResult::Ok)
                .map(|(transfer, _)| transfer.id)
                .collect();
            let resolutions: Vec<TransferRequest> = plans
                .iter()
                .filter_map(|p| p.then)
                .filter(|then| held.contains(&then.pending_id))
                .collect();
            if !resolutions.is_empty() {
                submit_and_print(ledger, resolutions)?;
            }
        }
        Ok(())
    }
}

/// Reads a retry file: `<id> <code>` per line.
fn read_retry_file(path: &Path) -> anyhow::Result<BTreeMap<u128, CreateTransferResult>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut acknowledged = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        if number >= RETRY_LINES_MAX {
            bail!("{}: more than {RETRY_LINES_MAX} lines", path.display());
        }
        let parsed = line.split_once(' ').and_then(|(id, code)| {
            Some((
                parse_id(id).ok()?,
                CreateTransferResult::from_str_code(code)?,
            ))
        });
        let Some((id, code)) = parsed else {
            bail!("{}:{}: expected `<id> <code>`", path.display(), number + 1);
        };
        acknowledged.insert(id, code);
    }
    Ok(acknowledged)
}

/// What a submission acknowledged with `original` reports when sent again. A
/// committed single transfer or chain replays as `exists`; in a chain the first
/// event's `exists` breaks the chain, so the later events report
/// `linked_event_failed` (they are stored all the same: the crash test checks).
fn replay_expectation(original: &[CreateTransferResult]) -> Vec<CreateTransferResult> {
    original
        .iter()
        .enumerate()
        .map(
            |(index, code)| match (*code == CreateTransferResult::Ok, index) {
                (true, 0) => CreateTransferResult::Exists,
                (true, _) => CreateTransferResult::LinkedEventFailed,
                (false, _) => *code,
            },
        )
        .collect()
}

/// The submissions (as the load made them) that carried the ids in `acknowledged`,
/// in id order, each with the results it was acknowledged with.
fn submissions_to_replay(
    acknowledged: &BTreeMap<u128, CreateTransferResult>,
) -> anyhow::Result<Vec<(Vec<TransferRequest>, Vec<CreateTransferResult>)>> {
    let mut steps: BTreeSet<(u128, bool)> = BTreeSet::new();
    for id in acknowledged.keys() {
        let scenario = id / IDS_PER_SCENARIO;
        let plan = plan(scenario);
        if plan.first.iter().any(|t| t.id.get() == *id) {
            steps.insert((scenario, false));
        } else if plan.then.is_some_and(|t| t.id.get() == *id) {
            steps.insert((scenario, true));
        } else {
            bail!("transfer {id:032x} is not one the load makes");
        }
    }
    let mut submissions = Vec::with_capacity(steps.len());
    for (scenario, is_resolution) in steps {
        let plan = plan(scenario);
        let transfers = if is_resolution {
            plan.then.into_iter().collect()
        } else {
            plan.first
        };
        let original = transfers
            .iter()
            .map(|t| {
                acknowledged.get(&t.id.get()).copied().ok_or_else(|| {
                    anyhow!(
                        "the retry file names only part of the submission of {}",
                        t.id
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        submissions.push((transfers, original));
    }
    Ok(submissions)
}

/// Re-submits every transfer named in the file; returns how many replayed as expected.
fn replay(ledger: &Ledger, path: &Path) -> anyhow::Result<usize> {
    let acknowledged = read_retry_file(path)?;
    let mut transfers = Vec::new();
    let mut expected = Vec::new();
    for (submission, original) in submissions_to_replay(&acknowledged)? {
        transfers.extend(submission);
        expected.extend(replay_expectation(&original));
    }
    let mut mismatches = Vec::new();
    // Chains are at most two events and a chunk never ends inside one: a chunk
    // boundary falls after an event without `linked`.
    let mut start = 0;
    while start < transfers.len() {
        let mut end = (start + BATCH_EVENTS_MAX).min(transfers.len());
        while end > start && transfers[end - 1].flags.contains(TransferFlags::LINKED) {
            end -= 1;
        }
        if end == start {
            bail!("a linked chain in the retry file never closes");
        }
        let chunk = transfers[start..end].to_vec();
        let result = submit(ledger, Submission::transfers(chunk))?;
        if result.transfers.len() != end - start {
            bail!(
                "{} transfers replayed, {} results",
                end - start,
                result.transfers.len()
            );
        }
        for ((transfer, want), got) in transfers[start..end]
            .iter()
            .zip(&expected[start..end])
            .zip(&result.transfers)
        {
            if got.result != *want {
                mismatches.push(format!(
                    "{}: expected {want}, got {}",
                    transfer.id, got.result
                ));
            }
        }
        start = end;
    }
    if !mismatches.is_empty() {
        bail!(
            "{} of {} replayed transfers did not replay as acknowledged; first: {}",
            mismatches.len(),
            transfers.len(),
            mismatches[..mismatches.len().min(MISMATCHES_SHOWN_MAX)].join("; ")
        );
    }
    Ok(transfers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_a_pure_function_of_the_scenario_number() {
        for scenario in [1_u128, 2, 1 << 70, (1 << 100) + 12_345] {
            assert_eq!(plan(scenario), plan(scenario));
            for transfer in plan(scenario).transfers() {
                assert_eq!(planned_transfer(transfer.id.get()), Some(*transfer));
                assert_eq!(transfer.id.get() / IDS_PER_SCENARIO, scenario);
            }
        }
    }

    #[test]
    fn every_scenario_occurs_and_payments_are_between_different_wallets() {
        let mut seen = HashSet::new();
        for scenario in 1..2_000_u128 {
            let plan = plan(scenario);
            seen.insert(format!("{:?}", plan.scenario));
            for transfer in plan.transfers() {
                assert_ne!(transfer.debit_account_id, transfer.credit_account_id);
                assert!(transfer.amount > 0);
            }
        }
        assert_eq!(seen.len(), 6);
    }

    #[test]
    fn a_committed_chain_replays_as_exists_then_linked_event_failed() {
        use CreateTransferResult as R;
        assert_eq!(replay_expectation(&[R::Ok]), vec![R::Exists]);
        assert_eq!(
            replay_expectation(&[R::Ok, R::Ok]),
            vec![R::Exists, R::LinkedEventFailed]
        );
        assert_eq!(
            replay_expectation(&[R::LinkedEventFailed, R::ExceedsCredits]),
            vec![R::LinkedEventFailed, R::ExceedsCredits]
        );
    }
}
