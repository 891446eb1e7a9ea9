//! The compliance queue: `/ops/cases` (undecided cases, oldest first) and
//! `/ops/cases/{id}` (evidence, notes, and the forms to assign, note and decide), with
//! the SAR draft download of a case decided `file_sar`.
//!
//! Every view is audited before it reads; every action is audited in the same atomic
//! submission as its effect (`mizan_app::cases`). Deciding and downloading a SAR are
//! admin-only; support operators may view, assign and note.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::cases::{
    self, Case, CaseDecision, CaseError, CaseId, CaseStatus, Evidence, ScreenedName,
};
use mizan_app::identity::{self, PersonId};
use mizan_app::operators::OperatorAction;
use mizan_app::reports;

use super::{internal, now_ns, ops_page, time_of, writer, Ops, OpsError};
use crate::layout::{self, csrf_field, submit};

/// Cases the queue page lists.
const QUEUE_SHOWN: usize = 100;

impl From<CaseError> for OpsError {
    fn from(error: CaseError) -> OpsError {
        match error {
            CaseError::CaseNotFound | CaseError::CaseIdInvalid => OpsError::NotFound,
            CaseError::Forbidden => OpsError::Forbidden,
            CaseError::NoteInvalid
            | CaseError::AssigneeInvalid
            | CaseError::IdempotencyKeyReused
            | CaseError::TooManyNotes
            | CaseError::DecisionInvalid
            | CaseError::CaseAlreadyDecided
            | CaseError::AccountClosed
            | CaseError::NoSarFiled => OpsError::Refused(error.to_string()),
            CaseError::Internal(detail) => OpsError::Internal(detail),
        }
    }
}

async fn handle_of(state: &AppState, person: &str) -> Result<String, OpsError> {
    let id = PersonId::parse(person).map_err(internal)?;
    let found = identity::person_by_id(&state.reader(), id)
        .await
        .map_err(internal)?;
    Ok(found.handle.as_str().to_owned())
}

fn case_line(case: &Case, handle: &str) -> Markup {
    html! {
        li.entry {
            a href={ "/ops/cases/" (case.id) } { (case.kind.as_str()) }
            " · @" bdi { (handle) }
            " · " (case.status.as_str())
            @if let Some(assignee) = &case.assignee { " · " bdi { (assignee) } }
            " · opened " (time_of(case.opened_at_ns))
            @if case.froze { " · " strong { "froze the account" } }
        }
    }
}

/// `GET /ops/cases`.
pub async fn queue_page(State(state): State<AppState>, ops: Ops) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewCases, "").await?;
    let queue = cases::list(&state.reader(), true, None, QUEUE_SHOWN).await?;
    let mut lines = Vec::with_capacity(queue.len());
    for case in &queue {
        lines.push(case_line(case, &handle_of(&state, &case.person).await?));
    }
    let content = html! {
        p.lead { (queue.len()) " undecided cases, oldest first." }
        @if lines.is_empty() {
            p { "The queue is empty." }
        } @else {
            ul.activity-list.cases { @for line in &lines { (line) } }
        }
    };
    Ok(ops_page("Compliance cases", &ops, content))
}

fn evidence(evidence: &Evidence, screened: &ScreenedName) -> Markup {
    match evidence {
        Evidence::Sanctions {
            trigger,
            decision,
            matches,
            ..
        } => html! {
            dl.receipt {
                dt { "Screening" } dd { (decision) " at " (trigger) }
                dt { "Name screened" } dd {
                    @match screened {
                        ScreenedName::Shown(name) => { bdi.screened-name { (name.expose()) } " " small { "(revealed from the vault; in its access log)" } }
                        ScreenedName::Erased => { "erased with the person's data" }
                        ScreenedName::Denied => { "your role may not see legal names" }
                        ScreenedName::NotKept => { "not kept" }
                    }
                }
            }
            ul.activity-list {
                @for m in matches {
                    li { "SDN " (m.ent_num) " · " bdi { (m.list_name) } " · score " (format!("{:.3}", m.score)) " · " (m.programs) }
                }
            }
        },
        Evidence::Monitoring {
            rule,
            summary,
            movements,
        } => html! {
            dl.receipt {
                dt { "Rule" } dd { code { (rule) } }
                dt { "What it saw" } dd { (summary) }
            }
            ul.activity-list {
                @for m in movements {
                    li { (time_of(m.at_ns)) " · " (m.kind) " · " (format!("{}.{:02} {}", m.amount_minor / 100, m.amount_minor % 100, m.currency)) " · "
                        a href={ "/ops/ledger/transfers/" (m.transfer) } { code { (m.transfer) } } }
                }
            }
        },
        Evidence::Manual => html! { p { "Opened by an operator." } },
    }
}

fn action_forms(ops: &Ops, case: &Case) -> Markup {
    let base = format!("/ops/cases/{}", case.id);
    html! {
        @if case.status != CaseStatus::Decided {
            form.card.inline method="post" action={ (base) "/assign" } {
                (csrf_field(&ops.visitor))
                label for="assignee" { "Assign to" }
                input #assignee name="assignee" type="text" maxlength="40" required
                    value=(ops.operator.name.as_str());
                (submit("Assign", "Assigning…"))
            }
        }
        form.card method="post" action={ (base) "/notes" } {
            (csrf_field(&ops.visitor))
            label for="note" { "Add a note" }
            textarea #note name="text" rows="3" maxlength="2000" required {}
            (submit("Add note", "Adding…"))
        }
        @if case.status != CaseStatus::Decided {
            form.card method="post" action={ (base) "/decision" } {
                (csrf_field(&ops.visitor))
                fieldset {
                    legend { "Decide (admin)" }
                    @for (value, label) in [("clear", "Clear: nothing wrong, lift a freeze"), ("freeze", "Freeze outgoing money"), ("close_account", "Close the account (frozen for good)"), ("file_sar", "File a SAR")] {
                        label { input type="radio" name="decision" value=(value) required; " " (label) } br;
                    }
                }
                (submit("Decide", "Deciding…"))
            }
        }
    }
}

/// `GET /ops/cases/{id}`.
pub async fn case_page(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
) -> Result<Response, OpsError> {
    let id = CaseId::parse(&id)?;
    ops.audit(&state, OperatorAction::ViewCase, id.as_str())
        .await?;
    let case = cases::case(&state.reader(), &id).await?;
    let handle = handle_of(&state, &case.person).await?;
    let person = PersonId::parse(&case.person).map_err(internal)?;
    let frozen = cases::is_frozen(&state.reader(), person).await?;
    let vault = state
        .vault()
        .ok_or_else(|| OpsError::Internal("shutting down".to_owned()))?;
    let actor: String = ops
        .operator
        .name
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let screened = cases::reveal_screened_name(
        &vault,
        &case,
        ops.operator.role.vault_role(),
        &format!("operator:{actor}"),
        &format!("reviewing compliance case {}", case.id),
    )
    .await?;
    let content = html! {
        section.card {
            dl.receipt {
                dt { "Person" } dd { a href={ "/ops/people/" (handle) } { "@" bdi { (handle) } } }
                dt { "Kind" } dd { (case.kind.as_str()) }
                dt { "Status" } dd { (case.status.as_str()) }
                dt { "Opened" } dd { (time_of(case.opened_at_ns)) }
                dt { "Account" } dd { @if frozen { strong { "frozen" } } @else { "not frozen" } }
                @if let Some(assignee) = &case.assignee { dt { "Assigned to" } dd { bdi { (assignee) } } }
                @if let Some(decision) = case.decision {
                    dt { "Decision" } dd { (decision.as_str()) " by " bdi { (case.decided_by.clone().unwrap_or_default()) } }
                }
            }
            @if case.decision == Some(CaseDecision::FileSar) {
                p { a href={ "/ops/cases/" (case.id) "/sar" } download { "Download the SAR draft (JSON)" } }
            }
        }
        section.card {
            h2 { "Evidence" }
            (evidence(&case.evidence, &screened))
        }
        section.card {
            h2 { "Notes" }
            @if case.notes.is_empty() { p { "No notes yet." } }
            ul.activity-list.notes {
                @for note in &case.notes {
                    li { (time_of(note.at_ns)) " · " strong { bdi { (note.operator) } } ": " bdi { (note.text) } }
                }
            }
        }
        (action_forms(&ops, &case))
    };
    Ok(ops_page(&format!("Case {}", case.id), &ops, content))
}

fn back_to(id: &CaseId) -> Response {
    layout::redirect(&format!("/ops/cases/{}", id.as_str()))
}

/// `POST /ops/cases/{id}/assign`.
pub async fn assign(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, OpsError> {
    let form = ops.checked_form(&body)?;
    let id = CaseId::parse(&id)?;
    let ledger = writer(&state)?;
    // A form without the field (an old page) assigns to the operator.
    let assignee = Some(form.get("assignee")).filter(|name| !name.is_empty());
    cases::assign(
        &ledger,
        &state.reader(),
        &ops.operator,
        &id,
        assignee,
        now_ns(),
    )
    .await?;
    Ok(back_to(&id))
}

/// `POST /ops/cases/{id}/notes`.
pub async fn note(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, OpsError> {
    let form = ops.checked_form(&body)?;
    let id = CaseId::parse(&id)?;
    let ledger = writer(&state)?;
    cases::add_note(
        &ledger,
        &state.reader(),
        &ops.operator,
        &id,
        form.get("text"),
        now_ns(),
    )
    .await?;
    Ok(back_to(&id))
}

/// `POST /ops/cases/{id}/decision`.
pub async fn decide(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, OpsError> {
    let form = ops.checked_form(&body)?;
    let id = CaseId::parse(&id)?;
    let decision = CaseDecision::parse(form.get("decision"))?;
    let ledger = writer(&state)?;
    cases::decide(
        &ledger,
        &state.reader(),
        &ops.operator,
        &id,
        decision,
        now_ns(),
    )
    .await?;
    Ok(back_to(&id))
}

/// `GET /ops/cases/{id}/sar`: the SAR draft as a JSON download (admin).
pub async fn sar(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
) -> Result<Response, OpsError> {
    let id = CaseId::parse(&id)?;
    let target = format!("{} sar", id.as_str());
    ops.audit(&state, OperatorAction::ExportReport, &target)
        .await?;
    let case = cases::case(&state.reader(), &id).await?;
    let vault = state
        .vault()
        .ok_or_else(|| OpsError::Internal("shutting down".to_owned()))?;
    let draft = reports::sar_draft(
        &state.reader(),
        &vault,
        &state.config().filer,
        &case,
        now_ns(),
    )
    .await?;
    let body = serde_json::to_vec_pretty(&draft).map_err(internal)?;
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"sar-{}.json\"",
        id.as_str()
    ))
    .map_err(internal)?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    Ok((StatusCode::OK, headers, body).into_response())
}
