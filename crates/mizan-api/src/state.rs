//! [`AppState`]: what every handler shares — the ledger writer, a reader, the metrics,
//! the card processor. Starting it creates the platform accounts (idempotently).
//!
//! The state owns the writer thread. [`AppState::shutdown`] drops the ledger handle
//! and joins the thread, so the store flushes before the process exits, whatever
//! clones of the state are still around.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use mizan_app::cashout::{Payouts, SandboxPayouts};
use mizan_app::funding::{Processor, SandboxProcessor};
use mizan_app::identity::SharedReader;
use mizan_app::payments;
use mizan_app::readers::{DocumentCache, ReaderPool, READERS_MAX};
use mizan_app::sanctions::{ScreenerCell, SharedScreener};
use mizan_app::vault::SharedVault;
use mizan_app::verification::{IdentityVerifier, SandboxVerifier};
use mizan_compliance::sanctions::{SanctionsList, Screener, Thresholds};
use mizan_core::SystemClock;
use mizan_ledger::{Ledger, LedgerError, StoreError, WriterConfig};
use mizan_store::Location;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;

/// Longest a readiness probe waits for the database.
const READINESS_TIMEOUT_MS: u64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("opening {location}: {source}")]
    Open {
        location: String,
        source: StoreError,
    },
    #[error("starting the ledger writer: {0}")]
    Writer(#[from] LedgerError),
    #[error("creating metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("the ledger writer thread panicked")]
    WriterPanicked,
    #[error("creating the platform accounts: {0}")]
    PlatformAccounts(String),
    #[error("opening the vault: {0}")]
    Vault(#[from] mizan_vault::VaultError),
    #[error("the vault needs master keys on PostgreSQL: set MIZAN_MASTER_KEY_FILE (create one with `mizan keys init`) or MIZAN_MASTER_KEYS")]
    VaultKeysRequired,
    #[error("loading the sanctions list: {0}")]
    SanctionsList(String),
}

/// The key file the embedded SQLite store uses when no key source is configured.
pub const VAULT_KEY_FILE_NAME: &str = "mizan.vault.key";

/// Where the vault's master keys come from.
enum VaultKeys {
    /// A key file: the running vault re-reads it when `mizan keys rotate` records
    /// a version it lacks.
    File(std::path::PathBuf),
    /// `MIZAN_MASTER_KEYS`, read once at start: it cannot change under a running
    /// process, so after a rotation restart with the new value.
    Fixed(mizan_vault::MasterKeyRing),
}

/// The vault's master keys: the configured file or environment value; for the
/// embedded SQLite store, `mizan.vault.key` beside the database, created (0600) on
/// first start; on PostgreSQL, nothing else (the keys must not live with the data).
fn vault_keys(location: &Location, config: &ServerConfig) -> Result<VaultKeys, StateError> {
    use mizan_vault::MasterKeyRing;
    if let Some(path) = &config.vault_key_file {
        return Ok(VaultKeys::File(path.clone()));
    }
    if let Some(keys) = &config.vault_master_keys {
        return Ok(VaultKeys::Fixed(MasterKeyRing::parse(keys)?));
    }
    let Location::Sqlite(ledger_path) = location else {
        return Err(StateError::VaultKeysRequired);
    };
    let path = ledger_path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .join(VAULT_KEY_FILE_NAME);
    if !path.exists() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| {
                mizan_vault::VaultError::KeyRing(format!("{}: {error}", parent.display()))
            })?;
        }
        MasterKeyRing::generate().write_key_file(&path)?;
        tracing::warn!(
            key_file = %path.display(),
            "created the vault's master key file; back it up apart from the database"
        );
    }
    Ok(VaultKeys::File(path))
}

/// Opens the vault on the same database as the ledger: `mizan.vault.sqlite` beside
/// the SQLite file, or the `vault_*` tables of the PostgreSQL database.
pub fn open_vault(
    location: &Location,
    config: &ServerConfig,
) -> Result<mizan_vault::Vault, StateError> {
    let keys = vault_keys(location, config)?;
    let store: Box<dyn mizan_vault::VaultStore> = match location {
        Location::Sqlite(ledger_path) => {
            let path = ledger_path
                .parent()
                .unwrap_or_else(|| std::path::Path::new("."))
                .join(mizan_vault::store::sqlite::SQLITE_FILE_NAME);
            Box::new(mizan_vault::SqliteVaultStore::open(&path)?)
        }
        Location::Postgres(url) => Box::new(mizan_vault::PostgresVaultStore::connect(url, None)?),
    };
    Ok(match keys {
        VaultKeys::File(path) => mizan_vault::Vault::open_with_key_file(store, &path)?,
        VaultKeys::Fixed(ring) => mizan_vault::Vault::open(store, ring)?,
    })
}

/// Lists already parsed in this process, by directory: a process that starts many
/// servers (the tests) parses each list once. A reload always reads the disk.
static LOADED_LISTS: Mutex<Vec<(PathBuf, Arc<Screener>)>> = Mutex::new(Vec::new());

/// Reads and indexes the OFAC list in `directory`.
pub fn load_screener(directory: &Path) -> Result<Arc<Screener>, StateError> {
    let list = SanctionsList::load_dir(directory)
        .map_err(|error| StateError::SanctionsList(format!("{}: {error}", directory.display())))?;
    let screener = Arc::new(Screener::new(&list, Thresholds::TUNED));
    let mut loaded = lock(&LOADED_LISTS);
    loaded.retain(|(path, _)| path != directory);
    loaded.push((directory.to_owned(), screener.clone()));
    Ok(screener)
}

fn screener_at_start(directory: Option<&Path>) -> Result<SharedScreener, StateError> {
    let Some(directory) = directory else {
        tracing::warn!("no sanctions list configured: nobody is screened");
        return Ok(ScreenerCell::new(None));
    };
    let cached = lock(&LOADED_LISTS)
        .iter()
        .find(|(path, _)| path == directory)
        .map(|(_, screener)| screener.clone());
    let screener = match cached {
        Some(screener) => screener,
        None => load_screener(directory)?,
    };
    tracing::info!(names = screener.name_count(), "sanctions list loaded");
    Ok(ScreenerCell::new(Some(screener)))
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    ledger: Mutex<Option<Ledger>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    queue_submissions_max: usize,
    reader: SharedReader,
    metrics: Metrics,
    processor: Arc<dyn Processor>,
    payouts: Arc<dyn Payouts>,
    verifier: Arc<dyn IdentityVerifier>,
    /// Taken at shutdown and dropped on a blocking thread (a PostgreSQL client).
    vault: Mutex<Option<SharedVault>>,
    screener: SharedScreener,
    limits: RateLimits,
    /// Flips to true when shutdown begins, so long-lived responses (event streams)
    /// end and let the server drain.
    closing: tokio::sync::watch::Sender<bool>,
}

/// The three rate limiters every request passes.
#[derive(Debug)]
pub struct RateLimits {
    pub ip: RateLimiter,
    pub person: RateLimiter,
    pub app: RateLimiter,
}

/// Locks, ignoring poison: every value behind these locks stays valid if a holder panics.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often an idle writer on a shared database (PostgreSQL) looks for other
/// processes' commits, and so how stale a cached session or freeze can be.
pub const SHARED_DATABASE_IDLE_MS: u64 = 100;

impl AppState {
    /// Opens the store at `location`, starts the writer (system clock, default config)
    /// and opens a reader. Blocking: call it before the server starts.
    pub fn start(location: &Location, config: ServerConfig) -> Result<AppState, StateError> {
        let open_error = |source| StateError::Open {
            location: location.describe(),
            source,
        };
        let vault = Arc::new(open_vault(location, &config)?);
        let screener = screener_at_start(config.sanctions_dir.as_deref())?;
        let store = location.open_store().map_err(open_error)?;
        // The writer tells the document cache of every commit, so it can keep
        // documents that change (sessions, freezes, verifications, licences). On
        // SQLite this process is the file's only writer; on PostgreSQL other
        // processes may write too, and the writer also tells the cache when one did
        // — at its next batch, or its idle wake-up, every 100 ms.
        let local = matches!(location, Location::Sqlite(_));
        let documents = DocumentCache::observing();
        let writer_config = WriterConfig {
            observer: Some(documents.clone() as Arc<dyn mizan_ledger::CommitObserver>),
            expiry_interval_ms: if local {
                WriterConfig::default().expiry_interval_ms
            } else {
                SHARED_DATABASE_IDLE_MS
            },
            ..WriterConfig::default()
        };
        let queue_submissions_max = writer_config.queue_submissions_max;
        let (ledger, writer) = Ledger::start(store, Arc::new(SystemClock), writer_config)?;
        payments::ensure_platform_accounts(&ledger)
            .map_err(|error| StateError::PlatformAccounts(error.to_string()))?;
        let readers = (0..config.readers.clamp(1, READERS_MAX))
            .map(|_| location.open_reader())
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_error)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                ledger: Mutex::new(Some(ledger)),
                writer: Mutex::new(Some(writer)),
                queue_submissions_max,
                reader: Arc::new(ReaderPool::with_cache(readers, local, documents)),
                metrics: Metrics::new()?,
                processor: Arc::new(SandboxProcessor),
                payouts: Arc::new(SandboxPayouts),
                verifier: Arc::new(SandboxVerifier),
                vault: Mutex::new(Some(vault)),
                screener,
                limits: RateLimits {
                    ip: RateLimiter::per_minute(config.rate_limit_ip_per_minute),
                    person: RateLimiter::per_minute(config.rate_limit_person_per_minute),
                    app: RateLimiter::per_minute(config.rate_limit_app_per_minute),
                },
                closing: tokio::sync::watch::Sender::new(false),
                config,
            }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The reader shared by every request; lock it only inside `spawn_blocking`.
    pub fn reader(&self) -> SharedReader {
        self.inner.reader.clone()
    }

    /// The card processor funding charges go through (the sandbox for now).
    pub fn processor(&self) -> Arc<dyn Processor> {
        self.inner.processor.clone()
    }

    /// The payout rail cash-outs go through (the sandbox for now).
    pub fn payouts(&self) -> Arc<dyn Payouts> {
        self.inner.payouts.clone()
    }

    /// The identity-verification provider (the sandbox for now).
    pub fn verifier(&self) -> Arc<dyn IdentityVerifier> {
        self.inner.verifier.clone()
    }

    /// The vault, or `None` once shutdown began.
    pub fn vault(&self) -> Option<SharedVault> {
        lock(&self.inner.vault).clone()
    }

    /// The sanctions screener (swapped whole when the list is reloaded).
    pub fn screener(&self) -> SharedScreener {
        self.inner.screener.clone()
    }

    pub fn rate_limits(&self) -> &RateLimits {
        &self.inner.limits
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Completes-on-change receiver that reads true once shutdown began.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }

    /// Tells long-lived responses to end: called when the shutdown signal arrives,
    /// before the server waits for in-flight requests.
    pub fn begin_shutdown(&self) {
        self.inner.closing.send_replace(true);
    }

    /// A handle to the writer, or `None` once shutdown began.
    pub fn ledger(&self) -> Option<Ledger> {
        lock(&self.inner.ledger).clone()
    }

    /// Why the server cannot take ledger work now, or `Ok` when it can: the writer
    /// thread runs, its queue has room, and a read through the reader answers.
    pub async fn readiness(&self) -> Result<(), &'static str> {
        let Some(ledger) = self.ledger() else {
            return Err("shutting down");
        };
        let writer_running = lock(&self.inner.writer)
            .as_ref()
            .is_some_and(|writer| !writer.is_finished());
        if !writer_running {
            return Err("ledger writer stopped");
        }
        if ledger.queue_depth() >= self.inner.queue_submissions_max {
            return Err("ledger writer queue full");
        }
        let reader = self.inner.reader.clone();
        let read = tokio::task::spawn_blocking(move || reader.lock().chain_head().map(|_| ()));
        match tokio::time::timeout(Duration::from_millis(READINESS_TIMEOUT_MS), read).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => {
                tracing::warn!(%error, "readiness read failed");
                Err("ledger store unreadable")
            }
            Ok(Err(_)) => Err("ledger store unreadable"),
            Err(_) => Err("ledger store read timed out"),
        }
    }

    /// Drops the ledger handle and waits for the writer thread to drain and stop.
    /// Call it after the HTTP server has finished its in-flight requests.
    pub async fn shutdown(&self) -> Result<(), StateError> {
        drop(lock(&self.inner.ledger).take());
        let writer = lock(&self.inner.writer).take();
        let Some(writer) = writer else {
            return Ok(());
        };
        let joined = match tokio::task::spawn_blocking(move || writer.join()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(StateError::WriterPanicked),
        };
        // Close the reader here, on a blocking thread: a PostgreSQL client dropped on
        // an async worker (where the last `AppState` clone may go) would panic.
        let reader = self.inner.reader.clone();
        let vault = lock(&self.inner.vault).take();
        let closed = tokio::task::spawn_blocking(move || {
            drop(vault);
            reader.close()
        })
        .await;
        if closed.is_err() {
            tracing::error!("closing the ledger reader panicked");
        }
        joined
    }
}
