//! `mizan demo` as a newcomer runs it: the real binary on a fresh data dir, twice.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mizan_app::identity::{self, Handle, WALLET_CURRENCY};
use mizan_app::readers::ReaderPool;
use mizan_ledger::{ChainHead, HistoryFilter};
use mizan_store::Location;

const DAY_NS: u64 = 86_400 * 1_000_000_000;

fn mizan(data_dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("MIZAN_DATABASE_URL")
        .output()
        .unwrap();
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
}
