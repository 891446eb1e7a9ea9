//! Sanctions screening of the people on the platform, with the screener of
//! `mizan-compliance` (how it matches: docs/COMPLIANCE.md).
//!
//! A person's legal name is screened at sign-up when they give one (in the sign-up's
//! own atomic submission: nobody exists unscreened), when they verify their identity
//! (where a name is given or changes), before every cash-out, and for everyone when
//! the list is reloaded or a server starts with a list that changed. `block` freezes
//! the person and opens a case; `review` opens a case only. A hit an operator cleared
//! stays cleared: the case's reason key (the person and the matched `ent_num`s) is
//! never opened twice.
//!
//! To screen again later, `sanctions_subjects` marks (by person id, nothing else)
//! who has a legal name; the name itself is read from the vault, where sign-up or
//! identity verification sealed it, each read written to the vault's access log.
//! A case keeps only the vault record's id. The name is personal data: never
//! logged, never in a document, never answered outside a case.

use std::sync::{Arc, RwLock};

use mizan_compliance::sanctions::{Decision, Screener, Screening, Subject};
use mizan_core::Secret;
use mizan_ledger::{BusinessRow, Ledger};
use mizan_vault::{Accessor, FieldKind, Reason, RecordId, Role, VaultError};
use serde::{Deserialize, Serialize};

use crate::cases::{self, CaseError, CaseKind, Evidence, NewCase, SanctionsMatch};
use crate::identity::{
    self, Email, Handle, IdentityError, LegalName, Password, Person, PersonId, SharedReader,
};
use crate::vault::SharedVault;

pub const COLLECTION_SANCTIONS_SUBJECTS: &str = "sanctions_subjects";
/// One document (key [`LIST_STATE_KEY`]): the digest of the list everyone was last
/// screened against, so a server that starts with another list screens everyone.
pub const COLLECTION_SANCTIONS_LIST: &str = "sanctions_list";
pub const LIST_STATE_KEY: &str = "screened";
/// The actor sanctions screening reads names from the vault as.
const SCREENING_ACTOR: &str = "mizan-sanctions";
/// People one re-screening page reads at a time.
const RESCREEN_PAGE: usize = 100;

/// When a screening ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signup,
    IdentityVerification,
    Cashout,
    ListReload,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signup => "signup",
            Trigger::IdentityVerification => "identity_verification",
            Trigger::Cashout => "cashout",
            Trigger::ListReload => "list_reload",
        }
    }
}

/// The screener every request shares; a reload swaps it whole. Without a list (a
/// library embedding that configured none) nothing is screened.
#[derive(Debug, Default)]
pub struct ScreenerCell {
    current: RwLock<Option<Arc<Screener>>>,
}

/// The shared screener handle.
pub type SharedScreener = Arc<ScreenerCell>;

impl ScreenerCell {
    pub fn new(screener: Option<Arc<Screener>>) -> SharedScreener {
        Arc::new(ScreenerCell {
            current: RwLock::new(screener),
        })
    }

    /// The screener in force, if a list is loaded.
    pub fn current(&self) -> Option<Arc<Screener>> {
        // Poison only means a holder panicked mid-swap of an Arc: the value is whole.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn replace(&self, screener: Arc<Screener>) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(screener);
    }
}

/// The body of a `sanctions_subjects` marker: the name itself is in the vault.
#[derive(Serialize, Deserialize)]
struct SubjectMarker {}

#[derive(Serialize, Deserialize)]
struct ListState {
    digest: String,
    screened_at_ns: u64,
}

/// A legal name to screen and the vault record it is sealed in (the case keeps
/// only the record).
#[derive(Debug, Clone)]
pub struct KeptName {
    pub record: RecordId,
    pub name: Secret<String>,
}

/// What a screening did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// A case was opened (not a repeat of an earlier one).
    pub opened_case: bool,
}

fn evidence(trigger: Trigger, record: RecordId, screening: &Screening) -> Evidence {
    Evidence::Sanctions {
        trigger: trigger.as_str().to_owned(),
        decision: screening.decision.as_str().to_owned(),
        screened_name_record: Some(record.to_string()),
        matches: screening
            .matches
            .iter()
            .map(|m| SanctionsMatch {
                ent_num: m.ent_num,
                list_name: m.name.clone(),
                score: m.score,
                programs: m.programs.clone(),
            })
            .collect(),
    }
}

/// Screens `name` with the list in force: its decision, and for `review`/`block`
/// the case to open (freezing on `block`). A name the screener cannot read (empty
/// after folding, too long) fails closed: review. Without a list: clear.
fn screening_of(
    screener: &SharedScreener,
    person: PersonId,
    name: &KeptName,
    trigger: Trigger,
) -> (Decision, Option<NewCase>) {
    let Some(current) = screener.current() else {
        return (Decision::Clear, None);
    };
    let screening = match current.screen_as(name.name.expose(), Subject::Person) {
        Ok(screening) => screening,
        Err(error) => {
            tracing::warn!(code = error.code(), "a legal name could not be screened");
            Screening {
                decision: Decision::Review,
                best_score: 0.0,
                matches: Vec::new(),
            }
        }
    };
    let decision = screening.decision;
    tracing::info!(
        decision = decision.as_str(),
        score = screening.best_score,
        trigger = trigger.as_str(),
        "sanctions screening"
    );
    let case = match decision {
        Decision::Clear => None,
        Decision::Review | Decision::Block => {
            let mut ent_nums: Vec<u32> = screening.matches.iter().map(|m| m.ent_num).collect();
            ent_nums.sort_unstable();
            let listed: Vec<String> = ent_nums.iter().map(u32::to_string).collect();
            Some(NewCase {
                person,
                kind: CaseKind::SanctionsHit,
                reason: format!("sanctions:{person}:{}", listed.join(",")),
                evidence: evidence(trigger, name.record, &screening),
                freeze: decision == Decision::Block,
            })
        }
    };
    (decision, case)
}

/// Screens `name` for `person`; on `block` freezes them and opens a case, on
/// `review` opens a case. A name the screener cannot read (empty after folding, too
/// long) fails closed: a review case.
#[tracing::instrument(skip_all, fields(%person, trigger = trigger.as_str()))]
pub async fn screen_person(
    ledger: &Ledger,
    reader: &SharedReader,
    screener: &SharedScreener,
    person: PersonId,
    name: &KeptName,
    trigger: Trigger,
    now_ns: u64,
) -> Result<Outcome, CaseError> {
    let (decision, case) = screening_of(screener, person, name, trigger);
    let opened_case = match case {
        None => false,
        Some(new) => cases::open_case(ledger, reader, new, now_ns)
            .await?
            .is_some(),
    };
    Ok(Outcome {
        decision,
        opened_case,
    })
}

/// Signs a person up; with a legal name, screens it in the same step. The name is
/// sealed in the vault under the new person's id first, then the person, their
/// [`subject_row`] and — on `review` or `block` — the case (and on `block` the
/// freeze) commit in ONE atomic submission: a person never exists unscreened, and a
/// sign-up that fails (handle taken) leaves no case. The vault data of a sign-up
/// that did not commit is crypto-shredded. The answer never says a case opened.
#[tracing::instrument(skip_all)]
#[allow(clippy::too_many_arguments)]
pub async fn signup_screened(
    ledger: &Ledger,
    vault: &SharedVault,
    screener: &SharedScreener,
    handle: Handle,
    email: Email,
    password: Password,
    legal_name: Option<&LegalName>,
    now_ns: u64,
) -> Result<Person, IdentityError> {
    let Some(legal_name) = legal_name else {
        return identity::signup(ledger, handle, email, password, now_ns).await;
    };
    let internal = |context: &str, error: &dyn std::fmt::Display| {
        IdentityError::Internal(format!("{context}: {error}"))
    };
    let person = PersonId::random();
    let record = seal_legal_name(vault, person, legal_name.secret())
        .await
        .map_err(|error| internal("sealing the legal name", &error.code()))?;
    let name = KeptName {
        record,
        name: legal_name.secret().clone(),
    };
    let (_decision, case) = screening_of(screener, person, &name, Trigger::Signup);
    let mut rows = vec![subject_row(person).map_err(|error| internal("the subject", &error))?];
    let mut opened = None;
    if let Some(new) = case {
        // A new person has no freeze yet: nothing permanent to keep.
        let (case, opening) = cases::opening_rows(new, false, now_ns)
            .map_err(|error| internal("the case", &error))?;
        rows.extend(opening);
        opened = Some(case);
    }
    let signed_up =
        identity::signup_as(ledger, person, handle, email, password, rows, now_ns).await;
    if let (Ok(_), Some(case)) = (&signed_up, &opened) {
        tracing::warn!(case = %case.id, froze = case.froze, "compliance case opened");
    }
    if signed_up.is_err() {
        let owner = crate::vault::vault_person(person)
            .map_err(|error| internal("vault id", &error.code()))?;
        if let Err(error) =
            crate::vault::blocking(vault, move |vault| vault.shred_person(owner)).await
        {
            tracing::error!(
                code = error.code(),
                "shredding a failed sign-up's legal name"
            );
        }
    }
    signed_up
}

/// Seals a legal name given outside verification (at sign-up) in the vault.
async fn seal_legal_name(
    vault: &SharedVault,
    person: PersonId,
    name: &Secret<String>,
) -> Result<RecordId, VaultError> {
    let owner = crate::vault::vault_person(person)?;
    let name = name.clone();
    crate::vault::blocking(vault, move |vault| {
        vault.put_person_field(owner, FieldKind::LegalName, name.expose())
    })
    .await
}

/// The person's newest legal name and its record, revealed to screening (as
/// `mizan-sanctions`, a compliance officer; the reveal and `purpose` are in the
/// access log). `None` when there is none or the person was erased.
pub async fn kept_legal_name(
    vault: &SharedVault,
    person: PersonId,
    purpose: &'static str,
) -> Result<Option<KeptName>, CaseError> {
    let owner = crate::vault::vault_person(person)
        .map_err(|error| cases::internal("vault id", error.code()))?;
    crate::vault::blocking(vault, move |vault| {
        let Some(record) = vault.latest_record(owner, FieldKind::LegalName)? else {
            return Ok(None);
        };
        let accessor = Accessor::new(Role::ComplianceOfficer, SCREENING_ACTOR)?;
        match vault.reveal(&accessor, &Reason::parse(purpose)?, record) {
            Ok(name) => Ok(Some(KeptName { record, name })),
            Err(VaultError::Erased) => Ok(None),
            Err(other) => Err(other),
        }
    })
    .await
    .map_err(|error| cases::internal("the vault", error.code()))
}

/// Marks `person` as having a legal name to screen again (cash-outs, list reloads);
/// the name stays in the vault.
pub(crate) fn subject_row(person: PersonId) -> Result<BusinessRow, CaseError> {
    let body = serde_json::to_vec(&SubjectMarker {})
        .map_err(|error| cases::internal("encoding a subject", error))?;
    Ok(BusinessRow::Document {
        collection: COLLECTION_SANCTIONS_SUBJECTS.to_owned(),
        key: person.to_string(),
        body,
    })
}

/// The legal name kept for `person` in the vault, if they verified (and were not
/// erased). `purpose` goes to the vault's access log.
pub async fn subject_name(
    reader: &SharedReader,
    vault: &SharedVault,
    person: PersonId,
    purpose: &'static str,
) -> Result<Option<Secret<String>>, CaseError> {
    if !is_subject(reader, person).await? {
        return Ok(None);
    }
    Ok(kept_legal_name(vault, person, purpose)
        .await?
        .map(|kept| kept.name))
}

/// Whether `person` has a kept legal name to screen (the marker; the name is in the
/// vault).
async fn is_subject(reader: &SharedReader, person: PersonId) -> Result<bool, CaseError> {
    let key = person.to_string();
    let marked = reader
        .read(move |r| r.document(COLLECTION_SANCTIONS_SUBJECTS, &key))
        .await
        .map_err(|error| cases::internal("reading task", error))?
        .map_err(|error| cases::internal("reading a subject", error))?;
    Ok(marked.is_some())
}

/// Before a cash-out: screens the person's kept legal name (none kept: nothing to
/// screen; cash-out needs tier 1 by default, which keeps one).
pub async fn screen_before_cashout(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    screener: &SharedScreener,
    person: PersonId,
    now_ns: u64,
) -> Result<(), CaseError> {
    if !is_subject(reader, person).await? {
        return Ok(());
    }
    if let Some(name) =
        kept_legal_name(vault, person, "sanctions screening before a cash-out").await?
    {
        screen_person(
            ledger,
            reader,
            screener,
            person,
            &name,
            Trigger::Cashout,
            now_ns,
        )
        .await?;
    }
    Ok(())
}

/// What re-screening everyone found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RescreenReport {
    pub screened: u64,
    pub blocked: u64,
    pub review: u64,
    pub cases_opened: u64,
}

/// Screens every kept legal name against the list in force (after a reload).
#[tracing::instrument(skip_all)]
pub async fn rescreen_all(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    screener: &SharedScreener,
    now_ns: u64,
) -> Result<RescreenReport, CaseError> {
    // The digest of the list this pass screens with, stored once everyone is done.
    let digest = screener
        .current()
        .map(|current| current.list_digest().to_owned());
    let mut report = RescreenReport::default();
    let mut after = None;
    loop {
        let rows = crate::documents::with_prefix(
            reader,
            COLLECTION_SANCTIONS_SUBJECTS,
            String::new(),
            after.clone(),
            RESCREEN_PAGE,
        )
        .await
        .map_err(|error| cases::internal("listing subjects", error))?;
        let full = rows.len() == RESCREEN_PAGE;
        for (key, _) in rows {
            let person =
                PersonId::parse(&key).map_err(|error| cases::internal("subject key", error))?;
            let Some(name) =
                kept_legal_name(vault, person, "sanctions re-screening after a list change")
                    .await?
            else {
                // Erased: nothing left to screen.
                after = Some(key);
                continue;
            };
            let outcome = screen_person(
                ledger,
                reader,
                screener,
                person,
                &name,
                Trigger::ListReload,
                now_ns,
            )
            .await?;
            report.screened += 1;
            match outcome.decision {
                Decision::Clear => {}
                Decision::Review => report.review += 1,
                Decision::Block => report.blocked += 1,
            }
            report.cases_opened += u64::from(outcome.opened_case);
            after = Some(key);
        }
        if !full {
            if let Some(digest) = digest {
                store_list_state(ledger, digest, now_ns).await?;
            }
            tracing::info!(
                screened = report.screened,
                blocked = report.blocked,
                review = report.review,
                "re-screened everyone"
            );
            return Ok(report);
        }
    }
}

async fn store_list_state(ledger: &Ledger, digest: String, now_ns: u64) -> Result<(), CaseError> {
    let body = serde_json::to_vec(&ListState {
        digest,
        screened_at_ns: now_ns,
    })
    .map_err(|error| cases::internal("encoding the list state", error))?;
    let row = BusinessRow::Document {
        collection: COLLECTION_SANCTIONS_LIST.to_owned(),
        key: LIST_STATE_KEY.to_owned(),
        body,
    };
    crate::documents::submit_rows(ledger, vec![row])
        .await
        .map_err(|error| cases::internal("storing the list state", error))?;
    Ok(())
}

/// The digest of the list everyone was last screened against, if any pass ran.
pub async fn screened_list_digest(reader: &SharedReader) -> Result<Option<String>, CaseError> {
    let body = reader
        .read(|r| r.document(COLLECTION_SANCTIONS_LIST, LIST_STATE_KEY))
        .await
        .map_err(|error| cases::internal("reading task", error))?
        .map_err(|error| cases::internal("reading the list state", error))?;
    let Some(body) = body else {
        return Ok(None);
    };
    let state: ListState = serde_json::from_slice(&body)
        .map_err(|error| cases::internal("stored list state", error))?;
    Ok(Some(state.digest))
}

/// At start: when the list in force is not the one everyone was last screened
/// against (its digest differs from the stored one, or none is stored), screens
/// everyone as a reload would and stores the new digest. `None` when nothing
/// changed (or no list is configured).
#[tracing::instrument(skip_all)]
pub async fn rescreen_if_list_changed(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    screener: &SharedScreener,
    now_ns: u64,
) -> Result<Option<RescreenReport>, CaseError> {
    let Some(current) = screener.current() else {
        return Ok(None);
    };
    if screened_list_digest(reader).await?.as_deref() == Some(current.list_digest()) {
        tracing::info!("sanctions list unchanged since everyone was last screened");
        return Ok(None);
    }
    tracing::info!("sanctions list changed since everyone was last screened: re-screening");
    rescreen_all(ledger, reader, vault, screener, now_ns)
        .await
        .map(Some)
}
