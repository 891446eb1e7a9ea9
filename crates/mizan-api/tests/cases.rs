#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Sanctions screening, freezes and compliance cases over real HTTP: a sanctioned
//! name at verification freezes the person (outgoing money refused with
//! `account_frozen`, nothing moves; incoming money still arrives), an operator works
//! the case, and clearing it lets money out again. Every operator action is in the
//! audit log.

mod common;

use std::path::PathBuf;

use common::{spawn_app_with, test_config, TestApp, CARD_OK, OPERATOR_TOKEN};
use serde_json::{json, Value};

fn config() -> mizan_api::ServerConfig {
    let list = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/ofac");
    mizan_api::ServerConfig {
        sanctions_dir: Some(list),
        ..test_config()
    }
}

async fn verify(app: &TestApp, token: &str, legal_name: &str) -> reqwest::Response {
    let body = json!({
        "legal_name": legal_name,
        "date_of_birth": "1960-02-11",
        "address": {"line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                    "state": "CA", "country": "US"},
        "ssn_last4": "1234",
    });
    app.client
        .post(app.url("/v1/me/verification"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn pay(app: &TestApp, token: &str, to: &str, amount: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/payments"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"to": to, "amount": amount, "currency": "USD"}))
        .send()
        .await
        .unwrap()
}

async fn cash_out(app: &TestApp, token: &str, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/cashouts"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"amount": "10.00", "currency": "USD", "routing_number": "011000015", "account_number": "000123456789"}))
        .send()
        .await
        .unwrap()
}

async fn operator(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(OPERATOR_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn queue(app: &TestApp) -> Vec<Value> {
    let (status, body) = operator(app, "GET", "/v1/cases", None).await;
    assert_eq!(status, 200, "{body}");
    body["cases"].as_array().unwrap().clone()
}

/// The audit log's actions, newest first, once the server stopped (read on a
/// blocking thread: the PostgreSQL client is synchronous).
async fn audit_actions(app: TestApp) -> Vec<String> {
    let store = app.stop().await;
    tokio::task::spawn_blocking(move || {
        let mut reader = store.reader();
        reader
            .documents_with_prefix("operator_audit", "", None, 1_000)
            .unwrap()
            .into_iter()
            .map(|(_, body)| {
                let entry: Value = serde_json::from_slice(&body).unwrap();
                entry["action"].as_str().unwrap().to_owned()
            })
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_sanctioned_name_freezes_outgoing_money_until_an_operator_clears_it() {
    let app = spawn_app_with(config()).await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&sara, "100.00", CARD_OK).await.status(), 201);
    assert_eq!(app.fund(&omar, "50.00", CARD_OK).await.status(), 201);
    assert!(queue(&app).await.is_empty());

    // Verification answers as usual: a person is never told they are under review.
    let verified = verify(&app, &sara, "Manuel Noriega").await;
    assert_eq!(verified.status(), 200);
    let cases = queue(&app).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = &cases[0];
    assert_eq!(case["kind"], "sanctions_hit");
    assert_eq!(case["status"], "open");
    assert_eq!(case["handle"], "sara");
    assert_eq!(case["froze"], true);
    assert_eq!(case["frozen"], true);
    assert_eq!(case["evidence"]["type"], "sanctions");
    assert_eq!(case["evidence"]["decision"], "block");
    assert_eq!(case["evidence"]["trigger"], "identity_verification");
    assert_eq!(case["evidence"]["matches"][0]["ent_num"], 1572);
    let id = case["id"].as_str().unwrap().to_owned();

    // Outgoing money is refused and nothing moves; incoming money still arrives.
    let refused = pay(&app, &sara, "omar", "10.00", "frozen-1").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(common::problem(refused).await.code, "account_frozen");
    let refused = cash_out(&app, &sara, "frozen-out-1").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(common::problem(refused).await.code, "account_frozen");
    // A tip and paying a request are outgoing money too.
    let tip = app
        .client
        .post(app.url("/v1/tips"))
        .bearer_auth(&sara)
        .header("Idempotency-Key", "frozen-tip")
        .json(&json!({"to": "omar", "amount": "1.00", "currency": "USD"}))
        .send()
        .await
        .unwrap();
    assert_eq!(common::problem(tip).await.code, "account_frozen");
    let request: Value = app
        .client
        .post(app.url("/v1/requests"))
        .bearer_auth(&omar)
        .header("Idempotency-Key", "omar-asks")
        .json(&json!({"from": "sara", "amount": "3.00", "currency": "USD"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request_id = request["id"].as_str().unwrap();
    let paid = app
        .client
        .post(app.url(&format!("/v1/requests/{request_id}/pay")))
        .bearer_auth(&sara)
        .header("Idempotency-Key", "frozen-request")
        .send()
        .await
        .unwrap();
    assert_eq!(common::problem(paid).await.code, "account_frozen");
    assert_eq!(app.balance(&sara).await, "100.00");
    assert_eq!(app.balance(&omar).await, "50.00");
    assert_eq!(
        pay(&app, &omar, "sara", "5.00", "to-sara").await.status(),
        201
    );
    assert_eq!(app.balance(&sara).await, "105.00");
    assert_eq!(app.balance(&omar).await, "45.00");

    // The operator works the case: assign, note, clear.
    let (status, assigned) = operator(&app, "POST", &format!("/v1/cases/{id}/assign"), None).await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["assignee"], "api");
    // ... and hands it to a colleague; a name that is not an operator name changes nothing.
    let (status, bad) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{id}/assign"),
        Some(json!({"assignee": "<script>"})),
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str(), bad["field"].as_str()),
        (400, Some("assignee_invalid"), Some("assignee"))
    );
    let (status, handed) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{id}/assign"),
        Some(json!({"assignee": "Noor A."})),
    )
    .await;
    assert_eq!(status, 200, "{handed}");
    assert_eq!(handed["assignee"], "Noor A.");
    let note = json!({"text": "Date of birth differs from the SDN entry; a namesake."});
    let (status, noted) =
        operator(&app, "POST", &format!("/v1/cases/{id}/notes"), Some(note)).await;
    assert_eq!(status, 200, "{noted}");
    assert_eq!(noted["notes"][0]["operator"], "api");
    let (status, bad) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{id}/decision"),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("decision_invalid"))
    );
    let (status, cleared) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{id}/decision"),
        Some(json!({"decision": "clear"})),
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(cleared["status"], "decided");
    assert_eq!(cleared["decision"], "clear");
    assert_eq!(cleared["frozen"], false);
    let (status, again) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{id}/decision"),
        Some(json!({"decision": "freeze"})),
    )
    .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (409, Some("case_already_decided"))
    );
    assert!(queue(&app).await.is_empty());

    // Money leaves again.
    assert_eq!(
        pay(&app, &sara, "omar", "10.00", "cleared-1")
            .await
            .status(),
        201
    );
    assert_eq!(app.balance(&sara).await, "95.00");
    assert_eq!(app.balance(&omar).await, "55.00");
    // The cleared hit stays cleared: the cash-out screens the same name again and
    // neither refreezes nor reopens.
    assert_eq!(cash_out(&app, &sara, "cleared-out-1").await.status(), 201);
    assert_eq!(app.balance(&sara).await, "85.00");
    assert!(queue(&app).await.is_empty());

    let actions = audit_actions(app).await;
    for action in ["view_cases", "assign_case", "note_case", "decide_case"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn an_ordinary_name_opens_nothing_and_a_reload_screens_everyone_again() {
    let app = spawn_app_with(config()).await;
    let lina = app.person("lina").await;
    let kai = app.person("kai").await;
    assert_eq!(verify(&app, &lina, "Lina Haddad").await.status(), 200);
    assert!(queue(&app).await.is_empty());
    assert_eq!(verify(&app, &kai, "Manuel Noriega").await.status(), 200);
    assert_eq!(queue(&app).await.len(), 1);

    let (status, reloaded) = operator(&app, "POST", "/v1/sanctions/reload", None).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["screened"], 2);
    assert_eq!(reloaded["blocked"], 1);
    // Kai's hit is already a case: not opened twice.
    assert_eq!(reloaded["cases_opened"], 0);
    assert!(reloaded["list_names"].as_u64().unwrap() > 10_000);
    assert_eq!(queue(&app).await.len(), 1);
    assert!(audit_actions(app)
        .await
        .iter()
        .any(|a| a == "reload_sanctions"));
}

#[tokio::test]
async fn closing_an_account_freezes_it_for_good_and_a_sar_draft_can_be_filed() {
    let app = spawn_app_with(config()).await;
    let omar = app.person("omar").await;
    let _sara = app.person("sara").await;
    assert_eq!(app.fund(&omar, "40.00", CARD_OK).await.status(), 201);
    assert_eq!(
        pay(&app, &omar, "sara", "12.00", "before").await.status(),
        201
    );

    let opened = json!({"handle": "omar", "note": "Many small card top-ups from different cards."});
    let (status, first) = operator(&app, "POST", "/v1/cases", Some(opened.clone())).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["kind"], "manual");
    assert_eq!(first["frozen"], false);
    let first_id = first["id"].as_str().unwrap().to_owned();
    let (status, second) = operator(&app, "POST", "/v1/cases", Some(opened)).await;
    assert_eq!(status, 201);
    let second_id = second["id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = queue(&app)
        .await
        .iter()
        .map(|case| case["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        vec![first_id.clone(), second_id.clone()],
        "oldest first"
    );

    // No SAR before the decision.
    let (status, none) = operator(&app, "GET", &format!("/v1/cases/{first_id}/sar"), None).await;
    assert_eq!((status, none["code"].as_str()), (409, Some("no_sar_filed")));
    let (status, filed) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{first_id}/decision"),
        Some(json!({"decision": "file_sar"})),
    )
    .await;
    assert_eq!(status, 200, "{filed}");
    // A verified subject: the draft carries what the vault keeps of them.
    assert_eq!(verify(&app, &omar, "Evelyn Whitcombe").await.status(), 200);
    let (status, sar) = operator(&app, "GET", &format!("/v1/cases/{first_id}/sar"), None).await;
    assert_eq!(status, 200, "{sar}");
    assert_eq!(sar["subject"]["legal_name"], "Evelyn Whitcombe");
    assert_eq!(sar["subject"]["date_of_birth"], "1960-02-11");
    assert_eq!(
        sar["subject"]["address"],
        "1 Main St, Springfield, 12345, US-CA"
    );
    assert_eq!(sar["case_id"], first_id.as_str());
    assert_eq!(sar["subject"]["handle"], "omar");
    assert_eq!(sar["subject"]["account_status"], "active");
    assert_eq!(sar["suspicious_activity"]["total_amount"], "52.00");
    assert_eq!(
        sar["suspicious_activity"]["transactions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(sar["narrative"]
        .as_str()
        .unwrap()
        .contains("Many small card top-ups"));
    assert!(sar["filing_institution"]["legal_name"]
        .as_str()
        .unwrap()
        .starts_with("PLACEHOLDER"));

    let (status, closed) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{second_id}/decision"),
        Some(json!({"decision": "close_account"})),
    )
    .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["frozen"], true);
    let refused = pay(&app, &omar, "sara", "1.00", "after").await;
    assert_eq!(common::problem(refused).await.code, "account_frozen");
    assert_eq!(app.balance(&omar).await, "28.00");

    // A later case cannot lift a closed account's freeze.
    let (_, third) = operator(
        &app,
        "POST",
        "/v1/cases",
        Some(json!({"handle": "omar", "note": "Asks to reopen."})),
    )
    .await;
    let third_id = third["id"].as_str().unwrap();
    let (status, refused) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{third_id}/decision"),
        Some(json!({"decision": "clear"})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("account_closed"))
    );
    assert!(audit_actions(app)
        .await
        .iter()
        .any(|a| a == "export_report"));
}

#[tokio::test]
async fn bad_case_requests_get_stable_codes() {
    let app = spawn_app_with(config()).await;
    let (status, body) = operator(&app, "GET", "/v1/cases/nope", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("case_id_invalid"))
    );
    let (status, body) = operator(
        &app,
        "GET",
        "/v1/cases/00000000000000001000-0011223344556677",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("case_not_found"))
    );
    let (status, body) = operator(&app, "GET", "/v1/cases?status=maybe", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_status"))
    );
    let (status, body) = operator(&app, "GET", "/v1/cases?limit=0", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_limit"))
    );
    let (status, body) = operator(
        &app,
        "POST",
        "/v1/cases",
        Some(json!({"handle": "nobody_here", "note": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("person_not_found"))
    );
    let _sara = app.person("sara").await;
    let (status, body) = operator(
        &app,
        "POST",
        "/v1/cases",
        Some(json!({"handle": "sara", "note": "  "})),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("note_invalid")));
    let spec: Value = app
        .client
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ctr = &spec["paths"]["/v1/reports/ctr"]["get"]["responses"]["200"];
    let schema = &ctr["content"]["application/json"]["schema"];
    assert_eq!(schema["type"], "array", "{ctr}");
    for path in [
        "/v1/cases",
        "/v1/cases/{id}/decision",
        "/v1/cases/{id}/sar",
        "/v1/sanctions/reload",
        "/v1/monitoring/scan",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} in the OpenAPI document"
        );
    }
    let (status, body) = operator(&app, "GET", "/v1/reports/ctr?date=2026-13-01", None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_date")));
}

#[tokio::test]
async fn a_day_of_cash_over_10000_gets_a_ctr_draft_and_monitoring_opens_cases() {
    let app = spawn_app_with(config()).await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    // $10,500 of card funding in one day: a CTR. Omar's $9,000 is not.
    for (n, amount) in ["4000.00", "4000.00", "2500.00"].into_iter().enumerate() {
        let funded = app
            .fund_with_key(&sara, amount, CARD_OK, &format!("f-{n}"))
            .await;
        assert_eq!(funded.status(), 201);
    }
    assert_eq!(app.fund(&omar, "9000.00", CARD_OK).await.status(), 201);
    let today = mizan_app::time::rfc3339_from_ns(
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        )
        .unwrap(),
    )[..10]
        .to_owned();
    let (status, drafts) =
        operator(&app, "GET", &format!("/v1/reports/ctr?date={today}"), None).await;
    assert_eq!(status, 200, "{drafts}");
    let drafts = drafts.as_array().unwrap();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(drafts[0]["subject"]["handle"], "sara");
    assert_eq!(drafts[0]["total_cash_in"], "10500.00");
    assert_eq!(drafts[0]["total_cash_out"], "0.00");
    let response = app
        .client
        .get(app.url(&format!("/v1/reports/ctr?date={today}&format=csv")))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("\"10500.00\""), "{csv}");

    // Omar's $9,000 and Sara's round $4,000s: monitoring. Omar then sends $8,950 out
    // within the day (funds in and out) as three payments just under $3,000.
    for n in 0..3 {
        let sent = pay(&app, &omar, "sara", "2950.00", &format!("s-{n}")).await;
        assert_eq!(sent.status(), 201);
    }
    let (status, scan) = operator(&app, "POST", "/v1/monitoring/scan", None).await;
    assert_eq!(status, 200, "{scan}");
    assert_eq!(scan["people"], 2);
    let cases = queue(&app).await;
    let rules: Vec<(String, String)> = cases
        .iter()
        .map(|case| {
            (
                case["handle"].as_str().unwrap().to_owned(),
                case["evidence"]["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("omar", "structuring"),
        ("omar", "rapid_in_out"),
        ("sara", "structuring"),
    ] {
        assert!(
            rules
                .iter()
                .any(|(h, r)| h == expected.0 && r == expected.1),
            "{expected:?} in {rules:?}"
        );
    }
    assert!(cases
        .iter()
        .all(|case| case["kind"] == "monitoring_alert" && case["frozen"] == false));
    // A second scan finds the same patterns and opens nothing new.
    let (_, again) = operator(&app, "POST", "/v1/monitoring/scan", None).await;
    assert_eq!(again["cases_opened"], 0);
    assert_eq!(queue(&app).await.len(), cases.len());
}

#[tokio::test]
async fn the_periodic_scan_opens_monitoring_cases_by_itself() {
    let app = spawn_app_with(mizan_api::ServerConfig {
        monitoring_scan_seconds: 1,
        ..config()
    })
    .await;
    let omar = app.person("omar").await;
    let _sara = app.person("sara").await;
    assert_eq!(app.fund(&omar, "9000.00", CARD_OK).await.status(), 201);
    for n in 0..3 {
        let sent = pay(&app, &omar, "sara", "2950.00", &format!("p-{n}")).await;
        assert_eq!(sent.status(), 201);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let cases = queue(&app).await;
        if cases
            .iter()
            .any(|case| case["handle"] == "omar" && case["evidence"]["rule"] == "rapid_in_out")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no scan ran: {cases:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Signs up with `legal_name` in the body; answers the status and the bearer token
/// (logged in) when the sign-up succeeded.
async fn sign_up_named(app: &TestApp, handle: &str, legal_name: &str) -> (u16, Option<String>) {
    let body = json!({
        "handle": handle,
        "email": format!("{handle}@example.com"),
        "password": common::PASSWORD,
        "legal_name": legal_name,
    });
    let response = app
        .client
        .post(app.url("/v1/people"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status != 201 {
        return (status, None);
    }
    let login = json!({"login": handle, "password": common::PASSWORD});
    let session: Value = app
        .client
        .post(app.url("/v1/sessions"))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (status, Some(session["token"].as_str().unwrap().to_owned()))
}

/// Every stored document of `collection`, as text, once the server stopped.
async fn stored_documents(store: &common::TestStore, collection: &'static str) -> Vec<String> {
    let location = store.location.clone();
    tokio::task::spawn_blocking(move || {
        location
            .open_reader()
            .unwrap()
            .documents_with_prefix(collection, "", None, 1_000)
            .unwrap()
            .into_iter()
            .map(|(_, body)| String::from_utf8(body).unwrap())
            .collect()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_sanctioned_name_at_sign_up_is_frozen_and_cased_at_once() {
    let app = spawn_app_with(config()).await;
    let (status, lina) = sign_up_named(&app, "lina", "Lina Haddad").await;
    assert_eq!(status, 201);
    assert!(queue(&app).await.is_empty(), "a clear name opens nothing");

    // The answer is the same as anyone's: a person is never told.
    let (status, kai) = sign_up_named(&app, "kai", "Manuel Noriega").await;
    assert_eq!(status, 201);
    let kai = kai.unwrap();
    let cases = queue(&app).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = &cases[0];
    assert_eq!(case["kind"], "sanctions_hit");
    assert_eq!(case["handle"], "kai");
    assert_eq!(case["froze"], true);
    assert_eq!(case["frozen"], true);
    assert_eq!(case["evidence"]["trigger"], "signup");
    assert_eq!(case["evidence"]["decision"], "block");
    assert_eq!(case["evidence"]["matches"][0]["ent_num"], 1572);
    // The queue shows a vault reference, never the name.
    assert!(case["evidence"].get("screened_name").is_none(), "{case}");
    let record = case["evidence"]["screened_name_record"].as_str().unwrap();
    assert_eq!(record.len(), 32, "{record}");
    let id = case["id"].as_str().unwrap().to_owned();

    // Frozen from the first moment: money in arrives, money out is refused.
    assert_eq!(app.fund(&kai, "20.00", CARD_OK).await.status(), 201);
    let refused = pay(&app, &kai, "lina", "5.00", "kai-pays").await;
    assert_eq!(common::problem(refused).await.code, "account_frozen");
    assert_eq!(app.balance(&kai).await, "20.00");
    assert_eq!(app.balance(lina.as_deref().unwrap()).await, "0.00");

    // The case view reveals the name from the vault for the operator.
    let (status, viewed) = operator(&app, "GET", &format!("/v1/cases/{id}"), None).await;
    assert_eq!(status, 200, "{viewed}");
    assert_eq!(viewed["evidence"]["screened_name"], "Manuel Noriega");
    // So does the SAR draft's narrative, once the case is decided for one.
    let (status, filed) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{id}/decision"),
        Some(json!({"decision": "file_sar"})),
    )
    .await;
    assert_eq!(status, 200, "{filed}");
    assert!(filed["evidence"].get("screened_name").is_none(), "{filed}");
    let (status, sar) = operator(&app, "GET", &format!("/v1/cases/{id}/sar"), None).await;
    assert_eq!(status, 200, "{sar}");
    let narrative = sar["narrative"].as_str().unwrap();
    assert!(
        narrative.contains("The name screened: Manuel Noriega."),
        "{narrative}"
    );

    // A bad name is refused and creates nobody; an absent one still signs up.
    let (status, _) = sign_up_named(&app, "noname", "  ").await;
    assert_eq!(status, 400);
    let (status, _) = sign_up_named(&app, "noname", "Bad\u{7}Name").await;
    assert_eq!(status, 400);
    let response = app
        .client
        .post(app.url("/v1/people"))
        .json(&json!({"handle": "noname", "email": "noname@example.com", "password": common::PASSWORD, "legal_name": ""}))
        .send()
        .await
        .unwrap();
    let problem = common::problem(response).await;
    assert_eq!(problem.code, "legal_name_invalid");
    app.person("noname").await;
    // A taken handle with a sanctioned name leaves no case behind.
    let (status, _) = sign_up_named(&app, "lina", "Manuel Noriega").await;
    assert_eq!(status, 409);
    let (status, all) = operator(&app, "GET", "/v1/cases?status=all", None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["cases"].as_array().unwrap().len(), 1, "{all}");

    // Erasure: the case keeps its reference, which reveals nothing any more.
    let erased = app
        .client
        .post(app.url("/v1/me/erase"))
        .bearer_auth(&kai)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), 200);
    let (status, viewed) = operator(&app, "GET", &format!("/v1/cases/{id}"), None).await;
    assert_eq!(status, 200, "{viewed}");
    assert_eq!(viewed["evidence"]["screened_name"], Value::Null);
    assert_eq!(viewed["evidence"]["screened_name_record"], record);
    let (status, sar) = operator(&app, "GET", &format!("/v1/cases/{id}/sar"), None).await;
    assert_eq!(status, 200, "{sar}");
    let narrative = sar["narrative"].as_str().unwrap();
    assert!(
        !narrative.contains("Noriega,") && narrative.contains("was erased"),
        "{narrative}"
    );
    assert!(!narrative.contains("Manuel Noriega"), "{narrative}");

    // No stored case holds the name in plaintext.
    let store = app.stop().await;
    let stored = stored_documents(&store, "compliance_cases").await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains("Manuel Noriega"), "{}", stored[0]);
    assert!(stored[0].contains(record), "{}", stored[0]);
}

/// A directory holding a small sanctions list in the official SDN CSV format, one
/// individual per name (ent_nums from 900001).
fn small_list(directory: &std::path::Path, names: &[&str]) {
    let mut sdn = String::new();
    for (index, name) in names.iter().enumerate() {
        let ent_num = 900_001 + index;
        sdn.push_str(&format!(
            "{ent_num},\"{name}\",\"individual\",\"SDGT\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \r\n"
        ));
    }
    std::fs::create_dir_all(directory).unwrap();
    std::fs::write(directory.join("sdn.csv"), sdn).unwrap();
    std::fs::write(directory.join("alt.csv"), "").unwrap();
}

fn config_with_list(directory: &std::path::Path) -> mizan_api::ServerConfig {
    mizan_api::ServerConfig {
        sanctions_dir: Some(directory.to_owned()),
        ..test_config()
    }
}

#[tokio::test]
async fn a_list_reload_that_adds_a_clear_persons_name_opens_a_list_reload_case() {
    let lists = tempfile::tempdir().unwrap();
    let directory = lists.path().join("reload");
    small_list(&directory, &["PETROV, Anatoly Sergeyevich"]);
    let app = spawn_app_with(config_with_list(&directory)).await;
    let vera = app.person("vera").await;
    assert_eq!(verify(&app, &vera, "Vera Ostrova").await.status(), 200);
    assert!(queue(&app).await.is_empty());

    small_list(
        &directory,
        &["PETROV, Anatoly Sergeyevich", "OSTROVA, Vera"],
    );
    let (status, reloaded) = operator(&app, "POST", "/v1/sanctions/reload", None).await;
    assert_eq!(status, 200, "{reloaded}");
    assert_eq!(reloaded["list_names"], 2);
    assert_eq!(reloaded["screened"], 1);
    assert_eq!(reloaded["cases_opened"], 1);
    let cases = queue(&app).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0]["handle"], "vera");
    assert_eq!(cases[0]["evidence"]["trigger"], "list_reload");
    assert_eq!(cases[0]["evidence"]["matches"][0]["ent_num"], 900_002);
    // Reloading the same list again opens nothing new.
    let (status, again) = operator(&app, "POST", "/v1/sanctions/reload", None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["cases_opened"], 0);
}

#[tokio::test]
async fn a_cash_out_screens_the_kept_legal_name_against_the_list_in_force() {
    let lists = tempfile::tempdir().unwrap();
    let before = lists.path().join("before");
    small_list(&before, &["PETROV, Anatoly Sergeyevich"]);
    let app = spawn_app_with(config_with_list(&before)).await;
    let omar = app.person("omar").await;
    assert_eq!(app.fund(&omar, "100.00", CARD_OK).await.status(), 201);
    assert_eq!(
        verify(&app, &omar, "Omar Farouk Haddad").await.status(),
        200
    );
    assert!(queue(&app).await.is_empty());
    let store = app.stop().await;

    // The server restarts on a list that now names Omar (its own directory: a
    // process keeps each directory's parsed list).
    let after = lists.path().join("after");
    small_list(
        &after,
        &["PETROV, Anatoly Sergeyevich", "HADDAD, Omar Farouk"],
    );
    let mut config = config_with_list(&after);
    // On PostgreSQL the first start wrote the vault's key file: the second reads it.
    let key_file = store.data.path().join("test-vault.key");
    if key_file.exists() {
        config.vault_key_file = Some(key_file);
    }
    let app = common::spawn_app_in(store, config).await;
    assert!(queue(&app).await.is_empty(), "nothing screened Omar yet");
    // The cash-out reads his legal name from the vault and screens it first: the
    // freeze lands before the money would leave.
    let refused = cash_out(&app, &omar, "omar-out-1").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(common::problem(refused).await.code, "account_frozen");
    assert_eq!(app.balance(&omar).await, "100.00");
    let cases = queue(&app).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0]["handle"], "omar");
    assert_eq!(cases[0]["evidence"]["trigger"], "cashout");
    assert_eq!(cases[0]["evidence"]["decision"], "block");
    assert_eq!(cases[0]["evidence"]["matches"][0]["ent_num"], 900_002);
}

#[tokio::test]
async fn a_licence_change_is_audited_with_the_change() {
    let app = spawn_app_with(test_config()).await;
    let (status, changed) = operator(
        &app,
        "PUT",
        "/v1/licences/US-NY",
        Some(json!({"p2p": true, "cashout": false, "savings": true, "cards": false})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["cashout"], false);
    let (status, bad) = operator(
        &app,
        "PUT",
        "/v1/licences/US-XX",
        Some(json!({"p2p": true, "cashout": false, "savings": true, "cards": false})),
    )
    .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("jurisdiction_invalid"))
    );
    let store = app.stop().await;
    let entries: Vec<Value> = stored_documents(&store, "operator_audit")
        .await
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect();
    let licence_entries: Vec<&Value> = entries
        .iter()
        .filter(|entry| entry["action"] == "set_licence")
        .collect();
    // One entry: the refused change wrote nothing.
    assert_eq!(licence_entries.len(), 1, "{entries:?}");
    assert_eq!(licence_entries[0]["operator"], "api");
    assert_eq!(
        licence_entries[0]["target"],
        "US-NY p2p=on cashout=off savings=on cards=off"
    );
    let licences = stored_documents(&store, "licences").await;
    assert_eq!(licences.len(), 1, "{licences:?}");
}

/// `POST /v1/cases` under an `Idempotency-Key` opens one case: a retry answers it
/// (as it is then), another note under the key is refused, and the queue holds one.
#[tokio::test]
async fn a_retried_manual_case_opens_one_case() {
    let app = spawn_app_with(config()).await;
    let _omar = app.person("omar").await;
    let open = |key: &'static str, note: &'static str| {
        app.client
            .post(app.url("/v1/cases"))
            .bearer_auth(OPERATOR_TOKEN)
            .header("Idempotency-Key", key)
            .json(&json!({"handle": "omar", "note": note}))
            .send()
    };
    let first = open("case-1", "Structuring suspected.").await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let (status, _) = operator(
        &app,
        "POST",
        &format!("/v1/cases/{}/assign", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let again = open("case-1", "Structuring suspected.").await.unwrap();
    assert_eq!(again.status(), 201);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["status"], "assigned", "the case as it is now");
    let reused = open("case-1", "Another note.").await.unwrap();
    assert_eq!(reused.status(), 422);
    assert_eq!(common::problem(reused).await.code, "idempotency_key_reused");
    assert_eq!(queue(&app).await.len(), 1);
    app.stop().await;
}
