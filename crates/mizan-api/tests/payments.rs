#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Card funding and P2P payments against the real server over TCP, on a fresh SQLite
//! store per test: money moves once, declines move nothing, retries replay.

mod common;

use common::*;
use serde_json::{json, Value};

const CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";
const CARD_STOLEN: &str = "4000000000009979";

impl TestApp {
    async fn pay(&self, token: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
        pay(&self.client, &self.url("/v1/payments"), token, key, body).await
    }

    async fn get_payment(&self, token: &str, id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/payments/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

async fn pay(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = client.post(url).bearer_auth(token).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

fn payment(to: &str, amount: &str) -> Value {
    json!({"to": to, "amount": amount, "currency": "USD", "note": "lunch"})
}

#[tokio::test]
async fn funding_credits_the_wallet_and_declines_move_nothing() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let response = app.fund(&sara, "25.00", CARD_OK).await;
    assert_eq!(response.status(), 201);
    let text = response.text().await.unwrap();
    assert!(!text.contains(CARD_OK));
    let funding: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(funding["status"], "succeeded");
    assert_eq!(funding["amount"], "25.00");
    assert_eq!(funding["currency"], "USD");
    assert_eq!(funding["id"].as_str().unwrap().len(), 32);
    assert_eq!(app.balance(&sara).await, "25.00");

    for (card, reason) in [
        (CARD_INSUFFICIENT_FUNDS, "insufficient_funds"),
        (CARD_STOLEN, "stolen_card"),
    ] {
        let response = app.fund(&sara, "10.00", card).await;
        assert_eq!(response.status(), 402);
        let body = problem(response).await;
        assert_eq!(body.code, "card_declined");
        assert!(body.detail.contains(reason), "{}", body.detail);
        assert!(!body.detail.contains(card));
        assert_eq!(app.balance(&sara).await, "25.00");
    }

    let response = app.fund(&sara, "1.00", "4242").await;
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await.code, "card_number_invalid");
    let response = app.fund("not-a-token", "1.00", CARD_OK).await;
    assert_eq!(response.status(), 401);

    let store = app.stop().await;
    for entry in std::fs::read_dir(store.data.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for card in [CARD_OK, CARD_INSUFFICIENT_FUNDS, CARD_STOLEN] {
            let found = bytes
                .windows(card.len())
                .any(|window| window == card.as_bytes());
            assert!(!found, "{card} stored in {}", path.display());
        }
    }
}

#[tokio::test]
async fn payments_move_money_once_and_replay() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "25.00", CARD_OK).await.status(), 201);

    let response = app
        .pay(&sara, Some("pay-1"), &payment("Omar", "12.34"))
        .await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["from"], "sara");
    assert_eq!(first["to"], "omar");
    assert_eq!(first["amount"], "12.34");
    assert_eq!(first["currency"], "USD");
    assert_eq!(first["note"], "lunch");
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["transfer_id"].as_str().unwrap().len(), 32);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(app.balance(&sara).await, "12.66");
    assert_eq!(app.balance(&omar).await, "12.34");

    let response = app
        .pay(&sara, Some("pay-1"), &payment("omar", "12.34"))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let replay: Value = response.json().await.unwrap();
    assert_eq!(replay, first);
    assert_eq!(app.balance(&sara).await, "12.66");
    assert_eq!(app.balance(&omar).await, "12.34");

    let response = app
        .pay(&sara, Some("pay-1"), &payment("omar", "1.00"))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await.code, "idempotency_key_reused");

    let response = app
        .pay(&sara, Some("pay-2"), &payment("omar", "12.67"))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await.code, "insufficient_funds");
    assert_eq!(app.balance(&sara).await, "12.66");
    assert_eq!(app.balance(&omar).await, "12.34");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_under_one_key_pay_once() {
    const RETRIES: usize = 100;
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "25.00", CARD_OK).await.status(), 201);
    let url = app.url("/v1/payments");
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(RETRIES));
    let attempts: Vec<_> = (0..RETRIES)
        .map(|_| {
            let client = app.client.clone();
            let url = url.clone();
            let token = sara.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                let response = pay(
                    &client,
                    &url,
                    &token,
                    Some("same-key"),
                    &payment("omar", "5.00"),
                )
                .await;
                let status = response.status().as_u16();
                let replayed = response.headers().get("idempotent-replayed").is_some();
                let body: Value = response.json().await.unwrap();
                let id = body["id"].as_str().unwrap_or_default().to_owned();
                (status, replayed, id)
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut first_answers = 0;
    for attempt in attempts {
        let (status, replayed, id) = attempt.await.unwrap();
        assert_eq!(status, 201);
        first_answers += usize::from(!replayed);
        ids.insert(id);
    }
    assert_eq!(ids.len(), 1, "one payment: {ids:?}");
    assert_eq!(first_answers, 1, "exactly one answer is not a replay");
    assert_eq!(app.balance(&sara).await, "20.00");
    assert_eq!(app.balance(&omar).await, "5.00");
    // The ledger holds one payment transfer: omar's activity shows one credit.
    let page: Value = app
        .client
        .get(app.url("/v1/activity"))
        .bearer_auth(&omar)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    app.stop().await;
}

#[tokio::test]
async fn bad_payments_are_refused_with_codes() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    app.person("omar").await;
    assert_eq!(app.fund(&sara, "5.00", CARD_OK).await.status(), 201);

    let response = app.pay(&sara, None, &payment("omar", "1.00")).await;
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await.code, "idempotency_key_required");

    let cases = [
        ("12.3a", "USD", "amount_malformed", "amount"),
        ("1.001", "USD", "amount_too_precise", "amount"),
        ("0.00", "USD", "amount_must_be_positive", "amount"),
        ("-1.00", "USD", "amount_must_be_positive", "amount"),
        ("1.00", "ZZZ", "unknown_currency", "currency"),
        ("1.00", "EUR", "currency_not_supported", "currency"),
    ];
    for (index, (amount, currency, code, field)) in cases.into_iter().enumerate() {
        let body = json!({"to": "omar", "amount": amount, "currency": currency});
        let response = app.pay(&sara, Some(&format!("bad-{index}")), &body).await;
        assert_eq!(response.status(), 400, "{amount} {currency}");
        let body = problem(response).await;
        assert_eq!(body.code, code, "{amount} {currency}");
        assert_eq!(body.field.as_deref(), Some(field));
    }
    let long_note =
        json!({"to": "omar", "amount": "1.00", "currency": "USD", "note": "n".repeat(281)});
    let response = app.pay(&sara, Some("note"), &long_note).await;
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await.code, "note_too_long");

    let response = app
        .pay(&sara, Some("who"), &payment("nobody", "1.00"))
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(problem(response).await.code, "recipient_not_found");

    let response = app.pay(&sara, Some("me"), &payment("SARA", "1.00")).await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await.code, "cannot_pay_yourself");
    assert_eq!(app.balance(&sara).await, "5.00");
    app.stop().await;
}

#[tokio::test]
async fn payments_are_visible_to_their_parties_only() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let lina = app.person("lina").await;
    assert_eq!(app.fund(&sara, "5.00", CARD_OK).await.status(), 201);
    let response = app.pay(&sara, Some("k1"), &payment("omar", "2.50")).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();

    for token in [&sara, &omar] {
        let response = app.get_payment(token, id).await;
        assert_eq!(response.status(), 200);
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen, created);
    }
    let response = app.get_payment(&lina, id).await;
    assert_eq!(response.status(), 404);
    assert_eq!(problem(response).await.code, "payment_not_found");
    let response = app.get_payment(&lina, "not-an-id").await;
    assert_eq!(response.status(), 404);
    assert_eq!(app.get_payment("bad-token", id).await.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn a_funding_retry_never_charges_twice() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let first = app.fund_with_key(&sara, "10.00", CARD_OK, "top-up-1").await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = app.fund_with_key(&sara, "10.00", CARD_OK, "top-up-1").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(app.balance(&sara).await, "10.00");

    // The same key for another amount is refused and moves nothing.
    let reused = app.fund_with_key(&sara, "99.00", CARD_OK, "top-up-1").await;
    assert_eq!(reused.status(), 422);
    assert_eq!(problem(reused).await.code, "idempotency_key_reused");
    // No key, no funding.
    let response = app
        .client
        .post(app.url("/v1/funding"))
        .bearer_auth(&sara)
        .json(&json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(response).await.code, "idempotency_key_required");

    // A decline replays as the same decline.
    for _ in 0..2 {
        let declined = app
            .fund_with_key(&sara, "5.00", CARD_INSUFFICIENT_FUNDS, "top-up-2")
            .await;
        assert_eq!(declined.status(), 402);
        assert_eq!(problem(declined).await.code, "card_declined");
    }

    // Twenty concurrent requests under one key: one funding, the rest replay it
    // or are told it is still in progress.
    let attempts: Vec<_> = (0..20)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/v1/funding");
            let token = sara.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", "top-up-3")
                    .json(&json!({"amount": "7.00", "currency": "USD", "card_number": CARD_OK}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert!(
        statuses.iter().all(|status| [201, 409].contains(status)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201), "{statuses:?}");
    assert_eq!(app.balance(&sara).await, "17.00");
    app.stop().await;
}

async fn cash_out(
    app: &TestApp,
    token: &str,
    amount: &str,
    account: &str,
    key: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/v1/cashouts"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"amount": amount, "currency": "USD", "routing_number": "011000015", "account_number": account}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cash_out_settles_once_and_a_return_gives_the_money_back() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    assert_eq!(app.fund(&sara, "50.00", CARD_OK).await.status(), 201);

    let settled = cash_out(&app, &sara, "20.00", "000123456789", "out-1").await;
    assert_eq!(settled.status(), 201);
    let settled: Value = settled.json().await.unwrap();
    assert_eq!(settled["status"], "settled");
    assert_eq!(app.balance(&sara).await, "30.00");
    let again = cash_out(&app, &sara, "20.00", "000123456789", "out-1").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(app.balance(&sara).await, "30.00");

    // A return voids the hold: the money is back, and a retry replays the return.
    for _ in 0..2 {
        let returned = cash_out(&app, &sara, "10.00", "000123450000", "out-2").await;
        assert_eq!(returned.status(), 422);
        let problem = problem(returned).await;
        assert_eq!(problem.code, "cashout_returned");
        assert!(
            problem.detail.contains("account_closed"),
            "{}",
            problem.detail
        );
        assert_eq!(app.balance(&sara).await, "30.00");
    }

    // More than the wallet holds: refused, nothing held, the key stays free.
    let too_much = cash_out(&app, &sara, "31.00", "000123456789", "out-3").await;
    assert_eq!(problem(too_much).await.code, "insufficient_funds");
    assert_eq!(
        cash_out(&app, &sara, "30.00", "000123456789", "out-3")
            .await
            .status(),
        201
    );
    assert_eq!(app.balance(&sara).await, "0.00");

    for (routing, account, code) in [
        ("011000016", "000123456789", "routing_number_invalid"),
        ("011000015", "12", "account_number_invalid"),
    ] {
        let response = app
            .client
            .post(app.url("/v1/cashouts"))
            .bearer_auth(&sara)
            .header("Idempotency-Key", "bad")
            .json(&json!({"amount": "1.00", "currency": "USD", "routing_number": routing, "account_number": account}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(problem(response).await.code, code);
    }

    // The activity shows the settled cash-out, not the returned one's hold.
    let activity: Value = app
        .client
        .get(app.url("/v1/activity?type=cashout"))
        .bearer_auth(&sara)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = activity["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{activity}");
    assert!(items
        .iter()
        .all(|item| item["counterparty"] == "bank cash-out" && item["direction"] == "out"));
    let store = app.stop().await;
    // The account number is never stored.
    for entry in std::fs::read_dir(store.data.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(12).any(|window| window == b"000123456789"));
    }
}

const CARD_CHALLENGE: &str = "4000000000003220";

async fn answer(app: &TestApp, token: &str, funding: &str, answer: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/funding/{funding}/challenge")))
        .bearer_auth(token)
        .json(&json!({"answer": answer}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_card_challenge_holds_the_money_until_answered() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let started = app
        .fund_with_key(&sara, "40.00", CARD_CHALLENGE, "3ds-1")
        .await;
    assert_eq!(started.status(), 202);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["status"], "requires_action");
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(
        started["next_action"],
        format!("POST /v1/funding/{id}/challenge")
    );
    // Held, not credited: pending, not available; a retry answers the same challenge.
    assert_eq!(app.balance(&sara).await, "0.00");
    let held = app.wallet(&sara).await;
    assert_eq!(
        (&held["pending"], &held["available"]),
        (&json!("40.00"), &json!("0.00"))
    );
    let retry = app
        .fund_with_key(&sara, "40.00", CARD_CHALLENGE, "3ds-1")
        .await;
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");

    // Nobody else can answer it.
    let foreign = answer(&app, &omar, &id, "123456").await;
    assert_eq!(problem(foreign).await.code, "funding_not_found");

    let approved = answer(&app, &sara, &id, "123456").await;
    assert_eq!(approved.status(), 201);
    assert_eq!(app.balance(&sara).await, "40.00");
    let posted = app.wallet(&sara).await;
    assert_eq!(
        (&posted["pending"], &posted["available"]),
        (&json!("0.00"), &json!("40.00"))
    );
    // Answered once; the original POST now replays the success.
    let again = answer(&app, &sara, &id, "123456").await;
    assert_eq!(problem(again).await.code, "funding_not_awaiting_challenge");
    let replay = app
        .fund_with_key(&sara, "40.00", CARD_CHALLENGE, "3ds-1")
        .await;
    assert_eq!(replay.status(), 201);
    assert_eq!(app.balance(&sara).await, "40.00");

    // A failed challenge voids the hold: nothing moves, the decline replays.
    let started: Value = app
        .fund_with_key(&sara, "15.00", CARD_CHALLENGE, "3ds-2")
        .await
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let failed = answer(&app, &sara, &id, "000000").await;
    assert_eq!(failed.status(), 402);
    let failed = problem(failed).await;
    assert!(
        failed.detail.contains("authentication_failed"),
        "{}",
        failed.detail
    );
    assert_eq!(app.balance(&sara).await, "40.00");
    let replay = app
        .fund_with_key(&sara, "15.00", CARD_CHALLENGE, "3ds-2")
        .await;
    assert_eq!(replay.status(), 402);

    // Two racing answers resolve it once.
    let started: Value = app
        .fund_with_key(&sara, "5.00", CARD_CHALLENGE, "3ds-3")
        .await
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let (first, second) = tokio::join!(
        answer(&app, &sara, &id, "123456"),
        answer(&app, &sara, &id, "123456")
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    assert_eq!(app.balance(&sara).await, "45.00");
    app.stop().await;
}

#[tokio::test]
async fn one_key_across_endpoints_is_a_reuse_not_an_error() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    app.person("omar").await;
    assert_eq!(
        app.fund_with_key(&sara, "10.00", CARD_OK, "shared-key")
            .await
            .status(),
        201
    );
    for (path, body) in [
        (
            "/v1/payments",
            json!({"to": "omar", "amount": "1.00", "currency": "USD"}),
        ),
        (
            "/v1/cashouts",
            json!({"amount": "1.00", "currency": "USD", "routing_number": "011000015", "account_number": "000123456789"}),
        ),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&sara)
            .header("Idempotency-Key", "shared-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{path}");
        assert_eq!(problem(response).await.code, "idempotency_key_reused");
    }
    assert_eq!(app.balance(&sara).await, "10.00");
    // Requests and splits keep their own key space: the same key starts a request.
    let request = app
        .client
        .post(app.url("/v1/requests"))
        .bearer_auth(&sara)
        .header("Idempotency-Key", "shared-key")
        .json(&json!({"from": "omar", "amount": "1.00", "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(request.status(), 201);
    app.stop().await;
}
