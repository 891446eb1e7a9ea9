#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Logs never hold a secret: this test captures every log line the server writes at
//! `trace` level (JSON, as in production) while a person signs up, logs in, funds
//! with a card, pays, sets up TOTP and changes the password, and an app registers,
//! links, gets a token and a webhook secret. Then it greps the capture for every
//! planted or issued secret: passwords, card numbers, session and app tokens, the
//! API key, the TOTP secret, the webhook signing secret. (A 6-digit TOTP code is not
//! grepped for: it occurs by chance inside timestamps and ids.)

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{spawn_app_with, test_config, OPERATOR_TOKEN, PASSWORD};
use mizan_app::totp::{base32_decode, code_at, STEP_SECONDS};
use serde_json::{json, Value};

/// Every line the subscriber writes, kept in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

const CARD: &str = "4242424242424242";
const DECLINED_CARD: &str = "4000000000009995";
const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,hyper=info,hyper_util=info,reqwest=info,h2=info,tokio=info,runtime=info,mio=info",
        ))
        .with_writer(capture.clone())
        .try_init()
        .unwrap();

    let list = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/ofac");
    let app = spawn_app_with(mizan_api::ServerConfig {
        sanctions_dir: Some(list),
        ..test_config()
    })
    .await;
    // A legal name given at sign-up is screened (a hit: a case and a freeze) and
    // sealed in the vault; it is never logged.
    let named = json!({"handle": "manuel", "email": "manuel@example.com",
        "password": PASSWORD, "legal_name": "Manuel Noriega"});
    let response = app
        .client
        .post(app.url("/v1/people"))
        .json(&named)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let sara = app.person("sara").await;
    app.person("omar").await;
    assert_eq!(app.fund(&sara, "50.00", CARD).await.status(), 201);
    assert_eq!(app.fund(&sara, "5.00", DECLINED_CARD).await.status(), 402);
    let paid = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&sara)
        .header("Idempotency-Key", "log-test")
        .json(&json!({"to": "omar", "amount": "1.00", "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 201);
    // A failed log-in with a near-miss password.
    let failed = app
        .client
        .post(app.url("/v1/sessions"))
        .json(&json!({"login": "sara", "password": "correct horse battery!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

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
    let totp_secret = enrolment["secret"].as_str().unwrap().to_owned();
    let now_step = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / STEP_SECONDS;
    let code = format!(
        "{:06}",
        code_at(&base32_decode(&totp_secret).unwrap(), now_step)
    );
    let confirmed = app
        .client
        .post(app.url("/v1/me/totp/confirm"))
        .bearer_auth(&sara)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 204);
    let changed = app
        .client
        .post(app.url("/v1/me/password"))
        .bearer_auth(&sara)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 204);

    let registered: Value = app
        .client
        .post(app.url("/v1/apps"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({"name": "Chat"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_key = registered["api_key"].as_str().unwrap().to_owned();
    let request: Value = app
        .client
        .post(app.url("/v1/app/link-requests"))
        .bearer_auth(&api_key)
        .json(&json!({"handle": "sara", "external_user_id": "u-1", "scopes": ["wallet:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let approved = app
        .client
        .post(app.url(&format!(
            "/v1/me/link-requests/{}/approve",
            request["id"].as_str().unwrap()
        )))
        .bearer_auth(&sara)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let token: Value = app
        .client
        .post(app.url("/v1/app/tokens"))
        .bearer_auth(&api_key)
        .json(&json!({"external_user_id": "u-1", "scopes": ["wallet:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(app.balance(&app_token).await, "49.00");
    let endpoint: Value = app
        .client
        .post(app.url("/v1/app/webhook-endpoints"))
        .bearer_auth(&api_key)
        .json(&json!({"url": "http://127.0.0.1:9/hooks", "events": ["payment.succeeded"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_secret = endpoint["secret"].as_str().unwrap().to_owned();
    app.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The capture is real: the requests and the use cases did log.
    assert!(logs.contains("payment succeeded"), "nothing captured");
    assert!(logs.contains("/v1/payments"), "no request spans captured");
    assert!(
        logs.contains("compliance case opened"),
        "the sign-up was screened"
    );
    let planted = [
        ("password", PASSWORD),
        ("near-miss password", "correct horse battery!"),
        ("new password", NEW_PASSWORD),
        ("card number", CARD),
        ("declined card number", DECLINED_CARD),
        ("session token", sara.as_str()),
        ("operator token", OPERATOR_TOKEN),
        ("API key", api_key.as_str()),
        ("app token", app_token.as_str()),
        ("TOTP secret", totp_secret.as_str()),
        ("webhook secret", webhook_secret.as_str()),
        ("legal name given at sign-up", "Manuel Noriega"),
    ];
    for (what, value) in planted {
        assert!(
            !logs.contains(value),
            "the {what} appears in the logs:\n{}",
            logs.lines()
                .filter(|line| line.contains(value))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
