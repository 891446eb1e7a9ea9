//! `mizan demo`: a fresh embedded database with demo people, creators, balances and
//! months of history, then the server over it.
//!
//! The data goes in through the same use cases the API calls (`mizan_app`), on a
//! back-dated clock ([`DemoClock`]), so the history spans about [`HISTORY_DAYS`] days
//! and ends a little before now. The seed is deterministic (a seeded generator, fixed
//! idempotency keys) and runs once. Its last step writes a "seed complete" document
//! ([`COLLECTION_DEMO`]); a re-run that finds it leaves the data exactly as it is, and
//! one that finds demo people but no such document (an earlier seed was interrupted)
//! refuses, changes nothing, and says how to start over.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context};
use mizan_app::apps::{self, ExternalUserId, Scope};
use mizan_app::cashout::{self, BankAccount, SandboxPayouts};
use mizan_app::funding::{self, CardNumber, SandboxProcessor};
use mizan_app::identity::{self, Email, Handle, Password, Person, SharedReader};
use mizan_app::limits::LimitsTable;
use mizan_app::payments::{self, IdempotencyKey, Note, PaymentRequest};
use mizan_app::readers::ReaderPool;
use mizan_app::requests::{self, Closing, NewRequest, NewSplit};
use mizan_app::verification::{
    self, IdentityClaim, IdentityDocument, IdentityInput, SandboxVerifier,
};
use mizan_core::{Clock, Currency, Money, Secret, SystemClock};
use mizan_ledger::{BusinessRow, Ledger, Submission, WriterConfig};
use mizan_store::Location;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::DemoArgs;

/// The collection of the "seed complete" document, and its key.
pub const COLLECTION_DEMO: &str = "demo";
pub const DEMO_SEED_COMPLETE_KEY: &str = "seed_complete";
/// Random bytes of the operator token a demo server makes up when none is configured.
const DEMO_OPERATOR_TOKEN_BYTES: usize = 24;

/// The people, first the one whose presence means a seed has begun.
pub const DEMO_PEOPLE: &[&str] = &[
    "amina", "bilal", "chen", "dana", "elif", "farah", "gabriel", "hana", "idris",
];
/// People who sell things and take tips.
pub const DEMO_CREATORS: &[&str] = &["lina_draws", "omar_cooks", "the_quiz_guy"];
/// The legal name each demo person verified with (made up, and screened clear against
/// the SDN list as Mizan screens people: a test in `tests/demo.rs` re-screens them).
const DEMO_LEGAL_NAMES: &[(&str, &str)] = &[
    ("amina", "Amina Haddad"),
    ("bilal", "Bilal Qureshi"),
    ("chen", "Chen Jiahui"),
    ("dana", "Dana Whitfield"),
    ("elif", "Elif Yildirim"),
    ("farah", "Farah Nasser"),
    ("gabriel", "Gabriel Okafor"),
    ("hana", "Hana Sato"),
    ("idris", "Idris Balogun"),
    ("lina_draws", "Lina Morales"),
    ("omar_cooks", "Omar Farouk"),
    ("the_quiz_guy", "Theo Quinn"),
];
/// Every demo login shares it; it is printed, so it protects nothing.
pub const DEMO_PASSWORD: &str = "mizan-demo-2026";
pub const DEMO_EMAIL_DOMAIN: &str = "demo.mizan.test";
/// How far back the history starts.
pub const HISTORY_DAYS: u64 = 120;
/// The history ends this long before the real now.
const HISTORY_END_BEFORE_NOW_SECONDS: u64 = 20 * 60;
/// The shortest history a ledger that already has recent transfers is squeezed into.
const HISTORY_SECONDS_MIN: u64 = 60;
const PAYMENTS_COUNT: usize = 300;
const RANDOM_SEED: u64 = 20_260_724;
/// The sandbox processor approves this card (see `funding::SandboxProcessor`).
const SANDBOX_CARD_APPROVED: &str = "4242424242424242";
/// JPMorgan Chase's ABA routing number (the checksum holds); the sandbox settles any
/// account number not ending in 0000 or 9999.
const DEMO_ROUTING_NUMBER: &str = "021000021";
const DEMO_BANK_ACCOUNT_NUMBER: &str = "000123456789";
const DEMO_APP_NAME: &str = "Souq Market";
const DEMO_APP_USER_ID: &str = "souq-user-1042";
/// The day of the history the first demo person links the demo app.
const DEMO_APP_LINK_DAY: u64 = 20;
const TOP_UP_MINOR_MIN: i64 = 30_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;
const SECONDS_PER_HOUR: u64 = 3_600;

/// Everyday notes with a plausible amount range in cents.
const EVERYDAY_NOTES: &[(&str, i64, i64)] = &[
    ("pizza 🍕", 1_200, 3_600),
    ("coffee ☕", 350, 900),
    ("concert tickets 🎶", 4_500, 12_000),
    ("groceries 🛒", 1_500, 8_000),
    ("taxi home 🚕", 900, 3_000),
    ("movie night 🍿", 1_000, 2_800),
    ("birthday gift 🎁", 2_000, 6_000),
    ("utilities 💡", 2_500, 7_000),
    ("brunch 🥞", 1_500, 4_500),
    ("gas money ⛽", 1_500, 4_000),
    ("book club 📚", 800, 2_500),
    ("lunch 🥙", 1_000, 2_500),
    ("football 5-a-side ⚽", 500, 1_200),
    ("thanks!", 500, 2_000),
];

/// What each creator is paid for.
const CREATOR_NOTES: &[(&str, &str, i64, i64)] = &[
    ("lina_draws", "commission: pet portrait 🎨", 4_000, 15_000),
    ("lina_draws", "sticker pack", 600, 1_500),
    ("omar_cooks", "cooking class 🍳", 2_500, 6_000),
    ("omar_cooks", "recipe e-book", 900, 1_500),
    ("the_quiz_guy", "quiz night entry 🧠", 500, 1_000),
    ("lina_draws", "tip ✨", 200, 1_500),
    ("omar_cooks", "tip ✨", 200, 1_500),
    ("the_quiz_guy", "tip ✨", 200, 1_500),
];

/// A bill someone paid and splits with friends.
struct SplitBill {
    day: u64,
    requester: &'static str,
    amount_minor: i64,
    note: &'static str,
    with: &'static [&'static str],
}

const SPLIT_BILLS: &[SplitBill] = &[
    SplitBill {
        day: 45,
        requester: "amina",
        amount_minor: 9_600,
        note: "dinner at Zaytoun 🍽️",
        with: &["bilal", "chen", "dana"],
    },
    SplitBill {
        day: 100,
        requester: "elif",
        amount_minor: 42_000,
        note: "cabin weekend 🏕️",
        with: &["farah", "hana", "gabriel"],
    },
];

/// (day, creator): who moves earnings to the bank, when.
const CASH_OUTS: &[(u64, &str)] = &[(90, "lina_draws"), (110, "omar_cooks")];

/// The seeding ledger's clock: starts in the past and only moves forward, when the
/// seed says so.
#[derive(Debug)]
struct DemoClock {
    now_ns: AtomicU64,
}

impl Clock for DemoClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}

/// Maps "day d of the history, s seconds into it" onto the clock's range.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    start_ns: u64,
    span_ns: u64,
}

impl Timeline {
    /// [`HISTORY_DAYS`] up to a little before `now_ns`, starting after `last_timestamp`
    /// (an existing ledger's last transfer), squeezed if it has to.
    fn new(now_ns: u64, last_timestamp: u64) -> Timeline {
        let end_ns = now_ns.saturating_sub(HISTORY_END_BEFORE_NOW_SECONDS * NANOS_PER_SECOND);
        let start_ns = end_ns
            .saturating_sub(HISTORY_DAYS * SECONDS_PER_DAY * NANOS_PER_SECOND)
            .max(last_timestamp.saturating_add(1));
        let span_ns = end_ns
            .saturating_sub(start_ns)
            .max(HISTORY_SECONDS_MIN * NANOS_PER_SECOND);
        Timeline { start_ns, span_ns }
    }

    fn at(&self, day: u64, second_of_day: u64) -> u64 {
        let history_seconds = u128::from(HISTORY_DAYS * SECONDS_PER_DAY);
        let offset_seconds = u128::from(day * SECONDS_PER_DAY + second_of_day).min(history_seconds);
        let offset_ns = offset_seconds * u128::from(self.span_ns) / history_seconds;
        // At most `span_ns`, a u64.
        self.start_ns + u64::try_from(offset_ns).unwrap_or(self.span_ns)
    }

    fn end_ns(&self) -> u64 {
        self.start_ns + self.span_ns
    }
}

/// What the seed created.
#[derive(Debug, Default)]
struct SeedCounts {
    people: usize,
    fundings: usize,
    payments: usize,
    requests: usize,
    requests_paid: usize,
    requests_declined: usize,
    splits: usize,
    cash_outs: usize,
    apps_linked: usize,
}

fn handles() -> impl Iterator<Item = &'static str> {
    DEMO_PEOPLE.iter().chain(DEMO_CREATORS).copied()
}

fn legal_name_of(handle: &str) -> anyhow::Result<&'static str> {
    DEMO_LEGAL_NAMES
        .iter()
        .find(|(known, _)| *known == handle)
        .map(|(_, name)| *name)
        .ok_or_else(|| anyhow!("no legal name for the demo person @{handle}"))
}

fn email_of(handle: &str) -> String {
    format!("{handle}@{DEMO_EMAIL_DOMAIN}")
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

fn key(text: String) -> anyhow::Result<IdempotencyKey> {
    IdempotencyKey::parse(&text).map_err(|error| anyhow!("idempotency key {text}: {error}"))
}

fn note(text: &str) -> anyhow::Result<Note> {
    Note::parse(text).map_err(|error| anyhow!("note {text:?}: {error}"))
}

fn handle(text: &str) -> anyhow::Result<Handle> {
    Handle::parse(text).map_err(|error| anyhow!("handle {text}: {error}"))
}

pub fn run(location: &Location, args: &DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    say!("Mizan demo at {}", location.describe());
    seed_unless_present(location, &runtime)?;
    report(location, &runtime)?;
    drop(runtime);
    print_logins();
    if args.no_serve {
        say!("Not serving (--no-serve); run `mizan demo` again to serve this data.");
        return Ok(());
    }
    let mut config = mizan_api::ServerConfig::load(None)?;
    config.listen = args.listen;
    // The operator console exists only with an operator token: make one up unless the
    // environment gave one, and show it once, below.
    let made_up_token = match config.operator_token {
        Some(_) => None,
        None => {
            let token = random_operator_token();
            config.operator_token = Some(Secret::new(token.clone()));
            Some(token)
        }
    };
    crate::cli::serve_until_signal(location, config, |bound| {
        say!("");
        say!("Operator console: http://{bound}/ops/login (any name, role admin)");
        match &made_up_token {
            Some(token) => {
                say!("  operator token: {token}");
                say!("  (new on every start; set MIZAN_OPERATOR_TOKEN to choose your own)");
            }
            None => say!("  operator token: the one in MIZAN_OPERATOR_TOKEN"),
        }
        say!("");
        say!("Mizan is running at http://{bound}/  (Ctrl-C to stop)");
    })
}

/// 24 random bytes in hex: an operator token for this run of the demo server.
fn random_operator_token() -> String {
    let bytes: [u8; DEMO_OPERATOR_TOKEN_BYTES] = rand::random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn open_reader(location: &Location) -> anyhow::Result<SharedReader> {
    let reader = location
        .open_reader()
        .with_context(|| format!("opening {}", location.describe()))?;
    Ok(Arc::new(ReaderPool::new(
        vec![reader],
        matches!(location, Location::Sqlite(_)),
    )))
}

/// What to delete to start the demo over.
fn start_over_hint(location: &Location) -> String {
    match location {
        Location::Sqlite(path) => {
            let directory = path.parent().unwrap_or(path.as_path());
            format!(
                "delete {} (e.g. `rm -rf {}`) and run `mizan demo` again",
                directory.display(),
                directory.display()
            )
        }
        Location::Postgres(_) => {
            "drop and re-create that database, then run `mizan demo` again".to_owned()
        }
    }
}

/// Seeds a ledger that has no demo people yet. Leaves a finished demo alone, and
/// refuses (changing nothing) one whose seed was interrupted.
fn seed_unless_present(
    location: &Location,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    // The store first: it creates the database a reader then opens.
    let store = location
        .open_store()
        .with_context(|| format!("opening {}", location.describe()))?;
    let reader = open_reader(location)?;
    let first = handle(DEMO_PEOPLE[0])?;
    let existing = runtime
        .block_on(identity::person_by_handle(&reader, &first))
        .map_err(|error| anyhow!("looking up @{first:?}: {error}"))?;
    let complete = reader
        .lock()
        .document(COLLECTION_DEMO, DEMO_SEED_COMPLETE_KEY)?
        .is_some();
    if complete {
        say!("  the demo is already there: nothing seeded, nothing changed");
        reader.close();
        return Ok(());
    }
    if existing.is_some() {
        reader.close();
        bail!(
            "{} has demo people (@{} exists) but no finished demo seed: an earlier \
             `mizan demo` was interrupted, so its data is incomplete. Nothing was changed; \
             to start over, {}",
            location.describe(),
            first.as_str(),
            start_over_hint(location)
        );
    }
    let head = reader.lock().chain_head()?;
    let timeline = Timeline::new(SystemClock.now_ns(), head.last_timestamp);
    let clock = Arc::new(DemoClock {
        now_ns: AtomicU64::new(timeline.start_ns),
    });
    let started = Instant::now();
    let config = mizan_api::ServerConfig::load(None)?;
    let vault = Arc::new(mizan_api::state::open_vault(location, &config)?);
    let (ledger, writer) = Ledger::start(store, clock.clone(), WriterConfig::default())?;
    let seeded = payments::ensure_platform_accounts(&ledger)
        .map_err(|error| anyhow!("creating the platform accounts: {error}"))
        .and_then(|()| {
            let mut seeder = Seeder {
                ledger: &ledger,
                reader: reader.clone(),
                clock: &clock,
                timeline,
                people: BTreeMap::new(),
                balances_minor: BTreeMap::new(),
                random: StdRng::seed_from_u64(RANDOM_SEED),
                counts: SeedCounts::default(),
                limits: LimitsTable::default(),
                vault: vault.clone(),
            };
            runtime.block_on(seeder.seed())?;
            Ok(seeder.counts)
        });
    drop(ledger);
    drop(vault);
    writer
        .join()
        .map_err(|_| anyhow!("the ledger writer panicked"))?;
    reader.close();
    let counts = seeded?;
    say!(
        "  seeded {} people, {} card fundings, {} payments, {} requests ({} paid, {} declined), {} splits, {} cash-outs, {} linked app in {:.1} s",
        counts.people,
        counts.fundings,
        counts.payments,
        counts.requests,
        counts.requests_paid,
        counts.requests_declined,
        counts.splits,
        counts.cash_outs,
        counts.apps_linked,
        started.elapsed().as_secs_f64()
    );
    say!(
        "  history from {} to {}",
        &mizan_app::time::rfc3339_from_ns(timeline.start_ns)[..10],
        &mizan_app::time::rfc3339_from_ns(clock.now_ns())[..10]
    );
    Ok(())
}

/// Verifies the whole ledger and prints every demo wallet's balance.
fn report(location: &Location, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let reader = open_reader(location)?;
    let verified = mizan_ledger::verify::verify(&mut **reader.lock())?;
    for name in handles() {
        let person = runtime
            .block_on(identity::person_by_handle(&reader, &handle(name)?))
            .map_err(|error| anyhow!("looking up @{name}: {error}"))?
            .with_context(|| format!("demo person @{name} is missing"))?;
        let wallet = person.wallet_id(identity::WALLET_CURRENCY)?;
        let accounts = reader.lock().accounts(&[wallet])?;
        let account = accounts
            .first()
            .with_context(|| format!("@{name} has no wallet"))?;
        let balance = usd(i64::try_from(account.balance_posted())?);
        say!("  @{name:<14} {:>14}", balance.to_string());
    }
    say!(
        "  ledger verified: {} transfers, chain ends in {}",
        verified.transfers,
        &verified.last_hash[..16]
    );
    reader.close();
    Ok(())
}

fn print_logins() {
    say!("");
    say!("Demo logins (a handle or its e-mail, all with the same password):");
    say!("  {:<14} {:<32} password", "handle", "e-mail");
    for name in handles() {
        say!("  {name:<14} {:<32} {DEMO_PASSWORD}", email_of(name));
    }
}

/// The seed's state: who exists, what their wallets hold (to never overdraw), the
/// generator, and what was created.
struct Seeder<'a> {
    ledger: &'a Ledger,
    reader: SharedReader,
    clock: &'a DemoClock,
    timeline: Timeline,
    people: BTreeMap<&'static str, Person>,
    balances_minor: BTreeMap<&'static str, i64>,
    random: StdRng,
    counts: SeedCounts,
    /// The server's default limits: the demo's movements stay within them.
    limits: LimitsTable,
    /// The vault the server opens too (same keys, same store).
    vault: mizan_app::vault::SharedVault,
}

impl Seeder<'_> {
    /// Moves the clock to `day`, `second_of_day` (never back) and answers the time.
    fn at(&self, day: u64, second_of_day: u64) -> u64 {
        self.clock
            .now_ns
            .fetch_max(self.timeline.at(day, second_of_day), Ordering::SeqCst);
        self.clock.now_ns()
    }

    /// A few minutes later than the last step.
    fn later(&mut self) -> u64 {
        let minutes = self.random.random_range(2..=90);
        let next = self.clock.now_ns() + minutes * 60 * NANOS_PER_SECOND;
        self.clock
            .now_ns
            .fetch_max(next.min(self.timeline.end_ns()), Ordering::SeqCst);
        self.clock.now_ns()
    }

    fn person(&self, name: &str) -> anyhow::Result<&Person> {
        self.people
            .get(name)
            .with_context(|| format!("demo person @{name} was not signed up"))
    }

    fn balance(&self, name: &str) -> i64 {
        self.balances_minor.get(name).copied().unwrap_or(0)
    }

    fn moved(&mut self, from: &'static str, to: &'static str, minor: i64) {
        *self.balances_minor.entry(from).or_insert(0) -= minor;
        *self.balances_minor.entry(to).or_insert(0) += minor;
    }

    async fn seed(&mut self) -> anyhow::Result<()> {
        self.sign_everyone_up().await?;
        self.everyday_history().await?;
        self.open_requests_for_the_demo_person().await?;
        self.mark_complete().await
    }

    /// The last step: the document a re-run looks for to know the seed finished.
    async fn mark_complete(&mut self) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&serde_json::json!({
            "completed_at_ns": self.clock.now_ns(),
            "people": self.counts.people,
            "payments": self.counts.payments,
        }))?;
        let result = self
            .ledger
            .submit(Submission {
                rows: vec![BusinessRow::Create {
                    collection: COLLECTION_DEMO.to_owned(),
                    key: DEMO_SEED_COMPLETE_KEY.to_owned(),
                    body,
                }],
                atomic: true,
                ..Submission::default()
            })
            .await
            .map_err(|error| anyhow!("marking the demo seed complete: {error}"))?;
        ensure!(
            result.row_conflict.is_none(),
            "the demo seed was already marked complete"
        );
        Ok(())
    }

    async fn sign_everyone_up(&mut self) -> anyhow::Result<()> {
        for (index, name) in handles().enumerate() {
            let now_ns = self.at(0, 9 * SECONDS_PER_HOUR + index as u64 * 1_500);
            let password = Password::parse(Secret::new(DEMO_PASSWORD.to_owned()))
                .map_err(|error| anyhow!("demo password: {error}"))?;
            let email = Email::parse(&email_of(name))
                .map_err(|error| anyhow!("e-mail of {name}: {error}"))?;
            let person = identity::signup(self.ledger, handle(name)?, email, password, now_ns)
                .await
                .map_err(|error| anyhow!("signing up @{name}: {error}"))?;
            self.verify(index, &person).await?;
            self.people.insert(name, person);
            self.counts.people += 1;
            // Everyone starts with a card funding the same day.
            let first_minor = 100 * self.random.random_range(300..=1_200);
            self.later();
            self.fund(name, first_minor).await?;
        }
        Ok(())
    }

    /// Verifies a new person through the sandbox provider: everyone to tier 1 (their
    /// first top-up is above the tier-0 funding limit); every third, and the creators
    /// (who cash out), to tier 2.
    async fn verify(&mut self, index: usize, person: &Person) -> anyhow::Result<()> {
        const STATES: [&str; 5] = ["CA", "NY", "TX", "WA", "IL"];
        let input = IdentityInput {
            legal_name: legal_name_of(person.handle.as_str())?,
            date_of_birth: "1990-05-17",
            address_line: "1 Demo Street",
            city: "Springfield",
            postal_code: "10001",
            state: Some(STATES[index % STATES.len()]),
            country: "US",
            ssn_last4: Some("1234"),
        };
        let now_ns = self.later();
        let claim = IdentityClaim::parse(&input, now_ns)
            .map_err(|error| anyhow!("demo identity of @{}: {error}", person.handle.as_str()))?;
        verification::verify_identity(
            self.ledger,
            &self.reader,
            &SandboxVerifier,
            &self.vault,
            // Screened when `mizan serve` starts: the list digest stored is none yet.
            &mizan_app::sanctions::ScreenerCell::new(None),
            person.id,
            claim,
            now_ns,
        )
        .await
        .map_err(|error| anyhow!("verifying @{}: {error}", person.handle.as_str()))?;
        if index.is_multiple_of(3) || DEMO_CREATORS.contains(&person.handle.as_str()) {
            // One passport per person: the vault refuses a document number twice.
            let document = IdentityDocument::parse("passport", &format!("P{index:07}1"))
                .map_err(|error| anyhow!("demo document: {error}"))?;
            let now_ns = self.later();
            verification::verify_document(
                self.ledger,
                &self.reader,
                &SandboxVerifier,
                &self.vault,
                person.id,
                document,
                now_ns,
            )
            .await
            .map_err(|error| {
                anyhow!(
                    "verifying the document of @{}: {error}",
                    person.handle.as_str()
                )
            })?;
        }
        Ok(())
    }

    async fn fund(&mut self, name: &'static str, minor: i64) -> anyhow::Result<()> {
        let person = self.person(name)?.id;
        let card = CardNumber::parse(Secret::new(SANDBOX_CARD_APPROVED.to_owned()))
            .map_err(|error| anyhow!("sandbox card: {error}"))?;
        let key = key(format!("demo-fund-{:04}", self.counts.fundings))?;
        let outcome = funding::fund(
            self.ledger,
            &self.reader,
            &self.limits,
            &SandboxProcessor,
            &self.vault,
            person,
            usd(minor),
            funding::CardSource::New {
                number: card,
                save_as_default: false,
            },
            key,
            self.clock.now_ns(),
        )
        .await
        .map_err(|error| anyhow!("funding @{name}: {error}"))?;
        ensure!(
            !outcome.requires_action && !outcome.replayed,
            "funding @{name} was not approved at once: {outcome:?}"
        );
        *self.balances_minor.entry(name).or_insert(0) += minor;
        self.counts.fundings += 1;
        Ok(())
    }

    /// Tops the wallet up by card when it could not pay `minor`.
    async fn ensure_balance(&mut self, name: &'static str, minor: i64) -> anyhow::Result<()> {
        let balance = self.balance(name);
        if balance >= minor {
            return Ok(());
        }
        let missing = minor - balance;
        let top_up = (missing + 10_000).max(TOP_UP_MINOR_MIN) / 1_000 * 1_000 + 1_000;
        self.fund(name, top_up).await
    }

    async fn pay(
        &mut self,
        from: &'static str,
        to: &'static str,
        minor: i64,
        text: &str,
    ) -> anyhow::Result<()> {
        self.ensure_balance(from, minor).await?;
        let request = PaymentRequest {
            to: handle(to)?,
            amount: usd(minor),
            note: note(text)?,
        };
        let key = key(format!("demo-pay-{:04}", self.counts.payments))?;
        let payer = self.person(from)?.clone();
        let now_ns = self.later();
        let limits = &self.limits;
        let outcome = payments::pay(
            self.ledger,
            &self.reader,
            limits,
            &payer,
            request,
            key,
            now_ns,
        )
        .await
        .map_err(|error| anyhow!("@{from} paying @{to} {text:?}: {error}"))?;
        ensure!(!outcome.replayed, "payment @{from} → @{to} was a replay");
        self.moved(from, to, minor);
        self.counts.payments += 1;
        Ok(())
    }

    /// `requester` asks `payer` for money; answers the request's id.
    async fn request(
        &mut self,
        requester: &'static str,
        payer: &'static str,
        minor: i64,
        text: &str,
    ) -> anyhow::Result<String> {
        let request = NewRequest {
            from: handle(payer)?,
            amount: usd(minor),
            note: note(text)?,
        };
        let key = key(format!("demo-request-{:03}", self.counts.requests))?;
        let person = self.person(requester)?.clone();
        let now_ns = self.later();
        let answer =
            requests::create_request(self.ledger, &self.reader, &person, request, key, now_ns)
                .await
                .map_err(|error| anyhow!("@{requester} asking @{payer}: {error}"))?;
        ensure!(
            !answer.replayed,
            "request @{requester} → @{payer} was a replay"
        );
        self.counts.requests += 1;
        Ok(answer.body.id)
    }

    async fn pay_request(
        &mut self,
        payer: &'static str,
        requester: &'static str,
        request_id: &str,
        minor: i64,
    ) -> anyhow::Result<()> {
        self.ensure_balance(payer, minor).await?;
        let key = key(format!("demo-request-pay-{:03}", self.counts.requests_paid))?;
        let person = self.person(payer)?.clone();
        let now_ns = self.later();
        let answer = requests::pay_request(
            self.ledger,
            &self.reader,
            &self.limits,
            &person,
            request_id,
            key,
            now_ns,
        )
        .await
        .map_err(|error| anyhow!("@{payer} paying request {request_id}: {error}"))?;
        ensure!(
            answer.body.status == requests::STATUS_PAID,
            "request {request_id} is {} after paying it",
            answer.body.status
        );
        self.moved(payer, requester, minor);
        self.counts.requests_paid += 1;
        Ok(())
    }

    async fn decline_request(
        &mut self,
        payer: &'static str,
        request_id: &str,
    ) -> anyhow::Result<()> {
        let person = self.person(payer)?.clone();
        let now_ns = self.later();
        let view = requests::close_request(
            self.ledger,
            &self.reader,
            &person,
            request_id,
            Closing::Decline,
            now_ns,
        )
        .await
        .map_err(|error| anyhow!("@{payer} declining request {request_id}: {error}"))?;
        ensure!(
            view.status == requests::STATUS_DECLINED,
            "request {request_id} is {} after declining it",
            view.status
        );
        self.counts.requests_declined += 1;
        Ok(())
    }

    /// "Souq Market" asks @amina to link her account there, and she approves.
    async fn link_demo_app(&mut self) -> anyhow::Result<()> {
        let now_ns = self.later();
        let app = apps::register_app(self.ledger, DEMO_APP_NAME, now_ns)
            .await
            .map_err(|error| anyhow!("registering {DEMO_APP_NAME}: {error}"))?;
        let external = ExternalUserId::parse(DEMO_APP_USER_ID)
            .map_err(|error| anyhow!("external user id: {error}"))?;
        let scopes: BTreeSet<Scope> = Scope::ALL.into_iter().collect();
        let name = DEMO_PEOPLE[0];
        let now_ns = self.later();
        let link = apps::request_link(
            self.ledger,
            &self.reader,
            &app.app,
            name,
            &external,
            scopes,
            now_ns,
        )
        .await
        .map_err(|error| anyhow!("{DEMO_APP_NAME} asking to link @{name}: {error}"))?;
        let person = self.person(name)?.clone();
        let now_ns = self.later();
        let answered =
            apps::answer_link_request(self.ledger, &self.reader, &person, &link.id, true, now_ns)
                .await
                .map_err(|error| anyhow!("@{name} approving {DEMO_APP_NAME}: {error}"))?;
        ensure!(
            answered.status == "approved",
            "the link request is {} after approving it",
            answered.status
        );
        self.counts.apps_linked += 1;
        Ok(())
    }

    /// Rent once a month, requests every ten days, the app link, splits and cash-outs
    /// on their days, and
    /// [`PAYMENTS_COUNT`] everyday payments spread over the days in between.
    async fn everyday_history(&mut self) -> anyhow::Result<()> {
        let last_day = HISTORY_DAYS - 2;
        let mut payments_done = 0_usize;
        for day in 1..=last_day {
            self.at(day, 8 * SECONDS_PER_HOUR);
            if day % 30 == 5 {
                self.pay("dana", "farah", 65_000, "rent 🏠").await?;
                self.pay("chen", "bilal", 54_000, "rent + internet").await?;
            }
            if day % 10 == 3 {
                self.everyday_request(day).await?;
            }
            // Spread the payments evenly: by the end of `day`, its share of the total.
            let due = usize::try_from(day * PAYMENTS_COUNT as u64 / last_day)?;
            while payments_done < due {
                self.random_payment().await?;
                payments_done += 1;
            }
            if day == DEMO_APP_LINK_DAY {
                self.link_demo_app().await?;
            }
            for (index, bill) in SPLIT_BILLS.iter().enumerate() {
                if bill.day == day {
                    self.split(index, bill).await?;
                }
            }
            for (index, (cash_out_day, name)) in CASH_OUTS.iter().enumerate() {
                if *cash_out_day == day {
                    self.cash_out(index, name).await?;
                }
            }
        }
        Ok(())
    }

    async fn random_payment(&mut self) -> anyhow::Result<()> {
        let from = DEMO_PEOPLE[self.random.random_range(0..DEMO_PEOPLE.len())];
        if self.random.random_range(0..4) == 0 {
            let (to, text, low, high) =
                CREATOR_NOTES[self.random.random_range(0..CREATOR_NOTES.len())];
            let minor = self.random.random_range(low..=high) / 50 * 50;
            return self.pay(from, to, minor, text).await;
        }
        let mut to = from;
        while to == from {
            to = DEMO_PEOPLE[self.random.random_range(0..DEMO_PEOPLE.len())];
        }
        let (text, low, high) = EVERYDAY_NOTES[self.random.random_range(0..EVERYDAY_NOTES.len())];
        let minor = self.random.random_range(low..=high) / 25 * 25;
        self.pay(from, to, minor, text).await
    }

    /// One request between two people; most are paid, a quarter declined.
    async fn everyday_request(&mut self, day: u64) -> anyhow::Result<()> {
        let count = DEMO_PEOPLE.len();
        let requester_index = usize::try_from(day)? % count;
        // 1..count places further round: never the requester.
        let payer_index = (requester_index + 1 + usize::try_from(day / 10)? % (count - 1)) % count;
        let (requester, payer) = (DEMO_PEOPLE[requester_index], DEMO_PEOPLE[payer_index]);
        let (text, low, high) = EVERYDAY_NOTES[self.random.random_range(0..EVERYDAY_NOTES.len())];
        let minor = self.random.random_range(low..=high) / 100 * 100;
        let id = self.request(requester, payer, minor, text).await?;
        // Every fourth one is declined.
        if self.counts.requests % 4 == 2 {
            self.decline_request(payer, &id).await
        } else {
            self.pay_request(payer, requester, &id, minor).await
        }
    }

    /// A shared bill: one request per person; all but the last pay their share
    /// the next day, the last still owes.
    async fn split(&mut self, index: usize, bill: &SplitBill) -> anyhow::Result<()> {
        let (requester, text, with) = (bill.requester, bill.note, bill.with);
        self.at(bill.day, 21 * SECONDS_PER_HOUR);
        let split = NewSplit {
            amount: usd(bill.amount_minor),
            note: note(text)?,
            with: with
                .iter()
                .map(|name| handle(name))
                .collect::<Result<_, _>>()?,
        };
        let person = self.person(requester)?.clone();
        let key = key(format!("demo-split-{index}"))?;
        let now_ns = self.later();
        let answer = requests::create_split(self.ledger, &self.reader, &person, split, key, now_ns)
            .await
            .map_err(|error| anyhow!("@{requester} splitting {text:?}: {error}"))?;
        ensure!(
            answer.body.len() == with.len(),
            "split {text:?} made {} requests",
            answer.body.len()
        );
        self.counts.splits += 1;
        self.counts.requests += answer.body.len();
        self.at(bill.day + 1, 10 * SECONDS_PER_HOUR);
        for (payer, view) in with.iter().zip(&answer.body).take(with.len() - 1) {
            let share = Money::parse_major(&view.amount, Currency::USD)
                .map_err(|error| anyhow!("share {}: {error}", view.amount))?;
            self.pay_request(payer, requester, &view.id, share.minor_units())
                .await?;
        }
        Ok(())
    }

    /// A creator moves most of their earnings to the bank.
    async fn cash_out(&mut self, index: usize, name: &'static str) -> anyhow::Result<()> {
        self.later();
        let minor = self.balance(name) * 3 / 4 / 100 * 100;
        if minor <= 0 {
            bail!("@{name} has nothing to cash out");
        }
        let account = BankAccount::parse(
            DEMO_ROUTING_NUMBER,
            Secret::new(DEMO_BANK_ACCOUNT_NUMBER.to_owned()),
        )
        .map_err(|error| anyhow!("demo bank account: {error}"))?;
        let person = self.person(name)?.id;
        let key = key(format!("demo-cashout-{index}"))?;
        let outcome = cashout::cash_out(
            self.ledger,
            &self.reader,
            &self.limits,
            &SandboxPayouts,
            &self.vault,
            &mizan_app::sanctions::ScreenerCell::new(None),
            person,
            usd(minor),
            account,
            key,
            self.clock.now_ns(),
        )
        .await
        .map_err(|error| anyhow!("@{name} cashing out: {error}"))?;
        ensure!(!outcome.replayed, "cash-out of @{name} was a replay");
        *self.balances_minor.entry(name).or_insert(0) -= minor;
        self.counts.cash_outs += 1;
        Ok(())
    }

    /// Two requests to the first demo person, left open for whoever logs in as them.
    async fn open_requests_for_the_demo_person(&mut self) -> anyhow::Result<()> {
        let name = DEMO_PEOPLE[0];
        self.at(HISTORY_DAYS - 1, 12 * SECONDS_PER_HOUR);
        self.request("bilal", name, 1_850, "pizza 🍕 on Friday")
            .await?;
        self.request("dana", name, 8_500, "concert tickets 🎶")
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_spans_the_history_and_ends_before_now() {
        let now_ns = 1_800_000_000 * NANOS_PER_SECOND;
        let timeline = Timeline::new(now_ns, 0);
        assert_eq!(
            timeline.span_ns,
            HISTORY_DAYS * SECONDS_PER_DAY * NANOS_PER_SECOND
        );
        assert!(timeline.at(0, 0) < timeline.at(60, 0));
        assert_eq!(timeline.at(HISTORY_DAYS + 5, 0), timeline.end_ns());
        assert!(timeline.end_ns() < now_ns);
    }

    #[test]
    fn a_ledger_with_recent_transfers_squeezes_the_history_after_them() {
        let now_ns = 1_800_000_000 * NANOS_PER_SECOND;
        let timeline = Timeline::new(now_ns, now_ns - NANOS_PER_SECOND);
        assert_eq!(timeline.start_ns, now_ns - NANOS_PER_SECOND + 1);
        assert_eq!(timeline.span_ns, HISTORY_SECONDS_MIN * NANOS_PER_SECOND);
    }

    #[test]
    fn every_demo_handle_email_and_the_password_parse() {
        for name in handles() {
            assert!(Handle::parse(name).is_ok(), "{name}");
            assert!(Email::parse(&email_of(name)).is_ok(), "{name}");
        }
        assert!(Password::parse(Secret::new(DEMO_PASSWORD.to_owned())).is_ok());
        assert!(BankAccount::parse(
            DEMO_ROUTING_NUMBER,
            Secret::new(DEMO_BANK_ACCOUNT_NUMBER.to_owned())
        )
        .is_ok());
    }
}
