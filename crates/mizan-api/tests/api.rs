#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real server over real TCP on a fresh SQLite store per test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use mizan_api::{AppState, Problem, ServerConfig};
use mizan_store::Location;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

struct TestApp {
    address: SocketAddr,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<Result<(), mizan_api::ServeError>>,
    _data: tempfile::TempDir,
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Triggers the shutdown and waits for the server future (HTTP and ledger writer).
    /// Returns the data directory, still on disk.
    async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        self._data
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(ServerConfig::default()).await
}

async fn spawn_app_with(config: ServerConfig) -> TestApp {
    let (state, data) = start_state(config).await;
    serve_state(state, None, data).await
}

/// A fresh SQLite store in a temp dir, with the ledger writer running.
async fn start_state(config: ServerConfig) -> (AppState, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let location = Location::from_config(data.path(), None);
    let state = tokio::task::spawn_blocking(move || AppState::start(&location, config))
        .await
        .unwrap()
        .unwrap();
    (state, data)
}

/// Serves on a free port of 127.0.0.1 until [`TestApp::stop`]: `mizan_api::serve`, or
/// `serve_router` with `app` when given.
async fn serve_state(
    state: AppState,
    app: Option<axum::Router>,
    data: tempfile::TempDir,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (shutdown, signal) = oneshot::channel::<()>();
    let signal = async move {
        let _ = signal.await;
    };
    let server = match app {
        None => tokio::spawn(mizan_api::serve(listener, state, signal)),
        Some(app) => tokio::spawn(mizan_api::serve_router(listener, app, state, signal)),
    };
    TestApp {
        address,
        client: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server,
        _data: data,
    }
}

async fn problem(response: reqwest::Response) -> Problem {
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    app.stop().await;
}

#[tokio::test]
async fn readyz_answers_ok_while_the_writer_runs() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_requests_and_the_ledger() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/no/such/route").await.status(), 404);
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    for expected in [
        r#"mizan_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        r#"mizan_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        "mizan_http_request_duration_seconds_bucket{",
        "mizan_ledger_transfers_committed_total 0",
        "mizan_ledger_batches_committed_total",
        "mizan_ledger_last_batch_events",
        "mizan_ledger_commit_seconds_total",
        "mizan_ledger_syncs_total",
        "mizan_ledger_sync_seconds_total",
        "mizan_ledger_queue_depth 0",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_the_routes() {
    let app = spawn_app().await;
    let response = app.get("/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    let spec: serde_json::Value = response.json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
        "/v1/docs",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    let docs = app.get("/v1/docs").await;
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/v1/openapi.json"));
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything remote"
    );
    app.stop().await;
}

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let body = problem(app.get("/v1/nothing-here").await).await;
    assert_eq!(body.status, 404);
    assert_eq!(body.code, "not_found");
    assert_eq!(body.problem_type, "urn:mizan:problem:not_found");
    let posted = app
        .client
        .post(app.url("/nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let response = app.client.delete(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key(reqwest::header::ALLOW));
    let body = problem(response).await;
    assert_eq!(body.code, "method_not_allowed");
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_is_a_413_problem() {
    let app = spawn_app().await;
    let body = vec![b'x'; 65 * 1024];
    let response = app
        .client
        .post(app.url("/healthz"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = problem(response).await;
    assert_eq!(body.code, "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server_and_the_writer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let address = app.address;
    let data = app.stop().await;
    // The writer thread has been joined: its single-writer lock on the SQLite file is
    // released, so the store opens again.
    let location = Location::from_config(data.path(), None);
    tokio::task::spawn_blocking(move || location.open_store().map(drop))
        .await
        .unwrap()
        .unwrap();
    // The listener is closed: new connections are refused.
    let client = reqwest::Client::new();
    let after = client
        .get(format!("http://{address}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(after.is_err());
}

/// A server with an extra `/slow` route that signals `entered`, then sleeps `sleep_ms`.
async fn spawn_app_with_slow_route(config: ServerConfig, sleep_ms: u64) -> (TestApp, Arc<Notify>) {
    let (state, data) = start_state(config).await;
    let entered = Arc::new(Notify::new());
    let signal_entered = entered.clone();
    let app = mizan_api::router(state.clone()).route(
        "/slow",
        get(move || {
            let signal_entered = signal_entered.clone();
            async move {
                signal_entered.notify_one();
                tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
                "done"
            }
        }),
    );
    (serve_state(state, Some(app), data).await, entered)
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let (app, entered) = spawn_app_with_slow_route(ServerConfig::default(), 300).await;
    let request = app.client.get(app.url("/slow")).send();
    let in_flight = tokio::spawn(request);
    entered.notified().await;
    app.stop().await;
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
}

#[tokio::test]
async fn shutdown_stops_waiting_after_the_grace_period() {
    let config = ServerConfig {
        shutdown_grace_ms: 200,
        ..ServerConfig::default()
    };
    let (app, entered) = spawn_app_with_slow_route(config, 600_000).await;
    let in_flight = tokio::spawn(app.client.get(app.url("/slow")).send());
    entered.notified().await;
    // `stop` fails the test if the server is still running after 30 s.
    app.stop().await;
    in_flight.abort();
}

#[tokio::test]
async fn shutdown_completes_with_a_half_sent_request() {
    use tokio::io::AsyncWriteExt;
    let config = ServerConfig {
        shutdown_grace_ms: 200,
        ..ServerConfig::default()
    };
    let app = spawn_app_with(config).await;
    // A client that sends half a request and then nothing.
    let mut stuck = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stuck
        .write_all(b"POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab")
        .await
        .unwrap();
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
    drop(stuck);
}

#[tokio::test]
async fn readyz_is_a_503_problem_once_the_writer_stopped() {
    let (state, data) = start_state(ServerConfig::default()).await;
    assert_eq!(state.readiness().await, Ok(()));
    state.shutdown().await.unwrap();
    assert!(state.readiness().await.is_err());

    let app = serve_state(state, None, data).await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), 503);
    let body = problem(response).await;
    assert_eq!(body.code, "not_ready");
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_committed_transfers() {
    use mizan_core::{AccountId, Currency, TransferId};
    use mizan_ledger::{
        ledger_of, AccountCode, AccountFlags, NewAccount, Submission, TransferRequest,
    };

    let (state, data) = start_state(ServerConfig::default()).await;
    let ledger = state.ledger().unwrap();
    let usd = ledger_of(Currency::USD);
    let account = |id: u128, code| NewAccount {
        id: AccountId::new(id).unwrap(),
        ledger: usd,
        code,
        owner: 0,
        flags: AccountFlags::NONE,
    };
    let submission = Submission {
        accounts: vec![
            account(1, AccountCode::ProcessorClearing),
            account(2, AccountCode::UserWallet),
        ],
        transfers: vec![TransferRequest::single(
            TransferId::new(10).unwrap(),
            AccountId::new(1).unwrap(),
            AccountId::new(2).unwrap(),
            500,
            usd,
            1,
        )],
        ..Submission::default()
    };
    assert!(ledger.submit(submission).await.unwrap().all_ok());
    drop(ledger);

    let app = serve_state(state, None, data).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("mizan_ledger_transfers_committed_total 1\n"),
        "{text}"
    );
    // Two batches: the platform accounts created at start, then this submission.
    assert!(
        text.contains("mizan_ledger_batches_committed_total 2\n"),
        "{text}"
    );
    app.stop().await;
}
