#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property: whatever interleaving of replies, accepts, declines, retried sends and
//! the deadline (a manual clock moved past the ledger's timeout), every paid DM ends
//! paid out or refunded exactly once, and no money is created or lost; and the job that
//! records the ledger's refunds, run at any point (twice at once), announces each
//! outcome exactly once: one `paid_dm.paid` or one `paid_dm.refunded` event.

mod common;

use std::sync::Arc;
use std::time::Duration;

use mizan_app::identity::{self, Person, SharedReader};
use mizan_app::messages::{self, MessageText, PaidDmPolicy, PaidDmStatus};
use mizan_app::payments::{self, IdempotencyKey};
use mizan_app::readers::ReaderPool;
use mizan_core::{Clock, Currency, ManualClock, Money};
use mizan_ledger::{Ledger, WriterConfig};
use mizan_store::Location;
use proptest::prelude::*;

const PRICE_MINOR: i64 = 500;
const CUT_BPS: u32 = 1_000;
const TIMEOUT_SECONDS: u32 = 60;
const START_NS: u64 = 1_800_000_000_000_000_000;

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The star writes to the fan (settles what is pending).
    Reply,
    Accept,
    Decline,
    /// The fan sends the first paid DM again under the same key.
    Retry,
    /// Time passes beyond the deadline.
    Deadline,
    /// Two runs of the expiry recorder at once.
    ExpiryJob,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Reply),
        Just(Step::Accept),
        Just(Step::Decline),
        Just(Step::Retry),
        Just(Step::Deadline),
        Just(Step::ExpiryJob),
    ]
}

struct World {
    _dir: tempfile::TempDir,
    ledger: Option<Ledger>,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: SharedReader,
    clock: ManualClock,
    star: Person,
    fan: Person,
}

impl Drop for World {
    fn drop(&mut self) {
        drop(self.ledger.take());
        if let Some(writer) = self.writer.take() {
            writer.join().unwrap();
        }
    }
}

impl World {
    fn ledger(&self) -> &Ledger {
        self.ledger.as_ref().unwrap()
    }

    fn policy() -> PaidDmPolicy {
        PaidDmPolicy {
            cut_bps: CUT_BPS,
            timeout_seconds: TIMEOUT_SECONDS,
        }
    }

    async fn send(
        &self,
        from: &Person,
        to: &Person,
        key: &str,
        offer: bool,
    ) -> Result<messages::Sent, payments::PaymentError> {
        messages::send_message(
            self.ledger(),
            &self.reader,
            &mizan_app::limits::LimitsTable::uniform(mizan_app::limits::LIMIT_MINOR_MAX),
            from,
            to.handle.as_str(),
            MessageText::parse("hello").unwrap(),
            offer.then(|| Money::from_minor(PRICE_MINOR, Currency::USD)),
            IdempotencyKey::parse(key).unwrap(),
            World::policy(),
            self.clock.now_ns(),
        )
        .await
        .map(|answer| answer.body)
    }
}

async fn person(ledger: &Ledger, handle: &str, now_ns: u64, reader: &SharedReader) -> Person {
    let person = common::sign_up(ledger, handle, now_ns).await;
    identity::person_by_id(reader, person.id).await.unwrap()
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("mizan.sqlite"));
    let clock = ManualClock::new(START_NS);
    let config = WriterConfig {
        expiry_interval_ms: 5,
        ..WriterConfig::default()
    };
    let (ledger, writer) = Ledger::start(
        location.open_store().unwrap(),
        Arc::new(clock.clone()),
        config,
    )
    .unwrap();
    tokio::task::block_in_place(|| payments::ensure_platform_accounts(&ledger)).unwrap();
    let reader: SharedReader =
        Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    let star = person(&ledger, "star", clock.now_ns(), &reader).await;
    let fan = person(&ledger, "fan", clock.now_ns(), &reader).await;
    // The fan's money, straight from the processor clearing account (funding itself
    // is tested elsewhere).
    let funded = ledger
        .submit(mizan_ledger::Submission::transfers(vec![
            mizan_ledger::TransferRequest::single(
                mizan_core::TransferId::new(42).unwrap(),
                mizan_core::AccountId::new(payments::PROCESSOR_CLEARING_USD).unwrap(),
                fan.id.wallet_id(Currency::USD).unwrap(),
                10_000,
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
    messages::set_dm_price(
        &ledger,
        &star,
        Some(Money::from_minor(PRICE_MINOR, Currency::USD)),
    )
    .await
    .unwrap();
    World {
        _dir: dir,
        ledger: Some(ledger),
        writer: Some(writer),
        reader,
        clock,
        star,
        fan,
    }
}

async fn balances(world: &World) -> (i64, i64, i64) {
    let wallet = |person: &Person| {
        let reader = world.reader.clone();
        let id = person.id;
        async move {
            identity::wallet_balance(&reader, id)
                .await
                .unwrap()
                .minor_units()
        }
    };
    let fan = wallet(&world.fan).await;
    let star = wallet(&world.star).await;
    let revenue_id = mizan_core::AccountId::new(payments::PLATFORM_REVENUE_USD).unwrap();
    let reader = world.reader.clone();
    let revenue = reader
        .read(move |r| r.accounts(&[revenue_id]))
        .await
        .unwrap()
        .unwrap()[0]
        .balance_posted();
    (fan, star, i64::try_from(revenue).unwrap())
}

async fn run(steps: Vec<Step>) {
    let world = world().await;
    let first = world
        .send(&world.fan, &world.star, "dm-1", true)
        .await
        .unwrap();
    let dm = first.paid_dm.expect("a paid DM").id;
    for (index, step) in steps.iter().enumerate() {
        match step {
            Step::Reply => {
                let _ = world
                    .send(&world.star, &world.fan, &format!("reply-{index}"), false)
                    .await;
            }
            Step::Accept | Step::Decline => {
                let accept = matches!(step, Step::Accept);
                let result = messages::settle_paid_dm(
                    world.ledger(),
                    &world.reader,
                    &world.star,
                    &dm,
                    accept,
                    world.clock.now_ns(),
                )
                .await;
                if let Err(error) = result {
                    assert_eq!(error, payments::PaymentError::PaidDmNotPending);
                }
            }
            Step::Retry => {
                let again = world
                    .send(&world.fan, &world.star, "dm-1", true)
                    .await
                    .unwrap();
                assert_eq!(
                    again.paid_dm.map(|d| d.id),
                    Some(dm.clone()),
                    "a retry replays"
                );
            }
            Step::Deadline => {
                world.clock.advance_seconds(u64::from(TIMEOUT_SECONDS) + 1);
                // Let the writer's expiry tick run.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            Step::ExpiryJob => record_expiries_twice(&world).await,
        }
    }
    // In the end time runs out for whatever is left.
    world.clock.advance_seconds(u64::from(TIMEOUT_SECONDS) + 1);
    let mut status = PaidDmStatus::Pending;
    for _ in 0..200 {
        status = messages::paid_dm(&world.reader, world.fan.id, &dm)
            .await
            .unwrap()
            .status;
        if status != PaidDmStatus::Pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    record_expiries_twice(&world).await;
    record_expiries_twice(&world).await;
    let (paid_events, refunded_events) = outcome_events(&world).await;
    let expected = match status {
        PaidDmStatus::Paid => (1, 0),
        _ => (0, 1),
    };
    assert_eq!((paid_events, refunded_events), expected, "{steps:?}");
    let (fan, star, revenue) = balances(&world).await;
    let cut = PRICE_MINOR * i64::from(CUT_BPS) / 10_000;
    match status {
        PaidDmStatus::Paid => {
            assert_eq!(
                (fan, star, revenue),
                (10_000 - PRICE_MINOR, PRICE_MINOR - cut, cut),
                "{steps:?}"
            );
        }
        PaidDmStatus::Declined | PaidDmStatus::Expired => {
            assert_eq!((fan, star, revenue), (10_000, 0, 0), "{steps:?}");
        }
        PaidDmStatus::Pending => panic!("still pending after the deadline: {steps:?}"),
    }
    // What the first step decided is what stands.
    let decided = steps.iter().find_map(|step| match step {
        Step::Reply | Step::Accept => Some(PaidDmStatus::Paid),
        Step::Decline => Some(PaidDmStatus::Declined),
        Step::Deadline => Some(PaidDmStatus::Expired),
        Step::Retry | Step::ExpiryJob => None,
    });
    assert_eq!(
        status,
        decided.unwrap_or(PaidDmStatus::Expired),
        "{steps:?}"
    );
}

async fn record_expiries_twice(world: &World) {
    let now_ns = world.clock.now_ns();
    let (a, b) = tokio::join!(
        messages::record_expiries(world.ledger(), &world.reader, now_ns),
        messages::record_expiries(world.ledger(), &world.reader, now_ns),
    );
    a.unwrap();
    b.unwrap();
}

/// How many `paid_dm.paid` and `paid_dm.refunded` events the outbox holds.
async fn outcome_events(world: &World) -> (usize, usize) {
    let events = world
        .reader
        .read(|r| r.outbox(0, 1_000))
        .await
        .unwrap()
        .unwrap();
    let count = |topic: &str| events.iter().filter(|(_, t, _)| t == topic).count();
    (
        count(messages::TOPIC_PAID_DM_PAID),
        count(messages::TOPIC_PAID_DM_REFUNDED),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_paid_dm_is_paid_out_or_refunded_exactly_once(steps in proptest::collection::vec(step(), 0..6)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(steps));
    }
}
