//! `mizan demo`: a ledger with demo people, a platform, balances and history.
//!
//! Every id is fixed, so running it again finds everything already there (`exists`)
//! and changes nothing.

use std::sync::Arc;

use anyhow::{bail, Context};
use mizan_core::{AccountId, Currency, Money, SystemClock, TransferId};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, CreateAccountResult, CreateTransferResult, Ledger,
    NewAccount, Submission, TransferFlags, TransferRequest, WriterConfig,
};
use mizan_store::Location;

/// The demo people: (handle, wallet number).
pub const DEMO_PEOPLE: &[&str] = &["amina", "bilal", "chen", "dana", "elif", "farah"];

const PLATFORM_REVENUE: u128 = 0xD0_0001;
const PROCESSOR_CLEARING: u128 = 0xD0_0002;
const DEMO_TRANSFER_BASE: u128 = 0xDE30_0000_0000;
const CODE_FUNDING: u16 = 1;
const CODE_P2P: u16 = 2;
const CODE_FEE: u16 = 3;

fn wallet_id(index: usize) -> u128 {
    0xD1_0000 + index as u128
}

fn account(
    id: u128,
    code: AccountCode,
    owner: u128,
    flags: AccountFlags,
) -> anyhow::Result<NewAccount> {
    Ok(NewAccount {
        id: AccountId::new(id)?,
        ledger: ledger_of(Currency::USD),
        code,
        owner,
        flags,
    })
}

fn demo_accounts() -> anyhow::Result<Vec<NewAccount>> {
    let mut accounts = vec![
        account(
            PLATFORM_REVENUE,
            AccountCode::PlatformRevenue,
            0,
            AccountFlags::NONE,
        )?,
        account(
            PROCESSOR_CLEARING,
            AccountCode::ProcessorClearing,
            0,
            AccountFlags::NONE,
        )?,
    ];
    for index in 0..DEMO_PEOPLE.len() {
        accounts.push(account(
            wallet_id(index),
            AccountCode::UserWallet,
            index as u128 + 1,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        )?);
    }
    Ok(accounts)
}

/// Funding for everyone, then rounds of payments, each with a 1% platform fee in
/// the same linked chain.
fn demo_transfers() -> anyhow::Result<Vec<TransferRequest>> {
    let usd = ledger_of(Currency::USD);
    let mut next = DEMO_TRANSFER_BASE;
    let mut id = || -> anyhow::Result<TransferId> {
        next += 1;
        Ok(TransferId::new(next)?)
    };
    let mut transfers = Vec::new();
    for index in 0..DEMO_PEOPLE.len() {
        let amount = 50_000 + 12_500 * index as i64;
        transfers.push(TransferRequest::single(
            id()?,
            AccountId::new(PROCESSOR_CLEARING)?,
            AccountId::new(wallet_id(index))?,
            amount,
            usd,
            CODE_FUNDING,
        ));
    }
    for round in 0..40_usize {
        let payer = round % DEMO_PEOPLE.len();
        let payee = (round * 5 + 1) % DEMO_PEOPLE.len();
        if payer == payee {
            continue;
        }
        let amount = 500 + (round as i64 * 731) % 4_000;
        let payment = TransferRequest::single(
            id()?,
            AccountId::new(wallet_id(payer))?,
            AccountId::new(wallet_id(payee))?,
            amount,
            usd,
            CODE_P2P,
        )
        .with_flags(TransferFlags::LINKED);
        let fee = TransferRequest::single(
            id()?,
            AccountId::new(wallet_id(payee))?,
            AccountId::new(PLATFORM_REVENUE)?,
            amount / 100,
            usd,
            CODE_FEE,
        );
        transfers.push(payment);
        transfers.push(fee);
    }
    Ok(transfers)
}

pub fn run(location: &Location) -> anyhow::Result<()> {
    let store = location
        .open_store()
        .with_context(|| format!("opening {}", location.describe()))?;
    let (ledger, writer) = Ledger::start(store, Arc::new(SystemClock), WriterConfig::default())?;
    let result = seed(&ledger);
    drop(ledger);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("ledger writer panicked"))?;
    let (created, existing) = result?;
    say!("Mizan demo ledger at {}", location.describe());
    say!("  {created} transfers created, {existing} already there");
    let mut reader = location.open_reader()?;
    let report = mizan_ledger::verify::verify(&mut *reader)?;
    for (index, handle) in DEMO_PEOPLE.iter().enumerate() {
        let account = reader.accounts(&[AccountId::new(wallet_id(index))?])?;
        let balance = account.first().map(|a| a.balance_posted()).unwrap_or(0);
        let money = Money::from_minor(i64::try_from(balance)?, Currency::USD);
        say!("  @{handle:<8} {:>14}", money.to_string());
    }
    say!(
        "  ledger verified: {} transfers, chain ends in {}",
        report.transfers,
        &report.last_hash[..16]
    );
    Ok(())
}

fn seed(ledger: &Ledger) -> anyhow::Result<(usize, usize)> {
    let accounts = ledger
        .submit_blocking(Submission::accounts(demo_accounts()?))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    for result in &accounts.accounts {
        if !matches!(
            result,
            CreateAccountResult::Ok | CreateAccountResult::Exists
        ) {
            bail!("demo account rejected: {result}");
        }
    }
    let transfers = ledger
        .submit_blocking(Submission::transfers(demo_transfers()?))
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let mut created = 0;
    let mut existing = 0;
    for transfer in &transfers.transfers {
        match transfer.result {
            CreateTransferResult::Ok => created += 1,
            // In a linked chain a replayed first leg reports `exists`, the rest `linked_event_failed`.
            CreateTransferResult::Exists | CreateTransferResult::LinkedEventFailed => existing += 1,
            other => bail!("demo transfer rejected: {other}"),
        }
    }
    Ok((created, existing))
}
