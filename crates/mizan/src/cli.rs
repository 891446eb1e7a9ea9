//! Command-line interface: `mizan serve`, `mizan demo`, `mizan ledger verify`,
//! `mizan bench ledger`.

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
    /// Runs the HTTP API until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Creates a fresh embedded database with demo people, creators, balances and
    /// months of history, then serves it; running it again reuses what is there.
    Demo(DemoArgs),
    /// Ledger maintenance.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Sanctions screening against the OFAC SDN list.
    Sanctions {
        #[command(subcommand)]
        command: crate::sanctions::SanctionsCommand,
    },
    /// Vault master keys.
    Keys {
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// Benchmarks; print one line per measurement (or JSON).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; overrides the config file and MIZAN_LISTEN
    /// [default: 127.0.0.1:8080].
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// TOML config file (see docs/API.md); the MIZAN_* environment overrides it.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Address the demo server listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Seed (or find) the demo data, print the report and the logins, and exit
    /// without starting the server.
    #[arg(long)]
    pub no_serve: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ledger throughput and latency on each store, next to a naive baseline.
    Ledger(crate::bench::LedgerBenchArgs),
    /// P2P payments over real HTTP (a `mizan serve` child) next to a trivial endpoint.
    Http(crate::bench_http::HttpBenchArgs),
    /// Sanctions screening throughput and latency against the full SDN list.
    Sanctions(crate::sanctions::BenchArgs),
    /// Vault seal/open throughput and master-key rotation.
    Vault(crate::keys::BenchArgs),
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
    // `serve` installs its own subscriber once its config names the log format.
    if !matches!(cli.command, Command::Serve(_)) {
        init_tracing();
    }
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
        Command::Serve(args) => serve(&location, &args),
        Command::Demo(args) => {
            crate::demo::run(&location, &args)?;
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
        Command::Bench {
            command: BenchCommand::Http(args),
        } => crate::bench_http::run(&args),
        Command::Bench {
            command: BenchCommand::Vault(args),
        } => crate::keys::bench(&location, &args),
        Command::Bench {
            command: BenchCommand::Sanctions(args),
        } => crate::sanctions::bench(&args),
        Command::Sanctions { command } => crate::sanctions::run(&command),
        Command::Keys { command } => crate::keys::run(&location, &command),
    }
}

fn serve(location: &Location, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = mizan_api::ServerConfig::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    mizan_api::telemetry::init_tracing(config.log_format);
    tracing::info!(?config, location = %location.describe(), "starting");
    serve_until_signal(location, config, |_| {})?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the HTTP API (with the web pages) on `config.listen` until SIGINT or SIGTERM.
/// `on_ready` runs once, with the bound address, when the server is about to answer.
pub(crate) fn serve_until_signal(
    location: &Location,
    config: mizan_api::ServerConfig,
    on_ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let bound = listener.local_addr().unwrap_or(config.listen);
        // Bound first, so a taken port fails before the store is touched. Starting
        // blocks (it opens the store and waits for the ledger writer to create the
        // platform accounts), so it runs off the async worker threads.
        let start_location = location.clone();
        let state = tokio::task::spawn_blocking(move || {
            mizan_api::AppState::start(&start_location, config)
        })
        .await
        .context("starting the server state")??;
        let app = mizan_api::router_with(state.clone(), mizan_web::pages());
        // A list that changed since the last start (a new OFAC snapshot) screens
        // everyone again, off the start path.
        tokio::spawn(mizan_api::routes::cases::rescreen_at_start(state.clone()));
        on_ready(bound);
        mizan_api::serve_router(listener, app, state, mizan_api::shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

fn verify(location: &Location, json: bool) -> anyhow::Result<ExitCode> {
    let mut reader = location
        .open_reader()
        .with_context(|| format!("opening {}", location.describe()))?;
    match mizan_ledger::verify::verify(&mut *reader) {
        Ok(report) => {
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                say!(
                    "ledger verified: {} transfers, {} accounts, chain ends in {}",
                    report.transfers,
                    report.accounts,
                    report.last_hash
                );
                for (ledger, totals) in &report.ledgers {
                    say!(
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_listen_and_config_and_keeps_the_global_flags() {
        let cli = Cli::try_parse_from([
            "mizan",
            "--data-dir",
            "/tmp/mizan-test",
            "serve",
            "--listen",
            "127.0.0.1:9090",
            "--config",
            "mizan.toml",
        ])
        .unwrap();
        let Command::Serve(args) = &cli.command else {
            panic!("expected serve, got {:?}", cli.command);
        };
        assert_eq!(args.listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(
            args.config.as_deref(),
            Some(std::path::Path::new("mizan.toml"))
        );
        assert_eq!(cli.data_dir, std::path::Path::new("/tmp/mizan-test"));

        let defaults = Cli::try_parse_from(["mizan", "serve"]).unwrap();
        let Command::Serve(args) = &defaults.command else {
            panic!("expected serve");
        };
        assert_eq!(args.listen, None);
        assert_eq!(args.config, None);
    }

    #[test]
    fn demo_listens_on_8080_unless_told_and_can_skip_serving() {
        let defaults = Cli::try_parse_from(["mizan", "demo"]).unwrap();
        let Command::Demo(args) = &defaults.command else {
            panic!("expected demo, got {:?}", defaults.command);
        };
        assert_eq!(args.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(!args.no_serve);

        let cli = Cli::try_parse_from(["mizan", "demo", "--listen", "0.0.0.0:9000", "--no-serve"])
            .unwrap();
        let Command::Demo(args) = &cli.command else {
            panic!("expected demo");
        };
        assert_eq!(args.listen, "0.0.0.0:9000".parse().unwrap());
        assert!(args.no_serve);
    }
}
