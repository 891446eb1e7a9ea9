//! Compliance cases and account freezes.
//!
//! A *case* is one thing a compliance operator must look at: a sanctions hit, a
//! transaction-monitoring alert, or something an operator opened by hand. It moves
//! `open` → `assigned` → `decided`, gathers notes, and ends with one decision:
//! `clear`, `freeze`, `close_account` or `file_sar`. The queue is every undecided case,
//! oldest first (case ids start with the time they were opened, so key order is age).
//!
//! A person can be *frozen*: [`crate::limits::prepare`], the check every outgoing
//! movement (payment, tip, paid DM, request payment, cash-out) already passes, refuses
//! with `account_frozen` before anything is written. Money coming in (payments to them,
//! card funding) still arrives. Closing an account freezes it permanently: no later
//! decision lifts it.
//!
//! Every case is opened with a *reason key* (`sanctions:{person}:{ent_nums}`,
//! `monitoring:{rule}:{person}:{day}`), written as a `Create` row in the same atomic
//! submission as the case: the same reason never opens a second case, even when two
//! screenings race, and a cleared hit stays cleared.
//!
//! Every operator action on a case is an audit entry committed in the same atomic
//! submission as its effect: no effect without its audit line.

use std::fmt;

use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};

use crate::creation::{self, Creation, Replay};
use crate::identity::{PersonId, SharedReader};
use crate::operators::{self, Operator, OperatorAction, OperatorName};

pub const COLLECTION_CASES: &str = "compliance_cases";
pub const COLLECTION_CASE_REASONS: &str = "compliance_case_reasons";
pub const COLLECTION_FREEZES: &str = "account_freezes";
pub const CASE_NOTE_CHARS_MAX: usize = 2_000;
/// Notes one case may hold; a case that needs more is two cases.
pub const CASE_NOTES_MAX: usize = 100;
/// Most cases one page of the queue holds.
pub const CASES_PAGE_MAX: usize = 100;
/// Longest reason key kept (a sanctions key lists up to ten `ent_num`s).
pub const CASE_REASON_CHARS_MAX: usize = 200;
/// Bytes of randomness after the time in a case id.
const CASE_ID_RANDOM_BYTES: usize = 8;
const CASE_ID_TIME_DIGITS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("no such case")]
    CaseNotFound,
    #[error("a case id is 20 digits, a hyphen and 16 hex digits")]
    CaseIdInvalid,
    #[error("a note is 1 to 2,000 characters")]
    NoteInvalid,
    #[error("this case holds the most notes it may (100)")]
    TooManyNotes,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("an assignee is an operator name: 1 to 40 letters, digits, spaces, dots, underscores or hyphens")]
    AssigneeInvalid,
    #[error("a decision is \"clear\", \"freeze\", \"close_account\" or \"file_sar\"")]
    DecisionInvalid,
    #[error("this case was already decided")]
    CaseAlreadyDecided,
    #[error("this account is closed; its freeze cannot be lifted")]
    AccountClosed,
    #[error("no SAR was filed on this case")]
    NoSarFiled,
    #[error("the operator's role does not allow this")]
    Forbidden,
    /// A bug or a store failure; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CaseError {
    pub fn code(&self) -> &'static str {
        match self {
            CaseError::CaseNotFound => "case_not_found",
            CaseError::CaseIdInvalid => "case_id_invalid",
            CaseError::NoteInvalid => "note_invalid",
            CaseError::AssigneeInvalid => "assignee_invalid",
            CaseError::IdempotencyKeyReused => "idempotency_key_reused",
            CaseError::TooManyNotes => "too_many_notes",
            CaseError::DecisionInvalid => "decision_invalid",
            CaseError::CaseAlreadyDecided => "case_already_decided",
            CaseError::AccountClosed => "account_closed",
            CaseError::NoSarFiled => "no_sar_filed",
            CaseError::Forbidden => "forbidden",
            CaseError::Internal(_) => "internal_error",
        }
    }
}

pub(crate) fn internal(context: &str, error: impl fmt::Display) -> CaseError {
    CaseError::Internal(format!("{context}: {error}"))
}

impl From<crate::creation::CreationError> for CaseError {
    fn from(error: crate::creation::CreationError) -> CaseError {
        match error {
            crate::creation::CreationError::KeyReused => CaseError::IdempotencyKeyReused,
            other => internal("a case's idempotency claim", other),
        }
    }
}

impl From<operators::OperatorError> for CaseError {
    fn from(error: operators::OperatorError) -> CaseError {
        match error {
            operators::OperatorError::Forbidden => CaseError::Forbidden,
            other => internal("operator", other),
        }
    }
}

/// Why a case was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    SanctionsHit,
    MonitoringAlert,
    Manual,
}

impl CaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::SanctionsHit => "sanctions_hit",
            CaseKind::MonitoringAlert => "monitoring_alert",
            CaseKind::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    Assigned,
    Decided,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Assigned => "assigned",
            CaseStatus::Decided => "decided",
        }
    }
}

/// How a case ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseDecision {
    /// Nothing wrong: a freeze this case's person is under is lifted.
    Clear,
    /// Outgoing money stops until a later case clears it.
    Freeze,
    /// Frozen for good.
    CloseAccount,
    /// A SAR draft is prepared from the case; the freeze state is left as it is.
    FileSar,
}

impl CaseDecision {
    pub fn parse(text: &str) -> Result<CaseDecision, CaseError> {
        match text {
            "clear" => Ok(CaseDecision::Clear),
            "freeze" => Ok(CaseDecision::Freeze),
            "close_account" => Ok(CaseDecision::CloseAccount),
            "file_sar" => Ok(CaseDecision::FileSar),
            _ => Err(CaseError::DecisionInvalid),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CaseDecision::Clear => "clear",
            CaseDecision::Freeze => "freeze",
            CaseDecision::CloseAccount => "close_account",
            CaseDecision::FileSar => "file_sar",
        }
    }
}

/// A case id: the opening time (20 digits, nanoseconds) then 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId(String);

impl CaseId {
    fn new(opened_at_ns: u64) -> CaseId {
        let random: [u8; CASE_ID_RANDOM_BYTES] = rand::random();
        CaseId(format!("{opened_at_ns:020}-{}", hex::encode(random)))
    }

    pub fn parse(text: &str) -> Result<CaseId, CaseError> {
        let Some((time, random)) = text.split_once('-') else {
            return Err(CaseError::CaseIdInvalid);
        };
        let ok = time.len() == CASE_ID_TIME_DIGITS
            && time.bytes().all(|b| b.is_ascii_digit())
            && random.len() == 2 * CASE_ID_RANDOM_BYTES
            && random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(CaseId(text.to_owned()))
        } else {
            Err(CaseError::CaseIdInvalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// One sanctions-list entry a screening matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SanctionsMatch {
    pub ent_num: u32,
    /// The list's name for the entry (public list data, not personal data of ours).
    pub list_name: String,
    pub score: f64,
    pub programs: String,
}

/// One movement a monitoring alert points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlaggedMovement {
    /// The transfer id, 32 hex digits.
    pub transfer: String,
    /// `payment_in`, `payment_out`, `funding`, `cashout`, …
    pub kind: String,
    pub amount_minor: i64,
    pub currency: String,
    pub at_ns: u64,
}

/// What opened the case, for the operator and the SAR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Evidence {
    Sanctions {
        /// `signup`, `identity_verification`, `cashout` or `list_reload`.
        trigger: String,
        /// `block` or `review`.
        decision: String,
        /// The vault record (32 hex digits) of the legal name screened: the name
        /// itself never enters a case document. The case page, the API's case view
        /// and the SAR draft reveal it through the vault ([`reveal_screened_name`]),
        /// each reveal in the vault's access log; once the person is erased it
        /// reveals nothing. `None` only in cases stored before names moved out.
        #[serde(default)]
        screened_name_record: Option<String>,
        matches: Vec<SanctionsMatch>,
    },
    Monitoring {
        /// The rule's code, e.g. `structuring`.
        rule: String,
        /// What the rule saw, in words (amounts and counts, no names).
        summary: String,
        movements: Vec<FlaggedMovement>,
    },
    Manual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseNote {
    pub operator: String,
    pub text: String,
    pub at_ns: u64,
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub id: String,
    /// The person the case is about, 32 hex digits.
    pub person: String,
    pub kind: CaseKind,
    pub status: CaseStatus,
    pub opened_at_ns: u64,
    pub reason: String,
    pub evidence: Evidence,
    /// Whether opening the case froze the person.
    pub froze: bool,
    pub assignee: Option<String>,
    pub notes: Vec<CaseNote>,
    pub decision: Option<CaseDecision>,
    pub decided_by: Option<String>,
    pub decided_at_ns: Option<u64>,
}

/// A person's freeze as stored; no document means not frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    pub frozen: bool,
    /// Closed account: never lifted.
    pub permanent: bool,
    /// The case that set the current state.
    pub case: String,
    pub since_ns: u64,
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CaseError> {
    serde_json::to_vec(value).map_err(|error| internal("encoding", error))
}

async fn read(
    reader: &SharedReader,
    collection: &'static str,
    key: String,
) -> Result<Option<Vec<u8>>, CaseError> {
    reader
        .read(move |r| r.document(collection, &key))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading a document", error))
}

/// A person's freeze, if one was ever set.
pub async fn freeze_of(
    reader: &SharedReader,
    person: PersonId,
) -> Result<Option<Freeze>, CaseError> {
    // Through the document cache: every money movement asks.
    let stored = crate::identity::read_document(reader, COLLECTION_FREEZES, person.to_string())
        .await
        .map_err(|error| internal("reading a freeze", error))?;
    let Some(body) = stored else {
        return Ok(None);
    };
    let freeze = serde_json::from_slice(&body).map_err(|error| internal("stored freeze", error))?;
    Ok(Some(freeze))
}

/// Whether outgoing money is refused for this person.
pub async fn is_frozen(reader: &SharedReader, person: PersonId) -> Result<bool, CaseError> {
    Ok(freeze_of(reader, person)
        .await?
        .is_some_and(|freeze| freeze.frozen))
}

fn freeze_row(person: PersonId, freeze: &Freeze) -> Result<BusinessRow, CaseError> {
    assert!(
        freeze.frozen || !freeze.permanent,
        "a closed account is always frozen"
    );
    Ok(BusinessRow::Document {
        collection: COLLECTION_FREEZES.to_owned(),
        key: person.to_string(),
        body: to_json(freeze)?,
    })
}

fn case_row(case: &Case) -> Result<BusinessRow, CaseError> {
    Ok(BusinessRow::Document {
        collection: COLLECTION_CASES.to_owned(),
        key: case.id.clone(),
        body: to_json(case)?,
    })
}

async fn submit(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<Option<String>, CaseError> {
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("submitting", error))
}

/// A case to open: who, why, and whether it freezes them at once.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub person: PersonId,
    pub kind: CaseKind,
    /// Dedup key: a reason opens at most one case, ever.
    pub reason: String,
    pub evidence: Evidence,
    pub freeze: bool,
}

/// The rows that open `new` (its reason claim, the case, and the freeze if asked),
/// for a caller that commits them with something else in one atomic submission.
/// `permanent` keeps a closed account closed.
pub(crate) fn opening_rows(
    new: NewCase,
    permanent: bool,
    now_ns: u64,
) -> Result<(Case, Vec<BusinessRow>), CaseError> {
    let reason: String = new.reason.chars().take(CASE_REASON_CHARS_MAX).collect();
    assert!(!reason.is_empty(), "a case needs a reason key");
    let id = CaseId::new(now_ns);
    let case = Case {
        id: id.as_str().to_owned(),
        person: new.person.to_string(),
        kind: new.kind,
        status: CaseStatus::Open,
        opened_at_ns: now_ns,
        reason: reason.clone(),
        evidence: new.evidence,
        froze: new.freeze,
        assignee: None,
        notes: Vec::new(),
        decision: None,
        decided_by: None,
        decided_at_ns: None,
    };
    let mut rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_CASE_REASONS.to_owned(),
            key: reason,
            body: to_json(&case.id)?,
        },
        case_row(&case)?,
    ];
    if new.freeze {
        rows.push(freeze_row(
            new.person,
            &Freeze {
                frozen: true,
                permanent,
                case: case.id.clone(),
                since_ns: now_ns,
            },
        )?);
    }
    Ok((case, rows))
}

/// Opens a case (and freezes the person if asked) in one atomic submission, unless
/// a case for the same reason exists: then nothing is written and `None` comes back.
#[tracing::instrument(skip_all, fields(person = %new.person, kind = new.kind.as_str()))]
pub async fn open_case(
    ledger: &Ledger,
    reader: &SharedReader,
    new: NewCase,
    now_ns: u64,
) -> Result<Option<Case>, CaseError> {
    let permanent = new.freeze
        && freeze_of(reader, new.person)
            .await?
            .is_some_and(|freeze| freeze.permanent);
    let froze = new.freeze;
    let (case, rows) = opening_rows(new, permanent, now_ns)?;
    match submit(ledger, rows).await? {
        None => {
            tracing::warn!(case = %case.id, froze, "compliance case opened");
            Ok(Some(case))
        }
        Some(collection) if collection == COLLECTION_CASE_REASONS => Ok(None),
        Some(collection) => Err(internal("a random case id was taken", collection)),
    }
}

/// One case.
pub async fn case(reader: &SharedReader, id: &CaseId) -> Result<Case, CaseError> {
    let body = read(reader, COLLECTION_CASES, id.as_str().to_owned())
        .await?
        .ok_or(CaseError::CaseNotFound)?;
    serde_json::from_slice(&body).map_err(|error| internal("stored case", error))
}

/// Cases in age order (oldest first) after `after`, at most `limit`; with
/// `undecided_only`, the queue.
pub async fn list(
    reader: &SharedReader,
    undecided_only: bool,
    after: Option<CaseId>,
    limit: usize,
) -> Result<Vec<Case>, CaseError> {
    let limit = limit.clamp(1, CASES_PAGE_MAX);
    let mut found = Vec::with_capacity(limit);
    let mut cursor = after.map(|id| id.0);
    // Decided cases are skipped page by page; each page moves the cursor on.
    loop {
        let rows = crate::documents::with_prefix(
            reader,
            COLLECTION_CASES,
            String::new(),
            cursor.clone(),
            CASES_PAGE_MAX,
        )
        .await
        .map_err(|error| internal("listing cases", error))?;
        let full = rows.len() == CASES_PAGE_MAX;
        for (key, body) in rows {
            let case: Case =
                serde_json::from_slice(&body).map_err(|error| internal("stored case", error))?;
            cursor = Some(key);
            if !undecided_only || case.status != CaseStatus::Decided {
                found.push(case);
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if !full {
            return Ok(found);
        }
    }
}

/// The cases about one person, oldest first (at most [`CASES_PAGE_MAX`] scanned per page).
pub async fn cases_of(reader: &SharedReader, person: PersonId) -> Result<Vec<Case>, CaseError> {
    let wanted = person.to_string();
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = list(reader, false, after.clone(), CASES_PAGE_MAX).await?;
        let full = page.len() == CASES_PAGE_MAX;
        after = page.last().map(|case| CaseId(case.id.clone()));
        found.extend(page.into_iter().filter(|case| case.person == wanted));
        if !full {
            return Ok(found);
        }
    }
}

fn audit(
    operator: &Operator,
    action: OperatorAction,
    target: &str,
    now_ns: u64,
) -> Result<BusinessRow, CaseError> {
    operator.require(action)?;
    Ok(operators::audit_row(
        &operator.name,
        operator.role,
        action,
        target,
        now_ns,
    )?)
}

async fn commit(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<(), CaseError> {
    match submit(ledger, rows).await? {
        None => Ok(()),
        Some(collection) => Err(internal("a random audit key was taken", collection)),
    }
}

/// Audits an operator action whose effect is elsewhere (a list reload), before it
/// runs.
pub async fn record_action(
    ledger: &Ledger,
    operator: &Operator,
    action: OperatorAction,
    target: &str,
    now_ns: u64,
) -> Result<(), CaseError> {
    commit(ledger, vec![audit(operator, action, target, now_ns)?]).await
}

/// Audits an operator looking at the queue or a case (before it is shown).
pub async fn record_view(
    ledger: &Ledger,
    operator: &Operator,
    target: Option<&CaseId>,
    now_ns: u64,
) -> Result<(), CaseError> {
    let (action, target) = match target {
        Some(id) => (OperatorAction::ViewCase, id.as_str()),
        None => (OperatorAction::ViewCases, ""),
    };
    commit(ledger, vec![audit(operator, action, target, now_ns)?]).await
}

/// Assigns the case to `assignee` (an operator name, e.g. a colleague's) or, when
/// `None`, to `operator`: `open` (or `assigned` to someone else) → `assigned`. The
/// audit entry's target names both: `{case} to {assignee}`.
#[tracing::instrument(skip_all, fields(case = %id))]
pub async fn assign(
    ledger: &Ledger,
    reader: &SharedReader,
    operator: &Operator,
    id: &CaseId,
    assignee: Option<&str>,
    now_ns: u64,
) -> Result<Case, CaseError> {
    let assignee = match assignee {
        None => operator.name.clone(),
        Some(name) => OperatorName::parse(name).map_err(|_| CaseError::AssigneeInvalid)?,
    };
    let mut case = case(reader, id).await?;
    if case.status == CaseStatus::Decided {
        return Err(CaseError::CaseAlreadyDecided);
    }
    case.status = CaseStatus::Assigned;
    case.assignee = Some(assignee.as_str().to_owned());
    let target = format!("{} to {}", id.as_str(), assignee.as_str());
    let rows = vec![
        audit(operator, OperatorAction::AssignCase, &target, now_ns)?,
        case_row(&case)?,
    ];
    commit(ledger, rows).await?;
    Ok(case)
}

/// Adds a note (1–2,000 characters) to a case, decided or not.
#[tracing::instrument(skip_all, fields(case = %id))]
pub async fn add_note(
    ledger: &Ledger,
    reader: &SharedReader,
    operator: &Operator,
    id: &CaseId,
    text: &str,
    now_ns: u64,
) -> Result<Case, CaseError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > CASE_NOTE_CHARS_MAX {
        return Err(CaseError::NoteInvalid);
    }
    let mut case = case(reader, id).await?;
    if case.notes.len() >= CASE_NOTES_MAX {
        return Err(CaseError::TooManyNotes);
    }
    case.notes.push(CaseNote {
        operator: operator.name.as_str().to_owned(),
        text: text.to_owned(),
        at_ns: now_ns,
    });
    let rows = vec![
        audit(operator, OperatorAction::NoteCase, id.as_str(), now_ns)?,
        case_row(&case)?,
    ];
    commit(ledger, rows).await?;
    Ok(case)
}

/// Decides a case, and applies the decision to the person's freeze, with its audit
/// entry, in one atomic submission.
#[tracing::instrument(skip_all, fields(case = %id, decision = decision.as_str()))]
pub async fn decide(
    ledger: &Ledger,
    reader: &SharedReader,
    operator: &Operator,
    id: &CaseId,
    decision: CaseDecision,
    now_ns: u64,
) -> Result<Case, CaseError> {
    operator.require(OperatorAction::DecideCase)?;
    let mut case = case(reader, id).await?;
    if case.status == CaseStatus::Decided {
        return Err(CaseError::CaseAlreadyDecided);
    }
    let person = PersonId::parse(&case.person).map_err(|error| internal("stored person", error))?;
    let current = freeze_of(reader, person).await?;
    let permanent = current.as_ref().is_some_and(|freeze| freeze.permanent);
    let target = format!("{} {}", id.as_str(), decision.as_str());
    let mut rows = vec![audit(
        operator,
        OperatorAction::DecideCase,
        &target,
        now_ns,
    )?];
    let new_freeze = match decision {
        CaseDecision::Clear if permanent => return Err(CaseError::AccountClosed),
        CaseDecision::Clear => current.map(|_| (false, false)),
        CaseDecision::Freeze => Some((true, permanent)),
        CaseDecision::CloseAccount => Some((true, true)),
        CaseDecision::FileSar => None,
    };
    if let Some((frozen, permanent)) = new_freeze {
        let freeze = Freeze {
            frozen,
            permanent,
            case: case.id.clone(),
            since_ns: now_ns,
        };
        rows.push(freeze_row(person, &freeze)?);
    }
    case.status = CaseStatus::Decided;
    case.decision = Some(decision);
    case.decided_by = Some(operator.name.as_str().to_owned());
    case.decided_at_ns = Some(now_ns);
    if case.assignee.is_none() {
        case.assignee = case.decided_by.clone();
    }
    rows.push(case_row(&case)?);
    commit(ledger, rows).await?;
    tracing::warn!(decision = decision.as_str(), "compliance case decided");
    Ok(case)
}

/// Opens a case by hand (an operator's own suspicion), audited with it.
#[tracing::instrument(skip_all, fields(%person))]
pub async fn open_manual(
    ledger: &Ledger,
    reader: &SharedReader,
    operator: &Operator,
    person: PersonId,
    note: &str,
    creation: Option<&Creation>,
    now_ns: u64,
) -> Result<Case, CaseError> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > CASE_NOTE_CHARS_MAX {
        return Err(CaseError::NoteInvalid);
    }
    operator.require(OperatorAction::OpenCase)?;
    if let Some(replay) = creation::replay_used(creation, reader).await? {
        return replayed_case(reader, replay).await;
    }
    let id = CaseId::new(now_ns);
    let case = Case {
        id: id.as_str().to_owned(),
        person: person.to_string(),
        kind: CaseKind::Manual,
        status: CaseStatus::Open,
        opened_at_ns: now_ns,
        reason: format!("manual:{}", id.as_str()),
        evidence: Evidence::Manual,
        froze: false,
        assignee: None,
        notes: vec![CaseNote {
            operator: operator.name.as_str().to_owned(),
            text: note.to_owned(),
            at_ns: now_ns,
        }],
        decision: None,
        decided_by: None,
        decided_at_ns: None,
    };
    let mut rows = vec![
        audit(
            operator,
            OperatorAction::OpenCase,
            &person.to_string(),
            now_ns,
        )?,
        case_row(&case)?,
    ];
    if let Some(creation) = creation {
        // The claim keeps the case's id; a retry shows the case as it is then.
        rows.push(creation.answer_row(&case.id, &serde_json::json!({ "case_id": case.id }))?);
    }
    let Some(collection) = submit(ledger, rows).await? else {
        return Ok(case);
    };
    match creation::replay_conflict(creation, &collection, reader).await? {
        Some(replay) => replayed_case(reader, replay).await,
        None => Err(internal("a random case id was taken", collection)),
    }
}

/// The case a creation claim names, as it is now.
async fn replayed_case(reader: &SharedReader, replay: Replay) -> Result<Case, CaseError> {
    let Replay::Response(stored) = replay;
    let id = stored["case_id"]
        .as_str()
        .ok_or_else(|| internal("a case claim without its id", &stored))?;
    case(reader, &CaseId::parse(id)?).await
}

/// The canonical request of a manual case, for [`Creation::new`].
pub fn manual_case_canonical(person: PersonId, note: &str) -> String {
    format!("case|{person}|{}", note.trim())
}

/// What revealing a case's screened name found.
#[derive(Debug)]
pub enum ScreenedName {
    Shown(mizan_core::Secret<String>),
    /// The person was erased: the record no longer opens (logged as such).
    Erased,
    /// The accessor's vault role may not see legal names (logged as a denial).
    Denied,
    /// Not a sanctions case, or one stored without a record.
    NotKept,
}

/// Reveals the legal name a sanctions case screened, from the vault record its
/// evidence names, to `role`/`actor` for `reason` (8–500 characters); the vault
/// writes its access-log entry before the name leaves it.
pub async fn reveal_screened_name(
    vault: &crate::vault::SharedVault,
    case: &Case,
    role: mizan_vault::Role,
    actor: &str,
    reason: &str,
) -> Result<ScreenedName, CaseError> {
    use mizan_vault::{Accessor, Reason, RecordId, VaultError};
    let Evidence::Sanctions {
        screened_name_record: Some(record),
        ..
    } = &case.evidence
    else {
        return Ok(ScreenedName::NotKept);
    };
    let record = RecordId::parse(record).map_err(|error| internal("stored record", error))?;
    let accessor = Accessor::new(role, actor).map_err(|error| internal("accessor", error))?;
    let reason = Reason::parse(reason).map_err(|error| internal("reveal reason", error))?;
    let revealed = crate::vault::blocking(vault, move |vault| {
        match vault.reveal(&accessor, &reason, record) {
            Ok(name) => Ok(ScreenedName::Shown(name)),
            Err(VaultError::Erased) => Ok(ScreenedName::Erased),
            Err(VaultError::PermissionDenied { .. }) => Ok(ScreenedName::Denied),
            Err(other) => Err(other),
        }
    })
    .await;
    revealed.map_err(|error| internal("the vault", error.code()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn case_ids_sort_by_age_and_parse_back() {
        let older = CaseId::new(1_000);
        let newer = CaseId::new(2_000);
        assert!(older < newer);
        assert_eq!(CaseId::parse(older.as_str()).unwrap(), older);
        for bad in [
            "",
            "x",
            "00000000000000001000-zz",
            "1000-0011223344556677",
            "00000000000000001000-00112233445566778",
            "00000000000000001000-00112233445566AA",
        ] {
            assert_eq!(CaseId::parse(bad), Err(CaseError::CaseIdInvalid), "{bad}");
        }
    }

    #[test]
    fn a_stored_case_holds_a_vault_reference_never_the_name_screened() {
        let record = "0123456789abcdef0123456789abcdef";
        let evidence = Evidence::Sanctions {
            trigger: "cashout".to_owned(),
            decision: "block".to_owned(),
            screened_name_record: Some(record.to_owned()),
            matches: vec![SanctionsMatch {
                ent_num: 1572,
                list_name: "NORIEGA, Manuel Antonio".to_owned(),
                score: 0.93,
                programs: "CUBA".to_owned(),
            }],
        };
        let stored = serde_json::to_string(&evidence).unwrap();
        assert!(!stored.contains("screened_name\""), "{stored}");
        assert!(
            stored.contains(&format!("\"screened_name_record\":\"{record}\"")),
            "{stored}"
        );
        // The list's own name for the entry is public list data; the person's
        // name is not there in any spelling.
        assert!(!stored.contains("Manuel Noriega"), "{stored}");
        assert!(
            !stored.to_lowercase().contains("manuel noriega"),
            "{stored}"
        );
        // A case stored before names moved to the vault still reads (its name
        // field is ignored, never shown).
        let legacy = r#"{"type":"sanctions","trigger":"cashout","decision":"block","screened_name":"X","matches":[]}"#;
        let read: Evidence = serde_json::from_str(legacy).unwrap();
        assert!(matches!(
            read,
            Evidence::Sanctions {
                screened_name_record: None,
                ..
            }
        ));
    }

    #[test]
    fn decisions_parse_by_their_stable_names() {
        for decision in [
            CaseDecision::Clear,
            CaseDecision::Freeze,
            CaseDecision::CloseAccount,
            CaseDecision::FileSar,
        ] {
            assert_eq!(CaseDecision::parse(decision.as_str()).unwrap(), decision);
        }
        assert_eq!(
            CaseDecision::parse("approve"),
            Err(CaseError::DecisionInvalid)
        );
    }
}
