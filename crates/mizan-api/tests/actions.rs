#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `Idempotency-Key` on the routes that act on something that already exists
//! (`mizan_api::idempotency`): a retry under the key answers the first answer and
//! acts once; the key is the caller's own; another request under it is refused.

mod common;

use common::*;
use serde_json::{json, Value};

const REPLAYED: &str = "idempotent-replayed";

async fn post(
    app: &TestApp,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).bearer_auth(token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Status, whether it was a replay, and the body.
async fn answer(response: reqwest::Response) -> (u16, bool, Value) {
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get(REPLAYED)
        .is_some_and(|value| value == "true");
    let text = response.text().await.unwrap();
    (status, replayed, serde_json::from_str(&text).unwrap())
}

/// A fan sends the star a paid DM of 3.00 (the star's price); answers its id.
async fn paid_dm(app: &TestApp, star: &str, fan: &str) -> String {
    let priced = post(
        app,
        "/v1/me/dm-settings",
        star,
        None,
        Some(json!({"paid_dms": true, "price": "3.00"})),
    )
    .await;
    assert_eq!(priced.status(), 200);
    let sent = post(
        app,
        "/v1/messages",
        fan,
        Some("first-message"),
        Some(json!({"to": "star", "text": "pick me", "offer": "3.00"})),
    )
    .await;
    assert_eq!(sent.status(), 201);
    let sent: Value = sent.json().await.unwrap();
    sent["paid_dm"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_paid_dm_accepted_twice_under_one_key_pays_out_once_and_answers_the_same() {
    let app = spawn_app().await;
    let star = app.person("star").await;
    let fan = app.person("fan").await;
    assert_eq!(app.fund(&fan, "10.00", CARD_OK).await.status(), 201);
    let dm = paid_dm(&app, &star, &fan).await;
    let accept = format!("/v1/paid-dms/{dm}/accept");

    let first = answer(post(&app, &accept, &star, Some("accept-1"), None).await).await;
    assert_eq!((first.0, first.1), (200, false), "{}", first.2);
    assert_eq!(first.2["status"], "paid");
    let again = answer(post(&app, &accept, &star, Some("accept-1"), None).await).await;
    assert_eq!(again, (200, true, first.2.clone()));
    assert_eq!(
        app.balance(&star).await,
        "2.70",
        "paid out once, less the cut"
    );
    assert_eq!(app.balance(&fan).await, "7.00");

    // Without the key, the second accept meets the settled DM, as before.
    let unkeyed = answer(post(&app, &accept, &star, None, None).await).await;
    assert_eq!(
        (unkeyed.0, unkeyed.2["code"].as_str()),
        (409, Some("paid_dm_not_pending"))
    );
    // The key on another request: refused, and nothing is run.
    let decline = format!("/v1/paid-dms/{dm}/decline");
    let reused = answer(post(&app, &decline, &star, Some("accept-1"), None).await).await;
    assert_eq!(
        (reused.0, reused.2["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // The key is the caller's own: the fan's "accept-1" runs for the fan, who may not.
    let fans = answer(post(&app, &accept, &fan, Some("accept-1"), None).await).await;
    assert_eq!((fans.0, fans.1), (403, false), "{}", fans.2);
    // A refusal is an answer too: the retry replays it.
    let fans_again = answer(post(&app, &accept, &fan, Some("accept-1"), None).await).await;
    assert_eq!(fans_again, (403, true, fans.2));
    // A malformed key changes nothing.
    let long = "k".repeat(256);
    let bad = answer(post(&app, &decline, &star, Some(&long), None).await).await;
    assert_eq!(
        (bad.0, bad.2["code"].as_str()),
        (400, Some("idempotency_key_invalid"))
    );
    assert_eq!(app.balance(&star).await, "2.70");
    assert_eq!(app.balance(&fan).await, "7.00");
}

#[tokio::test]
async fn twenty_notes_at_once_under_one_key_add_one_note() {
    let app = spawn_app().await;
    app.person("omar").await;
    let opened = app
        .client
        .post(app.url("/v1/cases"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"handle": "omar", "note": "Many small top-ups."}))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 201);
    let case: Value = opened.json().await.unwrap();
    let notes = format!("/v1/cases/{}/notes", case["id"].as_str().unwrap());
    let text = "Called the customer; the top-ups are rent shares.";

    let calls: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .client
                .post(app.url(&notes))
                .bearer_auth(OPERATOR_TOKEN)
                .header("Idempotency-Key", "note-7")
                .json(&json!({"text": text}));
            tokio::spawn(async move { request.send().await.unwrap() })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap());
    }
    let mut fresh = 0;
    for response in answers {
        let (status, replayed, body) = answer(response).await;
        match (status, replayed) {
            (200, false) => fresh += 1,
            (200, true) => {}
            (409, false) => assert_eq!(body["code"], "idempotency_request_in_progress"),
            other => panic!("{other:?} {body}"),
        }
    }
    assert_eq!(fresh, 1, "one request ran");
    let case = app
        .client
        .get(app.url(&format!("/v1/cases/{}", case["id"].as_str().unwrap())))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    let case: Value = case.json().await.unwrap();
    let added = case["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|note| note["text"] == text)
        .count();
    assert_eq!(added, 1, "{case}");
}

#[tokio::test]
async fn an_answer_holding_a_secret_is_not_kept_and_its_retry_is_refused() {
    let app = spawn_app().await;
    let amina = app.person("amina").await;
    let first = answer(post(&app, "/v1/me/totp", &amina, Some("totp-1"), None).await).await;
    assert_eq!(first.0, 201, "{}", first.2);
    let retry = answer(post(&app, "/v1/me/totp", &amina, Some("totp-1"), None).await).await;
    assert_eq!(
        (retry.0, retry.2["code"].as_str()),
        (409, Some("idempotency_secret_not_replayable"))
    );
    // Nothing of the secret was written next to the key.
    let store = app.stop().await;
    let claims = tokio::task::spawn_blocking(move || {
        store
            .reader()
            .documents_with_prefix("idempotency", "action:", None, 100)
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(claims.len(), 1);
    let secret = first.2["secret"].as_str().unwrap();
    let stored = String::from_utf8(claims[0].1.clone()).unwrap();
    assert!(!stored.contains(secret), "{stored}");
}
