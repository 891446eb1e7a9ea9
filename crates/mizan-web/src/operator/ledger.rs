//! The ledger explorer: the chain head, accounts with their history, transfers with
//! every field, and a verification of the whole chain and every balance.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::cashout::TRANSFER_CODE_CASHOUT;
use mizan_app::payments::{TRANSFER_CODE_FUNDING, TRANSFER_CODE_P2P};
use mizan_core::{AccountId, Money, TransferId};
use mizan_ledger::verify::{VerifyError, VerifyReport};
use mizan_ledger::{currency_of, Account, HistoryFilter, Transfer, TransferFlags};
use serde::Deserialize;

use super::{hex_id, internal, ops_page, place_of, time_of, Ops, OpsError};
use crate::layout::{self, csrf_field, submit, Field};
use mizan_app::operators::OperatorAction;

/// Transfers one page of an account's history shows.
const HISTORY_PAGE_TRANSFERS: usize = 50;

/// One verification at a time: it reads the whole ledger on one reader, and the
/// readers are shared with every request.
static VERIFYING: AtomicBool = AtomicBool::new(false);

/// Minor units on `ledger` as "12.50 USD"; raw minor units when the ledger's
/// currency is unknown or the count does not fit.
fn amount(ledger: u32, minor_units: i128) -> String {
    match (currency_of(ledger), i64::try_from(minor_units)) {
        (Some(currency), Ok(minor)) => format!(
            "{} {}",
            Money::from_minor(minor, currency).format_major(),
            currency.code()
        ),
        _ => format!("{minor_units} minor units"),
    }
}

fn account_link(id: AccountId) -> Markup {
    html! { a href={ "/ops/ledger/accounts/" (id) } { code { (id) } } }
}

fn transfer_link(id: TransferId) -> Markup {
    html! { a href={ "/ops/ledger/transfers/" (id) } { code { (id) } } }
}

fn transfer_code_name(code: u16) -> &'static str {
    match code {
        TRANSFER_CODE_FUNDING => "funding",
        TRANSFER_CODE_P2P => "payment",
        TRANSFER_CODE_CASHOUT => "cash-out",
        _ => "other",
    }
}

/// Every field of an account, and its balances.
pub(super) fn account_details(account: &Account) -> Markup {
    let ledger = account.ledger;
    html! {
        dl.receipt {
            dt { "Account" } dd { (account_link(account.id)) }
            dt { "Ledger" } dd { (ledger) @if let Some(currency) = currency_of(ledger) { " (" (currency.code()) ")" } }
            dt { "Code" } dd { (format!("{:?}", account.code)) " (" (account.code.number()) ")" }
            dt { "Owner" } dd { code { (format!("{:032x}", account.owner)) } }
            dt { "Flags" } dd { (format!("{:?}", account.flags)) }
            dt { "Debits pending" } dd { (amount(ledger, i128::from(account.debits_pending))) }
            dt { "Debits posted" } dd { (amount(ledger, i128::from(account.debits_posted))) }
            dt { "Credits pending" } dd { (amount(ledger, i128::from(account.credits_pending))) }
            dt { "Credits posted" } dd { (amount(ledger, i128::from(account.credits_posted))) }
            dt { "Balance (posted)" } dd.amount { (amount(ledger, account.balance_posted())) }
            dt { "Available" } dd.amount { (amount(ledger, account.balance_available())) }
            dt { "Created" } dd { (time_of(account.timestamp)) }
        }
    }
}

/// Every field of a transfer.
pub(super) fn transfer_details(transfer: &Transfer) -> Markup {
    html! {
        dl.receipt {
            dt { "Transfer" } dd { (transfer_link(transfer.id)) }
            dt { "Debit account" } dd { (account_link(transfer.debit_account_id)) }
            dt { "Credit account" } dd { (account_link(transfer.credit_account_id)) }
            dt { "Amount" } dd.amount { (amount(transfer.ledger, i128::from(transfer.amount))) }
            dt { "Pending transfer" } dd {
                @if transfer.pending_id.is_zero() { "none" } @else { (transfer_link(transfer.pending_id)) }
            }
            dt { "Ledger" } dd { (transfer.ledger) }
            dt { "Code" } dd { (transfer.code) " (" (transfer_code_name(transfer.code)) ")" }
            dt { "Reference" } dd { code { (format!("{:032x}", transfer.reference)) } }
            dt { "Flags" } dd { (format!("{:?}", transfer.flags)) }
            dt { "Timeout" } dd { (transfer.timeout_seconds) " s" }
            @if let Some(expires) = transfer.expires_at_ns() { dt { "Expires" } dd { (time_of(expires)) } }
            dt { "Committed" } dd { (time_of(transfer.timestamp)) " (" (transfer.timestamp) " ns)" }
            dt { "Chain hash" } dd { code.hash { (hex::encode(transfer.hash)) } }
        }
    }
}

fn lookup_form(id: &str, error: Option<&str>) -> Markup {
    html! {
        form.card.inline method="get" action="/ops/ledger/lookup" {
            (Field::new("id", "Account or transfer id").value(id).hint("32 hex digits.").error(error).render())
            (submit("Look up", "Looking up…"))
        }
    }
}

fn verify_form(ops: &Ops) -> Markup {
    html! {
        form.card method="post" action="/ops/ledger/verify" {
            (csrf_field(&ops.visitor))
            p { "Recompute the hash chain and every balance from the transfers, as of one moment. This reads the whole ledger." }
            (submit("Verify the ledger", "Verifying…"))
        }
    }
}

pub async fn ledger_page(State(state): State<AppState>, ops: Ops) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewLedger, "").await?;
    let head = state
        .reader()
        .read(|r| r.chain_head())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let content = html! {
        section.card {
            h2 { "Chain head" }
            dl.receipt {
                dt { "Transfers" } dd { (head.transfers_count) }
                dt { "Last transfer" } dd { @if head.transfers_count == 0 { "none yet" } @else { (time_of(head.last_timestamp)) } }
                dt { "Last hash" } dd { code.hash { (hex::encode(head.last_hash)) } }
            }
        }
        (lookup_form("", None))
        (verify_form(&ops))
    };
    Ok(ops_page("Ledger", &ops, content))
}

#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    #[serde(default)]
    id: String,
}

pub async fn lookup(
    State(state): State<AppState>,
    ops: Ops,
    Query(query): Query<LookupQuery>,
) -> Result<Response, OpsError> {
    let text = query.id.trim();
    ops.audit(&state, OperatorAction::LookUpLedger, text)
        .await?;
    let error = match hex_id(text) {
        None => "An id is 32 hex digits.",
        Some(raw) => match place_of(&state, raw, false).await? {
            Some(place) => return Ok(layout::redirect(&place)),
            None => "No account or transfer has that id.",
        },
    };
    Ok(ops_page("Ledger", &ops, lookup_form(text, Some(error))))
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// The previous page's cursor (a transfer timestamp).
    after: Option<u64>,
}

pub async fn account_page(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewAccount, &id).await?;
    let account_id: AccountId = id.parse().map_err(|_| OpsError::NotFound)?;
    let filter = HistoryFilter {
        after_timestamp: query.after,
        newest_first: true,
        limit: HISTORY_PAGE_TRANSFERS,
        ..HistoryFilter::default()
    };
    let (accounts, page) = state
        .reader()
        .read(move |r| {
            let accounts = r.accounts(&[account_id])?;
            let page = r.account_history(account_id, &filter)?;
            Ok::<_, mizan_ledger::StoreError>((accounts, page))
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let Some(account) = accounts.first() else {
        return Err(OpsError::NotFound);
    };
    let content = html! {
        section.card { (account_details(account)) }
        section.card {
            h2 { "History, newest first" }
            @if page.transfers.is_empty() { p { "No transfers." } }
            @if !page.transfers.is_empty() { ul.activity-list {
                @for transfer in &page.transfers {
                    @let outgoing = transfer.debit_account_id == account_id;
                    @let other = if outgoing { transfer.credit_account_id } else { transfer.debit_account_id };
                    li.activity.in[!outgoing] {
                        (time_of(transfer.timestamp)) " · "
                        (if outgoing { "debit" } else { "credit" }) " "
                        span.amount { (amount(transfer.ledger, i128::from(transfer.amount))) }
                        " · " (transfer_code_name(transfer.code))
                        @if transfer.flags != TransferFlags::NONE { " · " (format!("{:?}", transfer.flags)) }
                        " · with " (account_link(other))
                        " · " (transfer_link(transfer.id))
                    }
                }
            } }
            @if let Some(cursor) = page.next_cursor {
                p { a rel="next" href={ "/ops/ledger/accounts/" (account_id) "?after=" (cursor) } { "Older transfers" } }
            }
        }
    };
    Ok(ops_page("Ledger account", &ops, content))
}

pub async fn transfer_page(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewTransfer, &id).await?;
    let transfer_id: TransferId = id.parse().map_err(|_| OpsError::NotFound)?;
    let (transfers, pending_status) = state
        .reader()
        .read(move |r| {
            let transfers = r.transfers(&[transfer_id])?;
            let status = r.pending_status(transfer_id)?;
            Ok::<_, mizan_ledger::StoreError>((transfers, status))
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let Some(transfer) = transfers.first() else {
        return Err(OpsError::NotFound);
    };
    let content = html! {
        section.card {
            (transfer_details(transfer))
            @if let Some(status) = pending_status {
                dl.receipt { dt { "Pending status" } dd { (format!("{status:?}")) } }
            }
        }
    };
    Ok(ops_page("Ledger transfer", &ops, content))
}

fn report_markup(report: &VerifyReport) -> Markup {
    html! {
        p.notice role="status" { "OK: the chain and every balance verify." }
        dl.receipt {
            dt { "Transfers" } dd { (report.transfers) }
            dt { "Accounts" } dd { (report.accounts) }
            dt { "Last transfer" } dd { @if report.transfers == 0 { "none yet" } @else { (time_of(report.last_timestamp)) } }
            dt { "Last hash" } dd { code.hash { (report.last_hash) } }
        }
        @for (ledger, totals) in &report.ledgers {
            h2 { "Ledger " (ledger) @if let Some(currency) = currency_of(*ledger) { " (" (currency.code()) ")" } }
            dl.receipt {
                dt { "Accounts" } dd { (totals.accounts) }
                dt { "Debits pending" } dd { (amount(*ledger, totals.debits_pending)) }
                dt { "Debits posted" } dd { (amount(*ledger, totals.debits_posted)) }
                dt { "Credits pending" } dd { (amount(*ledger, totals.credits_pending)) }
                dt { "Credits posted" } dd { (amount(*ledger, totals.credits_posted)) }
            }
        }
    }
}

/// Releases the one-verification-at-a-time flag however the verification ends.
struct VerifyingGuard;

impl Drop for VerifyingGuard {
    fn drop(&mut self) {
        VERIFYING.store(false, Ordering::Release);
    }
}

pub async fn verify(
    State(state): State<AppState>,
    ops: Ops,
    body: Bytes,
) -> Result<Response, OpsError> {
    ops.checked_form(&body)?;
    ops.audit(&state, OperatorAction::VerifyLedger, "").await?;
    if VERIFYING.swap(true, Ordering::AcqRel) {
        let content = html! {
            p.error role="alert" { "A verification is already running. Try again when it has finished." }
            (verify_form(&ops))
        };
        return Ok(ops_page("Ledger verification", &ops, content));
    }
    let guard = VerifyingGuard;
    let pool = state.reader();
    // The whole ledger is read: on the blocking pool, never on an async worker.
    let result = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let mut reader = pool.lock();
        mizan_ledger::verify::verify(&mut **reader)
    })
    .await
    .map_err(internal)?;
    let content = match result {
        Ok(report) => report_markup(&report),
        Err(VerifyError::Mismatch(text)) => {
            tracing::error!(%text, "ledger verification failed");
            html! {
                p.error role="alert" { "FAILED: the ledger does not verify." }
                p { "First mismatch: " (text) }
            }
        }
        Err(VerifyError::Store(error)) => return Err(internal(error)),
    };
    Ok(ops_page("Ledger verification", &ops, content))
}
