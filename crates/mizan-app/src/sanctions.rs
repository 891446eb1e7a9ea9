//! Sanctions screening of the people on the platform, with the screener of
//! `mizan-compliance` (how it matches: docs/COMPLIANCE.md).
//!
//! A person's legal name is screened when they verify their identity (sign-up takes
//! only a handle, so verification is where a name first exists and where it changes),
//! before every cash-out, and for everyone when the list is reloaded. `block` freezes
//! the person and opens a case; `review` opens a case only. A hit an operator cleared
//! stays cleared: the case's reason key (the person and the matched `ent_num`s) is
//! never opened twice.
//!
//! To screen again later, `sanctions_subjects` marks (by person id, nothing else)
//! who has a verified legal name; the name itself is read from the vault, where
//! identity verification sealed it, each read written to the vault's access log.
//! It is personal data: never logged, never answered outside a case.

use std::sync::{Arc, RwLock};

use mizan_compliance::sanctions::{Decision, Screener, Screening};
use mizan_core::Secret;
use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};

use crate::cases::{self, CaseError, CaseKind, Evidence, NewCase, SanctionsMatch};
use crate::identity::{PersonId, SharedReader};
use crate::vault::SharedVault;

pub const COLLECTION_SANCTIONS_SUBJECTS: &str = "sanctions_subjects";
/// People one re-screening page reads at a time.
const RESCREEN_PAGE: usize = 100;

/// When a screening ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    IdentityVerification,
    Cashout,
    ListReload,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
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

#[derive(Serialize, Deserialize)]
struct Subject {}

/// What a screening did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    /// A case was opened (not a repeat of an earlier one).
    pub opened_case: bool,
}

fn evidence(trigger: Trigger, name: &str, screening: &Screening) -> Evidence {
    Evidence::Sanctions {
        trigger: trigger.as_str().to_owned(),
        decision: screening.decision.as_str().to_owned(),
        screened_name: cases::PersonalText::new(name.to_owned()),
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

/// Screens `name` for `person`; on `block` freezes them and opens a case, on
/// `review` opens a case. A name the screener cannot read (empty after folding, too
/// long) fails closed: a review case.
#[tracing::instrument(skip_all, fields(%person, trigger = trigger.as_str()))]
pub async fn screen_person(
    ledger: &Ledger,
    reader: &SharedReader,
    screener: &SharedScreener,
    person: PersonId,
    name: &Secret<String>,
    trigger: Trigger,
    now_ns: u64,
) -> Result<Outcome, CaseError> {
    let Some(current) = screener.current() else {
        return Ok(Outcome {
            decision: Decision::Clear,
            opened_case: false,
        });
    };
    let screening = match current.screen(name.expose()) {
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
        "sanctions screening"
    );
    let opened_case = match decision {
        Decision::Clear => false,
        Decision::Review | Decision::Block => {
            let mut ent_nums: Vec<u32> = screening.matches.iter().map(|m| m.ent_num).collect();
            ent_nums.sort_unstable();
            let listed: Vec<String> = ent_nums.iter().map(u32::to_string).collect();
            let reason = format!("sanctions:{person}:{}", listed.join(","));
            let new = NewCase {
                person,
                kind: CaseKind::SanctionsHit,
                reason,
                evidence: evidence(trigger, name.expose(), &screening),
                freeze: decision == Decision::Block,
            };
            cases::open_case(ledger, reader, new, now_ns)
                .await?
                .is_some()
        }
    };
    Ok(Outcome {
        decision,
        opened_case,
    })
}

/// Marks `person` as having a legal name to screen again (cash-outs, list reloads);
/// the name stays in the vault.
pub(crate) fn subject_row(person: PersonId) -> Result<BusinessRow, CaseError> {
    let body = serde_json::to_vec(&Subject {})
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
    let key = person.to_string();
    let marked = reader
        .read(move |r| r.document(COLLECTION_SANCTIONS_SUBJECTS, &key))
        .await
        .map_err(|error| cases::internal("reading task", error))?
        .map_err(|error| cases::internal("reading a subject", error))?;
    if marked.is_none() {
        return Ok(None);
    }
    crate::vault::legal_name_for_screening(vault, person, purpose)
        .await
        .map_err(|error| cases::internal("the vault", error.code()))
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
    if let Some(name) = subject_name(
        reader,
        vault,
        person,
        "sanctions screening before a cash-out",
    )
    .await?
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
            let Some(name) = crate::vault::legal_name_for_screening(
                vault,
                person,
                "sanctions re-screening after a list reload",
            )
            .await
            .map_err(|error| cases::internal("the vault", error.code()))?
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
