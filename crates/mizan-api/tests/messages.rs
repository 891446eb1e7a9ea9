#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Messages and paid DMs against the real server: a paid DM is held, then paid out
//! on a reply (less the cut), refunded on a decline, or refunded by the ledger itself
//! when the deadline passes — once, whatever else is tried.

mod common;

use std::time::Duration;

use common::*;
use mizan_api::ServerConfig;
use serde_json::{json, Value};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn message(
    app: &TestApp,
    token: &str,
    to: &str,
    text: &str,
    offer: Option<&str>,
) -> reqwest::Response {
    let key = format!("msg-{}", rand::random::<u64>());
    let mut body = json!({"to": to, "text": text});
    if let Some(offer) = offer {
        body["offer"] = json!(offer);
    }
    call(
        app,
        reqwest::Method::POST,
        "/v1/messages",
        token,
        Some(&key),
        Some(body),
    )
    .await
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn paid_dm_status(app: &TestApp, token: &str, id: &str) -> String {
    let dm = json_of(
        call(
            app,
            reqwest::Method::GET,
            &format!("/v1/paid-dms/{id}"),
            token,
            None,
            None,
        )
        .await,
    )
    .await;
    dm["status"].as_str().unwrap().to_owned()
}

async fn set_price(app: &TestApp, token: &str, price: &str) {
    let set = call(
        app,
        reqwest::Method::POST,
        "/v1/me/dm-settings",
        token,
        None,
        Some(json!({"paid_dms": true, "price": price})),
    )
    .await;
    assert_eq!(set.status(), 200);
}

#[tokio::test]
async fn a_paid_dm_is_held_then_paid_out_on_reply_less_the_cut() {
    let app = spawn_app().await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    let friend = app.person("friend").await;
    assert_eq!(app.fund(&fan, "20.00", CARD_OK).await.status(), 201);
    set_price(&app, &star, "5.00").await;

    let unpaid = message(&app, &fan, "star", "hello!", None).await;
    assert_eq!(unpaid.status(), 402);
    let problem = problem(unpaid).await;
    assert_eq!(problem.code, "paid_dm_required");
    assert!(problem.detail.contains("5.00"), "{}", problem.detail);
    let too_little = message(&app, &fan, "star", "hello!", Some("4.99")).await;
    assert_eq!(too_little.status(), 402);

    let sent = message(&app, &fan, "star", "hello!", Some("5.00")).await;
    assert_eq!(sent.status(), 201);
    let sent = json_of(sent).await;
    let dm_id = sent["paid_dm"]["id"].as_str().unwrap().to_owned();
    assert_eq!(sent["paid_dm"]["status"], "pending");
    assert_eq!(sent["paid_dm"]["cut"], "0.50");
    let inbox = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/paid-dms",
            &star,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(inbox["items"][0]["id"], dm_id.as_str());
    assert_eq!(app.balance(&star).await, "0.00", "held, not paid");

    // Someone the star follows messages for free.
    let followed = call(
        &app,
        reqwest::Method::POST,
        "/v1/people/friend/follow",
        &star,
        None,
        None,
    )
    .await;
    assert_eq!(followed.status(), 200);
    assert_eq!(
        message(&app, &friend, "star", "hi, it's me", None)
            .await
            .status(),
        201
    );

    let reply = json_of(message(&app, &star, "fan", "thanks for writing", None).await).await;
    assert_eq!(reply["settled"], json!([dm_id]));
    assert_eq!(paid_dm_status(&app, &fan, &dm_id).await, "paid");
    assert_eq!(app.balance(&star).await, "4.50");
    assert_eq!(app.balance(&fan).await, "15.00");
    // Settled once: accepting or declining now changes nothing.
    for action in ["accept", "decline"] {
        let again = call(
            &app,
            reqwest::Method::POST,
            &format!("/v1/paid-dms/{dm_id}/{action}"),
            &star,
            None,
            None,
        )
        .await;
        assert_eq!(again.status(), 409);
        assert_eq!(problem_code(again).await, "paid_dm_not_pending");
    }
    // Once answered, the thread is open: the fan writes again for free.
    let free = json_of(message(&app, &fan, "star", "you answered!", None).await).await;
    assert!(free["paid_dm"].is_null());
    let thread = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/threads/fan",
            &star,
            None,
            None,
        )
        .await,
    )
    .await;
    let texts: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["hello!", "thanks for writing", "you answered!"]);
    // Only its two people see a paid DM.
    let other = call(
        &app,
        reqwest::Method::GET,
        &format!("/v1/paid-dms/{dm_id}"),
        &friend,
        None,
        None,
    )
    .await;
    assert_eq!(other.status(), 404);
    let activity = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/activity",
            &star,
            None,
            None,
        )
        .await,
    )
    .await;
    let lines: Vec<(&str, &str)> = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["counterparty"].as_str().unwrap(),
                i["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, [("platform fee", "0.50"), ("fan", "5.00")]);
}

async fn problem_code(response: reqwest::Response) -> String {
    problem(response).await.code
}

#[tokio::test]
async fn a_declined_paid_dm_is_refunded_once() {
    let app = spawn_app().await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "10.00", CARD_OK).await.status(), 201);
    set_price(&app, &star, "3.00").await;
    let sent = json_of(message(&app, &fan, "star", "pick me", Some("3.00")).await).await;
    let dm_id = sent["paid_dm"]["id"].as_str().unwrap().to_owned();
    // Only the recipient settles it.
    let by_sender = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/paid-dms/{dm_id}/accept"),
        &fan,
        None,
        None,
    )
    .await;
    assert_eq!(by_sender.status(), 403);
    let declined = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/paid-dms/{dm_id}/decline"),
        &star,
        None,
        None,
    )
    .await;
    assert_eq!(declined.status(), 200);
    assert_eq!(json_of(declined).await["status"], "declined");
    let accepted = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/paid-dms/{dm_id}/accept"),
        &star,
        None,
        None,
    )
    .await;
    assert_eq!(accepted.status(), 409);
    assert_eq!(app.balance(&fan).await, "10.00");
    assert_eq!(app.balance(&star).await, "0.00");
    // A reply after the decline pays nothing out.
    let reply = json_of(message(&app, &star, "fan", "sorry", None).await).await;
    assert_eq!(reply["settled"], json!([]));
    assert_eq!(app.balance(&star).await, "0.00");
}

#[tokio::test]
async fn an_unanswered_paid_dm_is_refunded_by_the_ledger_at_the_deadline() {
    let config = ServerConfig {
        paid_dm_timeout_seconds: 1,
        ..test_config()
    };
    let app = spawn_app_with(config).await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "10.00", CARD_OK).await.status(), 201);
    set_price(&app, &star, "4.00").await;
    let sent = json_of(message(&app, &fan, "star", "anyone there?", Some("4.00")).await).await;
    let dm_id = sent["paid_dm"]["id"].as_str().unwrap().to_owned();
    let mut status = String::new();
    for _ in 0..100 {
        status = paid_dm_status(&app, &fan, &dm_id).await;
        if status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    // The refund is the ledger's expiry: nothing to pay out, and nothing moved.
    let late = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/paid-dms/{dm_id}/accept"),
        &star,
        None,
        None,
    )
    .await;
    assert_eq!(late.status(), 409);
    let reply = json_of(message(&app, &star, "fan", "sorry, late", None).await).await;
    assert_eq!(reply["settled"], json!([]));
    assert_eq!(app.balance(&star).await, "0.00");
    assert_eq!(app.balance(&fan).await, "10.00");
    // The fan can pay again now that nobody answered: the thread is still closed.
    let again = message(&app, &fan, "star", "again", None).await;
    assert_eq!(again.status(), 201, "the star wrote, so the thread is open");
}

async fn notifications_of_kind(app: &TestApp, token: &str, kind: &str) -> usize {
    let page = json_of(
        call(
            app,
            reqwest::Method::GET,
            "/v1/notifications",
            token,
            None,
            None,
        )
        .await,
    )
    .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == kind)
        .count()
}

#[tokio::test]
async fn a_paid_dm_refunded_at_the_deadline_is_announced_exactly_once() {
    let config = ServerConfig {
        paid_dm_timeout_seconds: 1,
        ..test_config()
    };
    let app = spawn_app_with(config).await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "10.00", CARD_OK).await.status(), 201);
    set_price(&app, &star, "4.00").await;
    let sent = json_of(message(&app, &fan, "star", "still there?", Some("4.00")).await).await;
    let dm_id = sent["paid_dm"]["id"].as_str().unwrap().to_owned();
    // The expiry job records the ledger's refund: the fan hears of it, once.
    let mut refunds = 0;
    for _ in 0..100 {
        refunds = notifications_of_kind(&app, &fan, "paid_dm_refunded").await;
        if refunds > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refunds, 1);
    assert_eq!(paid_dm_status(&app, &fan, &dm_id).await, "expired");
    // Several more runs of the job later, still one.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        notifications_of_kind(&app, &fan, "paid_dm_refunded").await,
        1
    );
    assert_eq!(app.balance(&fan).await, "10.00");
    assert_eq!(app.balance(&star).await, "0.00");
    app.stop().await;
}
