#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Verification tiers, limits and licences against the real server, with the real
//! default limits: a limit reached moves nothing and names itself, verification
//! raises it at once, racing sends never exceed it, and licences switch capabilities
//! per jurisdiction.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use mizan_api::ServerConfig;
use serde_json::{json, Value};

const DAY_NS: u64 = 86_400 * 1_000_000_000;

async fn spawn_with_default_limits() -> TestApp {
    spawn_app_with(ServerConfig {
        limits: mizan_app::limits::LimitsTable::default(),
        ..test_config()
    })
    .await
}

/// Next Monday 00:00 UTC, as `resets_at` writes it.
fn next_monday() -> String {
    let now_ns = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let day = now_ns / DAY_NS;
    let monday = day - (day + 3) % 7 + 7;
    mizan_app::time::rfc3339_from_ns(monday * DAY_NS)
}

impl TestApp {
    async fn send(&self, token: &str, key: &str, to: &str, amount: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/payments"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"to": to, "amount": amount, "currency": "USD"}))
            .send()
            .await
            .unwrap()
    }

    async fn cash_out(&self, token: &str, key: &str, amount: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/cashouts"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({"amount": amount, "currency": "USD", "routing_number": "011000015", "account_number": "000123456789"}))
            .send()
            .await
            .unwrap()
    }

    async fn verify(&self, token: &str, state: &str, ssn_last4: &str) -> reqwest::Response {
        let body = json!({
            "legal_name": "Sara Haddad",
            "date_of_birth": "1990-05-17",
            "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                        "state": state, "country": "US"},
            "ssn_last4": ssn_last4,
        });
        self.client
            .post(self.url("/v1/me/verification"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn put_licence(
        &self,
        token: Option<&str>,
        jurisdiction: &str,
        cashout: bool,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .put(self.url(&format!("/v1/licences/{jurisdiction}")))
            .json(&json!({"p2p": true, "cashout": cashout, "savings": true, "cards": true}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn limits(&self, token: &str) -> Value {
        let response = self
            .client
            .get(self.url("/v1/me/limits"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

async fn json_problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_tier_0_weekly_send_limit_moves_nothing_and_verification_raises_it() {
    let app = spawn_with_default_limits().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "300.00", CARD_OK).await.status(), 201);
    assert_eq!(app.send(&sara, "p-1", "omar", "200.00").await.status(), 201);

    let refused = app.send(&sara, "p-2", "omar", "60.00").await;
    assert_eq!(refused.status(), 422);
    let problem = json_problem(refused).await;
    assert_eq!(problem["code"], "limit_exceeded");
    assert_eq!(problem["limit"], "weekly_send");
    assert_eq!(problem["resets_at"], next_monday());
    assert_eq!(app.balance(&sara).await, "100.00");
    assert_eq!(app.balance(&omar).await, "200.00");
    let limits = app.limits(&sara).await;
    assert_eq!(limits["tier"], 0);
    assert_eq!(limits["jurisdiction"], "UNVERIFIED");
    let weekly = &limits["limits"][1];
    assert_eq!(weekly["limit"], "weekly_send");
    assert_eq!(weekly["amount"], "250.00");
    assert_eq!(weekly["used"], "200.00");
    assert_eq!(weekly["remaining"], "50.00");
    assert_eq!(weekly["resets_at"], next_monday());

    let verified = app.verify(&sara, "CA", "1234").await;
    assert_eq!(verified.status(), 200);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["tier"], 1);
    assert_eq!(verified["residence"], "US-CA");
    // The same key again: nothing was recorded the first time, so this is a new
    // payment, not a replay, and the tier-1 limit lets it through.
    let paid = app.send(&sara, "p-2", "omar", "60.00").await;
    assert_eq!(paid.status(), 201);
    assert!(paid.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.balance(&sara).await, "40.00");
    let limits = app.limits(&sara).await;
    assert_eq!(limits["tier"], 1);
    assert_eq!(limits["limits"][1]["amount"], "10,000.00");
    assert_eq!(limits["limits"][1]["used"], "260.00");
    app.stop().await;
}

#[tokio::test]
async fn racing_sends_never_exceed_the_limit() {
    let app = spawn_with_default_limits().await;
    let sara = app.person("sara").await;
    app.person("omar").await;
    assert_eq!(app.fund(&sara, "450.00", CARD_OK).await.status(), 201);
    let sends = (0..20).map(|index| {
        let client = app.client.clone();
        let url = app.url("/v1/payments");
        let token = sara.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", format!("race-{index}"))
                .json(&json!({"to": "omar", "amount": "20.00", "currency": "USD"}))
                .send()
                .await
                .unwrap()
        })
    });
    let handles: Vec<_> = sends.collect();
    let mut succeeded = 0;
    for handle in handles {
        let response = handle.await.unwrap();
        match response.status().as_u16() {
            201 => succeeded += 1,
            422 => assert_eq!(json_problem(response).await["code"], "limit_exceeded"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(succeeded, 12);
    assert_eq!(app.balance(&sara).await, "210.00");
    assert_eq!(app.limits(&sara).await["limits"][1]["used"], "240.00");
    app.stop().await;
}

#[tokio::test]
async fn the_tier_0_funding_limit_holds_nothing() {
    let app = spawn_with_default_limits().await;
    let sara = app.person("sara").await;
    assert_eq!(app.fund(&sara, "450.00", CARD_OK).await.status(), 201);
    let refused = app.fund(&sara, "60.00", CARD_OK).await;
    assert_eq!(refused.status(), 422);
    let problem = json_problem(refused).await;
    assert_eq!(problem["code"], "limit_exceeded");
    assert_eq!(problem["limit"], "weekly_funding");
    assert_eq!(app.balance(&sara).await, "450.00");
    app.stop().await;
}

#[tokio::test]
async fn cash_out_needs_tier_1_and_a_licence() {
    let app = spawn_with_default_limits().await;
    let sara = app.person("sara").await;
    assert_eq!(app.fund(&sara, "100.00", CARD_OK).await.status(), 201);
    let refused = app.cash_out(&sara, "out-1", "10.00").await;
    assert_eq!(refused.status(), 403);
    let problem = json_problem(refused).await;
    assert_eq!(problem["code"], "verification_required");
    assert_eq!(problem["tier_required"], 1);

    let failed = app.verify(&sara, "CA", "0000").await;
    assert_eq!(failed.status(), 422);
    assert_eq!(json_problem(failed).await["code"], "verification_failed");
    assert_eq!(app.limits(&sara).await["tier"], 0);
    assert_eq!(app.verify(&sara, "CA", "1234").await.status(), 200);

    // The operator disables cash-out in California: refused, nothing held.
    let disabled = app.put_licence(Some(OPERATOR_TOKEN), "us-ca", false).await;
    assert_eq!(disabled.status(), 200);
    let refused = app.cash_out(&sara, "out-1", "10.00").await;
    assert_eq!(refused.status(), 403);
    let problem = json_problem(refused).await;
    assert_eq!(problem["code"], "capability_unavailable");
    assert_eq!(problem["jurisdiction"], "US-CA");
    assert_eq!(problem["capability"], "cashout");
    assert_eq!(app.balance(&sara).await, "100.00");

    assert_eq!(
        app.put_licence(Some(OPERATOR_TOKEN), "US-CA", true)
            .await
            .status(),
        200
    );
    let settled = app.cash_out(&sara, "out-1", "10.00").await;
    assert_eq!(settled.status(), 201);
    assert_eq!(app.balance(&sara).await, "90.00");
    app.stop().await;
}

#[tokio::test]
async fn built_in_licences_disable_cash_out_in_two_states() {
    let app = spawn_with_default_limits().await;
    let kai = app.person("kai").await;
    assert_eq!(app.fund(&kai, "50.00", CARD_OK).await.status(), 201);
    assert_eq!(app.verify(&kai, "HI", "1234").await.status(), 200);
    let refused = app.cash_out(&kai, "out-1", "10.00").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        json_problem(refused).await["code"],
        "capability_unavailable"
    );
    app.person("lani").await;
    assert_eq!(app.send(&kai, "p-1", "lani", "5.00").await.status(), 201);
    let limits = app.limits(&kai).await;
    assert_eq!(limits["capabilities"]["cashout"], false);
    assert_eq!(limits["capabilities"]["p2p"], true);
    app.stop().await;
}

#[tokio::test]
async fn tier_2_needs_tier_1_and_a_document() {
    let app = spawn_with_default_limits().await;
    let sara = app.person("sara").await;
    let document = |number: &str| json!({"document_type": "passport", "document_number": number});
    let url = app.url("/v1/me/verification/document");
    let early = app
        .client
        .post(&url)
        .bearer_auth(&sara)
        .json(&document("P1234567"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 403);
    assert_eq!(json_problem(early).await["code"], "verification_required");
    assert_eq!(app.verify(&sara, "NY", "1234").await.status(), 200);
    let failed = app
        .client
        .post(&url)
        .bearer_auth(&sara)
        .json(&document("P1230000"))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 422);
    let verified = app
        .client
        .post(&url)
        .bearer_auth(&sara)
        .json(&document("P1234567"))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let verified: Value = verified.json().await.unwrap();
    assert_eq!(verified["tier"], 2);
    assert_eq!(app.limits(&sara).await["limits"][1]["amount"], "50,000.00");
    app.stop().await;
}

#[tokio::test]
async fn licence_routes_need_the_operator_token() {
    let app = spawn_with_default_limits().await;
    let sara = app.person("sara").await;
    for token in [
        None,
        Some(sara.as_str()),
        Some("wrong-operator-token-0123456789"),
    ] {
        assert_eq!(app.put_licence(token, "US-CA", false).await.status(), 401);
        let mut list = app.client.get(app.url("/v1/licences"));
        if let Some(token) = token {
            list = list.bearer_auth(token);
        }
        assert_eq!(list.send().await.unwrap().status(), 401);
    }
    let bad = app.put_licence(Some(OPERATOR_TOKEN), "US-XX", false).await;
    assert_eq!(bad.status(), 400);
    assert_eq!(json_problem(bad).await["code"], "jurisdiction_invalid");
    let table: Value = app
        .client
        .get(app.url("/v1/licences"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = table["licences"].as_array().unwrap();
    let row = |key: &str| {
        rows.iter()
            .find(|row| row["jurisdiction"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(row("US-CA")["cashout"], true);
    assert_eq!(row("US-MT")["cashout"], false);
    assert_eq!(row("DEFAULT")["cashout"], false);
    assert_eq!(row("DEFAULT")["p2p"], true);
    assert_eq!(row("UNVERIFIED")["cashout"], true);
    app.stop().await;
}

#[tokio::test]
async fn tips_count_against_the_send_limit() {
    let app = spawn_with_default_limits().await;
    let fan = app.person("fan").await;
    app.person("lina").await;
    assert_eq!(app.fund(&fan, "300.00", CARD_OK).await.status(), 201);
    let tip = |amount: &str, key: &str| {
        app.client
            .post(app.url("/v1/tips"))
            .bearer_auth(&fan)
            .header("Idempotency-Key", key.to_owned())
            .json(&json!({"to": "lina", "amount": amount, "currency": "USD"}))
            .send()
    };
    assert_eq!(tip("200.00", "tip-1").await.unwrap().status(), 201);
    let refused = tip("60.00", "tip-2").await.unwrap();
    assert_eq!(refused.status(), 422);
    let problem = json_problem(refused).await;
    assert_eq!(problem["code"], "limit_exceeded");
    assert_eq!(problem["limit"], "weekly_send");
    assert_eq!(app.balance(&fan).await, "100.00");
    app.stop().await;
}

#[tokio::test]
async fn paid_dms_count_against_the_send_limit_and_hold_nothing_past_it() {
    let app = spawn_with_default_limits().await;
    let fan = app.person("fan").await;
    let star = app.person("star").await;
    assert_eq!(app.fund(&fan, "300.00", CARD_OK).await.status(), 201);
    let price = app
        .client
        .post(app.url("/v1/me/dm-settings"))
        .bearer_auth(&star)
        .json(&json!({"paid_dms": true, "price": "100.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(price.status(), 200);
    let message = |key: &str| {
        app.client
            .post(app.url("/v1/messages"))
            .bearer_auth(&fan)
            .header("Idempotency-Key", key.to_owned())
            .json(&json!({"to": "star", "text": "hello", "offer": "100.00"}))
            .send()
    };
    // $250 a week at tier 0: two $100 DMs fit, the third does not.
    assert_eq!(message("dm-1").await.unwrap().status(), 201);
    assert_eq!(message("dm-2").await.unwrap().status(), 201);
    let refused = message("dm-3").await.unwrap();
    assert_eq!(refused.status(), 422);
    let problem = json_problem(refused).await;
    assert_eq!(problem["code"], "limit_exceeded");
    assert_eq!(problem["limit"], "weekly_send");
    assert_eq!(problem["resets_at"], next_monday());
    // The refused DM held nothing: the star's priority inbox has the two paid ones.
    let inbox: Value = app
        .client
        .get(app.url("/v1/paid-dms"))
        .bearer_auth(&star)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 2, "{inbox}");
    let limits = app.limits(&fan).await;
    let weekly = limits["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["limit"] == "weekly_send")
        .unwrap()
        .clone();
    assert_eq!(weekly["used"], "200.00", "{limits}");
    app.stop().await;
}
