//! Property test: the engine and the reference model agree on every result code,
//! every balance and every committed transfer, for random batches of accounts,
//! transfers, holds, posts, voids, timeouts, links and retries.

use mizan_core::{AccountId, TransferId};
use proptest::prelude::*;

use crate::chain::{chain_transfers, ChainHead};
use crate::engine::{Engine, WorkingSet};
use crate::model::Model;
use crate::strategies::*;
use crate::types::{
    AccountCode, AccountFlags, NewAccount, PendingStatus, Transfer, TransferFlags, TransferRequest,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn engine_matches_reference_model(batches in batches()) {
        let mut working_set = WorkingSet::default();
        let mut model = Model::default();
        let mut head = ChainHead::genesis();
        let mut committed: Vec<Transfer> = Vec::new();
        let mut clock = START_NS;
        for batch in &batches {
            clock += batch.advance_seconds * 1_000_000_000;
            let now = clock.max(head.last_timestamp + 1);
            let mut due: Vec<(u64, TransferId)> = working_set
                .pending
                .iter()
                .filter(|(_, status)| **status == PendingStatus::Pending)
                .filter_map(|(id, _)| working_set.transfers[id].expires_at_ns().map(|at| (at, *id)))
                .filter(|(at, _)| *at <= now)
                .collect();
            due.sort();
            let due: Vec<TransferId> = due.into_iter().map(|(_, id)| id).collect();
            let mut engine = Engine::new(&mut working_set, now, head.last_timestamp);
            engine.expire(&due);
            model.begin_batch();
            model.expire(now);
            let mut outcomes = Vec::new();
            let mut expected = Vec::new();
            for s in &batch.submissions {
                outcomes.push(engine.submit(&s.accounts, &s.transfers, s.atomic));
                expected.push(model.submit(&s.accounts, &s.transfers, s.atomic, now));
            }
            let last = engine.last_timestamp();
            let mut output = engine.finish();
            model.end_batch();
            if !output.is_empty() {
                chain_transfers(&mut head, &mut output.transfers);
                head.last_timestamp = head.last_timestamp.max(last);
            }
            committed.extend(output.transfers.iter().copied());
            for (outcome, (accounts, transfers)) in outcomes.iter().zip(&expected) {
                prop_assert_eq!(&outcome.accounts, accounts);
                let codes: Vec<_> = outcome.transfers.iter().map(|t| t.result).collect();
                prop_assert_eq!(&codes, transfers);
            }
        }
        prop_assert_eq!(committed.len(), model.transfers.len());
        for (engine, expected) in committed.iter().zip(&model.transfers) {
            assert_same_transfer(engine, expected);
        }
        for id in 1..=ACCOUNT_IDS {
            if let Some(account) = working_set.accounts.get(&AccountId::from_raw(id)) {
                prop_assert_eq!(account.balances(), model.balances(id), "balances of {}", id);
                prop_assert_eq!(Some(account.flags), model.account_flags(id), "flags of {}", id);
            }
        }
    }
}

#[test]
fn a_failed_link_rolls_back_the_whole_chain() {
    let mut working_set = WorkingSet::default();
    let accounts: Vec<NewAccount> = (1..=2)
        .map(|id| NewAccount {
            id: AccountId::from_raw(id),
            ledger: 840,
            code: AccountCode::UserWallet,
            owner: 0,
            flags: if id == 1 {
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
            } else {
                AccountFlags::NONE
            },
        })
        .collect();
    let mut engine = Engine::new(&mut working_set, START_NS, 0);
    engine.submit(&accounts, &[], false);
    let fund = TransferRequest::single(
        TransferId::from_raw(1),
        AccountId::from_raw(2),
        AccountId::from_raw(1),
        100,
        840,
        1,
    );
    let spend = TransferRequest::single(
        TransferId::from_raw(2),
        AccountId::from_raw(1),
        AccountId::from_raw(2),
        60,
        840,
        1,
    )
    .with_flags(TransferFlags::LINKED);
    let overspend = TransferRequest::single(
        TransferId::from_raw(3),
        AccountId::from_raw(1),
        AccountId::from_raw(2),
        60,
        840,
        1,
    );
    let outcome = engine.submit(&[], &[fund, spend, overspend], false);
    let codes: Vec<_> = outcome
        .transfers
        .iter()
        .map(|t| t.result.as_str())
        .collect();
    assert_eq!(codes, ["ok", "linked_event_failed", "exceeds_credits"]);
    let output = engine.finish();
    assert_eq!(output.transfers.len(), 1);
    assert_eq!(
        working_set.accounts[&AccountId::from_raw(1)].credits_posted,
        100
    );
    assert_eq!(
        working_set.accounts[&AccountId::from_raw(1)].debits_posted,
        0
    );
}

/// Guards the property test against passing vacuously: over a sample of generated
/// batches the model must hit the interesting outcomes.
#[test]
fn generated_batches_reach_the_interesting_outcomes() {
    use crate::results::CreateTransferResult as R;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::HashSet::new();
    let mut committed_kinds = std::collections::HashSet::new();
    for _ in 0..300 {
        let Ok(tree) = batches().new_tree(&mut runner) else {
            continue;
        };
        let mut model = Model::default();
        let mut clock = START_NS;
        for batch in tree.current() {
            clock += batch.advance_seconds * 1_000_000_000;
            model.expire(clock);
            for s in &batch.submissions {
                let (_, codes) = model.submit(&s.accounts, &s.transfers, s.atomic, clock);
                seen.extend(codes);
            }
        }
        for t in &model.transfers {
            committed_kinds.insert(t.flags.without(TransferFlags::LINKED).bits());
        }
    }
    for code in [
        R::Ok,
        R::Exists,
        R::ExistsWithDifferentAmount,
        R::ExceedsCredits,
        R::LinkedEventFailed,
        R::LinkedEventChainOpen,
        R::PendingTransferAlreadyPosted,
        R::PendingTransferAlreadyVoided,
        R::PendingTransferNotFound,
        R::AccountClosed,
        R::AccountsMustBeDifferent,
        R::AmountMustNotBeZero,
        R::OverflowsCreditsPosted,
    ] {
        assert!(
            seen.contains(&code),
            "generator never produced {code}; saw {seen:?}, committed kinds {committed_kinds:?}"
        );
    }
    for kind in [
        TransferFlags::PENDING,
        TransferFlags::POST_PENDING,
        TransferFlags::VOID_PENDING,
        TransferFlags::EXPIRY,
        TransferFlags::NONE,
    ] {
        assert!(
            committed_kinds.contains(&kind.bits()),
            "no committed {kind:?}"
        );
    }
}
