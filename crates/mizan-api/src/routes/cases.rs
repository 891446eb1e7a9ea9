//! Compliance cases for operators (operator token): `GET /v1/cases` (the queue),
//! `POST /v1/cases` (open one by hand), `GET /v1/cases/{id}`, `POST
//! /v1/cases/{id}/assign`, `POST /v1/cases/{id}/notes`, `POST /v1/cases/{id}/decision`,
//! `GET /v1/cases/{id}/sar` (the SAR draft of a case decided `file_sar`), and `POST
//! /v1/sanctions/reload` (reload the OFAC list, screen everyone again), `GET
//! /v1/reports/ctr?date=` (CTR drafts of a day) and `POST /v1/monitoring/scan`.
//!
//! The operator token is shared, so these routes act as the operator named `api`
//! with the admin role; every action is an audit entry committed with its effect.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use mizan_app::cases::{self, Case, CaseDecision, CaseError, CaseId};
use mizan_app::creation::Creation;
use mizan_app::identity::{self, Handle};
use mizan_app::operators::OperatorAction;
use mizan_app::operators::{Operator, OperatorName, OperatorRole};
use mizan_app::time::rfc3339_from_ns;
use mizan_app::{monitoring, reports, sanctions};
use mizan_core::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, Problem};
use crate::routes::apps::require_operator;
use crate::routes::identity::{ledger, JsonBody};
use crate::routes::payments::optional_idempotency_key;
use crate::state::{load_screener, AppState};

/// The name audit entries carry for actions taken with the operator token.
pub const API_OPERATOR_NAME: &str = "api";

impl From<CaseError> for ApiError {
    fn from(error: CaseError) -> ApiError {
        let code = error.code();
        let refused =
            |status: StatusCode, title: &'static str, field, error: CaseError| ApiError::Refused {
                status,
                code,
                title,
                field,
                detail: error.to_string(),
            };
        match error {
            CaseError::CaseNotFound => refused(StatusCode::NOT_FOUND, "Not found", None, error),
            CaseError::CaseIdInvalid => refused(StatusCode::NOT_FOUND, "Not found", None, error),
            CaseError::NoteInvalid | CaseError::TooManyNotes => refused(
                StatusCode::BAD_REQUEST,
                "Invalid field",
                Some("text"),
                error,
            ),
            CaseError::IdempotencyKeyReused => {
                refused(StatusCode::UNPROCESSABLE_ENTITY, "Refused", None, error)
            }
            CaseError::AssigneeInvalid => refused(
                StatusCode::BAD_REQUEST,
                "Invalid field",
                Some("assignee"),
                error,
            ),
            CaseError::DecisionInvalid => refused(
                StatusCode::BAD_REQUEST,
                "Invalid field",
                Some("decision"),
                error,
            ),
            CaseError::CaseAlreadyDecided | CaseError::AccountClosed | CaseError::NoSarFiled => {
                refused(StatusCode::CONFLICT, "Case state", None, error)
            }
            CaseError::Forbidden => refused(StatusCode::FORBIDDEN, "Forbidden", None, error),
            CaseError::Internal(detail) => {
                tracing::error!(%detail, "case use case failed");
                ApiError::Internal
            }
        }
    }
}

pub(crate) fn api_operator() -> Result<Operator, ApiError> {
    let name = OperatorName::parse(API_OPERATOR_NAME).map_err(|_| ApiError::Internal)?;
    Ok(Operator {
        name,
        role: OperatorRole::Admin,
        expires_at_ns: u64::MAX,
    })
}

fn case_id(text: &str) -> Result<CaseId, ApiError> {
    Ok(CaseId::parse(text)?)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseNoteBody {
    pub operator: String,
    pub text: String,
    pub at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseBody {
    pub id: String,
    /// The person's id (32 hex digits) and handle.
    pub person: String,
    pub handle: String,
    /// `sanctions_hit`, `monitoring_alert` or `manual`.
    pub kind: String,
    /// `open`, `assigned` or `decided`.
    pub status: String,
    pub opened_at: String,
    /// Whether opening the case froze the person.
    pub froze: bool,
    /// Whether the person is frozen now.
    pub frozen: bool,
    pub assignee: Option<String>,
    /// `clear`, `freeze`, `close_account` or `file_sar` once decided.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub notes: Vec<CaseNoteBody>,
    /// What opened the case: `{"type": "sanctions", "trigger", "decision",
    /// "screened_name_record", "matches"}` (plus, in `GET /v1/cases/{id}` only,
    /// `screened_name`: the name revealed from the vault, access-logged, null once
    /// the person is erased), `{"type": "monitoring", "rule", "summary",
    /// "movements"}` or `{"type": "manual"}`.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

pub(crate) async fn case_body(state: &AppState, case: Case) -> Result<CaseBody, ApiError> {
    let person = identity::PersonId::parse(&case.person).map_err(|_| ApiError::Internal)?;
    let reader = state.reader();
    let handle = identity::person_by_id(&reader, person).await?.handle;
    let frozen = cases::is_frozen(&reader, person).await?;
    let evidence = serde_json::to_value(&case.evidence).map_err(|_| ApiError::Internal)?;
    Ok(CaseBody {
        id: case.id,
        person: case.person,
        handle: handle.as_str().to_owned(),
        kind: case.kind.as_str().to_owned(),
        status: case.status.as_str().to_owned(),
        opened_at: rfc3339_from_ns(case.opened_at_ns),
        froze: case.froze,
        frozen,
        assignee: case.assignee,
        decision: case.decision.map(|d| d.as_str().to_owned()),
        decided_by: case.decided_by,
        decided_at: case.decided_at_ns.map(rfc3339_from_ns),
        notes: case
            .notes
            .into_iter()
            .map(|note| CaseNoteBody {
                operator: note.operator,
                text: note.text,
                at: rfc3339_from_ns(note.at_ns),
            })
            .collect(),
        evidence,
    })
}

/// [`case_body`] with the screened name of a sanctions case revealed from the vault
/// (as the `api` operator, a compliance officer; the vault logs the reveal first).
async fn case_body_revealed(state: &AppState, case: Case) -> Result<CaseBody, ApiError> {
    let vault = crate::routes::identity::vault(state)?;
    let reason = format!("reviewing compliance case {}", case.id);
    let operator = api_operator()?;
    let actor = format!("operator:{}", operator.name.as_str());
    let revealed =
        cases::reveal_screened_name(&vault, &case, operator.role.vault_role(), &actor, &reason)
            .await?;
    let mut body = case_body(state, case).await?;
    let name = match revealed {
        cases::ScreenedName::Shown(name) => serde_json::Value::String(name.expose().clone()),
        cases::ScreenedName::NotKept => return Ok(body),
        cases::ScreenedName::Erased | cases::ScreenedName::Denied => serde_json::Value::Null,
    };
    if let Some(evidence) = body.evidence.as_object_mut() {
        evidence.insert("screened_name".to_owned(), name);
    }
    Ok(body)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseListParams {
    /// `queue` (undecided, the default) or `all`.
    pub status: Option<String>,
    /// The last case id of the previous page.
    pub after: Option<String>,
    /// 1–100, default 50.
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseListBody {
    /// Oldest first.
    pub cases: Vec<CaseBody>,
}

const CASES_LIMIT_DEFAULT: usize = 50;

/// The compliance queue: undecided cases, oldest first (or every case with
/// `status=all`). Operator token.
#[utoipa::path(
    get,
    path = "/v1/cases",
    tag = "compliance",
    security(("bearer" = [])),
    params(CaseListParams),
    responses(
        (status = 200, description = "Cases, oldest first", body = CaseListBody),
        (status = 400, description = "`invalid_status`, `invalid_cursor` or `invalid_limit`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list_cases(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CaseListParams>,
) -> Result<Json<CaseListBody>, ApiError> {
    require_operator(&state, &headers)?;
    let undecided_only = match params.status.as_deref() {
        None | Some("queue") => true,
        Some("all") => false,
        Some(_) => {
            return Err(ApiError::InvalidField {
                code: "invalid_status",
                field: "status",
                detail: "a status is \"queue\" or \"all\"".to_owned(),
            })
        }
    };
    let after = match params.after.as_deref() {
        None => None,
        Some(text) => Some(CaseId::parse(text).map_err(|_| ApiError::InvalidField {
            code: "invalid_cursor",
            field: "after",
            detail: "the cursor is not a case id".to_owned(),
        })?),
    };
    let limit = match params.limit.as_deref() {
        None => CASES_LIMIT_DEFAULT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=cases::CASES_PAGE_MAX).contains(limit))
            .ok_or_else(|| ApiError::InvalidField {
                code: "invalid_limit",
                field: "limit",
                detail: "a limit is a whole number from 1 to 100".to_owned(),
            })?,
    };
    let ledger = ledger(&state)?;
    cases::record_view(&ledger, &api_operator()?, None, SystemClock.now_ns()).await?;
    drop(ledger);
    let found = cases::list(&state.reader(), undecided_only, after, limit).await?;
    let mut bodies = Vec::with_capacity(found.len());
    for case in found {
        bodies.push(case_body(&state, case).await?);
    }
    Ok(Json(CaseListBody { cases: bodies }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualCaseRequest {
    /// The person's handle.
    pub handle: String,
    /// Why: 1–2,000 characters; the case's first note.
    pub note: String,
}

/// Opens a case by hand about a person (operator token).
#[utoipa::path(
    post,
    path = "/v1/cases",
    tag = "compliance",
    security(("bearer" = [])),
    request_body = ManualCaseRequest,
    responses(
        (status = 201, description = "The case, open; a retry under the same `Idempotency-Key` answers that case as it is now", body = CaseBody),
        (status = 400, description = "`invalid_body`, `note_invalid` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used for another request", body = Problem, content_type = "application/problem+json")
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry under it never opens a second case"))
)]
pub async fn open_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ManualCaseRequest>,
) -> Result<(StatusCode, Json<CaseBody>), ApiError> {
    require_operator(&state, &headers)?;
    let not_found = || ApiError::Refused {
        status: StatusCode::NOT_FOUND,
        code: "person_not_found",
        title: "Not found",
        field: Some("handle"),
        detail: "no person has that handle".to_owned(),
    };
    let handle = Handle::parse(request.handle.trim_start_matches('@')).map_err(|_| not_found())?;
    let person = identity::person_by_handle(&state.reader(), &handle)
        .await?
        .ok_or_else(not_found)?;
    let creation = optional_idempotency_key(&headers)?.map(|key| {
        Creation::new(
            "operator:cases",
            &key,
            &cases::manual_case_canonical(person, &request.note),
            SystemClock.now_ns(),
        )
    });
    let ledger = ledger(&state)?;
    let case = cases::open_manual(
        &ledger,
        &state.reader(),
        &api_operator()?,
        person,
        &request.note,
        creation.as_ref(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok((StatusCode::CREATED, Json(case_body(&state, case).await?)))
}

/// One case (operator token); a sanctions case's screened name is revealed from the
/// vault for it (`evidence.screened_name`), the reveal in the vault's access log.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}",
    tag = "compliance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The case id")),
    responses(
        (status = 200, description = "The case", body = CaseBody),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found` or `case_id_invalid`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CaseBody>, ApiError> {
    require_operator(&state, &headers)?;
    let id = case_id(&id)?;
    let case = cases::case(&state.reader(), &id).await?;
    let ledger = ledger(&state)?;
    cases::record_view(&ledger, &api_operator()?, Some(&id), SystemClock.now_ns()).await?;
    drop(ledger);
    Ok(Json(case_body_revealed(&state, case).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseAssignRequest {
    /// The operator who takes the case (1–40 letters, digits, spaces, `.`, `_`, `-`).
    pub assignee: String,
}

/// Assigns a case (operator token): `open` → `assigned`. The body names the assignee
/// (`{"assignee": "noor"}`); without a body the case goes to the caller, `api`.
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/assign",
    tag = "compliance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The case id")),
    request_body(content = Option<CaseAssignRequest>, description = "Optional: who takes the case"),
    responses(
        (status = 200, description = "The case, assigned", body = CaseBody),
        (status = 400, description = "`invalid_body` or `assignee_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found` or `case_id_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`case_already_decided`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn assign_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CaseBody>, ApiError> {
    require_operator(&state, &headers)?;
    let id = case_id(&id)?;
    let request: Option<CaseAssignRequest> = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(serde_json::from_slice(&body).map_err(|_| ApiError::InvalidBody)?)
    };
    let ledger = ledger(&state)?;
    let case = cases::assign(
        &ledger,
        &state.reader(),
        &api_operator()?,
        &id,
        request.as_ref().map(|request| request.assignee.as_str()),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok(Json(case_body(&state, case).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseNoteRequest {
    /// 1–2,000 characters.
    pub text: String,
}

/// Adds a note to a case (operator token).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/notes",
    tag = "compliance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The case id")),
    request_body = CaseNoteRequest,
    responses(
        (status = 200, description = "The case with the note", body = CaseBody),
        (status = 400, description = "`invalid_body`, `note_invalid` or `too_many_notes`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found` or `case_id_invalid`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn note_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CaseNoteRequest>,
) -> Result<Json<CaseBody>, ApiError> {
    require_operator(&state, &headers)?;
    let id = case_id(&id)?;
    let ledger = ledger(&state)?;
    let case = cases::add_note(
        &ledger,
        &state.reader(),
        &api_operator()?,
        &id,
        &request.text,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok(Json(case_body(&state, case).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseDecisionRequest {
    /// `clear` (lifts a freeze), `freeze`, `close_account` (frozen for good) or
    /// `file_sar` (a SAR draft at `GET /v1/cases/{id}/sar`).
    pub decision: String,
}

/// Decides a case and applies the decision to the person's freeze (operator token).
#[utoipa::path(
    post,
    path = "/v1/cases/{id}/decision",
    tag = "compliance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The case id")),
    request_body = CaseDecisionRequest,
    responses(
        (status = 200, description = "The case, decided", body = CaseBody),
        (status = 400, description = "`invalid_body` or `decision_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found` or `case_id_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`case_already_decided`, or `account_closed` (a closed account's freeze is never lifted)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn decide_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<CaseDecisionRequest>,
) -> Result<Json<CaseBody>, ApiError> {
    require_operator(&state, &headers)?;
    let decision = CaseDecision::parse(&request.decision)?;
    let id = case_id(&id)?;
    let ledger = ledger(&state)?;
    let case = cases::decide(
        &ledger,
        &state.reader(),
        &api_operator()?,
        &id,
        decision,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    Ok(Json(case_body(&state, case).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReloadBody {
    /// Names and aliases in the reloaded list.
    pub list_names: u64,
    /// People whose kept legal name was screened again.
    pub screened: u64,
    pub blocked: u64,
    pub review: u64,
    /// New cases (a hit already cased is not opened again).
    pub cases_opened: u64,
}

/// Reloads the OFAC list from the configured directory and screens everyone again
/// (operator token). A list that fails to load keeps the old one in force.
#[utoipa::path(
    post,
    path = "/v1/sanctions/reload",
    tag = "compliance",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reloaded and re-screened", body = ReloadBody),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`sanctions_not_configured`: the server has no list directory", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`sanctions_list_unavailable`: the list failed to load; the old one stays", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn reload_sanctions(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ReloadBody>, ApiError> {
    require_operator(&state, &headers)?;
    let Some(directory) = state.config().sanctions_dir.clone() else {
        return Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "sanctions_not_configured",
            title: "No sanctions list",
            field: None,
            detail: "this server was started without a sanctions list directory".to_owned(),
        });
    };
    let ledger = ledger(&state)?;
    let operator = api_operator()?;
    let now_ns = SystemClock.now_ns();
    let target = directory.display().to_string();
    cases::record_action(
        &ledger,
        &operator,
        OperatorAction::ReloadSanctions,
        &target,
        now_ns,
    )
    .await?;
    let loaded = tokio::task::spawn_blocking(move || load_screener(&directory))
        .await
        .map_err(|_| ApiError::Internal)?;
    let screener = loaded.map_err(|error| {
        tracing::error!(%error, "sanctions list reload failed");
        ApiError::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "sanctions_list_unavailable",
            title: "List unavailable",
            field: None,
            detail: "the sanctions list failed to load; the previous list stays in force"
                .to_owned(),
        }
    })?;
    let list_names = screener.name_count() as u64;
    let shared = state.screener();
    shared.replace(screener);
    let report = sanctions::rescreen_all(
        &ledger,
        &state.reader(),
        &crate::routes::identity::vault(&state)?,
        &shared,
        now_ns,
    )
    .await?;
    Ok(Json(ReloadBody {
        list_names,
        screened: report.screened,
        blocked: report.blocked,
        review: report.review,
        cases_opened: report.cases_opened,
    }))
}

/// At `mizan serve` start: when the list loaded is not the one everyone was last
/// screened against (its digest differs from the stored one), screens everyone as
/// `POST /v1/sanctions/reload` does and stores the new digest. Spawned by the
/// binary in the background: the server answers meanwhile, and every sign-up,
/// verification and cash-out is screened against the new list anyway.
pub async fn rescreen_at_start(state: AppState) {
    let (Some(ledger), Some(vault)) = (state.ledger(), state.vault()) else {
        return;
    };
    let rescreened = sanctions::rescreen_if_list_changed(
        &ledger,
        &state.reader(),
        &vault,
        &state.screener(),
        SystemClock.now_ns(),
    )
    .await;
    match rescreened {
        Ok(None) => {}
        Ok(Some(report)) => tracing::info!(
            screened = report.screened,
            blocked = report.blocked,
            review = report.review,
            cases_opened = report.cases_opened,
            "the sanctions list changed since the last start: re-screened everyone"
        ),
        Err(error) => tracing::error!(%error, "re-screening at start failed"),
    }
}

/// The SAR draft of a case decided `file_sar`: FinCEN Form 111's Parts I–V as JSON
/// (operator token). Fields Mizan does not hold are null.
#[utoipa::path(
    get,
    path = "/v1/cases/{id}/sar",
    tag = "compliance",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The case id")),
    responses(
        (status = 200, description = "The SAR draft", body = Object),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found` or `case_id_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`no_sar_filed`: the case was not decided `file_sar`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn sar_draft(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<reports::SarDraft>, ApiError> {
    require_operator(&state, &headers)?;
    let id = case_id(&id)?;
    let reader = state.reader();
    let case = cases::case(&reader, &id).await?;
    let now_ns = SystemClock.now_ns();
    let draft = reports::sar_draft(
        &reader,
        &crate::routes::identity::vault(&state)?,
        &state.config().filer,
        &case,
        now_ns,
    )
    .await?;
    let ledger = ledger(&state)?;
    let target = format!("{} sar", id.as_str());
    cases::record_action(
        &ledger,
        &api_operator()?,
        OperatorAction::ExportReport,
        &target,
        now_ns,
    )
    .await?;
    Ok(Json(draft))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CtrParams {
    /// The UTC day, `YYYY-MM-DD` (required).
    pub date: Option<String>,
    /// `json` (the default) or `csv`.
    pub format: Option<String>,
}

/// The CTR drafts due for one UTC day: everyone whose card funding, or whose
/// cash-outs, added up to more than $10,000 (operator token).
#[utoipa::path(
    get,
    path = "/v1/reports/ctr",
    tag = "compliance",
    security(("bearer" = [])),
    params(CtrParams),
    responses(
        (status = 200, description = "CTR drafts (JSON array, or CSV with `format=csv`)", body = [Object]),
        (status = 400, description = "`invalid_date` or `invalid_format`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn ctr_drafts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<CtrParams>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    require_operator(&state, &headers)?;
    let date = params.date.unwrap_or_default();
    let day_start_ns =
        mizan_app::time::ns_from_date(&date).ok_or_else(|| ApiError::InvalidField {
            code: "invalid_date",
            field: "date",
            detail: "a date is written YYYY-MM-DD".to_owned(),
        })?;
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::InvalidField {
                code: "invalid_format",
                field: "format",
                detail: "a format is \"json\" or \"csv\"".to_owned(),
            })
        }
    };
    let ledger = ledger(&state)?;
    let target = format!("ctr {date}");
    cases::record_action(
        &ledger,
        &api_operator()?,
        OperatorAction::ExportReport,
        &target,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let drafts = reports::ctr_drafts(
        &state.reader(),
        &crate::routes::identity::vault(&state)?,
        &state.config().filer,
        day_start_ns,
    )
    .await?;
    if csv {
        let headers = [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")];
        return Ok((headers, reports::ctr_csv(&drafts)).into_response());
    }
    Ok(Json(drafts).into_response())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScanBody {
    pub people: u64,
    /// New cases (a pattern already cased is not opened again).
    pub cases_opened: u64,
}

/// Runs every transaction-monitoring rule on everyone; each new alert opens a case
/// (operator token).
#[utoipa::path(
    post,
    path = "/v1/monitoring/scan",
    tag = "compliance",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scanned", body = ScanBody),
        (status = 401, description = "`unauthenticated`: missing or wrong operator token", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn monitoring_scan(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ScanBody>, ApiError> {
    require_operator(&state, &headers)?;
    let ledger = ledger(&state)?;
    let now_ns = SystemClock.now_ns();
    cases::record_action(
        &ledger,
        &api_operator()?,
        OperatorAction::ScanMonitoring,
        "",
        now_ns,
    )
    .await?;
    let report =
        monitoring::scan_all(&ledger, &state.reader(), &state.config().monitoring, now_ns).await?;
    Ok(Json(ScanBody {
        people: report.people,
        cases_opened: report.cases_opened,
    }))
}
