//! The property test on a real store: the writer and the store together must agree
//! with the reference model on every code, balance and committed transfer.

use mizan_core::Clock;
use mizan_ledger::model::Model;
use mizan_ledger::strategies::{assert_same_transfer, batches, ACCOUNT_IDS};
use mizan_ledger::Submission;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::fixture::{account_id, Backend, Fixture};

pub fn store_matches_reference_model(backend: Backend) {
    let cases = std::env::var("MIZAN_STORE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&batches(), |batches| {
            let fixture = Fixture::new(backend);
            let running = fixture.start();
            let mut model = Model::default();
            for batch in &batches {
                fixture.clock.advance_seconds(batch.advance_seconds);
                if batch
                    .submissions
                    .iter()
                    .all(|s| s.accounts.is_empty() && s.transfers.is_empty())
                {
                    continue;
                }
                // One submission at a time, so the writer's batch time is known: the
                // first event's timestamp is max(clock, last + 1), as in the model.
                for submission in &batch.submissions {
                    if submission.accounts.is_empty() && submission.transfers.is_empty() {
                        continue;
                    }
                    let result = running.submit(Submission {
                        accounts: submission.accounts.clone(),
                        transfers: submission.transfers.clone(),
                        atomic: submission.atomic,
                        ..Submission::default()
                    });
                    let now = model.batch_now(fixture.clock.now_ns());
                    model.begin_batch();
                    model.expire(now);
                    let (accounts, transfers) = model.submit(
                        &submission.accounts,
                        &submission.transfers,
                        submission.atomic,
                        now,
                    );
                    model.end_batch();
                    prop_assert_eq!(&result.accounts, &accounts);
                    let codes: Vec<_> = result.transfers.iter().map(|t| t.result).collect();
                    prop_assert_eq!(&codes, &transfers);
                }
            }
            running.stop();
            let mut reader = fixture.reader();
            let mut committed = Vec::new();
            reader
                .scan_transfers(&mut |t| {
                    committed.push(*t);
                    Ok(true)
                })
                .expect("scan");
            prop_assert_eq!(committed.len(), model.transfers.len());
            for (stored, expected) in committed.iter().zip(&model.transfers) {
                assert_same_transfer(stored, expected);
            }
            for id in 1..=ACCOUNT_IDS {
                if let Some(account) = reader
                    .accounts(&[account_id(id)])
                    .expect("accounts")
                    .first()
                {
                    prop_assert_eq!(account.balances(), model.balances(id));
                    prop_assert_eq!(Some(account.flags), model.account_flags(id));
                }
            }
            for id in 1..=ACCOUNT_IDS {
                let expected: Vec<u64> = committed
                    .iter()
                    .filter(|t| t.debit_account_id.get() == id || t.credit_account_id.get() == id)
                    .map(|t| t.timestamp)
                    .collect();
                prop_assert_eq!(
                    history_timestamps(&mut *reader, id, false),
                    expected.clone()
                );
                let mut newest_first = expected;
                newest_first.reverse();
                prop_assert_eq!(history_timestamps(&mut *reader, id, true), newest_first);
            }
            mizan_ledger::verify::verify(&mut *reader).expect("verify");
            Ok(())
        })
        .expect("store agrees with the model");
}

/// Every timestamp of the account's history, read in pages of three.
fn history_timestamps(
    reader: &mut dyn mizan_ledger::LedgerReader,
    account: u128,
    newest_first: bool,
) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let filter = mizan_ledger::HistoryFilter {
            limit: 3,
            after_timestamp: cursor,
            newest_first,
            ..Default::default()
        };
        let page = reader
            .account_history(account_id(account), &filter)
            .expect("history");
        seen.extend(page.transfers.iter().map(|t| t.timestamp));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return seen,
        }
    }
}
