#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Apps act for people who consented, and receive signed webhooks about them:
//! real server, real HTTP, a real local webhook receiver.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{problem, spawn_app_with, test_config, TestApp, CARD_OK, OPERATOR_TOKEN};
use mizan_app::webhooks::verify_signature;
use serde_json::{json, Value};

async fn register_app(app: &TestApp, name: &str) -> (String, String) {
    let response = app
        .client
        .post(app.url("/v1/apps"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let key = body["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("mzk_"));
    (body["id"].as_str().unwrap().to_owned(), key)
}

async fn post(app: &TestApp, path: &str, bearer: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, path: &str, bearer: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// The app asks, the person approves; answers the app token for `scopes`.
async fn link(
    app: &TestApp,
    api_key: &str,
    session: &str,
    handle: &str,
    external: &str,
    scopes: &[&str],
) -> String {
    let response = post(
        app,
        "/v1/app/link-requests",
        api_key,
        json!({"handle": handle, "external_user_id": external, "scopes": scopes}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let request: Value = response.json().await.unwrap();
    assert_eq!(request["status"], "pending");
    let id = request["id"].as_str().unwrap();
    let pending: Value = get(app, "/v1/me/link-requests", session)
        .await
        .json()
        .await
        .unwrap();
    assert!(pending
        .as_array()
        .unwrap()
        .iter()
        .any(|item| item["id"] == id));
    let approved = post(
        app,
        &format!("/v1/me/link-requests/{id}/approve"),
        session,
        json!({}),
    )
    .await;
    assert_eq!(approved.status(), 200);
    let response = post(
        app,
        "/v1/app/tokens",
        api_key,
        json!({"external_user_id": external, "scopes": scopes}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let token: Value = response.json().await.unwrap();
    token["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_app_acts_for_a_person_only_with_consent_scopes_and_until_revoked() {
    let app = spawn_app_with(test_config()).await;
    let sara = app.person("sara").await;
    app.person("omar").await;
    assert_eq!(app.fund(&sara, "50.00", CARD_OK).await.status(), 201);

    // Only the operator registers apps.
    let denied = post(&app, "/v1/apps", &sara, json!({"name": "Chat"})).await;
    assert_eq!(problem(denied).await.code, "unauthenticated");
    let (chat_id, chat_key) = register_app(&app, "Chat").await;
    let listed: Value = get(&app, "/v1/apps", OPERATOR_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["name"], "Chat");
    assert!(listed[0].get("api_key").is_none(), "{listed}");

    // No token before the person says yes.
    let early = post(
        &app,
        "/v1/app/tokens",
        &chat_key,
        json!({"external_user_id": "u-1", "scopes": ["wallet:read"]}),
    )
    .await;
    assert_eq!(problem(early).await.code, "link_not_found");

    let read_only = link(&app, &chat_key, &sara, "sara", "u-1", &["wallet:read"]).await;
    let me: Value = get(&app, "/v1/me", &read_only).await.json().await.unwrap();
    assert_eq!(me["handle"], "sara");
    assert_eq!(me["wallet"]["balance"], "50.00");

    // wallet:read cannot move money, nor ask for more than was granted.
    let pay = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&read_only)
        .header("Idempotency-Key", "k1")
        .json(&json!({"to": "omar", "amount": "5.00", "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), 403);
    assert_eq!(problem(pay).await.code, "insufficient_scope");
    let more = post(
        &app,
        "/v1/app/tokens",
        &chat_key,
        json!({"external_user_id": "u-1", "scopes": ["payments:write"]}),
    )
    .await;
    assert_eq!(problem(more).await.code, "scope_not_granted");

    // An app token never stands in for the person's own consent.
    let sneaky = post(
        &app,
        "/v1/app/link-requests",
        &chat_key,
        json!({"handle": "sara", "external_user_id": "u-1", "scopes": ["payments:write"]}),
    )
    .await;
    let sneaky: Value = sneaky.json().await.unwrap();
    let approve_by_app = post(
        &app,
        &format!(
            "/v1/me/link-requests/{}/approve",
            sneaky["id"].as_str().unwrap()
        ),
        &read_only,
        json!({}),
    )
    .await;
    assert_eq!(problem(approve_by_app).await.code, "session_required");

    // Re-linking with payments:write lets the app pay for her.
    let writer = link(
        &app,
        &chat_key,
        &sara,
        "sara",
        "u-1",
        &["wallet:read", "payments:write"],
    )
    .await;
    let pay = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&writer)
        .header("Idempotency-Key", "k2")
        .json(&json!({"to": "omar", "amount": "5.00", "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), 201);
    assert_eq!(app.balance(&sara).await, "45.00");

    // Another person can't claim the same external id of this app.
    let omar = {
        let body = json!({"login": "omar", "password": common::PASSWORD});
        let session: Value = post(&app, "/v1/sessions", "", body)
            .await
            .json()
            .await
            .unwrap();
        session["token"].as_str().unwrap().to_owned()
    };
    let request: Value = post(
        &app,
        "/v1/app/link-requests",
        &chat_key,
        json!({"handle": "omar", "external_user_id": "u-1", "scopes": ["wallet:read"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let taken = post(
        &app,
        &format!(
            "/v1/me/link-requests/{}/approve",
            request["id"].as_str().unwrap()
        ),
        &omar,
        json!({}),
    )
    .await;
    assert_eq!(problem(taken).await.code, "external_user_id_taken");

    // She sees the app, revokes it, and its tokens stop at once.
    let apps: Value = get(&app, "/v1/me/apps", &sara).await.json().await.unwrap();
    assert_eq!(apps[0]["app_id"], chat_id.as_str());
    assert_eq!(apps[0]["revoked_at"], Value::Null);
    let revoked = app
        .client
        .delete(app.url(&format!("/v1/me/apps/{chat_id}")))
        .bearer_auth(&sara)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let after = get(&app, "/v1/me", &writer).await;
    assert_eq!(problem(after).await.code, "unauthenticated");
    let again = post(
        &app,
        "/v1/app/tokens",
        &chat_key,
        json!({"external_user_id": "u-1", "scopes": ["wallet:read"]}),
    )
    .await;
    assert_eq!(problem(again).await.code, "link_not_found");
    // Bad input: unknown scope, bad external id, unknown handle.
    for (body, code) in [
        (
            json!({"handle": "sara", "external_user_id": "u", "scopes": ["root"]}),
            "invalid_scope",
        ),
        (
            json!({"handle": "sara", "external_user_id": "has space", "scopes": ["wallet:read"]}),
            "invalid_external_user_id",
        ),
        (
            json!({"handle": "nobody_here", "external_user_id": "u", "scopes": ["wallet:read"]}),
            "person_not_found",
        ),
    ] {
        let response = post(&app, "/v1/app/link-requests", &chat_key, body).await;
        assert_eq!(problem(response).await.code, code);
    }
    app.stop().await;
}

#[derive(Clone, Default)]
struct Receiver {
    /// (signature header, body) of every request received.
    seen: Arc<Mutex<Vec<(String, String)>>>,
    /// How many requests to fail with 500 before answering 200.
    failures_left: Arc<Mutex<u32>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("mizan-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = String::from_utf8(body.to_vec()).unwrap();
    receiver.seen.lock().unwrap().push((signature, body));
    let mut failures = receiver.failures_left.lock().unwrap();
    if *failures > 0 {
        *failures -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn spawn_receiver(failures: u32) -> (String, Receiver) {
    let receiver = Receiver::default();
    *receiver.failures_left.lock().unwrap() = failures;
    let router = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, receiver)
}

async fn wait_for<F: Fn() -> bool>(what: &str, done: F) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn webhooks_are_signed_retried_listed_and_replayable_and_only_for_linked_people() {
    let app = spawn_app_with(test_config()).await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let (_, key) = register_app(&app, "Shop").await;
    let (url, receiver) = spawn_receiver(2).await;
    let created = post(
        &app,
        "/v1/app/webhook-endpoints",
        &key,
        json!({"url": url, "events": ["payment.succeeded", "funding.failed"]}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let endpoint: Value = created.json().await.unwrap();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let listed: Value = get(&app, "/v1/app/webhook-endpoints", &key)
        .await
        .json()
        .await
        .unwrap();
    assert!(listed[0].get("secret").is_none());
    let bad = post(
        &app,
        "/v1/app/webhook-endpoints",
        &key,
        json!({"url": "ftp://example.com", "events": ["payment.succeeded"]}),
    )
    .await;
    assert_eq!(problem(bad).await.code, "invalid_url");

    // Omar pays before anyone is linked: no delivery for that.
    assert_eq!(app.fund(&omar, "20.00", CARD_OK).await.status(), 201);
    let pay = |token: String, key: &'static str, amount: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/payments"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&json!({"to": "sara", "amount": amount, "currency": "USD"}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(pay(omar.clone(), "before", "1.00").await.status(), 201);

    link(&app, &key, &sara, "sara", "shop-sara", &["wallet:read"]).await;
    assert_eq!(pay(omar.clone(), "after", "2.00").await.status(), 201);

    // Two 500s, then 200: three attempts, one delivery, signed.
    wait_for("the delivery to succeed", || {
        receiver.seen.lock().unwrap().len() >= 3
    })
    .await;
    let seen = receiver.seen.lock().unwrap().clone();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (signature, body) in &seen {
        assert_eq!(verify_signature(&secret, signature, body, now_s), Ok(()));
        assert!(verify_signature("whsec_wrong", signature, body, now_s).is_err());
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "payment.succeeded");
        assert_eq!(
            event["data"]["amount"], "2.00",
            "only the linked payment: {body}"
        );
        assert!(!body.contains("payer"), "{body}");
    }
    assert_eq!(seen[0].1, seen[2].1, "every attempt sends the same body");

    // The delivery list shows it succeeded on the third attempt.
    let mut page = Value::Null;
    for _ in 0..100 {
        page = get(&app, "/v1/app/webhook-deliveries", &key)
            .await
            .json()
            .await
            .unwrap();
        if page["deliveries"][0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deliveries = page["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{page}");
    assert_eq!(deliveries[0]["status"], "succeeded");
    assert_eq!(deliveries[0]["attempts"], 3);
    assert_eq!(deliveries[0]["last_status_code"], 200);

    // Replay sends it once more, signed afresh.
    let id = deliveries[0]["id"].as_str().unwrap();
    let replayed = post(
        &app,
        &format!("/v1/app/webhook-deliveries/{id}/replay"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(replayed.status(), 200);
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["attempts"], 4);
    assert_eq!(receiver.seen.lock().unwrap().len(), 4);
    let missing = post(
        &app,
        "/v1/app/webhook-deliveries/0000_ffff/replay",
        &key,
        json!({}),
    )
    .await;
    assert_eq!(problem(missing).await.code, "delivery_not_found");
    let bad_cursor = get(&app, "/v1/app/webhook-deliveries?after=zz%20z", &key).await;
    assert_eq!(problem(bad_cursor).await.code, "invalid_cursor");

    // A declined card for the linked person: funding.failed, delivered.
    let declined = app.fund(&sara, "5.00", "4000000000009995").await;
    assert_eq!(declined.status(), 402);
    wait_for("funding.failed", || {
        receiver
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, body)| body.contains("funding.failed"))
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_dead_endpoint_gives_up_after_the_attempts_and_payments_do_not_wait() {
    let app = spawn_app_with(test_config()).await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let (_, key) = register_app(&app, "Dead").await;
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", closed.local_addr().unwrap());
    drop(closed);
    let created = post(
        &app,
        "/v1/app/webhook-endpoints",
        &key,
        json!({"url": url, "events": ["payment.succeeded"]}),
    )
    .await;
    assert_eq!(created.status(), 201);
    link(&app, &key, &sara, "sara", "dead-sara", &["wallet:read"]).await;
    assert_eq!(app.fund(&omar, "20.00", CARD_OK).await.status(), 201);
    for index in 0..5 {
        let response = app
            .client
            .post(app.url("/v1/payments"))
            .bearer_auth(&omar)
            .header("Idempotency-Key", format!("dead-{index}"))
            .json(&json!({"to": "sara", "amount": "1.00", "currency": "USD"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let mut page = Value::Null;
    for _ in 0..200 {
        page = get(&app, "/v1/app/webhook-deliveries", &key)
            .await
            .json()
            .await
            .unwrap();
        let all_failed = page["deliveries"]
            .as_array()
            .is_some_and(|items| items.len() == 5 && items.iter().all(|d| d["status"] == "failed"));
        if all_failed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let deliveries = page["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 5, "{page}");
    for delivery in deliveries {
        assert_eq!(delivery["status"], "failed", "{delivery}");
        assert_eq!(delivery["attempts"], 4);
        assert!(delivery["last_error"].as_str().unwrap().len() > 3);
    }
    // Paging: two at a time, then the rest.
    let first: Value = get(&app, "/v1/app/webhook-deliveries?limit=2", &key)
        .await
        .json()
        .await
        .unwrap();
    let after = first["next_after"].as_str().unwrap();
    let second: Value = get(
        &app,
        &format!("/v1/app/webhook-deliveries?limit=2&after={after}"),
        &key,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(first["deliveries"][0]["id"], second["deliveries"][0]["id"]);
    assert_eq!(second["deliveries"].as_array().unwrap().len(), 2);
    app.stop().await;
}

async fn post_keyed(
    app: &TestApp,
    path: &str,
    bearer: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Retries of the creating POSTs under one `Idempotency-Key` create one object; a
/// first answer that held a secret is never replayed (it is not stored).
#[tokio::test]
async fn creating_posts_retried_under_one_key_create_once() {
    let app = spawn_app_with(test_config()).await;
    app.person("sara").await;

    // Apps: the API key was shown once, so a retry is told what was created instead.
    let body = json!({"name": "Retry Chat"});
    let first = post_keyed(&app, "/v1/apps", OPERATOR_TOKEN, "app-1", &body).await;
    assert_eq!(first.status(), 201);
    let created: Value = first.json().await.unwrap();
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    let again = post_keyed(&app, "/v1/apps", OPERATOR_TOKEN, "app-1", &body).await;
    assert_eq!(again.status(), 409);
    let refused = problem(again).await;
    assert_eq!(refused.code, "idempotency_secret_not_replayable");
    assert!(refused.detail.contains(created["id"].as_str().unwrap()));
    assert!(!refused.detail.contains(&api_key));
    let other = json!({"name": "Another"});
    let reused = post_keyed(&app, "/v1/apps", OPERATOR_TOKEN, "app-1", &other).await;
    assert_eq!(reused.status(), 422);
    assert_eq!(problem(reused).await.code, "idempotency_key_reused");
    let apps: Value = get(&app, "/v1/apps", OPERATOR_TOKEN)
        .await
        .json()
        .await
        .unwrap();
    let named = |name: &str| {
        apps.as_array()
            .unwrap()
            .iter()
            .filter(|app| app["name"] == name)
            .count()
    };
    assert_eq!((named("Retry Chat"), named("Another")), (1, 0));

    // Link requests hold no secret: a retry answers the same request, replayed.
    let ask = json!({"handle": "sara", "external_user_id": "u-1", "scopes": ["wallet:read"]});
    let first = post_keyed(&app, "/v1/app/link-requests", &api_key, "link-1", &ask).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retries: Vec<_> = (0..10)
        .map(|_| spawn_keyed(&app, "/v1/app/link-requests", &api_key, "link-1", &ask))
        .collect();
    for retry in join_all(retries).await {
        assert_eq!(retry.status(), 201);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        let replayed: Value = retry.json().await.unwrap();
        assert_eq!(replayed, first);
    }
    let changed = json!({"handle": "sara", "external_user_id": "u-2", "scopes": ["wallet:read"]});
    let reused = post_keyed(&app, "/v1/app/link-requests", &api_key, "link-1", &changed).await;
    assert_eq!(reused.status(), 422);

    // Webhook endpoints: one endpoint, its signing secret never replayed.
    let endpoint = json!({"url": "http://127.0.0.1:9/hook", "events": ["payment.succeeded"]});
    let retries: Vec<_> = (0..10)
        .map(|_| {
            spawn_keyed(
                &app,
                "/v1/app/webhook-endpoints",
                &api_key,
                "hook-1",
                &endpoint,
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for retry in join_all(retries).await {
        let status = retry.status().as_u16();
        if status == 409 {
            assert_eq!(
                problem(retry).await.code,
                "idempotency_secret_not_replayable"
            );
        } else {
            let body: Value = retry.json().await.unwrap();
            assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    let listed: Value = get(&app, "/v1/app/webhook-endpoints", &api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // Without the header, every POST creates (as before).
    let plain = post(
        &app,
        "/v1/app/webhook-endpoints",
        &api_key,
        endpoint.clone(),
    )
    .await;
    assert_eq!(plain.status(), 201);
    app.stop().await;
}

/// The keyed POST on a task of its own, so retries race.
fn spawn_keyed(
    app: &TestApp,
    path: &str,
    bearer: &str,
    key: &str,
    body: &Value,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = app
        .client
        .post(app.url(path))
        .bearer_auth(bearer)
        .header("Idempotency-Key", key)
        .json(body);
    tokio::spawn(async move { request.send().await.unwrap() })
}

async fn join_all(
    handles: Vec<tokio::task::JoinHandle<reqwest::Response>>,
) -> Vec<reqwest::Response> {
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}
