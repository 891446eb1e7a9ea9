#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `charge_default_card`, the use case renewals call: it charges the person's
//! default saved card (its number revealed to the payment service, logged), once per
//! key, and refuses without a default card.

mod common;

use std::sync::Arc;

use mizan_app::funding::{self, CardNumber, CardSource, SandboxProcessor};
use mizan_app::identity::{self, WALLET_CURRENCY};
use mizan_app::limits::LimitsTable;
use mizan_app::payments::{IdempotencyKey, PaymentError};
use mizan_app::vault;
use mizan_core::{Clock, Money, Secret, SystemClock};
use mizan_ledger::Ledger;

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_charge_the_default_card_once_per_key() {
    let common::Started {
        dir: _dir,
        ledger,
        writer,
        reader,
        vault: shared,
    } = common::start(Arc::new(SystemClock));
    let person = common::sign_up(&ledger, "renewer", SystemClock.now_ns()).await;
    let limits = LimitsTable::uniform(100_000_000);
    let amount = Money::from_minor(999, WALLET_CURRENCY);
    let charge = |ledger: Ledger, text: &'static str| {
        let (reader, shared, limits) = (reader.clone(), shared.clone(), limits.clone());
        async move {
            funding::charge_default_card(
                &ledger,
                &reader,
                &limits,
                &SandboxProcessor,
                &shared,
                person.id,
                amount,
                key(text),
                SystemClock.now_ns(),
            )
            .await
        }
    };

    // No default card yet: refused, nothing charged.
    let refused = charge(ledger.clone(), "renewal-0").await.unwrap_err();
    assert_eq!(refused, PaymentError::CardNotFound);

    let number = CardNumber::parse(Secret::new("4242424242424242".to_owned())).unwrap();
    let source = CardSource::New {
        number,
        save_as_default: true,
    };
    funding::fund(
        &ledger,
        &reader,
        &limits,
        &SandboxProcessor,
        &shared,
        person.id,
        Money::from_minor(100, WALLET_CURRENCY),
        source,
        key("first"),
        SystemClock.now_ns(),
    )
    .await
    .unwrap();
    let cards = vault::saved_cards(&reader, person.id).await.unwrap();
    assert_eq!(cards.len(), 1);
    assert!(cards[0].default);

    let first = charge(ledger.clone(), "renewal-1").await.unwrap();
    assert!(!first.replayed);
    let again = charge(ledger.clone(), "renewal-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.funding.id, first.funding.id);
    let balance = identity::wallet_balance(&reader, person.id).await.unwrap();
    assert_eq!(balance.minor_units(), 100 + 999);

    // The charge revealed the number to the payment service only, with a reason.
    let log = tokio::task::block_in_place(|| shared.access_log(0, 100)).unwrap();
    assert!(!log.is_empty());
    assert!(log
        .iter()
        .all(|entry| entry.role == "payment_processing" && entry.field == "card_number"));

    drop(ledger);
    tokio::task::block_in_place(|| writer.join()).unwrap();
}
