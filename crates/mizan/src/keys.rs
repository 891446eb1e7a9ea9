//! `mizan keys …` (vault master keys) and `mizan bench vault`.
//!
//! Master keys live in a key file outside the database (`--key-file`, or
//! `MIZAN_MASTER_KEY_FILE`); read-only commands also accept the keys themselves in
//! `MIZAN_MASTER_KEYS`. The vault's data is `mizan.vault.sqlite` in the data
//! directory, or the `vault_*` tables of the PostgreSQL database.
//!
//! `keys rotate` writes the key file with the new version *before* any data key is
//! wrapped under it: a crash in between leaves an unused version, never a data key
//! whose master key is lost. It then records the version number in the store
//! (`vault_key_versions`), which is how a running `mizan serve` learns to re-read
//! its key file and wrap new data keys under the new version; only then does it
//! re-wrap. So rotation and retirement run against a serving server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mizan_store::Location;
use mizan_vault::envelope::DataKey;
use mizan_vault::{
    FieldKind, MasterKeyRing, PersonId, PostgresVaultStore, RecordId, SqliteVaultStore, Vault,
    VaultStore,
};
use rand::{Rng, SeedableRng};

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Creates a new key file (master version 1 and blind-index version 1).
    Init(KeyFileArgs),
    /// Adds a master key version and re-wraps every data key under it.
    Rotate(RotateArgs),
    /// Lists master versions and how many data keys each wraps.
    Status(KeySourceArgs),
    /// Removes a master version no data key uses from the key file.
    Retire {
        #[command(flatten)]
        key_file: KeyFileArgs,
        /// The master version to retire.
        #[arg(long)]
        version: u32,
    },
}

#[derive(Debug, clap::Args)]
pub struct KeyFileArgs {
    /// The master key file (never inside the database or its backups).
    #[arg(long, env = "MIZAN_MASTER_KEY_FILE")]
    pub key_file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct KeySourceArgs {
    /// The master key file; without it, keys come from MIZAN_MASTER_KEYS.
    #[arg(long, env = "MIZAN_MASTER_KEY_FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub key_file: KeyFileArgs,
    /// Data keys re-wrapped per transaction.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Afterwards, retire every old master version no data key uses any more.
    #[arg(long)]
    pub retire: bool,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// People in the rotation benchmark, one data key and one ~100-byte record each.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: usize,
    /// Seals (and opens) per seal/open measurement.
    #[arg(long, default_value_t = 1_000_000)]
    pub seal_ops: usize,
    /// Threads for the multi-threaded seal/open measurement.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Data keys re-wrapped per rotation transaction.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Records in the naive baseline: re-encrypting every record under a new key.
    #[arg(long, default_value_t = 1_000_000)]
    pub baseline_records: usize,
    /// Directory for the benchmark's SQLite files [default: a temporary directory in
    /// the data directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Upper bounds on what the bench may be asked to do.
const BENCH_RECORDS_MAX: usize = 100_000_000;
const BENCH_THREADS_MAX: usize = 64;
/// People imported per transaction while setting the rotation bench up.
const IMPORT_BATCH_PEOPLE: usize = 10_000;
/// A typical sealed field: a legal name with an address, about 100 bytes.
const TYPICAL_RECORD: &str =
    "Alice Pleasance Liddell, 1 Rabbit Hole Lane, Daresbury, Cheshire WA4 4AA, United Kingdom, 1852";

pub fn run(location: &Location, command: &KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Init(args) => init(&args.key_file),
        KeysCommand::Rotate(args) => rotate(location, args),
        KeysCommand::Status(args) => status(location, args.key_file.as_deref()),
        KeysCommand::Retire { key_file, version } => retire(location, &key_file.key_file, *version),
    }
}

fn init(key_file: &Path) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !key_file.exists(),
        "{} exists already; rotate instead of replacing keys that wrap data",
        key_file.display()
    );
    MasterKeyRing::generate().write_key_file(key_file)?;
    say!(
        "created {} (master version 1, index version 1)",
        key_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The vault's store at `location`.
pub fn open_store(location: &Location) -> anyhow::Result<Box<dyn VaultStore>> {
    Ok(match location {
        Location::Sqlite(ledger_path) => {
            let path = vault_sqlite_path(ledger_path);
            Box::new(
                SqliteVaultStore::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?,
            )
        }
        Location::Postgres(url) => Box::new(
            PostgresVaultStore::connect(url, None)
                .with_context(|| format!("connecting to {}", location.describe()))?,
        ),
    })
}

fn vault_sqlite_path(ledger_path: &Path) -> PathBuf {
    ledger_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(mizan_vault::store::sqlite::SQLITE_FILE_NAME)
}

fn load_ring(key_file: Option<&Path>) -> anyhow::Result<MasterKeyRing> {
    match key_file {
        Some(path) => Ok(MasterKeyRing::from_key_file(path)?),
        None => MasterKeyRing::from_env()?
            .context("no keys: give --key-file (MIZAN_MASTER_KEY_FILE) or set MIZAN_MASTER_KEYS"),
    }
}

fn rotate(location: &Location, args: &RotateArgs) -> anyhow::Result<ExitCode> {
    let path = &args.key_file.key_file;
    let mut ring = load_ring(Some(path))?;
    let store = open_store(location)?;
    let version = ring.add_master_version()?;
    // Persist first: no data key may be wrapped under a key that exists only here.
    ring.write_key_file(path)?;
    say!("added master version {version} to {}", path.display());
    let vault = Vault::open(store, ring)?;
    let started = Instant::now();
    let report = vault.rotate_with_progress(args.batch, &mut |report| {
        if report.batches % 10 == 0 {
            say!("  re-wrapped {} data keys", report.rewrapped);
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    say!(
        "re-wrapped {} data keys under version {} in {:.1} s ({:.0}/s)",
        report.rewrapped,
        report.target_version,
        seconds,
        report.rewrapped as f64 / seconds.max(1e-9)
    );
    if args.retire {
        for used in vault.versions_in_use()? {
            if used.loaded && used.data_keys == 0 && used.version != version {
                vault.retire(used.version)?;
                say!("retired master version {}", used.version);
            }
        }
        vault.key_ring()?.write_key_file(path)?;
    }
    print_versions(&vault)?;
    Ok(ExitCode::SUCCESS)
}

fn status(location: &Location, key_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let vault = Vault::open(open_store(location)?, load_ring(key_file)?)?;
    print_versions(&vault)?;
    Ok(ExitCode::SUCCESS)
}

fn retire(location: &Location, key_file: &Path, version: u32) -> anyhow::Result<ExitCode> {
    let vault = Vault::open(open_store(location)?, load_ring(Some(key_file))?)?;
    vault.retire(version)?;
    vault.key_ring()?.write_key_file(key_file)?;
    say!("retired master version {version}");
    print_versions(&vault)?;
    Ok(ExitCode::SUCCESS)
}

fn print_versions(vault: &Vault) -> anyhow::Result<()> {
    if let Some(newest) = vault.newest_recorded_version()? {
        say!("newest recorded master version: {newest} (new data keys wrap under it)");
    }
    for used in vault.versions_in_use()? {
        say!(
            "master version {}: {} data keys{}",
            used.version,
            used.data_keys,
            if used.loaded { "" } else { " (NOT LOADED)" }
        );
    }
    Ok(())
}

/// Operations per second.
fn rate(operations: u64, elapsed: Duration) -> f64 {
    operations as f64 / elapsed.as_secs_f64().max(1e-9)
}

pub fn bench(location: &Location, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=BENCH_RECORDS_MAX).contains(&args.records)
            && (1..=BENCH_RECORDS_MAX).contains(&args.seal_ops)
            && args.baseline_records <= BENCH_RECORDS_MAX,
        "record and operation counts are 1 to {BENCH_RECORDS_MAX}"
    );
    anyhow::ensure!(
        (1..=BENCH_THREADS_MAX).contains(&args.threads),
        "threads are 1 to {BENCH_THREADS_MAX}"
    );
    let directory = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            tempfile::tempdir_in(dir)?
        }
        None => {
            let data_dir = match location {
                Location::Sqlite(path) => path.parent().unwrap_or_else(|| Path::new(".")),
                Location::Postgres(_) => Path::new("."),
            };
            std::fs::create_dir_all(data_dir)?;
            tempfile::tempdir_in(data_dir)?
        }
    };
    let mut results = serde_json::Map::new();
    let mut record = |name: &str, value: serde_json::Value| {
        if !args.json {
            say!("{name}: {value}");
        }
        results.insert(name.to_owned(), value);
    };
    for (name, value) in bench_crypto(args)? {
        record(&name, value);
    }
    for (name, value) in bench_rotation(directory.path(), args)? {
        record(&name, value);
    }
    if args.baseline_records > 0 {
        for (name, value) in bench_naive_reencrypt(directory.path(), args)? {
            record(&name, value);
        }
    }
    if args.json {
        say!("{}", serde_json::Value::Object(results));
    }
    Ok(ExitCode::SUCCESS)
}

type Results = Vec<(String, serde_json::Value)>;

/// Seal and open of a ~100-byte record in memory, on 1 and on `threads` threads.
fn bench_crypto(args: &BenchArgs) -> anyhow::Result<Results> {
    let ring = MasterKeyRing::generate();
    let person = PersonId::new(1)?;
    let record = RecordId::generate();
    let plaintext = TYPICAL_RECORD.as_bytes();
    let (key, wrapped) = DataKey::generate(&ring, person)?;
    let sealed = key.seal(person, record, FieldKind::Address, plaintext)?;
    let operations = args.seal_ops as u64;
    let mut results = Results::new();
    results.push(("record_bytes".into(), plaintext.len().into()));

    let timed = |threads: usize, work: &(dyn Fn() -> anyhow::Result<()> + Sync)| {
        let per_thread = args.seal_ops / threads;
        let started = Instant::now();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| -> anyhow::Result<()> {
                        for _ in 0..per_thread {
                            work()?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().try_for_each(|handle| {
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("bench thread panicked"))?
            })
        })?;
        anyhow::Ok(rate((per_thread * threads) as u64, started.elapsed()))
    };
    for threads in [1, args.threads] {
        let seal = timed(threads, &|| {
            std::hint::black_box(key.seal(person, record, FieldKind::Address, plaintext)?);
            Ok(())
        })?;
        let open = timed(threads, &|| {
            std::hint::black_box(key.open(person, record, FieldKind::Address, &sealed)?);
            Ok(())
        })?;
        // What a read of one person's record costs: unwrap the data key, then open.
        let unwrap_open = timed(threads, &|| {
            let key = DataKey::unwrap(&ring, person, &wrapped)?;
            std::hint::black_box(key.open(person, record, FieldKind::Address, &sealed)?);
            Ok(())
        })?;
        results.push((format!("seal_per_s_{threads}t"), seal.round().into()));
        results.push((format!("open_per_s_{threads}t"), open.round().into()));
        results.push((
            format!("unwrap_and_open_per_s_{threads}t"),
            unwrap_open.round().into(),
        ));
    }
    results.push(("seal_ops".into(), operations.into()));
    Ok(results)
}

/// 1,000,000 people (one data key and one record each) on SQLite, then a master
/// rotation while a reader thread opens random records and counts failures.
fn bench_rotation(directory: &Path, args: &BenchArgs) -> anyhow::Result<Results> {
    let path = directory.join("rotation.vault.sqlite");
    let vault = Vault::open(
        Box::new(SqliteVaultStore::open(&path)?),
        MasterKeyRing::generate(),
    )?;
    let started = Instant::now();
    let mut records = Vec::with_capacity(args.records);
    let mut next_person = 1u128;
    while records.len() < args.records {
        let count = IMPORT_BATCH_PEOPLE.min(args.records - records.len());
        let people = (0..count)
            .map(|offset| {
                Ok((
                    PersonId::new(next_person + offset as u128)?,
                    FieldKind::Address,
                    TYPICAL_RECORD,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        next_person += count as u128;
        records.extend(vault.import_people(&people)?);
    }
    let import_per_s = rate(records.len() as u64, started.elapsed());

    vault.add_master_version()?;
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let started = Instant::now();
    let report = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut random = rand::rngs::SmallRng::seed_from_u64(7);
            while !done.load(Ordering::Acquire) {
                let record = records[random.random_range(0..records.len())];
                if vault.check_readable(record).is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        });
        let report = vault.rotate(args.batch);
        done.store(true, Ordering::Release);
        report
    })?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        report.rewrapped == records.len() as u64,
        "rotation re-wrapped {} of {} data keys",
        report.rewrapped,
        records.len()
    );
    // The same again without the reader thread: what the reader costs on 2 cores.
    vault.add_master_version()?;
    let started = Instant::now();
    let alone = vault.rotate(args.batch)?;
    let alone_elapsed = started.elapsed();
    anyhow::ensure!(
        alone.rewrapped == records.len() as u64,
        "second rotation incomplete"
    );
    let versions = vault.versions_in_use()?;
    Ok(vec![
        (
            "rotation_without_reader_rewrapped_per_s".into(),
            rate(alone.rewrapped, alone_elapsed).round().into(),
        ),
        ("rotation_data_keys".into(), records.len().into()),
        ("import_people_per_s".into(), import_per_s.round().into()),
        ("rotation_seconds".into(), elapsed.as_secs_f64().into()),
        (
            "rotation_rewrapped_per_s".into(),
            rate(report.rewrapped, elapsed).round().into(),
        ),
        ("rotation_batches".into(), report.batches.into()),
        (
            "reads_during_rotation".into(),
            reads.load(Ordering::Relaxed).into(),
        ),
        (
            "reads_per_s_during_rotation".into(),
            rate(reads.load(Ordering::Relaxed), elapsed).round().into(),
        ),
        (
            "failed_reads_during_rotation".into(),
            failures.load(Ordering::Relaxed).into(),
        ),
        (
            "versions_after".into(),
            versions
                .iter()
                .map(|used| format!("v{}={}", used.version, used.data_keys))
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
        ),
    ])
}

/// The baseline without envelopes: every record encrypted directly under the
/// master key, so a rotation decrypts, re-encrypts and rewrites every record.
fn bench_naive_reencrypt(directory: &Path, args: &BenchArgs) -> anyhow::Result<Results> {
    let path = directory.join("naive.sqlite");
    let mut connection = rusqlite::Connection::open(&path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE records (record_id BLOB PRIMARY KEY, ciphertext BLOB NOT NULL) WITHOUT ROWID",
    )?;
    let ring = MasterKeyRing::generate();
    let person = PersonId::new(1)?;
    let (old_key, _) = DataKey::generate(&ring, person)?;
    let (new_key, _) = DataKey::generate(&ring, person)?;
    let ids: Vec<RecordId> = (0..args.baseline_records)
        .map(|_| RecordId::generate())
        .collect();
    for chunk in ids.chunks(IMPORT_BATCH_PEOPLE) {
        let transaction = connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached("INSERT INTO records VALUES (?1, ?2)")?;
            for id in chunk {
                let sealed =
                    old_key.seal(person, *id, FieldKind::Address, TYPICAL_RECORD.as_bytes())?;
                insert.execute(rusqlite::params![id.to_be_bytes().as_slice(), sealed])?;
            }
        }
        transaction.commit()?;
    }
    // Walk the table in key order, like the rotation walks its version index, so
    // both write pages in order and the comparison is about bytes and rows, not
    // about access patterns.
    let started = Instant::now();
    let mut after: Vec<u8> = vec![0u8; 16];
    let mut reencrypted = 0u64;
    loop {
        let transaction = connection.transaction()?;
        let batch: Vec<(Vec<u8>, Vec<u8>)> = transaction
            .prepare_cached(
                "SELECT record_id, ciphertext FROM records WHERE record_id > ?1
                 ORDER BY record_id LIMIT ?2",
            )?
            .query_map(rusqlite::params![after, args.batch.max(1) as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        after = last.clone();
        {
            let mut update = transaction
                .prepare_cached("UPDATE records SET ciphertext = ?1 WHERE record_id = ?2")?;
            for (id_bytes, sealed) in &batch {
                let raw: [u8; 16] = id_bytes
                    .as_slice()
                    .try_into()
                    .context("a record id is not 16 bytes")?;
                let id = RecordId::new(u128::from_be_bytes(raw))?;
                let plaintext = old_key.open(person, id, FieldKind::Address, sealed)?;
                let resealed = new_key.seal(person, id, FieldKind::Address, plaintext.expose())?;
                update.execute(rusqlite::params![resealed, id_bytes])?;
            }
        }
        transaction.commit()?;
        reencrypted += batch.len() as u64;
    }
    anyhow::ensure!(
        reencrypted == ids.len() as u64,
        "the baseline re-encrypted {reencrypted} of {} records",
        ids.len()
    );
    let elapsed = started.elapsed();
    Ok(vec![
        ("naive_records".into(), ids.len().into()),
        ("naive_seconds".into(), elapsed.as_secs_f64().into()),
        (
            "naive_reencrypted_per_s".into(),
            rate(ids.len() as u64, elapsed).round().into(),
        ),
    ])
}
