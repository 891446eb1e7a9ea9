//! The test server shared by the HTTP test files: a real `mizan serve` over TCP on a
//! fresh SQLite store, and the steps most tests begin with.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mizan_api::{AppState, Problem, ServerConfig};
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
    pub data: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ServerConfig::default()).await
}

/// The operator token [`test_config`] sets.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// Defaults, plus an operator token and fast webhook retries.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        operator_token: Some(mizan_core::Secret::new(OPERATOR_TOKEN.to_owned())),
        webhook_retry_base_ms: 50,
        webhook_attempts_max: 4,
        webhook_timeout_ms: 2_000,
        webhook_poll_ms: 20,
        ..ServerConfig::default()
    }
}

pub async fn spawn_app_with(config: ServerConfig) -> TestApp {
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
    let server = tokio::spawn(mizan_api::serve(listener, state, signal));
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server,
        data,
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
        let response = self
            .client
            .get(self.url("/v1/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let me: Value = response.json().await.unwrap();
        me["wallet"]["balance"].as_str().unwrap().to_owned()
    }

    pub async fn fund(&self, token: &str, amount: &str, card: &str) -> reqwest::Response {
        let body = json!({"amount": amount, "currency": "USD", "card_number": card});
        self.client
            .post(self.url("/v1/funding"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server and the writer; the store stays on disk for inspection.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        self.data
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
