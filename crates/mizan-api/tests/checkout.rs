#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Checkout cards in direct messages against the real server: a seller posts a card
//! where the buyer wrote, the buyer pays in one call, the money and the units move
//! together, and the offer's stock on the ledger never goes below zero — not even
//! under twenty buyers at once.

mod common;

use std::time::Duration;

use common::*;
use mizan_app::totp::{base32_decode, code_at, STEP_SECONDS};
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

async fn write(app: &TestApp, token: &str, to: &str, text: &str) {
    let key = format!("msg-{}", rand::random::<u64>());
    let sent = call(
        app,
        reqwest::Method::POST,
        "/v1/messages",
        token,
        Some(&key),
        Some(json!({"to": to, "text": text})),
    )
    .await;
    assert_eq!(sent.status(), 201);
}

async fn post_card(app: &TestApp, seller: &str, buyer: &str, body: Value) -> reqwest::Response {
    call(
        app,
        reqwest::Method::POST,
        &format!("/v1/threads/{buyer}/checkouts"),
        seller,
        None,
        Some(body),
    )
    .await
}

/// The caller's conversation with `handle`.
async fn thread_with(app: &TestApp, token: &str, handle: &str) -> Value {
    let path = format!("/v1/threads/{handle}");
    json_of(call(app, reqwest::Method::GET, &path, token, None, None).await).await
}

async fn pay(
    app: &TestApp,
    token: &str,
    checkout: &str,
    key: &str,
    quantity: i64,
) -> reqwest::Response {
    call(
        app,
        reqwest::Method::POST,
        &format!("/v1/checkouts/{checkout}/pay"),
        token,
        Some(key),
        Some(json!({"quantity": quantity})),
    )
    .await
}

async fn remaining(app: &TestApp, token: &str, checkout: &str) -> i64 {
    let card = call(
        app,
        reqwest::Method::GET,
        &format!("/v1/checkouts/{checkout}"),
        token,
        None,
        None,
    )
    .await;
    assert_eq!(card.status(), 200);
    json_of(card).await["remaining"].as_i64().unwrap()
}

async fn orders(app: &TestApp, token: &str) -> Vec<Value> {
    let listed = call(app, reqwest::Method::GET, "/v1/orders", token, None, None).await;
    assert_eq!(listed.status(), 200);
    json_of(listed).await["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_buyer_pays_a_card_in_one_call_and_the_stock_follows() {
    let app = spawn_app().await;
    let seller = app.person("potter").await;
    let buyer = app.person("dana").await;
    let stranger = app.person("omar").await;
    assert_eq!(app.fund(&buyer, "50.00", CARD_OK).await.status(), 201);

    // No card where the buyer has not written.
    let early = post_card(
        &app,
        &seller,
        "dana",
        json!({"item": "Mug", "price": "12.00", "currency": "USD", "quantity": 3}),
    )
    .await;
    assert_eq!(early.status(), 409);
    assert_eq!(problem(early).await.code, "conversation_required");

    write(&app, &buyer, "potter", "do you sell mugs?").await;
    let card = post_card(
        &app,
        &seller,
        "dana",
        json!({"item": "Blue mug", "price": "12.00", "currency": "USD", "quantity": 3}),
    )
    .await;
    assert_eq!(card.status(), 201);
    let card = json_of(card).await;
    let id = card["id"].as_str().unwrap().to_owned();
    assert_eq!(card["remaining"], 3);
    assert_eq!(card["offered_to"], "dana");
    assert_eq!(card["sold_out"], false);

    // The card is in the conversation, for both of them.
    let thread = thread_with(&app, &buyer, "potter").await;
    let last = thread["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["checkout_id"], id.as_str());
    assert_eq!(last["text"], "Blue mug");

    let paid = pay(&app, &buyer, &id, "order-1", 2).await;
    assert_eq!(paid.status(), 201);
    let order = json_of(paid).await;
    assert_eq!(order["amount"], "24.00");
    assert_eq!(order["quantity"], 2);
    assert_eq!(order["status"], "paid");
    assert_eq!(order["funded_from_card"], false);
    assert_eq!(app.balance(&buyer).await, "26.00");
    assert_eq!(app.balance(&seller).await, "24.00");
    assert_eq!(remaining(&app, &buyer, &id).await, 1);

    // A retry under the key answers the same order and moves nothing.
    let replay = pay(&app, &buyer, &id, "order-1", 2).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(replay).await["id"], order["id"]);
    let reused = pay(&app, &buyer, &id, "order-1", 1).await;
    assert_eq!(reused.status(), 422);
    assert_eq!(problem(reused).await.code, "idempotency_key_reused");
    assert_eq!(app.balance(&buyer).await, "26.00");

    // Two more than are left: sold out, nothing moved.
    let too_many = pay(&app, &buyer, &id, "order-2", 2).await;
    assert_eq!(too_many.status(), 409);
    assert_eq!(problem(too_many).await.code, "sold_out");
    assert_eq!(app.balance(&buyer).await, "26.00");
    assert_eq!(app.balance(&seller).await, "24.00");
    assert_eq!(remaining(&app, &seller, &id).await, 1);

    // The seller cannot buy their own; a stranger with the id sees no conversation.
    let own = pay(&app, &seller, &id, "own", 1).await;
    assert_eq!(own.status(), 422);
    assert_eq!(problem(own).await.code, "cannot_buy_own_offer");
    let seen = json_of(
        call(
            &app,
            reqwest::Method::GET,
            &format!("/v1/checkouts/{id}"),
            &stranger,
            None,
            None,
        )
        .await,
    )
    .await;
    assert!(seen["thread_id"].is_null() && seen["offered_to"].is_null());

    // Both see it in their activity, with each other.
    let activity = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/activity",
            &buyer,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(activity["items"][0]["counterparty"], "potter");
    assert_eq!(activity["items"][0]["note"], "order: Blue mug × 2");
    assert_eq!(activity["items"][0]["amount"], "24.00");
    let activity = json_of(
        call(
            &app,
            reqwest::Method::GET,
            "/v1/activity",
            &seller,
            None,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(activity["items"][0]["counterparty"], "dana");
    assert_eq!(activity["items"][0]["direction"], "in");

    // Both see the order, each from their side.
    let bought = orders(&app, &buyer).await;
    assert_eq!(bought.len(), 1);
    assert_eq!(bought[0]["role"], "bought");
    assert_eq!(bought[0]["item"], "Blue mug");
    let sold = orders(&app, &seller).await;
    assert_eq!(sold[0]["role"], "sold");
    assert_eq!(sold[0]["id"], order["id"]);

    // Both are notified (the webhook worker projects the outbox).
    for (token, kind) in [(&seller, "order_received"), (&buyer, "order_paid")] {
        let mut found = false;
        for _ in 0..200 {
            let page = json_of(
                call(
                    &app,
                    reqwest::Method::GET,
                    "/v1/notifications",
                    token,
                    None,
                    None,
                )
                .await,
            )
            .await;
            found = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["kind"] == kind);
            if found {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(found, "no {kind} notification");
    }
    app.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_stable_code_and_changes_nothing() {
    let app = spawn_app().await;
    let seller = app.person("potter").await;
    let buyer = app.person("dana").await;
    assert_eq!(app.fund(&buyer, "10.00", CARD_OK).await.status(), 201);
    write(&app, &buyer, "potter", "hello").await;
    let cases = [
        (
            json!({"item": " ", "price": "1.00", "currency": "USD", "quantity": 1}),
            400,
            "invalid_item",
        ),
        (
            json!({"item": "Mug", "price": "1.005", "currency": "USD", "quantity": 1}),
            400,
            "amount_too_precise",
        ),
        (
            json!({"item": "Mug", "price": "abc", "currency": "USD", "quantity": 1}),
            400,
            "amount_malformed",
        ),
        (
            json!({"item": "Mug", "price": "10000.01", "currency": "USD", "quantity": 1}),
            400,
            "invalid_checkout_price",
        ),
        (
            json!({"item": "Mug", "price": "1.00", "currency": "USD", "quantity": 0}),
            400,
            "invalid_quantity",
        ),
        (
            json!({"item": "Mug", "price": "1.00", "currency": "EUR", "quantity": 1}),
            400,
            "currency_not_supported",
        ),
        (
            json!({"item": "Mug", "price": "1.00", "currency": "USD"}),
            400,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let refused = post_card(&app, &seller, "dana", body.clone()).await;
        assert_eq!(refused.status(), status, "{body}");
        assert_eq!(problem(refused).await.code, code, "{body}");
    }
    let nobody = post_card(
        &app,
        &seller,
        "nobody_here",
        json!({"item": "Mug", "price": "1.00", "currency": "USD", "quantity": 1}),
    )
    .await;
    assert_eq!(nobody.status(), 404);

    let card = json_of(
        post_card(
            &app,
            &seller,
            "dana",
            json!({"item": "Mug", "price": "4.00", "currency": "USD", "quantity": 2}),
        )
        .await,
    )
    .await;
    let id = card["id"].as_str().unwrap().to_owned();
    let no_key = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/checkouts/{id}/pay"),
        &buyer,
        None,
        Some(json!({"quantity": 1})),
    )
    .await;
    assert_eq!(no_key.status(), 400);
    assert_eq!(problem(no_key).await.code, "idempotency_key_required");
    for quantity in [0, -1, 101] {
        let refused = pay(&app, &buyer, &id, &format!("q{quantity}"), quantity).await;
        assert_eq!(refused.status(), 400);
        assert_eq!(problem(refused).await.code, "invalid_quantity");
    }
    let unknown = pay(&app, &buyer, "0123456789abcdef0123456789abcdef", "u", 1).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(problem(unknown).await.code, "checkout_not_found");
    let malformed = pay(&app, &buyer, "not-an-id", "m", 1).await;
    assert_eq!(malformed.status(), 404);
    // Both units sold: a further order is refused on the stock alone.
    let poor = pay(&app, &buyer, &id, "poor", 2).await;
    assert_eq!(poor.status(), 201, "8.00 fits");
    let short = pay(&app, &buyer, &id, "short", 1).await;
    assert_eq!(short.status(), 409, "sold out before money is looked at");
    assert_eq!(app.balance(&buyer).await, "2.00");
    assert_eq!(app.balance(&seller).await, "8.00");
    assert_eq!(remaining(&app, &buyer, &id).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_short_wallet_is_topped_up_from_the_default_card_once() {
    let app = spawn_app().await;
    let seller = app.person("potter").await;
    let buyer = app.person("dana").await;
    let saved = call(
        &app,
        reqwest::Method::POST,
        "/v1/funding",
        &buyer,
        Some("save"),
        Some(
            json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK, "save_card": true}),
        ),
    )
    .await;
    assert_eq!(saved.status(), 201);
    write(&app, &buyer, "potter", "one lamp please").await;
    let card = json_of(
        post_card(
            &app,
            &seller,
            "dana",
            json!({"item": "Lamp", "price": "30.00", "currency": "USD", "quantity": 1}),
        )
        .await,
    )
    .await;
    let id = card["id"].as_str().unwrap().to_owned();
    let paid = pay(&app, &buyer, &id, "lamp", 1).await;
    assert_eq!(paid.status(), 201);
    assert_eq!(json_of(paid).await["funded_from_card"], true);
    // The card paid the 30.00 into the wallet, the order took them out.
    assert_eq!(app.balance(&buyer).await, "1.00");
    assert_eq!(app.balance(&seller).await, "30.00");
    let replay = pay(&app, &buyer, &id, "lamp", 1).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(
        app.balance(&buyer).await,
        "1.00",
        "the card is charged once"
    );
    app.stop().await;
}

#[tokio::test]
async fn twenty_buyers_at_once_against_five_units_make_exactly_five_orders() {
    let app = spawn_app().await;
    let seller = app.person("potter").await;
    let first = app.person("buyer00").await;
    write(&app, &first, "potter", "I'd like one").await;
    let card = json_of(
        post_card(
            &app,
            &seller,
            "buyer00",
            json!({"item": "Print", "price": "7.00", "currency": "USD", "quantity": 5}),
        )
        .await,
    )
    .await;
    let id = card["id"].as_str().unwrap().to_owned();
    // The card is passed on: nineteen more people buy from it at the same moment.
    let mut buyers = vec![first];
    for n in 1..20 {
        buyers.push(app.person(&format!("buyer{n:02}")).await);
    }
    for buyer in &buyers {
        assert_eq!(app.fund(buyer, "10.00", CARD_OK).await.status(), 201);
    }
    let attempts = buyers.iter().enumerate().map(|(n, buyer)| {
        let app = &app;
        let id = id.clone();
        async move {
            let response = pay(app, buyer, &id, &format!("print-{n}"), 1).await;
            let status = response.status().as_u16();
            let code = if status == 201 {
                String::new()
            } else {
                problem(response).await.code
            };
            (status, code)
        }
    });
    let answers = futures_join_all(attempts).await;
    let paid = answers.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(paid, 5, "{answers:?}");
    assert!(answers
        .iter()
        .filter(|(status, _)| *status != 201)
        .all(|(status, code)| *status == 409 && code == "sold_out"));
    assert_eq!(remaining(&app, &seller, &id).await, 0);
    assert_eq!(app.balance(&seller).await, "35.00");
    let mut spent = 0;
    for buyer in &buyers {
        match app.balance(buyer).await.as_str() {
            "3.00" => spent += 1,
            "10.00" => {}
            other => panic!("a buyer holds {other}"),
        }
    }
    assert_eq!(spent, 5);
    assert_eq!(orders(&app, &seller).await.len(), 5);
    app.stop().await;
}

/// Runs the futures concurrently on this task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut all_done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.extend(results.into_iter().map(|result| result.unwrap()));
    outputs
}

fn now_step() -> u64 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    seconds / STEP_SECONDS
}

/// Turns TOTP on for the person and answers its secret.
async fn enable_totp(app: &TestApp, token: &str) -> Vec<u8> {
    let enrolment =
        json_of(call(app, reqwest::Method::POST, "/v1/me/totp", token, None, None).await).await;
    let secret = base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let code = format!("{:06}", code_at(&secret, now_step()));
    let confirmed = call(
        app,
        reqwest::Method::POST,
        "/v1/me/totp/confirm",
        token,
        None,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(confirmed.status(), 204);
    secret
}

#[tokio::test]
async fn large_orders_and_large_tips_need_a_fresh_second_factor() {
    let config = mizan_api::ServerConfig {
        step_up_threshold_minor: 10_000,
        ..test_config()
    };
    let app = spawn_app_with(config).await;
    let seller = app.person("potter").await;
    let buyer = app.person("dana").await;
    assert_eq!(app.fund(&buyer, "500.00", CARD_OK).await.status(), 201);
    write(&app, &buyer, "potter", "the big vase?").await;
    let card = json_of(
        post_card(
            &app,
            &seller,
            "dana",
            json!({"item": "Vase", "price": "60.00", "currency": "USD", "quantity": 3}),
        )
        .await,
    )
    .await;
    let id = card["id"].as_str().unwrap().to_owned();
    let secret = enable_totp(&app, &buyer).await;

    // 60.00 is under the threshold; 120.00 is not.
    assert_eq!(pay(&app, &buyer, &id, "one", 1).await.status(), 201);
    let refused = pay(&app, &buyer, &id, "two", 2).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(problem(refused).await.code, "step_up_required");
    let tip = |key: &'static str, amount: &'static str| {
        let app = &app;
        let buyer = buyer.clone();
        async move {
            call(
                app,
                reqwest::Method::POST,
                "/v1/tips",
                &buyer,
                Some(key),
                Some(json!({"to": "potter", "amount": amount, "currency": "USD"})),
            )
            .await
        }
    };
    assert_eq!(tip("small-tip", "5.00").await.status(), 201);
    let big_tip = tip("big-tip", "150.00").await;
    assert_eq!(big_tip.status(), 403);
    assert_eq!(problem(big_tip).await.code, "step_up_required");
    assert_eq!(app.balance(&buyer).await, "435.00", "500 − 60 − 5");
    assert_eq!(remaining(&app, &buyer, &id).await, 2);

    let next = format!("{:06}", code_at(&secret, now_step() + 1));
    let stepped = call(
        &app,
        reqwest::Method::POST,
        "/v1/sessions/current/step-up",
        &buyer,
        None,
        Some(json!({"code": next})),
    )
    .await;
    assert_eq!(stepped.status(), 204);
    assert_eq!(pay(&app, &buyer, &id, "two", 2).await.status(), 201);
    assert_eq!(tip("big-tip", "150.00").await.status(), 201);
    assert_eq!(app.balance(&buyer).await, "165.00");
    assert_eq!(remaining(&app, &buyer, &id).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn apps_may_subscribe_to_the_social_events() {
    let app = spawn_app().await;
    let registered = call(
        &app,
        reqwest::Method::POST,
        "/v1/apps",
        OPERATOR_TOKEN,
        None,
        Some(json!({"name": "Shop"})),
    )
    .await;
    assert_eq!(registered.status(), 201);
    let key = json_of(registered).await["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = [
        "tip.received",
        "paid_dm.received",
        "paid_dm.paid",
        "paid_dm.refunded",
        "checkout.created",
        "order.paid",
    ];
    let endpoint = call(
        &app,
        reqwest::Method::POST,
        "/v1/app/webhook-endpoints",
        &key,
        None,
        Some(json!({"url": "http://127.0.0.1:9/hooks", "events": events})),
    )
    .await;
    assert_eq!(endpoint.status(), 201);
    let unknown = call(
        &app,
        reqwest::Method::POST,
        "/v1/app/webhook-endpoints",
        &key,
        None,
        Some(json!({"url": "http://127.0.0.1:9/hooks", "events": ["message.sent"]})),
    )
    .await;
    assert_eq!(unknown.status(), 400);
    assert_eq!(problem(unknown).await.code, "invalid_event_type");
    app.stop().await;
}

#[tokio::test]
async fn a_card_posted_twice_under_one_key_is_posted_once() {
    let app = spawn_app().await;
    let seller = app.person("potter").await;
    let buyer = app.person("dana").await;
    assert_eq!(app.fund(&buyer, "50.00", CARD_OK).await.status(), 201);
    write(&app, &buyer, "potter", "do you sell mugs?").await;
    let offer = json!({"item": "Blue mug", "price": "12.00", "currency": "USD", "quantity": 3});
    let post = |body: Value| {
        call(
            &app,
            reqwest::Method::POST,
            "/v1/threads/dana/checkouts",
            &seller,
            Some("card-1"),
            Some(body),
        )
    };
    let first = post(offer.clone()).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = json_of(first).await;
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(pay(&app, &buyer, &id, "order-1", 1).await.status(), 201);

    // The retry answers the same card, with its stock as it is now.
    let again = post(offer.clone()).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again = json_of(again).await;
    assert_eq!(
        (again["id"].as_str(), &again["remaining"]),
        (Some(id.as_str()), &json!(2))
    );
    // Another card under the key is refused.
    let other = json!({"item": "Red mug", "price": "12.00", "currency": "USD", "quantity": 3});
    let reused = post(other).await;
    assert_eq!(reused.status(), 422);
    assert_eq!(problem(reused).await.code, "idempotency_key_reused");
    // One card in the conversation.
    let thread = thread_with(&app, &buyer, "potter").await;
    let cards = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| !item["checkout_id"].is_null())
        .count();
    assert_eq!(cards, 1, "{thread}");
}
