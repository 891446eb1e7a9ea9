//! Operators: the people who run the platform. This module owns their sessions
//! (opened in the web console with the server's operator token) and the audit log of
//! everything they look at and do.
//!
//! Session tokens leave the server once, in a cookie, and are stored only as their
//! SHA-256. The audit log is append-only: every entry is a `Create` row keyed by
//! inverted time, so a prefix scan reads the newest first. A caller writes the audit
//! entry before it shows what was asked for; a failed write shows nothing.

use std::fmt;

use mizan_core::Secret;
use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::SharedReader;

pub const COLLECTION_OPERATOR_SESSIONS: &str = "operator_sessions";
pub const COLLECTION_OPERATOR_AUDIT: &str = "operator_audit";
/// Eight hours: one working shift.
pub const OPERATOR_SESSION_LIFETIME_SECONDS: u64 = 8 * 3_600;
pub const OPERATOR_NAME_CHARS_MAX: usize = 40;
/// Bytes of randomness in an operator session token (hex-encoded: twice as many chars).
pub const OPERATOR_SESSION_TOKEN_BYTES: usize = 32;
/// Longest audit target kept; longer ones (a pasted search) are cut.
pub const AUDIT_TARGET_CHARS_MAX: usize = 200;
/// Most audit entries one read answers.
pub const AUDIT_ENTRIES_MAX: usize = 100;
/// Bytes of randomness after the time in an audit key (two entries in one nanosecond).
const AUDIT_KEY_RANDOM_BYTES: usize = 8;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("an operator name is 1 to 40 letters, digits, spaces, dots, underscores or hyphens")]
    InvalidName,
    #[error("missing, unknown, expired or revoked operator session")]
    Unauthenticated,
    #[error("the operator's role does not allow this")]
    Forbidden,
    /// A bug or a store failure; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

fn internal(context: &str, error: impl fmt::Display) -> OperatorError {
    OperatorError::Internal(format!("{context}: {error}"))
}

/// Who an operator says they are: 1–40 letters, digits, spaces, `.`, `_` or `-`,
/// trimmed. Not a proof of identity (the token is shared); it names the audit entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorName(String);

impl OperatorName {
    pub fn parse(text: &str) -> Result<OperatorName, OperatorError> {
        let name = text.trim();
        let length = name.chars().count();
        let allowed = name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'));
        if (1..=OPERATOR_NAME_CHARS_MAX).contains(&length) && allowed {
            Ok(OperatorName(name.to_owned()))
        } else {
            Err(OperatorError::InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an operator may do. The server's operator token grants `Admin`; `Support`
/// is for operators who help people and need not run ledger checks or read the audit;
/// `Analytics` (product analytics, growth, ads) sees the dashboard's aggregates and
/// nothing about any person, payment or their personal data: the wall between
/// payments and ads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    Admin,
    Support,
    Analytics,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Admin => "admin",
            OperatorRole::Support => "support",
            OperatorRole::Analytics => "analytics",
        }
    }

    pub fn parse(text: &str) -> Option<OperatorRole> {
        [
            OperatorRole::Admin,
            OperatorRole::Support,
            OperatorRole::Analytics,
        ]
        .into_iter()
        .find(|role| role.as_str() == text)
    }

    /// The role this operator acts under in the vault, whose permission matrix
    /// (`mizan_vault::may_reveal`) decides which fields a reveal may show: admins
    /// are compliance officers (no full card numbers), support sees names, birth
    /// dates and addresses, analytics nothing.
    pub fn vault_role(self) -> mizan_vault::Role {
        match self {
            OperatorRole::Admin => mizan_vault::Role::ComplianceOfficer,
            OperatorRole::Support => mizan_vault::Role::SupportAgent,
            OperatorRole::Analytics => mizan_vault::Role::Analytics,
        }
    }

    /// Whether this role may take `action`.
    pub fn may(self, action: OperatorAction) -> bool {
        match self {
            OperatorRole::Admin => true,
            OperatorRole::Support => match action {
                OperatorAction::VerifyLedger
                | OperatorAction::ViewAudit
                | OperatorAction::DecideCase
                | OperatorAction::ReloadSanctions
                | OperatorAction::ExportReport
                | OperatorAction::SetLicence => false,
                OperatorAction::LogIn
                | OperatorAction::LogOut
                | OperatorAction::ViewDashboard
                | OperatorAction::Search
                | OperatorAction::ViewPerson
                | OperatorAction::ViewPayment
                | OperatorAction::ViewLedger
                | OperatorAction::LookUpLedger
                | OperatorAction::ViewAccount
                | OperatorAction::ViewTransfer
                | OperatorAction::ViewWebhooks
                | OperatorAction::RevealPersonalData
                | OperatorAction::ViewCases
                | OperatorAction::ViewCase
                | OperatorAction::OpenCase
                | OperatorAction::AssignCase
                | OperatorAction::NoteCase
                | OperatorAction::ScanMonitoring => true,
            },
            OperatorRole::Analytics => match action {
                OperatorAction::LogIn | OperatorAction::LogOut | OperatorAction::ViewDashboard => {
                    true
                }
                OperatorAction::Search
                | OperatorAction::ViewPerson
                | OperatorAction::ViewPayment
                | OperatorAction::ViewLedger
                | OperatorAction::LookUpLedger
                | OperatorAction::ViewAccount
                | OperatorAction::ViewTransfer
                | OperatorAction::VerifyLedger
                | OperatorAction::ViewWebhooks
                | OperatorAction::ViewAudit
                | OperatorAction::RevealPersonalData
                | OperatorAction::ViewCases
                | OperatorAction::ViewCase
                | OperatorAction::OpenCase
                | OperatorAction::AssignCase
                | OperatorAction::NoteCase
                | OperatorAction::DecideCase
                | OperatorAction::ReloadSanctions
                | OperatorAction::ExportReport
                | OperatorAction::ScanMonitoring
                | OperatorAction::SetLicence => false,
            },
        }
    }
}

/// Everything an operator can do in the console; each is one kind of audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    LogIn,
    LogOut,
    ViewDashboard,
    Search,
    ViewPerson,
    ViewPayment,
    ViewLedger,
    LookUpLedger,
    ViewAccount,
    ViewTransfer,
    VerifyLedger,
    ViewWebhooks,
    ViewAudit,
    /// Reveal one vault field of a person, with a stated reason (also written to
    /// the vault's access log).
    RevealPersonalData,
    ViewCases,
    ViewCase,
    OpenCase,
    AssignCase,
    NoteCase,
    /// Clear, freeze, close an account, file a SAR: admin only.
    DecideCase,
    /// Reload the sanctions list and re-screen everyone: admin only.
    ReloadSanctions,
    /// Download a SAR or CTR draft (personal data): admin only.
    ExportReport,
    /// Run the monitoring rules on everyone.
    ScanMonitoring,
    /// Enable or disable capabilities in a jurisdiction (the licence table): admin only.
    SetLicence,
}

impl OperatorAction {
    /// The stable name audit entries carry; never change one once written.
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorAction::LogIn => "log_in",
            OperatorAction::LogOut => "log_out",
            OperatorAction::ViewDashboard => "view_dashboard",
            OperatorAction::Search => "search",
            OperatorAction::ViewPerson => "view_person",
            OperatorAction::ViewPayment => "view_payment",
            OperatorAction::ViewLedger => "view_ledger",
            OperatorAction::LookUpLedger => "look_up_ledger",
            OperatorAction::ViewAccount => "view_account",
            OperatorAction::ViewTransfer => "view_transfer",
            OperatorAction::VerifyLedger => "verify_ledger",
            OperatorAction::ViewWebhooks => "view_webhooks",
            OperatorAction::ViewAudit => "view_audit",
            OperatorAction::RevealPersonalData => "reveal_personal_data",
            OperatorAction::ViewCases => "view_cases",
            OperatorAction::ViewCase => "view_case",
            OperatorAction::OpenCase => "open_case",
            OperatorAction::AssignCase => "assign_case",
            OperatorAction::NoteCase => "note_case",
            OperatorAction::DecideCase => "decide_case",
            OperatorAction::ReloadSanctions => "reload_sanctions",
            OperatorAction::ExportReport => "export_report",
            OperatorAction::ScanMonitoring => "scan_monitoring",
            OperatorAction::SetLicence => "set_licence",
        }
    }
}

/// A signed-in operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: OperatorName,
    pub role: OperatorRole,
    pub expires_at_ns: u64,
}

impl Operator {
    pub fn require(&self, action: OperatorAction) -> Result<(), OperatorError> {
        if self.role.may(action) {
            Ok(())
        } else {
            Err(OperatorError::Forbidden)
        }
    }
}

/// A session just opened: the token leaves the server once, here.
#[derive(Debug)]
pub struct NewOperatorSession {
    pub token: Secret<String>,
    pub operator: Operator,
}

#[derive(Serialize, Deserialize)]
struct SessionDocument {
    name: String,
    role: OperatorRole,
    created_at_ns: u64,
    expires_at_ns: u64,
    #[serde(default)]
    revoked: bool,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub operator: String,
    pub role: OperatorRole,
    /// An [`OperatorAction`] name, e.g. `view_person`.
    pub action: String,
    /// What was looked at: a handle, an id, a search; empty for none.
    pub target: String,
    pub at_ns: u64,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, OperatorError> {
    serde_json::to_vec(value).map_err(|error| internal("encoding a document", error))
}

/// The audit key: inverted time first (newest sorts first), then randomness.
fn audit_key(at_ns: u64) -> String {
    let random: [u8; AUDIT_KEY_RANDOM_BYTES] = rand::random();
    format!("{:020}:{}", u64::MAX - at_ns, hex::encode(random))
}

pub(crate) fn audit_row(
    operator: &OperatorName,
    role: OperatorRole,
    action: OperatorAction,
    target: &str,
    at_ns: u64,
) -> Result<BusinessRow, OperatorError> {
    let entry = AuditEntry {
        operator: operator.as_str().to_owned(),
        role,
        action: action.as_str().to_owned(),
        target: target.chars().take(AUDIT_TARGET_CHARS_MAX).collect(),
        at_ns,
    };
    Ok(BusinessRow::Create {
        collection: COLLECTION_OPERATOR_AUDIT.to_owned(),
        key: audit_key(at_ns),
        body: to_json(&entry)?,
    })
}

async fn submit(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<(), OperatorError> {
    let conflict = crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("submitting", error))?;
    match conflict {
        None => Ok(()),
        // Random keys: a collision is a broken random source, not a retry.
        Some(collection) => Err(internal("a random key was taken", collection)),
    }
}

/// Opens a session for an operator who proved the operator token, and audits the
/// log-in in the same atomic submission.
#[tracing::instrument(skip_all, fields(operator = %name.as_str()))]
pub async fn open_session(
    ledger: &Ledger,
    name: OperatorName,
    role: OperatorRole,
    now_ns: u64,
) -> Result<NewOperatorSession, OperatorError> {
    let token_bytes: [u8; OPERATOR_SESSION_TOKEN_BYTES] = rand::random();
    let token = hex::encode(token_bytes);
    let expires_at_ns = now_ns.saturating_add(OPERATOR_SESSION_LIFETIME_SECONDS * NANOS_PER_SECOND);
    assert!(
        expires_at_ns > now_ns,
        "an operator session must outlive its start"
    );
    let session = SessionDocument {
        name: name.as_str().to_owned(),
        role,
        created_at_ns: now_ns,
        expires_at_ns,
        revoked: false,
    };
    let rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_OPERATOR_SESSIONS.to_owned(),
            key: token_hash(&token),
            body: to_json(&session)?,
        },
        audit_row(&name, role, OperatorAction::LogIn, "", now_ns)?,
    ];
    submit(ledger, rows).await?;
    tracing::info!(role = role.as_str(), "operator session opened");
    Ok(NewOperatorSession {
        token: Secret::new(token),
        operator: Operator {
            name,
            role,
            expires_at_ns,
        },
    })
}

async fn live_session(
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<(String, SessionDocument), OperatorError> {
    let well_formed = token.len() == 2 * OPERATOR_SESSION_TOKEN_BYTES
        && token.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !well_formed {
        return Err(OperatorError::Unauthenticated);
    }
    let key = token_hash(token);
    let lookup = key.clone();
    let body = reader
        .read(move |r| r.document(COLLECTION_OPERATOR_SESSIONS, &lookup))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading an operator session", error))?
        .ok_or(OperatorError::Unauthenticated)?;
    let session: SessionDocument =
        serde_json::from_slice(&body).map_err(|error| internal("stored session", error))?;
    if session.revoked || now_ns >= session.expires_at_ns {
        return Err(OperatorError::Unauthenticated);
    }
    Ok((key, session))
}

/// The operator a session token belongs to.
pub async fn authenticate(
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<Operator, OperatorError> {
    let (_, session) = live_session(reader, token, now_ns).await?;
    Ok(Operator {
        name: OperatorName::parse(&session.name).map_err(|e| internal("stored name", e))?,
        role: session.role,
        expires_at_ns: session.expires_at_ns,
    })
}

/// Revokes the session a token names, and audits the log-out with it.
#[tracing::instrument(skip_all)]
pub async fn close_session(
    ledger: &Ledger,
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<(), OperatorError> {
    let (key, mut session) = live_session(reader, token, now_ns).await?;
    let name = OperatorName::parse(&session.name).map_err(|e| internal("stored name", e))?;
    let role = session.role;
    session.revoked = true;
    let rows = vec![
        BusinessRow::Document {
            collection: COLLECTION_OPERATOR_SESSIONS.to_owned(),
            key,
            body: to_json(&session)?,
        },
        audit_row(&name, role, OperatorAction::LogOut, "", now_ns)?,
    ];
    submit(ledger, rows).await
}

/// Appends one entry to the audit log, after checking the operator's role allows
/// the action. Returns once the entry is committed.
pub async fn record(
    ledger: &Ledger,
    operator: &Operator,
    action: OperatorAction,
    target: &str,
    now_ns: u64,
) -> Result<(), OperatorError> {
    operator.require(action)?;
    let row = audit_row(&operator.name, operator.role, action, target, now_ns)?;
    submit(ledger, vec![row]).await
}

/// The newest audit entries, newest first, at most `limit` (1..=[`AUDIT_ENTRIES_MAX`]).
pub async fn audit_log(
    reader: &SharedReader,
    limit: usize,
) -> Result<Vec<AuditEntry>, OperatorError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_OPERATOR_AUDIT,
        String::new(),
        None,
        limit.clamp(1, AUDIT_ENTRIES_MAX),
    )
    .await
    .map_err(|error| internal("listing the audit log", error))?;
    rows.iter()
        .map(|(_, body)| {
            serde_json::from_slice(body).map_err(|error| internal("stored audit entry", error))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn operator_names_are_short_and_plain() {
        assert_eq!(
            OperatorName::parse(" Sara K. ").unwrap().as_str(),
            "Sara K."
        );
        assert!(OperatorName::parse("ops_team-2").is_ok());
        assert!(OperatorName::parse("").is_err());
        assert!(OperatorName::parse("   ").is_err());
        assert!(OperatorName::parse(&"a".repeat(41)).is_err());
        assert!(OperatorName::parse(&"a".repeat(40)).is_ok());
        assert!(OperatorName::parse("<script>").is_err());
        assert!(OperatorName::parse("a\u{202e}b").is_err());
    }

    #[test]
    fn audit_keys_sort_newest_first() {
        let older = audit_key(1_000);
        let newer = audit_key(2_000);
        assert!(newer < older, "{newer} !< {older}");
        assert_eq!(older.len(), 20 + 1 + 2 * AUDIT_KEY_RANDOM_BYTES);
    }

    #[test]
    fn support_may_not_verify_or_read_the_audit() {
        assert!(OperatorRole::Admin.may(OperatorAction::VerifyLedger));
        assert!(!OperatorRole::Support.may(OperatorAction::VerifyLedger));
        assert!(!OperatorRole::Support.may(OperatorAction::ViewAudit));
        assert!(OperatorRole::Support.may(OperatorAction::ViewPerson));
        assert!(OperatorRole::Admin.may(OperatorAction::SetLicence));
        assert!(!OperatorRole::Support.may(OperatorAction::SetLicence));
        assert!(!OperatorRole::Analytics.may(OperatorAction::SetLicence));
        // The wall: analytics sees aggregates, never a person, a payment or the vault.
        assert!(OperatorRole::Analytics.may(OperatorAction::ViewDashboard));
        for action in [
            OperatorAction::Search,
            OperatorAction::ViewPerson,
            OperatorAction::ViewPayment,
            OperatorAction::ViewLedger,
            OperatorAction::ViewAccount,
            OperatorAction::ViewTransfer,
            OperatorAction::ViewWebhooks,
            OperatorAction::RevealPersonalData,
        ] {
            assert!(!OperatorRole::Analytics.may(action), "{}", action.as_str());
        }
        for kind in mizan_vault::FieldKind::ALL {
            assert!(!mizan_vault::may_reveal(
                OperatorRole::Analytics.vault_role(),
                kind
            ));
        }
        assert_eq!(OperatorRole::parse("support"), Some(OperatorRole::Support));
        assert_eq!(OperatorRole::parse("root"), None);
    }

    #[test]
    fn audit_targets_are_cut() {
        let name = OperatorName::parse("sara").unwrap();
        let long = "x".repeat(AUDIT_TARGET_CHARS_MAX + 50);
        let row = audit_row(&name, OperatorRole::Admin, OperatorAction::Search, &long, 5).unwrap();
        let BusinessRow::Create { body, .. } = row else {
            panic!("an audit row is a Create");
        };
        let entry: AuditEntry = serde_json::from_slice(&body).unwrap();
        assert_eq!(entry.target.chars().count(), AUDIT_TARGET_CHARS_MAX);
        assert_eq!(entry.action, "search");
    }
}
