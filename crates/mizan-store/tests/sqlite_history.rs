//! The SQLite history index is built off the commit path, in segments merged in
//! the background. Queries must give the same answers before, during and after.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::time::{Duration, Instant};

use mizan_core::{AccountId, ManualClock, TransferId};
use mizan_ledger::{
    AccountCode, AccountFlags, HistoryFilter, Ledger, LedgerReader, NewAccount, Submission,
    TransferRequest, WriterConfig,
};
use mizan_store::sqlite::{HistoryConfig, SqliteConfig};
use mizan_store::{SqliteReader, SqliteStore};

fn history(reader: &mut SqliteReader, account: u128) -> Vec<u64> {
    let filter = HistoryFilter {
        limit: 1_000,
        ..HistoryFilter::default()
    };
    let page = reader
        .account_history(AccountId::new(account).unwrap(), &filter)
        .unwrap();
    assert_eq!(page.next_cursor, None);
    page.transfers.iter().map(|t| t.timestamp).collect()
}

#[test]
fn segments_are_built_merged_and_queried_with_the_tail() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.sqlite");
    let config = HistoryConfig {
        segment_transfers_max: 10,
        segment_transfers_min: 10,
        tail_wait_ms: 60_000,
        merge_fan_in: 4,
        level_max: 2,
        idle_sleep_ms: 1,
    };
    let store = SqliteStore::open_with(
        &path,
        SqliteConfig {
            history: config,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(1_700_000_000_000_000_000));
    let (ledger, writer) = Ledger::start(store, clock, WriterConfig::default()).unwrap();
    let accounts = (1..=3)
        .map(|id| NewAccount {
            id: AccountId::new(id).unwrap(),
            ledger: 840,
            code: AccountCode::Operating,
            owner: 0,
            flags: AccountFlags::NONE,
        })
        .collect();
    ledger
        .submit_blocking(Submission::accounts(accounts))
        .unwrap();
    // 205 transfers: 20 full segments (merged into level 1 and 2) and an unindexed
    // tail of 5, which waits for more because it is below the minimum segment size.
    let mut expected: Vec<u64> = Vec::new();
    for batch in 0..41_u128 {
        let transfers = (0..5)
            .map(|i| {
                let id = batch * 5 + i + 1;
                let (debit, credit) = if id % 2 == 0 { (1, 2) } else { (3, 1) };
                TransferRequest::single(
                    TransferId::new(id).unwrap(),
                    AccountId::new(debit).unwrap(),
                    AccountId::new(credit).unwrap(),
                    1,
                    840,
                    1,
                )
            })
            .collect();
        let result = ledger
            .submit_blocking(Submission::transfers(transfers))
            .unwrap();
        expected.extend(
            result
                .transfers
                .iter()
                .map(|t| t.transfer.unwrap().timestamp),
        );
    }
    let mut reader = SqliteReader::open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let levels = reader.history_segments_per_level().unwrap();
        let indexed = reader.history_indexed_until().unwrap();
        if indexed == expected[199]
            && levels.iter().any(|(level, _)| *level == 2)
            && !levels
                .iter()
                .any(|(level, count)| *level < 2 && *count >= 4)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "indexer did not catch up: {levels:?}, indexed until {indexed}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Account 1 is in every transfer; account 2 in the even ones, 3 in the odd ones.
    assert_eq!(history(&mut reader, 1), expected);
    let evens: Vec<u64> = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % 2 == 0)
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(history(&mut reader, 2), evens);
    let newest = reader
        .account_history(
            AccountId::new(1).unwrap(),
            &HistoryFilter {
                limit: 7,
                newest_first: true,
                ..HistoryFilter::default()
            },
        )
        .unwrap();
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(
        newest
            .transfers
            .iter()
            .map(|t| t.timestamp)
            .collect::<Vec<_>>(),
        reversed[..7]
    );
    let balances = reader
        .balances_at(AccountId::new(1).unwrap(), expected[99])
        .unwrap();
    assert_eq!((balances.credits_posted, balances.debits_posted), (50, 50));
    drop(ledger);
    writer.join().unwrap();
    // Reopening resumes from the watermark and keeps answering the same.
    let store = SqliteStore::open_with(
        &path,
        SqliteConfig {
            history: config,
            ..SqliteConfig::default()
        },
    )
    .unwrap();
    drop(store);
    assert_eq!(
        history(&mut SqliteReader::open(&path).unwrap(), 1),
        expected
    );
}
