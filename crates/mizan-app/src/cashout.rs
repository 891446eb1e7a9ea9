//! Cash-out: money leaving a wallet for a bank account, through a [`Payouts`] rail.
//!
//! The mirror of funding: the first submission holds the amount (pending wallet →
//! processor clearing, so the wallet's available balance drops at once and it cannot
//! be spent twice), claims the `Idempotency-Key` and writes the cash-out `pending`;
//! on settlement the hold posts, on a return it is voided and the money is back. A
//! hold a crash leaves unresolved is finished by the reconciler ([`crate::reconcile`]),
//! which asks the bank again under the intent id long before the hold's
//! [`CASHOUT_PENDING_TIMEOUT_SECONDS`]: a payout the bank made must never come back to
//! the wallet too. The account is tokenized in the vault; documents keep its token and last
//! four digits only.

use mizan_core::{AccountId, Money, Secret, TransferId};
use mizan_ledger::{ledger_of, BusinessRow, CreateTransferResult, Ledger, PendingStatus};
use mizan_ledger::{TransferFlags, TransferRequest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::funding::{resolve_intent, submit_intent, Held, IntentClaim, Resolution, Resolved};
use crate::identity::{self, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    idempotency_key, internal, time_ordered_u128, to_json, IdempotencyKey, PaymentError,
    COLLECTION_IDEMPOTENCY, PROCESSOR_CLEARING_USD,
};
use crate::reconcile::{self, IntentKind, Rails, Reconciled};

pub const COLLECTION_CASHOUTS: &str = "cashouts";
pub const TOPIC_CASHOUT_SETTLED: &str = "cashout.settled";
pub const TOPIC_CASHOUT_RETURNED: &str = "cashout.returned";
pub const TRANSFER_CODE_CASHOUT: u16 = 3;
/// A bank transfer settles within days; the reconciler resolves a hold a crash left
/// open within minutes ([`reconcile::RECONCILE_WORST_CASE_SECONDS`]), so a hold
/// that still expires after a week means the server was down that long.
pub const CASHOUT_PENDING_TIMEOUT_SECONDS: u32 = 7 * 24 * 3_600;
/// The one resolution of each cash-out: of the request and the reconciler, one wins.
pub const COLLECTION_CASHOUT_RESOLUTIONS: &str = "cashout_resolutions";
pub const ACCOUNT_DIGITS_MIN: usize = 4;
pub const ACCOUNT_DIGITS_MAX: usize = 17;
const CASHOUT_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.cashout.v1";
/// Domain separator of the debit that applies a payout after its hold expired.
const CASHOUT_LATE_DEBIT_DOMAIN: &[u8] = b"mizan.cashout.late-debit.v1";

/// A US bank account: a 9-digit routing number (with its ABA checksum) and a
/// 4–17 digit account number, which prints as `***`.
#[derive(Debug, Clone)]
pub struct BankAccount {
    routing: String,
    account: Secret<String>,
}

impl BankAccount {
    pub fn parse(routing: &str, account: Secret<String>) -> Result<BankAccount, PaymentError> {
        let digits = |text: &str| text.bytes().all(|byte| byte.is_ascii_digit());
        if routing.len() != 9 || !digits(routing) || !aba_checksum_ok(routing) {
            return Err(PaymentError::RoutingNumberInvalid);
        }
        let number = account.expose();
        if !(ACCOUNT_DIGITS_MIN..=ACCOUNT_DIGITS_MAX).contains(&number.len()) || !digits(number) {
            return Err(PaymentError::AccountNumberInvalid);
        }
        Ok(BankAccount {
            routing: routing.to_owned(),
            account,
        })
    }

    pub fn last4(&self) -> String {
        let number = self.account.expose();
        number[number.len() - 4..].to_owned()
    }

    pub fn routing(&self) -> &str {
        &self.routing
    }
}

/// The ABA routing number checksum: 3·(d1+d4+d7) + 7·(d2+d5+d8) + (d3+d6+d9) ≡ 0 (mod 10).
fn aba_checksum_ok(routing: &str) -> bool {
    let weights = [3, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = routing
        .bytes()
        .zip(weights)
        .map(|(byte, weight)| u32::from(byte - b'0') * weight)
        .sum();
    sum.is_multiple_of(10)
}

/// Why a bank sent a payout back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnReason {
    AccountClosed,
    NoAccount,
}

impl std::fmt::Display for ReturnReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            ReturnReason::AccountClosed => "account_closed",
            ReturnReason::NoAccount => "no_account",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutDecision {
    Settled,
    Returned(ReturnReason),
}

/// A payout rail (ACH, RTP…). `intent` is the rail-side idempotency key.
pub trait Payouts: Send + Sync {
    fn payout(&self, intent: &str, account: &BankAccount, amount: Money) -> PayoutDecision;
}

/// The deterministic sandbox, by account number: ending `0000` → returned
/// (`account_closed`), ending `9999` → returned (`no_account`), anything else settles.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxPayouts;

impl Payouts for SandboxPayouts {
    fn payout(&self, _intent: &str, account: &BankAccount, _amount: Money) -> PayoutDecision {
        match account.last4().as_str() {
            "0000" => PayoutDecision::Returned(ReturnReason::AccountClosed),
            "9999" => PayoutDecision::Returned(ReturnReason::NoAccount),
            _ => PayoutDecision::Settled,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CashoutStatus {
    Pending,
    Settled,
    Returned,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CashoutDocument {
    id: String,
    person: String,
    amount_minor: i64,
    currency: String,
    routing: String,
    account_last4: String,
    /// The account's vault token (`tok_bank_…`); the number is only in the vault.
    #[serde(default)]
    account_token: String,
    status: CashoutStatus,
    return_reason: Option<ReturnReason>,
    pending_transfer_id: String,
    created_at_ns: u64,
    /// The key's `idempotency` claim, so the reconciler can answer it.
    #[serde(default)]
    claim_key: String,
}

type CashoutClaim = IntentClaim<ReturnReason>;

/// A cash-out that settled, first time or replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashoutOutcome {
    pub id: String,
    pub amount: Money,
    pub replayed: bool,
}

fn fingerprint(person: PersonId, amount: Money, account: &BankAccount) -> String {
    let canonical = format!(
        "cashout|{person}|{}|{}|{}|{}",
        amount.minor_units(),
        amount.currency().code(),
        account.routing,
        account.last4()
    );
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Sends `amount` from the person's wallet to a bank account, once per key. The
/// person's legal name is screened against the sanctions list first: a hit freezes
/// them, and the freeze check in [`crate::limits::prepare`] refuses the cash-out.
#[tracing::instrument(skip_all, fields(%person))]
#[allow(clippy::too_many_arguments)]
pub async fn cash_out(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    payouts: &dyn Payouts,
    vault: &crate::vault::SharedVault,
    screener: &crate::sanctions::SharedScreener,
    person: PersonId,
    amount: Money,
    account: BankAccount,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<CashoutOutcome, PaymentError> {
    let token =
        crate::vault::tokenize_bank_account(vault, person, &account.routing, &account.account)
            .await?;
    let request_sha256 = fingerprint(person, amount, &account);
    let claim_key = idempotency_key(person, &key);
    let pending_id = TransferId::new(time_ordered_u128(
        CASHOUT_TRANSFER_ID_DOMAIN,
        person,
        &key,
        now_ns,
    ))
    .map_err(|error| internal("cash-out transfer id", error))?;
    let clearing = AccountId::new(PROCESSOR_CLEARING_USD)
        .map_err(|error| internal("clearing account", error))?;
    let mut document = CashoutDocument {
        id: format!("{:032x}", pending_id.get()),
        person: person.to_string(),
        amount_minor: amount.minor_units(),
        currency: amount.currency().code().to_owned(),
        routing: account.routing.clone(),
        account_last4: account.last4(),
        account_token: token.token.as_str().to_owned(),
        status: CashoutStatus::Pending,
        return_reason: None,
        pending_transfer_id: pending_id.to_string(),
        created_at_ns: now_ns,
        claim_key: claim_key.clone(),
    };
    let claim = CashoutClaim {
        request_sha256: request_sha256.clone(),
        claimed_at_ns: now_ns,
        intent_id: document.id.clone(),
        amount_minor: amount.minor_units(),
        failure: None,
        resolved: false,
        requires_action: false,
    };
    let hold = TransferRequest::single(
        pending_id,
        person.wallet_id(WALLET_CURRENCY)?,
        clearing,
        amount.minor_units(),
        ledger_of(WALLET_CURRENCY),
        TRANSFER_CODE_CASHOUT,
    )
    .with_flags(TransferFlags::PENDING)
    .with_timeout(CASHOUT_PENDING_TIMEOUT_SECONDS);
    let claim_row = BusinessRow::Create {
        collection: COLLECTION_IDEMPOTENCY.to_owned(),
        key: claim_key.clone(),
        body: to_json(&claim)?,
    };
    let index_row = reconcile::open_intent_row(IntentKind::Cashout, now_ns, &document.id);
    crate::sanctions::screen_before_cashout(ledger, reader, vault, screener, person, now_ns)
        .await
        .map_err(|error| internal("sanctions screening", error))?;
    let charge = crate::limits::prepare(
        reader,
        limits,
        person,
        crate::limits::Movement::Cashout,
        now_ns,
    )
    .await?;
    let held = submit_intent(
        ledger,
        hold,
        Some(&charge),
        COLLECTION_CASHOUTS,
        &document.id,
        &document,
        vec![claim_row, index_row],
        None,
    )
    .await?;
    match held {
        Held::Claimed(CreateTransferResult::Ok) => {}
        Held::Claimed(CreateTransferResult::ExceedsCredits) => {
            return Err(PaymentError::InsufficientFunds)
        }
        Held::Claimed(other) => return Err(internal("cash-out hold", format!("{other:?}"))),
        Held::KeyTaken => {
            let stored = identity::read_document(reader, COLLECTION_IDEMPOTENCY, claim_key)
                .await?
                .ok_or_else(|| internal("claim taken but unreadable", &document.id))?;
            let stored: IntentClaim<ReturnReason> =
                serde_json::from_slice(&stored).map_err(|_| PaymentError::IdempotencyKeyReused)?;
            let answer = stored.answer(&request_sha256, PaymentError::CashoutReturned)?;
            return Ok(CashoutOutcome {
                id: answer.intent_id,
                amount: Money::from_minor(answer.amount_minor, WALLET_CURRENCY),
                replayed: true,
            });
        }
    }
    let decision = payouts.payout(&document.id, &account, amount);
    if !settle(ledger, &mut document, claim, decision, now_ns).await? {
        // The reconciler resolved it first, with the bank's same answer.
        tracing::info!(cashout = %document.id, "cash-out resolved by the reconciler");
    }
    match decision {
        PayoutDecision::Settled => {
            tracing::info!(cashout = %document.id, "cash-out settled");
            Ok(CashoutOutcome {
                id: document.id,
                amount,
                replayed: false,
            })
        }
        PayoutDecision::Returned(reason) => {
            tracing::info!(cashout = %document.id, %reason, "cash-out returned");
            Err(PaymentError::CashoutReturned(reason))
        }
    }
}

/// Writes the bank's answer into the document and the claim; the event's topic.
fn record_decision(
    document: &mut CashoutDocument,
    claim: &mut CashoutClaim,
    decision: PayoutDecision,
) -> &'static str {
    claim.resolved = true;
    match decision {
        PayoutDecision::Settled => {
            document.status = CashoutStatus::Settled;
            TOPIC_CASHOUT_SETTLED
        }
        PayoutDecision::Returned(reason) => {
            document.status = CashoutStatus::Returned;
            document.return_reason = Some(reason);
            claim.failure = Some(reason);
            TOPIC_CASHOUT_RETURNED
        }
    }
}

/// The `Create` row every resolution of a cash-out carries.
fn resolution_guard(document: &CashoutDocument) -> BusinessRow {
    BusinessRow::Create {
        collection: COLLECTION_CASHOUT_RESOLUTIONS.to_owned(),
        key: document.id.clone(),
        body: Vec::new(),
    }
}

/// Posts (settled) or voids (returned) the hold with the document, the claim's
/// answer and the event; false when someone else resolved it first.
async fn settle(
    ledger: &Ledger,
    document: &mut CashoutDocument,
    mut claim: CashoutClaim,
    decision: PayoutDecision,
    now_ns: u64,
) -> Result<bool, PaymentError> {
    let pending_id: TransferId = document
        .pending_transfer_id
        .parse()
        .map_err(|error| internal("stored pending id", error))?;
    let topic = record_decision(document, &mut claim, decision);
    let resolution = Resolution {
        pending_id,
        post: decision == PayoutDecision::Settled,
        collection: COLLECTION_CASHOUTS,
        id: &document.id,
        claim_key: document.claim_key.clone(),
        topic,
        now_ns,
        guard: Some(resolution_guard(document)),
        closes: vec![reconcile::close_intent_row(
            IntentKind::Cashout,
            document.created_at_ns,
            &document.id,
        )],
    };
    match resolve_intent(ledger, resolution, &*document, &claim).await? {
        Resolved::Done => Ok(true),
        Resolved::Taken => Ok(false),
        // The bank answered after the week-long hold: apply its answer anyway.
        Resolved::HoldExpired => {
            let person = PersonId::parse(&document.person)?;
            let late =
                apply_after_expiry(ledger, person, document.clone(), claim, decision, now_ns);
            match late.await? {
                Reconciled::AppliedAfterExpiry => Ok(true),
                Reconciled::AlreadyResolved => Ok(false),
                other => Err(internal("late cash-out", format!("{other:?}"))),
            }
        }
    }
}

/// Finishes one open cash-out for the reconciler ([`crate::reconcile`]): asks the
/// bank again under the cash-out's id, then posts or voids the hold; if the hold
/// expired and the bank paid out, debits the wallet again (a transfer derived from
/// the cash-out id), or leaves the intent open for an operator when it can't.
pub(crate) async fn reconcile_cashout(
    ledger: &Ledger,
    reader: &SharedReader,
    rails: Rails<'_>,
    id: &str,
    now_ns: u64,
) -> Result<Reconciled, PaymentError> {
    let Some(stored) = identity::read_document(reader, COLLECTION_CASHOUTS, id.to_owned()).await?
    else {
        return Ok(Reconciled::Orphan);
    };
    let mut document: CashoutDocument =
        serde_json::from_slice(&stored).map_err(|error| internal("stored cash-out", error))?;
    let claim: CashoutClaim =
        identity::read_document(reader, COLLECTION_IDEMPOTENCY, document.claim_key.clone())
            .await?
            .map(|body| serde_json::from_slice(&body))
            .transpose()
            .map_err(|error| internal("stored claim", error))?
            .ok_or_else(|| internal("cash-out without its claim", id))?;
    let person = PersonId::parse(&document.person)?;
    let account =
        reconcile::reveal_bank_account(rails.vault, person, &document.account_token).await?;
    let amount = Money::from_minor(document.amount_minor, WALLET_CURRENCY);
    let decision = rails.payouts.payout(&document.id, &account, amount);
    let pending_id: TransferId = document
        .pending_transfer_id
        .parse()
        .map_err(|error| internal("stored pending id", error))?;
    match reconcile::hold_status(reader, pending_id).await? {
        PendingStatus::Pending => Ok(
            match settle(ledger, &mut document, claim, decision, now_ns).await? {
                true => Reconciled::Finished,
                false => Reconciled::AlreadyResolved,
            },
        ),
        PendingStatus::Expired => {
            apply_after_expiry(ledger, person, document, claim, decision, now_ns).await
        }
        PendingStatus::Posted | PendingStatus::Voided => {
            Err(internal("a cash-out still open over a resolved hold", id))
        }
    }
}

/// A cash-out whose hold expired (the money went back to the wallet) before the
/// bank's answer was written: a payout the bank made takes the money again, by a
/// transfer derived from the cash-out id; a return is only recorded.
async fn apply_after_expiry(
    ledger: &Ledger,
    person: PersonId,
    mut document: CashoutDocument,
    mut claim: CashoutClaim,
    decision: PayoutDecision,
    now_ns: u64,
) -> Result<Reconciled, PaymentError> {
    let topic = record_decision(&mut document, &mut claim, decision);
    let rows = vec![
        BusinessRow::Document {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: document.claim_key.clone(),
            body: to_json(&claim)?,
        },
        resolution_guard(&document),
        reconcile::close_intent_row(IntentKind::Cashout, document.created_at_ns, &document.id),
    ];
    let PayoutDecision::Settled = decision else {
        let mut rows = rows;
        let body = to_json(&document)?;
        rows.push(BusinessRow::Document {
            collection: COLLECTION_CASHOUTS.to_owned(),
            key: document.id.clone(),
            body: body.clone(),
        });
        rows.push(crate::outbox::event_row(topic, &body, now_ns));
        let taken = crate::documents::submit_rows(ledger, rows)
            .await
            .map_err(|error| internal("recording a late return", error))?;
        return Ok(match taken {
            Some(_) => Reconciled::AlreadyResolved,
            None => Reconciled::AppliedAfterExpiry,
        });
    };
    let clearing = AccountId::new(PROCESSOR_CLEARING_USD)
        .map_err(|error| internal("clearing account", error))?;
    let transfer = TransferRequest::single(
        reconcile::late_transfer_id(CASHOUT_LATE_DEBIT_DOMAIN, &document.id)?,
        person.wallet_id(WALLET_CURRENCY)?,
        clearing,
        document.amount_minor,
        ledger_of(WALLET_CURRENCY),
        TRANSFER_CODE_CASHOUT,
    );
    let submitted = submit_intent(
        ledger,
        transfer,
        None,
        COLLECTION_CASHOUTS,
        &document.id,
        &document,
        rows,
        Some((topic, now_ns)),
    )
    .await?;
    match submitted {
        Held::Claimed(CreateTransferResult::Ok) => {
            tracing::warn!(cashout = %document.id, "a payout debited after its hold expired");
            Ok(Reconciled::AppliedAfterExpiry)
        }
        Held::KeyTaken => Ok(Reconciled::AlreadyResolved),
        Held::Claimed(CreateTransferResult::ExceedsCredits) => {
            tracing::error!(
                cashout = %document.id,
                "the bank paid out after the hold expired and the wallet no longer covers it; left open for an operator"
            );
            Ok(Reconciled::StillOpen)
        }
        Held::Claimed(other) => Err(internal("late cash-out debit", format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn account(number: &str) -> Result<BankAccount, PaymentError> {
        BankAccount::parse("011000015", Secret::new(number.to_owned()))
    }

    #[test]
    fn routing_numbers_are_checked_and_accounts_never_print() {
        let good = account("000123456789").unwrap();
        assert_eq!(good.last4(), "6789");
        assert!(!format!("{good:?}").contains("123456789"));
        assert!(aba_checksum_ok("021000021"));
        assert!(!aba_checksum_ok("021000022"));
        for bad in ["12345678", "0110000150", "01100001x", "011000016"] {
            let error = BankAccount::parse(bad, Secret::new("1234".into())).unwrap_err();
            assert_eq!(error, PaymentError::RoutingNumberInvalid, "{bad}");
        }
        for bad in ["123", "123456789012345678", "12a4"] {
            assert_eq!(
                account(bad).unwrap_err(),
                PaymentError::AccountNumberInvalid
            );
        }
    }

    #[test]
    fn the_sandbox_decides_by_account_number() {
        let amount = Money::from_minor(100, WALLET_CURRENCY);
        let rail = SandboxPayouts;
        let decide = |number: &str| rail.payout("i", &account(number).unwrap(), amount);
        assert_eq!(decide("000123456789"), PayoutDecision::Settled);
        assert_eq!(
            decide("000123450000"),
            PayoutDecision::Returned(ReturnReason::AccountClosed)
        );
        assert_eq!(
            decide("000123459999"),
            PayoutDecision::Returned(ReturnReason::NoAccount)
        );
    }
}
