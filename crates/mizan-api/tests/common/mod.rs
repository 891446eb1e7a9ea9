//! The test server shared by the HTTP test files: a real `mizan serve` over TCP on a
//! fresh SQLite store, and the steps most tests begin with.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mizan_api::{AppState, Problem, ServerConfig};
use mizan_store::postgres::testing::{create_test_database, TestDatabase};
use mizan_store::Location;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery";
pub const CARD_OK: &str = "4242424242424242";

pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), mizan_api::ServeError>>,
    store: TestStore,
}

/// Where a test server keeps its ledger: a fresh SQLite file in a temp dir, or — when
/// `MIZAN_TEST_API_STORE=postgres` (`scripts/test` runs the suite both ways) — a
/// fresh PostgreSQL database on `MIZAN_TEST_POSTGRES_URL`, dropped afterwards.
pub struct TestStore {
    pub data: tempfile::TempDir,
    pub location: Location,
    database: Option<TestDatabase>,
}

impl Drop for TestStore {
    /// Drops the PostgreSQL database on a thread of its own: its synchronous client
    /// must not run on the test's async runtime.
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            let _ = std::thread::spawn(move || drop(database)).join();
        }
    }
}

impl TestStore {
    pub fn fresh() -> TestStore {
        let postgres = std::env::var("MIZAN_TEST_API_STORE").is_ok_and(|store| store == "postgres");
        if postgres {
            TestStore::postgres()
        } else {
            TestStore::sqlite()
        }
    }

    /// A fresh SQLite store in a temporary data directory.
    pub fn sqlite() -> TestStore {
        let data = tempfile::tempdir().unwrap();
        let location = Location::from_config(data.path(), None);
        TestStore {
            data,
            location,
            database: None,
        }
    }

    /// A fresh PostgreSQL database on `MIZAN_TEST_POSTGRES_URL`, dropped afterwards.
    pub fn postgres() -> TestStore {
        let data = tempfile::tempdir().unwrap();
        let admin = std::env::var("MIZAN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let database = create_test_database(&admin).unwrap();
        let location = Location::from_config(data.path(), Some(&database.url));
        TestStore {
            data,
            location,
            database: Some(database),
        }
    }

    /// The PostgreSQL URL of this store, if it is one.
    /// A store on the same PostgreSQL database, for a second server (another
    /// process, as far as the database can tell); the database stays this one's.
    pub fn sharing(&self) -> TestStore {
        let url = self
            .postgres_url()
            .expect("only a PostgreSQL store is shared");
        let data = tempfile::tempdir().unwrap();
        let location = Location::from_config(data.path(), Some(url));
        TestStore {
            data,
            location,
            database: None,
        }
    }

    pub fn postgres_url(&self) -> Option<&str> {
        self.database.as_ref().map(|database| database.url.as_str())
    }

    /// On PostgreSQL the vault needs configured keys (the server refuses to invent
    /// them next to the data): a key file in the test's temporary directory, which
    /// never enters the database.
    pub fn configure_vault_keys(&self, config: &mut ServerConfig) {
        let configured = config.vault_key_file.is_some() || config.vault_master_keys.is_some();
        if self.database.is_some() && !configured {
            let path = self.data.path().join("test-vault.key");
            mizan_vault::MasterKeyRing::generate()
                .write_key_file(&path)
                .unwrap();
            config.vault_key_file = Some(path);
        }
    }

    /// A reader on the store (after the server stopped, or beside it). Call it off
    /// the async runtime (`spawn_blocking`): it may be a PostgreSQL client.
    pub fn reader(&self) -> Box<dyn mizan_ledger::LedgerReader> {
        self.location.open_reader().unwrap()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_config()).await
}

/// The operator token [`test_config`] sets.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// Defaults, plus an operator token and fast webhook retries; no rate limits (the
/// tests that check them set their own).
/// Every limit of every tier in `test_config()`: $1,000,000.00.
pub const TEST_LIMIT_MINOR: i64 = 100_000_000;

pub fn test_config() -> ServerConfig {
    ServerConfig {
        rate_limit_ip_per_minute: 0,
        rate_limit_person_per_minute: 0,
        rate_limit_app_per_minute: 0,
        operator_token: Some(mizan_core::Secret::new(OPERATOR_TOKEN.to_owned())),
        webhook_retry_base_ms: 50,
        webhook_attempts_max: 4,
        webhook_timeout_ms: 2_000,
        webhook_poll_ms: 20,
        // High enough for every flow the other tests run on unverified people;
        // tests/limits.rs runs the real defaults.
        limits: mizan_app::limits::LimitsTable::uniform(TEST_LIMIT_MINOR),
        ..ServerConfig::default()
    }
}

pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
    let store = tokio::task::spawn_blocking(TestStore::fresh).await.unwrap();
    spawn_app_in(store, config).await
}

/// A server on `store` (SQLite or PostgreSQL, whatever the environment says).
pub async fn spawn_app_in(store: TestStore, mut config: ServerConfig) -> TestApp {
    store.configure_vault_keys(&mut config);
    let location = store.location.clone();
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
    let server = tokio::spawn(mizan_api::serve(listener, state, signal));
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server,
        store,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Signs a person up and logs them in; answers their bearer token.
    pub async fn person(&self, handle: &str) -> String {
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
        session["token"].as_str().unwrap().to_owned()
    }

    pub async fn balance(&self, token: &str) -> String {
        self.wallet(token).await["balance"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `GET /v1/me` as the holder of `token`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.client
            .get(self.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// The caller's wallet as `GET /v1/me` shows it (balance, available, pending).
    pub async fn wallet(&self, token: &str) -> Value {
        let response = self.me(token).await;
        assert_eq!(response.status(), 200);
        let me: Value = response.json().await.unwrap();
        me["wallet"].clone()
    }

    /// Funds with a fresh Idempotency-Key.
    pub async fn fund(&self, token: &str, amount: &str, card: &str) -> reqwest::Response {
        let key = format!("fund-{}", rand::random::<u64>());
        self.fund_with_key(token, amount, card, &key).await
    }

    pub async fn fund_with_key(
        &self,
        token: &str,
        amount: &str,
        card: &str,
        key: &str,
    ) -> reqwest::Response {
        let body = json!({"amount": amount, "currency": "USD", "card_number": card});
        self.client
            .post(self.url("/v1/funding"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server and the writer; the store stays for inspection.
    pub async fn stop(mut self) -> TestStore {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        self.store
    }
}

/// Asserts a problem+json answer and parses it.
pub async fn problem(response: reqwest::Response) -> Problem {
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.unwrap()
}
