//! The crash test the ledger promises: a child process runs `mizan ledger load` and
//! is killed with SIGKILL at random moments, then restarted, again and again. After
//! every kill each transfer the child acknowledged `ok` is stored exactly once with
//! the fields the load gives its id, each acknowledged rejection left nothing
//! behind, and `verify` passes. Every restart first replays some acknowledged
//! transfers (`--retry-from`), which must come back as `exists` or the same failure.
//! On both stores: a SQLite file in a temporary directory and a fresh PostgreSQL
//! database (`MIZAN_TEST_POSTGRES_URL`).

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mizan::load::{plan, planned_transfer, Scenario, IDS_PER_SCENARIO};
use mizan_core::TransferId;
use mizan_ledger::{CreateTransferResult, LedgerReader, Transfer};
use mizan_store::postgres::create_test_database;
use mizan_store::Location;
use rand::seq::IndexedRandom;
use rand::Rng;

/// Kills (and restarts) per backend.
const RUNS: usize = 24;
/// How long a child runs before it is killed: from its start on even runs (so some
/// kills land in start-up and recovery), from its first printed line on odd runs (so
/// a slow start on a loaded machine still leaves time to acknowledge transfers).
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 50..=400;
/// Ids per `transfers` lookup (the readers take at most 8,190).
const LOOKUP_CHUNK_IDS: usize = 8_000;
/// Acknowledged scenarios each restart replays.
const REPLAYED_SCENARIOS_PER_RUN: usize = 200;
/// Acknowledged transfers each backend must see over all runs.
const ACKNOWLEDGED_MIN: usize = 1_000;
/// Scenarios the last, unkilled run submits after replaying everything.
const FINAL_RUN_SCENARIOS: u64 = 100;
/// Longest wait for a child that should exit by itself, or for PostgreSQL to notice
/// that a killed child's sessions are gone.
const WAIT_MAX: Duration = Duration::from_secs(30);
const SIGKILL: i32 = 9;

fn postgres_admin_url() -> String {
    std::env::var("MIZAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[test]
fn sqlite_keeps_every_acknowledged_transfer_through_kill_9() {
    let directory = tempfile::tempdir().unwrap();
    let location = Location::from_config(directory.path(), None);
    let arguments = vec!["--data-dir".into(), directory.path().into()];
    CrashTest::new("sqlite", location, arguments, None).run();
}

#[test]
fn postgres_keeps_every_acknowledged_transfer_through_kill_9() {
    let admin_url = postgres_admin_url();
    let database =
        create_test_database(&admin_url).expect("create test database (is PostgreSQL running?)");
    let location = Location::Postgres(database.url.clone());
    let arguments = vec!["--database-url".into(), database.url.clone().into()];
    let sessions = PostgresSessions {
        admin: postgres::Client::connect(&admin_url, postgres::NoTls).unwrap(),
        database: database.name.clone(),
    };
    CrashTest::new("postgres", location, arguments, Some(sessions)).run();
}

/// Watches a test database's server sessions, to wait until a killed child's are gone.
struct PostgresSessions {
    admin: postgres::Client,
    database: String,
}

impl PostgresSessions {
    /// A killed child's session may still be finishing a COMMIT it sent: its batch
    /// was never acknowledged, but it would land in the middle of `verify`.
    fn wait_until_closed(&mut self) {
        let started = Instant::now();
        loop {
            let open: i64 = self
                .admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&self.database],
                )
                .unwrap()
                .get(0);
            if open == 0 {
                return;
            }
            assert!(
                started.elapsed() < WAIT_MAX,
                "{open} sessions of a killed child still open"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One child process and the thread collecting its stdout lines.
struct Running {
    child: Child,
    stdout: JoinHandle<Vec<String>>,
    /// Whole lines read so far.
    lines_read: Arc<AtomicUsize>,
    stderr_path: PathBuf,
}

struct Finished {
    status: ExitStatus,
    lines: Vec<String>,
    stderr: String,
}

impl Running {
    /// Waits (at most [`WAIT_MAX`]) until the child printed a line or exited.
    fn wait_for_first_line(&mut self) {
        let started = Instant::now();
        while self.lines_read.load(Ordering::Relaxed) == 0
            && self.child.try_wait().unwrap().is_none()
            && started.elapsed() < WAIT_MAX
        {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn finish(mut self, kill: bool) -> Finished {
        if kill {
            self.child.kill().unwrap();
        }
        let status = wait_at_most(&mut self.child, WAIT_MAX);
        Finished {
            status,
            lines: self.stdout.join().unwrap(),
            stderr: std::fs::read_to_string(&self.stderr_path).unwrap_or_default(),
        }
    }
}

fn wait_at_most(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("child {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whole lines only: a line cut short by the kill acknowledges nothing.
fn collect_lines(
    stdout: std::process::ChildStdout,
    lines_read: Arc<AtomicUsize>,
) -> JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(whole) = line.strip_suffix('\n') {
                lines.push(whole.to_owned());
                lines_read.fetch_add(1, Ordering::Relaxed);
            }
            line.clear();
        }
        lines
    })
}

/// What a run printed: its acknowledged transfers, and the replay count if it
/// replayed a retry file.
#[derive(Debug, Default)]
struct Printed {
    acknowledged: Vec<(u128, CreateTransferResult)>,
    replayed: Option<usize>,
}

fn parse_lines(lines: &[String]) -> Printed {
    let mut printed = Printed::default();
    for line in lines {
        if let Some(count) = line.strip_prefix("retried ") {
            printed.replayed = Some(count.parse().unwrap());
            continue;
        }
        let (id, code) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let id = u128::from_str_radix(id, 16).unwrap();
        let code = CreateTransferResult::from_str_code(code)
            .unwrap_or_else(|| panic!("unknown result code in {line:?}"));
        printed.acknowledged.push((id, code));
    }
    printed
}

/// The results a first submission may give: the load's rejections are deterministic,
/// except that a hold may time out before its post.
fn assert_plausible(id: u128, code: CreateTransferResult) {
    use CreateTransferResult as R;
    let plan = plan(id / IDS_PER_SCENARIO);
    let first = plan.first.first().unwrap().id.get() == id;
    let allowed: &[R] = match (plan.scenario, first) {
        (Scenario::Funding | Scenario::LinkedPayment, _) => &[R::Ok],
        (Scenario::HoldThenPost | Scenario::HoldThenVoid, true) => &[R::Ok],
        (Scenario::HoldThenPost | Scenario::HoldThenVoid, false) => {
            &[R::Ok, R::PendingTransferExpired]
        }
        (Scenario::Overdraft, _) => &[R::ExceedsCredits],
        (Scenario::LinkedOverdraft, true) => &[R::LinkedEventFailed],
        (Scenario::LinkedOverdraft, false) => &[R::ExceedsCredits],
    };
    assert!(
        allowed.contains(&code),
        "transfer {id:032x} ({:?}) acknowledged {code}, expected one of {allowed:?}",
        plan.scenario
    );
}

fn assert_stored_as_planned(stored: &Transfer) {
    let planned = planned_transfer(stored.id.get())
        .unwrap_or_else(|| panic!("stored transfer {} is not one the load makes", stored.id));
    let fields = |t: (_, _, _, _, _, _, _, _, _)| t;
    assert_eq!(
        fields((
            stored.debit_account_id,
            stored.credit_account_id,
            stored.amount,
            stored.pending_id,
            stored.ledger,
            stored.code,
            stored.reference,
            stored.flags,
            stored.timeout_seconds,
        )),
        fields((
            planned.debit_account_id,
            planned.credit_account_id,
            planned.amount,
            planned.pending_id,
            planned.ledger,
            planned.code,
            planned.reference,
            planned.flags,
            planned.timeout_seconds,
        )),
        "transfer {} is stored with other fields than the load gave it",
        stored.id
    );
}

struct CrashTest {
    name: &'static str,
    location: Location,
    location_arguments: Vec<OsString>,
    postgres: Option<PostgresSessions>,
    /// Logs and retry files.
    scratch: tempfile::TempDir,
    /// Every transfer a child acknowledged, with the result it was acknowledged with.
    acknowledged: BTreeMap<u128, CreateTransferResult>,
    next_first_id: u128,
    runs_with_acknowledgements: usize,
    retry_files_given: usize,
    replays_confirmed: usize,
}

impl CrashTest {
    fn new(
        name: &'static str,
        location: Location,
        location_arguments: Vec<OsString>,
        postgres: Option<PostgresSessions>,
    ) -> CrashTest {
        CrashTest {
            name,
            location,
            location_arguments,
            postgres,
            scratch: tempfile::tempdir().unwrap(),
            acknowledged: BTreeMap::new(),
            next_first_id: 0,
            runs_with_acknowledgements: 0,
            retry_files_given: 0,
            replays_confirmed: 0,
        }
    }

    fn run(mut self) {
        let started = Instant::now();
        let mut rng = rand::rng();
        for run in 0..RUNS {
            self.crash_once(run, &mut rng);
        }
        self.replay_everything_and_exit_cleanly();
        self.verify_with_the_binary();
        let ok = self
            .acknowledged
            .values()
            .filter(|code| **code == CreateTransferResult::Ok)
            .count();
        eprintln!(
            "{}: {RUNS} kills in {:.1?}; {} transfers acknowledged ({ok} ok) in {} runs; \
             {} of {} replays confirmed",
            self.name,
            started.elapsed(),
            self.acknowledged.len(),
            self.runs_with_acknowledgements,
            self.replays_confirmed,
            self.retry_files_given,
        );
        assert!(
            self.acknowledged.len() > ACKNOWLEDGED_MIN,
            "only {} transfers acknowledged",
            self.acknowledged.len()
        );
        assert!(
            self.runs_with_acknowledgements * 2 > RUNS,
            "only {} of {RUNS} runs acknowledged anything",
            self.runs_with_acknowledgements
        );
        assert!(
            self.replays_confirmed * 2 > self.retry_files_given,
            "only {} of {} replays finished before the kill",
            self.replays_confirmed,
            self.retry_files_given
        );
    }

    /// Ids time-ordered like UUIDv7 (nanoseconds in the top 64 bits) and beyond
    /// every id an earlier run could have used.
    fn first_id(&mut self) -> u128 {
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let first_id = (now_ns << 64).max(self.next_first_id);
        self.next_first_id = first_id + (1 << 64);
        first_id
    }

    fn spawn(&mut self, run: usize, retry_from: Option<&Path>, count: Option<u64>) -> Running {
        let stderr_path = self.scratch.path().join(format!("run-{run}.stderr"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_mizan"));
        command
            .env_remove("MIZAN_DATABASE_URL")
            .env_remove("MIZAN_DATA_DIR")
            .args(&self.location_arguments)
            .args(["ledger", "load", "--first-id"])
            .arg(format!("{:032x}", self.first_id()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).unwrap());
        if let Some(path) = retry_from {
            command.arg("--retry-from").arg(path);
        }
        if let Some(count) = count {
            command.arg("--count").arg(count.to_string());
        }
        let mut child = command.spawn().unwrap();
        let lines_read = Arc::new(AtomicUsize::new(0));
        let stdout = collect_lines(child.stdout.take().unwrap(), Arc::clone(&lines_read));
        Running {
            child,
            stdout,
            lines_read,
            stderr_path,
        }
    }

    fn crash_once(&mut self, run: usize, rng: &mut impl Rng) {
        let retry_file = self.write_retry_file(run, rng);
        let mut running = self.spawn(
            run,
            retry_file.as_ref().map(|(path, _)| path.as_path()),
            None,
        );
        if run % 2 == 1 {
            running.wait_for_first_line();
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(KILL_AFTER_MS)));
        let finished = running.finish(true);
        assert_eq!(
            finished.status.signal(),
            Some(SIGKILL),
            "{} run {run}: the load exited by itself ({}):\n{}",
            self.name,
            finished.status,
            finished.stderr
        );
        let printed = self.record(&finished.lines);
        self.runs_with_acknowledgements += usize::from(!printed.acknowledged.is_empty());
        if let (Some((_, lines)), Some(replayed)) = (&retry_file, printed.replayed) {
            assert_eq!(
                replayed, *lines,
                "run {run} replayed another number of transfers"
            );
            self.replays_confirmed += 1;
        }
        self.retry_files_given += usize::from(retry_file.is_some());
        self.check_store();
    }

    /// Writes the acknowledged lines of some random scenarios (whole scenarios, so
    /// every replayed submission is complete); `None` before anything is acknowledged.
    fn write_retry_file(&self, run: usize, rng: &mut impl Rng) -> Option<(PathBuf, usize)> {
        let scenarios: Vec<u128> = self
            .acknowledged
            .keys()
            .map(|id| id / IDS_PER_SCENARIO)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if scenarios.is_empty() {
            return None;
        }
        let chosen: BTreeSet<u128> = scenarios
            .choose_multiple(rng, REPLAYED_SCENARIOS_PER_RUN)
            .copied()
            .collect();
        let ids = chosen.iter().flat_map(|scenario| {
            let first = scenario * IDS_PER_SCENARIO;
            self.acknowledged.range(first..first + IDS_PER_SCENARIO)
        });
        Some(self.write_lines(&format!("retry-{run}.txt"), ids))
    }

    fn write_lines<'a>(
        &self,
        name: &str,
        lines: impl Iterator<Item = (&'a u128, &'a CreateTransferResult)>,
    ) -> (PathBuf, usize) {
        let mut text = String::new();
        let mut count = 0;
        for (id, code) in lines {
            writeln!(text, "{id:032x} {code}").unwrap();
            count += 1;
        }
        let path = self.scratch.path().join(name);
        std::fs::write(&path, text).unwrap();
        (path, count)
    }

    fn record(&mut self, lines: &[String]) -> Printed {
        let printed = parse_lines(lines);
        for (id, code) in &printed.acknowledged {
            assert_plausible(*id, *code);
            let earlier = self.acknowledged.insert(*id, *code);
            assert_eq!(earlier, None, "transfer {id:032x} acknowledged twice");
        }
        printed
    }

    fn ids_acknowledged(&self, ok: bool) -> Vec<TransferId> {
        self.acknowledged
            .iter()
            .filter(|(_, code)| (**code == CreateTransferResult::Ok) == ok)
            .map(|(id, _)| TransferId::new(*id).unwrap())
            .collect()
    }

    /// Every acknowledged `ok` stored exactly once as planned; every acknowledged
    /// rejection absent; the whole ledger verifies.
    fn check_store(&mut self) {
        if let Some(postgres) = &mut self.postgres {
            postgres.wait_until_closed();
        }
        if let Location::Sqlite(path) = &self.location {
            // Killed before the store was created (it appears whole, renamed into
            // place once migrated): no ledger, and nothing acknowledged.
            if !path.exists() {
                assert!(
                    self.acknowledged.is_empty(),
                    "acknowledged without a ledger"
                );
                return;
            }
        }
        let mut reader = self.location.open_reader().unwrap();
        for chunk in self.ids_acknowledged(true).chunks(LOOKUP_CHUNK_IDS) {
            let stored = reader.transfers(chunk).unwrap();
            let mut copies: HashMap<TransferId, usize> = HashMap::new();
            for transfer in &stored {
                *copies.entry(transfer.id).or_default() += 1;
                assert_stored_as_planned(transfer);
            }
            for id in chunk {
                let copies = copies.get(id).copied().unwrap_or(0);
                assert_eq!(
                    copies, 1,
                    "acknowledged transfer {id} is stored {copies} times"
                );
            }
        }
        for chunk in self.ids_acknowledged(false).chunks(LOOKUP_CHUNK_IDS) {
            let stored = reader.transfers(chunk).unwrap();
            assert!(
                stored.is_empty(),
                "rejected transfer {} was stored",
                stored[0].id
            );
        }
        verify(&mut *reader);
    }

    /// A last run replays every acknowledged transfer, then runs a few scenarios and
    /// exits by itself.
    fn replay_everything_and_exit_cleanly(&mut self) {
        let (path, lines) = self.write_lines("retry-all.txt", self.acknowledged.iter());
        let running = self.spawn(RUNS, Some(&path), Some(FINAL_RUN_SCENARIOS));
        let finished = running.finish(false);
        assert!(
            finished.status.success(),
            "{}: the final load run failed ({}):\n{}",
            self.name,
            finished.status,
            finished.stderr
        );
        let printed = self.record(&finished.lines);
        assert_eq!(printed.replayed, Some(lines));
        assert!(!printed.acknowledged.is_empty());
        self.check_store();
    }

    fn verify_with_the_binary(&self) {
        let output = Command::new(env!("CARGO_BIN_EXE_mizan"))
            .env_remove("MIZAN_DATABASE_URL")
            .env_remove("MIZAN_DATA_DIR")
            .args(&self.location_arguments)
            .args(["ledger", "verify"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "mizan ledger verify: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn verify(reader: &mut dyn LedgerReader) {
    if let Err(error) = mizan_ledger::verify::verify(reader) {
        panic!("verify failed after a kill: {error}");
    }
}
