#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Renewals across many periods on a manual clock: N periods make exactly N charges
//! whatever the job's repetitions, concurrent runs and crashes (the store closed and
//! reopened between runs); an empty wallet goes to grace, then lapses; a cancel stops
//! renewal at the period end; subscriber-only posts follow the subscription.

mod common;

use std::sync::Arc;

use mizan_app::identity::{self, Person, SharedReader};
use mizan_app::limits::{LimitsTable, LIMIT_MINOR_MAX};
use mizan_app::payments::{self, IdempotencyKey};
use mizan_app::readers::ReaderPool;
use mizan_app::social::{self, Audience, PostText, Viewer};
use mizan_app::subscriptions::{
    self, NewTier, RenewalPolicy, RenewalReport, SubscriptionStatus, PERIOD_SECONDS,
};
use mizan_core::{Clock, Currency, ManualClock, Money, Secret};
use mizan_ledger::{Ledger, WriterConfig};
use mizan_store::Location;

const PRICE_MINOR: i64 = 1_000;
const FEE_BPS: u32 = 1_000;
const FEE_MINOR: i64 = 100;
const GRACE_SECONDS: u64 = 3 * 86_400;
const START_NS: u64 = 1_800_000_000_000_000_000;
const POLICY: RenewalPolicy = RenewalPolicy {
    fee_bps: FEE_BPS,
    grace_seconds: GRACE_SECONDS,
};

struct World {
    dir: tempfile::TempDir,
    ledger: Option<Ledger>,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: SharedReader,
    clock: ManualClock,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop();
    }
}

fn location(dir: &tempfile::TempDir) -> Location {
    Location::Sqlite(dir.path().join("mizan.sqlite"))
}

fn open(
    location: &Location,
    clock: &ManualClock,
) -> (Ledger, std::thread::JoinHandle<()>, SharedReader) {
    let (ledger, writer) = Ledger::start(
        location.open_store().unwrap(),
        Arc::new(clock.clone()),
        WriterConfig::default(),
    )
    .unwrap();
    let reader: SharedReader =
        Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    (ledger, writer, reader)
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_NS);
        let (ledger, writer, reader) = open(&location(&dir), &clock);
        tokio::task::block_in_place(|| payments::ensure_platform_accounts(&ledger)).unwrap();
        World {
            dir,
            ledger: Some(ledger),
            writer: Some(writer),
            reader,
            clock,
        }
    }

    fn ledger(&self) -> &Ledger {
        self.ledger.as_ref().unwrap()
    }

    fn stop(&mut self) {
        drop(self.ledger.take());
        if let Some(writer) = self.writer.take() {
            tokio::task::block_in_place(|| writer.join()).unwrap();
        }
    }

    /// A crash between runs: every handle dropped, the store opened again.
    fn reopen(&mut self) {
        self.stop();
        let (ledger, writer, reader) = open(&location(&self.dir), &self.clock);
        self.ledger = Some(ledger);
        self.writer = Some(writer);
        self.reader = reader;
    }

    async fn person(&self, handle: &str, funds_minor: i64, funding_id: u128) -> Person {
        let person = common::sign_up(self.ledger(), handle, self.clock.now_ns()).await;
        if funds_minor > 0 {
            let funded = self
                .ledger()
                .submit(mizan_ledger::Submission::transfers(vec![
                    mizan_ledger::TransferRequest::single(
                        mizan_core::TransferId::new(funding_id).unwrap(),
                        mizan_core::AccountId::new(payments::PROCESSOR_CLEARING_USD).unwrap(),
                        person.id.wallet_id(Currency::USD).unwrap(),
                        funds_minor,
                        mizan_ledger::ledger_of(Currency::USD),
                        payments::TRANSFER_CODE_FUNDING,
                    ),
                ]))
                .await
                .unwrap();
            assert_eq!(
                funded.transfers[0].result,
                mizan_ledger::CreateTransferResult::Ok
            );
        }
        identity::person_by_id(&self.reader, person.id)
            .await
            .unwrap()
    }

    async fn balance(&self, person: &Person) -> i64 {
        identity::wallet_balance(&self.reader, person.id)
            .await
            .unwrap()
            .minor_units()
    }

    async fn revenue(&self) -> i64 {
        let id = mizan_core::AccountId::new(payments::PLATFORM_REVENUE_USD).unwrap();
        let accounts = self
            .reader
            .read(move |r| r.accounts(&[id]))
            .await
            .unwrap()
            .unwrap();
        i64::try_from(accounts[0].balance_posted()).unwrap()
    }

    /// How many outbox events of each subscription topic exist.
    async fn events(&self) -> std::collections::BTreeMap<String, usize> {
        let rows = self
            .reader
            .read(|r| r.outbox(0, 10_000))
            .await
            .unwrap()
            .unwrap();
        let mut counts = std::collections::BTreeMap::new();
        for (_, topic, _) in rows {
            if topic.starts_with("subscription.") {
                *counts.entry(topic).or_insert(0) += 1;
            }
        }
        counts
    }

    async fn run(&self) -> RenewalReport {
        self.run_with(None).await
    }

    async fn run_with(&self, fallback: Option<subscriptions::CardFallback<'_>>) -> RenewalReport {
        subscriptions::run_renewals(
            self.ledger(),
            &self.reader,
            &LimitsTable::uniform(LIMIT_MINOR_MAX),
            POLICY,
            fallback,
            &self.clock,
        )
        .await
        .unwrap()
    }

    async fn subscribe(
        &self,
        fan: &Person,
        tier: &str,
        key: &str,
    ) -> subscriptions::SubscriptionView {
        subscriptions::subscribe(
            self.ledger(),
            &self.reader,
            &LimitsTable::uniform(LIMIT_MINOR_MAX),
            fan,
            tier,
            IdempotencyKey::parse(key).unwrap(),
            FEE_BPS,
            self.clock.now_ns(),
        )
        .await
        .unwrap()
        .body
    }

    async fn status(&self, fan: &Person, id: &str) -> subscriptions::SubscriptionView {
        subscriptions::subscription_for(&self.reader, fan.id, id, self.clock.now_ns())
            .await
            .unwrap()
    }

    async fn reads(&self, fan: &Person, post: &str) -> bool {
        let viewer = Viewer {
            person: Some(fan.id),
            now_ns: self.clock.now_ns(),
        };
        let view = social::post(&self.reader, post, viewer).await.unwrap();
        assert_eq!(view.text.is_empty(), view.locked);
        !view.locked
    }

    fn next_period(&self) {
        self.clock.advance_seconds(PERIOD_SECONDS);
    }
}

async fn balances(world: &World, fan: &Person, star: &Person) -> (i64, i64, i64) {
    (
        world.balance(fan).await,
        world.balance(star).await,
        world.revenue().await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_periods_make_exactly_n_charges_then_grace_then_lapse() {
    let mut world = World::new();
    let star = world.person("star", 0, 1).await;
    // The first charge and four renewals, then nothing left.
    let fan = world.person("fan", 5 * PRICE_MINOR, 2).await;
    let tier = subscriptions::create_tier(
        world.ledger(),
        &world.reader,
        &star,
        NewTier::parse(
            "Gold",
            Money::from_minor(PRICE_MINOR, Currency::USD),
            "All of it",
        )
        .unwrap(),
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    let post = match social::create_post(
        world.ledger(),
        &world.reader,
        &star,
        PostText::parse("for subscribers").unwrap(),
        Audience::Subscribers { minimum_tier: None },
        None,
        world.clock.now_ns(),
    )
    .await
    .unwrap()
    {
        mizan_app::creation::Created::New(post) => post,
        other => panic!("a post without a key was replayed: {other:?}"),
    };
    assert!(
        !world.reads(&fan, &post.id).await,
        "locked before subscribing"
    );
    let subscription = world.subscribe(&fan, &tier.id, "sub-1").await;
    // A retried subscribe replays; it charges nothing more.
    assert_eq!(world.subscribe(&fan, &tier.id, "sub-1").await, subscription);
    assert!(world.reads(&fan, &post.id).await);
    let expect = |charges: i64| {
        (
            5 * PRICE_MINOR - charges * PRICE_MINOR,
            charges * (PRICE_MINOR - FEE_MINOR),
            charges * FEE_MINOR,
        )
    };
    assert_eq!(balances(&world, &fan, &star).await, expect(1));
    // Nothing is due inside the period.
    world.clock.advance_seconds(PERIOD_SECONDS - 1);
    assert_eq!(world.run().await.renewed, 0);
    world.clock.set_ns(START_NS);
    for period in 1..=4_u32 {
        world.next_period();
        // Twice in a row, then twice at once.
        let first = world.run().await;
        assert_eq!(first.renewed, 1, "period {period}");
        assert_eq!(world.run().await.renewed, 0, "period {period}");
        let (a, b) = tokio::join!(world.run(), world.run());
        assert_eq!(a.renewed + b.renewed, 0);
        if period == 2 {
            // A crash: everything dropped, the store reopened, the job run again.
            world.reopen();
            assert_eq!(world.run().await.renewed, 0);
        }
        assert_eq!(
            balances(&world, &fan, &star).await,
            expect(i64::from(period) + 1),
            "period {period}"
        );
        let view = world.status(&fan, &subscription.id).await;
        assert_eq!(view.period, period);
        assert_eq!(view.status, SubscriptionStatus::Active);
    }
    // The wallet is empty: the fifth renewal fails into grace, still reading posts.
    world.next_period();
    let report = world.run().await;
    assert_eq!((report.renewed, report.failed), (0, 1));
    let view = world.status(&fan, &subscription.id).await;
    assert_eq!(view.status, SubscriptionStatus::Grace);
    assert_eq!(view.last_failure.as_deref(), Some("insufficient_funds"));
    assert!(world.reads(&fan, &post.id).await, "grace still reads");
    world.clock.advance_seconds(GRACE_SECONDS / 2);
    world.reopen();
    assert_eq!(world.run().await.failed, 1, "retried in grace");
    assert_eq!(
        world.status(&fan, &subscription.id).await.status,
        SubscriptionStatus::Grace
    );
    // Grace over: lapsed, locked, and no money moved.
    world.clock.advance_seconds(GRACE_SECONDS);
    let report = world.run().await;
    assert_eq!((report.renewed, report.lapsed), (0, 1));
    assert_eq!(world.run().await.lapsed, 0);
    assert_eq!(
        world.status(&fan, &subscription.id).await.status,
        SubscriptionStatus::Lapsed
    );
    assert!(!world.reads(&fan, &post.id).await);
    assert_eq!(balances(&world, &fan, &star).await, expect(5));
    // Months later nothing more happens to a lapsed subscription.
    for _ in 0..3 {
        world.next_period();
        assert_eq!(world.run().await.renewed, 0);
    }
    assert_eq!(balances(&world, &fan, &star).await, expect(5));
    // One event per change, whatever the repetitions and the crashes.
    let events = world.events().await;
    let expected: std::collections::BTreeMap<String, usize> = [
        ("subscription.created", 1),
        ("subscription.renewed", 4),
        ("subscription.renewal_failed", 1),
        ("subscription.lapsed", 1),
    ]
    .into_iter()
    .map(|(topic, count)| (topic.to_owned(), count))
    .collect();
    assert_eq!(events, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_renewal_at_the_period_end_and_grace_recovers() {
    let world = World::new();
    let star = world.person("star", 0, 1).await;
    let fan = world.person("fan", 10 * PRICE_MINOR, 2).await;
    let late = world.person("late", PRICE_MINOR, 3).await;
    let tier = subscriptions::create_tier(
        world.ledger(),
        &world.reader,
        &star,
        NewTier::parse("Gold", Money::from_minor(PRICE_MINOR, Currency::USD), "").unwrap(),
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    let canceled = world.subscribe(&fan, &tier.id, "sub-fan").await;
    let recovering = world.subscribe(&late, &tier.id, "sub-late").await;
    world.next_period();
    world.run().await;
    assert_eq!(world.balance(&fan).await, 8 * PRICE_MINOR);
    // `late` could not pay the second period.
    assert_eq!(
        world.status(&late, &recovering.id).await.status,
        SubscriptionStatus::Grace
    );
    let view = subscriptions::cancel(
        world.ledger(),
        &world.reader,
        &fan,
        &canceled.id,
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    assert!(view.cancel_at_period_end);
    assert_eq!(
        view.status,
        SubscriptionStatus::Active,
        "active to the period end"
    );
    // Money arrives during grace: the next run charges the period it missed.
    let topped_up = world
        .ledger()
        .submit(mizan_ledger::Submission::transfers(vec![
            mizan_ledger::TransferRequest::single(
                mizan_core::TransferId::new(99).unwrap(),
                mizan_core::AccountId::new(payments::PROCESSOR_CLEARING_USD).unwrap(),
                late.id.wallet_id(Currency::USD).unwrap(),
                PRICE_MINOR,
                mizan_ledger::ledger_of(Currency::USD),
                payments::TRANSFER_CODE_FUNDING,
            ),
        ]))
        .await
        .unwrap();
    assert!(topped_up.all_ok());
    world.clock.advance_seconds(86_400);
    assert_eq!(world.run().await.renewed, 1);
    let view = world.status(&late, &recovering.id).await;
    assert_eq!((view.status, view.period), (SubscriptionStatus::Active, 1));
    assert_eq!(world.balance(&late).await, 0);
    world.next_period();
    let report = world.run().await;
    assert_eq!(report.ended, 1);
    assert_eq!(
        world.status(&fan, &canceled.id).await.status,
        SubscriptionStatus::Canceled
    );
    assert_eq!(
        world.balance(&fan).await,
        8 * PRICE_MINOR,
        "no charge after a cancel"
    );
    let again = subscriptions::cancel(
        world.ledger(),
        &world.reader,
        &fan,
        &canceled.id,
        world.clock.now_ns(),
    )
    .await;
    assert_eq!(again.err(), Some(payments::PaymentError::SubscriptionEnded));
    // After it ended the fan may subscribe again.
    let renewed = world.subscribe(&fan, &tier.id, "sub-fan-2").await;
    assert_ne!(renewed.id, canceled.id);
    assert_eq!(world.balance(&fan).await, 7 * PRICE_MINOR);
    let subscribers = subscriptions::subscribers_of(&world.reader, star.id, world.clock.now_ns())
        .await
        .unwrap();
    assert_eq!(subscribers.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_wallet_is_topped_up_once_from_the_default_card() {
    use mizan_app::funding::{self, CardNumber, CardSource, SandboxProcessor};
    let world = World::new();
    let store =
        mizan_vault::SqliteVaultStore::open(&world.dir.path().join("mizan.vault.sqlite")).unwrap();
    let vault: mizan_app::vault::SharedVault = Arc::new(
        mizan_vault::Vault::open(Box::new(store), mizan_vault::MasterKeyRing::generate()).unwrap(),
    );
    let star = world.person("star", 0, 1).await;
    let fan = world.person("fan", 0, 2).await;
    // The fan adds exactly one period's price from a card saved as the default.
    let number = CardNumber::parse(Secret::new("4242424242424242".to_owned())).unwrap();
    funding::fund(
        world.ledger(),
        &world.reader,
        &LimitsTable::uniform(LIMIT_MINOR_MAX),
        &SandboxProcessor,
        &vault,
        fan.id,
        Money::from_minor(PRICE_MINOR, Currency::USD),
        CardSource::New {
            number,
            save_as_default: true,
        },
        IdempotencyKey::parse("first-top-up").unwrap(),
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    let tier = subscriptions::create_tier(
        world.ledger(),
        &world.reader,
        &star,
        NewTier::parse("Gold", Money::from_minor(PRICE_MINOR, Currency::USD), "").unwrap(),
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    let subscription = world.subscribe(&fan, &tier.id, "sub-fan").await;
    assert_eq!(world.balance(&fan).await, 0);

    // The wallet is empty at the next period end: the default card tops it up.
    world.next_period();
    let fallback = subscriptions::CardFallback {
        processor: &SandboxProcessor,
        vault: &vault,
    };
    // Run twice: one top-up (its key is the subscription and period), one charge.
    let first = world.run_with(Some(fallback)).await;
    assert_eq!(first.renewed, 1, "{first:?}");
    assert_eq!(world.run_with(Some(fallback)).await.renewed, 0);
    assert_eq!(
        world.status(&fan, &subscription.id).await.status,
        SubscriptionStatus::Active
    );
    assert_eq!(world.balance(&fan).await, 0);
    assert_eq!(world.balance(&star).await, 2 * (PRICE_MINOR - FEE_MINOR));
    assert_eq!(world.revenue().await, 2 * FEE_MINOR);

    // With no fallback given, the next short period goes to grace as before.
    world.next_period();
    world.run().await;
    assert_eq!(
        world.status(&fan, &subscription.id).await.status,
        SubscriptionStatus::Grace
    );
    assert_eq!(world.balance(&fan).await, 0);
}

/// Monitoring sees subscription charges: the first charge and each renewal are
/// money out of the fan's wallet and into the creator's, like any other movement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_charges_are_movements_monitoring_sees() {
    use mizan_compliance::monitoring::{Channel, Direction};
    let world = World::new();
    let star = world.person("star", 0, 1).await;
    let fan = world.person("fan", 5 * PRICE_MINOR, 2).await;
    let tier = subscriptions::create_tier(
        world.ledger(),
        &world.reader,
        &star,
        NewTier::parse(
            "Gold",
            Money::from_minor(PRICE_MINOR, Currency::USD),
            "All of it",
        )
        .unwrap(),
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    world.subscribe(&fan, &tier.id, "sub-watch").await;
    world.next_period();
    assert_eq!(world.run().await.renewed, 1);
    // Ledger timestamps run just ahead of the manual clock: read everything.
    let until = u64::MAX;
    let fan_moves = mizan_app::monitoring::movements_of(&world.reader, fan.id, 0, until)
        .await
        .unwrap();
    let out: Vec<_> = fan_moves
        .iter()
        .filter(|m| m.channel == Channel::Subscription)
        .collect();
    assert_eq!(out.len(), 2, "{fan_moves:?}");
    assert!(out
        .iter()
        .all(|m| m.direction == Direction::Out && m.amount_minor == PRICE_MINOR));
    let star_moves = mizan_app::monitoring::movements_of(&world.reader, star.id, 0, until)
        .await
        .unwrap();
    let incoming = star_moves
        .iter()
        .filter(|m| m.channel == Channel::Subscription && m.direction == Direction::In)
        .count();
    assert_eq!(incoming, 2, "{star_moves:?}");
}
