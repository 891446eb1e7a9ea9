//! Online master-key rotation against a running server: the real `mizan serve`,
//! the real `mizan keys rotate` and `mizan keys retire` on the same data directory,
//! and a person's export read over HTTP in a loop the whole time. No read may fail,
//! and a person who signs up after the rotation gets a data key under the new
//! version (the old one retires).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SANCTIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/ofac");
const PASSWORD: &str = "correct horse battery staple";
/// People with vault data before the rotation: several data keys, so a rotation in
/// batches of one runs while the reader keeps reading.
const PEOPLE_BEFORE: usize = 6;

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mizan(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "mizan {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn start_server(data_dir: &Path) -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The reader below asks as fast as it can: rate limits are not under test.
    let config = data_dir.join("rotation.toml");
    std::fs::write(
        &config,
        "rate_limit_ip_per_minute = 0\nrate_limit_person_per_minute = 0\nrate_limit_app_per_minute = 0\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mizan"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config)
        .env("MIZAN_SANCTIONS_DIR", SANCTIONS_DIR)
        .env_remove("MIZAN_MASTER_KEYS")
        .env_remove("MIZAN_MASTER_KEY_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Server(child), format!("http://127.0.0.1:{port}"))
}

async fn wait_until_ready(client: &reqwest::Client, base: &str, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "mizan serve exited before serving"
        );
        assert!(Instant::now() < deadline, "mizan serve did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs `handle` up, verifies their identity (which puts their legal name, date
/// of birth and address in the vault) and returns their session token.
async fn person_with_vault_data(client: &reqwest::Client, base: &str, handle: &str) -> String {
    let body =
        json!({"handle": handle, "email": format!("{handle}@example.com"), "password": PASSWORD});
    let created = client
        .post(format!("{base}/v1/people"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let session = client
        .post(format!("{base}/v1/sessions"))
        .json(&json!({"login": handle, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 201);
    let token = session.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let identity = json!({
        "legal_name": legal_name(handle),
        "date_of_birth": "1984-06-30",
        "ssn_last4": "4821",
        "address": {"line1": "12 Rotation Row", "city": "Portland", "postal_code": "97201", "state": "OR", "country": "US"},
    });
    let verified = client
        .post(format!("{base}/v1/me/verification"))
        .bearer_auth(&token)
        .header("Idempotency-Key", format!("verify-{handle}"))
        .json(&identity)
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200, "{}", verified.text().await.unwrap());
    token
}

fn legal_name(handle: &str) -> String {
    format!("Rotating Person {handle}")
}

/// The data keys `mizan keys status` reports under `version` (0 when not listed).
fn data_keys_under(status: &str, version: u32) -> u64 {
    let prefix = format!("master version {version}: ");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |rest| {
            rest.split_whitespace().next().unwrap().parse().unwrap()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_retirement_run_under_a_serving_server_without_a_failed_read() {
    let directory = tempfile::tempdir().unwrap();
    let data_dir = directory.path().to_owned();
    let key_file = data_dir.join("mizan.vault.key");
    let key_file_arg = key_file.to_str().unwrap().to_owned();
    let (mut server, base) = start_server(&data_dir);
    let client = reqwest::Client::new();
    wait_until_ready(&client, &base, &mut server).await;

    let mut tokens = Vec::new();
    for index in 0..PEOPLE_BEFORE {
        tokens.push(person_with_vault_data(&client, &base, &format!("rotor{index}")).await);
    }
    let before = mizan(&data_dir, &["keys", "status", "--key-file", &key_file_arg]);
    assert_eq!(
        data_keys_under(&before, 1),
        PEOPLE_BEFORE as u64,
        "{before}"
    );

    // The reader: the first person's export, over and over, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let (client, base, token) = (client.clone(), base.clone(), tokens[0].clone());
        let (stop, reads, failures) = (stop.clone(), reads.clone(), failures.clone());
        tokio::spawn(async move {
            let expected = legal_name("rotor0");
            while !stop.load(Ordering::Acquire) {
                let response = client
                    .get(format!("{base}/v1/me/export"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body = response.text().await.unwrap();
                if status != 200 || !body.contains(&expected) {
                    failures.lock().unwrap().push(format!("{status}: {body}"));
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let reads_before_rotation = wait_for_reads(&reads, 0, 5).await;

    let rotation = {
        let (data_dir, key_file_arg) = (data_dir.clone(), key_file_arg.clone());
        tokio::task::spawn_blocking(move || {
            mizan(
                &data_dir,
                &[
                    "keys",
                    "rotate",
                    "--key-file",
                    &key_file_arg,
                    "--batch",
                    "1",
                ],
            )
        })
        .await
        .unwrap()
    };
    assert!(
        rotation.contains(&format!(
            "re-wrapped {PEOPLE_BEFORE} data keys under version 2"
        )),
        "{rotation}"
    );
    let reads_after_rotation = wait_for_reads(&reads, reads_before_rotation, 5).await;

    // A person who signs up now gets a data key under version 2, from a server that
    // started with version 1 only.
    let newcomer = person_with_vault_data(&client, &base, "latecomer").await;
    let status = mizan(&data_dir, &["keys", "status", "--key-file", &key_file_arg]);
    assert_eq!(data_keys_under(&status, 1), 0, "{status}");
    assert_eq!(
        data_keys_under(&status, 2),
        PEOPLE_BEFORE as u64 + 1,
        "{status}"
    );

    let retired = tokio::task::spawn_blocking({
        let (data_dir, key_file_arg) = (data_dir.clone(), key_file_arg.clone());
        move || {
            mizan(
                &data_dir,
                &[
                    "keys",
                    "retire",
                    "--key-file",
                    &key_file_arg,
                    "--version",
                    "1",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(retired.contains("retired master version 1"), "{retired}");
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    assert!(
        !key_text.contains("master.1="),
        "version 1 left the key file"
    );
    assert!(key_text.contains("master.2="));
    wait_for_reads(&reads, reads_after_rotation, 5).await;

    stop.store(true, Ordering::Release);
    reader.await.unwrap();
    eprintln!(
        "{} export reads across rotate and retire",
        reads.load(Ordering::Relaxed)
    );
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {} reads failed, first: {}",
        failures.len(),
        reads.load(Ordering::Relaxed),
        failures[0]
    );

    // Everyone still reads, the newcomer included, and a second rotation with
    // `--retire` leaves only version 3.
    let rotated = mizan(
        &data_dir,
        &["keys", "rotate", "--key-file", &key_file_arg, "--retire"],
    );
    assert!(rotated.contains("retired master version 2"), "{rotated}");
    for (handle, token) in [("rotor3", &tokens[3]), ("latecomer", &newcomer)] {
        let export = client
            .get(format!("{base}/v1/me/export"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(export.status(), 200);
        assert!(export.text().await.unwrap().contains(&legal_name(handle)));
    }
    let status = mizan(&data_dir, &["keys", "status", "--key-file", &key_file_arg]);
    assert_eq!(
        data_keys_under(&status, 3),
        PEOPLE_BEFORE as u64 + 1,
        "{status}"
    );
    assert!(!status.contains("master version 2"), "{status}");
}

/// Waits until the reader made `at_least` more reads than `since`; returns the count.
async fn wait_for_reads(reads: &AtomicU64, since: u64, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = reads.load(Ordering::Relaxed);
        if now >= since + at_least {
            return now;
        }
        assert!(Instant::now() < deadline, "the reader stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
