//! The reconciler of processor intents: it finishes the fundings and cash-outs a
//! crash (or a lost connection) left between "the processor was called" and "the
//! answer was written".
//!
//! Every intent's first submission writes, with its hold and its claim, an entry in
//! the `open_intents` index (`{kind}|{created_at_ns:020}|{intent id}`); the
//! submission that resolves it deletes the entry in the same atomic write. So the
//! index holds exactly the unresolved intents, in the order they began, and a run
//! reads only those older than [`INTENT_AGE_MIN_SECONDS`] (younger ones may still
//! have their request in flight).
//!
//! For each one the reconciler asks the processor or the bank again under the same
//! intent id — the `Processor` and `Payouts` traits are idempotent per intent, so the
//! answer is the one the interrupted request got — and then finishes it through the
//! same resolution path a request takes, guarded by a `Create` row so that of the
//! reconciler, a second reconciler and a late request exactly one resolves it:
//!
//! - hold still pending: post it (approved / settled) or void it (declined /
//!   returned), with the document, the claim's final answer and the event;
//! - funding hold already expired and the card was charged: credit the wallet with a
//!   new transfer whose id derives from the intent (so at most once);
//! - cash-out hold already expired and the bank paid out: debit the wallet again with
//!   a transfer derived from the intent; if the wallet can no longer cover it the
//!   intent stays open and is logged for an operator, never silently forgotten.
//!
//! A funding waiting for its card challenge stays open until the hold expires; then,
//! if the processor still waits for the answer, it fails (`authentication_failed`).

use mizan_core::{Secret, TransferId};
use mizan_ledger::{BusinessRow, PendingStatus};
use mizan_vault::{Accessor, FieldKind, Reason, Role, TokenId};
use sha2::{Digest, Sha256};

use crate::cashout::{BankAccount, Payouts};
use crate::funding::Processor;
use crate::identity::{PersonId, SharedReader};
use crate::payments::{internal, PaymentError};
use crate::vault::SharedVault;

/// The index of unresolved intents.
pub const COLLECTION_OPEN_INTENTS: &str = "open_intents";
/// An intent younger than this is left alone: its request may still be waiting for
/// the processor.
pub const INTENT_AGE_MIN_SECONDS: u64 = 60;
/// How often `mizan serve` runs the reconciler (and once at start).
pub const RECONCILE_INTERVAL_SECONDS: u64 = 30;
/// Index entries read per page.
pub const RECONCILE_PAGE_INTENTS: usize = 1_000;
/// Most intents of one kind one run looks at; the rest wait for the next run.
pub const RECONCILE_INTENTS_MAX: usize = 100_000;
/// The longest a running server leaves a crashed intent unresolved: its minimum
/// age, then up to one interval until the next run, then the run itself (bounded by
/// one more interval). Holds must outlive it by far (see the assertions below).
pub const RECONCILE_WORST_CASE_SECONDS: u64 =
    INTENT_AGE_MIN_SECONDS + 2 * RECONCILE_INTERVAL_SECONDS;

// A cash-out hold must still be pending when the reconciler gets to it, or the bank's
// payout would meet money already back in the wallet.
const _: () = assert!(
    crate::cashout::CASHOUT_PENDING_TIMEOUT_SECONDS as u64 > 100 * RECONCILE_WORST_CASE_SECONDS
);
const _: () = assert!(
    crate::funding::FUNDING_PENDING_TIMEOUT_SECONDS as u64 > 10 * RECONCILE_WORST_CASE_SECONDS
);

/// The vault actor of the reconciler's reveals (in the access log).
const RECONCILER_ACTOR: &str = "mizan-reconciler";

/// The kinds of intent the index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntentKind {
    Funding,
    Cashout,
}

impl IntentKind {
    fn prefix(self) -> &'static str {
        match self {
            IntentKind::Funding => "funding|",
            IntentKind::Cashout => "cashout|",
        }
    }
}

/// The index entry of an intent; time-ordered within its kind.
pub(crate) fn open_intent_key(kind: IntentKind, created_at_ns: u64, intent_id: &str) -> String {
    format!("{}{created_at_ns:020}|{intent_id}", kind.prefix())
}

/// The row that opens an intent in the index (in its first submission).
pub(crate) fn open_intent_row(
    kind: IntentKind,
    created_at_ns: u64,
    intent_id: &str,
) -> BusinessRow {
    BusinessRow::Document {
        collection: COLLECTION_OPEN_INTENTS.to_owned(),
        key: open_intent_key(kind, created_at_ns, intent_id),
        body: Vec::new(),
    }
}

/// The row that closes it (in the submission that resolves it).
pub(crate) fn close_intent_row(
    kind: IntentKind,
    created_at_ns: u64,
    intent_id: &str,
) -> BusinessRow {
    BusinessRow::Delete {
        collection: COLLECTION_OPEN_INTENTS.to_owned(),
        key: open_intent_key(kind, created_at_ns, intent_id),
    }
}

/// The id of the transfer that applies an intent after its hold expired: derived
/// from the intent, so it can be written once only.
pub(crate) fn late_transfer_id(domain: &[u8], intent_id: &str) -> Result<TransferId, PaymentError> {
    let digest = Sha256::new()
        .chain_update(domain)
        .chain_update([0])
        .chain_update(intent_id.as_bytes())
        .finalize();
    let mut raw = [0_u8; 16];
    raw.copy_from_slice(&digest[..16]);
    let value = u128::from_be_bytes(raw);
    // 0 and u128::MAX are reserved ids; one in 2^127 digests is either.
    let value = if value == 0 || value == u128::MAX {
        1
    } else {
        value
    };
    TransferId::new(value).map_err(|error| internal("late transfer id", error))
}

/// What the reconciler did with one intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reconciled {
    /// Its hold was posted or voided, its claim answered.
    Finished,
    /// Its hold had expired; the processor's answer was applied by a new transfer
    /// (or, for a refusal, only recorded).
    AppliedAfterExpiry,
    /// Someone else (a request, another reconciler) resolved it first.
    AlreadyResolved,
    /// Not finished yet (a challenge still waiting, a wallet that can't cover a late
    /// payout); it stays in the index.
    StillOpen,
    /// The index names an intent whose document does not exist.
    Orphan,
}

/// One run's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub finished: usize,
    pub applied_after_expiry: usize,
    pub already_resolved: usize,
    pub still_open: usize,
    pub failed: usize,
}

impl ReconcileReport {
    fn count(&mut self, outcome: Result<Reconciled, PaymentError>, kind: IntentKind, id: &str) {
        match outcome {
            Ok(Reconciled::Finished) => self.finished += 1,
            Ok(Reconciled::AppliedAfterExpiry) => self.applied_after_expiry += 1,
            Ok(Reconciled::AlreadyResolved) => self.already_resolved += 1,
            Ok(Reconciled::StillOpen) => self.still_open += 1,
            Ok(Reconciled::Orphan) => self.failed += 1,
            Err(error) => {
                self.failed += 1;
                tracing::error!(intent = %id, ?kind, %error, "reconciling an intent failed");
            }
        }
    }
}

/// The outside world the reconciler asks again.
#[derive(Clone, Copy)]
pub struct Rails<'a> {
    pub processor: &'a dyn Processor,
    pub payouts: &'a dyn Payouts,
    pub vault: &'a SharedVault,
}

/// Finishes every intent left open for longer than [`INTENT_AGE_MIN_SECONDS`] at
/// `now_ns` (at most about [`RECONCILE_INTENTS_MAX`] of each kind). Running it twice, or
/// on two servers at once, resolves each intent once.
#[tracing::instrument(skip_all)]
pub async fn reconcile(
    ledger: &mizan_ledger::Ledger,
    reader: &SharedReader,
    rails: Rails<'_>,
    now_ns: u64,
) -> Result<ReconcileReport, PaymentError> {
    let cutoff_ns = now_ns.saturating_sub(INTENT_AGE_MIN_SECONDS.saturating_mul(1_000_000_000));
    let mut report = ReconcileReport::default();
    for kind in [IntentKind::Funding, IntentKind::Cashout] {
        let mut after: Option<String> = None;
        let mut seen = 0_usize;
        loop {
            let (due, last_key) = due_intents(reader, kind, cutoff_ns, after.take()).await?;
            seen += due.len();
            reconcile_page(ledger, reader, rails, kind, due, now_ns, &mut report).await;
            // Intents left open (a challenge still waiting) must not starve the
            // ones behind them: page on while entries are due.
            match last_key {
                Some(key) if seen < RECONCILE_INTENTS_MAX => after = Some(key),
                _ => break,
            }
        }
    }
    if report != ReconcileReport::default() {
        tracing::info!(?report, "reconciled open intents");
    }
    Ok(report)
}

async fn reconcile_page(
    ledger: &mizan_ledger::Ledger,
    reader: &SharedReader,
    rails: Rails<'_>,
    kind: IntentKind,
    due: Vec<(u64, String)>,
    now_ns: u64,
    report: &mut ReconcileReport,
) {
    for (created_at_ns, id) in due {
        let outcome = match kind {
            IntentKind::Funding => {
                crate::funding::reconcile_funding(ledger, reader, rails, &id, now_ns).await
            }
            IntentKind::Cashout => {
                crate::cashout::reconcile_cashout(ledger, reader, rails, &id, now_ns).await
            }
        };
        let outcome = match outcome {
            Ok(Reconciled::Orphan) => forget_orphan(ledger, kind, created_at_ns, &id).await,
            other => other,
        };
        report.count(outcome, kind, &id);
    }
}

/// One page of index entries older than `cutoff_ns` after `after`, oldest first:
/// (created at, intent id), and the key to continue after when there may be more.
async fn due_intents(
    reader: &SharedReader,
    kind: IntentKind,
    cutoff_ns: u64,
    after: Option<String>,
) -> Result<(Vec<(u64, String)>, Option<String>), PaymentError> {
    let page = crate::documents::with_prefix(
        reader,
        COLLECTION_OPEN_INTENTS,
        kind.prefix().to_owned(),
        after,
        RECONCILE_PAGE_INTENTS,
    )
    .await
    .map_err(|error| internal("open intents", error))?;
    let full = page.len() == RECONCILE_PAGE_INTENTS;
    let mut last_key = None;
    let mut due = Vec::new();
    for (key, _) in page {
        let entry = key
            .strip_prefix(kind.prefix())
            .and_then(|rest| rest.split_once('|'))
            .and_then(|(time, id)| Some((time.parse::<u64>().ok()?, id.to_owned())));
        let Some((created_at_ns, id)) = entry else {
            return Err(internal("open intent key", key));
        };
        if created_at_ns > cutoff_ns {
            return Ok((due, None));
        }
        due.push((created_at_ns, id));
        last_key = Some(key);
    }
    Ok((due, last_key.filter(|_| full)))
}

/// An index entry whose intent document is missing is a bug, not money: it is
/// logged and removed so that it is not retried for ever.
async fn forget_orphan(
    ledger: &mizan_ledger::Ledger,
    kind: IntentKind,
    created_at_ns: u64,
    id: &str,
) -> Result<Reconciled, PaymentError> {
    tracing::error!(intent = %id, ?kind, "an open intent without its document");
    crate::documents::submit_rows(ledger, vec![close_intent_row(kind, created_at_ns, id)])
        .await
        .map_err(|error| internal("closing an orphan intent", error))?;
    Ok(Reconciled::Orphan)
}

/// The ledger's status of an intent's hold.
pub(crate) async fn hold_status(
    reader: &SharedReader,
    pending_id: TransferId,
) -> Result<PendingStatus, PaymentError> {
    reader
        .read(move |r| r.pending_status(pending_id))
        .await
        .map_err(|error| internal("reading a hold", error))?
        .map_err(|error| internal("reading a hold", error))?
        .ok_or_else(|| internal("an intent without its hold", pending_id))
}

/// The card number behind a funding's token, revealed to ask the processor again.
pub(crate) async fn reveal_card(
    vault: &SharedVault,
    person: PersonId,
    token: &str,
) -> Result<Secret<String>, PaymentError> {
    reveal(vault, person, token, FieldKind::CardNumber).await
}

/// The bank account behind a cash-out's token (stored as routing then account).
pub(crate) async fn reveal_bank_account(
    vault: &SharedVault,
    person: PersonId,
    token: &str,
) -> Result<BankAccount, PaymentError> {
    let joined = reveal(vault, person, token, FieldKind::BankAccountNumber).await?;
    let digits = joined.expose();
    let (routing, account) = digits
        .split_at_checked(9)
        .ok_or_else(|| internal("stored bank account", "too short"))?;
    BankAccount::parse(routing, Secret::new(account.to_owned()))
}

async fn reveal(
    vault: &SharedVault,
    person: PersonId,
    token: &str,
    kind: FieldKind,
) -> Result<Secret<String>, PaymentError> {
    let owner = crate::vault::vault_person(person).map_err(crate::vault::payment_error)?;
    let token =
        TokenId::parse(token).map_err(|error| internal("stored intent token", error.code()))?;
    crate::vault::blocking(vault, move |vault| {
        let info = vault.token_info(&token)?;
        if info.person != owner || info.token.kind() != kind {
            return Err(mizan_vault::VaultError::NotFound("token"));
        }
        let accessor = Accessor::new(Role::PaymentProcessing, RECONCILER_ACTOR)?;
        let reason = Reason::parse("asking the processor again about an unresolved intent")?;
        vault.reveal_token(&accessor, &reason, &token)
    })
    .await
    .map_err(crate::vault::payment_error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn index_keys_sort_by_time_within_a_kind() {
        let early = open_intent_key(IntentKind::Funding, 5, "b");
        let late = open_intent_key(IntentKind::Funding, 40, "a");
        assert!(early < late);
        assert!(early.starts_with("funding|"));
        assert!(open_intent_key(IntentKind::Cashout, 5, "b").starts_with("cashout|"));
    }

    #[test]
    fn late_transfer_ids_derive_from_the_intent_and_domain() {
        let one = late_transfer_id(b"a", "intent").unwrap();
        assert_eq!(one, late_transfer_id(b"a", "intent").unwrap());
        assert_ne!(one, late_transfer_id(b"b", "intent").unwrap());
        assert_ne!(one, late_transfer_id(b"a", "other").unwrap());
    }
}
