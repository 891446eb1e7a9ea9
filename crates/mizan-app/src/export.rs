//! A person's own data, as one JSON document they can download at any time: who they
//! are, their wallet, their live sessions, the apps linked to them, and their whole
//! activity, their verification, the personal data the vault holds for them (their
//! legal name, date of birth, address, SSN last 4 and document numbers, each reveal
//! written to the vault's access log) and their cards and bank accounts by last 4.
//! Secrets are never in it (no password hash, no session tokens, no full card or
//! bank numbers).

use serde::Serialize;

use crate::apps::{self, LinkView};
use crate::identity::{self, Person, SessionSummary, SharedReader, WALLET_CURRENCY};
use crate::payments::{internal, PaymentError};
use crate::requests::{self, ActivityItem, ActivityQuery};
use crate::time::rfc3339_from_ns;

/// Most activity items one export carries; `activity_truncated` says when there were more.
pub const EXPORT_ACTIVITY_MAX: usize = 10_000;
const PAGE: &str = "100";

#[derive(Debug, Serialize)]
pub struct Export {
    pub exported_at: String,
    pub person: ExportedPerson,
    pub wallet: ExportedWallet,
    pub sessions: Vec<SessionSummary>,
    pub linked_apps: Vec<LinkView>,
    pub activity: Vec<ActivityItem>,
    pub activity_truncated: bool,
    pub verification: crate::verification::VerificationStatus,
    /// The vault's export: `fields` (kind and value), `tokens` (kind and last 4),
    /// `erased`.
    pub personal_data: serde_json::Value,
    pub saved_cards: Vec<crate::vault::SavedCard>,
}

#[derive(Debug, Serialize)]
pub struct ExportedPerson {
    pub id: String,
    pub handle: String,
    pub email: String,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct ExportedWallet {
    pub account_id: String,
    pub currency: String,
    pub balance: String,
}

/// Everything Mizan holds about `person` that they may see, newest activity first.
pub async fn export(
    reader: &SharedReader,
    vault: &crate::vault::SharedVault,
    person: &Person,
    now_ns: u64,
) -> Result<Export, PaymentError> {
    let verification = crate::verification::status_of(reader, person.id).await?;
    let personal_data = crate::vault::export_own(vault, person.id).await?;
    let saved_cards = crate::vault::saved_cards(reader, person.id).await?;
    let balance = identity::wallet_balance(reader, person.id).await?;
    let sessions = identity::sessions_of(reader, person.id, now_ns).await?;
    let linked_apps = apps::links_of(reader, person.id)
        .await
        .map_err(|error| internal("linked apps", error))?;
    let mut activity = Vec::new();
    let mut cursor: Option<String> = None;
    let mut truncated = false;
    loop {
        let query = ActivityQuery::parse(Some(PAGE), cursor.as_deref(), None)?;
        let page = requests::activity(reader, person.id, query).await?;
        activity.extend(page.items);
        if activity.len() >= EXPORT_ACTIVITY_MAX {
            truncated = activity.len() > EXPORT_ACTIVITY_MAX || page.next_cursor.is_some();
            activity.truncate(EXPORT_ACTIVITY_MAX);
            break;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(Export {
        exported_at: rfc3339_from_ns(now_ns),
        person: ExportedPerson {
            id: person.id.to_string(),
            handle: person.handle.as_str().to_owned(),
            email: person.email.as_str().to_owned(),
            created_at: rfc3339_from_ns(person.created_at_ns),
        },
        wallet: ExportedWallet {
            account_id: person.id.wallet_id(WALLET_CURRENCY)?.to_string(),
            currency: WALLET_CURRENCY.code().to_owned(),
            balance: balance.format_major(),
        },
        sessions,
        linked_apps,
        activity,
        activity_truncated: truncated,
        verification,
        personal_data,
        saved_cards,
    })
}
