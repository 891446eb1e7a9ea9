//! A SQLite ledger appears whole: it is migrated beside its path and renamed into
//! place, so a process killed while creating it leaves no half-made ledger.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use mizan_ledger::LedgerReader;
use mizan_store::{SqliteReader, SqliteStore};

#[test]
fn a_half_created_ledger_is_started_over() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.sqlite");
    // What a kill in the middle of creating leaves: the file being migrated.
    std::fs::write(
        directory.path().join("ledger.sqlite.creating"),
        b"not a database",
    )
    .unwrap();
    std::fs::write(directory.path().join("ledger.sqlite.creating-wal"), b"junk").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let mut reader = SqliteReader::open(&path).unwrap();
    assert_eq!(reader.chain_head().unwrap().transfers_count, 0);
    assert!(!directory.path().join("ledger.sqlite.creating").exists());
    assert!(!directory.path().join("ledger.sqlite.creating-wal").exists());
    drop((reader, store));
    // Opening an existing ledger keeps it.
    let _store = SqliteStore::open(&path).unwrap();
    assert!(path.exists());
}
