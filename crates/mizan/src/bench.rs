//! `mizan bench ledger`: durable throughput and latency of the ledger on each store.
//!
//! Workloads, each on a fresh database:
//! - `uniform` (a): batches of 8,000 transfers between random accounts;
//! - `hot` (b): the same with 90% of transfers crediting one hot account;
//! - `concurrent` (c): 64 callers each submitting single transfers, coalesced by the
//!   writer;
//! - `baseline`: a naive ledger written here (one transaction per transfer, row locks
//!   on PostgreSQL), uniform and hot, so the ratio is visible.
//!
//! While (a) and (b) run, a reader checks account histories and `balances_at` and
//! records their latency. Every workload ends with a consistency check; any failure
//! makes the command exit non-zero.
//!
//! - [`machine`]: the facts printed first (CPU, memory, store versions).
//! - [`workload`]: accounts, generated transfers, the submitters and callers.
//! - [`history`]: the reader that checks queries during and after a run.
//! - [`baseline`]: the naive ledger on SQLite and PostgreSQL.
//! - [`report`]: latency summaries, the printed line and its JSON form.

mod baseline;
mod history;
mod machine;
pub(crate) mod report;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mizan_core::SystemClock;
use mizan_ledger::{Ledger, LedgerStore, WriterConfig, BATCH_EVENTS_MAX};
use mizan_store::postgres::testing::{create_test_database, TestDatabase};
use mizan_store::{Location, SQLITE_FILE_NAME};

use self::history::{Probe, ProbeConfig};
use self::report::{Measurement, Output, WriterSnapshot};
use self::workload::{BatchPlan, CallPlan, Pattern, Population};

/// Admin URL used when neither `--postgres-url` nor `--database-url` is given.
const POSTGRES_ADMIN_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
/// How long to wait for PostgreSQL before measuring SQLite alone.
const POSTGRES_CONNECT_TIMEOUT_MS: u64 = 3_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreChoice {
    Sqlite,
    Postgres,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkloadChoice {
    Uniform,
    Hot,
    Concurrent,
    Baseline,
    All,
}

#[derive(Debug, clap::Args)]
pub struct LedgerBenchArgs {
    /// Transfers per batch workload (uniform, hot).
    #[arg(long = "transfers", default_value_t = 5_000_000)]
    pub transfers: u64,
    /// Accounts the transfers move money between.
    #[arg(long = "accounts", default_value_t = 100_000)]
    pub accounts: u64,
    /// Transfers per submission in the batch workloads (at most 8,190).
    #[arg(long = "batch", default_value_t = 8_000)]
    pub batch_transfers: usize,
    /// Submissions kept in flight by the batch workloads (one submitter thread each).
    #[arg(long = "in-flight", default_value_t = 8)]
    pub in_flight_submissions: usize,
    /// Concurrent callers of the concurrent workload.
    #[arg(long = "callers", default_value_t = 64)]
    pub callers: usize,
    /// Transfers of the concurrent workload.
    #[arg(long = "concurrent-transfers", default_value_t = 1_000_000)]
    pub concurrent_transfers: u64,
    /// Transfers of each naive-baseline workload.
    #[arg(long = "baseline-transfers", default_value_t = 20_000)]
    pub baseline_transfers: u64,
    /// Connections of the naive baseline on PostgreSQL.
    #[arg(long = "baseline-connections", default_value_t = 8)]
    pub baseline_connections: usize,
    /// Pause between two rounds of history checks while a batch workload runs.
    #[arg(long = "history-interval-ms", default_value_t = 50)]
    pub history_interval_ms: u64,
    #[arg(long, value_enum, default_value_t = StoreChoice::All)]
    pub store: StoreChoice,
    #[arg(long, value_enum, default_value_t = WorkloadChoice::All)]
    pub workload: WorkloadChoice,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// PostgreSQL admin URL; the bench creates (and drops) a throw-away database there.
    /// Defaults to `--database-url`, else postgres://postgres@127.0.0.1:5432/test.
    #[arg(long, env = "MIZAN_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
}

impl LedgerBenchArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.accounts < 2 {
            bail!("--accounts must be at least 2");
        }
        if self.batch_transfers == 0 || self.batch_transfers > BATCH_EVENTS_MAX {
            bail!("--batch must be between 1 and {BATCH_EVENTS_MAX}");
        }
        if self.in_flight_submissions == 0 || self.callers == 0 || self.baseline_connections == 0 {
            bail!("--in-flight, --callers and --baseline-connections must be at least 1");
        }
        Ok(())
    }

    fn runs(&self, workload: WorkloadChoice) -> bool {
        self.workload == WorkloadChoice::All || self.workload == workload
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

/// Where scratch databases are made.
struct Environment {
    /// SQLite scratch directories go under it.
    sqlite_parent: PathBuf,
    /// The data directory, when the bench created it (removed at the end if empty).
    created_data_dir: Option<PathBuf>,
    /// PostgreSQL admin URL, when PostgreSQL is measured.
    postgres_admin_url: Option<String>,
}

/// A fresh database for one workload, removed when dropped.
enum Scratch {
    Sqlite(tempfile::TempDir),
    Postgres(TestDatabase),
}

impl Scratch {
    fn new(store: StoreKind, environment: &Environment) -> anyhow::Result<Scratch> {
        match store {
            StoreKind::Sqlite => {
                let directory = tempfile::Builder::new()
                    .prefix("mizan-bench-")
                    .tempdir_in(&environment.sqlite_parent)
                    .with_context(|| {
                        format!("temp dir in {}", environment.sqlite_parent.display())
                    })?;
                Ok(Scratch::Sqlite(directory))
            }
            StoreKind::Postgres => {
                let Some(admin_url) = environment.postgres_admin_url.as_deref() else {
                    bail!("PostgreSQL is not being measured");
                };
                Ok(Scratch::Postgres(create_test_database(admin_url)?))
            }
        }
    }

    /// The Mizan ledger's location in this scratch database.
    fn location(&self) -> Location {
        match self {
            Scratch::Sqlite(directory) => Location::Sqlite(directory.path().join(SQLITE_FILE_NAME)),
            Scratch::Postgres(database) => Location::Postgres(database.url.clone()),
        }
    }
}

pub fn run(location: &Location, args: &LedgerBenchArgs) -> anyhow::Result<ExitCode> {
    args.check()?;
    let mut output = Output::new(args.json);
    let admin_url = postgres_admin_url(location, args);
    let postgres = if args.store == StoreChoice::Sqlite {
        None
    } else {
        Some(machine::postgres_facts(
            &admin_url,
            POSTGRES_CONNECT_TIMEOUT_MS,
        ))
    };
    let postgres_facts = postgres.as_ref().and_then(|facts| facts.as_ref().ok());
    let (sqlite_parent, created_data_dir) = sqlite_parent(location);
    let environment = Environment {
        sqlite_parent,
        created_data_dir,
        postgres_admin_url: postgres_facts.map(|_| admin_url.clone()),
    };
    output.machine(&machine::facts(&environment.sqlite_parent, postgres_facts));
    if let Some(Err(error)) = &postgres {
        if args.store == StoreChoice::Postgres {
            bail!("PostgreSQL not reachable: {error:#}");
        }
        output.notice(&format!(
            "PostgreSQL not reachable at {} ({error:#}): measuring SQLite only",
            Location::Postgres(admin_url.clone()).describe()
        ));
    }
    let mut stores = Vec::new();
    if args.store != StoreChoice::Postgres {
        stores.push(StoreKind::Sqlite);
    }
    if environment.postgres_admin_url.is_some() {
        stores.push(StoreKind::Postgres);
    }
    let mut all_passed = true;
    let mut result = Ok(());
    for store in stores {
        match bench_store(store, &environment, args, &mut output) {
            Ok(passed) => all_passed &= passed,
            Err(error) => {
                result = Err(error);
                break;
            }
        }
    }
    if let Some(directory) = &environment.created_data_dir {
        // Fails, harmlessly, when something else was put there meanwhile.
        let _ = std::fs::remove_dir(directory);
    }
    result?;
    output.notice(&format!(
        "load average {} at the end",
        machine::load_average()
    ));
    if all_passed {
        Ok(ExitCode::SUCCESS)
    } else {
        output.notice("some consistency checks FAILED: see the problems reported above");
        Ok(ExitCode::FAILURE)
    }
}

fn postgres_admin_url(location: &Location, args: &LedgerBenchArgs) -> String {
    if let Some(url) = args.postgres_url.as_deref().filter(|url| !url.is_empty()) {
        return url.to_owned();
    }
    match location {
        Location::Postgres(url) => url.clone(),
        Location::Sqlite(_) => POSTGRES_ADMIN_URL_DEFAULT.to_owned(),
    }
}

/// The data directory (created if needed, and then also returned second), else the
/// system's temp directory.
fn sqlite_parent(location: &Location) -> (PathBuf, Option<PathBuf>) {
    let data_dir = match location {
        // A bare file name has an empty parent: the working directory.
        Location::Sqlite(path) => path.parent().map(|directory| {
            if directory.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                directory.to_path_buf()
            }
        }),
        Location::Postgres(_) => None,
    };
    let Some(directory) = data_dir else {
        return (std::env::temp_dir(), None);
    };
    let existed = directory.is_dir();
    if std::fs::create_dir_all(&directory).is_err() {
        return (std::env::temp_dir(), None);
    }
    let directory = std::fs::canonicalize(&directory).unwrap_or(directory);
    let created = (!existed).then(|| directory.clone());
    (directory, created)
}

/// Runs the chosen workloads on one store; false when a check failed.
fn bench_store(
    store: StoreKind,
    environment: &Environment,
    args: &LedgerBenchArgs,
    output: &mut Output,
) -> anyhow::Result<bool> {
    let mut passed = true;
    let mut mizan = [None, None];
    for (slot, pattern, choice) in [
        (0, Pattern::Uniform, WorkloadChoice::Uniform),
        (1, Pattern::Hot, WorkloadChoice::Hot),
    ] {
        if args.runs(choice) {
            let measurement = run_batches(store, pattern, environment, args)?;
            passed &= measurement.passed();
            mizan[slot] = Some(measurement.transfers_per_second);
            output.measurement(&measurement);
        }
    }
    if args.runs(WorkloadChoice::Concurrent) {
        let measurement = run_concurrent(store, environment, args)?;
        passed &= measurement.passed();
        output.measurement(&measurement);
    }
    if args.runs(WorkloadChoice::Baseline) {
        let mut naive = [None, None];
        for (slot, pattern) in [(0, Pattern::Uniform), (1, Pattern::Hot)] {
            let measurement = run_baseline(store, pattern, environment, args)?;
            passed &= measurement.passed();
            naive[slot] = Some(measurement.transfers_per_second);
            output.measurement(&measurement);
        }
        output.ratios(store.name(), mizan, naive);
    }
    Ok(passed)
}

/// Opens the Mizan ledger on a scratch database and creates the accounts.
fn start_ledger(
    location: &Location,
    population: &Population,
) -> anyhow::Result<(Ledger, std::thread::JoinHandle<()>)> {
    let store: Box<dyn LedgerStore> = location
        .open_store()
        .with_context(|| format!("opening {}", location.describe()))?;
    let (ledger, writer) = Ledger::start(store, Arc::new(SystemClock), WriterConfig::default())?;
    population.create(&ledger)?;
    Ok((ledger, writer))
}

fn stop_ledger(ledger: Ledger, writer: std::thread::JoinHandle<()>) -> anyhow::Result<()> {
    drop(ledger);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("ledger writer panicked"))
}

/// Workloads (a) and (b): batch submitters, with the history reader alongside.
fn run_batches(
    store: StoreKind,
    pattern: Pattern,
    environment: &Environment,
    args: &LedgerBenchArgs,
) -> anyhow::Result<Measurement> {
    let scratch = Scratch::new(store, environment)?;
    let location = scratch.location();
    let population = Population::new(args.accounts);
    let (ledger, writer) = start_ledger(&location, &population)?;
    let plan = BatchPlan {
        label: format!("{} {}", store.name(), pattern.name()),
        pattern,
        transfers: args.transfers,
        batch_transfers: args.batch_transfers,
        in_flight_submissions: args.in_flight_submissions,
        population,
    };
    let mut probe = Probe::open(
        &location,
        ProbeConfig {
            accounts: args.accounts,
            interval: Duration::from_millis(args.history_interval_ms),
        },
    )?;
    let before = WriterSnapshot::read(ledger.stats());
    let stop = AtomicBool::new(false);
    let (batch_run, probe) = std::thread::scope(|scope| {
        let prober = scope.spawn(|| {
            probe.run_until(&stop);
            probe
        });
        let batch_run = workload::run_batches(&ledger, &plan);
        stop.store(true, Ordering::Relaxed);
        (batch_run, prober.join())
    });
    let mut probe = probe.map_err(|_| anyhow::anyhow!("history reader panicked"))?;
    let batch_run = batch_run?;
    let writer_figures = WriterSnapshot::read(ledger.stats()).since(&before, batch_run.elapsed);
    probe.final_check(args.transfers, &batch_run.tally);
    stop_ledger(ledger, writer)?;
    drop(scratch);
    Ok(Measurement::batches(
        store.name(),
        pattern.name(),
        &batch_run,
        writer_figures,
        probe.figures(),
    ))
}

/// Workload (c): many callers each submitting one transfer at a time.
fn run_concurrent(
    store: StoreKind,
    environment: &Environment,
    args: &LedgerBenchArgs,
) -> anyhow::Result<Measurement> {
    let scratch = Scratch::new(store, environment)?;
    let location = scratch.location();
    let population = Population::new(args.accounts);
    let (ledger, writer) = start_ledger(&location, &population)?;
    let plan = CallPlan {
        label: format!("{} concurrent", store.name()),
        transfers: args.concurrent_transfers,
        callers: args.callers,
        population,
    };
    let before = WriterSnapshot::read(ledger.stats());
    let started = Instant::now();
    let call_run = workload::run_callers(&ledger, &plan)?;
    let writer_figures = WriterSnapshot::read(ledger.stats()).since(&before, started.elapsed());
    let mut probe = Probe::open(
        &location,
        ProbeConfig {
            accounts: args.accounts,
            interval: Duration::from_millis(args.history_interval_ms),
        },
    )?;
    probe.final_check(args.concurrent_transfers, &call_run.tally);
    stop_ledger(ledger, writer)?;
    drop(scratch);
    Ok(Measurement::calls(
        store.name(),
        &call_run,
        writer_figures,
        probe.figures().problems,
    ))
}

/// The naive ledger: one database transaction per transfer.
fn run_baseline(
    store: StoreKind,
    pattern: Pattern,
    environment: &Environment,
    args: &LedgerBenchArgs,
) -> anyhow::Result<Measurement> {
    let scratch = Scratch::new(store, environment)?;
    let plan = baseline::NaivePlan {
        pattern,
        transfers: args.baseline_transfers,
        accounts: args.accounts,
        connections: args.baseline_connections,
    };
    let naive_run = match &scratch {
        Scratch::Sqlite(directory) => {
            baseline::run_sqlite(&directory.path().join("naive.sqlite"), &plan)?
        }
        Scratch::Postgres(database) => baseline::run_postgres(&database.url, &plan)?,
    };
    drop(scratch);
    Ok(Measurement::naive(store.name(), pattern.name(), &naive_run))
}
