#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Notifications over real HTTP: what happens to a person shows up in their list (and
//! only theirs), newest first, unread until they mark it seen; pages and bad input.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn notifications(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/v1/notifications{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The list once it holds at least `count` items (the webhook worker projects the
/// outbox in the background).
async fn wait_for(app: &TestApp, token: &str, count: usize) -> Value {
    for _ in 0..250 {
        let page: Value = notifications(app, token, "?limit=100")
            .await
            .json()
            .await
            .unwrap();
        if page["items"].as_array().unwrap().len() >= count {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {count} notifications after 5 s");
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", format!("k-{}", rand::random::<u64>()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn what_happens_to_a_person_is_listed_newest_first_until_seen() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&omar, "20.00", CARD_OK).await.status(), 201);

    let paid = post(
        &app,
        &omar,
        "/v1/payments",
        json!({"to": "sara", "amount": "5.00", "currency": "USD", "note": "lunch"}),
    )
    .await;
    assert_eq!(paid.status(), 201);
    let payment: Value = paid.json().await.unwrap();
    let asked = post(
        &app,
        &omar,
        "/v1/requests",
        json!({"from": "sara", "amount": "2.50", "currency": "USD"}),
    )
    .await;
    assert_eq!(asked.status(), 201);
    let follow = app
        .client
        .post(app.url("/v1/people/omar/follow"))
        .bearer_auth(&sara)
        .send()
        .await
        .unwrap();
    assert!(follow.status().is_success(), "{}", follow.status());

    let page = wait_for(&app, &sara, 2).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert_eq!(page["unread"], 2);
    // Newest first: the request came after the payment.
    assert_eq!(items[0]["kind"], "request_received");
    assert_eq!(items[0]["from"], "omar");
    assert_eq!(items[0]["amount"], "2.50");
    assert_eq!(items[1]["kind"], "payment_received");
    assert_eq!(items[1]["amount"], "5.00");
    assert_eq!(items[1]["currency"], "USD");
    assert_eq!(items[1]["subject_id"], payment["id"]);
    assert_eq!(items[1]["read"], false);
    assert!(
        !page.to_string().contains("lunch"),
        "notes stay private: {page}"
    );
    // Omar is told about the follow, not about his own payment or request.
    let omars = wait_for(&app, &omar, 1).await;
    let kinds: Vec<&str> = omars["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["followed"], "{omars}");
    assert_eq!(omars["items"][0]["from"], "sara");

    // Pages: one at a time, then the older one, then nothing.
    let first: Value = notifications(&app, &sara, "?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"][0]["kind"], "request_received");
    let before = first["next_before"].as_str().unwrap().to_owned();
    let second: Value = notifications(&app, &sara, &format!("?limit=1&before={before}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["kind"], "payment_received");
    let older = second["items"][0]["id"].as_str().unwrap().to_owned();
    let third: Value = notifications(&app, &sara, &format!("?before={older}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(third["items"].as_array().unwrap().is_empty());
    assert!(third["next_before"].is_null());

    // Seeing the older one leaves the newer unread; a stale marker never goes back.
    let seen = post(
        &app,
        &sara,
        "/v1/notifications/seen",
        json!({"through": older}),
    )
    .await;
    assert_eq!(seen.status(), 200);
    let seen: Value = seen.json().await.unwrap();
    assert_eq!(seen["unread"], 1);
    let all = post(&app, &sara, "/v1/notifications/seen", json!({})).await;
    let all: Value = all.json().await.unwrap();
    assert_eq!(all["unread"], 0);
    let stale = post(
        &app,
        &sara,
        "/v1/notifications/seen",
        json!({"through": "1"}),
    )
    .await;
    let stale: Value = stale.json().await.unwrap();
    assert_eq!(stale["seen_through"], all["seen_through"]);
    let page: Value = notifications(&app, &sara, "").await.json().await.unwrap();
    assert_eq!(page["unread"], 0);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["read"] == true));
    app.stop().await;
}

#[tokio::test]
async fn bad_pages_are_refused_with_stable_codes() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    for (query, code) in [
        ("?limit=0", "invalid_limit"),
        ("?limit=101", "invalid_limit"),
        ("?before=abc", "invalid_cursor"),
        ("?before=123456789012345678901", "invalid_cursor"),
    ] {
        let response = notifications(&app, &sara, query).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(problem(response).await.code, code, "{query}");
    }
    let bad = post(
        &app,
        &sara,
        "/v1/notifications/seen",
        json!({"through": "-1"}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(problem(bad).await.code, "invalid_cursor");
    let unknown = post(&app, &sara, "/v1/notifications/seen", json!({"all": true})).await;
    assert_eq!(problem(unknown).await.code, "invalid_body");
    app.stop().await;
}

/// More events than one submission may carry rows: the worker writes them in several
/// (it once got stuck here, retrying one oversized submission forever).
#[tokio::test]
async fn a_burst_of_events_is_projected_in_full() {
    const PAYMENTS: usize = 80;
    // A slow poll, so the worker reads all the payments as one page.
    let app = spawn_app_with(mizan_api::ServerConfig {
        webhook_poll_ms: 1_500,
        ..test_config()
    })
    .await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&omar, "5.00", CARD_OK).await.status(), 201);
    for _ in 0..PAYMENTS {
        let paid = post(
            &app,
            &omar,
            "/v1/payments",
            json!({"to": "sara", "amount": "0.01", "currency": "USD"}),
        )
        .await;
        assert_eq!(paid.status(), 201);
    }
    let page = wait_for(&app, &sara, PAYMENTS).await;
    assert_eq!(page["unread"], PAYMENTS);
    let kinds = page["items"].as_array().unwrap();
    assert!(kinds.iter().all(|n| n["kind"] == "payment_received"));
    app.stop().await;
}
