//! Generators of random ledger workloads for property tests (engine vs model, and
//! each store under the writer vs model).

use mizan_core::{AccountId, TransferId};
use proptest::prelude::*;

use crate::types::{
    AccountCode, AccountFlags, NewAccount, Transfer, TransferFlags, TransferRequest,
};
pub const START_NS: u64 = 1_700_000_000_000_000_000;
pub const ACCOUNT_IDS: u128 = 6;

#[derive(Debug, Clone)]
pub struct ModelSubmission {
    pub accounts: Vec<NewAccount>,
    pub transfers: Vec<TransferRequest>,
    pub atomic: bool,
}

#[derive(Debug, Clone)]
pub struct ModelBatch {
    pub advance_seconds: u64,
    pub submissions: Vec<ModelSubmission>,
}

pub fn new_account() -> impl Strategy<Value = NewAccount> {
    (
        0..=ACCOUNT_IDS,
        prop_oneof![8 => Just(840_u32), 1 => Just(978), 1 => Just(0), 1 => Just(999)],
        0..AccountCode::ALL.len(),
        0_u128..3,
        prop_oneof![3 => Just(1_u16), 3 => Just(0), 1 => Just(2), 1 => Just(3), 1 => Just(4)],
    )
        .prop_map(|(id, ledger, code, owner, flags)| NewAccount {
            id: AccountId::from_raw(id),
            ledger,
            code: AccountCode::ALL[code],
            owner,
            flags: AccountFlags::from_bits(flags).unwrap_or(AccountFlags::NONE),
        })
}

pub fn transfer_request() -> impl Strategy<Value = TransferRequest> {
    let flags = prop_oneof![
        4 => Just(0_u16),
        2 => Just(TransferFlags::PENDING.bits()),
        2 => Just(TransferFlags::POST_PENDING.bits()),
        2 => Just(TransferFlags::VOID_PENDING.bits()),
        1 => Just(TransferFlags::BALANCING_DEBIT.bits()),
        1 => Just(TransferFlags::BALANCING_CREDIT.bits()),
        1 => Just(TransferFlags::PENDING.bits() | TransferFlags::CLOSING_DEBIT.bits()),
        1 => Just(TransferFlags::CLOSING_CREDIT.bits()),
        1 => any::<u16>().prop_map(|bits| bits & 0x1ff),
    ];
    let amount = prop_oneof![
        6 => 1_i64..300,
        1 => Just(0_i64),
        1 => Just(-1_i64),
        1 => Just(i64::MAX),
        1 => Just(i64::MAX - 1),
    ];
    (
        (
            0_u128..14,
            0..=ACCOUNT_IDS,
            0..=ACCOUNT_IDS,
            amount,
            0_u128..14,
        ),
        (
            prop_oneof![8 => Just(840_u32), 1 => Just(978), 1 => Just(0)],
            0_u16..3,
            0_u128..2,
        ),
        (
            flags,
            prop::bool::weighted(0.25),
            prop_oneof![4 => Just(0_u32), 1 => 1_u32..4],
        ),
    )
        .prop_map(
            |(
                (id, debit, credit, amount, pending_id),
                (ledger, code, reference),
                (flags, linked, timeout),
            )| {
                let mut flags = TransferFlags::from_bits(flags).unwrap_or(TransferFlags::NONE);
                if linked {
                    flags = flags | TransferFlags::LINKED;
                }
                let resolution = flags.contains(TransferFlags::POST_PENDING)
                    || flags.contains(TransferFlags::VOID_PENDING);
                TransferRequest {
                    id: TransferId::from_raw(id),
                    // Posts and voids mostly inherit their fields, as callers send them.
                    debit_account_id: AccountId::from_raw(if resolution && debit % 2 == 0 {
                        0
                    } else {
                        debit
                    }),
                    credit_account_id: AccountId::from_raw(if resolution && credit % 2 == 0 {
                        0
                    } else {
                        credit
                    }),
                    amount: if resolution && amount % 3 == 0 {
                        0
                    } else {
                        amount
                    },
                    pending_id: TransferId::from_raw(if resolution || pending_id == 13 {
                        pending_id
                    } else {
                        0
                    }),
                    ledger: if resolution && code == 0 { 0 } else { ledger },
                    code: if resolution {
                        code % 2
                    } else {
                        code.max(u16::from(code == 0 && ledger != 0))
                    },
                    reference,
                    flags,
                    timeout_seconds: timeout,
                }
            },
        )
}

fn earlier_pendings(batches: &[ModelBatch]) -> Vec<TransferRequest> {
    batches
        .iter()
        .flat_map(|b| {
            b.submissions
                .iter()
                .flat_map(|s| s.transfers.iter().copied())
        })
        .filter(|t| t.flags.contains(TransferFlags::PENDING))
        .collect()
}

pub fn submission() -> impl Strategy<Value = ModelSubmission> {
    (
        prop::collection::vec(new_account(), 0..3),
        prop::collection::vec(transfer_request(), 0..6),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(accounts, transfers, atomic)| ModelSubmission {
            accounts,
            transfers,
            atomic,
        })
}

pub fn batches() -> impl Strategy<Value = Vec<ModelBatch>> {
    let batch = (
        prop_oneof![4 => Just(0_u64), 1 => 1_u64..4],
        prop::collection::vec(submission(), 1..4),
    )
        .prop_map(|(advance_seconds, submissions)| ModelBatch {
            advance_seconds,
            submissions,
        });
    // Funding first, so later transfers have money to move.
    let funding = Just(ModelBatch {
        advance_seconds: 0,
        submissions: vec![ModelSubmission {
            accounts: (1..=ACCOUNT_IDS)
                .map(|id| NewAccount {
                    id: AccountId::from_raw(id),
                    ledger: 840,
                    code: AccountCode::UserWallet,
                    owner: 0,
                    flags: if id % 2 == 0 {
                        AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
                    } else {
                        AccountFlags::NONE
                    },
                })
                .collect(),
            transfers: vec![],
            atomic: false,
        }],
    });
    // Retries: some batches re-send a transfer of an earlier batch, unlinked.
    let retries = prop::collection::vec(any::<(u8, u16)>(), 12);
    (funding, prop::collection::vec(batch, 1..12), retries).prop_map(
        |(first, mut rest, retries)| {
            for index in 1..rest.len() {
                let (chance, pick) = retries[index];
                let earlier: Vec<TransferRequest> = rest[..index]
                    .iter()
                    .flat_map(|b| {
                        b.submissions
                            .iter()
                            .flat_map(|s| s.transfers.iter().copied())
                    })
                    .collect();
                if chance % 2 == 0 && !earlier.is_empty() {
                    let mut retry = earlier[usize::from(pick) % earlier.len()];
                    retry.flags = retry.flags.without(TransferFlags::LINKED);
                    if chance % 4 == 0 {
                        retry.amount = retry.amount.wrapping_add(1);
                    }
                    rest[index].submissions[0].transfers.insert(0, retry);
                }
                let pendings: Vec<TransferRequest> = earlier_pendings(&rest[..index]);
                if chance % 3 == 0 && !pendings.is_empty() {
                    // Resolve an earlier hold, twice (under two ids) now and then.
                    let pending = pendings[usize::from(pick) % pendings.len()];
                    for attempt in 0..=u128::from(chance % 5 == 0) {
                        let post = (chance / 8 + attempt as u8).is_multiple_of(2);
                        let id = TransferId::from_raw((pending.id.get() + 5 + attempt) % 14);
                        rest[index].submissions[0]
                            .transfers
                            .push(TransferRequest::resolve(id, pending.id, post, 0));
                    }
                }
            }
            rest.insert(0, first);
            rest
        },
    )
}

/// Compares one committed transfer of the engine with the model's.
pub fn assert_same_transfer(engine: &Transfer, model: &crate::model::ModelTransfer) {
    assert_eq!(engine.id.get(), model.id, "id");
    assert_eq!(
        engine.debit_account_id.get(),
        model.debit,
        "debit of {}",
        model.id
    );
    assert_eq!(
        engine.credit_account_id.get(),
        model.credit,
        "credit of {}",
        model.id
    );
    assert_eq!(engine.amount, model.amount, "amount of {}", model.id);
    assert_eq!(
        engine.pending_id.get(),
        model.pending_id,
        "pending id of {}",
        model.id
    );
    assert_eq!(engine.ledger, model.ledger);
    assert_eq!(engine.code, model.code);
    assert_eq!(engine.reference, model.reference);
    assert_eq!(engine.flags, model.flags);
    assert_eq!(engine.timeout_seconds, model.timeout_seconds);
    assert_eq!(
        engine.timestamp, model.timestamp,
        "timestamp of {}",
        model.id
    );
}
