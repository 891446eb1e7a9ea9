#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The server finishes, at start, the card funding a crash cut off after the
//! processor answered: the process dies between the charge and the credit, a new
//! server starts on the same store, and the wallet is credited once; the original
//! request's retry then replays the success.

mod common;

use std::time::Duration;

use common::{spawn_app_in, test_config, TestStore, CARD_OK, PASSWORD};
use mizan_api::{AppState, ServerConfig};
use mizan_app::funding::SandboxProcessor;
use mizan_app::funding::{self, CardNumber, CardSource, ChargeDecision, Processor};
use mizan_app::identity::{self, Email, Handle, Password, Person, WALLET_CURRENCY};
use mizan_app::payments::IdempotencyKey;
use mizan_core::{Clock, Money, Secret, SystemClock};
use serde_json::{json, Value};

/// The sandbox answers, then the process "dies" before the answer is written.
struct CrashAfterAnswer;

impl Processor for CrashAfterAnswer {
    fn charge(&self, intent: &str, card: &CardNumber, amount: Money) -> ChargeDecision {
        let decision = SandboxProcessor.charge(intent, card, amount);
        panic!("simulated crash after the processor answered {decision:?}");
    }
    fn complete_challenge(&self, intent: &str, answer: &str) -> ChargeDecision {
        SandboxProcessor.complete_challenge(intent, answer)
    }
}

/// A started server state (no HTTP) on a fresh store, with one person signed up.
async fn started_with_person(handle: &str) -> (TestStore, ServerConfig, AppState, Person) {
    let store = tokio::task::spawn_blocking(TestStore::fresh).await.unwrap();
    let mut config = test_config();
    store.configure_vault_keys(&mut config);
    let (location, first_config) = (store.location.clone(), config.clone());
    let state = tokio::task::spawn_blocking(move || AppState::start(&location, first_config))
        .await
        .unwrap()
        .unwrap();
    let person = identity::signup(
        &state.ledger().unwrap(),
        Handle::parse(handle).unwrap(),
        Email::parse(&format!("{handle}@example.com")).unwrap(),
        Password::parse(Secret::new(PASSWORD.to_owned())).unwrap(),
        SystemClock.now_ns(),
    )
    .await
    .unwrap();
    (store, config, state, person)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_credits_a_funding_cut_off_after_the_charge() {
    let (store, config, state, person) = started_with_person("crashed").await;
    let ledger = state.ledger().unwrap();
    // Begun two minutes ago, so the reconciler finds it old enough at start.
    let began_ns = SystemClock.now_ns() - 120 * 1_000_000_000;
    let (reader, vault, limits) = (
        state.reader(),
        state.vault().unwrap(),
        state.config().limits.clone(),
    );
    let crashed = tokio::spawn(async move {
        let number = CardNumber::parse(Secret::new(CARD_OK.to_owned())).unwrap();
        funding::fund(
            &ledger,
            &reader,
            &limits,
            &CrashAfterAnswer,
            &vault,
            person.id,
            Money::from_minor(3_300, WALLET_CURRENCY),
            CardSource::New {
                number,
                save_as_default: false,
            },
            IdempotencyKey::parse("crash-key").unwrap(),
            began_ns,
        )
        .await
    })
    .await;
    assert!(crashed.unwrap_err().is_panic());
    state.shutdown().await.unwrap();
    drop(state);

    let app = spawn_app_in(store, config).await;
    let login = json!({"login": "crashed", "password": PASSWORD});
    let session: Value = app
        .client
        .post(app.url("/v1/sessions"))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
    let mut balance = app.balance(&token).await;
    for _ in 0..200 {
        if balance != "0.00" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        balance = app.balance(&token).await;
    }
    assert_eq!(
        balance, "33.00",
        "the reconciler credits the charged card at start"
    );
    let replay = app
        .fund_with_key(&token, "33.00", CARD_OK, "crash-key")
        .await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(app.balance(&token).await, "33.00");
    app.stop().await;
}

/// A card funding waiting for its challenge answer is left alone by the reconciler
/// while its hold runs: no new processor call, so no reveal of the card number on
/// every pass (the vault's access log would fill with them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_leaves_a_waiting_challenge_alone_and_reveals_nothing() {
    let (_store, _config, state, person) = started_with_person("challenged").await;
    let ledger = state.ledger().unwrap();
    let (reader, vault, limits) = (
        state.reader(),
        state.vault().unwrap(),
        state.config().limits.clone(),
    );
    // Begun two minutes ago: old enough for the reconciler to look at it.
    let began_ns = SystemClock.now_ns() - 120 * 1_000_000_000;
    let outcome = funding::fund(
        &ledger,
        &reader,
        &limits,
        &SandboxProcessor,
        &vault,
        person.id,
        Money::from_minor(2_000, WALLET_CURRENCY),
        CardSource::New {
            number: CardNumber::parse(Secret::new("4000000000003220".to_owned())).unwrap(),
            save_as_default: false,
        },
        IdempotencyKey::parse("challenge-key").unwrap(),
        began_ns,
    )
    .await
    .unwrap();
    assert!(outcome.requires_action);

    // The vault's stores block (PostgreSQL's client runs its own runtime): off the
    // async workers.
    let log_vault = vault.clone();
    let reconciler_reveals = || async {
        let vault = log_vault.clone();
        let log = tokio::task::spawn_blocking(move || vault.access_log(0, 1_000))
            .await
            .unwrap()
            .unwrap();
        log.iter()
            .filter(|entry| entry.actor == "mizan-reconciler")
            .count()
    };
    let rails = mizan_app::reconcile::Rails {
        processor: &SandboxProcessor,
        payouts: &mizan_app::cashout::SandboxPayouts,
        vault: &vault,
    };
    for _ in 0..3 {
        let report = mizan_app::reconcile::reconcile(&ledger, &reader, rails, SystemClock.now_ns())
            .await
            .unwrap();
        assert_eq!(report.still_open, 1, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
    }
    assert_eq!(reconciler_reveals().await, 0);
    let balance = identity::wallet_balance(&reader, person.id).await.unwrap();
    assert_eq!(
        balance.minor_units(),
        0,
        "a waiting challenge credits nothing"
    );
    drop(ledger);
    tokio::task::spawn_blocking(move || drop((vault, log_vault)))
        .await
        .unwrap();
    state.shutdown().await.unwrap();
}
