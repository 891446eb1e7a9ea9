#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The authorization matrix: every route of the OpenAPI document × every kind of
//! caller × another person's (or app's) objects. A route missing from the table
//! fails the test, so a new endpoint cannot ship without its row.
//!
//! Callers: nobody; another person (Omar) on Sara's objects; an app token acting for
//! Sara with `wallet:read` only; an app's API key where a person is expected; a
//! person where an app or the operator is expected; another app's key on this app's
//! objects. After every refused call, nobody's money has moved.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{spawn_app_with, test_config, TestApp, CARD_OK, OPERATOR_TOKEN};
use serde_json::{json, Value};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone.
    Public,
    /// A person's session, or an app token with `wallet:read`.
    Read,
    /// A person's session, or an app token with `payments:write`.
    Write,
    /// Only the person's own session.
    Session,
    /// Only the operator token.
    Operator,
    /// Only an app's API key.
    AppKey,
}

struct Route {
    method: &'static str,
    /// As in the OpenAPI document.
    path: &'static str,
    access: Access,
    /// For routes naming an object: what another person (or app) gets.
    foreign: Option<u16>,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
        foreign: None,
    }
}

const fn owned(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
        foreign: Some(404),
    }
}

const ROUTES: &[Route] = &[
    route("GET", "/healthz", Access::Public),
    route("GET", "/readyz", Access::Public),
    route("GET", "/metrics", Access::Public),
    route("GET", "/v1/openapi.json", Access::Public),
    route("GET", "/v1/docs", Access::Public),
    route("POST", "/v1/people", Access::Public),
    route("POST", "/v1/sessions", Access::Public),
    route("GET", "/v1/sessions", Access::Session),
    route("DELETE", "/v1/sessions/current", Access::Session),
    owned("DELETE", "/v1/sessions/{id}", Access::Session),
    route("POST", "/v1/sessions/current/step-up", Access::Session),
    route("GET", "/v1/me", Access::Read),
    route("POST", "/v1/me/password", Access::Session),
    route("GET", "/v1/me/export", Access::Session),
    route("POST", "/v1/me/erase", Access::Session),
    route("GET", "/v1/me/cards", Access::Session),
    owned("DELETE", "/v1/me/cards/{id}", Access::Session),
    route("POST", "/v1/me/totp", Access::Session),
    route("POST", "/v1/me/totp/confirm", Access::Session),
    route("POST", "/v1/me/verification", Access::Session),
    route("POST", "/v1/me/verification/document", Access::Session),
    route("GET", "/v1/me/limits", Access::Session),
    route("GET", "/v1/notifications", Access::Session),
    route("POST", "/v1/notifications/seen", Access::Session),
    route("GET", "/v1/licences", Access::Operator),
    route("PUT", "/v1/licences/{jurisdiction}", Access::Operator),
    route("GET", "/v1/cases", Access::Operator),
    route("POST", "/v1/cases", Access::Operator),
    route("GET", "/v1/cases/{id}", Access::Operator),
    route("POST", "/v1/cases/{id}/assign", Access::Operator),
    route("POST", "/v1/cases/{id}/notes", Access::Operator),
    route("POST", "/v1/cases/{id}/decision", Access::Operator),
    route("GET", "/v1/cases/{id}/sar", Access::Operator),
    route("POST", "/v1/sanctions/reload", Access::Operator),
    route("GET", "/v1/reports/ctr", Access::Operator),
    route("POST", "/v1/monitoring/scan", Access::Operator),
    route("POST", "/v1/funding", Access::Write),
    route("POST", "/v1/cashouts", Access::Write),
    owned("POST", "/v1/funding/{id}/challenge", Access::Write),
    route("POST", "/v1/payments", Access::Write),
    owned("GET", "/v1/payments/{id}", Access::Read),
    owned("GET", "/v1/payments/{id}/receipt", Access::Read),
    route("POST", "/v1/requests", Access::Write),
    route("GET", "/v1/requests", Access::Read),
    owned("GET", "/v1/requests/{id}", Access::Read),
    owned("DELETE", "/v1/requests/{id}", Access::Write),
    owned("POST", "/v1/requests/{id}/pay", Access::Write),
    owned("POST", "/v1/requests/{id}/decline", Access::Write),
    route("POST", "/v1/splits", Access::Write),
    route("GET", "/v1/activity", Access::Read),
    route("POST", "/v1/apps", Access::Operator),
    route("GET", "/v1/apps", Access::Operator),
    route("POST", "/v1/app/link-requests", Access::AppKey),
    route("POST", "/v1/app/tokens", Access::AppKey),
    route("POST", "/v1/app/webhook-endpoints", Access::AppKey),
    route("GET", "/v1/app/webhook-endpoints", Access::AppKey),
    route("GET", "/v1/app/webhook-deliveries", Access::AppKey),
    owned(
        "POST",
        "/v1/app/webhook-deliveries/{id}/replay",
        Access::AppKey,
    ),
    route("GET", "/v1/me/link-requests", Access::Session),
    owned("POST", "/v1/me/link-requests/{id}/approve", Access::Session),
    owned("POST", "/v1/me/link-requests/{id}/decline", Access::Session),
    route("GET", "/v1/me/apps", Access::Session),
    route("GET", "/v1/people/{handle}", Access::Read),
    route("POST", "/v1/people/{handle}/follow", Access::Session),
    route("DELETE", "/v1/people/{handle}/follow", Access::Session),
    route("GET", "/v1/people/{handle}/posts", Access::Read),
    route("POST", "/v1/me/profile", Access::Session),
    route("POST", "/v1/posts", Access::Session),
    route("GET", "/v1/posts/{id}", Access::Read),
    route("GET", "/v1/feed", Access::Read),
    route("POST", "/v1/tips", Access::Write),
    route("POST", "/v1/messages", Access::Session),
    route("GET", "/v1/threads", Access::Session),
    route("GET", "/v1/threads/{handle}", Access::Session),
    route("GET", "/v1/me/dm-settings", Access::Session),
    route("POST", "/v1/me/dm-settings", Access::Session),
    route("GET", "/v1/paid-dms", Access::Session),
    owned("GET", "/v1/paid-dms/{id}", Access::Session),
    owned("POST", "/v1/paid-dms/{id}/accept", Access::Session),
    owned("POST", "/v1/paid-dms/{id}/decline", Access::Session),
    route("POST", "/v1/threads/{handle}/checkouts", Access::Session),
    route("GET", "/v1/checkouts/{id}", Access::Session),
    route("POST", "/v1/checkouts/{id}/pay", Access::Session),
    route("GET", "/v1/orders", Access::Session),
    owned("DELETE", "/v1/me/apps/{app_id}", Access::Session),
    route("GET", "/v1/me/subscription-tiers", Access::Session),
    route("POST", "/v1/me/subscription-tiers", Access::Session),
    owned(
        "POST",
        "/v1/me/subscription-tiers/{id}/retire",
        Access::Session,
    ),
    route(
        "GET",
        "/v1/people/{handle}/subscription-tiers",
        Access::Read,
    ),
    route("POST", "/v1/subscriptions", Access::Write),
    route("GET", "/v1/subscriptions", Access::Read),
    owned("GET", "/v1/subscriptions/{id}", Access::Read),
    owned("POST", "/v1/subscriptions/{id}/cancel", Access::Write),
    route("GET", "/v1/me/subscribers", Access::Session),
];

/// Sara's objects, and the credentials of everyone else.
struct World {
    sara: String,
    omar: String,
    /// Acts for Sara with `wallet:read` only.
    sara_read_token: String,
    chat_key: String,
    other_app_key: String,
    payment_id: String,
    request_id: String,
    sara_session_id: String,
    link_request_id: String,
    chat_app_id: String,
    delivery_id: String,
    /// A funding of Sara's waiting for its card challenge.
    challenged_funding_id: String,
    /// Sara's saved card.
    sara_card_id: String,
    /// A post of Sara's.
    post_id: String,
    /// A paid DM Sara sent Lina, still pending.
    paid_dm_id: String,
    /// A subscription tier of Sara's.
    tier_id: String,
    /// Sara's subscription to a tier of Lina's.
    subscription_id: String,
    /// A checkout card Sara posted in her conversation with Noor.
    checkout_id: String,
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("Idempotency-Key", format!("authz-{}", rand_suffix()));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A body that passes parsing for the route, so that only authorization decides.
fn body_for(method: &str, path: &str) -> Option<Value> {
    if method != "POST" && method != "PUT" {
        return None;
    }
    Some(match path {
        "/v1/people" => {
            json!({"handle": format!("p{}", rand_suffix()), "email": format!("p{}@example.com", rand_suffix()), "password": common::PASSWORD})
        }
        "/v1/sessions" => json!({"login": "nobody_at_all", "password": "wrong password"}),
        "/v1/sessions/current/step-up" | "/v1/me/totp/confirm" => json!({"code": "123456"}),
        "/v1/me/password" => {
            json!({"current_password": "wrong password", "new_password": "another password"})
        }
        "/v1/funding" => json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK}),
        "/v1/funding/{id}/challenge" => json!({"answer": "123456"}),
        "/v1/cashouts" => {
            json!({"amount": "1.00", "currency": "USD", "routing_number": "011000015", "account_number": "000123456789"})
        }
        "/v1/payments" => json!({"to": "omar", "amount": "1.00", "currency": "USD"}),
        "/v1/requests" => json!({"from": "omar", "amount": "1.00", "currency": "USD"}),
        "/v1/splits" => json!({"amount": "2.00", "currency": "USD", "with": ["omar"]}),
        "/v1/apps" => json!({"name": "Sneaky"}),
        "/v1/me/verification" => json!({
            "legal_name": "Sneaky", "date_of_birth": "1990-01-01", "ssn_last4": "1234",
            "address": {"line1": "1 Main St", "city": "X", "postal_code": "1", "state": "CA", "country": "US"}
        }),
        "/v1/me/verification/document" => {
            json!({"document_type": "passport", "document_number": "P1234567"})
        }
        "/v1/licences/{jurisdiction}" => {
            json!({"p2p": false, "cashout": false, "savings": false, "cards": false})
        }
        "/v1/me/profile" => json!({"display_name": "Sneaky", "bio": ""}),
        "/v1/cases" => json!({"handle": "sara", "note": "sneaky"}),
        "/v1/cases/{id}/notes" => json!({"text": "sneaky"}),
        "/v1/cases/{id}/decision" => json!({"decision": "clear"}),
        "/v1/posts" => json!({"text": "hello"}),
        "/v1/tips" => json!({"to": "lina", "amount": "1.00", "currency": "USD"}),
        "/v1/messages" => json!({"to": "lina", "text": "hi", "offer": "1.00"}),
        "/v1/me/dm-settings" => json!({"paid_dms": true, "price": "1.00"}),
        "/v1/threads/{handle}/checkouts" => {
            json!({"item": "Mug", "price": "1.00", "currency": "USD", "quantity": 1})
        }
        "/v1/checkouts/{id}/pay" => json!({"quantity": 1}),
        "/v1/me/subscription-tiers" => json!({"name": "Gold", "price": "1.00", "currency": "USD"}),
        "/v1/subscriptions" => json!({"tier_id": "00000000000000000000000000000000"}),
        "/v1/app/link-requests" => {
            json!({"handle": "sara", "external_user_id": "x", "scopes": ["wallet:read"]})
        }
        "/v1/app/tokens" => json!({"external_user_id": "sara-1", "scopes": ["wallet:read"]}),
        "/v1/app/webhook-endpoints" => {
            json!({"url": "http://127.0.0.1:9/x", "events": ["payment.succeeded"]})
        }
        _ => json!({}),
    })
}

fn concrete(path: &str, world: &World) -> String {
    path.replace(
        "/v1/payments/{id}",
        &format!("/v1/payments/{}", world.payment_id),
    )
    .replace(
        "/v1/requests/{id}",
        &format!("/v1/requests/{}", world.request_id),
    )
    .replace(
        "/v1/sessions/{id}",
        &format!("/v1/sessions/{}", world.sara_session_id),
    )
    .replace(
        "/v1/me/link-requests/{id}",
        &format!("/v1/me/link-requests/{}", world.link_request_id),
    )
    .replace("{app_id}", &world.chat_app_id)
    .replace("{handle}", "lina")
    .replace("{jurisdiction}", "US-CA")
    .replace("/v1/posts/{id}", &format!("/v1/posts/{}", world.post_id))
    .replace(
        "/v1/me/subscription-tiers/{id}",
        &format!("/v1/me/subscription-tiers/{}", world.tier_id),
    )
    .replace(
        "/v1/subscriptions/{id}",
        &format!("/v1/subscriptions/{}", world.subscription_id),
    )
    .replace(
        "/v1/checkouts/{id}",
        &format!("/v1/checkouts/{}", world.checkout_id),
    )
    .replace(
        "/v1/paid-dms/{id}",
        &format!("/v1/paid-dms/{}", world.paid_dm_id),
    )
    .replace(
        "/v1/funding/{id}",
        &format!("/v1/funding/{}", world.challenged_funding_id),
    )
    .replace(
        "/v1/me/cards/{id}",
        &format!("/v1/me/cards/{}", world.sara_card_id),
    )
    .replace(
        "/v1/app/webhook-deliveries/{id}",
        &format!("/v1/app/webhook-deliveries/{}", world.delivery_id),
    )
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn balances(app: &TestApp, world: &World) -> (String, String) {
    (
        app.balance(&world.sara).await,
        app.balance(&world.omar).await,
    )
}

async fn build_world(app: &TestApp) -> World {
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "100.00", CARD_OK).await.status(), 201);
    assert_eq!(app.fund(&omar, "100.00", CARD_OK).await.status(), 201);
    // Sara's objects are with Lina, so that Omar is party to none of them.
    let lina = app.person("lina").await;
    let payment = json_of(
        send(
            app,
            "POST",
            "/v1/payments",
            Some(&sara),
            Some(json!({"to": "lina", "amount": "1.00", "currency": "USD"})),
        )
        .await,
    )
    .await;
    let request = json_of(
        send(
            app,
            "POST",
            "/v1/requests",
            Some(&sara),
            Some(json!({"from": "lina", "amount": "1.00", "currency": "USD"})),
        )
        .await,
    )
    .await;
    let sessions = json_of(send(app, "GET", "/v1/sessions", Some(&sara), None).await).await;
    let register = |name: &'static str| async move {
        json_of(
            send(
                app,
                "POST",
                "/v1/apps",
                Some(OPERATOR_TOKEN),
                Some(json!({"name": name})),
            )
            .await,
        )
        .await
    };
    let chat = register("Chat").await;
    let other = register("Other").await;
    let chat_key = chat["api_key"].as_str().unwrap().to_owned();
    // Link Sara to Chat with wallet:read, and leave a second request pending.
    let link = |external: &'static str| {
        let chat_key = chat_key.clone();
        async move {
            json_of(
                send(
                    app,
                    "POST",
                    "/v1/app/link-requests",
                    Some(&chat_key),
                    Some(json!({"handle": "sara", "external_user_id": external, "scopes": ["wallet:read"]})),
                )
                .await,
            )
            .await
        }
    };
    let first = link("sara-1").await;
    let approved = send(
        app,
        "POST",
        &format!(
            "/v1/me/link-requests/{}/approve",
            first["id"].as_str().unwrap()
        ),
        Some(&sara),
        Some(json!({})),
    )
    .await;
    assert_eq!(approved.status(), 200);
    let pending = link("sara-1").await;
    let token = json_of(
        send(
            app,
            "POST",
            "/v1/app/tokens",
            Some(&chat_key),
            Some(json!({"external_user_id": "sara-1", "scopes": ["wallet:read"]})),
        )
        .await,
    )
    .await;
    // A webhook delivery of Chat's, for the replay route.
    let endpoint = send(
        app,
        "POST",
        "/v1/app/webhook-endpoints",
        Some(&chat_key),
        Some(json!({"url": "http://127.0.0.1:9/hooks", "events": ["payment.succeeded"]})),
    )
    .await;
    assert_eq!(endpoint.status(), 201);
    let paid = send(
        app,
        "POST",
        "/v1/payments",
        Some(&omar),
        Some(json!({"to": "sara", "amount": "1.00", "currency": "USD"})),
    )
    .await;
    assert_eq!(paid.status(), 201);
    let mut delivery_id = String::new();
    for _ in 0..200 {
        let page = json_of(
            send(
                app,
                "GET",
                "/v1/app/webhook-deliveries",
                Some(&chat_key),
                None,
            )
            .await,
        )
        .await;
        if let Some(id) = page["deliveries"][0]["id"].as_str() {
            delivery_id = id.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!delivery_id.is_empty(), "no delivery appeared");
    let challenged = app
        .fund_with_key(&sara, "3.00", "4000000000003220", "authz-3ds")
        .await;
    assert_eq!(challenged.status(), 202);
    let challenged = json_of(challenged).await;
    let post = json_of(
        send(
            app,
            "POST",
            "/v1/posts",
            Some(&sara),
            Some(json!({"text": "my first post"})),
        )
        .await,
    )
    .await;
    let priced = send(
        app,
        "POST",
        "/v1/me/dm-settings",
        Some(&lina),
        Some(json!({"paid_dms": true, "price": "2.00"})),
    )
    .await;
    assert_eq!(priced.status(), 200);
    let paid_dm = json_of(
        send(
            app,
            "POST",
            "/v1/messages",
            Some(&sara),
            Some(json!({"to": "lina", "text": "hello", "offer": "2.00"})),
        )
        .await,
    )
    .await;
    let saved = send(
        app,
        "POST",
        "/v1/funding",
        Some(&sara),
        Some(
            json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK, "save_card": true}),
        ),
    )
    .await;
    assert_eq!(saved.status(), 201);
    let cards = json_of(send(app, "GET", "/v1/me/cards", Some(&sara), None).await).await;
    let tier = |token: String| async move {
        let response = send(
            app,
            "POST",
            "/v1/me/subscription-tiers",
            Some(&token),
            Some(json!({"name": "Gold", "price": "1.00", "currency": "USD"})),
        )
        .await;
        assert_eq!(response.status(), 201);
        json_of(response).await["id"].as_str().unwrap().to_owned()
    };
    let sara_tier = tier(sara.clone()).await;
    let lina_tier = tier(lina.clone()).await;
    let subscription = send(
        app,
        "POST",
        "/v1/subscriptions",
        Some(&sara),
        Some(json!({"tier_id": lina_tier})),
    )
    .await;
    assert_eq!(subscription.status(), 201);
    let subscription = json_of(subscription).await;
    // Noor writes to Sara, and Sara offers her a mug in their conversation.
    let noor = app.person("noor").await;
    let asked = send(
        app,
        "POST",
        "/v1/messages",
        Some(&noor),
        Some(json!({"to": "sara", "text": "selling anything?"})),
    )
    .await;
    assert_eq!(asked.status(), 201);
    let card = send(
        app,
        "POST",
        "/v1/threads/noor/checkouts",
        Some(&sara),
        Some(json!({"item": "Mug", "price": "2.00", "currency": "USD", "quantity": 3})),
    )
    .await;
    assert_eq!(card.status(), 201);
    let card = json_of(card).await;
    World {
        checkout_id: card["id"].as_str().unwrap().to_owned(),
        sara_card_id: cards["cards"][0]["id"].as_str().unwrap().to_owned(),
        tier_id: sara_tier,
        subscription_id: subscription["id"].as_str().unwrap().to_owned(),
        paid_dm_id: paid_dm["paid_dm"]["id"].as_str().unwrap().to_owned(),
        post_id: post["id"].as_str().unwrap().to_owned(),
        challenged_funding_id: challenged["id"].as_str().unwrap().to_owned(),
        sara_session_id: sessions[0]["id"].as_str().unwrap().to_owned(),
        sara,
        omar,
        sara_read_token: token["token"].as_str().unwrap().to_owned(),
        chat_key,
        other_app_key: other["api_key"].as_str().unwrap().to_owned(),
        payment_id: payment["id"].as_str().unwrap().to_owned(),
        request_id: request["id"].as_str().unwrap().to_owned(),
        link_request_id: pending["id"].as_str().unwrap().to_owned(),
        chat_app_id: chat["id"].as_str().unwrap().to_owned(),
        delivery_id,
    }
}

async fn expect(
    app: &TestApp,
    route: &Route,
    path: &str,
    who: &str,
    bearer: Option<&str>,
    status: u16,
    code: &str,
) {
    let response = send(
        app,
        route.method,
        path,
        bearer,
        body_for(route.method, route.path),
    )
    .await;
    let got = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(
        got, status,
        "{} {} as {who}: expected {status} {code}, got {got}: {body}",
        route.method, route.path
    );
    if !code.is_empty() {
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            problem["code"], code,
            "{} {} as {who}: {body}",
            route.method, route.path
        );
    }
}

#[tokio::test]
async fn every_route_refuses_every_caller_it_should() {
    let app = spawn_app_with(test_config()).await;
    let world = build_world(&app).await;

    // The table covers exactly the routes the OpenAPI document lists.
    let spec = json_of(send(&app, "GET", "/v1/openapi.json", None, None).await).await;
    let mut documented = BTreeSet::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let tabled: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect();
    assert_eq!(
        documented, tabled,
        "the authorization table and the OpenAPI document disagree"
    );

    let before = balances(&app, &world).await;

    for route in ROUTES {
        let path = concrete(route.path, &world);
        match route.access {
            Access::Public => {
                // Anyone may call it: whatever it answers, it is not "who are you?".
                let response = send(
                    &app,
                    route.method,
                    &path,
                    None,
                    body_for(route.method, route.path),
                )
                .await;
                let body = response.text().await.unwrap();
                assert!(
                    !body.contains("\"unauthenticated\""),
                    "{} {}: {body}",
                    route.method,
                    route.path
                );
            }
            Access::Read | Access::Write | Access::Session => {
                expect(&app, route, &path, "nobody", None, 401, "unauthenticated").await;
                expect(
                    &app,
                    route,
                    &path,
                    "an app key",
                    Some(&world.chat_key),
                    401,
                    "unauthenticated",
                )
                .await;
                expect(
                    &app,
                    route,
                    &path,
                    "the operator",
                    Some(OPERATOR_TOKEN),
                    401,
                    "unauthenticated",
                )
                .await;
                let (status, code) = match route.access {
                    Access::Read => (0, ""),
                    Access::Write => (403, "insufficient_scope"),
                    _ if route.path == "/v1/sessions/current" => (401, "unauthenticated"),
                    _ => (403, "session_required"),
                };
                if status != 0 {
                    expect(
                        &app,
                        route,
                        &path,
                        "a wallet:read app token",
                        Some(&world.sara_read_token),
                        status,
                        code,
                    )
                    .await;
                }
                if let Some(foreign) = route.foreign {
                    expect(
                        &app,
                        route,
                        &path,
                        "another person",
                        Some(&world.omar),
                        foreign,
                        "",
                    )
                    .await;
                }
            }
            Access::Operator => {
                for (who, token) in [
                    ("a person", world.sara.as_str()),
                    ("an app key", world.chat_key.as_str()),
                    ("an app token", world.sara_read_token.as_str()),
                ] {
                    expect(&app, route, &path, who, Some(token), 401, "unauthenticated").await;
                }
                expect(&app, route, &path, "nobody", None, 401, "unauthenticated").await;
            }
            Access::AppKey => {
                for (who, token) in [
                    ("a person", world.sara.as_str()),
                    ("an app token", world.sara_read_token.as_str()),
                    ("the operator", OPERATOR_TOKEN),
                ] {
                    expect(&app, route, &path, who, Some(token), 401, "unauthenticated").await;
                }
                expect(&app, route, &path, "nobody", None, 401, "unauthenticated").await;
                if let Some(foreign) = route.foreign {
                    expect(
                        &app,
                        route,
                        &path,
                        "another app",
                        Some(&world.other_app_key),
                        foreign,
                        "",
                    )
                    .await;
                }
            }
        }
    }

    // Nothing anyone tried moved money.
    assert_eq!(balances(&app, &world).await, before);
    // Sara's objects are still hers: her session works, her request is open.
    let request = json_of(
        send(
            &app,
            "GET",
            &format!("/v1/requests/{}", world.request_id),
            Some(&world.sara),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(request["status"], "open");
    let pending =
        json_of(send(&app, "GET", "/v1/me/link-requests", Some(&world.sara), None).await).await;
    assert_eq!(pending[0]["id"], world.link_request_id.as_str());
    app.stop().await;
}
