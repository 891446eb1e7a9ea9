//! Verification: recompute the hash chain and every balance from the transfers.
//!
//! `mizan ledger verify` runs this over a store. It stops at the first mismatch and
//! names it: a transfer whose hash does not chain, a timestamp out of order, an
//! account whose stored balances differ from the replay, or a ledger whose debits
//! and credits do not sum equal.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chain::{transfer_hash, ChainHead, GENESIS_HASH};
use crate::engine::resolution_status;
use crate::store::{BalanceReplay, LedgerReader, StoreError};
use crate::types::{AccountFlags, Balances, TransferFlags};

/// Sums of one ledger's balances over all of its accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LedgerTotals {
    pub accounts: u64,
    pub debits_pending: i128,
    pub debits_posted: i128,
    pub credits_pending: i128,
    pub credits_posted: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub transfers: u64,
    pub accounts: u64,
    pub last_timestamp: u64,
    pub last_hash: String,
    pub ledgers: BTreeMap<u32, LedgerTotals>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("verification failed: {0}")]
    Mismatch(String),
}

fn mismatch(text: String) -> VerifyError {
    VerifyError::Mismatch(text)
}

/// Verifies the whole ledger behind `reader`, in one read snapshot, so a ledger
/// that is being written to verifies as of one moment.
pub fn verify(reader: &mut dyn LedgerReader) -> Result<VerifyReport, VerifyError> {
    reader.begin_snapshot()?;
    let result = verify_snapshot(reader);
    let ended = reader.end_snapshot();
    let report = result?;
    ended?;
    Ok(report)
}

fn verify_snapshot(reader: &mut dyn LedgerReader) -> Result<VerifyReport, VerifyError> {
    let mut replay = BalanceReplay::default();
    let mut previous_hash = GENESIS_HASH;
    let mut previous_timestamp = 0_u64;
    let mut count = 0_u64;
    let mut failure: Option<String> = None;
    reader.scan_transfers(&mut |transfer| {
        let at = format!(
            "transfer #{} (id {}, timestamp {})",
            count + 1,
            transfer.id,
            transfer.timestamp
        );
        if transfer.timestamp <= previous_timestamp {
            failure = Some(format!("{at}: timestamp does not increase"));
            return Ok(false);
        }
        let expected = transfer_hash(&previous_hash, transfer);
        if expected != transfer.hash {
            failure = Some(format!(
                "{at}: hash does not match its contents and the chain"
            ));
            return Ok(false);
        }
        let expiry = transfer.flags.contains(TransferFlags::EXPIRY);
        if expiry != transfer.id.is_zero() {
            failure = Some(format!("{at}: only expiry records may have id zero"));
            return Ok(false);
        }
        if transfer.amount < 0
            || (resolution_status(transfer.flags).is_none() && transfer.pending_id.get() != 0)
        {
            failure = Some(format!("{at}: malformed fields"));
            return Ok(false);
        }
        if let Err(problem) = replay.apply(transfer) {
            failure = Some(format!("{at}: {problem}"));
            return Ok(false);
        }
        previous_hash = transfer.hash;
        previous_timestamp = transfer.timestamp;
        count += 1;
        Ok(true)
    })?;
    if let Some(problem) = failure {
        return Err(mismatch(problem));
    }
    let head = reader.chain_head()?;
    check_head(&head, count, &previous_hash, previous_timestamp)?;
    let ledgers = check_accounts(reader, &replay)?;
    Ok(VerifyReport {
        transfers: count,
        accounts: ledgers.values().map(|t| t.accounts).sum(),
        last_timestamp: previous_timestamp,
        last_hash: hex::encode(previous_hash),
        ledgers,
    })
}

fn check_head(
    head: &ChainHead,
    count: u64,
    last_hash: &[u8; 32],
    last_timestamp: u64,
) -> Result<(), VerifyError> {
    if head.transfers_count != count || head.last_hash != *last_hash {
        return Err(mismatch(format!(
            "chain head says {} transfers ending in {}, the transfers give {} ending in {}",
            head.transfers_count,
            hex::encode(head.last_hash),
            count,
            hex::encode(last_hash)
        )));
    }
    if head.last_timestamp < last_timestamp {
        return Err(mismatch(
            "chain head timestamp is behind the last transfer".into(),
        ));
    }
    Ok(())
}

fn check_accounts(
    reader: &mut dyn LedgerReader,
    replay: &BalanceReplay,
) -> Result<BTreeMap<u32, LedgerTotals>, VerifyError> {
    let mut ledgers: BTreeMap<u32, LedgerTotals> = BTreeMap::new();
    let mut accounts = reader.all_accounts()?;
    accounts.sort_by_key(|a| a.id);
    let mut seen = 0_usize;
    for account in &accounts {
        let replayed = replay
            .balances
            .get(&account.id)
            .copied()
            .unwrap_or_default();
        if replay.balances.contains_key(&account.id) {
            seen += 1;
        }
        if account.balances() != replayed {
            return Err(mismatch(format!(
                "account {}: stored balances {:?} but its transfers give {:?}",
                account.id,
                account.balances(),
                replayed
            )));
        }
        check_flags(account.id, account.flags, &replayed)?;
        let totals = ledgers.entry(account.ledger).or_default();
        totals.accounts += 1;
        totals.debits_pending += i128::from(account.debits_pending);
        totals.debits_posted += i128::from(account.debits_posted);
        totals.credits_pending += i128::from(account.credits_pending);
        totals.credits_posted += i128::from(account.credits_posted);
    }
    if seen != replay.balances.len() {
        return Err(mismatch(
            "a transfer touches an account that does not exist".into(),
        ));
    }
    for (ledger, totals) in &ledgers {
        if totals.debits_posted != totals.credits_posted
            || totals.debits_pending != totals.credits_pending
        {
            return Err(mismatch(format!(
                "ledger {ledger}: debits and credits differ: {totals:?}"
            )));
        }
    }
    Ok(ledgers)
}

fn check_flags(
    id: mizan_core::AccountId,
    flags: AccountFlags,
    balances: &Balances,
) -> Result<(), VerifyError> {
    let debits = i128::from(balances.debits_pending) + i128::from(balances.debits_posted);
    let credits = i128::from(balances.credits_pending) + i128::from(balances.credits_posted);
    if flags.contains(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS)
        && debits > i128::from(balances.credits_posted)
    {
        return Err(mismatch(format!("account {id}: debits exceed credits")));
    }
    if flags.contains(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS)
        && credits > i128::from(balances.debits_posted)
    {
        return Err(mismatch(format!("account {id}: credits exceed debits")));
    }
    Ok(())
}
