#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reconciler of processor intents: a funding or a cash-out cut off after the
//! processor (or bank) answered — the process "crashes" between the call and the
//! submission that resolves the hold — is finished exactly once, whatever the
//! number of reconciler runs, and the original request's retry answers the result.
//!
//! The crash is a processor wrapper that lets the real sandbox answer and then
//! panics, so the use case stops exactly where a killed process would.

mod common;

use std::sync::Arc;

use mizan_app::cashout::{self, BankAccount, PayoutDecision, Payouts, SandboxPayouts};
use mizan_app::funding::{
    self, CardNumber, CardSource, ChargeDecision, FundingOutcome, Processor, SandboxProcessor,
};
use mizan_app::identity::{PersonId, SharedReader, WALLET_CURRENCY};
use mizan_app::limits::LimitsTable;
use mizan_app::payments::{DeclineReason, IdempotencyKey, PaymentError};
use mizan_app::reconcile::{self, Rails, ReconcileReport, INTENT_AGE_MIN_SECONDS};
use mizan_app::sanctions::ScreenerCell;
use mizan_app::vault::SharedVault;
use mizan_core::{Clock, ManualClock, Money, Secret};
use mizan_ledger::{Account, Ledger, PendingStatus};

const START_NS: u64 = 1_800_000_000_000_000_000;
const SECOND_NS: u64 = 1_000_000_000;

/// Answers through the sandbox, then dies before the answer can be written.
struct CrashAfterAnswer;

impl Processor for CrashAfterAnswer {
    fn charge(&self, intent: &str, card: &CardNumber, amount: Money) -> ChargeDecision {
        let decision = SandboxProcessor.charge(intent, card, amount);
        panic!("simulated crash after the processor answered {decision:?}");
    }
    fn complete_challenge(&self, intent: &str, answer: &str) -> ChargeDecision {
        let decision = SandboxProcessor.complete_challenge(intent, answer);
        panic!("simulated crash after the challenge was answered {decision:?}");
    }
}

impl Payouts for CrashAfterAnswer {
    fn payout(&self, intent: &str, account: &BankAccount, amount: Money) -> PayoutDecision {
        let decision = SandboxPayouts.payout(intent, account, amount);
        panic!("simulated crash after the bank answered {decision:?}");
    }
}

struct World {
    _dir: tempfile::TempDir,
    clock: ManualClock,
    ledger: Ledger,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: SharedReader,
    vault: SharedVault,
    limits: LimitsTable,
    person: PersonId,
}

impl World {
    /// A card funding of `amount_minor` that waits for its challenge.
    async fn ask_challenge(&self, amount_minor: i64, key: &str) -> funding::FundingOutcome {
        let asked = self
            .fund(
                &SandboxProcessor,
                funding::SANDBOX_CHALLENGE_CARD,
                amount_minor,
                key,
            )
            .await
            .unwrap();
        assert!(asked.requires_action);
        asked
    }

    /// Answers a funding's challenge through `processor`, which panics like a
    /// process dying (before or after the processor decided).
    async fn answer_and_crash(&self, processor: impl Processor + 'static, funding_id: &str) {
        let (ledger, reader) = (self.ledger.clone(), self.reader.clone());
        let (person, id, now_ns) = (self.person, funding_id.to_owned(), self.clock.now_ns());
        let crashed = tokio::spawn(async move {
            funding::complete_challenge(
                &ledger,
                &reader,
                &processor,
                person,
                &id,
                funding::SANDBOX_CHALLENGE_ANSWER,
                now_ns,
            )
            .await
        })
        .await;
        assert!(crashed.unwrap_err().is_panic());
    }

    async fn new() -> World {
        let clock = ManualClock::new(START_NS);
        let common::Started {
            dir,
            ledger,
            writer,
            reader,
            vault,
        } = common::start(Arc::new(clock.clone()));
        let person = common::sign_up(&ledger, "reconciled", clock.now_ns())
            .await
            .id;
        World {
            _dir: dir,
            clock,
            ledger,
            writer: Some(writer),
            reader,
            vault,
            limits: LimitsTable::uniform(100_000_000),
            person,
        }
    }

    async fn fund(
        &self,
        processor: &dyn Processor,
        card: &str,
        minor: i64,
        key: &str,
    ) -> Result<FundingOutcome, PaymentError> {
        let number = CardNumber::parse(Secret::new(card.to_owned())).unwrap();
        funding::fund(
            &self.ledger,
            &self.reader,
            &self.limits,
            processor,
            &self.vault,
            self.person,
            Money::from_minor(minor, WALLET_CURRENCY),
            CardSource::New {
                number,
                save_as_default: false,
            },
            IdempotencyKey::parse(key).unwrap(),
            self.clock.now_ns(),
        )
        .await
    }

    /// Runs `fund` on a task of its own and expects it to die (the crash).
    async fn fund_and_crash(&self, card: &str, minor: i64, key: &str) {
        let world = self.handles();
        let (card, key) = (card.to_owned(), key.to_owned());
        let crashed = tokio::spawn(async move {
            let number = CardNumber::parse(Secret::new(card)).unwrap();
            funding::fund(
                &world.0,
                &world.1,
                &world.2,
                &CrashAfterAnswer,
                &world.3,
                world.4,
                Money::from_minor(minor, WALLET_CURRENCY),
                CardSource::New {
                    number,
                    save_as_default: false,
                },
                IdempotencyKey::parse(&key).unwrap(),
                world.5,
            )
            .await
        })
        .await;
        assert!(
            crashed.unwrap_err().is_panic(),
            "the funding must be cut off"
        );
    }

    async fn cash_out(
        &self,
        payouts: &dyn Payouts,
        account_number: &str,
        minor: i64,
        key: &str,
    ) -> Result<cashout::CashoutOutcome, PaymentError> {
        cashout::cash_out(
            &self.ledger,
            &self.reader,
            &self.limits,
            payouts,
            &self.vault,
            &ScreenerCell::new(None),
            self.person,
            Money::from_minor(minor, WALLET_CURRENCY),
            BankAccount::parse("011000015", Secret::new(account_number.to_owned())).unwrap(),
            IdempotencyKey::parse(key).unwrap(),
            self.clock.now_ns(),
        )
        .await
    }

    async fn cash_out_and_crash(&self, account_number: &str, minor: i64, key: &str) {
        let world = self.handles();
        let (account_number, key) = (account_number.to_owned(), key.to_owned());
        let crashed = tokio::spawn(async move {
            cashout::cash_out(
                &world.0,
                &world.1,
                &world.2,
                &CrashAfterAnswer,
                &world.3,
                &ScreenerCell::new(None),
                world.4,
                Money::from_minor(minor, WALLET_CURRENCY),
                BankAccount::parse("011000015", Secret::new(account_number)).unwrap(),
                IdempotencyKey::parse(&key).unwrap(),
                world.5,
            )
            .await
        })
        .await;
        assert!(
            crashed.unwrap_err().is_panic(),
            "the cash-out must be cut off"
        );
    }

    #[allow(clippy::type_complexity)]
    fn handles(
        &self,
    ) -> (
        Ledger,
        SharedReader,
        LimitsTable,
        SharedVault,
        PersonId,
        u64,
    ) {
        (
            self.ledger.clone(),
            self.reader.clone(),
            self.limits.clone(),
            self.vault.clone(),
            self.person,
            self.clock.now_ns(),
        )
    }

    /// One reconciler run, as `mizan serve` makes it, `age_seconds` after now.
    async fn reconcile(&self, age_seconds: u64) -> ReconcileReport {
        let rails = Rails {
            processor: &SandboxProcessor,
            payouts: &SandboxPayouts,
            vault: &self.vault,
        };
        let now_ns = self.clock.now_ns() + age_seconds * SECOND_NS;
        reconcile::reconcile(&self.ledger, &self.reader, rails, now_ns)
            .await
            .unwrap()
    }

    /// Whether the marker of a challenge answer for `funding` is stored.
    async fn answer_marked(&self, funding: &str) -> bool {
        let key = funding.to_owned();
        self.reader
            .read(move |r| r.document(funding::COLLECTION_CHALLENGE_ANSWERS, &key))
            .await
            .unwrap()
            .unwrap()
            .is_some()
    }

    async fn wallet(&self) -> Account {
        let wallet = self.person.wallet_id(WALLET_CURRENCY).unwrap();
        self.reader
            .read(move |r| r.accounts(&[wallet]))
            .await
            .unwrap()
            .unwrap()[0]
    }

    /// Moves the ledger's clock on and waits until the writer expired `hold`.
    async fn expire(&self, seconds: u64, hold: &str) {
        self.clock.advance_seconds(seconds);
        let id = mizan_core::TransferId::new(u128::from_str_radix(hold, 16).unwrap()).unwrap();
        for _ in 0..200 {
            let status = self
                .reader
                .read(move |r| r.pending_status(id))
                .await
                .unwrap()
                .unwrap();
            if status == Some(PendingStatus::Expired) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the writer never expired the hold");
    }

    async fn stop(mut self) {
        let writer = self.writer.take().unwrap();
        drop(self.ledger);
        tokio::task::block_in_place(|| writer.join()).unwrap();
    }
}

fn finished_once(report: ReconcileReport) -> bool {
    report
        == ReconcileReport {
            finished: 1,
            ..ReconcileReport::default()
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charged_card_cut_off_before_the_credit_is_credited_once() {
    let world = World::new().await;
    world
        .fund_and_crash("4242424242424242", 2_500, "top-up-1")
        .await;

    // The hold is there, the claim unresolved: a retry is told to wait, not 500.
    let retry = world
        .fund(&SandboxProcessor, "4242424242424242", 2_500, "top-up-1")
        .await;
    assert_eq!(
        retry.unwrap_err(),
        PaymentError::IdempotencyRequestInProgress
    );
    assert_eq!(world.wallet().await.credits_pending, 2_500);
    assert_eq!(world.wallet().await.balance_posted(), 0);

    // Too young: its request could still be waiting for the processor.
    assert_eq!(world.reconcile(1).await, ReconcileReport::default());
    // Two reconcilers at once, then a third run: credited once.
    let age = INTENT_AGE_MIN_SECONDS + 1;
    // Whether the second run still sees the intent open (and then finds it
    // resolved) or starts after the first is done depends on scheduling; either
    // way exactly one of them credits it.
    let (first, second) = tokio::join!(world.reconcile(age), world.reconcile(age));
    let finished = first.finished + second.finished;
    let raced = first.already_resolved + second.already_resolved;
    assert_eq!(
        (finished, first.failed + second.failed),
        (1, 0),
        "{first:?} {second:?}"
    );
    assert!(raced <= 1, "{first:?} {second:?}");
    assert_eq!(world.reconcile(age).await, ReconcileReport::default());
    let wallet = world.wallet().await;
    assert_eq!(
        (wallet.balance_posted(), wallet.credits_pending),
        (2_500, 0)
    );

    // The original request's retry now answers the final state.
    let replay = world
        .fund(&SandboxProcessor, "4242424242424242", 2_500, "top-up-1")
        .await
        .unwrap();
    assert!(replay.replayed && !replay.requires_action);
    assert_eq!(replay.funding.amount.minor_units(), 2_500);
    // Long after, nothing expires or comes back.
    world.clock.advance_seconds(3 * 3_600);
    assert_eq!(world.reconcile(age).await, ReconcileReport::default());
    assert_eq!(world.wallet().await.balance_posted(), 2_500);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_cut_off_before_the_void_is_voided() {
    let world = World::new().await;
    world
        .fund_and_crash("4000000000009995", 700, "declined")
        .await;
    assert!(finished_once(world.reconcile(INTENT_AGE_MIN_SECONDS).await));
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    let wallet = world.wallet().await;
    assert_eq!((wallet.balance_posted(), wallet.credits_pending), (0, 0));
    let replay = world
        .fund(&SandboxProcessor, "4000000000009995", 700, "declined")
        .await;
    assert_eq!(
        replay.unwrap_err(),
        PaymentError::CardDeclined(DeclineReason::InsufficientFunds)
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_whose_hold_expired_is_credited_once_by_a_derived_transfer() {
    let world = World::new().await;
    world
        .fund_and_crash("4242424242424242", 1_200, "late")
        .await;
    // The server stayed down past the hold's timeout: the hold expired.
    let hold = first_open_funding_hold(&world).await;
    world.expire(2 * 3_600, &hold).await;
    assert_eq!(world.wallet().await.balance_posted(), 0);
    let report = world.reconcile(INTENT_AGE_MIN_SECONDS).await;
    assert_eq!(
        report,
        ReconcileReport {
            applied_after_expiry: 1,
            ..ReconcileReport::default()
        }
    );
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    assert_eq!(world.wallet().await.balance_posted(), 1_200);
    let replay = world
        .fund(&SandboxProcessor, "4242424242424242", 1_200, "late")
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.funding.id, hold);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_challenge_cut_off_is_credited_and_an_unanswered_one_waits() {
    let world = World::new().await;
    let asked = world.ask_challenge(900, "challenge").await;
    // Unanswered: the reconciler leaves it for the cardholder.
    let waiting = world.reconcile(INTENT_AGE_MIN_SECONDS).await;
    assert_eq!(waiting.still_open, 1, "{waiting:?}");
    // Answered, and the process dies before the answer is written.
    world
        .answer_and_crash(CrashAfterAnswer, &asked.funding.id)
        .await;
    assert!(finished_once(world.reconcile(INTENT_AGE_MIN_SECONDS).await));
    assert_eq!(world.wallet().await.balance_posted(), 900);
    let replay = world
        .fund(
            &SandboxProcessor,
            funding::SANDBOX_CHALLENGE_CARD,
            900,
            "challenge",
        )
        .await
        .unwrap();
    assert!(replay.replayed && !replay.requires_action);
    world.stop().await;
}

/// The process dies after marking the answer, before the processor hears it.
struct CrashBeforeAnswer;

impl Processor for CrashBeforeAnswer {
    fn charge(&self, intent: &str, card: &CardNumber, amount: Money) -> ChargeDecision {
        SandboxProcessor.charge(intent, card, amount)
    }
    fn complete_challenge(&self, _intent: &str, _answer: &str) -> ChargeDecision {
        panic!("simulated crash before the processor heard the answer");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_processor_never_heard_leaves_the_challenge_waiting_again() {
    let world = World::new().await;
    let asked = world.ask_challenge(700, "unheard").await;
    world
        .answer_and_crash(CrashBeforeAnswer, &asked.funding.id)
        .await;
    let reveals = || {
        tokio::task::block_in_place(|| world.vault.access_log(0, 1_000))
            .unwrap()
            .len()
    };
    let before = reveals();
    // The marker makes the reconciler ask once: the processor still wants the
    // challenge, so the marker goes and the funding waits for an answer again.
    let first = world.reconcile(INTENT_AGE_MIN_SECONDS).await;
    assert_eq!(first.still_open, 1, "{first:?}");
    assert_eq!(reveals(), before + 1);
    let second = world.reconcile(INTENT_AGE_MIN_SECONDS).await;
    assert_eq!(second.still_open, 1, "{second:?}");
    assert_eq!(
        reveals(),
        before + 1,
        "an unanswered challenge reveals nothing"
    );
    assert_eq!(world.wallet().await.balance_posted(), 0);
    // The cardholder answers again, and it goes through.
    let answered = funding::complete_challenge(
        &world.ledger,
        &world.reader,
        &SandboxProcessor,
        world.person,
        &asked.funding.id,
        funding::SANDBOX_CHALLENGE_ANSWER,
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    assert!(!answered.requires_action);
    assert_eq!(world.wallet().await.balance_posted(), 700);
    // Resolved: the marker went with the resolution.
    assert!(!world.answer_marked(&asked.funding.id).await);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_cut_off_before_the_post_takes_the_money_once() {
    let world = World::new().await;
    world
        .fund(&SandboxProcessor, "4242424242424242", 10_000, "seed")
        .await
        .unwrap();
    world
        .cash_out_and_crash("000123456789", 4_000, "payout")
        .await;
    assert_eq!(world.wallet().await.debits_pending, 4_000);
    let retry = world
        .cash_out(&SandboxPayouts, "000123456789", 4_000, "payout")
        .await;
    assert_eq!(
        retry.unwrap_err(),
        PaymentError::IdempotencyRequestInProgress
    );

    assert!(finished_once(world.reconcile(INTENT_AGE_MIN_SECONDS).await));
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    let wallet = world.wallet().await;
    assert_eq!((wallet.balance_posted(), wallet.debits_pending), (6_000, 0));
    let replay = world
        .cash_out(&SandboxPayouts, "000123456789", 4_000, "payout")
        .await
        .unwrap();
    assert!(replay.replayed);
    // The week-long hold timeout passes: the money does not come back.
    world.clock.advance_seconds(8 * 24 * 3_600);
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    assert_eq!(world.wallet().await.balance_posted(), 6_000);

    // A returned payout cut off the same way gives the money back, once.
    world
        .cash_out_and_crash("000123450000", 1_000, "returned")
        .await;
    assert!(finished_once(world.reconcile(INTENT_AGE_MIN_SECONDS).await));
    let wallet = world.wallet().await;
    assert_eq!((wallet.balance_posted(), wallet.debits_pending), (6_000, 0));
    let replay = world
        .cash_out(&SandboxPayouts, "000123450000", 1_000, "returned")
        .await;
    assert!(matches!(replay, Err(PaymentError::CashoutReturned(_))));
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_whose_hold_expired_is_taken_again_once() {
    let world = World::new().await;
    world
        .fund(&SandboxProcessor, "4242424242424242", 5_000, "seed")
        .await
        .unwrap();
    world
        .cash_out_and_crash("000123456789", 3_000, "payout")
        .await;
    let hold = first_open_cashout_hold(&world).await;
    // Down for longer than the hold's week: the hold expired, the money came back.
    world.expire(8 * 24 * 3_600, &hold).await;
    assert_eq!(world.wallet().await.balance_posted(), 5_000);
    let report = world.reconcile(INTENT_AGE_MIN_SECONDS).await;
    assert_eq!(report.applied_after_expiry, 1, "{report:?}");
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    assert_eq!(world.wallet().await.balance_posted(), 2_000);
    world.stop().await;
}

/// The intent id (= its hold's id) of the one open intent of a kind.
async fn open_hold(world: &World, prefix: &'static str) -> String {
    let page = world
        .reader
        .read(move |r| {
            r.documents_with_prefix(reconcile::COLLECTION_OPEN_INTENTS, prefix, None, 10)
        })
        .await
        .unwrap()
        .unwrap();
    let [(key, _)] = page.as_slice() else {
        panic!("expected one open intent, found {}", page.len());
    };
    key.rsplit('|').next().unwrap().to_owned()
}

async fn first_open_funding_hold(world: &World) -> String {
    open_hold(world, "funding|").await
}

async fn first_open_cashout_hold(world: &World) -> String {
    open_hold(world, "cashout|").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_answered_after_its_hold_expired_still_credits_once() {
    let world = World::new().await;
    let asked = world
        .fund(
            &SandboxProcessor,
            funding::SANDBOX_CHALLENGE_CARD,
            400,
            "slow",
        )
        .await
        .unwrap();
    world.expire(2 * 3_600, &asked.funding.id).await;
    let answered = funding::complete_challenge(
        &world.ledger,
        &world.reader,
        &SandboxProcessor,
        world.person,
        &asked.funding.id,
        funding::SANDBOX_CHALLENGE_ANSWER,
        world.clock.now_ns(),
    )
    .await
    .unwrap();
    assert!(!answered.requires_action);
    assert_eq!(world.wallet().await.balance_posted(), 400);
    assert!(!world.answer_marked(&asked.funding.id).await);
    // Resolved: the reconciler has nothing left, a second answer is refused.
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    let again = funding::complete_challenge(
        &world.ledger,
        &world.reader,
        &SandboxProcessor,
        world.person,
        &asked.funding.id,
        funding::SANDBOX_CHALLENGE_ANSWER,
        world.clock.now_ns(),
    )
    .await;
    assert_eq!(
        again.unwrap_err(),
        PaymentError::FundingNotAwaitingChallenge
    );
    assert_eq!(world.wallet().await.balance_posted(), 400);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_never_answered_fails_once_its_hold_expired() {
    let world = World::new().await;
    let asked = world
        .fund(
            &SandboxProcessor,
            funding::SANDBOX_CHALLENGE_CARD,
            300,
            "never",
        )
        .await
        .unwrap();
    world.expire(2 * 3_600, &asked.funding.id).await;
    let report = world.reconcile(INTENT_AGE_MIN_SECONDS).await;
    assert_eq!(report.applied_after_expiry, 1, "{report:?}");
    assert_eq!(
        world.reconcile(INTENT_AGE_MIN_SECONDS).await,
        ReconcileReport::default()
    );
    assert_eq!(world.wallet().await.balance_posted(), 0);
    let replay = world
        .fund(
            &SandboxProcessor,
            funding::SANDBOX_CHALLENGE_CARD,
            300,
            "never",
        )
        .await;
    assert_eq!(
        replay.unwrap_err(),
        PaymentError::CardDeclined(DeclineReason::AuthenticationFailed)
    );
    world.stop().await;
}
