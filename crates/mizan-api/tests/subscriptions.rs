#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Creator subscriptions against the real server: tiers, a subscription charged at
//! once (creator's share and platform fee as one chain, once per key), cancel, the
//! creator's subscriber list, subscriber-only posts, and bad input that changes
//! nothing. Renewals over time are tested with a manual clock in mizan-app.

mod common;

use common::*;
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

async fn post(
    app: &TestApp,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Value,
) -> reqwest::Response {
    call(app, reqwest::Method::POST, path, token, key, Some(body)).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> Value {
    let response = call(app, reqwest::Method::GET, path, token, None, None).await;
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

async fn refused(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(problem(response).await.code, code);
}

#[tokio::test]
async fn a_subscription_charges_once_reads_locked_posts_and_cancels() {
    let app = spawn_app_with(mizan_api::ServerConfig {
        subscription_fee_bps: 1_000,
        ..test_config()
    })
    .await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "20.00", CARD_OK).await.status(), 201);

    let gold = post(
        &app,
        "/v1/me/subscription-tiers",
        &star,
        None,
        json!({"name": "Gold", "price": "5.00", "currency": "USD", "perks": "Everything"}),
    )
    .await;
    assert_eq!(gold.status(), 201);
    let gold: Value = gold.json().await.unwrap();
    let silver = post(
        &app,
        "/v1/me/subscription-tiers",
        &star,
        None,
        json!({"name": "Silver", "price": "2.00", "currency": "USD"}),
    )
    .await;
    let silver: Value = silver.json().await.unwrap();
    let gold_id = gold["id"].as_str().unwrap();
    let silver_id = silver["id"].as_str().unwrap();

    // A post for Gold and up, and one for any subscriber.
    let gold_post = post(
        &app,
        "/v1/posts",
        &star,
        None,
        json!({"text": "gold only", "subscribers_only": true, "minimum_tier_id": gold_id}),
    )
    .await;
    assert_eq!(gold_post.status(), 201);
    let gold_post: Value = gold_post.json().await.unwrap();
    let any_post: Value = post(
        &app,
        "/v1/posts",
        &star,
        None,
        json!({"text": "for all subscribers", "subscribers_only": true}),
    )
    .await
    .json()
    .await
    .unwrap();
    let locked = get(
        &app,
        &format!("/v1/posts/{}", any_post["id"].as_str().unwrap()),
        &fan,
    )
    .await;
    assert_eq!(
        (locked["locked"].as_bool(), locked["text"].as_str()),
        (Some(true), Some(""))
    );
    let own = get(
        &app,
        &format!("/v1/posts/{}", gold_post["id"].as_str().unwrap()),
        &star,
    )
    .await;
    assert_eq!(own["text"], "gold only", "the author reads their own");

    let listed = get(&app, "/v1/people/star/subscription-tiers", &fan).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    // Subscribe to Silver: $2.00 now; the creator keeps $1.80, the platform $0.20.
    let first = post(
        &app,
        "/v1/subscriptions",
        &fan,
        Some("sub-1"),
        json!({"tier_id": silver_id}),
    )
    .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        (first["status"].as_str(), first["period"].as_u64()),
        (Some("active"), Some(0))
    );
    let replay = post(
        &app,
        "/v1/subscriptions",
        &fan,
        Some("sub-1"),
        json!({"tier_id": silver_id}),
    )
    .await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(app.balance(&fan).await, "18.00");
    assert_eq!(app.balance(&star).await, "1.80");
    let id = first["id"].as_str().unwrap();

    // Silver reads the any-tier post, not the Gold one; the feed agrees.
    let any = get(
        &app,
        &format!("/v1/posts/{}", any_post["id"].as_str().unwrap()),
        &fan,
    )
    .await;
    assert_eq!(
        (any["locked"].as_bool(), any["text"].as_str()),
        (Some(false), Some("for all subscribers"))
    );
    let profile_posts = get(&app, "/v1/people/star/posts", &fan).await;
    let gold_seen = profile_posts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == gold_post["id"])
        .unwrap()
        .clone();
    assert_eq!(
        (
            gold_seen["locked"].as_bool(),
            gold_seen["minimum_tier_name"].as_str()
        ),
        (Some(true), Some("Gold"))
    );

    // A second subscription to the same creator is refused and charges nothing.
    refused(
        post(
            &app,
            "/v1/subscriptions",
            &fan,
            Some("sub-2"),
            json!({"tier_id": gold_id}),
        )
        .await,
        409,
        "already_subscribed",
    )
    .await;
    assert_eq!(app.balance(&fan).await, "18.00");

    // Both sides see the charge in their activity; the creator also the fee.
    let activity = get(&app, "/v1/activity", &fan).await;
    let charge = &activity["items"][0];
    assert_eq!(
        (
            charge["counterparty"].as_str(),
            charge["note"].as_str(),
            charge["amount"].as_str()
        ),
        (Some("star"), Some("subscription: Silver"), Some("2.00"))
    );
    let activity = get(&app, "/v1/activity", &star).await;
    let lines: Vec<(String, String)> = activity["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["counterparty"].as_str().unwrap().to_owned(),
                item["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        lines.contains(&("fan".to_owned(), "2.00".to_owned())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("platform fee".to_owned(), "0.20".to_owned())),
        "{lines:?}"
    );

    let mine = get(&app, "/v1/subscriptions", &fan).await;
    assert_eq!(mine["items"][0]["id"], id);
    let subscribers = get(&app, "/v1/me/subscribers", &star).await;
    assert_eq!(subscribers["items"][0]["subscriber"], "fan");
    assert_eq!(
        get(&app, &format!("/v1/subscriptions/{id}"), &star).await["tier_name"],
        "Silver"
    );

    // Retiring Silver keeps the fan's subscription but takes nobody new.
    let retired = post(
        &app,
        &format!("/v1/me/subscription-tiers/{silver_id}/retire"),
        &star,
        None,
        json!({}),
    )
    .await;
    assert_eq!(retired.status(), 200);
    assert_eq!(
        get(&app, "/v1/people/star/subscription-tiers", &fan).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        get(&app, "/v1/me/subscription-tiers", &star).await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let other = app.person("other").await;
    assert_eq!(app.fund(&other, "5.00", CARD_OK).await.status(), 201);
    refused(
        post(
            &app,
            "/v1/subscriptions",
            &other,
            Some("o-1"),
            json!({"tier_id": silver_id}),
        )
        .await,
        409,
        "tier_retired",
    )
    .await;
    assert_eq!(app.balance(&other).await, "5.00");

    // Cancel: stays active to the period end; cancelling again answers the same.
    let canceled = post(
        &app,
        &format!("/v1/subscriptions/{id}/cancel"),
        &fan,
        None,
        json!({}),
    )
    .await;
    assert_eq!(canceled.status(), 200);
    let canceled: Value = canceled.json().await.unwrap();
    assert_eq!(
        (
            canceled["status"].as_str(),
            canceled["cancel_at_period_end"].as_bool()
        ),
        (Some("active"), Some(true))
    );
    let again = post(
        &app,
        &format!("/v1/subscriptions/{id}/cancel"),
        &fan,
        None,
        json!({}),
    )
    .await;
    assert_eq!(again.status(), 200);
    // The creator cannot cancel the fan's subscription.
    refused(
        post(
            &app,
            &format!("/v1/subscriptions/{id}/cancel"),
            &star,
            None,
            json!({}),
        )
        .await,
        404,
        "subscription_not_found",
    )
    .await;
    assert_eq!(app.balance(&fan).await, "18.00");
    assert_eq!(app.balance(&star).await, "1.80");
}

#[tokio::test]
async fn bad_input_gets_a_stable_code_and_changes_nothing() {
    let app = spawn_app().await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "3.00", CARD_OK).await.status(), 201);
    let tier_path = "/v1/me/subscription-tiers";
    for (body, status, code) in [
        (
            json!({"name": "", "price": "1.00", "currency": "USD"}),
            400,
            "invalid_tier_name",
        ),
        (
            json!({"name": "x".repeat(41), "price": "1.00", "currency": "USD"}),
            400,
            "invalid_tier_name",
        ),
        (
            json!({"name": "Gold", "price": "1000.01", "currency": "USD"}),
            400,
            "invalid_tier_price",
        ),
        (
            json!({"name": "Gold", "price": "0", "currency": "USD"}),
            400,
            "amount_must_be_positive",
        ),
        (
            json!({"name": "Gold", "price": "abc", "currency": "USD"}),
            400,
            "amount_malformed",
        ),
        (
            json!({"name": "Gold", "price": "1.00", "currency": "EUR"}),
            400,
            "currency_not_supported",
        ),
        (
            json!({"name": "Gold", "price": "1.00", "currency": "USD", "perks": "x".repeat(501)}),
            400,
            "invalid_tier_perks",
        ),
        (
            json!({"name": "Gold", "price": "1.00", "currency": "USD", "extra": 1}),
            400,
            "invalid_body",
        ),
    ] {
        refused(post(&app, tier_path, &star, None, body).await, status, code).await;
    }
    assert_eq!(
        get(&app, tier_path, &star).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Ten tiers at most.
    for n in 0..10 {
        let made = post(
            &app,
            tier_path,
            &star,
            None,
            json!({"name": format!("T{n}"), "price": "5.00", "currency": "USD"}),
        )
        .await;
        assert_eq!(made.status(), 201);
    }
    refused(
        post(
            &app,
            tier_path,
            &star,
            None,
            json!({"name": "T10", "price": "1.00", "currency": "USD"}),
        )
        .await,
        409,
        "too_many_tiers",
    )
    .await;
    let tiers = get(&app, tier_path, &star).await;
    let tier_id = tiers["items"][0]["id"].as_str().unwrap().to_owned();

    let subscribe = "/v1/subscriptions";
    refused(
        post(&app, subscribe, &fan, None, json!({"tier_id": tier_id})).await,
        400,
        "idempotency_key_required",
    )
    .await;
    refused(
        post(
            &app,
            subscribe,
            &fan,
            Some("k1"),
            json!({"tier_id": "nope"}),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    refused(
        post(
            &app,
            subscribe,
            &fan,
            Some("k2"),
            json!({"tier_id": "0".repeat(32)}),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    refused(
        post(&app, subscribe, &fan, Some("k3"), json!({})).await,
        400,
        "invalid_body",
    )
    .await;
    refused(
        post(
            &app,
            subscribe,
            &star,
            Some("k4"),
            json!({"tier_id": tier_id}),
        )
        .await,
        422,
        "cannot_pay_yourself",
    )
    .await;
    // $5.00 a month from a $3.00 wallet: nothing moves, no subscription exists.
    refused(
        post(
            &app,
            subscribe,
            &fan,
            Some("k5"),
            json!({"tier_id": tier_id}),
        )
        .await,
        422,
        "insufficient_funds",
    )
    .await;
    assert_eq!(app.balance(&fan).await, "3.00");
    assert_eq!(app.balance(&star).await, "0.00");
    assert_eq!(
        get(&app, subscribe, &fan).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        get(&app, "/v1/me/subscribers", &star).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    refused(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/subscriptions/zz",
            &fan,
            None,
            None,
        )
        .await,
        404,
        "subscription_not_found",
    )
    .await;
    refused(
        post(
            &app,
            &format!("/v1/subscriptions/{}/cancel", "0".repeat(32)),
            &fan,
            None,
            json!({}),
        )
        .await,
        404,
        "subscription_not_found",
    )
    .await;
    refused(
        post(
            &app,
            &format!("{tier_path}/{}/retire", "0".repeat(32)),
            &star,
            None,
            json!({}),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    // Someone else's tier cannot be retired, nor set as a post's minimum tier.
    refused(
        post(
            &app,
            &format!("{tier_path}/{tier_id}/retire"),
            &fan,
            None,
            json!({}),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    refused(
        post(
            &app,
            "/v1/posts",
            &fan,
            None,
            json!({"text": "x", "subscribers_only": true, "minimum_tier_id": tier_id}),
        )
        .await,
        404,
        "tier_not_found",
    )
    .await;
    refused(
        post(
            &app,
            "/v1/posts",
            &star,
            None,
            json!({"text": "x", "minimum_tier_id": tier_id}),
        )
        .await,
        400,
        "invalid_minimum_tier",
    )
    .await;
    assert_eq!(
        get(&app, "/v1/people/star/posts", &fan).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(!get(&app, tier_path, &star).await["items"][0]["retired"]
        .as_bool()
        .unwrap());
}

/// A tier created under an `Idempotency-Key` is created once: the retry answers the
/// same tier, another body under the key is refused, and the list holds one.
#[tokio::test]
async fn a_retried_tier_creation_creates_one_tier() {
    let app = spawn_app().await;
    let star = app.person("star").await;
    let gold = json!({"name": "Gold", "price": "5.00", "currency": "USD"});
    let first = post(
        &app,
        "/v1/me/subscription-tiers",
        &star,
        Some("tier-1"),
        gold.clone(),
    )
    .await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = post(
        &app,
        "/v1/me/subscription-tiers",
        &star,
        Some("tier-1"),
        gold,
    )
    .await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = json!({"name": "Silver", "price": "2.00", "currency": "USD"});
    refused(
        post(
            &app,
            "/v1/me/subscription-tiers",
            &star,
            Some("tier-1"),
            other,
        )
        .await,
        422,
        "idempotency_key_reused",
    )
    .await;
    let listed = get(&app, "/v1/me/subscription-tiers", &star).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    app.stop().await;
}
