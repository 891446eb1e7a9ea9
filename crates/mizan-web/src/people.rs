//! People's pages: sign up, log in, home, send, request, split, add money, cash out,
//! activity, receipts, linked apps and settings.
//!
//! Every POST checks the CSRF token first, parses its fields into domain types, calls
//! the use case, and then either redirects to the result (303) or shows the form
//! again with the error next to the field it is about and what was typed kept.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::apps::{self, AppError, Caller};
use mizan_app::cashout::{self, BankAccount};
use mizan_app::funding::{self, CardNumber};
use mizan_app::identity::{
    self, Email, Handle, IdentityError, LegalName, Password, Person, SESSION_LIFETIME_SECONDS,
};
use mizan_app::payments::{
    self, DeclineReason, IdempotencyKey, Note, PaymentError, PaymentRequest,
};
use mizan_app::requests::{self, ActivityItem, ActivityQuery, Closing, NewRequest, NewSplit};
use mizan_app::totp::{self, TotpError};
use mizan_core::{Clock, Secret, SystemClock};
use mizan_ledger::Ledger;
use serde::Deserialize;

use crate::i18n::{self, Lang, T};
use crate::layout::{self, csrf_field, form_error, key_field, notice, page, submit, Field};
use crate::visitor::{form_key, random_token, Form, Visitor, LANG_COOKIE, SESSION_COOKIE};
use crate::WebError;

/// Activity lines on the home page.
const HOME_ACTIVITY_ITEMS: usize = 6;
/// Activity lines per page of the activity list.
const ACTIVITY_PAGE_ITEMS: usize = 25;
/// Requests the requests page lists.
const REQUESTS_SHOWN: usize = 50;
/// Seconds a language choice is remembered.
const LANG_COOKIE_SECONDS: u64 = 365 * 24 * 3_600;

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

fn ledger(state: &AppState, lang: Lang) -> Result<Ledger, WebError> {
    state
        .ledger()
        .ok_or_else(|| WebError::Internal(lang, "shutting down".to_owned()))
}

/// What went wrong with a submitted form: errors by field, or for the whole form.
/// Most texts are fixed; a few (the limit that was hit and when it resets) are
/// written for the error at hand.
#[derive(Debug, Default)]
struct Problems {
    fields: Vec<(&'static str, Cow<'static, str>)>,
    form: Option<&'static str>,
}

impl Problems {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, text)| text.as_ref())
    }

    fn add(&mut self, field: &'static str, text: impl Into<Cow<'static, str>>) {
        if self.field(field).is_none() {
            self.fields.push((field, text.into()));
        }
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.form.is_none()
    }

    fn render_form_error(&self) -> Markup {
        html! {
            @if let Some(text) = self.form { (form_error(text)) }
        }
    }
}

/// The words for a payment error, and the field it is about ("" for the whole form);
/// `None` for errors that are bugs (logged, shown as "something went wrong").
fn payment_problem(error: &PaymentError) -> Option<(&'static str, T)> {
    Some(match error {
        PaymentError::AmountMalformed | PaymentError::UnknownCurrency => {
            ("amount", T::ErrBadAmount)
        }
        PaymentError::CurrencyNotSupported => ("amount", T::ErrBadAmount),
        PaymentError::AmountTooPrecise => ("amount", T::ErrTooPrecise),
        PaymentError::AmountTooLarge => ("amount", T::ErrAmountLarge),
        PaymentError::AmountMustBePositive => ("amount", T::ErrAmountPositive),
        PaymentError::NoteTooLong => ("note", T::ErrNoteLong),
        PaymentError::RecipientNotFound => ("to", T::ErrNoSuchHandle),
        PaymentError::CannotPayYourself => ("to", T::ErrSelf),
        PaymentError::CannotRequestFromYourself => ("to", T::ErrSelfRequest),
        PaymentError::InsufficientFunds => ("amount", T::ErrFunds),
        PaymentError::SplitPeopleInvalid => ("with", T::ErrSplitPeople),
        PaymentError::CardNumberInvalid => ("card_number", T::ErrCard),
        PaymentError::CardDeclined(DeclineReason::InsufficientFunds) => {
            ("card_number", T::ErrDeclinedFunds)
        }
        PaymentError::CardDeclined(DeclineReason::StolenCard) => {
            ("card_number", T::ErrDeclinedStolen)
        }
        PaymentError::CardDeclined(_) => ("card_number", T::ErrDeclined),
        PaymentError::FundingNotAwaitingChallenge => ("", T::ErrRequestClosed),
        PaymentError::RoutingNumberInvalid => ("routing_number", T::ErrRouting),
        PaymentError::AccountNumberInvalid => ("account_number", T::ErrAccount),
        PaymentError::CashoutReturned(_) => ("account_number", T::ErrReturned),
        PaymentError::RequestNotOpen | PaymentError::RequestActionNotAllowed => {
            ("", T::ErrRequestClosed)
        }
        PaymentError::IdempotencyRequestInProgress => ("", T::ErrInProgress),
        PaymentError::IdempotencyKeyReused => ("", T::FormExpired),
        PaymentError::LimitExceeded { .. } => ("amount", T::ErrLimit),
        PaymentError::CapabilityUnavailable { .. } => ("", T::ErrUnavailable),
        PaymentError::VerificationRequired { .. } => ("", T::ErrVerify),
        PaymentError::AccountFrozen => ("", T::ErrFrozen),
        _ => return None,
    })
}

/// Turns a payment error into problems for the form, or into an error page.
fn payment_problems(lang: Lang, error: PaymentError) -> Result<Problems, WebError> {
    if let PaymentError::LimitExceeded { limit, resets_at } = &error {
        let mut problems = Problems::default();
        problems.add("amount", i18n::limit_exceeded(lang, limit, resets_at));
        return Ok(problems);
    }
    match payment_problem(&error) {
        Some((field, text)) => {
            let mut problems = Problems::default();
            if field.is_empty() {
                problems.form = Some(text.get(lang));
            } else {
                problems.add(field, text.get(lang));
            }
            Ok(problems)
        }
        None => Err(match error {
            PaymentError::PaymentNotFound
            | PaymentError::PostNotFound
            | PaymentError::RequestNotFound
            | PaymentError::FundingNotFound => WebError::NotFound(lang),
            other => WebError::Internal(lang, other.to_string()),
        }),
    }
}

fn identity_problems(lang: Lang, error: IdentityError) -> Result<Problems, WebError> {
    let (field, text) = match error {
        IdentityError::InvalidHandle => ("handle", T::ErrHandle),
        IdentityError::InvalidEmail => ("email", T::ErrEmail),
        IdentityError::WeakPassword => ("password", T::ErrWeakPassword),
        IdentityError::HandleTaken => ("handle", T::ErrHandleTaken),
        IdentityError::EmailTaken => ("email", T::ErrEmailTaken),
        IdentityError::InvalidCredentials => ("", T::ErrCredentials),
        IdentityError::WrongPassword => ("current_password", T::ErrWrongPassword),
        IdentityError::InvalidLegalName => ("legal_name", T::ErrLegalName),
        other => return Err(WebError::Internal(lang, other.to_string())),
    };
    let mut problems = Problems::default();
    if field.is_empty() {
        problems.form = Some(text.get(lang));
    } else {
        problems.add(field, text.get(lang));
    }
    Ok(problems)
}

fn internal(lang: Lang) -> impl Fn(String) -> WebError {
    move |detail| WebError::Internal(lang, detail)
}

/// Reads the form and checks its CSRF token.
fn checked_form(visitor: &Visitor, body: &Bytes) -> Result<Form, WebError> {
    let form = Form::parse(body);
    visitor.check_form(&form)?;
    Ok(form)
}

/// A handle as people type it: `@bilal` or `bilal`.
fn handle_text(text: &str) -> &str {
    text.strip_prefix('@').unwrap_or(text)
}

/// Runs the second-factor check for a movement of `amount_minor`: passes when none is
/// needed, steps up with `code` when one is given, and otherwise says a code is needed.
pub(crate) async fn step_up(
    state: &AppState,
    caller: &Caller,
    amount_minor: i64,
    code: &str,
    lang: Lang,
) -> Result<Result<(), &'static str>, WebError> {
    let reader = state.reader();
    let threshold = state.config().step_up_threshold_minor;
    let needed = totp::require_step_up(&reader, caller, amount_minor, threshold, now_ns()).await;
    match needed {
        Ok(()) => return Ok(Ok(())),
        Err(TotpError::StepUpRequired) => {}
        Err(other) => return Err(WebError::Internal(lang, other.to_string())),
    }
    if code.is_empty() {
        return Ok(Err(T::StepUpNeeded.get(lang)));
    }
    let Some(session_key) = caller.session_key.as_deref() else {
        return Ok(Err(T::StepUpNeeded.get(lang)));
    };
    let ledger = ledger(state, lang)?;
    match totp::step_up(
        &ledger,
        &reader,
        &state
            .vault()
            .ok_or_else(|| internal(lang)("shutting down".to_owned()))?,
        &caller.person,
        session_key,
        code,
        now_ns(),
    )
    .await
    {
        Ok(()) => Ok(Ok(())),
        Err(TotpError::InvalidCode) => Ok(Err(T::ErrTotpCode.get(lang))),
        Err(other) => Err(WebError::Internal(lang, other.to_string())),
    }
}

/// Whether a form's error is about the authenticator code (shown at its field).
fn is_code_problem(lang: Lang, text: &str) -> bool {
    text == T::StepUpNeeded.get(lang) || text == T::ErrTotpCode.get(lang)
}

fn code_field(lang: Lang, error: Option<&str>) -> Markup {
    Field::new("code", T::AuthenticatorCode.get(lang))
        .inputmode("numeric")
        .autocomplete("one-time-code")
        .error(error)
        .render()
}

// ---------------------------------------------------------------- sign up, log in

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn session_cookie(token: &str) -> Result<HeaderValue, WebError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age={SESSION_LIFETIME_SECONDS}"
    ))
    .map_err(|error| WebError::Internal(Lang::En, error.to_string()))
}

fn signup_form(visitor: &Visitor, form: &Form, problems: &Problems) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/signup" novalidate {
            (csrf_field(visitor))
            (problems.render_form_error())
            (Field::new("handle", T::Handle.get(lang)).value(form.get("handle"))
                .hint(T::HandleHint.get(lang)).autocomplete("username")
                .error(problems.field("handle")).render())
            (Field::new("email", T::Email.get(lang)).kind("email").value(form.get("email"))
                .autocomplete("email").error(problems.field("email")).render())
            (Field::new("password", T::Password.get(lang)).kind("password")
                .hint(T::PasswordHint.get(lang)).autocomplete("new-password")
                .error(problems.field("password")).render())
            (Field::new("legal_name", T::FullLegalName.get(lang)).value(form.get("legal_name"))
                .hint(T::FullLegalNameHint.get(lang)).autocomplete("name")
                .error(problems.field("legal_name")).render())
            (submit(T::SignUp.get(lang), T::Working.get(lang)))
        }
        p { (T::HaveAccount.get(lang)) " " a href="/login" { (T::LogIn.get(lang)) } }
    }
}

pub async fn signup_page(visitor: Visitor) -> Response {
    let content = signup_form(&visitor, &Form::default(), &Problems::default());
    page(
        &visitor,
        StatusCode::OK,
        T::SignUp.get(visitor.lang),
        content,
    )
}

pub async fn signup(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let form = checked_form(&visitor, &body)?;
    let mut problems = Problems::default();
    let handle = Handle::parse(handle_text(form.get("handle")));
    let email = Email::parse(form.get("email"));
    let password = Password::parse(Secret::new(form.raw("password").to_owned()));
    // Required here (the API's field is optional): the web sign-up screens everyone.
    let legal_name = LegalName::parse(form.raw("legal_name"));
    for error in [
        handle.as_ref().err(),
        email.as_ref().err(),
        password.as_ref().err(),
        legal_name.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    {
        let more = identity_problems(lang, error.clone())?;
        for (field, text) in more.fields {
            problems.add(field, text);
        }
    }
    if let (Ok(handle), Ok(email), Ok(password), Ok(legal_name)) =
        (handle, email, password, legal_name)
    {
        let ledger = ledger(&state, lang)?;
        let vault = state
            .vault()
            .ok_or_else(|| WebError::Internal(lang, "shutting down".to_owned()))?;
        let signed_up = mizan_app::sanctions::signup_screened(
            &ledger,
            &vault,
            &state.screener(),
            handle.clone(),
            email,
            password,
            Some(&legal_name),
            now_ns(),
        )
        .await;
        match signed_up {
            Ok(_person) => {
                let session = identity::login(
                    &state.reader(),
                    &ledger,
                    handle.as_str(),
                    Secret::new(form.raw("password").to_owned()),
                    now_ns(),
                )
                .await
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
                let mut response = layout::redirect("/?done=welcome");
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, session_cookie(session.token.expose())?);
                return Ok(response);
            }
            Err(error) => problems = identity_problems(lang, error)?,
        }
    }
    let content = signup_form(&visitor, &form, &problems);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::SignUp.get(lang),
        content,
    ))
}

fn login_form(visitor: &Visitor, login: &str, next: &str, problems: &Problems) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/login" novalidate {
            (csrf_field(visitor))
            input type="hidden" name="next" value=(next);
            (problems.render_form_error())
            (Field::new("login", T::HandleOrEmail.get(lang)).value(login)
                .autocomplete("username").render())
            (Field::new("password", T::Password.get(lang)).kind("password")
                .autocomplete("current-password").render())
            (submit(T::LogIn.get(lang), T::Working.get(lang)))
        }
        p { (T::NoAccount.get(lang)) " " a href="/signup" { (T::SignUp.get(lang)) } }
    }
}

pub async fn login_page(visitor: Visitor, Query(query): Query<NextQuery>) -> Response {
    let next = layout::local_path(query.next.as_deref().unwrap_or("/"));
    let content = login_form(&visitor, "", next, &Problems::default());
    page(
        &visitor,
        StatusCode::OK,
        T::LogIn.get(visitor.lang),
        content,
    )
}

pub async fn login(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let form = checked_form(&visitor, &body)?;
    let next = layout::local_path(form.get("next")).to_owned();
    let ledger = ledger(&state, lang)?;
    let login = handle_text(form.get("login"));
    let password = Secret::new(form.raw("password").to_owned());
    match identity::login(&state.reader(), &ledger, login, password, now_ns()).await {
        Ok(session) => {
            let mut response = layout::redirect(&next);
            response
                .headers_mut()
                .append(header::SET_COOKIE, session_cookie(session.token.expose())?);
            Ok(response)
        }
        Err(error) => {
            let problems = identity_problems(lang, error)?;
            let content = login_form(&visitor, form.get("login"), &next, &problems);
            Ok(page(
                &visitor,
                StatusCode::UNAUTHORIZED,
                T::LogIn.get(lang),
                content,
            ))
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    checked_form(&visitor, &body)?;
    if let Some(token) = &visitor.session_token {
        let ledger = ledger(&state, lang)?;
        match identity::logout(&ledger, &state.reader(), token, now_ns()).await {
            Ok(()) | Err(IdentityError::Unauthenticated) => {}
            Err(error) => return Err(WebError::Internal(lang, error.to_string())),
        }
    }
    let mut response = layout::redirect("/login");
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "mizan_session=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0",
        ),
    );
    Ok(response)
}

pub async fn set_language(Path(lang): Path<String>, headers: HeaderMap) -> Response {
    let lang = Lang::parse(&lang).unwrap_or_default();
    let back = headers
        .get(header::REFERER)
        .and_then(|value| value.to_str().ok())
        .and_then(|referer| {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let rest = referer
                .strip_prefix("http://")
                .or_else(|| referer.strip_prefix("https://"))?;
            rest.strip_prefix(host).map(str::to_owned)
        })
        .unwrap_or_else(|| "/".to_owned());
    let mut response = layout::redirect(layout::local_path(&back));
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Secure; SameSite=Lax; Path=/; Max-Age={LANG_COOKIE_SECONDS}",
        lang.code()
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

// ---------------------------------------------------------------- home

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn done_notice(lang: Lang, done: Option<&str>) -> Markup {
    let text = match done {
        Some("sent") => Some(T::Sent),
        Some("added") => Some(T::MoneyAdded),
        Some("requested") => Some(T::RequestSent),
        Some("split") => Some(T::SplitDone),
        Some("cashout") => Some(T::CashOutDone),
        Some("password") => Some(T::PasswordChanged),
        Some("totp") => Some(T::TwoFactorDone),
        _ => None,
    };
    html! { @if let Some(text) = text { (notice(text.get(lang))) } }
}

fn activity_line(lang: Lang, item: &ActivityItem) -> Markup {
    let incoming = item.direction == "in";
    let amount = i18n::stored_money(lang, &item.amount, &item.currency);
    let sign = if incoming { "+" } else { "−" };
    let who = match item.counterparty.as_str() {
        "card funding" => T::AddMoney.get(lang).to_owned(),
        "bank cash-out" => T::CashOut.get(lang).to_owned(),
        handle => format!("@{handle}"),
    };
    html! {
        li.activity.in[incoming].out[!incoming] {
            span.who {
                @if let Some(payment) = &item.payment_id {
                    a href={ "/receipts/" (payment) } { bdi { (who) } }
                } @else { bdi { (who) } }
            }
            @if !item.note.is_empty() { span.note { (item.note) } }
            time datetime=(item.timestamp) { (i18n::date_time(lang, &item.timestamp)) }
            span.amount { bdi { (sign) (amount) } }
        }
    }
}

/// The balance and the latest activity: the part of the home page live updates refresh.
async fn summary(state: &AppState, person: &Person, lang: Lang) -> Result<Markup, WebError> {
    let balances = identity::wallet_balances(&state.reader(), person.id)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let available = balances.available;
    let on_hold = balances
        .posted
        .checked_sub(available)
        .unwrap_or(balances.posted);
    let query = ActivityQuery::parse(Some(&HOME_ACTIVITY_ITEMS.to_string()), None, None)
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let page = requests::activity(&state.reader(), person.id, query)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    Ok(html! {
        section.balance aria-labelledby="balance-title" {
            h2 #balance-title { (T::Balance.get(lang)) }
            p.big #balance { bdi { (i18n::money(lang, available)) } }
            @if on_hold.minor_units() > 0 {
                p.hint { (T::OnHold.get(lang)) ": " bdi { (i18n::money(lang, on_hold)) } }
            }
            @if balances.pending.minor_units() > 0 {
                p.hint #incoming {
                    (T::Incoming.get(lang)) ": " bdi { (i18n::money(lang, balances.pending)) }
                }
            }
        }
        section aria-labelledby="recent-title" {
            h2 #recent-title { (T::RecentActivity.get(lang)) }
            @if page.items.is_empty() {
                p { (T::NoActivity.get(lang)) }
            } @else {
                ul.activity-list #recent { @for item in &page.items { (activity_line(lang, item)) } }
                p { a href="/activity" { (T::SeeAll.get(lang)) } }
            }
        }
    })
}

pub async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let Some(caller) = &visitor.caller else {
        let content = html! {
            p.lead { (T::Tagline.get(lang)) }
            p.actions {
                a.button.primary href="/signup" { (T::SignUp.get(lang)) }
                a.button href="/login" { (T::LogIn.get(lang)) }
            }
        };
        return Ok(page(
            &visitor,
            StatusCode::OK,
            T::AppName.get(lang),
            content,
        ));
    };
    let summary = summary(&state, &caller.person, lang).await?;
    let content = html! {
        (done_notice(lang, done.done.as_deref()))
        p.actions {
            a.button.primary href="/send" { (T::Send.get(lang)) }
            a.button href="/request" { (T::RequestMoney.get(lang)) }
            a.button href="/add-money" { (T::AddMoney.get(lang)) }
        }
        div #summary data-live="/live/summary" { (summary) }
    };
    let title = format!("@{}", caller.person.handle.as_str());
    Ok(page(&visitor, StatusCode::OK, &title, content))
}

/// `GET /live/summary`: the home page's balance and activity, for live refresh.
pub async fn live_summary(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let person = visitor.person()?;
    Ok(summary(&state, person, visitor.lang).await?.into_response())
}

#[derive(Deserialize)]
pub struct HandleQuery {
    q: Option<String>,
}

/// `GET /handles?q=bi`: handles starting with `q`, for the send form's autocomplete.
pub async fn handle_suggestions(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<HandleQuery>,
) -> Result<Response, WebError> {
    let person = visitor.person()?;
    let prefix = handle_text(query.q.as_deref().unwrap_or_default().trim());
    let handles =
        identity::handles_starting_with(&state.reader(), prefix, identity::HANDLE_SUGGESTIONS_MAX)
            .await
            .map_err(|error| WebError::Internal(visitor.lang, error.to_string()))?;
    let handles: Vec<String> = handles
        .into_iter()
        .filter(|handle| handle != person.handle.as_str())
        .collect();
    Ok(Json(handles).into_response())
}

// ---------------------------------------------------------------- send, request, split

#[derive(Deserialize)]
pub struct SendQuery {
    to: Option<String>,
}

fn send_form(visitor: &Visitor, form: &Form, key: &str, problems: &Problems, code: bool) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/send" novalidate {
            (csrf_field(visitor))
            (key_field(key))
            (problems.render_form_error())
            (Field::new("to", T::To.get(lang)).value(form.get("to")).list("handle-suggestions")
                .hint(T::HandleHint.get(lang)).error(problems.field("to")).render())
            datalist #handle-suggestions {}
            (Field::new("amount", T::Amount.get(lang)).value(form.get("amount"))
                .inputmode("decimal").hint(T::AmountHint.get(lang))
                .error(problems.field("amount")).render())
            (Field::new("note", T::Note.get(lang)).value(form.get("note")).optional()
                .error(problems.field("note")).render())
            @if code { (code_field(lang, problems.field("code"))) }
            (submit(T::SendMoney.get(lang), T::Sending.get(lang)))
        }
    }
}

pub async fn send_page(
    visitor: Visitor,
    Query(query): Query<SendQuery>,
) -> Result<Response, WebError> {
    visitor.person()?;
    let prefill = format!(
        "to={}",
        layout::query_escape(query.to.as_deref().unwrap_or_default())
    );
    let form = Form::parse(prefill.as_bytes());
    let content = send_form(
        &visitor,
        &form,
        &random_token(),
        &Problems::default(),
        false,
    );
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::SendMoney.get(visitor.lang),
        content,
    ))
}

pub async fn send(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let caller = visitor.caller()?;
    let form = checked_form(&visitor, &body)?;
    let mut problems = Problems::default();
    let to = Handle::parse(handle_text(form.get("to")));
    if to.is_err() {
        problems.add("to", T::ErrNoSuchHandle.get(lang));
    }
    let amount = i18n::typed_amount(form.get("amount"));
    let note = Note::parse(form.get("note"));
    for error in [amount.as_ref().err(), note.as_ref().err()]
        .into_iter()
        .flatten()
    {
        for (field, text) in payment_problems(lang, error.clone())?.fields {
            problems.add(field, text);
        }
    }
    let mut needs_code = false;
    if let (Ok(to), Ok(amount), Ok(note), true) = (to, amount, note, problems.is_empty()) {
        match step_up(&state, caller, amount.minor_units(), form.get("code"), lang).await? {
            Err(text) => {
                needs_code = true;
                problems.add("code", text);
            }
            Ok(()) => {
                let key = IdempotencyKey::parse(&form_key(&form, "send"))
                    .map_err(|error| WebError::Internal(lang, error.to_string()))?;
                let ledger = ledger(&state, lang)?;
                let request = PaymentRequest { to, amount, note };
                let paid = payments::pay(
                    &ledger,
                    &state.reader(),
                    &state.config().limits,
                    &caller.person,
                    request,
                    key,
                    now_ns(),
                )
                .await;
                match paid {
                    Ok(outcome) => {
                        let target = format!("/receipts/{}?done=sent", outcome.payment.id);
                        return Ok(layout::redirect(&target));
                    }
                    Err(error) => problems = payment_problems(lang, error)?,
                }
            }
        }
    }
    let content = send_form(&visitor, &form, form.get("key"), &problems, needs_code);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::SendMoney.get(lang),
        content,
    ))
}

fn request_form(visitor: &Visitor, form: &Form, key: &str, problems: &Problems) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/request" novalidate {
            (csrf_field(visitor))
            (key_field(key))
            (problems.render_form_error())
            (Field::new("to", T::From.get(lang)).value(form.get("to")).list("handle-suggestions")
                .hint(T::HandleHint.get(lang)).error(problems.field("to")).render())
            datalist #handle-suggestions {}
            (Field::new("amount", T::Amount.get(lang)).value(form.get("amount"))
                .inputmode("decimal").hint(T::AmountHint.get(lang))
                .error(problems.field("amount")).render())
            (Field::new("note", T::Note.get(lang)).value(form.get("note")).optional()
                .error(problems.field("note")).render())
            (submit(T::Ask.get(lang), T::Sending.get(lang)))
        }
    }
}

#[derive(serde::Deserialize)]
pub struct RequestQuery {
    from: Option<String>,
}

/// `GET /request[?from=handle]` (a conversation links here with the handle filled in).
pub async fn request_page(
    visitor: Visitor,
    Query(query): Query<RequestQuery>,
) -> Result<Response, WebError> {
    visitor.person()?;
    // The form's field for whom to ask is named `to`.
    let prefill = format!(
        "to={}",
        layout::query_escape(query.from.as_deref().unwrap_or_default())
    );
    let content = request_form(
        &visitor,
        &Form::parse(prefill.as_bytes()),
        &random_token(),
        &Problems::default(),
    );
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::AskFor.get(visitor.lang),
        content,
    ))
}

pub async fn request(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = checked_form(&visitor, &body)?;
    let mut problems = Problems::default();
    let from = Handle::parse(handle_text(form.get("to")));
    if from.is_err() {
        problems.add("to", T::ErrNoSuchHandle.get(lang));
    }
    let amount = i18n::typed_amount(form.get("amount"));
    let note = Note::parse(form.get("note"));
    for error in [amount.as_ref().err(), note.as_ref().err()]
        .into_iter()
        .flatten()
    {
        for (field, text) in payment_problems(lang, error.clone())?.fields {
            problems.add(field, text);
        }
    }
    if let (Ok(from), Ok(amount), Ok(note), true) = (from, amount, note, problems.is_empty()) {
        let key = IdempotencyKey::parse(&form_key(&form, "request"))
            .map_err(|error| WebError::Internal(lang, error.to_string()))?;
        let ledger = ledger(&state, lang)?;
        let new = NewRequest { from, amount, note };
        match requests::create_request(&ledger, &state.reader(), person, new, key, now_ns()).await {
            Ok(_) => return Ok(layout::redirect("/requests?done=requested")),
            Err(error) => problems = payment_problems(lang, error)?,
        }
    }
    let content = request_form(&visitor, &form, form.get("key"), &problems);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::AskFor.get(lang),
        content,
    ))
}

fn status_text(lang: Lang, status: &str) -> &'static str {
    match status {
        requests::STATUS_PAID => T::StatusPaid.get(lang),
        requests::STATUS_DECLINED => T::StatusDeclined.get(lang),
        requests::STATUS_CANCELLED => T::StatusCancelled.get(lang),
        _ => T::StatusOpen.get(lang),
    }
}

fn view_amount(lang: Lang, amount: &str, currency: &str) -> String {
    payments::parse_amount(amount, currency)
        .map(|money| i18n::money(lang, money))
        .unwrap_or_else(|_| amount.to_owned())
}

pub async fn requests_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    render_requests(&state, &visitor, done.done.as_deref(), None, StatusCode::OK).await
}

async fn render_requests(
    state: &AppState,
    visitor: &Visitor,
    done: Option<&str>,
    failed: Option<(&str, &str)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let listed = requests::requests_of(&state.reader(), person.id, REQUESTS_SHOWN)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let me = person.handle.as_str();
    let (to_pay, mine): (Vec<_>, Vec<_>) = listed.iter().partition(|view| view.from == me);
    let totp_on = totp::enabled(&state.reader(), person)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let content = html! {
        (done_notice(lang, done))
        section aria-labelledby="to-pay" {
            h2 #to-pay { (T::RequestsToPay.get(lang)) }
            @if to_pay.is_empty() { p { (T::NoRequests.get(lang)) } }
            ul.requests {
                @for view in &to_pay {
                    li.request id={ "request-" (view.id) } {
                        span.who { bdi { "@" (view.to) } }
                        span.amount { bdi { (view_amount(lang, &view.amount, &view.currency)) } }
                        @if !view.note.is_empty() { span.note { (view.note) } }
                        span.status { (status_text(lang, &view.status)) }
                        @let row_failed = failed.filter(|(id, _)| *id == view.id).map(|(_, text)| text);
                        @let code_failed = row_failed.filter(|text| totp_on && is_code_problem(lang, text));
                        @if let Some(text) = row_failed.filter(|_| code_failed.is_none()) { (form_error(text)) }
                        @if view.status == requests::STATUS_OPEN {
                            form.inline method="post" action={ "/requests/" (view.id) "/pay" } {
                                (csrf_field(visitor))
                                (key_field(&random_token()))
                                // Only amounts at the step-up threshold need it, so optional,
                                // and each row's input has its own id.
                                @if totp_on {
                                    (Field::new("code", T::AuthenticatorCode.get(lang))
                                        .id(&format!("field-code-{}", view.id))
                                        .inputmode("numeric").autocomplete("one-time-code")
                                        .hint(T::CodeForLargeAmounts.get(lang)).optional()
                                        .error(code_failed).render())
                                }
                                (submit(T::Pay.get(lang), T::Sending.get(lang)))
                            }
                            form.inline method="post" action={ "/requests/" (view.id) "/decline" } {
                                (csrf_field(visitor))
                                button type="submit" data-busy=(T::Working.get(lang)) { (T::Decline.get(lang)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="asked" {
            h2 #asked { (T::RequestsYouMade.get(lang)) }
            @if mine.is_empty() { p { (T::NoRequests.get(lang)) } }
            ul.requests {
                @for view in &mine {
                    li.request id={ "request-" (view.id) } {
                        span.who { bdi { "@" (view.from) } }
                        span.amount { bdi { (view_amount(lang, &view.amount, &view.currency)) } }
                        @if !view.note.is_empty() { span.note { (view.note) } }
                        span.status { (status_text(lang, &view.status)) }
                        @if view.status == requests::STATUS_OPEN {
                            form.inline method="post" action={ "/requests/" (view.id) "/cancel" } {
                                (csrf_field(visitor))
                                button type="submit" data-busy=(T::Working.get(lang)) { (T::Cancel.get(lang)) }
                            }
                        }
                    }
                }
            }
        }
        p { a.button href="/request" { (T::AskFor.get(lang)) } " " a.button href="/split" { (T::Split.get(lang)) } }
    };
    Ok(page(visitor, status, T::Requests.get(lang), content))
}

pub async fn answer_request(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let caller = visitor.caller()?;
    let person = &caller.person;
    let form = checked_form(&visitor, &body)?;
    let reader = state.reader();
    let ledger = ledger(&state, lang)?;
    let result = match action.as_str() {
        "pay" => {
            let view = match requests::request_for(&reader, person.id, &id).await {
                Ok(view) => view,
                Err(error) => {
                    return Err(payment_problems(lang, error)
                        .err()
                        .unwrap_or(WebError::NotFound(lang)))
                }
            };
            let amount = payments::parse_amount(&view.amount, &view.currency)
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
            if let Err(text) =
                step_up(&state, caller, amount.minor_units(), form.get("code"), lang).await?
            {
                let failed = Some((id.as_str(), text));
                return render_requests(
                    &state,
                    &visitor,
                    None,
                    failed,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
            let key = IdempotencyKey::parse(&form_key(&form, "pay-request"))
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
            let limits = &state.config().limits;
            requests::pay_request(&ledger, &reader, limits, person, &id, key, now_ns())
                .await
                .map(|answer| answer.body.payment_id)
        }
        "decline" => {
            requests::close_request(&ledger, &reader, person, &id, Closing::Decline, now_ns())
                .await
                .map(|_| None)
        }
        "cancel" => {
            requests::close_request(&ledger, &reader, person, &id, Closing::Cancel, now_ns())
                .await
                .map(|_| None)
        }
        _ => return Err(WebError::NotFound(lang)),
    };
    drop(ledger);
    match result {
        Ok(Some(payment_id)) => Ok(layout::redirect(&format!(
            "/receipts/{payment_id}?done=sent"
        ))),
        Ok(None) => Ok(layout::redirect("/requests")),
        Err(error) => {
            let problems = payment_problems(lang, error)?;
            let text = problems
                .form
                .or_else(|| problems.fields.first().map(|(_, text)| text.as_ref()))
                .unwrap_or(T::SomethingWrong.get(lang));
            render_requests(
                &state,
                &visitor,
                None,
                Some((id.as_str(), text)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

fn split_form(visitor: &Visitor, form: &Form, key: &str, problems: &Problems) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/split" novalidate {
            (csrf_field(visitor))
            (key_field(key))
            (problems.render_form_error())
            (Field::new("with", T::SplitPeople.get(lang)).value(form.get("with"))
                .hint(T::SplitPeopleHint.get(lang)).error(problems.field("with")).render())
            (Field::new("amount", T::SplitTotal.get(lang)).value(form.get("amount"))
                .inputmode("decimal").hint(T::AmountHint.get(lang))
                .error(problems.field("amount")).render())
            (Field::new("note", T::Note.get(lang)).value(form.get("note")).optional()
                .error(problems.field("note")).render())
            (submit(T::SplitSubmit.get(lang), T::Sending.get(lang)))
        }
    }
}

pub async fn split_page(visitor: Visitor) -> Result<Response, WebError> {
    visitor.person()?;
    let content = split_form(
        &visitor,
        &Form::default(),
        &random_token(),
        &Problems::default(),
    );
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::Split.get(visitor.lang),
        content,
    ))
}

pub async fn split(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = checked_form(&visitor, &body)?;
    let mut problems = Problems::default();
    let with: Result<Vec<Handle>, _> = form
        .get("with")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(|part| Handle::parse(handle_text(part)))
        .collect();
    let with = match with {
        Ok(with) if !with.is_empty() => Some(with),
        _ => {
            problems.add("with", T::ErrSplitPeople.get(lang));
            None
        }
    };
    let amount = i18n::typed_amount(form.get("amount"));
    let note = Note::parse(form.get("note"));
    for error in [amount.as_ref().err(), note.as_ref().err()]
        .into_iter()
        .flatten()
    {
        for (field, text) in payment_problems(lang, error.clone())?.fields {
            problems.add(field, text);
        }
    }
    if let (Some(with), Ok(amount), Ok(note), true) = (with, amount, note, problems.is_empty()) {
        let key = IdempotencyKey::parse(&form_key(&form, "split"))
            .map_err(|error| WebError::Internal(lang, error.to_string()))?;
        let ledger = ledger(&state, lang)?;
        let new = NewSplit { amount, note, with };
        match requests::create_split(&ledger, &state.reader(), person, new, key, now_ns()).await {
            Ok(_) => return Ok(layout::redirect("/requests?done=split")),
            Err(PaymentError::RecipientNotFound) => {
                problems.add("with", T::ErrNoSuchHandle.get(lang))
            }
            Err(PaymentError::CannotRequestFromYourself) => {
                problems.add("with", T::ErrSelfRequest.get(lang))
            }
            Err(error) => problems = payment_problems(lang, error)?,
        }
    }
    let content = split_form(&visitor, &form, form.get("key"), &problems);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::Split.get(lang),
        content,
    ))
}

// ---------------------------------------------------------------- add money, cash out

fn add_money_form(visitor: &Visitor, form: &Form, key: &str, problems: &Problems) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/add-money" novalidate {
            (csrf_field(visitor))
            (key_field(key))
            (problems.render_form_error())
            (Field::new("amount", T::Amount.get(lang)).value(form.get("amount"))
                .inputmode("decimal").hint(T::AmountHint.get(lang))
                .error(problems.field("amount")).render())
            // The card number is never echoed back into the page.
            (Field::new("card_number", T::CardNumber.get(lang)).inputmode("numeric")
                .autocomplete("cc-number").hint(T::CardHint.get(lang))
                .error(problems.field("card_number")).render())
            div.check {
                input #field-save-card type="checkbox" name="save_card" value="yes" checked[form.get("save_card") == "yes"];
                label for="field-save-card" { (T::SaveCard.get(lang)) }
            }
            (submit(T::AddFromCard.get(lang), T::Working.get(lang)))
        }
    }
}

pub async fn add_money_page(visitor: Visitor) -> Result<Response, WebError> {
    visitor.person()?;
    let content = add_money_form(
        &visitor,
        &Form::default(),
        &random_token(),
        &Problems::default(),
    );
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::AddMoney.get(visitor.lang),
        content,
    ))
}

pub async fn add_money(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = checked_form(&visitor, &body)?;
    let mut problems = Problems::default();
    let amount = i18n::typed_amount(form.get("amount"));
    let digits: String = form
        .get("card_number")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let card = CardNumber::parse(Secret::new(digits));
    for error in [amount.as_ref().err(), card.as_ref().err()]
        .into_iter()
        .flatten()
    {
        for (field, text) in payment_problems(lang, error.clone())?.fields {
            problems.add(field, text);
        }
    }
    if let (Ok(amount), Ok(card), true) = (amount, card, problems.is_empty()) {
        let key = IdempotencyKey::parse(&form_key(&form, "fund"))
            .map_err(|error| WebError::Internal(lang, error.to_string()))?;
        let ledger = ledger(&state, lang)?;
        let vault = state
            .vault()
            .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
        let processor = state.processor();
        let source = funding::CardSource::New {
            number: card,
            save_as_default: form.get("save_card") == "yes",
        };
        let funded = funding::fund(
            &ledger,
            &state.reader(),
            &state.config().limits,
            processor.as_ref(),
            &vault,
            person.id,
            amount,
            source,
            key,
            now_ns(),
        )
        .await;
        match funded {
            Ok(outcome) if outcome.requires_action => {
                return Ok(layout::redirect(&format!(
                    "/add-money/{}/challenge",
                    outcome.funding.id
                )));
            }
            Ok(_) => return Ok(layout::redirect("/?done=added")),
            Err(error) => problems = payment_problems(lang, error)?,
        }
    }
    // A decline is final for its key (a retry replays it): the next try gets a new one.
    let content = add_money_form(&visitor, &form, &random_token(), &problems);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::AddMoney.get(lang),
        content,
    ))
}

fn challenge_form(visitor: &Visitor, id: &str, problems: &Problems) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action={ "/add-money/" (id) "/challenge" } novalidate {
            (csrf_field(visitor))
            (problems.render_form_error())
            (Field::new("code", T::Code.get(lang)).inputmode("numeric").autocomplete("one-time-code")
                .hint(T::ChallengeHint.get(lang)).error(problems.field("code")).render())
            (submit(T::Confirm.get(lang), T::Working.get(lang)))
        }
    }
}

pub async fn challenge_page(
    visitor: Visitor,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    visitor.person()?;
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(WebError::NotFound(visitor.lang));
    }
    let content = challenge_form(&visitor, &id, &Problems::default());
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::ChallengeTitle.get(visitor.lang),
        content,
    ))
}

pub async fn challenge(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = checked_form(&visitor, &body)?;
    let ledger = ledger(&state, lang)?;
    let processor = state.processor();
    let answered = funding::complete_challenge(
        &ledger,
        &state.reader(),
        processor.as_ref(),
        person.id,
        &id,
        form.get("code"),
        now_ns(),
    )
    .await;
    let problems = match answered {
        Ok(_) => return Ok(layout::redirect("/?done=added")),
        Err(PaymentError::CardDeclined(_)) => Problems {
            form: Some(T::ErrChallenge.get(lang)),
            ..Problems::default()
        },
        Err(error) => payment_problems(lang, error)?,
    };
    let content = challenge_form(&visitor, &id, &problems);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::ChallengeTitle.get(lang),
        content,
    ))
}

fn cash_out_form(
    visitor: &Visitor,
    form: &Form,
    key: &str,
    problems: &Problems,
    code: bool,
) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/cash-out" novalidate {
            (csrf_field(visitor))
            (key_field(key))
            (problems.render_form_error())
            (Field::new("amount", T::Amount.get(lang)).value(form.get("amount"))
                .inputmode("decimal").hint(T::AmountHint.get(lang))
                .error(problems.field("amount")).render())
            (Field::new("routing_number", T::RoutingNumber.get(lang)).value(form.get("routing_number"))
                .inputmode("numeric").hint(T::BankHint.get(lang))
                .error(problems.field("routing_number")).render())
            // The account number is never echoed back into the page.
            (Field::new("account_number", T::AccountNumber.get(lang)).inputmode("numeric")
                .error(problems.field("account_number")).render())
            @if code { (code_field(lang, problems.field("code"))) }
            (submit(T::CashOutSubmit.get(lang), T::Working.get(lang)))
        }
    }
}

pub async fn cash_out_page(visitor: Visitor) -> Result<Response, WebError> {
    visitor.person()?;
    let content = cash_out_form(
        &visitor,
        &Form::default(),
        &random_token(),
        &Problems::default(),
        false,
    );
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::CashOut.get(visitor.lang),
        content,
    ))
}

pub async fn cash_out(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let caller = visitor.caller()?;
    let form = checked_form(&visitor, &body)?;
    let mut problems = Problems::default();
    let amount = i18n::typed_amount(form.get("amount"));
    let account = BankAccount::parse(
        form.get("routing_number"),
        Secret::new(form.get("account_number").to_owned()),
    );
    for error in [amount.as_ref().err(), account.as_ref().err()]
        .into_iter()
        .flatten()
    {
        for (field, text) in payment_problems(lang, error.clone())?.fields {
            problems.add(field, text);
        }
    }
    let mut needs_code = false;
    if let (Ok(amount), Ok(account), true) = (amount, account, problems.is_empty()) {
        match step_up(&state, caller, amount.minor_units(), form.get("code"), lang).await? {
            Err(text) => {
                needs_code = true;
                problems.add("code", text);
            }
            Ok(()) => {
                let key = IdempotencyKey::parse(&form_key(&form, "cashout"))
                    .map_err(|error| WebError::Internal(lang, error.to_string()))?;
                let ledger = ledger(&state, lang)?;
                let vault = state
                    .vault()
                    .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
                let payouts = state.payouts();
                let result = cashout::cash_out(
                    &ledger,
                    &state.reader(),
                    &state.config().limits,
                    payouts.as_ref(),
                    &vault,
                    &state.screener(),
                    caller.person.id,
                    amount,
                    account,
                    key,
                    now_ns(),
                )
                .await;
                match result {
                    Ok(_) => return Ok(layout::redirect("/?done=cashout")),
                    Err(error) => problems = payment_problems(lang, error)?,
                }
            }
        }
    }
    // A returned cash-out is final for its key: the next try gets a new one.
    let content = cash_out_form(&visitor, &form, &random_token(), &problems, needs_code);
    Ok(page(
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        T::CashOut.get(lang),
        content,
    ))
}

// ---------------------------------------------------------------- activity, receipts

#[derive(Deserialize)]
pub struct ActivityFilter {
    #[serde(rename = "type")]
    kind: Option<String>,
    cursor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    with: Option<String>,
}

/// A filter value as sent: an empty field means no filter.
fn non_empty(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

pub async fn activity_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(filter): Query<ActivityFilter>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let kind = non_empty(&filter.kind);
    let (from, to, with) = (
        non_empty(&filter.from),
        non_empty(&filter.to),
        non_empty(&filter.with),
    );
    let limit = ACTIVITY_PAGE_ITEMS.to_string();
    let mut problems = Problems::default();
    let query = ActivityQuery::parse(Some(&limit), non_empty(&filter.cursor), kind)
        .map_err(|_| WebError::NotFound(lang))?;
    let query = match query.clone().with_dates(from, to) {
        Ok(query) => query,
        Err(_) => {
            problems.add("from", T::ErrDate.get(lang));
            query
        }
    };
    let query = match query.clone().with_counterparty(with) {
        Ok(query) => query,
        Err(_) => {
            problems.add("with", T::ErrHandle.get(lang));
            query
        }
    };
    let page_items = if problems.is_empty() {
        requests::activity(&state.reader(), person.id, query)
            .await
            .map_err(|error| WebError::Internal(lang, error.to_string()))?
    } else {
        requests::ActivityPage {
            items: Vec::new(),
            next_cursor: None,
        }
    };
    let options = [
        ("", T::AllTypes),
        ("payment", T::TypePayment),
        ("funding", T::TypeFunding),
        ("cashout", T::TypeCashout),
    ];
    let next = page_items.next_cursor.as_ref().map(|cursor| {
        format!(
            "/activity?cursor={cursor}&type={}&from={}&to={}&with={}",
            kind.unwrap_or_default(),
            layout::query_escape(from.unwrap_or_default()),
            layout::query_escape(to.unwrap_or_default()),
            layout::query_escape(with.unwrap_or_default()),
        )
    });
    let content = html! {
        form.filters method="get" action="/activity" {
            div.field {
                label for="type" { (T::Filter.get(lang)) }
                select #type name="type" {
                    @for (value, text) in options {
                        option value=(value) selected[kind.unwrap_or_default() == value] { (text.get(lang)) }
                    }
                }
            }
            (Field::new("with", T::With.get(lang)).value(with.unwrap_or_default()).optional()
                .list("handle-suggestions").error(problems.field("with")).render())
            datalist #handle-suggestions {}
            (Field::new("from", T::FromDate.get(lang)).kind("date").value(from.unwrap_or_default())
                .optional().error(problems.field("from")).render())
            (Field::new("to", T::ToDate.get(lang)).kind("date").value(to.unwrap_or_default())
                .optional().render())
            button type="submit" { (T::Filter.get(lang)) }
        }
        @if page_items.items.is_empty() {
            p { (T::NoActivity.get(lang)) }
        } @else {
            ul.activity-list { @for item in &page_items.items { (activity_line(lang, item)) } }
        }
        @if let Some(next) = next {
            p { a href=(next) rel="next" { (T::Older.get(lang)) } }
        }
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(page(&visitor, status, T::Activity.get(lang), content))
}

pub async fn receipt_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let receipt = match requests::receipt_for(&state.reader(), person.id, &id).await {
        Ok(receipt) => receipt,
        Err(error) => {
            return Err(payment_problems(lang, error)
                .err()
                .unwrap_or(WebError::NotFound(lang)))
        }
    };
    let payment = &receipt.payment;
    let content = html! {
        (done_notice(lang, done.done.as_deref()))
        dl.receipt {
            dt { (T::From.get(lang)) } dd { bdi { "@" (payment.from) } }
            dt { (T::To.get(lang)) } dd { bdi { "@" (payment.to) } }
            dt { (T::Amount.get(lang)) } dd.amount { bdi { (view_amount(lang, &payment.amount, &payment.currency)) } }
            @if !payment.note.is_empty() { dt { (T::Note.get(lang)) } dd { (payment.note) } }
            dt { (T::Date.get(lang)) } dd { time datetime=(receipt.timestamp) { (i18n::date_time(lang, &receipt.timestamp)) } }
            dt { (T::Status.get(lang)) } dd { (T::StatusPaid.get(lang)) }
            dt { (T::TransferId.get(lang)) } dd { code { (receipt.transfer_id) } }
            dt { (T::ChainHash.get(lang)) } dd { code.hash { (receipt.hash) } }
        }
        p.hint { (T::ReceiptHint.get(lang)) }
    };
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::Receipt.get(lang),
        content,
    ))
}

// ---------------------------------------------------------------- apps, settings

fn app_error(lang: Lang) -> impl Fn(AppError) -> WebError {
    move |error| match error {
        AppError::Unauthenticated => WebError::NotFound(lang),
        other if other.code().ends_with("not_found") => WebError::NotFound(lang),
        other => WebError::Internal(lang, other.to_string()),
    }
}

fn date_of(lang: Lang, ns: u64) -> String {
    i18n::date_time(lang, &mizan_app::time::rfc3339_from_ns(ns))
}

pub async fn apps_page(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let reader = state.reader();
    let links = apps::links_of(&reader, person.id)
        .await
        .map_err(app_error(lang))?;
    let pending = apps::pending_link_requests(&reader, person.id, now_ns())
        .await
        .map_err(app_error(lang))?;
    let live: Vec<_> = links
        .iter()
        .filter(|link| link.revoked_at_ns.is_none())
        .collect();
    let content = html! {
        @if !pending.is_empty() {
            section aria-labelledby="link-requests" {
                h2 #link-requests { (T::LinkRequests.get(lang)) }
                ul.apps {
                    @for request in &pending {
                        li {
                            strong { (request.app_name) }
                            span.hint { (T::Scopes.get(lang)) ": " (request.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                            form.inline method="post" action={ "/link-requests/" (request.id) "/approve" } {
                                (csrf_field(&visitor))
                                (submit(T::Approve.get(lang), T::Working.get(lang)))
                            }
                            form.inline method="post" action={ "/link-requests/" (request.id) "/decline" } {
                                (csrf_field(&visitor))
                                button type="submit" { (T::Decline.get(lang)) }
                            }
                        }
                    }
                }
            }
        }
        @if live.is_empty() {
            p { (T::NoApps.get(lang)) }
        }
        ul.apps {
            @for link in &live {
                li {
                    strong { (link.app_name) }
                    span.hint { (T::Scopes.get(lang)) ": " (link.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")) }
                    span.hint { (date_of(lang, link.linked_at_ns)) }
                    form.inline method="post" action={ "/apps/" (link.app_id) "/revoke" } {
                        (csrf_field(&visitor))
                        button type="submit" data-busy=(T::Working.get(lang)) { (T::Revoke.get(lang)) " " (link.app_name) }
                    }
                }
            }
        }
    };
    Ok(page(&visitor, StatusCode::OK, T::Apps.get(lang), content))
}

pub async fn revoke_app(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(app_id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    checked_form(&visitor, &body)?;
    let ledger = ledger(&state, lang)?;
    apps::revoke_link(&ledger, &state.reader(), person, &app_id, now_ns())
        .await
        .map_err(app_error(lang))?;
    Ok(layout::redirect("/apps"))
}

pub async fn answer_link(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    checked_form(&visitor, &body)?;
    let approve = match action.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return Err(WebError::NotFound(lang)),
    };
    let ledger = ledger(&state, lang)?;
    apps::answer_link_request(&ledger, &state.reader(), person, &id, approve, now_ns())
        .await
        .map_err(app_error(lang))?;
    Ok(layout::redirect("/apps"))
}

async fn render_settings(
    state: &AppState,
    visitor: &Visitor,
    done: Option<&str>,
    password_problems: &Problems,
    enrolment: Option<(&str, &str)>,
    totp_problem: Option<&'static str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let caller = visitor.caller()?;
    let person = &caller.person;
    let reader = state.reader();
    let sessions = identity::sessions_of(&reader, person.id, now_ns())
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let totp_on = totp::enabled(&reader, person)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let current = caller.session_key.as_deref().unwrap_or_default();
    let content = html! {
        (done_notice(lang, done))
        section aria-labelledby="language" {
            h2 #language { (T::Language.get(lang)) }
            p {
                a href="/lang/en" lang="en" { "English" } " · " a href="/lang/ar" lang="ar" { "العربية" }
            }
        }
        section aria-labelledby="verification" {
            h2 #verification { (T::Verification.get(lang)) }
            p { a href="/verification" { (T::VerificationLink.get(lang)) } }
        }
        section aria-labelledby="two-factor" {
            h2 #two-factor { (T::TwoFactor.get(lang)) }
            @if totp_on {
                p { (T::TwoFactorOn.get(lang)) }
            } @else if let Some((secret, uri)) = enrolment {
                p { (T::TwoFactorSecret.get(lang)) }
                p { code.secret #totp-secret { (secret) } }
                p.hint { a href=(uri) { "otpauth://" } }
                form.card method="post" action="/settings/totp/confirm" novalidate {
                    (csrf_field(visitor))
                    (code_field(lang, totp_problem))
                    (submit(T::Confirm.get(lang), T::Working.get(lang)))
                }
            } @else {
                p { (T::TwoFactorOff.get(lang)) }
                @if let Some(problem) = totp_problem { (form_error(problem)) }
                form method="post" action="/settings/totp" {
                    (csrf_field(visitor))
                    (submit(T::TwoFactorStart.get(lang), T::Working.get(lang)))
                }
            }
        }
        section aria-labelledby="password" {
            h2 #password { (T::ChangePassword.get(lang)) }
            form.card method="post" action="/settings/password" novalidate {
                (csrf_field(visitor))
                (password_problems.render_form_error())
                (Field::new("current_password", T::CurrentPassword.get(lang)).kind("password")
                    .autocomplete("current-password").error(password_problems.field("current_password")).render())
                (Field::new("new_password", T::NewPassword.get(lang)).kind("password")
                    .autocomplete("new-password").hint(T::PasswordHint.get(lang))
                    .error(password_problems.field("new_password")).render())
                (submit(T::Save.get(lang), T::Working.get(lang)))
            }
        }
        section aria-labelledby="sessions" {
            h2 #sessions { (T::Sessions.get(lang)) }
            ul.sessions {
                @for session in &sessions {
                    li {
                        span { (T::Created.get(lang)) ": " (date_of(lang, session.created_at_ns)) }
                        span.hint { (T::Expires.get(lang)) ": " (date_of(lang, session.expires_at_ns)) }
                        @if session.id == current {
                            strong { (T::ThisDevice.get(lang)) }
                        } @else {
                            form.inline method="post" action={ "/settings/sessions/" (session.id) "/revoke" } {
                                (csrf_field(visitor))
                                button type="submit" { (T::Revoke.get(lang)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(visitor, status, T::Settings.get(lang), content))
}

pub async fn settings_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    render_settings(
        &state,
        &visitor,
        done.done.as_deref(),
        &Problems::default(),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

pub async fn change_password(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let caller = visitor.caller()?;
    let form = checked_form(&visitor, &body)?;
    let problems = match Password::parse(Secret::new(form.raw("new_password").to_owned())) {
        Err(_) => {
            let mut problems = Problems::default();
            problems.add("new_password", T::ErrWeakPassword.get(lang));
            problems
        }
        Ok(new) => {
            let ledger = ledger(&state, lang)?;
            let changed = identity::change_password(
                &ledger,
                &state.reader(),
                caller.person.id,
                caller.session_key.as_deref(),
                Secret::new(form.raw("current_password").to_owned()),
                new,
                now_ns(),
            )
            .await;
            match changed {
                Ok(()) => return Ok(layout::redirect("/settings?done=password")),
                Err(error) => identity_problems(lang, error)?,
            }
        }
    };
    render_settings(
        &state,
        &visitor,
        None,
        &problems,
        None,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

pub async fn begin_totp(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    checked_form(&visitor, &body)?;
    let ledger = ledger(&state, lang)?;
    let vault = state
        .vault()
        .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
    match totp::begin(&ledger, &state.reader(), &vault, person, now_ns()).await {
        Ok(enrolment) => {
            let secret = enrolment.secret_base32.expose().clone();
            let uri = enrolment.otpauth_uri.expose().clone();
            render_settings(
                &state,
                &visitor,
                None,
                &Problems::default(),
                Some((&secret, &uri)),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(TotpError::AlreadyEnabled) => Ok(layout::redirect("/settings")),
        Err(error) => Err(WebError::Internal(lang, error.to_string())),
    }
}

pub async fn confirm_totp(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = checked_form(&visitor, &body)?;
    let ledger = ledger(&state, lang)?;
    let reader = state.reader();
    let vault = state
        .vault()
        .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
    match totp::confirm(&ledger, &reader, &vault, person, form.get("code"), now_ns()).await {
        Ok(()) => Ok(layout::redirect("/settings?done=totp")),
        Err(TotpError::InvalidCode | TotpError::NotEnrolling) => {
            // The same key again, so a mistyped code is retried without a new set-up.
            let pending = totp::pending(&reader, &vault, person)
                .await
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
            let shown = pending.as_ref().map(|enrolment| {
                (
                    enrolment.secret_base32.expose().as_str(),
                    enrolment.otpauth_uri.expose().as_str(),
                )
            });
            render_settings(
                &state,
                &visitor,
                None,
                &Problems::default(),
                shown,
                Some(T::ErrTotpCode.get(lang)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(TotpError::AlreadyEnabled) => Ok(layout::redirect("/settings")),
        Err(error) => Err(WebError::Internal(lang, error.to_string())),
    }
}

pub async fn revoke_session(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    checked_form(&visitor, &body)?;
    let ledger = ledger(&state, lang)?;
    match identity::revoke_session(&ledger, &state.reader(), person.id, &id).await {
        Ok(()) | Err(IdentityError::SessionNotFound) => Ok(layout::redirect("/settings")),
        Err(error) => Err(internal(lang)(error.to_string())),
    }
}
