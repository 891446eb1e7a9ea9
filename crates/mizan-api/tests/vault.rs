#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The vault, wired in: personal data from verification and card and bank numbers
//! go into the vault (and nowhere else), duplicate documents are refused by blind
//! index, saved cards fund by id, a person exports and erases their data, and the
//! proof: known values planted through the HTTP API never appear in plaintext in the
//! SQLite files, a PostgreSQL dump, or the logs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{spawn_app_in, test_config, TestApp, TestStore, CARD_OK, OPERATOR_TOKEN};
use mizan_api::{AppState, StateError};
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

/// Installs the capture once for the whole test binary.
fn capture() -> Capture {
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "trace,hyper=info,hyper_util=info,reqwest=info,h2=info,tokio=info,runtime=info,mio=info,tokio_postgres=info,postgres=info",
                ))
                .with_writer(capture.clone())
                .try_init()
                .unwrap();
            capture
        })
        .clone()
}

async fn sqlite_app() -> TestApp {
    let store = tokio::task::spawn_blocking(TestStore::sqlite)
        .await
        .unwrap();
    spawn_app_in(store, test_config()).await
}

async fn postgres_app() -> TestApp {
    let store = tokio::task::spawn_blocking(TestStore::postgres)
        .await
        .unwrap();
    spawn_app_in(store, test_config()).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header(
            "Idempotency-Key",
            format!("vault-{}", rand::random::<u64>()),
        )
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// What one person plants: every kind of personal data and a card and a bank account.
struct Planted {
    legal_name: &'static str,
    date_of_birth: &'static str,
    address_line: &'static str,
    ssn_last4: &'static str,
    document_type: &'static str,
    document_number: &'static str,
    card: &'static str,
    bank_account: &'static str,
}

const PEOPLE: [Planted; 2] = [
    Planted {
        legal_name: "Zenobia Quillfeather-Marchbanks",
        date_of_birth: "1987-03-14",
        address_line: "742 Evergreen Terrace",
        ssn_last4: "7391",
        // A full SSN as a national id: the needles look for it with and without
        // hyphens.
        document_type: "national_id",
        document_number: "123456789",
        // Luhn-valid test numbers that the sandbox approves.
        card: "4111111111111111",
        bank_account: "987654321234",
    },
    Planted {
        legal_name: "Bartholomew Okonkwo-Lindqvist",
        date_of_birth: "1979-11-02",
        address_line: "31 Spooner Street",
        ssn_last4: "5826",
        document_type: "passport",
        document_number: "K7716352",
        card: "5555555555554444",
        bank_account: "456789012345",
    },
];

fn identity_body(planted: &Planted) -> Value {
    json!({
        "legal_name": planted.legal_name,
        "date_of_birth": planted.date_of_birth,
        "ssn_last4": planted.ssn_last4,
        "address": {"line1": planted.address_line, "city": "Springfield", "postal_code": "97403", "state": "OR", "country": "US"},
    })
}

/// Plants everything through the API and checks each step really happened.
async fn plant(app: &TestApp, handle: &str, planted: &Planted) -> String {
    let token = app.person(handle).await;
    let verified = post(app, "/v1/me/verification", &token, identity_body(planted)).await;
    assert_eq!(verified.status(), 200, "{}", verified.text().await.unwrap());
    let document =
        json!({"document_type": planted.document_type, "document_number": planted.document_number});
    let verified = post(app, "/v1/me/verification/document", &token, document).await;
    assert_eq!(verified.status(), 200, "{}", verified.text().await.unwrap());
    let funding = json!({"amount": "40.00", "currency": "USD", "card_number": planted.card, "save_card": true});
    let funded = post(app, "/v1/funding", &token, funding).await;
    assert_eq!(funded.status(), 201, "{}", funded.text().await.unwrap());
    let cashout = json!({"amount": "5.00", "currency": "USD", "routing_number": "011000015", "account_number": planted.bank_account});
    let cashed = post(app, "/v1/cashouts", &token, cashout).await;
    assert_eq!(cashed.status(), 201, "{}", cashed.text().await.unwrap());
    assert_eq!(app.balance(&token).await, "35.00");
    token
}

/// Secrets the server generated while planting (TOTP, webhook signing), which the
/// scan looks for too, as text and, for the TOTP seed, as raw bytes.
#[derive(Default)]
struct Generated(Vec<Vec<u8>>);

/// Turns TOTP on for the person (the secret goes into the vault) and returns the
/// secret's spellings: base32 and the raw seed.
async fn plant_totp(app: &TestApp, token: &str) -> Vec<Vec<u8>> {
    let enrolment: Value = post(app, "/v1/me/totp", token, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let secret_base32 = enrolment["secret"].as_str().unwrap().to_owned();
    let seed = base32_decode(&secret_base32).unwrap();
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = format!("{:06}", code_at(&seed, now_s / STEP_SECONDS));
    let confirmed = post(app, "/v1/me/totp/confirm", token, json!({"code": code})).await;
    assert_eq!(
        confirmed.status(),
        204,
        "{}",
        confirmed.text().await.unwrap()
    );
    vec![secret_base32.into_bytes(), seed]
}

/// Registers an app with a webhook endpoint and returns its signing secret.
async fn plant_webhook_secret(app: &TestApp) -> Vec<u8> {
    let registered: Value = post(
        app,
        "/v1/apps",
        OPERATOR_TOKEN,
        json!({"name": "Vaulted Shop"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let api_key = registered["api_key"].as_str().unwrap();
    let created = post(
        app,
        "/v1/app/webhook-endpoints",
        api_key,
        json!({"url": "http://127.0.0.1:9/hooks", "events": ["payment.succeeded"]}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let endpoint: Value = created.json().await.unwrap();
    let secret = endpoint["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    secret.as_bytes().to_vec()
}

/// Every planted value, in the spellings a leak could take.
fn needles(generated: &Generated) -> Vec<Vec<u8>> {
    let mut needles: Vec<Vec<u8>> = generated.0.clone();
    // The full SSN planted as PEOPLE[0]'s national id, as people write it too.
    needles.push(b"123-45-6789".to_vec());
    needles.extend(text_needles().into_iter().map(String::into_bytes));
    needles
}

fn text_needles() -> Vec<String> {
    let mut needles = Vec::new();
    for planted in &PEOPLE {
        needles.extend(
            [
                planted.legal_name,
                planted.date_of_birth,
                planted.address_line,
                planted.document_number,
                planted.card,
                planted.bank_account,
            ]
            .map(str::to_owned),
        );
        needles.push(format!("ssn_last4\":\"{}", planted.ssn_last4));
        // The card's middle digits: a number stored without its last 4 would hit.
        needles.push(planted.card[..12].to_owned());
    }
    needles
}

fn hits(haystack: &[u8], where_: &str, generated: &Generated) -> Vec<String> {
    needles(generated)
        .into_iter()
        .filter(|needle| {
            haystack
                .windows(needle.len())
                .any(|window| window == needle.as_slice())
        })
        .map(|needle| format!("{} in {where_}", String::from_utf8_lossy(&needle)))
        .collect()
}

/// Every file under the data directory, subdirectories included (the ledger's and
/// the vault's SQLite files, their WAL and shared memory, the key file, which holds
/// keys, not data, and whatever else the server writes there).
fn scan_directory(directory: &std::path::Path, generated: &Generated) -> Vec<String> {
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut pending = vec![directory.to_owned()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                scanned += 1;
                found.extend(hits(
                    &std::fs::read(&path).unwrap(),
                    &path.display().to_string(),
                    generated,
                ));
            }
        }
    }
    assert!(scanned >= 2, "expected the ledger and vault files");
    found
}

fn pg_dump(url: &str) -> Vec<u8> {
    let output = std::process::Command::new("pg_dump")
        .arg("--dbname")
        .arg(url)
        .output()
        .expect("pg_dump runs");
    assert!(
        output.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The proof of issue 6: known values planted through the real API on SQLite and on
/// PostgreSQL are in no file, no dump and no log line in plaintext — and yet the
/// person's own export shows them (so they were stored, not dropped).
#[tokio::test]
async fn planted_personal_data_and_numbers_appear_nowhere_in_plaintext() {
    let capture = capture();
    let mut generated = Generated::default();
    for postgres in [false, true] {
        let app = if postgres {
            postgres_app().await
        } else {
            sqlite_app().await
        };
        let zenobia = plant(&app, "zenobia", &PEOPLE[0]).await;
        plant(&app, "bartholomew", &PEOPLE[1]).await;
        let totp = plant_totp(&app, &zenobia).await;
        let webhook_secret = plant_webhook_secret(&app).await;
        // The values are really kept: the person's own export shows them.
        let export: Value = get(&app, "/v1/me/export", &zenobia)
            .await
            .json()
            .await
            .unwrap();
        let exported = export["personal_data"].to_string();
        for value in [
            PEOPLE[0].legal_name,
            PEOPLE[0].document_number,
            PEOPLE[0].ssn_last4,
        ] {
            assert!(exported.contains(value), "{value} missing from {exported}");
        }
        assert!(!export.to_string().contains(PEOPLE[0].card));
        // The TOTP secret is a service secret: not even its owner's export shows it.
        assert!(!export
            .to_string()
            .contains(std::str::from_utf8(&totp[0]).unwrap()));
        generated.0.extend(totp);
        generated.0.push(webhook_secret);
        assert_eq!(export["saved_cards"][0]["last4"], "1111");

        let store = app.stop().await;
        let found = match store.postgres_url() {
            Some(url) => {
                let url = url.to_owned();
                let dump = tokio::task::spawn_blocking(move || pg_dump(&url))
                    .await
                    .unwrap();
                assert!(
                    String::from_utf8_lossy(&dump).contains("vault_records"),
                    "the dump holds the vault's tables"
                );
                hits(&dump, "the PostgreSQL dump", &generated)
            }
            None => scan_directory(store.data.path(), &generated),
        };
        assert!(found.is_empty(), "plaintext found: {found:?}");
        drop(store);
    }
    let logs = capture.0.lock().unwrap().clone();
    assert!(logs.len() > 10_000, "the capture holds the server's logs");
    let found = hits(&logs, "the logs", &generated);
    assert!(found.is_empty(), "plaintext in the logs: {found:?}");
}

#[tokio::test]
async fn a_document_number_belongs_to_one_person_until_they_are_erased() {
    let app = sqlite_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    for token in [&sara, &omar] {
        let verified = post(
            &app,
            "/v1/me/verification",
            token,
            identity_body(&PEOPLE[0]),
        )
        .await;
        assert_eq!(verified.status(), 200);
    }
    let document = json!({"document_type": "passport", "document_number": "Q1234567"});
    let first = post(
        &app,
        "/v1/me/verification/document",
        &sara,
        document.clone(),
    )
    .await;
    assert_eq!(first.status(), 200);
    // The same person again: fine (nothing duplicated).
    let again = post(
        &app,
        "/v1/me/verification/document",
        &sara,
        document.clone(),
    )
    .await;
    assert_eq!(again.status(), 200);
    // Another person, even spelled in lower case: refused, and Omar stays at tier 1.
    let lower = json!({"document_type": "national_id", "document_number": "q1234567"});
    let refused = post(&app, "/v1/me/verification/document", &omar, lower).await;
    assert_eq!(refused.status(), 409);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "document_already_used");
    assert_eq!(problem["field"], "document_number");
    let limits: Value = get(&app, "/v1/me/export", &omar)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(limits["verification"]["tier"], 1);

    // Once Sara is erased, her document number no longer blocks anyone.
    let erased = post(&app, "/v1/me/erase", &sara, json!({})).await;
    assert_eq!(erased.status(), 200);
    let accepted = post(&app, "/v1/me/verification/document", &omar, document).await;
    assert_eq!(accepted.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_racing_with_one_document_number_admit_exactly_one() {
    const RACERS: usize = 8;
    let app = sqlite_app().await;
    let mut tokens = Vec::new();
    for index in 0..RACERS {
        let token = app.person(&format!("racer{index}")).await;
        let verified = post(
            &app,
            "/v1/me/verification",
            &token,
            identity_body(&PEOPLE[0]),
        )
        .await;
        assert_eq!(verified.status(), 200);
        tokens.push(token);
    }
    let document = json!({"document_type": "passport", "document_number": "R7654321"});
    let mut racing = tokio::task::JoinSet::new();
    for token in tokens {
        let request = app
            .client
            .post(app.url("/v1/me/verification/document"))
            .bearer_auth(token)
            .json(&document);
        racing.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = racing.join_all().await;
    statuses.sort_unstable();
    let mut expected = vec![409; RACERS - 1];
    expected.insert(0, 200);
    assert_eq!(statuses, expected);
    app.stop().await;
}

#[tokio::test]
async fn saved_cards_fund_by_id_and_can_be_deleted() {
    let app = sqlite_app().await;
    let sara = app.person("sara").await;
    let omar = app.person("omar").await;
    // A Luhn-invalid number is refused before anything happens.
    let bad = post(
        &app,
        "/v1/funding",
        &sara,
        json!({"amount": "1.00", "currency": "USD", "card_number": "4242424242424241"}),
    )
    .await;
    assert_eq!(bad.status(), 400);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["code"], "card_number_invalid");
    let both = post(
        &app,
        "/v1/funding",
        &sara,
        json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK, "card_id": "x"}),
    )
    .await;
    assert_eq!(both.status(), 400);
    let problem: Value = both.json().await.unwrap();
    assert_eq!(problem["code"], "card_source_invalid");
    assert_eq!(app.balance(&sara).await, "0.00");

    // Not saved unless asked; a declined card is never saved.
    assert_eq!(app.fund(&sara, "10.00", CARD_OK).await.status(), 201);
    let declined = post(&app, "/v1/funding", &sara, json!({"amount": "1.00", "currency": "USD", "card_number": "4000000000009995", "save_card": true})).await;
    assert_eq!(declined.status(), 402);
    let cards: Value = get(&app, "/v1/me/cards", &sara).await.json().await.unwrap();
    assert_eq!(cards["cards"], json!([]));

    let saved = post(&app, "/v1/funding", &sara, json!({"amount": "5.00", "currency": "USD", "card_number": "5555555555554444", "save_card": true})).await;
    assert_eq!(saved.status(), 201);
    let saved = post(
        &app,
        "/v1/funding",
        &sara,
        json!({"amount": "5.00", "currency": "USD", "card_number": CARD_OK, "save_card": true}),
    )
    .await;
    assert_eq!(saved.status(), 201);
    let cards: Value = get(&app, "/v1/me/cards", &sara).await.json().await.unwrap();
    let cards = cards["cards"].as_array().unwrap().clone();
    assert_eq!(cards.len(), 2);
    assert_eq!(
        (cards[0]["last4"].as_str(), cards[0]["default"].as_bool()),
        (Some("4242"), Some(true))
    );
    assert_eq!(
        (cards[1]["last4"].as_str(), cards[1]["default"].as_bool()),
        (Some("4444"), Some(false))
    );
    let default_id = cards[0]["id"].as_str().unwrap().to_owned();
    assert!(default_id.starts_with("tok_card_"));

    // Funding from a saved card by id.
    let by_id = post(
        &app,
        "/v1/funding",
        &sara,
        json!({"amount": "7.00", "currency": "USD", "card_id": default_id}),
    )
    .await;
    assert_eq!(by_id.status(), 201, "{}", by_id.text().await.unwrap());
    assert_eq!(app.balance(&sara).await, "27.00");
    // Another person cannot use or delete it.
    let stolen = post(
        &app,
        "/v1/funding",
        &omar,
        json!({"amount": "7.00", "currency": "USD", "card_id": default_id}),
    )
    .await;
    assert_eq!(stolen.status(), 404);
    let problem: Value = stolen.json().await.unwrap();
    assert_eq!(problem["code"], "card_not_found");
    let delete = |token: &str| {
        app.client
            .delete(app.url(&format!("/v1/me/cards/{default_id}")))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(delete(&omar).await.unwrap().status(), 404);
    assert_eq!(app.balance(&omar).await, "0.00");

    // Deleted: the other card becomes the default, and the id funds nothing.
    assert_eq!(delete(&sara).await.unwrap().status(), 204);
    let cards: Value = get(&app, "/v1/me/cards", &sara).await.json().await.unwrap();
    assert_eq!(cards["cards"].as_array().unwrap().len(), 1);
    assert_eq!(cards["cards"][0]["last4"], "4444");
    assert_eq!(cards["cards"][0]["default"], true);
    let gone = post(
        &app,
        "/v1/funding",
        &sara,
        json!({"amount": "7.00", "currency": "USD", "card_id": default_id}),
    )
    .await;
    assert_eq!(gone.status(), 404);
    assert_eq!(app.balance(&sara).await, "27.00");
    app.stop().await;
}

#[tokio::test]
async fn erasure_shreds_personal_data_and_keeps_the_ledger_verifiable() {
    let app = sqlite_app().await;
    let sara = plant(&app, "sara", &PEOPLE[0]).await;
    let before: Value = get(&app, "/v1/me/export", &sara)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["personal_data"]["erased"], false);
    assert!(before["personal_data"]["fields"].as_array().unwrap().len() >= 5);

    let erased = post(&app, "/v1/me/erase", &sara, json!({})).await;
    assert_eq!(erased.status(), 200);
    let body: Value = erased.json().await.unwrap();
    assert_eq!(body["erased_now"], true);
    let again: Value = post(&app, "/v1/me/erase", &sara, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["erased_now"], false);

    let after: Value = get(&app, "/v1/me/export", &sara)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["personal_data"]["erased"], true);
    assert_eq!(after["personal_data"]["fields"], json!([]));
    assert_eq!(after["saved_cards"], json!([]));
    assert!(!after.to_string().contains(PEOPLE[0].legal_name));
    // The money history is untouched.
    assert_eq!(app.balance(&sara).await, "35.00");
    assert_eq!(after["activity"], before["activity"]);
    // No new personal data for an erased person.
    let refused = post(
        &app,
        "/v1/me/verification",
        &sara,
        identity_body(&PEOPLE[0]),
    )
    .await;
    assert_eq!(refused.status(), 410);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "person_erased");
    // Nor a second-factor secret: it would be sealed under the shredded key.
    let totp = post(&app, "/v1/me/totp", &sara, json!({})).await;
    assert_eq!(totp.status(), 410);
    let problem: Value = totp.json().await.unwrap();
    assert_eq!(problem["code"], "person_erased");
    let funding = post(
        &app,
        "/v1/funding",
        &sara,
        json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK}),
    )
    .await;
    assert_eq!(funding.status(), 410);
    assert_eq!(app.balance(&sara).await, "35.00");

    let store = app.stop().await;
    let report = tokio::task::spawn_blocking(move || {
        let mut reader = store.reader();
        mizan_ledger::verify::verify(&mut *reader)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(report.transfers > 0);
}

#[tokio::test]
async fn sqlite_creates_its_key_file_once_and_postgres_requires_keys() {
    let store = tokio::task::spawn_blocking(TestStore::sqlite)
        .await
        .unwrap();
    let key_file = store
        .data
        .path()
        .join(mizan_api::state::VAULT_KEY_FILE_NAME);
    let location = store.location.clone();
    let started = tokio::task::spawn_blocking(move || AppState::start(&location, test_config()))
        .await
        .unwrap()
        .unwrap();
    started.shutdown().await.unwrap();
    let first = std::fs::read(&key_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A restart reuses the file.
    let location = store.location.clone();
    let restarted = tokio::task::spawn_blocking(move || AppState::start(&location, test_config()))
        .await
        .unwrap()
        .unwrap();
    restarted.shutdown().await.unwrap();
    assert_eq!(std::fs::read(&key_file).unwrap(), first);

    let postgres = tokio::task::spawn_blocking(TestStore::postgres)
        .await
        .unwrap();
    let location = postgres.location.clone();
    let refused = tokio::task::spawn_blocking(move || AppState::start(&location, test_config()))
        .await
        .unwrap();
    assert!(matches!(refused, Err(StateError::VaultKeysRequired)));
    tokio::task::spawn_blocking(move || drop(postgres))
        .await
        .unwrap();
}

/// A CVV is never asked for and never accepted: a funding body carrying one is
/// refused whole (400), nothing is charged, and no token is made.
#[tokio::test]
async fn a_funding_body_with_a_cvv_is_refused() {
    let app = sqlite_app().await;
    let token = app.person("cvvsender").await;
    let body = json!({"amount": "10.00", "currency": "USD", "card_number": CARD_OK, "cvv": "123"});
    let refused = post(&app, "/v1/funding", &token, body).await;
    assert_eq!(refused.status(), 400);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_body", "{problem}");
    assert_eq!(app.balance(&token).await, "0.00");
    let export: Value = get(&app, "/v1/me/export", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["saved_cards"].as_array().map_or(0, Vec::len), 0);
    assert!(!export.to_string().contains("tok_card_"), "{export}");
    // The same body without the CVV goes through: the refusal was the CVV's.
    let body = json!({"amount": "10.00", "currency": "USD", "card_number": CARD_OK});
    let funded = post(&app, "/v1/funding", &token, body).await;
    assert_eq!(funded.status(), 201, "{}", funded.text().await.unwrap());
    assert_eq!(app.balance(&token).await, "10.00");
    app.stop().await;
}
