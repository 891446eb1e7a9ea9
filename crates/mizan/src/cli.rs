//! Command-line interface: `mizan demo`, `mizan ledger verify`, `mizan bench ledger`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mizan_store::Location;

#[derive(Debug, Parser)]
#[command(
    name = "mizan",
    version,
    about = "Mizan: the money layer of a social app"
)]
pub struct Cli {
    /// Directory for the embedded SQLite database and other local state.
    #[arg(
        long,
        global = true,
        env = "MIZAN_DATA_DIR",
        default_value = "mizan-data"
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL URL; when set, the ledger lives there instead of SQLite.
    #[arg(
        long,
        global = true,
        env = "MIZAN_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Creates (or reopens) a ledger with demo people, balances and history.
    Demo,
    /// Ledger maintenance.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Benchmarks; print one line per measurement (or JSON).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ledger throughput and latency on each store, next to a naive baseline.
    Ledger(crate::bench::LedgerBenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recomputes the hash chain and every balance; names the first mismatch.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Runs a transfer load and prints each acknowledged transfer id (crash tests).
    #[command(hide = true)]
    Load(crate::load::LoadArgs),
}

impl Cli {
    pub fn location(&self) -> Location {
        Location::from_config(&self.data_dir, self.database_url.as_deref())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MIZAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let location = cli.location();
    match cli.command {
        Command::Demo => {
            crate::demo::run(&location)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger {
            command: LedgerCommand::Verify { json },
        } => verify(&location, json),
        Command::Ledger {
            command: LedgerCommand::Load(args),
        } => crate::load::run(&location, &args),
        Command::Bench {
            command: BenchCommand::Ledger(args),
        } => crate::bench::run(&location, &args),
    }
}

fn verify(location: &Location, json: bool) -> anyhow::Result<ExitCode> {
    let mut reader = location
        .open_reader()
        .with_context(|| format!("opening {}", location.describe()))?;
    match mizan_ledger::verify::verify(&mut *reader) {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "ledger verified: {} transfers, {} accounts, chain ends in {}",
                    report.transfers, report.accounts, report.last_hash
                );
                for (ledger, totals) in &report.ledgers {
                    println!(
                        "  ledger {ledger}: {} accounts, posted {} = {}, pending {} = {}",
                        totals.accounts,
                        totals.debits_posted,
                        totals.credits_posted,
                        totals.debits_pending,
                        totals.credits_pending
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(mizan_ledger::verify::VerifyError::Mismatch(problem)) => {
            eprintln!("VERIFY FAILED: {problem}");
            Ok(ExitCode::from(2))
        }
        Err(error) => Err(error.into()),
    }
}
