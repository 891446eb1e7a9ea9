#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sessions, password change, TOTP and step-up, against the real server over TCP.

mod common;

use common::{problem, spawn_app_with, test_config, TestApp, CARD_OK, PASSWORD};
use mizan_app::totp::{base32_decode, code_at, STEP_SECONDS};
use serde_json::{json, Value};

async fn login(app: &TestApp, handle: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/sessions"))
        .json(&json!({"login": handle, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn token(app: &TestApp, handle: &str) -> String {
    let session: Value = login(app, handle, PASSWORD).await.json().await.unwrap();
    session["token"].as_str().unwrap().to_owned()
}

fn now_step() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    now / STEP_SECONDS
}

async fn pay(app: &TestApp, token: &str, key: &str, amount: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/payments"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"to": "omar", "amount": amount, "currency": "USD"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn sessions_are_listed_revoked_one_by_one_and_all_others_on_password_change() {
    let app = spawn_app_with(test_config()).await;
    let laptop = app.person("sara").await;
    let phone = token(&app, "sara").await;
    let tablet = token(&app, "sara").await;
    let listed: Value = app
        .client
        .get(app.url("/v1/sessions"))
        .bearer_auth(&laptop)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions = listed.as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{listed}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(!listed.to_string().contains(&phone), "tokens never listed");

    // Revoke the phone from the laptop.
    let phone_id = {
        let from_phone: Value = app
            .client
            .get(app.url("/v1/sessions"))
            .bearer_auth(&phone)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let current = from_phone
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .unwrap()
            .clone();
        current["id"].as_str().unwrap().to_owned()
    };
    let revoked = app
        .client
        .delete(app.url(&format!("/v1/sessions/{phone_id}")))
        .bearer_auth(&laptop)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    assert_eq!(app.me(&phone).await.status(), 401);

    // Another person cannot revoke her sessions, even knowing an id.
    let omar = app.person("omar").await;
    let foreign = app
        .client
        .delete(app.url(&format!("/v1/sessions/{phone_id}")))
        .bearer_auth(&omar)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(foreign).await.code, "session_not_found");

    // Password change: the wrong current password changes nothing.
    let change = |current: &'static str, new: &'static str| {
        let app = &app;
        let laptop = laptop.clone();
        async move {
            app.client
                .post(app.url("/v1/me/password"))
                .bearer_auth(laptop)
                .json(&json!({"current_password": current, "new_password": new}))
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = change("not my password", "brand new password").await;
    let wrong = problem(wrong).await;
    assert_eq!(wrong.code, "wrong_password");
    assert_eq!(wrong.field.as_deref(), Some("current_password"));
    let weak = problem(change(PASSWORD, "short").await).await;
    assert_eq!(weak.code, "weak_password");
    assert_eq!(weak.field.as_deref(), Some("new_password"));
    assert_eq!(login(&app, "sara", PASSWORD).await.status(), 201);

    let changed = change(PASSWORD, "brand new password").await;
    assert_eq!(changed.status(), 204);
    // The laptop (current) stays; the tablet and the log-in above are signed out.
    for (token, status) in [(&laptop, 200), (&tablet, 401)] {
        assert_eq!(app.me(token).await.status(), status);
    }
    assert_eq!(login(&app, "sara", PASSWORD).await.status(), 401);
    assert_eq!(
        login(&app, "sara", "brand new password").await.status(),
        201
    );
    app.stop().await;
}

#[tokio::test]
async fn large_payments_need_a_fresh_second_factor_once_totp_is_on() {
    let app = spawn_app_with(test_config()).await;
    let sara = app.person("sara").await;
    app.person("omar").await;
    assert_eq!(app.fund(&sara, "500.00", CARD_OK).await.status(), 201);

    // Without TOTP, a large payment goes through.
    assert_eq!(pay(&app, &sara, "big-1", "150.00").await.status(), 201);

    let enrolment: Value = app
        .client
        .post(app.url("/v1/me/totp"))
        .bearer_auth(&sara)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    assert!(enrolment["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Mizan:sara?secret="));
    let confirm = |code: String| {
        let app = &app;
        let sara = sara.clone();
        async move {
            app.client
                .post(app.url("/v1/me/totp/confirm"))
                .bearer_auth(sara)
                .json(&json!({"code": code}))
                .send()
                .await
                .unwrap()
        }
    };
    let step = now_step();
    let wrong = format!("{:06}", (code_at(&secret, step) + 1) % 1_000_000);
    assert_eq!(
        problem(confirm(wrong).await).await.code,
        "invalid_totp_code"
    );
    let code = format!("{:06}", code_at(&secret, step));
    assert_eq!(confirm(code.clone()).await.status(), 204);

    // Now 150.00 needs a step-up; 50.00 does not.
    let refused = pay(&app, &sara, "big-2", "150.00").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(problem(refused).await.code, "step_up_required");
    assert_eq!(pay(&app, &sara, "small", "50.00").await.status(), 201);

    let step_up = |code: String| {
        let app = &app;
        let sara = sara.clone();
        async move {
            app.client
                .post(app.url("/v1/sessions/current/step-up"))
                .bearer_auth(sara)
                .json(&json!({"code": code}))
                .send()
                .await
                .unwrap()
        }
    };
    // The code used to confirm is spent.
    assert_eq!(problem(step_up(code).await).await.code, "invalid_totp_code");
    let next = format!("{:06}", code_at(&secret, step + 1));
    assert_eq!(step_up(next.clone()).await.status(), 204);
    assert_eq!(problem(step_up(next).await).await.code, "invalid_totp_code");
    assert_eq!(pay(&app, &sara, "big-2", "150.00").await.status(), 201);
    assert_eq!(app.balance(&sara).await, "150.00");

    // A second session of hers has not stepped up.
    let other = token(&app, "sara").await;
    let refused = pay(&app, &other, "big-3", "100.00").await;
    assert_eq!(problem(refused).await.code, "step_up_required");
    app.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_ip_and_per_person() {
    // 12 a minute per IP: a burst of 2, then one every 5 s.
    let app = spawn_app_with(mizan_api::ServerConfig {
        rate_limit_ip_per_minute: 12,
        ..test_config()
    })
    .await;
    let docs = || app.client.get(app.url("/v1/openapi.json")).send();
    assert_eq!(docs().await.unwrap().status(), 200);
    assert_eq!(docs().await.unwrap().status(), 200);
    let limited = docs().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    assert_eq!(problem(limited).await.code, "rate_limited");
    // Probes are never limited.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.stop().await;

    // 6 a minute per person: a burst of 1. One person's limit leaves another alone.
    let app = spawn_app_with(mizan_api::ServerConfig {
        rate_limit_ip_per_minute: 0,
        rate_limit_person_per_minute: 6,
        ..test_config()
    })
    .await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.me(&sara).await.status(), 200);
    let limited = app.me(&sara).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(app.me(&omar).await.status(), 200);
    // Her other session shares her limit.
    let other = token(&app, "sara").await;
    assert_eq!(app.me(&other).await.status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn a_person_exports_their_own_data_without_secrets() {
    let app = spawn_app_with(test_config()).await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "20.00", CARD_OK).await.status(), 201);
    assert_eq!(pay(&app, &sara, "export-1", "3.50").await.status(), 201);
    let response = app
        .client
        .get(app.url("/v1/me/export"))
        .bearer_auth(&sara)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("mizan-sara.json"));
    let text = response.text().await.unwrap();
    let export: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(export["person"]["handle"], "sara");
    assert_eq!(export["wallet"]["balance"], "16.50");
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    let activity = export["activity"].as_array().unwrap();
    assert_eq!(activity.len(), 2, "{text}");
    assert_eq!(activity[0]["counterparty"], "omar");
    assert_eq!(activity[0]["amount"], "3.50");
    assert_eq!(export["activity_truncated"], false);
    for secret in [sara.as_str(), PASSWORD, CARD_OK, "argon2"] {
        assert!(!text.contains(secret), "the export holds {secret}");
    }
    // Omar's export is his own.
    let theirs: Value = app
        .client
        .get(app.url("/v1/me/export"))
        .bearer_auth(&omar)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["person"]["handle"], "omar");
    assert_eq!(theirs["wallet"]["balance"], "3.50");
    app.stop().await;
}
