#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sign-up, log-in, `/v1/me` and log-out against the real server over TCP, on a fresh
//! SQLite store per test.

mod common;

use common::*;
use mizan_ledger::{AccountCode, LedgerReader};
use serde_json::{json, Value};

impl TestApp {
    async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn signup(&self, handle: &str, email: &str, password: &str) -> reqwest::Response {
        let body = json!({"handle": handle, "email": email, "password": password});
        self.post_json("/v1/people", &body).await
    }

    async fn login(&self, login: &str, password: &str) -> reqwest::Response {
        let body = json!({"login": login, "password": password});
        self.post_json("/v1/sessions", &body).await
    }
}

fn open_reader(store: &TestStore) -> Box<dyn LedgerReader> {
    store.location.open_reader().unwrap()
}

#[tokio::test]
async fn signup_login_me_logout() {
    let app = spawn_app().await;
    let response = app.signup("Sara_1", " Sara@Example.com ", PASSWORD).await;
    assert_eq!(response.status(), 201);
    let person: Value = response.json().await.unwrap();
    assert_eq!(person["handle"], "sara_1");
    assert_eq!(person["email"], "sara@example.com");
    assert_eq!(person["wallet"]["currency"], "USD");
    assert_eq!(person["wallet"]["balance"], "0.00");
    assert_eq!(person["wallet"]["account_id"].as_str().unwrap().len(), 32);

    let response = app.login("SARA_1", PASSWORD).await;
    assert_eq!(response.status(), 201);
    let cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let session: Value = response.json().await.unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "32 bytes, base64url without padding");
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(cookie.starts_with(&format!("mizan_session={token};")));
    for flag in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=2592000",
    ] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }

    let response = app.me(&token).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me, person);

    let by_cookie = app
        .client
        .get(app.url("/v1/me"))
        .header(
            reqwest::header::COOKIE,
            format!("other=1; mizan_session={token}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);

    let by_email = app.login("sara@example.com", PASSWORD).await;
    assert_eq!(by_email.status(), 201);

    let response = app
        .client
        .delete(app.url("/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    let response = app.me(&token).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()[reqwest::header::WWW_AUTHENTICATE],
        "Bearer"
    );
    assert_eq!(problem(response).await.code, "unauthenticated");
    app.stop().await;
}

#[tokio::test]
async fn me_without_or_with_an_unknown_token_is_401() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(problem(response).await.code, "unauthenticated");
    let response = app.me("not-a-token").await;
    assert_eq!(response.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn duplicate_handle_or_email_is_409_and_creates_one_wallet() {
    let app = spawn_app().await;
    assert_eq!(
        app.signup("omar", "omar@example.com", PASSWORD)
            .await
            .status(),
        201
    );

    let response = app.signup("OMAR", "other@example.com", PASSWORD).await;
    assert_eq!(response.status(), 409);
    let body = problem(response).await;
    assert_eq!(body.code, "handle_taken");
    assert_eq!(body.field.as_deref(), Some("handle"));

    let response = app.signup("omar2", "Omar@Example.com", PASSWORD).await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await.code, "email_taken");

    let data = app.stop().await;
    let (accounts, outbox) = tokio::task::spawn_blocking(move || {
        let mut reader = open_reader(&data);
        (
            reader.all_accounts().unwrap(),
            reader.outbox(0, 10).unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(outbox.len(), 1, "one person.created event");
    assert_eq!(outbox[0].1, "person.created");
    let wallets = accounts
        .iter()
        .filter(|account| account.code == AccountCode::UserWallet)
        .count();
    assert_eq!(wallets, 1);
}

#[tokio::test]
async fn bad_fields_are_400_with_code_and_field() {
    let app = spawn_app().await;
    let cases = [
        (
            ("ab", "a@example.com", PASSWORD),
            "invalid_handle",
            "handle",
        ),
        (
            ("has-dash", "a@example.com", PASSWORD),
            "invalid_handle",
            "handle",
        ),
        (
            ("amina", "not-an-email", PASSWORD),
            "invalid_email",
            "email",
        ),
        (
            ("amina", "a b@example.com", PASSWORD),
            "invalid_email",
            "email",
        ),
        (
            ("amina", "a@example.com", "short"),
            "weak_password",
            "password",
        ),
    ];
    for ((handle, email, password), code, field) in cases {
        let response = app.signup(handle, email, password).await;
        assert_eq!(response.status(), 400, "{handle} {email}");
        let body = problem(response).await;
        assert_eq!(body.code, code);
        assert_eq!(body.field.as_deref(), Some(field));
    }
    app.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400_invalid_body() {
    let app = spawn_app().await;
    let unknown =
        json!({"handle": "amina", "email": "a@example.com", "password": PASSWORD, "admin": true});
    let wrong_type = json!({"handle": 7, "email": "a@example.com", "password": PASSWORD});
    let missing = json!({"handle": "amina"});
    for body in [unknown, wrong_type, missing] {
        let response = app.post_json("/v1/people", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(problem(response).await.code, "invalid_body");
    }
    let response = app
        .client
        .post(app.url("/v1/sessions"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await.code, "invalid_body");
    app.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_login_are_401() {
    let app = spawn_app().await;
    assert_eq!(
        app.signup("layla", "layla@example.com", PASSWORD)
            .await
            .status(),
        201
    );
    for (login, password) in [
        ("layla", "wrong password!"),
        ("nobody", PASSWORD),
        ("nobody@example.com", PASSWORD),
    ] {
        let response = app.login(login, password).await;
        assert_eq!(response.status(), 401, "{login}");
        assert!(response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_none());
        assert_eq!(problem(response).await.code, "invalid_credentials");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signups_of_one_handle_create_one_person() {
    let app = spawn_app().await;
    let signups: Vec<_> = (0..10)
        .map(|index| {
            let client = app.client.clone();
            let url = app.url("/v1/people");
            let body = json!({"handle": "twin", "email": format!("twin{index}@example.com"), "password": PASSWORD});
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for signup in signups {
        statuses.push(signup.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses[0], 201);
    assert!(
        statuses[1..].iter().all(|status| *status == 409),
        "{statuses:?}"
    );
    let data = app.stop().await;
    let accounts = tokio::task::spawn_blocking(move || open_reader(&data).all_accounts().unwrap())
        .await
        .unwrap();
    let wallets = accounts
        .iter()
        .filter(|account| account.code == AccountCode::UserWallet)
        .count();
    assert_eq!(
        wallets, 1,
        "one wallet; the rest are the platform's accounts"
    );
}

#[tokio::test]
async fn openapi_lists_the_identity_operations() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    let document: Value = response.json().await.unwrap();
    let paths = &document["paths"];
    assert!(paths["/v1/people"]["post"].is_object());
    assert!(paths["/v1/sessions"]["post"].is_object());
    assert!(paths["/v1/sessions/current"]["delete"].is_object());
    assert!(paths["/v1/me"]["get"].is_object());
    assert!(paths["/v1/funding"]["post"].is_object());
    assert!(paths["/v1/payments"]["post"].is_object());
    assert!(paths["/v1/payments/{id}"]["get"].is_object());
    // Every limited operation documents its 429; the probes are never limited.
    let limited = &paths["/v1/payments"]["post"]["responses"]["429"];
    assert!(limited["headers"]["Retry-After"].is_object(), "{limited}");
    assert!(paths["/v1/me/apps/{app_id}"]["delete"]["responses"]["429"].is_object());
    assert!(paths["/healthz"]["get"]["responses"]["429"].is_null());
    app.stop().await;
}
