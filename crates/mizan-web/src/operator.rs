//! The operator console under `/ops` (English only): sign-in with the server's
//! operator token, people and payment search, a person's accounts and activity, the
//! ledger explorer ([`ledger`]), the webhook delivery log ([`webhooks`]), the
//! compliance queue ([`cases`]) and the audit log.
//!
//! Every page and action writes its audit entry (`mizan_app::operators`) before it
//! reads or shows anything; when that write fails, the page is not shown. Without an
//! operator token configured the console does not exist (404). Pages never render a
//! secret: no session tokens, webhook secrets, API keys, password hashes or
//! card/bank numbers.

mod cases;
mod ledger;
mod webhooks;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use mizan_api::AppState;
use mizan_app::apps::{self, LinkView};
use mizan_app::identity::{self, Handle, Person, WALLET_CURRENCY};
use mizan_app::operators::{
    self, Operator, OperatorAction, OperatorError, OperatorName, OperatorRole,
    OPERATOR_SESSION_LIFETIME_SECONDS,
};
use mizan_app::payments::{self, PaymentError};
use mizan_app::requests::{self, ActivityItem, ActivityQuery};
use mizan_app::vault::Revealed;
use mizan_core::{AccountId, Clock, SystemClock, TransferId};
use mizan_ledger::Ledger;
use mizan_vault::FieldKind;
use serde::Deserialize;

use crate::layout::{self, csrf_field, form_error, submit, Field};
use crate::visitor::{cookie, Form, Visitor};
use crate::WebError;

/// The operator session cookie; scoped to `/ops`, so no other page ever sees it.
pub const OPS_COOKIE: &str = "mizan_ops";
/// Handles one people search lists.
const SEARCH_RESULTS_MAX: usize = 10;
/// Activity lines on a person's page.
const PERSON_ACTIVITY_ITEMS: &str = "20";

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

/// `2026-11-21T14:30:00Z`: operators read exact UTC times.
fn time_of(ns: u64) -> Markup {
    let text = mizan_app::time::rfc3339_from_ns(ns);
    html! { time datetime=(text) { (text) } }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ops", get(dashboard))
        .route("/ops/login", get(login_page).post(login))
        .route("/ops/logout", post(logout))
        .route("/ops/search", get(search))
        .route("/ops/people/{handle}", get(person_page))
        .route("/ops/people/{handle}/reveal", post(reveal))
        .route("/ops/payments/{id}", get(payment_page))
        .route("/ops/ledger", get(ledger::ledger_page))
        .route("/ops/ledger/lookup", get(ledger::lookup))
        .route("/ops/ledger/accounts/{id}", get(ledger::account_page))
        .route("/ops/ledger/transfers/{id}", get(ledger::transfer_page))
        .route("/ops/ledger/verify", post(ledger::verify))
        .route("/ops/webhooks", get(webhooks::webhooks_page))
        .route("/ops/audit", get(audit_page))
        .route("/ops/cases", get(cases::queue_page))
        .route("/ops/cases/{id}", get(cases::case_page))
        .route("/ops/cases/{id}/assign", post(cases::assign))
        .route("/ops/cases/{id}/notes", post(cases::note))
        .route("/ops/cases/{id}/decision", post(cases::decide))
        .route("/ops/cases/{id}/sar", get(cases::sar))
}

// ---------------------------------------------------------------- errors

/// Why an operator page could not be shown.
#[derive(Debug)]
pub enum OpsError {
    /// No operator token configured: the console does not exist.
    NotFound,
    /// No live operator session: go to the console's log-in page.
    LogIn,
    /// The operator's role does not allow this.
    Forbidden,
    /// The form's CSRF token did not match.
    FormExpired,
    /// What the visitor extractor refused (rate limit, a cross-site post).
    Web(WebError),
    /// A use case refused the action (a bad note, a case already decided): shown.
    Refused(String),
    /// A bug or a store failure (the audit write included); logged, never shown.
    Internal(String),
}

impl From<OperatorError> for OpsError {
    fn from(error: OperatorError) -> OpsError {
        match error {
            OperatorError::Unauthenticated => OpsError::LogIn,
            OperatorError::Forbidden => OpsError::Forbidden,
            OperatorError::InvalidName | OperatorError::Internal(_) => {
                OpsError::Internal(error.to_string())
            }
        }
    }
}

impl IntoResponse for OpsError {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            OpsError::NotFound => (StatusCode::NOT_FOUND, "Not found."),
            OpsError::LogIn => return layout::redirect("/ops/login"),
            OpsError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Your operator role does not allow this.",
            ),
            OpsError::FormExpired | OpsError::Web(WebError::FormExpired(_)) => (
                StatusCode::FORBIDDEN,
                "This form has expired. Go back, reload the page and try again.",
            ),
            OpsError::Web(error) => return error.into_response(),
            OpsError::Refused(ref text) => (StatusCode::UNPROCESSABLE_ENTITY, text.as_str()),
            OpsError::Internal(detail) => {
                tracing::error!(%detail, "an operator page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong; nothing was shown. Try again.",
                )
            }
        };
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Mizan operator console" }
                    link rel="stylesheet" href="/assets/app.css";
                }
                body {
                    main #main {
                        h1 { "Mizan operator console" }
                        p.error role="alert" { (text) }
                        p { a href="/ops" { "Dashboard" } }
                    }
                }
            }
        };
        (status, markup).into_response()
    }
}

fn internal(error: impl std::fmt::Display) -> OpsError {
    OpsError::Internal(error.to_string())
}

fn writer(state: &AppState) -> Result<Ledger, OpsError> {
    state
        .ledger()
        .ok_or_else(|| OpsError::Internal("shutting down".to_owned()))
}

// ---------------------------------------------------------------- who is asking

/// Constant-time comparison, so the operator token can't be guessed byte by byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn console_enabled(state: &AppState) -> Result<(), OpsError> {
    if state.config().operator_token.is_some() {
        Ok(())
    } else {
        Err(OpsError::NotFound)
    }
}

/// A visitor of the console's log-in pages (the console exists).
pub struct Console(Visitor);

impl FromRequestParts<AppState> for Console {
    type Rejection = OpsError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, OpsError> {
        console_enabled(state)?;
        let visitor = Visitor::from_request_parts(parts, state)
            .await
            .map_err(OpsError::Web)?;
        Ok(Console(visitor))
    }
}

/// A signed-in operator, with the visitor's CSRF token for the page's forms.
pub struct Ops {
    visitor: Visitor,
    operator: Operator,
    token: String,
}

impl FromRequestParts<AppState> for Ops {
    type Rejection = OpsError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, OpsError> {
        let Console(visitor) = Console::from_request_parts(parts, state).await?;
        let token = cookie(&parts.headers, OPS_COOKIE).unwrap_or("").to_owned();
        let operator = operators::authenticate(&state.reader(), &token, now_ns()).await?;
        Ok(Ops {
            visitor,
            operator,
            token,
        })
    }
}

impl Ops {
    /// Writes the audit entry for `action` on `target`; only then may the page read
    /// and show anything. Refuses an action the operator's role does not allow.
    async fn audit(
        &self,
        state: &AppState,
        action: OperatorAction,
        target: &str,
    ) -> Result<(), OpsError> {
        let ledger = writer(state)?;
        operators::record(&ledger, &self.operator, action, target, now_ns()).await?;
        Ok(())
    }

    /// Reads a posted form and checks its CSRF token.
    fn checked_form(&self, body: &Bytes) -> Result<Form, OpsError> {
        checked_form(&self.visitor, body)
    }
}

fn checked_form(visitor: &Visitor, body: &Bytes) -> Result<Form, OpsError> {
    let form = Form::parse(body);
    visitor
        .check_form(&form)
        .map_err(|_| OpsError::FormExpired)?;
    Ok(form)
}

// ---------------------------------------------------------------- the shell

fn shell(
    visitor: &Visitor,
    operator: Option<&Operator>,
    status: StatusCode,
    title: &str,
    content: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" dir="ltr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                meta name="robots" content="noindex";
                title { (title) " · Mizan operator console" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ops" { "Mizan operators" }
                    @if let Some(operator) = operator {
                        nav aria-label="Operator menu" {
                            ul {
                                li { a href="/ops" { "Dashboard" } }
                                li { a href="/ops/ledger" { "Ledger" } }
                                li { a href="/ops/webhooks" { "Webhooks" } }
                                li { a href="/ops/cases" { "Cases" } }
                                li { a href="/ops/audit" { "Audit log" } }
                            }
                        }
                        form.logout method="post" action="/ops/logout" {
                            (csrf_field(visitor))
                            span.me { bdi { (operator.name.as_str()) } " (" (operator.role.as_str()) ")" }
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { bdi { (title) } }
                    (content)
                }
            }
        }
    };
    let mut response = (status, markup).into_response();
    if let Some(cookie) = visitor.csrf_cookie() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// An operator page: the console shell, with the operator's name and the nav.
fn ops_page(title: &str, ops: &Ops, content: Markup) -> Response {
    shell(
        &ops.visitor,
        Some(&ops.operator),
        StatusCode::OK,
        title,
        content,
    )
}

// ---------------------------------------------------------------- log in and out

fn login_form(
    visitor: &Visitor,
    name: &str,
    name_error: Option<&str>,
    error: Option<&str>,
) -> Markup {
    html! {
        form.card method="post" action="/ops/login" {
            (csrf_field(visitor))
            @if let Some(error) = error { (form_error(error)) }
            (Field::new("name", "Your name").value(name).hint("Shown in the audit log with everything you look at.").error(name_error).autocomplete("username").render())
            (Field::new("token", "Operator token").kind("password").autocomplete("current-password").render())
            div.field {
                label for="field-role" { "Role" }
                select #field-role name="role" {
                    option value="admin" selected { "Admin (compliance: may reveal personal data)" }
                    option value="support" { "Support (names, birth dates, addresses)" }
                    option value="analytics" { "Analytics (aggregates only; no person, payment or personal data)" }
                }
            }
            (submit("Log in", "Logging in…"))
        }
    }
}

pub async fn login_page(Console(visitor): Console) -> Response {
    let content = login_form(&visitor, "", None, None);
    shell(&visitor, None, StatusCode::OK, "Operator log-in", content)
}

fn ops_cookie(token: &str, max_age_s: u64) -> Result<HeaderValue, OpsError> {
    HeaderValue::from_str(&format!(
        "{OPS_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path=/ops; Max-Age={max_age_s}"
    ))
    .map_err(internal)
}

/// Checks the operator token and the name; a refusal writes nothing.
pub async fn login(
    State(state): State<AppState>,
    Console(visitor): Console,
    body: Bytes,
) -> Result<Response, OpsError> {
    let form = checked_form(&visitor, &body)?;
    let Some(expected) = state.config().operator_token.as_ref() else {
        return Err(OpsError::NotFound);
    };
    let token_ok = same_secret(form.raw("token").as_bytes(), expected.expose().as_bytes());
    let name = OperatorName::parse(form.get("name"));
    // The shared token may sign in under a narrower role, never a wider one.
    let role = match form.get("role") {
        "" => Some(OperatorRole::Admin),
        text => OperatorRole::parse(text),
    };
    let refusal = match (&name, token_ok) {
        (Ok(_), true) if role.is_none() => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Choose admin, support or analytics."),
        )),
        (Ok(_), true) => None,
        (Err(_), _) => Some((
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter 1 to 40 letters, digits, spaces, dots, underscores or hyphens."),
            None,
        )),
        (Ok(_), false) => Some((
            StatusCode::UNAUTHORIZED,
            None,
            Some("That operator token is not right."),
        )),
    };
    if let Some((status, name_error, error)) = refusal {
        if !token_ok {
            tracing::warn!("operator log-in refused: wrong token");
        }
        let content = login_form(&visitor, form.get("name"), name_error, error);
        return Ok(shell(&visitor, None, status, "Operator log-in", content));
    }
    let name = name.map_err(internal)?;
    let ledger = writer(&state)?;
    // The shared token grants the full role; the operator may take a narrower one.
    let role = role.unwrap_or(OperatorRole::Admin);
    let session = operators::open_session(&ledger, name, role, now_ns()).await?;
    let mut response = layout::redirect("/ops");
    let cookie = ops_cookie(session.token.expose(), OPERATOR_SESSION_LIFETIME_SECONDS)?;
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn logout(
    State(state): State<AppState>,
    ops: Ops,
    body: Bytes,
) -> Result<Response, OpsError> {
    ops.checked_form(&body)?;
    let ledger = writer(&state)?;
    match operators::close_session(&ledger, &state.reader(), &ops.token, now_ns()).await {
        Ok(()) | Err(OperatorError::Unauthenticated) => {}
        Err(error) => return Err(error.into()),
    }
    let mut response = layout::redirect("/ops/login");
    response
        .headers_mut()
        .append(header::SET_COOKIE, ops_cookie("", 0)?);
    Ok(response)
}

// ---------------------------------------------------------------- dashboard, search

fn search_form(query: &str) -> Markup {
    html! {
        form.card.inline method="get" action="/ops/search" role="search" {
            (Field::new("q", "Find a person or a payment").value(query).hint("A handle or its start (bilal), or a payment, transfer or account id (32 hex digits).").render())
            (submit("Search", "Searching…"))
        }
    }
}

pub async fn dashboard(State(state): State<AppState>, ops: Ops) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewDashboard, "").await?;
    let head = state
        .reader()
        .read(|r| r.chain_head())
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let content = html! {
        (search_form(""))
        section.card {
            h2 { "Ledger" }
            dl.receipt {
                dt { "Transfers" } dd { (head.transfers_count) }
                dt { "Last transfer" } dd { @if head.transfers_count == 0 { "none yet" } @else { (time_of(head.last_timestamp)) } }
                dt { "Chain head" } dd { code.hash { (hex::encode(head.last_hash)) } }
            }
            p { a href="/ops/ledger" { "Explore the ledger and verify the chain" } }
        }
    };
    Ok(ops_page("Dashboard", &ops, content))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// The 32-hex-digit id `text` is, if it is one (UUID hyphens allowed).
fn hex_id(text: &str) -> Option<u128> {
    mizan_core::id::parse_u128_hex(text)
        .ok()
        .filter(|raw| *raw != 0 && *raw != u128::MAX)
}

/// Where an id leads: a payment, a transfer or an account page; `None` if unknown.
async fn place_of(
    state: &AppState,
    raw: u128,
    payments_too: bool,
) -> Result<Option<String>, OpsError> {
    let reader = state.reader();
    if payments_too {
        let id = format!("{raw:032x}");
        match payments::payment_by_id(&reader, &id).await {
            Ok(_) => return Ok(Some(format!("/ops/payments/{id}"))),
            Err(PaymentError::PaymentNotFound) => {}
            Err(error) => return Err(internal(error)),
        }
    }
    let transfer = TransferId::from_raw(raw);
    let transfers = reader
        .read(move |r| r.transfers(&[transfer]))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    if !transfers.is_empty() {
        return Ok(Some(format!("/ops/ledger/transfers/{transfer}")));
    }
    let account = AccountId::from_raw(raw);
    let accounts = reader
        .read(move |r| r.accounts(&[account]))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok((!accounts.is_empty()).then(|| format!("/ops/ledger/accounts/{account}")))
}

pub async fn search(
    State(state): State<AppState>,
    ops: Ops,
    Query(query): Query<SearchQuery>,
) -> Result<Response, OpsError> {
    let text = query.q.trim();
    ops.audit(&state, OperatorAction::Search, text).await?;
    if let Some(raw) = hex_id(text) {
        if let Some(place) = place_of(&state, raw, true).await? {
            return Ok(layout::redirect(&place));
        }
        let content = html! {
            (search_form(text))
            p.notice role="status" { "No payment, transfer or account has that id." }
        };
        return Ok(ops_page("Search", &ops, content));
    }
    let prefix = text.strip_prefix('@').unwrap_or(text);
    let handles = identity::handles_starting_with(&state.reader(), prefix, SEARCH_RESULTS_MAX)
        .await
        .map_err(internal)?;
    let content = html! {
        (search_form(text))
        @if handles.is_empty() {
            p.notice role="status" { "No handle starts with that." }
        } @else {
            ul.apps {
                @for handle in &handles {
                    li { a href={ "/ops/people/" (handle) } { bdi { "@" (handle) } } }
                }
            }
        }
    };
    Ok(ops_page("Search", &ops, content))
}

// ---------------------------------------------------------------- a person

fn person_details(person: &Person) -> Markup {
    html! {
        dl.receipt {
            dt { "Id" } dd { code { (person.id) } }
            dt { "Handle" } dd { bdi { "@" (person.handle.as_str()) } }
            dt { "E-mail" } dd { bdi { (person.email.as_str()) } }
            dt { "Signed up" } dd { (time_of(person.created_at_ns)) }
        }
    }
}

fn activity_line(item: &ActivityItem) -> Markup {
    html! {
        li.activity.in[item.direction == "in"] {
            span.who { (item.direction) " · " bdi { (item.counterparty) } }
            @if !item.note.is_empty() { span.note { (item.note) } }
            time datetime=(item.timestamp) { (item.timestamp) }
            span.amount { (item.amount) " " (item.currency) }
            " "
            a href={ "/ops/ledger/transfers/" (item.transfer_id) } { "transfer" }
            @if let Some(payment) = &item.payment_id {
                " · " a href={ "/ops/payments/" (payment) } { "payment" }
            }
        }
    }
}

fn link_line(link: &LinkView) -> Markup {
    html! {
        li {
            strong { (link.app_name) } " "
            "(app " code { (link.app_id) } ", their user " bdi { (link.external_user_id) } ")"
            " · scopes: "
            @for (index, scope) in link.scopes.iter().enumerate() {
                @if index > 0 { ", " }
                (scope.as_str())
            }
            " · linked " (time_of(link.linked_at_ns))
            @if let Some(revoked) = link.revoked_at_ns { " · revoked " (time_of(revoked)) }
        }
    }
}

pub async fn person_page(
    State(state): State<AppState>,
    ops: Ops,
    Path(handle_text): Path<String>,
) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewPerson, &handle_text)
        .await?;
    let reader = state.reader();
    let handle =
        Handle::parse(handle_text.trim_start_matches('@')).map_err(|_| OpsError::NotFound)?;
    let person_id = identity::person_by_handle(&reader, &handle)
        .await
        .map_err(internal)?
        .ok_or(OpsError::NotFound)?;
    let person = identity::person_by_id(&reader, person_id)
        .await
        .map_err(internal)?;
    let wallet_id = person.id.wallet_id(WALLET_CURRENCY).map_err(internal)?;
    let wallets = reader
        .read(move |r| r.accounts(&[wallet_id]))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let query = ActivityQuery::parse(Some(PERSON_ACTIVITY_ITEMS), None, None).map_err(internal)?;
    let activity = requests::activity(&reader, person.id, query)
        .await
        .map_err(internal)?;
    let links = apps::links_of(&reader, person.id).await.map_err(internal)?;
    let reveal = reveal_form(&ops, person.handle.as_str(), None, None);
    let content = html! {
        section.card { (person_details(&person)) }
        (reveal)
        section.card {
            h2 { "Wallet" }
            @for account in &wallets { (ledger::account_details(account)) }
            @if wallets.is_empty() { p.error { "The wallet account is missing." } }
        }
        section.card {
            h2 { "Recent activity" }
            @if activity.items.is_empty() {
                p { "No activity yet." }
            } @else {
                ul.activity-list { @for item in &activity.items { (activity_line(item)) } }
            }
            p { a href={ "/ops/ledger/accounts/" (wallet_id) } { "Full wallet history" } }
        }
        section.card {
            h2 { "Linked apps" }
            @if links.is_empty() {
                p { "No linked apps." }
            } @else {
                ul.apps { @for link in &links { (link_line(link)) } }
            }
        }
    };
    let title = format!("@{}", person.handle.as_str());
    Ok(ops_page(&title, &ops, content))
}

// ---------------------------------------------------------------- reveal

/// What an operator may ask the vault for, by its field kind code.
const REVEALABLE: [(FieldKind, &str); 6] = [
    (FieldKind::LegalName, "Legal name"),
    (FieldKind::DateOfBirth, "Date of birth"),
    (FieldKind::Address, "Address"),
    (FieldKind::SsnLast4, "SSN last 4"),
    (FieldKind::GovernmentId, "Document number"),
    (
        FieldKind::BankAccountNumber,
        "Bank account (routing + number)",
    ),
];

fn reveal_form(ops: &Ops, handle: &str, error: Option<&str>, shown: Option<Markup>) -> Markup {
    html! {
        section.card #reveal {
            h2 { "Personal data" }
            p.hint {
                "Held encrypted in the vault. A reveal needs a reason; the reason, your name and role and the outcome go to the vault's access log and the audit log. Your role (" (ops.operator.role.as_str()) ") decides what may be shown."
            }
            @if let Some(shown) = shown { (shown) }
            form method="post" action={ "/ops/people/" (handle) "/reveal" } {
                (csrf_field(&ops.visitor))
                @if let Some(error) = error { (form_error(error)) }
                div.field {
                    label for="field-field" { "Field" }
                    select #field-field name="field" {
                        @for (kind, label) in REVEALABLE {
                            option value=(kind.code()) { (label) }
                        }
                    }
                }
                (Field::new("reason", "Reason").hint("8 to 500 characters: the ticket or case this is for.").render())
                (submit("Reveal", "Revealing…"))
            }
        }
    }
}

/// `POST /ops/people/{handle}/reveal`: one vault field, with a reason. The audit
/// entry is written first; the vault writes its access log entry (granted, denied
/// or erased) before it answers.
pub async fn reveal(
    State(state): State<AppState>,
    ops: Ops,
    Path(handle_text): Path<String>,
    body: Bytes,
) -> Result<Response, OpsError> {
    let form = ops.checked_form(&body)?;
    let kind = REVEALABLE
        .iter()
        .map(|(kind, _)| *kind)
        .find(|kind| kind.code() == form.get("field"));
    let target = format!("{handle_text} {}", form.get("field"));
    ops.audit(&state, OperatorAction::RevealPersonalData, &target)
        .await?;
    let reader = state.reader();
    let handle =
        Handle::parse(handle_text.trim_start_matches('@')).map_err(|_| OpsError::NotFound)?;
    let person_id = identity::person_by_handle(&reader, &handle)
        .await
        .map_err(internal)?
        .ok_or(OpsError::NotFound)?;
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
    let (status, error, shown) = match kind {
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Choose a field."),
            None,
        ),
        Some(kind) => {
            let revealed = mizan_app::vault::reveal_for_operator(
                &vault,
                person_id,
                kind,
                ops.operator.role.vault_role(),
                &format!("operator:{actor}"),
                form.get("reason"),
            )
            .await;
            match revealed {
                Err(error) if error.code() == "invalid_input" => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("Give a reason of 8 to 500 characters."),
                    None,
                ),
                Err(error) => return Err(internal(error)),
                Ok(Revealed::Value(value)) => (
                    StatusCode::OK,
                    None,
                    Some(html! { p.revealed { strong { (kind.code()) ": " } output { (value.expose()) } } }),
                ),
                Ok(Revealed::Nothing) => (
                    StatusCode::OK,
                    None,
                    Some(html! { p.revealed { "Nothing of this kind is stored for this person." } }),
                ),
                Ok(Revealed::Denied) => (
                    StatusCode::FORBIDDEN,
                    Some("Your operator role may not reveal this field. The attempt is in the access log."),
                    None,
                ),
                Ok(Revealed::Erased) => (
                    StatusCode::GONE,
                    None,
                    Some(html! { p.revealed { "This person's personal data was erased." } }),
                ),
            }
        }
    };
    let content = reveal_form(&ops, handle.as_str(), error, shown);
    let title = format!("@{} · personal data", handle.as_str());
    let mut response = ops_page(&title, &ops, content);
    *response.status_mut() = status;
    Ok(response)
}

// ---------------------------------------------------------------- a payment

pub async fn payment_page(
    State(state): State<AppState>,
    ops: Ops,
    Path(id): Path<String>,
) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewPayment, &id).await?;
    let reader = state.reader();
    let payment = match payments::payment_by_id(&reader, &id).await {
        Ok(payment) => payment,
        Err(PaymentError::PaymentNotFound) => return Err(OpsError::NotFound),
        Err(error) => return Err(internal(error)),
    };
    let transfer = match payment.transfer_id.parse::<TransferId>() {
        Ok(transfer_id) => reader
            .read(move |r| r.transfers(&[transfer_id]))
            .await
            .map_err(internal)?
            .map_err(internal)?
            .into_iter()
            .next(),
        Err(_) => None,
    };
    let content = html! {
        section.card {
            dl.receipt {
                dt { "Id" } dd { code { (payment.id) } }
                dt { "From" } dd { a href={ "/ops/people/" (payment.from) } { bdi { "@" (payment.from) } } }
                dt { "To" } dd { a href={ "/ops/people/" (payment.to) } { bdi { "@" (payment.to) } } }
                dt { "Amount" } dd.amount { (payment.amount) " " (payment.currency) }
                dt { "Note" } dd { (payment.note) }
                dt { "Status" } dd { (payment.status) }
                dt { "Created" } dd { time datetime=(payment.created_at) { (payment.created_at) } }
            }
        }
        section.card {
            h2 { "Ledger transfer" }
            @match &transfer {
                Some(transfer) => (ledger::transfer_details(transfer)),
                None => p.error { "No ledger transfer " code { (payment.transfer_id) } " was found." },
            }
        }
    };
    Ok(ops_page("Payment", &ops, content))
}

// ---------------------------------------------------------------- the audit log

pub async fn audit_page(State(state): State<AppState>, ops: Ops) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewAudit, "").await?;
    let entries = operators::audit_log(&state.reader(), operators::AUDIT_ENTRIES_MAX).await?;
    let content = html! {
        p.lead { "The latest " (entries.len()) " entries, newest first. Entries are never changed or removed." }
        ul.activity-list.audit {
            @for entry in &entries {
                li.entry {
                    (time_of(entry.at_ns)) " · "
                    strong.operator { bdi { (entry.operator) } } " (" (entry.role.as_str()) ") · "
                    code.action { (entry.action) }
                    @if !entry.target.is_empty() { " · " bdi.target { (entry.target) } }
                }
            }
        }
    };
    Ok(ops_page("Audit log", &ops, content))
}
