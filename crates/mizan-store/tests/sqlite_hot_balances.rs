//! Busy accounts on SQLite: between two flushes of the accounts table the writer
//! keeps a snapshot of each account that took many transfers (`hot_balances`), a
//! read starts from it, and `verify` holds it to the transfers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use mizan_core::{AccountId, Clock, ManualClock, SystemClock, TransferId};
use mizan_ledger::{
    AccountCode, AccountFlags, LedgerReader, NewAccount, Submission, TransferRequest, WriterConfig,
};
use mizan_store::sqlite::{BalanceFlush, SqliteConfig};
use mizan_store::{SqliteReader, SqliteStore};

const USD: u32 = 840;

#[test]
fn a_busy_account_reads_from_its_snapshot_and_verify_checks_it() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.sqlite");
    let config = SqliteConfig {
        balance_flush: BalanceFlush {
            every_transfers: 1_000_000,
            every_ms: 3_600_000,
            snapshot_entries: 100,
        },
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open_with(&path, config).unwrap();
    let clock = ManualClock::new(SystemClock.now_ns());
    let (ledger, writer) =
        mizan_ledger::Ledger::start(store, Arc::new(clock), WriterConfig::default()).unwrap();
    let (fans, star) = (AccountId::from_raw(1), AccountId::from_raw(2));
    let accounts = [fans, star].map(|id| NewAccount {
        id,
        ledger: USD,
        code: AccountCode::Operating,
        owner: 7,
        flags: AccountFlags::NONE,
    });
    assert!(ledger
        .submit_blocking(Submission::accounts(accounts.to_vec()))
        .unwrap()
        .all_ok());
    // 1,050 tips of 1 in batches of 50: ten snapshots of the star, then 50 more.
    let mut middle = 0;
    for batch in 0..21_u128 {
        let tips = (0..50)
            .map(|n| {
                let id = TransferId::from_raw(1_000 + batch * 50 + n);
                TransferRequest::single(id, fans, star, 1, USD, 1)
            })
            .collect();
        let result = ledger.submit_blocking(Submission::transfers(tips)).unwrap();
        assert!(result.all_ok());
        if batch == 10 {
            middle = result.transfers[49].transfer.unwrap().timestamp;
        }
    }
    drop(ledger);
    writer.join().unwrap();

    let mut reader = SqliteReader::open(&path).unwrap();
    let read = |reader: &mut SqliteReader| reader.accounts(&[star]).unwrap()[0];
    assert_eq!(read(&mut reader).credits_posted, 1_050);
    assert_eq!(
        reader.balances_at(star, middle).unwrap().credits_posted,
        550
    );
    assert_eq!(
        mizan_ledger::verify::verify(&mut reader).unwrap().transfers,
        1_050
    );

    // The clean shutdown flushed every balance: the snapshot is now older than the
    // flush and ignored. Make it newer again, and wrong, as a tamperer would.
    let connection = rusqlite::Connection::open(&path).unwrap();
    let star_key = star.get().to_be_bytes().to_vec();
    let snapshot: i64 = connection
        .query_row(
            "SELECT credits_posted FROM hot_balances WHERE account_id = ?1",
            [star_key.clone()],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(snapshot, 1_000, "taken at the 1,000th transfer, every 100");
    let changed = connection
        .execute(
            "UPDATE hot_balances SET credits_posted = credits_posted + 5, \
             as_of = (SELECT last_timestamp FROM ledger_head) + 1 WHERE account_id = ?1",
            [star_key],
        )
        .unwrap();
    assert_eq!(changed, 1, "the star's snapshot");
    // A read starts from the snapshot (so it shows the edit) and verify refuses it.
    assert_eq!(read(&mut reader).credits_posted, 1_000 + 5);
    let refused = mizan_ledger::verify::verify(&mut reader).unwrap_err();
    assert!(refused.to_string().contains("hot balance"), "{refused}");
}
