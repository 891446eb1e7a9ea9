#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Idempotency keys of P2P payments expire after 24 hours: the sweep deletes older
//! claims (a later request with the same key pays anew) and keeps younger ones (a
//! retry replays), and never touches claims of movements whose ids derive from the
//! key alone (a card top-up).

use std::sync::Arc;

use mizan_app::funding::{self, CardNumber, CardSource, SandboxProcessor};
use mizan_app::identity::{self, Email, Handle, Password, Person, SharedReader, WALLET_CURRENCY};
use mizan_app::limits::LimitsTable;
use mizan_app::payments::{self, IdempotencyKey, Note, PaymentRequest, IDEMPOTENCY_KEY_TTL_NS};
use mizan_app::readers::ReaderPool;
use mizan_app::vault::SharedVault;
use mizan_core::{Clock, Money, Secret, SystemClock};
use mizan_ledger::{Ledger, WriterConfig};
use mizan_store::Location;
use mizan_vault::{MasterKeyRing, SqliteVaultStore, Vault};

const HOUR_NS: u64 = 3_600 * 1_000_000_000;

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).unwrap()
}

async fn person(ledger: &Ledger, handle: &str, now_ns: u64) -> Person {
    identity::signup(
        ledger,
        Handle::parse(handle).unwrap(),
        Email::parse(&format!("{handle}@example.com")).unwrap(),
        Password::parse(Secret::new("a long enough password".to_owned())).unwrap(),
        now_ns,
    )
    .await
    .unwrap()
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
async fn payment_keys_expire_after_a_day_and_nothing_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("mizan.sqlite"));
    let (ledger, writer) = Ledger::start(
        location.open_store().unwrap(),
        Arc::new(SystemClock),
        WriterConfig::default(),
    )
    .unwrap();
    tokio::task::block_in_place(|| payments::ensure_platform_accounts(&ledger)).unwrap();
    let reader: SharedReader =
        Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    let store = SqliteVaultStore::open(&dir.path().join("mizan.vault.sqlite")).unwrap();
    let vault: SharedVault =
        Arc::new(Vault::open(Box::new(store), MasterKeyRing::generate()).unwrap());
    let limits = LimitsTable::uniform(100_000_000);
    let start_ns = SystemClock.now_ns();
    let payer = person(&ledger, "ana", start_ns).await;
    person(&ledger, "ben", start_ns).await;
    let number = CardNumber::parse(Secret::new("4242424242424242".to_owned())).unwrap();
    funding::fund(
        &ledger,
        &reader,
        &limits,
        &SandboxProcessor,
        &vault,
        payer.id,
        Money::from_minor(10_000, WALLET_CURRENCY),
        CardSource::New {
            number,
            save_as_default: false,
        },
        key("top-up"),
        start_ns,
    )
    .await
    .unwrap();
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

    // Before the sweep both keys replay their first answer.
    assert!(pay("old", now_ns).await.replayed);
    assert_eq!(sweep(&ledger, &reader, now_ns).await, 1);
    // Swept: the day-old key pays anew, with new ids.
    let again = pay("old", now_ns).await;
    assert!(!again.replayed);
    assert_ne!(again.payment.id, old.payment.id);
    assert_ne!(again.payment.transfer_id, old.payment.transfer_id);
    // Kept: the hour-old key still replays, and so does the top-up's (its ids derive
    // from the key alone, so it is never swept, however old).
    let replay = pay("recent", now_ns).await;
    assert!(replay.replayed);
    assert_eq!(replay.payment.id, recent.payment.id);
    assert_eq!(sweep(&ledger, &reader, now_ns + 30 * HOUR_NS).await, 2);
    let top_up = funding::fund(
        &ledger,
        &reader,
        &limits,
        &SandboxProcessor,
        &vault,
        payer.id,
        Money::from_minor(10_000, WALLET_CURRENCY),
        CardSource::New {
            number: CardNumber::parse(Secret::new("4242424242424242".to_owned())).unwrap(),
            save_as_default: false,
        },
        key("top-up"),
        now_ns + 30 * HOUR_NS,
    )
    .await
    .unwrap();
    assert!(top_up.replayed);
    // $100.00 in; three payments of $1.00 out (the replays moved nothing).
    let balance = identity::wallet_balance(&reader, payer.id).await.unwrap();
    assert_eq!(balance.minor_units(), 10_000 - 3 * 100);

    drop(ledger);
    tokio::task::block_in_place(|| writer.join()).unwrap();
}
