//! Ledger behaviour every store must show identically.

use std::sync::Arc;

use mizan_core::TransferId;
use mizan_ledger::store::HistoryFilter;
use mizan_ledger::verify::verify;
use mizan_ledger::{
    Account, BusinessRow, CreateAccountResult, LedgerReader, PendingStatus, Submission,
    TransferFlags, TransferRequest,
};

use crate::fixture::*;

fn balances(reader: &mut dyn LedgerReader, id: u128) -> Account {
    reader.accounts(&[account_id(id)]).expect("accounts")[0]
}

/// Everything a test can observe about the store, to prove an operation changed nothing.
fn snapshot(
    fixture: &Fixture,
) -> (
    Vec<Account>,
    mizan_ledger::ChainHead,
    Vec<mizan_ledger::Transfer>,
) {
    let mut reader = fixture.reader();
    let accounts = reader.all_accounts().expect("accounts");
    let head = reader.chain_head().expect("head");
    let mut transfers = Vec::new();
    reader
        .scan_transfers(&mut |t| {
            transfers.push(*t);
            Ok(true)
        })
        .expect("scan");
    (accounts, head, transfers)
}

fn setup(fixture: &Fixture) -> Running {
    let running = fixture.start();
    let result = running.submit(Submission::accounts(vec![
        clearing(1),
        wallet(2),
        wallet(3),
    ]));
    assert!(result.all_ok(), "{result:?}");
    assert_eq!(running.transfers(vec![transfer(1, 1, 2, 10_000)]), ["ok"]);
    running
}

pub fn accounts_are_created_once(fixture: &Fixture) {
    let running = fixture.start();
    let mut other_owner = wallet(2);
    other_owner.owner = 99;
    let mut both_limits = wallet(4);
    both_limits.flags =
        both_limits.flags | mizan_ledger::AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
    let mut bad_ledger = wallet(5);
    bad_ledger.ledger = 1;
    let result = running.submit(Submission::accounts(vec![
        wallet(2),
        wallet(2),
        other_owner,
        both_limits,
        bad_ledger,
    ]));
    assert_eq!(
        result.accounts,
        [
            CreateAccountResult::Ok,
            CreateAccountResult::Exists,
            CreateAccountResult::ExistsWithDifferentOwner,
            CreateAccountResult::FlagsAreMutuallyExclusive,
            CreateAccountResult::LedgerMustBeACurrency
        ]
    );
    running.stop();
    let running = fixture.start();
    let again = running.submit(Submission::accounts(vec![wallet(2)]));
    assert_eq!(again.accounts, [CreateAccountResult::Exists]);
    let mut reader = fixture.reader();
    assert_eq!(reader.all_accounts().expect("accounts").len(), 1);
    running.stop();
}

pub fn transfers_are_exactly_once_across_restarts(fixture: &Fixture) {
    let running = setup(fixture);
    assert_eq!(running.transfers(vec![transfer(2, 2, 3, 2_500)]), ["ok"]);
    running.stop();
    let running = fixture.start();
    let mut different = transfer(2, 2, 3, 2_600);
    assert_eq!(
        running.transfers(vec![transfer(2, 2, 3, 2_500)]),
        ["exists"]
    );
    assert_eq!(
        running.transfers(vec![different]),
        ["exists_with_different_amount"]
    );
    different.amount = 2_500;
    different.credit_account_id = account_id(1);
    assert_eq!(
        running.transfers(vec![different]),
        ["exists_with_different_credit_account_id"]
    );
    let mut reader = fixture.reader();
    assert_eq!(balances(&mut *reader, 2).balance_posted(), 7_500);
    assert_eq!(balances(&mut *reader, 3).balance_posted(), 2_500);
    assert_eq!(reader.chain_head().expect("head").transfers_count, 2);
    running.stop();
}

pub fn two_phase_transfers_post_and_void(fixture: &Fixture) {
    let running = setup(fixture);
    let hold = transfer(10, 2, 3, 4_000).with_flags(TransferFlags::PENDING);
    let second_hold = transfer(11, 2, 3, 3_000).with_flags(TransferFlags::PENDING);
    assert_eq!(running.transfers(vec![hold, second_hold]), ["ok", "ok"]);
    let mut reader = fixture.reader();
    let payer = balances(&mut *reader, 2);
    assert_eq!(
        (payer.debits_pending, payer.balance_available()),
        (7_000, 3_000)
    );
    // The wallet can't be overdrawn by a third hold.
    assert_eq!(
        running.transfers(vec![
            transfer(12, 2, 3, 3_001).with_flags(TransferFlags::PENDING)
        ]),
        ["exceeds_credits"]
    );
    let post = TransferRequest::resolve(transfer_id(13), transfer_id(10), true, 2_500);
    let void = TransferRequest::resolve(transfer_id(14), transfer_id(11), false, 0);
    assert_eq!(running.transfers(vec![post, void]), ["ok", "ok"]);
    let again = TransferRequest::resolve(transfer_id(15), transfer_id(10), false, 0);
    let post_voided = TransferRequest::resolve(transfer_id(16), transfer_id(11), true, 0);
    let missing = TransferRequest::resolve(transfer_id(17), transfer_id(999), true, 0);
    let too_much = TransferRequest::resolve(transfer_id(18), transfer_id(10), true, 4_001);
    assert_eq!(
        running.transfers(vec![again, post_voided, missing, too_much]),
        [
            "pending_transfer_already_posted",
            "pending_transfer_already_voided",
            "pending_transfer_not_found",
            "exceeds_pending_transfer_amount"
        ]
    );
    let payer = balances(&mut *reader, 2);
    let payee = balances(&mut *reader, 3);
    assert_eq!((payer.debits_pending, payer.debits_posted), (0, 2_500));
    assert_eq!((payee.credits_pending, payee.credits_posted), (0, 2_500));
    assert_eq!(
        reader.pending_status(transfer_id(10)).expect("status"),
        Some(PendingStatus::Posted)
    );
    assert_eq!(
        reader.pending_status(transfer_id(11)).expect("status"),
        Some(PendingStatus::Voided)
    );
    running.stop();
}

pub fn pending_timeouts_expire_even_after_downtime(fixture: &Fixture) {
    let running = setup(fixture);
    let hold = transfer(20, 2, 3, 6_000)
        .with_flags(TransferFlags::PENDING)
        .with_timeout(60);
    assert_eq!(running.transfers(vec![hold]), ["ok"]);
    running.stop();
    // The service is down when the deadline passes.
    fixture.clock.advance_seconds(61);
    let running = fixture.start();
    let post = TransferRequest::resolve(transfer_id(21), transfer_id(20), true, 0);
    assert_eq!(running.transfers(vec![post]), ["pending_transfer_expired"]);
    let mut reader = fixture.reader();
    assert_eq!(
        reader.pending_status(transfer_id(20)).expect("status"),
        Some(PendingStatus::Expired)
    );
    let payer = balances(&mut *reader, 2);
    assert_eq!(
        (payer.debits_pending, payer.balance_available()),
        (0, 10_000)
    );
    let history = reader
        .account_history(
            account_id(2),
            &HistoryFilter {
                limit: 10,
                ..HistoryFilter::default()
            },
        )
        .expect("history");
    let last = history.transfers.last().expect("expiry record");
    assert!(last.is_expiry() && last.pending_id == transfer_id(20) && last.id.is_zero());
    // An idle writer expires holds by itself, without any submission.
    let hold = transfer(22, 2, 3, 1_000)
        .with_flags(TransferFlags::PENDING)
        .with_timeout(1);
    assert_eq!(running.transfers(vec![hold]), ["ok"]);
    fixture.clock.advance_seconds(2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while reader.pending_status(transfer_id(22)).expect("status") != Some(PendingStatus::Expired) {
        assert!(
            std::time::Instant::now() < deadline,
            "idle writer did not expire the hold"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    verify(&mut *reader).expect("verify");
    running.stop();
}

pub fn linked_chains_are_all_or_nothing(fixture: &Fixture) {
    let running = setup(fixture);
    let before = snapshot(fixture);
    // payment + fee + tax, where the tax leg would overdraw: nothing moves.
    let chain = vec![
        transfer(30, 2, 3, 5_000).with_flags(TransferFlags::LINKED),
        transfer(31, 2, 1, 500).with_flags(TransferFlags::LINKED),
        transfer(32, 2, 1, 5_000),
    ];
    assert_eq!(
        running.transfers(chain),
        [
            "linked_event_failed",
            "linked_event_failed",
            "exceeds_credits"
        ]
    );
    let open = vec![
        transfer(33, 2, 3, 1).with_flags(TransferFlags::LINKED),
        transfer(34, 2, 3, 1).with_flags(TransferFlags::LINKED),
    ];
    assert_eq!(
        running.transfers(open),
        ["linked_event_failed", "linked_event_chain_open"]
    );
    assert_eq!(snapshot(fixture), before);
    let chain = vec![
        transfer(30, 2, 3, 5_000).with_flags(TransferFlags::LINKED),
        transfer(31, 2, 1, 500).with_flags(TransferFlags::LINKED),
        transfer(32, 2, 1, 50),
    ];
    assert_eq!(running.transfers(chain), ["ok", "ok", "ok"]);
    let mut reader = fixture.reader();
    assert_eq!(balances(&mut *reader, 2).balance_posted(), 10_000 - 5_550);
    running.stop();
}

pub fn bad_input_gets_its_code_and_changes_nothing(fixture: &Fixture) {
    let running = setup(fixture);
    let before = snapshot(fixture);
    let mut wrong_ledger = transfer(44, 2, 3, 1);
    wrong_ledger.ledger = 978;
    let mut zero_id = transfer(45, 2, 3, 1);
    zero_id.id = TransferId::from_raw(0);
    let codes = running.transfers(vec![
        transfer(40, 2, 3, 0),
        transfer(41, 2, 3, -5),
        transfer(42, 2, 77, 1),
        transfer(43, 2, 2, 1),
        wrong_ledger,
        zero_id,
        transfer(46, 1, 3, i64::MAX),
        transfer(47, 2, 3, 10_001),
    ]);
    assert_eq!(
        codes,
        [
            "amount_must_not_be_zero",
            "amount_must_not_be_negative",
            "credit_account_not_found",
            "accounts_must_be_different",
            "ledger_must_match",
            "id_must_not_be_zero",
            "overflows_debits_posted",
            "exceeds_credits"
        ]
    );
    assert_eq!(snapshot(fixture), before);
    // A duplicate id inside one batch: the first commits, the second is a replay.
    assert_eq!(
        running.transfers(vec![
            transfer(48, 2, 3, 1),
            transfer(48, 2, 3, 1),
            transfer(48, 2, 3, 2)
        ]),
        ["ok", "exists", "exists_with_different_amount"]
    );
    // A batch over the limit is refused whole.
    let after_duplicate = snapshot(fixture);
    let huge: Vec<TransferRequest> = (0..mizan_ledger::BATCH_EVENTS_MAX as u128 + 1)
        .map(|i| transfer(1_000 + i, 1, 3, 1))
        .collect();
    let error = running
        .ledger
        .submit_blocking(Submission::transfers(huge))
        .expect_err("too large");
    assert_eq!(error.code(), "batch_too_large");
    let error = running
        .ledger
        .submit_blocking(Submission::default())
        .expect_err("empty");
    assert_eq!(error.code(), "empty_submission");
    assert_eq!(snapshot(fixture), after_duplicate);
    running.stop();
}

pub fn business_rows_commit_if_and_only_if_transfers_do(fixture: &Fixture) {
    let running = setup(fixture);
    let rows = |key: &str| {
        vec![
            BusinessRow::Document {
                collection: "payments".into(),
                key: key.into(),
                body: b"{\"state\":\"paid\"}".to_vec(),
            },
            BusinessRow::Outbox {
                topic: "payment.succeeded".into(),
                payload: key.as_bytes().to_vec(),
            },
        ]
    };
    let failing = Submission {
        transfers: vec![transfer(50, 2, 3, 100), transfer(51, 2, 3, 1_000_000)],
        rows: rows("failed-payment"),
        ..Submission::default()
    };
    let result = running.submit(failing);
    assert_eq!(
        result
            .transfers
            .iter()
            .map(|t| t.result.as_str())
            .collect::<Vec<_>>(),
        ["linked_event_failed", "exceeds_credits"]
    );
    let paying = Submission {
        transfers: vec![transfer(52, 2, 3, 100)],
        rows: rows("good-payment"),
        ..Submission::default()
    };
    assert!(running.submit(paying.clone()).all_ok());
    // The replay changes nothing and writes no second outbox event.
    assert!(running.submit(paying).all_exist());
    let mut reader = fixture.reader();
    assert_eq!(
        reader
            .document("payments", "failed-payment")
            .expect("document"),
        None
    );
    assert_eq!(
        reader
            .document("payments", "good-payment")
            .expect("document"),
        Some(b"{\"state\":\"paid\"}".to_vec())
    );
    let events = reader.outbox(0, 100).expect("outbox");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].1.as_str(), events[0].2.as_slice()),
        ("payment.succeeded", b"good-payment".as_slice())
    );
    assert_eq!(balances(&mut *reader, 3).balance_posted(), 100);
    running.stop();
}

pub fn history_pages_and_past_balances(fixture: &Fixture) {
    let running = setup(fixture);
    let mut timestamps = Vec::new();
    for i in 0..25_u128 {
        fixture.clock.advance_seconds(1);
        let code = if i % 5 == 0 { 7 } else { 1 };
        let mut request = transfer(100 + i, 2, 3, 10);
        request.code = code;
        let result = running.submit(Submission::transfers(vec![request]));
        timestamps.push(result.transfers[0].transfer.expect("committed").timestamp);
    }
    let mut reader = fixture.reader();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = reader
            .account_history(
                account_id(3),
                &HistoryFilter {
                    limit: 10,
                    after_timestamp: cursor,
                    ..HistoryFilter::default()
                },
            )
            .expect("page");
        seen.extend(page.transfers.iter().map(|t| t.timestamp));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, timestamps);
    let newest = reader
        .account_history(
            account_id(2),
            &HistoryFilter {
                limit: 3,
                newest_first: true,
                ..HistoryFilter::default()
            },
        )
        .expect("page");
    assert_eq!(
        newest
            .transfers
            .iter()
            .map(|t| t.timestamp)
            .collect::<Vec<_>>(),
        timestamps[22..].iter().rev().copied().collect::<Vec<_>>()
    );
    let coded = reader
        .account_history(
            account_id(3),
            &HistoryFilter {
                limit: 100,
                code: Some(7),
                from_timestamp: Some(timestamps[1]),
                to_timestamp: Some(timestamps[20]),
                ..HistoryFilter::default()
            },
        )
        .expect("page");
    assert_eq!(
        coded
            .transfers
            .iter()
            .map(|t| t.timestamp)
            .collect::<Vec<_>>(),
        vec![
            timestamps[5],
            timestamps[10],
            timestamps[15],
            timestamps[20]
        ]
    );
    let past = reader
        .balances_at(account_id(3), timestamps[9])
        .expect("balances at");
    assert_eq!(past.credits_posted, 100);
    // At (or after) the newest transfer the answer is the account's current balances.
    let now = reader
        .balances_at(account_id(3), *timestamps.last().expect("timestamps"))
        .expect("balances at");
    assert_eq!(now, balances(&mut *reader, 3).balances());
    assert_eq!(
        reader
            .balances_at(account_id(3), i64::MAX as u64)
            .expect("balances at"),
        now
    );
    assert_eq!(now.credits_posted, 250);
    let before_anything = reader.balances_at(account_id(3), 1).expect("balances at");
    assert_eq!(before_anything, mizan_ledger::Balances::default());
    let bad = reader.account_history(
        account_id(3),
        &HistoryFilter {
            limit: 0,
            ..HistoryFilter::default()
        },
    );
    assert!(bad.is_err());
    running.stop();
}

pub fn verify_passes_then_detects_tampering(fixture: &Fixture) {
    let running = setup(fixture);
    for i in 0..20 {
        assert_eq!(running.transfers(vec![transfer(200 + i, 2, 3, 7)]), ["ok"]);
    }
    running.stop();
    let report = verify(&mut *fixture.reader()).expect("verify");
    assert_eq!(report.transfers, 21);
    assert_eq!(
        report.ledgers[&USD].debits_posted,
        report.ledgers[&USD].credits_posted
    );
    // Someone edits one amount directly in the database.
    fixture.execute(&format!(
        "UPDATE transfers SET amount = 8 WHERE id = {}",
        fixture.id_literal(205)
    ));
    let error = verify(&mut *fixture.reader()).expect_err("tampering must be found");
    let text = error.to_string();
    assert!(
        text.contains(&format!("{:032x}", 205)) && text.contains("hash"),
        "{text}"
    );
    // Restore the row but move money in the balances table instead.
    fixture.execute(&format!(
        "UPDATE transfers SET amount = 7 WHERE id = {}",
        fixture.id_literal(205)
    ));
    verify(&mut *fixture.reader()).expect("restored");
    fixture.execute(&format!(
        "UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = {}",
        fixture.id_literal(3)
    ));
    let error = verify(&mut *fixture.reader()).expect_err("balance edit must be found");
    assert!(
        error.to_string().contains(&format!("{:032x}", 3)),
        "{error}"
    );
}

pub fn concurrent_overdraft_race_never_overdraws(fixture: &Fixture) {
    let running = setup(fixture);
    let second = fixture.start_second_writer();
    let ledgers: Vec<mizan_ledger::Ledger> = std::iter::once(running.ledger.clone())
        .chain(second.as_ref().map(|s| s.ledger.clone()))
        .collect();
    let successes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (0..16_u128)
        .map(|thread| {
            let ledger = ledgers[thread as usize % ledgers.len()].clone();
            let successes = successes.clone();
            std::thread::spawn(move || {
                for i in 0..20_u128 {
                    // Each tries to spend 100 of the wallet's 10,000; only 100 can succeed.
                    let result = ledger
                        .submit_blocking(Submission::transfers(vec![transfer(
                            10_000 + thread * 100 + i,
                            2,
                            3,
                            100,
                        )]))
                        .expect("submit");
                    match result.transfers[0].result.as_str() {
                        "ok" => {
                            successes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        "exceeds_credits" => {}
                        other => panic!("unexpected {other}"),
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    drop(ledgers);
    let mut reader = fixture.reader();
    let payer = balances(&mut *reader, 2);
    assert_eq!(successes.load(std::sync::atomic::Ordering::SeqCst), 100);
    assert_eq!(
        (payer.credits_posted, payer.debits_posted),
        (10_000, 10_000)
    );
    if let Some(second) = second {
        second.stop();
    }
    running.stop();
    verify(&mut *fixture.reader()).expect("verify");
}

pub fn balancing_and_closing_transfers(fixture: &Fixture) {
    let running = setup(fixture);
    // Sweep "everything available" from wallet 2 into wallet 3, with a hold outstanding.
    let hold = transfer(60, 2, 3, 1_000).with_flags(TransferFlags::PENDING);
    let sweep = transfer(61, 2, 3, i64::MAX).with_flags(TransferFlags::BALANCING_DEBIT);
    let results = running.submit(Submission::transfers(vec![hold, sweep]));
    assert_eq!(
        results.transfers[1].transfer.expect("committed").amount,
        9_000
    );
    // Close wallet 3 with a closing hold: nothing may touch it, until the hold is voided.
    let close = TransferRequest {
        amount: 0,
        ..transfer(62, 3, 1, 0)
    }
    .with_flags(TransferFlags::PENDING | TransferFlags::CLOSING_DEBIT);
    assert_eq!(
        running.transfers(vec![close, transfer(63, 1, 3, 5)]),
        ["ok", "account_closed"]
    );
    let mut reader = fixture.reader();
    assert!(balances(&mut *reader, 3)
        .flags
        .contains(mizan_ledger::AccountFlags::CLOSED));
    let reopen = TransferRequest::resolve(transfer_id(64), transfer_id(62), false, 0);
    assert_eq!(
        running.transfers(vec![reopen, transfer(65, 1, 3, 5)]),
        ["ok", "ok"]
    );
    assert!(!balances(&mut *reader, 3)
        .flags
        .contains(mizan_ledger::AccountFlags::CLOSED));
    running.stop();
    verify(&mut *fixture.reader()).expect("verify");
}

pub fn verify_sees_one_snapshot_of_a_live_ledger(fixture: &Fixture) {
    let running = setup(fixture);
    let ledger = running.ledger.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut id = 100_000_u128;
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            let batch = (0..20).map(|i| transfer(id + i, 1, 3, 1)).collect();
            ledger
                .submit_blocking(Submission::transfers(batch))
                .expect("submit");
            id += 20;
        }
    });
    let mut reader = fixture.reader();
    for _ in 0..8 {
        verify(&mut *reader).expect("a live ledger verifies as of one moment");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().expect("writer thread");
    running.stop();
}

fn create(collection: &str, key: &str) -> BusinessRow {
    BusinessRow::Create {
        collection: collection.into(),
        key: key.into(),
        body: key.as_bytes().to_vec(),
    }
}

pub fn created_documents_are_claimed_exactly_once(fixture: &Fixture) {
    let running = setup(fixture);
    let paid = Submission {
        transfers: vec![transfer(70, 2, 3, 100)],
        rows: vec![
            create("idempotency", "k1"),
            BusinessRow::Outbox {
                topic: "payment.succeeded".into(),
                payload: b"k1".to_vec(),
            },
        ],
        ..Submission::default()
    };
    assert!(running.submit(paid).all_ok());
    // Another payment under the same key: nothing of it is applied.
    let again = Submission {
        transfers: vec![transfer(71, 2, 3, 100)],
        rows: vec![create("idempotency", "k1")],
        ..Submission::default()
    };
    let result = running.submit(again);
    assert_eq!(
        result.row_conflict,
        Some(("idempotency".into(), "k1".into()))
    );
    assert_eq!(result.transfers[0].result.as_str(), "linked_event_failed");
    // A submission naming one key twice conflicts with itself.
    let twice = Submission {
        rows: vec![create("handles", "amina"), create("handles", "amina")],
        ..Submission::default()
    };
    assert_eq!(
        running.submit(twice).row_conflict,
        Some(("handles".into(), "amina".into()))
    );
    // Forty racing requests with one key, spread over every writer: exactly one pays.
    let second = fixture.start_second_writer();
    let ledgers: Vec<mizan_ledger::Ledger> = std::iter::once(running.ledger.clone())
        .chain(second.as_ref().map(|s| s.ledger.clone()))
        .collect();
    let threads: Vec<_> = (0..40_u128)
        .map(|i| {
            let ledger = ledgers[i as usize % ledgers.len()].clone();
            std::thread::spawn(move || {
                let submission = Submission {
                    transfers: vec![transfer(500 + i, 2, 3, 10)],
                    rows: vec![create("idempotency", "race")],
                    ..Submission::default()
                };
                ledger.submit_blocking(submission).expect("submit").all_ok()
            })
        })
        .collect();
    let winners = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(winners, 1);
    drop(ledgers);
    let mut reader = fixture.reader();
    assert_eq!(balances(&mut *reader, 3).balance_posted(), 100 + 10);
    assert_eq!(reader.outbox(0, 10).expect("outbox").len(), 1);
    assert!(reader
        .document("handles", "amina")
        .expect("document")
        .is_none());
    if let Some(second) = second {
        second.stop();
    }
    running.stop();
}

pub fn documents_are_listed_by_key_prefix(fixture: &Fixture) {
    let running = fixture.start();
    let rows = [
        "handle:bilal",
        "handle:amina",
        "email:amina@example.com",
        "handlebar",
        "handle:chen",
    ]
    .iter()
    .map(|key| create("people", key))
    .chain(std::iter::once(create("other", "handle:zed")))
    .collect();
    assert!(running
        .submit(Submission {
            rows,
            ..Submission::default()
        })
        .all_ok());
    let mut reader = fixture.reader();
    let keys =
        |page: Vec<(String, Vec<u8>)>| page.into_iter().map(|(key, _)| key).collect::<Vec<_>>();
    let all = reader
        .documents_with_prefix("people", "handle:", None, 10)
        .expect("prefix");
    assert_eq!(keys(all), ["handle:amina", "handle:bilal", "handle:chen"]);
    let first = reader
        .documents_with_prefix("people", "handle:", None, 2)
        .expect("prefix");
    assert_eq!(keys(first), ["handle:amina", "handle:bilal"]);
    let rest = reader
        .documents_with_prefix("people", "handle:", Some("handle:bilal"), 2)
        .expect("prefix");
    assert_eq!(keys(rest), ["handle:chen"]);
    assert_eq!(
        reader
            .documents_with_prefix("people", "", None, 10)
            .expect("prefix")
            .len(),
        5
    );
    assert!(reader
        .documents_with_prefix("people", "handle:", None, 0)
        .is_err());
    running.stop();
}

fn delete(collection: &str, key: &str) -> BusinessRow {
    BusinessRow::Delete {
        collection: collection.into(),
        key: key.into(),
    }
}

fn rows_only(rows: Vec<BusinessRow>) -> Submission {
    Submission {
        rows,
        ..Submission::default()
    }
}

pub fn documents_are_deleted_in_row_order(fixture: &Fixture) {
    let running = fixture.start();
    let seeded = vec![
        create("idempotency", "old"),
        create("idempotency", "kept"),
        create("other", "old"),
    ];
    assert!(running.submit(rows_only(seeded)).all_ok());
    // Deleting a key removes only that (collection, key); a missing key is no error.
    let removed = vec![delete("idempotency", "old"), delete("idempotency", "never")];
    assert!(running.submit(rows_only(removed)).all_ok());
    // In one submission the last row of a key wins: written after its delete, it stays;
    // deleted after its write, it is gone.
    let reordered = vec![
        delete("idempotency", "kept"),
        create("idempotency", "again"),
        BusinessRow::Document {
            collection: "idempotency".into(),
            key: "kept".into(),
            body: b"rewritten".to_vec(),
        },
        delete("idempotency", "again"),
    ];
    assert!(running.submit(rows_only(reordered)).all_ok());
    let mut reader = fixture.reader();
    let document = |reader: &mut dyn LedgerReader, collection: &str, key: &str| {
        reader.document(collection, key).expect("document")
    };
    assert_eq!(document(&mut *reader, "idempotency", "old"), None);
    assert_eq!(document(&mut *reader, "idempotency", "again"), None);
    assert_eq!(
        document(&mut *reader, "idempotency", "kept").as_deref(),
        Some(&b"rewritten"[..])
    );
    assert_eq!(
        document(&mut *reader, "other", "old").as_deref(),
        Some(&b"old"[..])
    );
    // A deleted key can be claimed again by a later `Create`.
    assert!(running
        .submit(rows_only(vec![create("idempotency", "old")]))
        .all_ok());
    assert!(document(&mut *reader, "idempotency", "old").is_some());
    running.stop();
}

/// The result codes of a submission's ensured transfers, then of its own transfers.
fn ensured_and_own(result: &mizan_ledger::SubmissionResult) -> (Vec<&str>, Vec<&str>) {
    let codes = |results: &[mizan_ledger::TransferResult]| {
        results.iter().map(|t| t.result.as_str()).collect()
    };
    (codes(&result.ensured_transfers), codes(&result.transfers))
}

pub fn ensured_events_are_created_once_and_never_fail_a_submission(fixture: &Fixture) {
    let running = setup(fixture);
    // An allowance-like account (never overdrawn) credited by a grant, and a movement
    // that draws on it: the shape of every movement under a limit.
    let movement = |id: u128, amount: i64, grant_amount: i64, allowance: u128| Submission {
        ensure: mizan_ledger::Ensure {
            accounts: vec![wallet(allowance)],
            transfers: vec![transfer(allowance * 100, 1, allowance, grant_amount)],
        },
        transfers: vec![
            transfer(id, 2, 3, amount),
            transfer(id + 1, allowance, 1, amount),
        ],
        rows: vec![create("movements", &id.to_string())],
        ..Submission::default()
    };
    let first = running.submit(movement(60, 100, 500, 4));
    assert!(first.all_ok(), "{first:?}");
    assert_eq!(first.ensured_accounts, [CreateAccountResult::Ok]);
    assert_eq!(ensured_and_own(&first), (vec!["ok"], vec!["ok", "ok"]));
    // Ensured again, even with another amount: what exists stands, and the movement
    // goes through.
    let second = running.submit(movement(62, 100, 700, 4));
    assert!(second.all_ok(), "{second:?}");
    assert_eq!(second.ensured_accounts, [CreateAccountResult::Exists]);
    assert_eq!(
        ensured_and_own(&second),
        (vec!["exists_with_different_amount"], vec!["ok", "ok"])
    );
    // 300 of the 500 granted is left: a movement of 400 fails as a whole.
    let before = snapshot(fixture);
    let third = running.submit(movement(64, 400, 500, 4));
    assert!(!third.all_ok());
    assert_eq!(
        ensured_and_own(&third),
        (
            vec!["exists"],
            vec!["linked_event_failed", "exceeds_credits"]
        )
    );
    assert_eq!(snapshot(fixture), before);
    // A new allowance ensured by a movement that fails is not created either.
    let fourth = running.submit(movement(66, 100, 50, 5));
    assert_eq!(
        fourth.ensured_accounts,
        [CreateAccountResult::LinkedEventFailed]
    );
    assert_eq!(
        ensured_and_own(&fourth),
        (
            vec!["linked_event_failed"],
            vec!["linked_event_failed", "exceeds_credits"]
        )
    );
    assert_eq!(snapshot(fixture), before);
    // An ensured event failing for another reason than its id fails the submission.
    let mut broken = movement(68, 10, 500, 6);
    broken.ensure.transfers[0].debit_account_id = account_id(99);
    let fifth = running.submit(broken);
    assert_eq!(
        fifth.ensured_accounts,
        [CreateAccountResult::LinkedEventFailed]
    );
    assert_eq!(
        ensured_and_own(&fifth),
        (
            vec!["debit_account_not_found"],
            vec!["linked_event_failed", "exceeds_credits"]
        )
    );
    assert_eq!(snapshot(fixture), before);
    let mut reader = fixture.reader();
    let allowance = balances(&mut *reader, 4);
    assert_eq!(
        (allowance.credits_posted, allowance.debits_posted),
        (500, 200)
    );
    assert_eq!(balances(&mut *reader, 3).balance_posted(), 200);
    assert!(reader
        .accounts(&[account_id(5)])
        .expect("accounts")
        .is_empty());
    running.stop();
}
