//! `mizan demo` as a newcomer runs it: the real binary on a fresh data dir, twice.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mizan_app::identity::{self, Email, Handle, Password, WALLET_CURRENCY};
use mizan_app::readers::ReaderPool;
use mizan_compliance::sanctions::{SanctionsList, Screener, Thresholds};
use mizan_core::{Clock, Secret, SystemClock};
use mizan_ledger::{ChainHead, HistoryFilter, Ledger, WriterConfig};
use mizan_store::Location;

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// Runs the binary on `data_dir`, success or not.
fn run_mizan(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mizan"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("MIZAN_DATABASE_URL")
        .output()
        .unwrap()
}

fn mizan(data_dir: &Path, args: &[&str]) -> Output {
    let output = run_mizan(data_dir, args);
    assert!(
        output.status.success(),
        "mizan {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn chain_head(location: &Location) -> ChainHead {
    location.open_reader().unwrap().chain_head().unwrap()
}

/// The first and the last ledger timestamps of a demo person's wallet.
fn wallet_span_ns(location: &Location, name: &str) -> (u64, u64) {
    let reader = Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let person = runtime
        .block_on(identity::person_by_handle(
            &reader,
            &Handle::parse(name).unwrap(),
        ))
        .unwrap()
        .unwrap_or_else(|| panic!("@{name} was not created"));
    let wallet = person.wallet_id(WALLET_CURRENCY).unwrap();
    let edge = |newest_first| {
        let filter = HistoryFilter {
            newest_first,
            limit: 1,
            ..HistoryFilter::default()
        };
        let page = reader.lock().account_history(wallet, &filter).unwrap();
        page.transfers.first().expect("an empty wallet").timestamp
    };
    let span = (edge(false), edge(true));
    reader.close();
    span
}

/// Screens every demo person against the real SDN list as `mizan serve` does at its
/// first start (everyone's kept legal name, trigger `list_reload`).
fn rescreen_everyone(location: &Location) -> mizan_app::sanctions::RescreenReport {
    let list_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ofac");
    let list = SanctionsList::load_dir(&list_dir).unwrap();
    let screener = mizan_app::sanctions::ScreenerCell::new(Some(Arc::new(Screener::new(
        &list,
        Thresholds::TUNED,
    ))));
    let config = mizan_api::ServerConfig::load(None).unwrap();
    let vault = Arc::new(mizan_api::state::open_vault(location, &config).unwrap());
    let reader = Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    let (ledger, writer) = Ledger::start(
        location.open_store().unwrap(),
        Arc::new(SystemClock),
        WriterConfig::default(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(mizan_app::sanctions::rescreen_all(
            &ledger,
            &reader,
            &vault,
            &screener,
            SystemClock.now_ns(),
        ))
        .unwrap();
    reader.close();
    drop(ledger);
    writer.join().unwrap();
    report
}

#[test]
fn demo_seeds_months_of_history_once_and_then_leaves_it_alone() {
    let directory = tempfile::tempdir().unwrap();
    let location = Location::from_config(directory.path(), None);

    let first = stdout(&mizan(directory.path(), &["demo", "--no-serve"]));
    assert!(first.contains("seeded 12 people"), "{first}");
    assert!(first.contains("ledger verified"), "{first}");
    for login in ["amina", "lina_draws", "the_quiz_guy", "mizan-demo-2026"] {
        assert!(first.contains(login), "{login} missing from:\n{first}");
    }
    assert!(first.contains("amina@demo.mizan.test"), "{first}");
    assert!(
        !first.contains("http://"),
        "--no-serve printed a URL:\n{first}"
    );

    let seeded = chain_head(&location);
    assert!(seeded.transfers_count > 300, "{seeded:?}");
    let (oldest_ns, newest_ns) = wallet_span_ns(&location, "amina");
    let now_ns = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    assert!(
        newest_ns - oldest_ns > 60 * DAY_NS,
        "history spans only {:?}",
        Duration::from_nanos(newest_ns - oldest_ns)
    );
    assert!(newest_ns < now_ns, "history ends in the future");
    assert!(
        seeded.last_timestamp < now_ns,
        "the ledger ends in the future"
    );

    let verified = stdout(&mizan(directory.path(), &["ledger", "verify"]));
    assert!(verified.contains("ledger verified"), "{verified}");

    let second = stdout(&mizan(directory.path(), &["demo", "--no-serve"]));
    assert!(second.contains("already there"), "{second}");
    assert!(!second.contains("seeded 12"), "{second}");
    let again = chain_head(&location);
    assert_eq!(again.transfers_count, seeded.transfers_count);
    assert_eq!(again.last_hash, seeded.last_hash);
    assert_eq!(again.last_timestamp, seeded.last_timestamp);

    // The first `mizan serve` re-screens everyone against the list; the demo's
    // people must come out clear, or they could not send money (an early demo froze
    // @amina: her one-word legal name was a vessel's).
    let report = rescreen_everyone(&location);
    assert_eq!(report.screened, 12, "{report:?}");
    assert_eq!((report.blocked, report.review), (0, 0), "{report:?}");
}

/// What an interrupted seed leaves: the first demo person signed up, nothing after.
fn sign_up_the_first_demo_person(location: &Location) {
    let store = location.open_store().unwrap();
    let (ledger, writer) =
        Ledger::start(store, Arc::new(SystemClock), WriterConfig::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(identity::signup(
            &ledger,
            Handle::parse("amina").unwrap(),
            Email::parse("amina@demo.mizan.test").unwrap(),
            Password::parse(Secret::new("mizan-demo-2026".to_owned())).unwrap(),
            SystemClock.now_ns(),
        ))
        .unwrap();
    drop(ledger);
    writer.join().unwrap();
}

#[test]
fn a_demo_whose_seed_was_interrupted_is_refused_and_left_unchanged() {
    let directory = tempfile::tempdir().unwrap();
    let location = Location::from_config(directory.path(), None);
    sign_up_the_first_demo_person(&location);
    let before = chain_head(&location);

    let output = run_mizan(directory.path(), &["demo", "--no-serve"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "an interrupted demo was accepted:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("Nothing was changed"), "{stderr}");
    let data_dir = directory.path().display().to_string();
    assert!(
        stderr.contains(&format!("rm -rf {data_dir}")),
        "the way to start over is missing:\n{stderr}"
    );
    assert!(!stdout.contains("seeded"), "{stdout}");

    let after = chain_head(&location);
    assert_eq!(after.transfers_count, before.transfers_count);
    assert_eq!(after.last_hash, before.last_hash);
    // Only the one person from before: nobody else was signed up.
    let reader = Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bilal = runtime
        .block_on(identity::person_by_handle(
            &reader,
            &Handle::parse("bilal").unwrap(),
        ))
        .unwrap();
    assert!(bilal.is_none(), "the refused demo signed @bilal up");
    reader.close();
}
