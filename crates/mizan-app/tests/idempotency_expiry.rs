#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Idempotency keys expire after 24 hours: the sweep deletes older claims (a later
//! request with the same key pays or tops up anew, with new ids) and keeps younger
//! ones (a retry replays), and never a top-up still waiting for its challenge. Keys
//! of actions (`mizan_app::actions`) expire the same way.

mod common;

use std::sync::Arc;

use common::sign_up;
use mizan_app::actions::{Action, ActionError, Begun, StoredAnswer};
use mizan_app::funding::{self, CardNumber, CardSource, SandboxProcessor};
use mizan_app::identity::{self, Handle, SharedReader, WALLET_CURRENCY};
use mizan_app::limits::LimitsTable;
use mizan_app::payments::{self, IdempotencyKey, Note, PaymentRequest, IDEMPOTENCY_KEY_TTL_NS};
use mizan_core::{Clock, Money, Secret, SystemClock};
use mizan_ledger::Ledger;

const HOUR_NS: u64 = 3_600 * 1_000_000_000;

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

/// Walks every claim once, as the server's sweep does; answers how many it deleted.
async fn sweep(ledger: &Ledger, reader: &SharedReader, now_ns: u64) -> usize {
    let (mut after, mut deleted) = (None, 0);
    loop {
        let (next, swept) = payments::sweep_expired_claims(ledger, reader, after, now_ns)
            .await
            .unwrap();
        deleted += swept;
        match next {
            Some(key) => after = Some(key),
            None => return deleted,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movement_keys_expire_after_a_day_unless_unresolved() {
    let common::Started {
        dir: _dir,
        ledger,
        writer,
        reader,
        vault,
    } = common::start(Arc::new(SystemClock));
    let limits = LimitsTable::uniform(100_000_000);
    let start_ns = SystemClock.now_ns();
    let payer = sign_up(&ledger, "ana", start_ns).await;
    sign_up(&ledger, "ben", start_ns).await;
    // A $100.00 top-up from `card` under `key_text`.
    let top_up = |card: &'static str, key_text: &'static str, now_ns: u64| {
        let (ledger, reader, limits, vault) = (
            ledger.clone(),
            reader.clone(),
            limits.clone(),
            vault.clone(),
        );
        let number = CardNumber::parse(Secret::new(card.to_owned())).unwrap();
        async move {
            let source = CardSource::New {
                number,
                save_as_default: false,
            };
            let amount = Money::from_minor(10_000, WALLET_CURRENCY);
            let (processor, key) = (&SandboxProcessor, key(key_text));
            funding::fund(
                &ledger, &reader, &limits, processor, &vault, payer.id, amount, source, key, now_ns,
            )
            .await
            .unwrap()
        }
    };
    const CARD: &str = "4242424242424242";
    let first_top_up = top_up(CARD, "top-up", start_ns).await;
    assert!(!first_top_up.replayed);
    // A top-up waiting for its challenge: its claim is unresolved.
    let challenged = top_up(funding::SANDBOX_CHALLENGE_CARD, "challenged", start_ns).await;
    assert!(challenged.requires_action);
    let pay = |text: &'static str, now_ns: u64| {
        let (ledger, reader, limits, payer) = (
            ledger.clone(),
            reader.clone(),
            limits.clone(),
            payer.clone(),
        );
        async move {
            let request = PaymentRequest {
                to: Handle::parse("ben").unwrap(),
                amount: Money::from_minor(100, WALLET_CURRENCY),
                note: Note::parse("lunch").unwrap(),
            };
            payments::pay(
                &ledger,
                &reader,
                &limits,
                &payer,
                request,
                key(text),
                now_ns,
            )
            .await
            .unwrap()
        }
    };
    // One payment a day ago, one an hour ago.
    let old = pay("old", start_ns).await;
    let recent = pay("recent", start_ns + 23 * HOUR_NS).await;
    let now_ns = start_ns + IDEMPOTENCY_KEY_TTL_NS + HOUR_NS;

    // Before the sweep the keys replay their first answer.
    assert!(pay("old", now_ns).await.replayed);
    assert!(top_up(CARD, "top-up", now_ns).await.replayed);
    // The day-old payment and top-up go; the challenged top-up stays.
    assert_eq!(sweep(&ledger, &reader, now_ns).await, 2);
    // Swept: the day-old keys pay and top up anew, with new ids.
    let again = pay("old", now_ns).await;
    assert!(!again.replayed);
    assert_ne!(again.payment.id, old.payment.id);
    assert_ne!(again.payment.transfer_id, old.payment.transfer_id);
    let second_top_up = top_up(CARD, "top-up", now_ns).await;
    assert!(!second_top_up.replayed);
    assert_ne!(second_top_up.funding.id, first_top_up.funding.id);
    // Kept: the hour-old key still replays, and so does the unresolved top-up.
    let replay = pay("recent", now_ns).await;
    assert!(replay.replayed);
    assert_eq!(replay.payment.id, recent.payment.id);
    let waiting = top_up(funding::SANDBOX_CHALLENGE_CARD, "challenged", now_ns).await;
    assert!(waiting.replayed && waiting.requires_action);
    assert_eq!(waiting.funding.id, challenged.funding.id);
    // A day later: the two payments and the second top-up.
    assert_eq!(sweep(&ledger, &reader, now_ns + 30 * HOUR_NS).await, 3);
    // $200.00 in; three payments of $1.00 out (the replays moved nothing).
    let balance = identity::wallet_balance(&reader, payer.id).await.unwrap();
    assert_eq!(balance.minor_units(), 2 * 10_000 - 3 * 100);

    drop(ledger);
    tokio::task::block_in_place(|| writer.join()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_keys_replay_for_a_day_then_run_anew() {
    let common::Started {
        dir: _dir,
        ledger,
        writer,
        reader,
        ..
    } = common::start(Arc::new(SystemClock));
    let start_ns = SystemClock.now_ns();
    let accept = |key_text: &str| {
        Action::new(
            "person:1",
            &key(key_text),
            "POST",
            "/v1/paid-dms/1/accept",
            b"",
        )
    };
    let answered = StoredAnswer {
        status: 200,
        content_type: Some("application/json".to_owned()),
        body: Some("{\"status\":\"paid\"}".to_owned()),
    };
    for (text, at_ns) in [("old", start_ns), ("recent", start_ns + 23 * HOUR_NS)] {
        let action = accept(text);
        assert_eq!(action.begin(&ledger, &reader, at_ns).await, Ok(Begun::Run));
        // A second request while the first runs is told to wait.
        assert_eq!(
            action.begin(&ledger, &reader, at_ns + 1).await,
            Err(ActionError::InProgress)
        );
        action
            .finish(&ledger, Some(answered.clone()), at_ns)
            .await
            .unwrap();
    }
    let now_ns = start_ns + IDEMPOTENCY_KEY_TTL_NS + HOUR_NS;
    let replayed = Ok(Begun::Replay(answered.clone()));
    assert_eq!(
        accept("old").begin(&ledger, &reader, now_ns).await,
        replayed
    );
    assert_eq!(sweep(&ledger, &reader, now_ns).await, 1);
    // Swept: the day-old key runs again; the hour-old one still replays.
    assert_eq!(
        accept("old").begin(&ledger, &reader, now_ns).await,
        Ok(Begun::Run)
    );
    assert_eq!(
        accept("recent").begin(&ledger, &reader, now_ns).await,
        replayed
    );
    // A claim a crash left in progress is taken over once it is a minute old.
    assert_eq!(
        accept("old")
            .begin(&ledger, &reader, now_ns + 59 * 1_000_000_000)
            .await,
        Err(ActionError::InProgress)
    );
    assert_eq!(
        accept("old")
            .begin(&ledger, &reader, now_ns + 60 * 1_000_000_000)
            .await,
        Ok(Begun::Run)
    );

    drop(ledger);
    tokio::task::block_in_place(|| writer.join()).unwrap();
}
