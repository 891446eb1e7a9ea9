#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Profiles, follows, posts and tips against the real server: a tip moves the
//! creator's share and the platform fee as one chain, once per key, and a post
//! counts its tips without showing amounts.

mod common;

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

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn people_edit_profiles_follow_and_read_a_feed() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let edited = call(
        &app,
        reqwest::Method::POST,
        "/v1/me/profile",
        &sara,
        None,
        Some(json!({"display_name": "Sara A.", "bio": "Paints on weekends."})),
    )
    .await;
    assert_eq!(edited.status(), 200);
    let bad = call(
        &app,
        reqwest::Method::POST,
        "/v1/me/profile",
        &sara,
        None,
        Some(json!({"display_name": "", "bio": ""})),
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(problem(bad).await.code, "invalid_display_name");

    for _ in 0..2 {
        let followed = call(
            &app,
            reqwest::Method::POST,
            "/v1/people/sara/follow",
            &omar,
            None,
            None,
        )
        .await;
        assert_eq!(followed.status(), 200);
    }
    let profile = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/people/@sara",
            &omar,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(profile["display_name"], "Sara A.");
    assert_eq!(profile["bio"], "Paints on weekends.");
    assert_eq!(profile["followers"], 1, "following twice counts once");
    let own = call(
        &app,
        reqwest::Method::POST,
        "/v1/people/omar/follow",
        &omar,
        None,
        None,
    )
    .await;
    assert_eq!(own.status(), 422);
    assert_eq!(problem(own).await.code, "cannot_follow_yourself");
    let nobody = call(
        &app,
        reqwest::Method::GET,
        "/v1/people/nobody_here",
        &omar,
        None,
        None,
    )
    .await;
    assert_eq!(nobody.status(), 404);

    let first = json_of(
        call(
            &app,
            reqwest::Method::POST,
            "/v1/posts",
            &sara,
            None,
            Some(json!({"text": "first"})),
        )
        .await,
    )
    .await;
    let second = json_of(
        call(
            &app,
            reqwest::Method::POST,
            "/v1/posts",
            &sara,
            None,
            Some(json!({"text": "second"})),
        )
        .await,
    )
    .await;
    let empty = call(
        &app,
        reqwest::Method::POST,
        "/v1/posts",
        &sara,
        None,
        Some(json!({"text": "  "})),
    )
    .await;
    assert_eq!(problem(empty).await.code, "invalid_post_text");
    let feed = json_of(call(&app, reqwest::Method::GET, "/v1/feed", &omar, None, None).await).await;
    let ids: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ]
    );

    let unfollowed = call(
        &app,
        reqwest::Method::DELETE,
        "/v1/people/sara/follow",
        &omar,
        None,
        None,
    )
    .await;
    assert_eq!(json_of(unfollowed).await["followers"], 0);
    let feed = json_of(call(&app, reqwest::Method::GET, "/v1/feed", &omar, None, None).await).await;
    assert!(feed["items"].as_array().unwrap().is_empty());
    let sara_posts = || async {
        let posts = json_of(
            call(
                &app,
                reqwest::Method::GET,
                "/v1/people/sara/posts",
                &omar,
                None,
                None,
            )
            .await,
        )
        .await;
        posts["items"].as_array().unwrap().len()
    };
    assert_eq!(sara_posts().await, 2);

    // Under an Idempotency-Key a retried post is the first one again, not a third.
    let post = |key: &'static str, text: &'static str| {
        call(
            &app,
            reqwest::Method::POST,
            "/v1/posts",
            &sara,
            Some(key),
            Some(json!({"text": text})),
        )
    };
    let keyed = post("post-key-1", "third").await;
    assert_eq!(keyed.status(), 201);
    assert!(keyed.headers().get("idempotent-replayed").is_none());
    let keyed = json_of(keyed).await;
    let retried = post("post-key-1", "third").await;
    assert_eq!(retried.status(), 201);
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(retried).await["id"], keyed["id"]);
    let reused = post("post-key-1", "another text").await;
    assert_eq!(reused.status(), 422);
    assert_eq!(problem(reused).await.code, "idempotency_key_reused");
    assert_eq!(sara_posts().await, 3);
}

#[tokio::test]
async fn a_tip_pays_the_creator_less_the_fee_in_one_chain_once_per_key() {
    let config = ServerConfig {
        tip_fee_bps: 1_000,
        ..test_config()
    };
    let app = spawn_app_with(config).await;
    let lina = app.person("lina").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "20.00", CARD_OK).await.status(), 201);
    let post = json_of(
        call(
            &app,
            reqwest::Method::POST,
            "/v1/posts",
            &lina,
            None,
            Some(json!({"text": "new drawing"})),
        )
        .await,
    )
    .await;
    let post_id = post["id"].as_str().unwrap();
    let body = json!({"post_id": post_id, "amount": "5.00", "currency": "USD", "note": "love it", "public_note": true});
    let tipped = call(
        &app,
        reqwest::Method::POST,
        "/v1/tips",
        &fan,
        Some("tip-1"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(tipped.status(), 201);
    let tip = json_of(tipped).await;
    assert_eq!(tip["to"], "lina");
    assert_eq!(tip["fee"], "0.50");
    let replay = call(
        &app,
        reqwest::Method::POST,
        "/v1/tips",
        &fan,
        Some("tip-1"),
        Some(body),
    )
    .await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(replay).await["id"], tip["id"]);
    assert_eq!(app.balance(&fan).await, "15.00");
    assert_eq!(app.balance(&lina).await, "4.50");

    // A profile tip with the same key but different content is a reuse.
    let reused = call(
        &app,
        reqwest::Method::POST,
        "/v1/tips",
        &fan,
        Some("tip-1"),
        Some(json!({"to": "lina", "amount": "1.00", "currency": "USD"})),
    )
    .await;
    assert_eq!(problem(reused).await.code, "idempotency_key_reused");
    let profile_tip = call(
        &app,
        reqwest::Method::POST,
        "/v1/tips",
        &fan,
        Some("tip-2"),
        Some(json!({"to": "@lina", "amount": "1.00", "currency": "USD"})),
    )
    .await;
    assert_eq!(profile_tip.status(), 201);
    let counted = json_of(
        call(
            &app,
            reqwest::Method::GET,
            &format!("/v1/posts/{post_id}"),
            &fan,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(counted["tips"], 1, "the profile tip is not the post's");
    assert!(counted.get("amount").is_none());

    // Refusals move nothing.
    for (body, status, code) in [
        (
            json!({"to": "fan", "amount": "1.00", "currency": "USD"}),
            422,
            "cannot_pay_yourself",
        ),
        (
            json!({"to": "lina", "amount": "100.00", "currency": "USD"}),
            422,
            "insufficient_funds",
        ),
        (
            json!({"post_id": "00000000000000000000000000000001", "amount": "1.00", "currency": "USD"}),
            404,
            "post_not_found",
        ),
        (
            json!({"amount": "1.00", "currency": "USD"}),
            400,
            "invalid_tip_target",
        ),
        (
            json!({"to": "lina", "post_id": post_id, "amount": "1.00", "currency": "USD"}),
            400,
            "invalid_tip_target",
        ),
    ] {
        let key = format!("refused-{}", rand::random::<u64>());
        let response = call(
            &app,
            reqwest::Method::POST,
            "/v1/tips",
            &fan,
            Some(&key),
            Some(body.clone()),
        )
        .await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(problem(response).await.code, code, "{body}");
    }
    assert_eq!(app.balance(&fan).await, "14.00");
    assert_eq!(app.balance(&lina).await, "5.40");

    // Both sides see the tip in their activity; the creator also sees the fee.
    let fans = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/activity?type=tip",
            &fan,
            None,
            None,
        )
        .await,
    )
    .await;
    let lines: Vec<(&str, &str)> = fans["items"]
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
    assert_eq!(lines, [("lina", "1.00"), ("lina", "5.00")]);
    let linas = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/activity",
            &lina,
            None,
            None,
        )
        .await,
    )
    .await;
    let lines: Vec<(&str, &str, &str)> = linas["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["counterparty"].as_str().unwrap(),
                i["direction"].as_str().unwrap(),
                i["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("platform fee", "out", "0.10"),
            ("fan", "in", "1.00"),
            ("platform fee", "out", "0.50"),
            ("fan", "in", "5.00"),
        ]
    );
}

#[tokio::test]
async fn a_profile_has_an_https_avatar_kept_until_changed() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let edit = |body: Value| {
        let app = &app;
        let sara = sara.clone();
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/v1/me/profile",
                &sara,
                None,
                Some(body),
            )
            .await
        }
    };
    let avatar = "https://images.example.com/sara.png?size=128";
    let set = edit(json!({"display_name": "Sara", "avatar_url": avatar})).await;
    assert_eq!(set.status(), 200);
    assert_eq!(json_of(set).await["avatar_url"], avatar);
    for bad in [
        "http://images.example.com/sara.png".to_owned(),
        "javascript:alert(1)".to_owned(),
        "https://example.com/a b.png".to_owned(),
        format!("https://example.com/{}", "a".repeat(500)),
    ] {
        let refused = edit(json!({"display_name": "Sara", "avatar_url": bad})).await;
        assert_eq!(refused.status(), 400, "{bad}");
        let problem = problem(refused).await;
        assert_eq!(problem.code, "invalid_avatar_url");
    }
    // A refused edit changed nothing; an edit without the field keeps the avatar.
    let kept = edit(json!({"display_name": "Sara K.", "bio": "hi"})).await;
    assert_eq!(json_of(kept).await["avatar_url"], avatar);
    let seen = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/people/sara",
            &omar,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(seen["avatar_url"], avatar);
    assert_eq!(seen["display_name"], "Sara K.");
    let removed = edit(json!({"display_name": "Sara K.", "avatar_url": ""})).await;
    assert!(json_of(removed).await["avatar_url"].is_null());
    app.stop().await;
}
