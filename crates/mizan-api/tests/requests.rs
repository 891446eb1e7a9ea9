#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Money requests, splits, the activity feed and receipts against the real server over
//! TCP, on a fresh SQLite store per test: a request is closed once, money moves once.

mod common;

use common::*;
use serde_json::{json, Value};

impl TestApp {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        send(&self.client, &self.url(path), method, token, key, body).await
    }

    async fn request_money(&self, token: &str, from: &str, amount: &str, key: &str) -> Value {
        let body = json!({"from": from, "amount": amount, "currency": "USD", "note": "dinner"});
        let response = self
            .send(
                reqwest::Method::POST,
                "/v1/requests",
                token,
                Some(key),
                Some(&body),
            )
            .await;
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, token, None, None)
            .await
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_paid_request_moves_money_once_and_replays() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&omar, "30.00", CARD_OK).await.status(), 201);
    let request = app.request_money(&sara, "omar", "12.50", "req-1").await;
    assert_eq!(request["status"], "open");
    assert_eq!(request["from"], "omar");
    assert_eq!(request["to"], "sara");
    let id = request["id"].as_str().unwrap().to_owned();
    let replay = app
        .send(
            reqwest::Method::POST,
            "/v1/requests",
            &sara,
            Some("req-1"),
            Some(&json!({"from": "omar", "amount": "12.50", "currency": "USD", "note": "dinner"})),
        )
        .await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    let pay_path = format!("/v1/requests/{id}/pay");
    let paid = app
        .send(reqwest::Method::POST, &pay_path, &omar, Some("pay-1"), None)
        .await;
    assert_eq!(paid.status(), 201);
    assert!(paid.headers().get("idempotent-replayed").is_none());
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(paid["status"], "paid");
    let payment_id = paid["payment_id"].as_str().unwrap().to_owned();
    assert_eq!(app.balance(&omar).await, "17.50");
    assert_eq!(app.balance(&sara).await, "12.50");

    let replayed = app
        .send(reqwest::Method::POST, &pay_path, &omar, Some("pay-1"), None)
        .await;
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["payment_id"], payment_id.as_str());

    let second = app
        .send(reqwest::Method::POST, &pay_path, &omar, Some("pay-2"), None)
        .await;
    assert_eq!(second.status(), 409);
    assert_eq!(problem(second).await.code, "request_not_open");
    assert_eq!(app.balance(&omar).await, "17.50");
    assert_eq!(app.balance(&sara).await, "12.50");

    for token in [&sara, &omar] {
        let response = app.get(token, &format!("/v1/requests/{id}")).await;
        assert_eq!(response.status(), 200);
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["status"], "paid");
        let response = app.get(token, &format!("/v1/payments/{payment_id}")).await;
        assert_eq!(response.status(), 200);
    }
    app.stop().await;
}

#[tokio::test]
async fn requests_decline_cancel_and_stay_private() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let lina = app.person("lina").await;
    let declined = app.request_money(&sara, "omar", "5.00", "d").await;
    let id = declined["id"].as_str().unwrap();
    let response = app.get(&lina, &format!("/v1/requests/{id}")).await;
    assert_eq!(response.status(), 404);
    assert_eq!(problem(response).await.code, "request_not_found");
    let response = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/pay"),
            &lina,
            Some("k"),
            None,
        )
        .await;
    assert_eq!(response.status(), 404);
    let response = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/decline"),
            &omar,
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "declined");
    let response = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/requests/{id}"),
            &sara,
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(problem(response).await.code, "request_not_open");

    let cancelled = app.request_money(&sara, "omar", "6.00", "c").await;
    let id = cancelled["id"].as_str().unwrap();
    let response = app
        .send(
            reqwest::Method::DELETE,
            &format!("/v1/requests/{id}"),
            &sara,
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "cancelled");
    let response = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/requests/{id}/pay"),
            &omar,
            Some("p"),
            None,
        )
        .await;
    assert_eq!(response.status(), 409);

    let body = json!({"from": "sara", "amount": "1.00", "currency": "USD"});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/requests",
            &sara,
            Some("self"),
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(problem(response).await.code, "cannot_request_from_yourself");
    let body = json!({"from": "nobody", "amount": "1.00", "currency": "USD"});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/requests",
            &sara,
            Some("who"),
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), 404);
    let unknown = problem(response).await;
    assert_eq!(unknown.code, "recipient_not_found");
    assert_eq!(unknown.field.as_deref(), Some("from"));
    let body = json!({"from": "omar", "amount": "1.00", "currency": "USD"});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/requests",
            &sara,
            None,
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(problem(response).await.code, "idempotency_key_required");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_pay_and_cancel_close_a_request_once() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&omar, "100.00", CARD_OK).await.status(), 201);
    let mut paid_total = 0_u32;
    for round in 0..10 {
        let request = app
            .request_money(&sara, "omar", "1.00", &format!("race-{round}"))
            .await;
        let id = request["id"].as_str().unwrap().to_owned();
        let pay = tokio::spawn({
            let (client, url, token) = (
                app.client.clone(),
                app.url(&format!("/v1/requests/{id}/pay")),
                omar.clone(),
            );
            let key = format!("race-pay-{round}");
            async move {
                send(
                    &client,
                    &url,
                    reqwest::Method::POST,
                    &token,
                    Some(&key),
                    None,
                )
                .await
                .status()
                .as_u16()
            }
        });
        let cancel = tokio::spawn({
            let (client, url, token) = (
                app.client.clone(),
                app.url(&format!("/v1/requests/{id}")),
                sara.clone(),
            );
            async move {
                send(&client, &url, reqwest::Method::DELETE, &token, None, None)
                    .await
                    .status()
                    .as_u16()
            }
        });
        let (pay, cancel) = (pay.await.unwrap(), cancel.await.unwrap());
        let winners = [pay == 201, cancel == 200];
        assert_eq!(
            winners.iter().filter(|won| **won).count(),
            1,
            "{pay} {cancel}"
        );
        assert!(pay == 201 || pay == 409, "{pay}");
        assert!(cancel == 200 || cancel == 409, "{cancel}");
        let seen: Value = app
            .get(&sara, &format!("/v1/requests/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let expected = if pay == 201 { "paid" } else { "cancelled" };
        assert_eq!(seen["status"], expected);
        paid_total += u32::from(pay == 201);
    }
    assert_eq!(app.balance(&sara).await, format!("{paid_total}.00"));
    assert_eq!(app.balance(&omar).await, format!("{}.00", 100 - paid_total));
    app.stop().await;
}

#[tokio::test]
async fn a_split_asks_equal_shares_summing_exactly() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    for handle in ["omar", "lina", "zaid"] {
        app.person(handle).await;
    }
    let body = json!({"amount": "10.00", "currency": "USD", "note": "pizza", "with": ["omar", "lina", "zaid"]});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/splits",
            &sara,
            Some("split-1"),
            Some(&body),
        )
        .await;
    assert_eq!(response.status(), 201);
    let split: Value = response.json().await.unwrap();
    let amounts: Vec<&str> = split["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|request| request["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["3.34", "3.33", "3.33"]);
    let ids = split["request_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 3);
    for id in ids {
        let response = app
            .get(&sara, &format!("/v1/requests/{}", id.as_str().unwrap()))
            .await;
        assert_eq!(response.status(), 200);
    }
    let bad = json!({"amount": "10.00", "currency": "USD", "with": ["omar", "nobody"]});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/splits",
            &sara,
            Some("split-2"),
            Some(&bad),
        )
        .await;
    assert_eq!(response.status(), 404);
    let unknown = problem(response).await;
    assert_eq!(unknown.code, "recipient_not_found");
    assert_eq!(unknown.field.as_deref(), Some("with"));

    let long_key = "k".repeat(255);
    let two = json!({"amount": "0.01", "currency": "USD", "with": ["omar", "lina"]});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/splits",
            &sara,
            Some(&long_key),
            Some(&two),
        )
        .await;
    assert_eq!(response.status(), 400, "a share under one minor unit");
    assert_eq!(problem(response).await.code, "split_people_invalid");
    let two = json!({"amount": "1.01", "currency": "USD", "with": ["omar", "lina"]});
    for replayed in [false, true] {
        let response = app
            .send(
                reqwest::Method::POST,
                "/v1/splits",
                &sara,
                Some(&long_key),
                Some(&two),
            )
            .await;
        assert_eq!(response.status(), 201);
        assert_eq!(
            response.headers().get("idempotent-replayed").is_some(),
            replayed
        );
        let split: Value = response.json().await.unwrap();
        assert_eq!(split["requests"][0]["amount"], "0.51");
        assert_eq!(split["requests"][1]["amount"], "0.50");
    }
    app.stop().await;
}

#[tokio::test]
async fn activity_pages_newest_first_without_gaps() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "50.00", CARD_OK).await.status(), 201);
    for index in 1..=6 {
        let body = json!({"to": "omar", "amount": format!("{index}.00"), "currency": "USD", "note": format!("n{index}")});
        let response = app
            .send(
                reqwest::Method::POST,
                "/v1/payments",
                &sara,
                Some(&format!("p{index}")),
                Some(&body),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/activity?limit=3&cursor={cursor}"),
            None => "/v1/activity?limit=3".to_owned(),
        };
        let response = app.get(&sara, &path).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "six payments and one funding");
    let ids: std::collections::BTreeSet<&str> = seen
        .iter()
        .map(|item| item["transfer_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 7, "no duplicates");
    let amounts: Vec<&str> = seen
        .iter()
        .map(|item| item["amount"].as_str().unwrap())
        .collect();
    assert_eq!(
        amounts,
        ["6.00", "5.00", "4.00", "3.00", "2.00", "1.00", "50.00"]
    );
    assert_eq!(seen[0]["direction"], "out");
    assert_eq!(seen[0]["counterparty"], "omar");
    assert_eq!(seen[0]["note"], "n6");
    assert_eq!(seen[6]["direction"], "in");
    assert_eq!(seen[6]["counterparty"], "card funding");
    assert!(seen[0]["timestamp"].as_str().unwrap().ends_with('Z'));

    let page: Value = app.get(&omar, "/v1/activity").await.json().await.unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(items[0]["direction"], "in");
    assert_eq!(items[0]["counterparty"], "sara");
    assert!(page["next_cursor"].is_null());

    for (query, code) in [
        ("cursor=abc", "invalid_cursor"),
        ("cursor=-1", "invalid_cursor"),
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("type=gift", "invalid_type"),
    ] {
        let response = app.get(&sara, &format!("/v1/activity?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(problem(response).await.code, code);
    }
    app.stop().await;
}

#[tokio::test]
async fn receipts_show_the_ledger_hash_to_parties_only() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let lina = app.person("lina").await;
    assert_eq!(app.fund(&sara, "10.00", CARD_OK).await.status(), 201);
    let body = json!({"to": "omar", "amount": "4.00", "currency": "USD"});
    let response = app
        .send(
            reqwest::Method::POST,
            "/v1/payments",
            &sara,
            Some("r"),
            Some(&body),
        )
        .await;
    let payment: Value = response.json().await.unwrap();
    let path = format!("/v1/payments/{}/receipt", payment["id"].as_str().unwrap());
    for token in [&sara, &omar] {
        let response = app.get(token, &path).await;
        assert_eq!(response.status(), 200);
        let receipt: Value = response.json().await.unwrap();
        assert_eq!(receipt["transfer_id"], payment["transfer_id"]);
        let hash = receipt["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(hash, "0".repeat(64));
        assert!(receipt["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(receipt["payment"]["id"], payment["id"]);
    }
    let response = app.get(&lina, &path).await;
    assert_eq!(response.status(), 404);
    assert_eq!(problem(response).await.code, "payment_not_found");
    app.stop().await;
}

#[tokio::test]
async fn both_sides_list_their_requests_newest_first_with_current_status() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    let lina = app.person("lina").await;
    assert_eq!(app.fund(&omar, "30.00", CARD_OK).await.status(), 201);
    let first = app.request_money(&sara, "omar", "5.00", "list-1").await;
    let second = app.request_money(&sara, "lina", "6.00", "list-2").await;
    let paid = app
        .send(
            reqwest::Method::POST,
            &format!("/v1/requests/{}/pay", first["id"].as_str().unwrap()),
            &omar,
            Some("pay-list-1"),
            None,
        )
        .await;
    assert_eq!(paid.status(), 201);

    let listed: Value = app.get(&sara, "/v1/requests").await.json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            second["id"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ]
    );
    assert_eq!(items[0]["status"], "open");
    assert_eq!(items[1]["status"], "paid");

    // Each payer sees only the request made of them.
    let omars: Value = app.get(&omar, "/v1/requests").await.json().await.unwrap();
    assert_eq!(omars["items"].as_array().unwrap().len(), 1);
    assert_eq!(omars["items"][0]["id"], first["id"]);
    let linas: Value = app
        .get(&lina, "/v1/requests?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(linas["items"][0]["id"], second["id"]);

    for bad in ["0", "101", "x"] {
        let response = app.get(&sara, &format!("/v1/requests?limit={bad}")).await;
        assert_eq!(response.status(), 400, "limit={bad}");
    }
}

#[tokio::test]
async fn activity_filters_by_counterparty_and_by_day() {
    let app = spawn_app().await;
    let sara = app.person("sara").await;
    app.person("omar").await;
    app.person("lina").await;
    assert_eq!(app.fund(&sara, "30.00", CARD_OK).await.status(), 201);
    for (to, key) in [("omar", "f-1"), ("lina", "f-2"), ("omar", "f-3")] {
        let body = json!({"to": to, "amount": "1.00", "currency": "USD"});
        let paid = app
            .send(
                reqwest::Method::POST,
                "/v1/payments",
                &sara,
                Some(key),
                Some(&body),
            )
            .await;
        assert_eq!(paid.status(), 201);
    }
    let items = |page: Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["counterparty"].as_str().unwrap().to_owned())
            .collect()
    };
    let with_omar: Value = app
        .get(&sara, "/v1/activity?counterparty=@omar")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(items(with_omar.clone()), ["omar", "omar"]);
    assert!(with_omar["items"][0]["payment_id"].as_str().is_some());

    let today =
        &mizan_app::time::rfc3339_from_ns(mizan_core::Clock::now_ns(&mizan_core::SystemClock))
            [..10];
    let all: Value = app
        .get(&sara, &format!("/v1/activity?from={today}&to={today}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(items(all), ["omar", "lina", "omar", "card funding"]);
    let none: Value = app
        .get(&sara, "/v1/activity?to=2001-01-01")
        .await
        .json()
        .await
        .unwrap();
    assert!(items(none).is_empty());

    for (query, code) in [
        ("from=2026-02-30", "invalid_date"),
        ("from=2026-11-02&to=2026-11-01", "invalid_date"),
        ("to=yesterday", "invalid_date"),
        ("counterparty=no%20one", "invalid_counterparty"),
    ] {
        let response = app.get(&sara, &format!("/v1/activity?{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(problem(response).await.code, code, "{query}");
    }
}
