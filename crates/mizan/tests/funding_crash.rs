//! Card fundings cut off by `kill -9`: a real `mizan serve` takes top-ups from
//! several clients at once and is killed with SIGKILL at random moments until a kill
//! lands between a funding's hold and its post (the hold is left pending: the
//! processor may have charged the card, and the wallet is not credited). Restarted,
//! the server's reconciler finishes it; then every key ever sent is sent again, and
//! the wallet holds exactly one top-up per key: none lost, none applied twice.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The OFAC list of the repository (tests run in the crate's directory).
const SANCTIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/ofac");
const PASSWORD: &str = "correct horse battery staple";
const CARD_OK: &str = "4242424242424242";
/// Clients sending top-ups at once.
const CLIENTS: usize = 8;
/// Kills tried before giving up on landing one inside a funding.
const ROUNDS_MAX: usize = 40;
/// The reconciler leaves an intent alone for 60 s, runs at start and every 30 s.
const RECONCILE_WAIT: Duration = Duration::from_secs(150);

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_mizan"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--config")
            .arg(data_dir.join("test.toml"))
            .env("MIZAN_SANCTIONS_DIR", SANCTIONS_DIR)
            .env("MIZAN_LOG", "warn")
            .env_remove("MIZAN_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_until_serving(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{}/readyz", self.base)).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "mizan serve exited before serving"
            );
            assert!(Instant::now() < deadline, "mizan serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing the process could do about it.
    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A $1.00 top-up from the approved test card under `key`.
async fn fund(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/v1/funding"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"amount": "1.00", "currency": "USD", "card_number": CARD_OK}))
        .send()
        .await
}

async fn wallet(client: &reqwest::Client, base: &str, token: &str) -> Value {
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["wallet"].clone()
}

/// What the clients of one round did: every key sent, and those answered 201.
#[derive(Default)]
struct Sent {
    keys: Vec<String>,
    acknowledged: Vec<String>,
}

/// A kill delay of 20–300 ms, different each round.
fn kill_delay(round: usize) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    Duration::from_millis(20 + ((nanos / 1_000 + round * 7_919) % 280) as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_funding_cut_off_by_kill_9_is_finished_once_after_restart() {
    let directory = tempfile::tempdir().unwrap();
    // Limits stay on, high enough for hundreds of top-ups; no rate limits.
    let mut config = String::from(
        "rate_limit_ip_per_minute = 0\nrate_limit_person_per_minute = 0\nrate_limit_app_per_minute = 0\n",
    );
    for tier in 0..3 {
        config.push_str(&format!(
            "[limits.tier{tier}]\ndaily_send_minor = {max}\nweekly_send_minor = {max}\n\
             weekly_cashout_minor = {max}\nweekly_funding_minor = {max}\n",
            max = mizan_app::limits::LIMIT_MINOR_MAX
        ));
    }
    std::fs::write(directory.path().join("test.toml"), config).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut server = Server::start(directory.path());
    server.wait_until_serving(&client).await;
    let signup = json!({"handle": "topup", "email": "topup@example.com", "password": PASSWORD});
    let created = client
        .post(format!("{}/v1/people", server.base))
        .json(&signup)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let session: Value = client
        .post(format!("{}/v1/sessions", server.base))
        .json(&json!({"login": "topup", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["token"].as_str().unwrap().to_owned();

    let sent = Arc::new(Mutex::new(Sent::default()));
    let mut cut_off = None;
    for round in 0..ROUNDS_MAX {
        let mut clients = tokio::task::JoinSet::new();
        for client_index in 0..CLIENTS {
            let (client, base, token, sent) = (
                client.clone(),
                server.base.clone(),
                token.clone(),
                sent.clone(),
            );
            clients.spawn(async move {
                for n in 0.. {
                    let key = format!("r{round}-c{client_index}-{n}");
                    sent.lock().unwrap().keys.push(key.clone());
                    let Ok(response) = fund(&client, &base, &token, &key).await else {
                        return; // the server is gone
                    };
                    if response.status() == 201 {
                        sent.lock().unwrap().acknowledged.push(key);
                    }
                }
            });
        }
        tokio::time::sleep(kill_delay(round)).await;
        server.kill_9();
        clients.shutdown().await;
        server = Server::start(directory.path());
        server.wait_until_serving(&client).await;
        let after = wallet(&client, &server.base, &token).await;
        if after["pending"] != "0.00" {
            cut_off = Some((round, after));
            break;
        }
    }
    let (round, cut) = cut_off.unwrap_or_else(|| {
        panic!("in {ROUNDS_MAX} kills none landed between a funding's hold and its post")
    });
    eprintln!("round {round}: a kill left {} pending", cut["pending"]);

    // The restarted server's reconciler asks the processor again and finishes it.
    let deadline = Instant::now() + RECONCILE_WAIT;
    loop {
        let now = wallet(&client, &server.base, &token).await;
        if now["pending"] == "0.00" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reconciler left {} pending",
            now["pending"]
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Every key again: each answers 201 (a replay when it was acknowledged), and the
    // wallet holds exactly one top-up per key.
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    for key in &sent.keys {
        let response = fund(&client, &server.base, &token, key).await.unwrap();
        assert_eq!(response.status(), 201, "key {key}");
        if sent.acknowledged.contains(key) {
            assert_eq!(
                response.headers()["idempotent-replayed"],
                "true",
                "an acknowledged top-up ({key}) must replay"
            );
        }
    }
    let last = wallet(&client, &server.base, &token).await;
    let balance = last["balance"].as_str().unwrap().replace(',', "");
    assert_eq!(balance, format!("{}.00", sent.keys.len()));
    assert_eq!(last["pending"], "0.00");
    server.kill_9();
}
