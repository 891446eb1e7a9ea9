//! The SQLite ledger's WAL is copied into the database file by a thread of its own
//! while the writer commits, instead of all at once by the automatic checkpoint
//! inside a commit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::time::Duration;

use mizan_core::{AccountId, ManualClock, TransferId};
use mizan_ledger::{
    AccountCode, AccountFlags, Ledger, NewAccount, Submission, TransferRequest, WriterConfig,
};
use mizan_store::SqliteStore;

const SUBMISSIONS: u128 = 240;
const TRANSFERS_PER_SUBMISSION: u128 = 100;

#[test]
fn the_database_file_is_kept_current_while_the_writer_commits() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000_000));
    let (ledger, writer) = Ledger::start(store, clock, WriterConfig::default()).unwrap();
    let accounts = (1..=2)
        .map(|id| NewAccount {
            id: AccountId::new(id).unwrap(),
            ledger: 840,
            code: AccountCode::Operating,
            owner: 0,
            flags: AccountFlags::NONE,
        })
        .collect();
    assert!(ledger
        .submit_blocking(Submission::accounts(accounts))
        .unwrap()
        .all_ok());
    let wal = {
        let mut name = path.clone().into_os_string();
        name.push("-wal");
        std::path::PathBuf::from(name)
    };
    for submission in 0..SUBMISSIONS {
        let transfers = (0..TRANSFERS_PER_SUBMISSION)
            .map(|n| {
                TransferRequest::single(
                    TransferId::new(1 + submission * TRANSFERS_PER_SUBMISSION + n).unwrap(),
                    AccountId::new(1).unwrap(),
                    AccountId::new(2).unwrap(),
                    1,
                    840,
                    1,
                )
            })
            .collect();
        let result = ledger
            .submit_blocking(Submission::transfers(transfers))
            .unwrap();
        assert!(result.all_ok());
        std::thread::sleep(Duration::from_millis(10));
    }
    // 24,000 transfers of ~150 bytes went through the WAL: far fewer pages than the
    // automatic checkpoint waits for, so only the checkpointer can have copied them
    // into the database file meanwhile.
    let wal_bytes = std::fs::metadata(&wal).unwrap().len();
    let wal_pages = i64::try_from(wal_bytes / 4096).unwrap();
    assert!(
        wal_pages < 100_000,
        "the automatic checkpoint ran: {wal_pages}"
    );
    let database_bytes = std::fs::metadata(&path).unwrap().len();
    assert!(
        database_bytes > 3_000_000,
        "the pages were not copied into the database file: {database_bytes} bytes"
    );
    drop(ledger);
    writer.join().unwrap();
}
