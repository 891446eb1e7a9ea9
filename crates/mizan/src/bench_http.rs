//! `mizan bench http`: P2P payments over real HTTP on loopback, next to a trivial
//! JSON endpoint (`GET /healthz`) served by the same server in the same run, so the
//! cost of a payment over the bare HTTP ceiling is visible.
//!
//! For each store it starts `mizan serve` as a child process on a fresh database
//! (rate limits off, logs at `warn`), signs up and funds `--people` people through
//! the API, then drives `--connections` keep-alive connections from this process for
//! `--seconds`: first `GET /healthz`, then `POST /v1/payments` of 0.01 USD between
//! random people, each with its own `Idempotency-Key`. Afterwards every balance is
//! read back through the API and must equal what the acknowledged payments imply:
//! an acknowledged payment that did not happen, or happened twice, fails the run.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mizan_store::postgres::testing::create_test_database;
use serde::Serialize;
use serde_json::{json, Value};

use crate::bench::report::{summarize, LatencySummary};
use crate::http_client;

const POSTGRES_ADMIN_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";
const PASSWORD: &str = "bench password 123";
const CARD: &str = "4242424242424242";
/// What each person starts with, in dollars.
const FUNDING: &str = "100000.00";
const FUNDING_MINOR: i64 = 10_000_000;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// People signed up, logged in and funded at once during set-up.
const SETUP_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpStore {
    Sqlite,
    Postgres,
    All,
}

/// What the measured load does after the trivial baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// P2P payments between random pairs of people.
    Payments,
    /// Every person but the first tips the first (one hot creator account).
    Tips,
}

#[derive(Debug, clap::Args)]
pub struct HttpBenchArgs {
    #[arg(long, value_enum, default_value_t = HttpStore::All)]
    pub store: HttpStore,
    #[arg(long, value_enum, default_value_t = Scenario::Payments)]
    pub scenario: Scenario,
    /// People who pay each other (each signs up, logs in and is funded first).
    #[arg(long, default_value_t = 200)]
    pub people: usize,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured seconds per endpoint.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 2)]
    pub warmup_seconds: u64,
    /// Admin URL new PostgreSQL databases are created through.
    #[arg(long, env = "MIZAN_TEST_POSTGRES_URL", default_value = POSTGRES_ADMIN_URL_DEFAULT)]
    pub postgres_url: String,
    /// Print one JSON object per measurement.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Measurement {
    store: &'static str,
    endpoint: &'static str,
    connections: usize,
    seconds: f64,
    requests: u64,
    per_second: f64,
    errors: u64,
    latency: LatencySummary,
}

/// The server child; killed if the bench ends early.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = data_dir.join("bench.toml");
        // Limits stay on (every payment pays for its allowance legs, as in
        // production) but high enough for the bench's $100,000 top-ups.
        let mut text = String::from(
            "rate_limit_ip_per_minute = 0\nrate_limit_person_per_minute = 0\nrate_limit_app_per_minute = 0\n",
        );
        for tier in 0..3 {
            text.push_str(&format!(
                "[limits.tier{tier}]\ndaily_send_minor = {max}\nweekly_send_minor = {max}\n\
                 weekly_cashout_minor = {max}\nweekly_funding_minor = {max}\n",
                max = mizan_app::limits::LIMIT_MINOR_MAX
            ));
        }
        std::fs::write(&config, text)?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--config")
            .arg(&config)
            .env("MIZAN_LOG", "warn")
            .env_remove("MIZAN_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            // On PostgreSQL the vault's master keys live outside the database: a key
            // file of the run's own, next to its config.
            let key_file = data_dir.join("bench.vault.key");
            let created = Command::new(std::env::current_exe()?)
                .args(["keys", "init", "--key-file"])
                .arg(&key_file)
                .stdout(Stdio::null())
                .status()
                .context("creating the vault's key file")?;
            if !created.success() {
                bail!("mizan keys init exited with {created}");
            }
            command
                .arg("--database-url")
                .arg(url)
                .env("MIZAN_MASTER_KEY_FILE", &key_file);
        }
        let child = command.spawn().context("starting mizan serve")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Asks the server to stop (SIGTERM) and waits: it flushes its store.
    fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let exit = self.child.wait()?;
        if !exit.success() {
            bail!("mizan serve exited with {exit}");
        }
        Ok(())
    }
}

pub fn run(args: &HttpBenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let stores: Vec<&'static str> = match args.store {
        HttpStore::Sqlite => vec!["sqlite"],
        HttpStore::Postgres => vec!["postgres"],
        HttpStore::All => vec!["sqlite", "postgres"],
    };
    say!(
        "bench http ({:?}): {} people, {} connections, {} s per endpoint (after {} s warm-up); server = mizan serve child, load generator = this process (1 tokio worker)",
        args.scenario,
        args.people,
        args.connections,
        args.seconds,
        args.warmup_seconds
    );
    let mut failed = false;
    for store in stores {
        let directory = tempfile::tempdir()?;
        let database = match store {
            "postgres" => Some(
                create_test_database(&args.postgres_url)
                    .map_err(|error| anyhow::anyhow!("creating a PostgreSQL database: {error}"))?,
            ),
            _ => None,
        };
        let server = Server::start(
            directory.path(),
            database.as_ref().map(|db| db.url.as_str()),
        )?;
        let outcome = runtime.block_on(measure_store(store, &server.base, args));
        server.stop()?;
        match outcome {
            Ok(measurements) => {
                for measurement in measurements {
                    print_measurement(&measurement, args.json)?;
                }
            }
            Err(error) => {
                eprintln!("bench http on {store}: {error:#}");
                failed = true;
            }
        }
        drop(database);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_measurement(measurement: &Measurement, json: bool) -> anyhow::Result<()> {
    if json {
        say!("{}", serde_json::to_string(measurement)?);
    } else {
        say!(
            "{:<8} {:<22} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  {} requests, {} errors",
            measurement.store,
            measurement.endpoint,
            measurement.per_second,
            measurement.latency.p50_ms,
            measurement.latency.p99_ms,
            measurement.latency.max_ms,
            measurement.requests,
            measurement.errors
        );
    }
    Ok(())
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!("the server did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Person {
    handle: String,
    token: String,
}

async fn setup(client: &reqwest::Client, base: &str, people: usize) -> anyhow::Result<Vec<Person>> {
    let mut tasks = tokio::task::JoinSet::new();
    // Sign-ups hash passwords (argon2): a bounded number at once keeps the server
    // from holding thousands of open requests.
    let permits = Arc::new(tokio::sync::Semaphore::new(SETUP_CONCURRENCY));
    for index in 0..people {
        let client = client.clone();
        let base = base.to_owned();
        let permits = permits.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let handle = format!("bench_{index}");
            let signup = json!({"handle": handle, "email": format!("{handle}@bench.example"), "password": PASSWORD});
            let response = client.post(format!("{base}/v1/people")).json(&signup).send().await?;
            if response.status() != 201 {
                bail!("sign-up answered {}", response.status());
            }
            let login = json!({"login": handle, "password": PASSWORD});
            let session: Value = client
                .post(format!("{base}/v1/sessions"))
                .json(&login)
                .send()
                .await?
                .json()
                .await?;
            let token = session["token"].as_str().context("no token")?.to_owned();
            let funding = json!({"amount": FUNDING, "currency": "USD", "card_number": CARD});
            let response = client
                .post(format!("{base}/v1/funding"))
                .bearer_auth(&token)
                .header("Idempotency-Key", "bench-funding")
                .json(&funding)
                .send()
                .await?;
            if response.status() != 201 {
                bail!("funding answered {}", response.status());
            }
            anyhow::Ok(Person { handle, token })
        });
    }
    let mut all = Vec::with_capacity(people);
    while let Some(joined) = tasks.join_next().await {
        all.push(joined??);
    }
    all.sort_by(|a, b| a.handle.cmp(&b.handle));
    Ok(all)
}

/// What the load loop records.
#[derive(Default)]
struct Tally {
    latencies_ns: Mutex<Vec<u64>>,
    requests: AtomicU64,
    errors: AtomicU64,
    /// Net minor units per person index from acknowledged payments.
    net: Mutex<HashMap<usize, i64>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Healthz,
    Payment,
    /// A tip from a random fan to person 0, the creator.
    Tip,
}

/// What every connection of one measurement shares.
struct Run {
    base: String,
    people: Arc<Vec<Person>>,
    endpoint: Endpoint,
    measuring: AtomicBool,
    stop: AtomicBool,
    tally: Tally,
}

/// One request of the measured load: which movement it asks for, if any.
struct Planned {
    method: &'static str,
    path: &'static str,
    /// The payer's session token and the JSON body; `None` for `GET /healthz`.
    authorized: Option<(String, Vec<u8>)>,
    expected_status: u16,
    movement: Option<(usize, usize)>,
}

fn plan(endpoint: Endpoint, people: &[Person], next: &mut impl FnMut() -> u64) -> Planned {
    let movement_body = |to: &Person| {
        json!({"to": to.handle, "amount": "0.01", "currency": "USD"})
            .to_string()
            .into_bytes()
    };
    match endpoint {
        Endpoint::Healthz => Planned {
            method: "GET",
            path: "/healthz",
            authorized: None,
            expected_status: 200,
            movement: None,
        },
        Endpoint::Payment => {
            let count = people.len() as u64;
            let from = usize::try_from(next() % count).unwrap_or(0);
            let offset = 1 + usize::try_from(next() % (count - 1)).unwrap_or(0);
            let to = (from + offset) % people.len();
            Planned {
                method: "POST",
                path: "/v1/payments",
                authorized: Some((people[from].token.clone(), movement_body(&people[to]))),
                expected_status: 201,
                movement: Some((from, to)),
            }
        }
        Endpoint::Tip => {
            let fans = people.len() as u64 - 1;
            let from = 1 + usize::try_from(next() % fans).unwrap_or(0);
            Planned {
                method: "POST",
                path: "/v1/tips",
                authorized: Some((people[from].token.clone(), movement_body(&people[0]))),
                expected_status: 201,
                movement: Some((from, 0)),
            }
        }
    }
}

/// Sends one planned request on `connection`, connecting first when there is none
/// (or the last one failed); true when it answered the expected status.
async fn send_planned(
    connection: &mut Option<http_client::Connection>,
    base: &str,
    planned: &Planned,
    idempotency_key: &str,
) -> bool {
    if connection.is_none() {
        *connection = http_client::Connection::connect(base).await.ok();
    }
    let Some(open) = connection.as_mut() else {
        return false;
    };
    let sent = match &planned.authorized {
        None => open.send(planned.method, planned.path, &[], None).await,
        Some((token, body)) => {
            let bearer = format!("Bearer {token}");
            let headers = [
                ("authorization", bearer.as_str()),
                ("idempotency-key", idempotency_key),
            ];
            open.send(planned.method, planned.path, &headers, Some(body))
                .await
        }
    };
    match sent {
        Ok(status) => status == planned.expected_status,
        Err(_) => {
            *connection = None;
            false
        }
    }
}

async fn load(run: Arc<Run>, connection_number: usize) {
    let Run {
        base,
        people,
        endpoint,
        measuring,
        stop,
        tally,
        ..
    } = &*run;
    let endpoint = *endpoint;
    let mut sequence: u64 = 0;
    let mut state = (connection_number as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut latencies = Vec::new();
    let mut connection = None;
    while !stop.load(Ordering::Relaxed) {
        sequence += 1;
        let planned = plan(endpoint, people, &mut next);
        let key = format!("c{connection_number}-{sequence}");
        let started = Instant::now();
        let ok = send_planned(&mut connection, base, &planned, &key).await;
        let movement = planned.movement.filter(|_| ok);
        let elapsed = started.elapsed();
        if let Some((from, to)) = movement {
            // Acknowledged money counts whether or not this request is measured.
            let mut net = tally.net.lock().unwrap_or_else(|p| p.into_inner());
            *net.entry(from).or_default() -= 1;
            *net.entry(to).or_default() += 1;
        }
        if measuring.load(Ordering::Relaxed) {
            tally.requests.fetch_add(1, Ordering::Relaxed);
            if ok {
                latencies.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
            } else {
                tally.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    tally
        .latencies_ns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(latencies);
}

async fn drive(
    base: &str,
    people: &Arc<Vec<Person>>,
    endpoint: Endpoint,
    args: &HttpBenchArgs,
) -> anyhow::Result<(f64, Arc<Run>)> {
    let run = Arc::new(Run {
        base: base.to_owned(),
        people: people.clone(),
        endpoint,
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        tally: Tally::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for connection in 0..args.connections {
        tasks.spawn(load(run.clone(), connection));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup_seconds)).await;
    run.measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    run.measuring.store(false, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    run.stop.store(true, Ordering::Relaxed);
    while let Some(joined) = tasks.join_next().await {
        joined?;
    }
    Ok((seconds, run))
}

fn measurement(
    store: &'static str,
    endpoint: &'static str,
    args: &HttpBenchArgs,
    seconds: f64,
    tally: &Tally,
) -> Measurement {
    let latencies =
        std::mem::take(&mut *tally.latencies_ns.lock().unwrap_or_else(|p| p.into_inner()));
    let requests = tally.requests.load(Ordering::Relaxed);
    Measurement {
        store,
        endpoint,
        connections: args.connections,
        seconds,
        requests,
        per_second: requests as f64 / seconds,
        errors: tally.errors.load(Ordering::Relaxed),
        latency: summarize(latencies),
    }
}

async fn measure_store(
    store: &'static str,
    base: &str,
    args: &HttpBenchArgs,
) -> anyhow::Result<Vec<Measurement>> {
    if args.people < 2 {
        bail!("--people must be at least 2");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(30))
        .build()?;
    wait_ready(&client, base).await?;
    let people = Arc::new(setup(&client, base, args.people).await?);

    let (seconds, run) = drive(base, &people, Endpoint::Healthz, args).await?;
    let trivial = measurement(store, "GET /healthz", args, seconds, &run.tally);
    let (endpoint, label) = match args.scenario {
        Scenario::Payments => (Endpoint::Payment, "POST /v1/payments"),
        Scenario::Tips => (Endpoint::Tip, "POST /v1/tips"),
    };
    let (seconds, run) = drive(base, &people, endpoint, args).await?;
    let paid = measurement(store, label, args, seconds, &run.tally);
    let payments = &run.tally;

    // Every acknowledged payment moved money exactly once.
    let net = payments
        .net
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for (index, person) in people.iter().enumerate() {
        let me: Value = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&person.token)
            .send()
            .await?
            .json()
            .await?;
        let balance = me["wallet"]["balance"].as_str().context("no balance")?;
        let expected = FUNDING_MINOR + net.get(&index).copied().unwrap_or(0);
        let expected = format!("{}.{:02}", expected / 100, expected % 100);
        if balance.replace(',', "") != expected {
            bail!(
                "{}: balance {balance}, acknowledged payments imply {expected}",
                person.handle
            );
        }
    }
    Ok(vec![trivial, paid])
}
