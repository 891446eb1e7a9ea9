//! The operator console over real HTTP: a `mizan serve` (API and pages) on a fresh
//! SQLite store, driven like a browser that keeps its cookies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mizan_api::{AppState, ServerConfig};
use mizan_store::Location;
use reqwest::{header, redirect, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const OPERATOR_TOKEN: &str = "ops-test-token-0123456789abcdef";
const PASSWORD: &str = "correct horse battery";
const CARD_OK: &str = "4242424242424242";

struct TestApp {
    address: SocketAddr,
    /// Never follows redirects: the tests look at them.
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), mizan_api::ServeError>>,
    /// The server's state, to read the vault's access log.
    state: AppState,
    _data: tempfile::TempDir,
}

fn test_config(operator_token: Option<&str>) -> ServerConfig {
    ServerConfig {
        rate_limit_ip_per_minute: 0,
        rate_limit_person_per_minute: 0,
        rate_limit_app_per_minute: 0,
        operator_token: operator_token.map(|token| mizan_core::Secret::new(token.to_owned())),
        ..ServerConfig::default()
    }
}

async fn spawn_app(config: ServerConfig) -> TestApp {
    let data = tempfile::tempdir().unwrap();
    let location = Location::from_config(data.path(), None);
    let state = tokio::task::spawn_blocking(move || AppState::start(&location, config))
        .await
        .unwrap()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let signal = async move {
        let _ = signal.await;
    };
    let router = mizan_api::router_with(state.clone(), mizan_web::pages());
    let server = tokio::spawn(mizan_api::serve_router(
        listener,
        router,
        state.clone(),
        signal,
    ));
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        shutdown: Some(shutdown),
        server,
        state,
        _data: data,
    }
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Signs a person up through the JSON API and adds `amount` from a card.
    async fn person_with(&self, handle: &str, amount: &str) -> String {
        let body = json!({
            "handle": handle,
            "email": format!("{handle}@example.com"),
            "password": PASSWORD,
        });
        let response = self
            .client
            .post(self.url("/v1/people"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body = json!({"login": handle, "password": PASSWORD});
        let response = self
            .client
            .post(self.url("/v1/sessions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let session: Value = response.json().await.unwrap();
        let token = session["token"].as_str().unwrap().to_owned();
        let body = json!({"amount": amount, "currency": "USD", "card_number": CARD_OK});
        let response = self
            .client
            .post(self.url("/v1/funding"))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("fund-{handle}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        token
    }

    async fn stop(mut self) {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

/// The value of cookie `name` a response sets, if it sets one.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let pair = value.split(';').next()?;
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

/// A browser on the console: its CSRF cookie and, once logged in, its session.
struct Browser<'a> {
    app: &'a TestApp,
    csrf: String,
    session: Option<String>,
}

impl<'a> Browser<'a> {
    /// Opens the log-in page, which hands out the CSRF cookie.
    async fn open(app: &'a TestApp) -> Browser<'a> {
        let response = app.client.get(app.url("/ops/login")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let csrf = set_cookie(&response, "mizan_csrf").expect("a CSRF cookie");
        Browser {
            app,
            csrf,
            session: None,
        }
    }

    fn cookies(&self) -> String {
        match &self.session {
            Some(session) => format!("mizan_csrf={}; mizan_ops={session}", self.csrf),
            None => format!("mizan_csrf={}", self.csrf),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(path))
            .header(header::COOKIE, self.cookies())
            .send()
            .await
            .unwrap()
    }

    /// Posts a form; `with_csrf` adds the token field.
    async fn post(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        with_csrf: bool,
    ) -> reqwest::Response {
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        if with_csrf {
            body.push(("csrf", self.csrf.as_str()));
        }
        let encoded: String = body
            .iter()
            .map(|(name, value)| {
                format!(
                    "{}={}",
                    name,
                    value
                        .replace('%', "%25")
                        .replace(' ', "+")
                        .replace('&', "%26")
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        self.app
            .client
            .post(self.app.url(path))
            .header(header::COOKIE, self.cookies())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encoded)
            .send()
            .await
            .unwrap()
    }

    async fn log_in(&mut self, name: &str, token: &str) -> reqwest::Response {
        self.log_in_as(name, token, "admin").await
    }

    async fn log_in_as(&mut self, name: &str, token: &str, role: &str) -> reqwest::Response {
        let response = self
            .post(
                "/ops/login",
                &[("name", name), ("token", token), ("role", role)],
                true,
            )
            .await;
        if let Some(session) = set_cookie(&response, "mizan_ops") {
            self.session = Some(session);
        }
        response
    }

    /// GETs a page that must render, and checks it leaks no secret.
    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let html = response.text().await.unwrap();
        assert_no_secrets(&html, self.session.as_deref());
        html
    }
}

fn assert_no_secrets(html: &str, session: Option<&str>) {
    assert!(!html.contains(OPERATOR_TOKEN), "the operator token leaked");
    assert!(!html.contains(PASSWORD), "a password leaked");
    assert!(!html.contains(CARD_OK), "a card number leaked");
    assert!(!html.contains("$argon2"), "a password hash leaked");
    if let Some(session) = session {
        assert!(!html.contains(session), "the session token leaked");
    }
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

#[tokio::test]
async fn without_a_session_every_page_sends_you_to_log_in() {
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    for path in [
        "/ops",
        "/ops/people/bilal",
        "/ops/ledger",
        "/ops/audit",
        "/ops/webhooks",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/ops/login", "{path}");
    }
    // A made-up session is no session.
    let response = app
        .client
        .get(app.url("/ops"))
        .header(header::COOKIE, format!("mizan_ops={}", "ab".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn without_an_operator_token_there_is_no_console() {
    let app = spawn_app(test_config(None)).await;
    for path in ["/ops", "/ops/login", "/ops/audit"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_writes_nothing() {
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    let mut browser = Browser::open(&app).await;
    let response = browser
        .log_in("Mallory", "not-the-operator-token-at-all")
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(browser.session.is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("operator token is not right"), "{html}");
    assert_no_secrets(&html, None);
    // A bad name is refused even with the right token.
    let response = browser.log_in("<script>", OPERATOR_TOKEN).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(browser.session.is_none());
    assert_no_secrets(&response.text().await.unwrap(), None);

    let response = browser.log_in("Sara K.", OPERATOR_TOKEN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/ops");
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
    for part in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/ops",
        "Max-Age=28800",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let audit = browser.page("/ops/audit").await;
    // Only this log-in and this view: the refused attempts wrote nothing.
    assert_eq!(audit.matches("log_in").count(), 1, "{audit}");
    assert!(!audit.contains("Mallory"), "{audit}");
    assert_eq!(audit.matches(r#"<li class="entry">"#).count(), 2, "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn viewing_a_person_shows_their_wallet_and_is_audited() {
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    let person_token = app.person_with("bilal", "25.00").await;
    let mut browser = Browser::open(&app).await;
    browser.log_in("Sara K.", OPERATOR_TOKEN).await;

    let dashboard = browser.page("/ops").await;
    assert!(dashboard.contains("Sara K."), "{dashboard}");
    let search = browser.page("/ops/search?q=bil").await;
    assert!(search.contains(r#"href="/ops/people/bilal""#), "{search}");

    let html = browser.page("/ops/people/bilal").await;
    assert!(!html.contains(&person_token), "the person's session leaked");
    assert!(html.contains("@bilal"), "{html}");
    assert!(html.contains("bilal@example.com"), "{html}");
    assert!(html.contains("25.00 USD"), "{html}");
    assert!(
        html.contains("card funding") || html.contains("funding"),
        "{html}"
    );

    let audit = browser.page("/ops/audit").await;
    let newest_first = [
        "view_audit",
        "view_person",
        "search",
        "view_dashboard",
        "log_in",
    ];
    let positions: Vec<usize> = newest_first
        .iter()
        .map(|action| {
            audit
                .find(action)
                .unwrap_or_else(|| panic!("{action}: {audit}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "{audit}"
    );
    assert!(audit.contains("Sara K."), "{audit}");
    assert!(audit.contains(">bilal<"), "{audit}");

    let response = browser.get("/ops/people/nobody_here").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn payments_transfers_and_accounts_can_be_followed() {
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    let payer = app.person_with("bilal", "25.00").await;
    app.person_with("sara", "1.00").await;
    let body = json!({"to": "sara", "amount": "7.50", "currency": "USD", "note": "lunch"});
    let response = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&payer)
        .header("Idempotency-Key", "pay-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let payment: Value = response.json().await.unwrap();
    let payment_id = payment["id"].as_str().unwrap();
    let transfer_id = payment["transfer_id"].as_str().unwrap();

    let mut browser = Browser::open(&app).await;
    browser.log_in("ops", OPERATOR_TOKEN).await;
    let response = browser.get(&format!("/ops/search?q={payment_id}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/ops/payments/{payment_id}"));
    let html = browser.page(&format!("/ops/payments/{payment_id}")).await;
    assert!(html.contains("@bilal") && html.contains("@sara"), "{html}");
    assert!(
        html.contains("7.50 USD") && html.contains("lunch"),
        "{html}"
    );
    assert!(html.contains(transfer_id), "{html}");

    let response = browser
        .get(&format!("/ops/ledger/lookup?id={transfer_id}"))
        .await;
    assert_eq!(
        location(&response),
        format!("/ops/ledger/transfers/{transfer_id}")
    );
    let html = browser
        .page(&format!("/ops/ledger/transfers/{transfer_id}"))
        .await;
    assert!(
        html.contains("Chain hash") && html.contains("(payment)"),
        "{html}"
    );
    let account = html
        .split("/ops/ledger/accounts/")
        .nth(1)
        .and_then(|rest| rest.get(..32))
        .unwrap()
        .to_owned();
    let html = browser
        .page(&format!("/ops/ledger/accounts/{account}"))
        .await;
    assert!(html.contains("History, newest first"), "{html}");
    assert!(html.contains(transfer_id), "{html}");

    browser.page("/ops/ledger").await;
    browser.page("/ops/webhooks").await;
    let audit = browser.page("/ops/audit").await;
    for action in [
        "view_payment",
        "look_up_ledger",
        "view_transfer",
        "view_account",
        "view_ledger",
        "view_webhooks",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(audit.contains(payment_id), "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    let mut browser = Browser::open(&app).await;
    let response = browser
        .post(
            "/ops/login",
            &[("name", "ops"), ("token", OPERATOR_TOKEN)],
            false,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response, "mizan_ops").is_none());

    browser.log_in("ops", OPERATOR_TOKEN).await;
    assert!(browser.session.is_some());
    let response = browser.post("/ops/ledger/verify", &[], false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = browser.post("/ops/logout", &[], false).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Still signed in, and no verification was audited.
    let audit = browser.page("/ops/audit").await;
    assert!(!audit.contains("verify_ledger"), "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn the_ledger_verifies_and_log_out_ends_the_session() {
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    app.person_with("bilal", "25.00").await;
    let mut browser = Browser::open(&app).await;
    browser.log_in("ops", OPERATOR_TOKEN).await;
    let response = browser.post("/ops/ledger/verify", &[], true).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert_no_secrets(&html, browser.session.as_deref());
    assert!(
        html.contains("OK: the chain and every balance verify."),
        "{html}"
    );

    let response = browser.post("/ops/logout", &[], true).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/ops/login");
    let response = browser.get("/ops").await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the old session still works"
    );

    browser.log_in("ops", OPERATOR_TOKEN).await;
    let audit = browser.page("/ops/audit").await;
    assert!(
        audit.contains("verify_ledger") && audit.contains("log_out"),
        "{audit}"
    );
    app.stop().await;
}

/// POSTs JSON with a bearer token and answers the JSON body, asserting `status`.
async fn post_json(app: &TestApp, path: &str, bearer: &str, body: Value, status: u16) -> Value {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), status, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_webhook_log_shows_deliveries_and_no_secrets() {
    let config = ServerConfig {
        webhook_retry_base_ms: 50,
        webhook_attempts_max: 2,
        webhook_timeout_ms: 2_000,
        webhook_poll_ms: 20,
        ..test_config(Some(OPERATOR_TOKEN))
    };
    let app = spawn_app(config).await;
    let sara = app.person_with("sara", "1.00").await;
    let omar = app.person_with("omar", "20.00").await;
    let registered = post_json(
        &app,
        "/v1/apps",
        OPERATOR_TOKEN,
        json!({"name": "Shop"}),
        201,
    )
    .await;
    let api_key = registered["api_key"].as_str().unwrap().to_owned();
    // Nothing listens on port 9: every attempt fails, with an error that names the URL.
    let endpoint = json!({
        "url": "http://hookuser:hookpass@127.0.0.1:9/hook",
        "events": ["payment.succeeded"],
    });
    let endpoint = post_json(&app, "/v1/app/webhook-endpoints", &api_key, endpoint, 201).await;
    let endpoint_secret = endpoint["secret"].as_str().unwrap().to_owned();
    let request =
        json!({"handle": "sara", "external_user_id": "shop-sara", "scopes": ["wallet:read"]});
    let request = post_json(&app, "/v1/app/link-requests", &api_key, request, 201).await;
    let id = request["id"].as_str().unwrap();
    let approve = format!("/v1/me/link-requests/{id}/approve");
    post_json(&app, &approve, &sara, json!({}), 200).await;
    let payment = json!({"to": "sara", "amount": "2.00", "currency": "USD"});
    let response = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&omar)
        .header("Idempotency-Key", "pay-webhook")
        .json(&payment)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let mut finished = false;
    for _ in 0..200 {
        let response = app
            .client
            .get(app.url("/v1/app/webhook-deliveries"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap();
        let page: Value = response.json().await.unwrap();
        if page["deliveries"][0]["status"] == "failed" {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(finished, "the delivery never failed");

    let mut browser = Browser::open(&app).await;
    browser.log_in("ops", OPERATOR_TOKEN).await;
    let html = browser.page("/ops/webhooks").await;
    assert!(
        html.contains("payment.succeeded") && html.contains("Shop"),
        "{html}"
    );
    assert!(
        html.contains("failed") && html.contains("2 attempts"),
        "{html}"
    );
    assert!(html.contains("http://***@127.0.0.1:9/hook"), "{html}");
    for secret in [
        "hookpass",
        endpoint_secret.as_str(),
        api_key.as_str(),
        sara.as_str(),
    ] {
        assert!(!html.contains(secret), "a secret leaked: {html}");
    }
    let person = browser.page("/ops/people/sara").await;
    assert!(
        person.contains("Shop") && person.contains("shop-sara"),
        "{person}"
    );
    assert!(person.contains("wallet:read"), "{person}");
    app.stop().await;
}

/// Verifies `token`'s person through the JSON API with a known legal name.
async fn verify(app: &TestApp, token: &str, legal_name: &str) {
    let body = json!({
        "legal_name": legal_name, "date_of_birth": "1985-07-09", "ssn_last4": "4821",
        "address": {"line1": "12 Harbour Road", "city": "Portland", "postal_code": "97201", "state": "OR", "country": "US"}
    });
    let response = app
        .client
        .post(app.url("/v1/me/verification"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = json!({"document_type": "passport", "document_number": "Z9081726"});
    let response = app
        .client
        .post(app.url("/v1/me/verification/document"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn access_log(app: &TestApp) -> Vec<mizan_vault::AccessLogEntry> {
    app.state.vault().unwrap().access_log(0, 100).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revealing_personal_data_takes_a_role_and_a_reason_and_is_logged() {
    const NAME: &str = "Ottoline Featherstonehaugh";
    let app = spawn_app(test_config(Some(OPERATOR_TOKEN))).await;
    let token = app.person_with("bilal", "25.00").await;
    verify(&app, &token, NAME).await;
    let mut browser = Browser::open(&app).await;
    browser.log_in("Sara K.", OPERATOR_TOKEN).await;

    // The person page never shows personal data by itself.
    let page = browser.page("/ops/people/bilal").await;
    assert!(!page.contains(NAME), "{page}");
    assert!(page.contains("/ops/people/bilal/reveal"), "{page}");

    // No reason, no reveal (and nothing in the vault's log).
    let response = browser
        .post(
            "/ops/people/bilal/reveal",
            &[("field", "legal_name"), ("reason", "curious")],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!response.text().await.unwrap().contains(NAME));
    let logged = tokio::task::block_in_place(|| access_log(&app));
    assert!(logged.is_empty(), "{logged:?}");

    // An admin (compliance officer) with a reason sees it; the vault logs it.
    let reason = "KYC review for case 4411";
    let response = browser
        .post(
            "/ops/people/bilal/reveal",
            &[("field", "legal_name"), ("reason", reason)],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains(NAME));
    let logged = tokio::task::block_in_place(|| access_log(&app));
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].role, "compliance_officer");
    assert_eq!(logged[0].actor, "operator:Sara_K.");
    assert_eq!(logged[0].reason, reason);
    assert_eq!(logged[0].field, "legal_name");
    assert_eq!(logged[0].outcome.code(), "granted");
    let audit = browser.page("/ops/audit").await;
    assert!(audit.contains("reveal_personal_data"), "{audit}");

    // Support may not see a document number: refused, and the denial is logged.
    let mut support = Browser::open(&app).await;
    support
        .log_in_as("Omar S.", OPERATOR_TOKEN, "support")
        .await;
    let response = support
        .post(
            "/ops/people/bilal/reveal",
            &[
                ("field", "government_id"),
                ("reason", "caller asked for it"),
            ],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response.text().await.unwrap().contains("Z9081726"));
    let logged = tokio::task::block_in_place(|| access_log(&app));
    assert_eq!(logged.len(), 2);
    assert_eq!(
        (logged[1].role.as_str(), logged[1].outcome.code()),
        ("support_agent", "denied")
    );

    // A real payment, so the payment and transfer pages exist for the wall below.
    app.person_with("lina", "1.00").await;
    let paid = app
        .client
        .post(app.url("/v1/payments"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "wall-pay-1")
        .json(&json!({"to": "lina", "amount": "2.00", "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 201);
    let payment: Value = paid.json().await.unwrap();
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let transfer_id = payment["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(
        browser
            .get(&format!("/ops/payments/{payment_id}"))
            .await
            .status(),
        StatusCode::OK,
        "an admin sees the payment page: the refusals below are the role's"
    );

    // Analytics: the dashboard's aggregates, and nothing about anyone.
    let mut analytics = Browser::open(&app).await;
    analytics
        .log_in_as("Ads Team", OPERATOR_TOKEN, "analytics")
        .await;
    assert_eq!(analytics.get("/ops").await.status(), StatusCode::OK);
    // A well-formed case id: the refusal must come from the role, not the parser.
    let case_id = format!("{:020}-{}", 1, "0123456789abcdef");
    for path in [
        "/ops/people/bilal".to_owned(),
        "/ops/search?q=bil".to_owned(),
        "/ops/ledger".to_owned(),
        "/ops/webhooks".to_owned(),
        format!("/ops/payments/{payment_id}"),
        "/ops/cases".to_owned(),
        format!("/ops/cases/{case_id}/sar"),
        "/ops/audit".to_owned(),
        format!("/ops/ledger/transfers/{transfer_id}"),
    ] {
        let response = analytics.get(&path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(NAME) && !body.contains("@lina"),
            "{path}: {body}"
        );
        // Nothing was revealed or even asked of the vault.
        assert_eq!(
            tokio::task::block_in_place(|| access_log(&app)).len(),
            2,
            "{path}"
        );
    }
    let response = analytics
        .post(
            "/ops/people/bilal/reveal",
            &[("field", "legal_name"), ("reason", "audience building")],
            true,
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!response.text().await.unwrap().contains(NAME));
    // Refused before the vault was asked: still two entries.
    assert_eq!(tokio::task::block_in_place(|| access_log(&app)).len(), 2);
    app.stop().await;
}

/// Verifies a person's identity through the API with `legal_name`.
async fn verify_as(app: &TestApp, token: &str, legal_name: &str) {
    let body = json!({
        "legal_name": legal_name,
        "date_of_birth": "1960-02-11",
        "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                    "state": "CA", "country": "US"},
        "ssn_last4": "1234",
    });
    let response = app
        .client
        .post(app.url("/v1/me/verification"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn pay_status(app: &TestApp, token: &str, key: &str) -> StatusCode {
    app.client
        .post(app.url("/v1/payments"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"to": "lina", "amount": "5.00", "currency": "USD"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_a_sanctions_case_from_the_queue_to_a_decision() {
    let list = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/ofac");
    let app = spawn_app(ServerConfig {
        sanctions_dir: Some(list),
        ..test_config(Some(OPERATOR_TOKEN))
    })
    .await;
    let bilal = app.person_with("bilal", "50.00").await;
    let _lina = app.person_with("lina", "1.00").await;
    verify_as(&app, &bilal, "Manuel Noriega").await;
    assert_eq!(
        pay_status(&app, &bilal, "frozen").await,
        StatusCode::FORBIDDEN
    );

    // Without a session the queue sends you to log in.
    let response = app.client.get(app.url("/ops/cases")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let mut browser = Browser::open(&app).await;
    browser.log_in("Sara K.", OPERATOR_TOKEN).await;
    let queue = browser.page("/ops/cases").await;
    assert!(queue.contains("1 undecided cases"), "{queue}");
    assert!(queue.contains("sanctions_hit"), "{queue}");
    let start = queue.find("href=\"/ops/cases/").unwrap() + "href=\"/ops/cases/".len();
    let id = queue[start..].split('"').next().unwrap().to_owned();
    let path = format!("/ops/cases/{id}");

    let case = browser.page(&path).await;
    assert!(case.contains("NORIEGA"), "{case}");
    // The name screened is not in the case: the page reveals it from the vault.
    assert!(case.contains("Manuel Noriega"), "{case}");
    assert!(case.contains("revealed from the vault"), "{case}");
    let reason = format!("reviewing compliance case {id}");
    let logged = tokio::task::block_in_place(|| access_log(&app));
    let reveals: Vec<_> = logged
        .iter()
        .filter(|entry| entry.reason == reason)
        .collect();
    assert_eq!(reveals.len(), 1, "{logged:?}");
    assert_eq!(reveals[0].actor, "operator:Sara_K.");
    assert_eq!(reveals[0].role, "compliance_officer");
    assert_eq!(reveals[0].field, "legal_name");
    assert!(case.contains("frozen"), "{case}");

    // Forms without the CSRF token change nothing.
    let forged = browser
        .post(&format!("{path}/decision"), &[("decision", "clear")], false)
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        pay_status(&app, &bilal, "still-frozen").await,
        StatusCode::FORBIDDEN
    );

    let assigned = browser.post(&format!("{path}/assign"), &[], true).await;
    assert_eq!(assigned.status(), StatusCode::SEE_OTHER);
    let page = browser.page(&path).await;
    assert!(
        page.contains("Assigned to</dt><dd><bdi>Sara K.</bdi>"),
        "{page}"
    );
    let refused = browser
        .post(&format!("{path}/assign"), &[("assignee", "no/such")], true)
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let handed = browser
        .post(&format!("{path}/assign"), &[("assignee", "Omar_B")], true)
        .await;
    assert_eq!(handed.status(), StatusCode::SEE_OTHER);
    let page = browser.page(&path).await;
    assert!(
        page.contains("Assigned to</dt><dd><bdi>Omar_B</bdi>"),
        "{page}"
    );
    let audit = browser.page("/ops/audit").await;
    assert!(audit.contains(" to Omar_B"), "{audit}");
    let noted = browser
        .post(
            &format!("{path}/notes"),
            &[("text", "Born 1934 on the list; a namesake.")],
            true,
        )
        .await;
    assert_eq!(noted.status(), StatusCode::SEE_OTHER);
    let empty = browser
        .post(&format!("{path}/notes"), &[("text", " ")], true)
        .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let case = browser.page(&path).await;
    assert!(case.contains("assigned"), "{case}");
    assert!(case.contains("a namesake"), "{case}");

    let decided = browser
        .post(&format!("{path}/decision"), &[("decision", "clear")], true)
        .await;
    assert_eq!(decided.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        pay_status(&app, &bilal, "cleared").await,
        StatusCode::CREATED
    );
    let again = browser
        .post(&format!("{path}/decision"), &[("decision", "freeze")], true)
        .await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let no_sar = browser.get(&format!("{path}/sar")).await;
    assert_eq!(no_sar.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(browser
        .page("/ops/cases")
        .await
        .contains("The queue is empty"));

    let audit = browser.page("/ops/audit").await;
    for action in [
        "view_cases",
        "view_case",
        "assign_case",
        "note_case",
        "decide_case",
    ] {
        assert!(audit.contains(action), "{action} in the audit log");
    }
    app.stop().await;
}
