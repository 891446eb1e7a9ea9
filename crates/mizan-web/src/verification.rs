//! The verification page: a person's tier, what their residence allows, every limit
//! with what this window used of it and when it resets, and the forms that raise the
//! tier (identity details for tier 1, a document for tier 2) through the same
//! identity-verification provider the API uses. Nothing personal is shown back: the
//! provider's answer is all Mizan keeps.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::licences;
use mizan_app::limits::{self, LimitUsage};
use mizan_app::verification::{
    self, IdentityClaim, IdentityDocument, IdentityInput, Tier, VerificationError,
};
use mizan_core::{Clock, Currency, Money, SystemClock};

use crate::i18n::{self, Lang, T};
use crate::layout::{self, csrf_field, form_error, page, submit, Field};
use crate::visitor::{Form, Visitor};
use crate::WebError;

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

fn internal(lang: Lang) -> impl Fn(String) -> WebError {
    move |detail| WebError::Internal(lang, detail)
}

/// What went wrong with a form: the field it is about (or none) and the text.
type Problem = Option<(&'static str, &'static str)>;

fn limit_name(lang: Lang, code: &str) -> &'static str {
    match code {
        "daily_send" => T::LimitDailySend.get(lang),
        "weekly_send" => T::LimitWeeklySend.get(lang),
        "weekly_cashout" => T::LimitWeeklyCashout.get(lang),
        _ => T::LimitWeeklyFunding.get(lang),
    }
}

fn usd(lang: Lang, minor: i64) -> String {
    i18n::money(lang, Money::from_minor(minor, Currency::USD))
}

/// The web field a verification error is about, and what to say.
fn problem_of(lang: Lang, error: &VerificationError) -> Result<Problem, WebError> {
    Ok(Some(match error {
        VerificationError::LegalNameInvalid => ("legal_name", T::ErrLegalName.get(lang)),
        VerificationError::DateOfBirthInvalid => ("date_of_birth", T::ErrBirthDate.get(lang)),
        VerificationError::AddressInvalid => ("address_line", T::ErrAddress.get(lang)),
        VerificationError::JurisdictionInvalid => ("state", T::ErrResidence.get(lang)),
        VerificationError::SsnLast4Invalid => ("ssn_last4", T::ErrSsnLast4.get(lang)),
        VerificationError::DocumentTypeInvalid => ("document_type", T::ErrDocument.get(lang)),
        VerificationError::DocumentNumberInvalid => ("document_number", T::ErrDocument.get(lang)),
        VerificationError::VerificationFailed => ("", T::ErrNotVerified.get(lang)),
        VerificationError::IdentityNotVerified => ("", T::ErrVerify.get(lang)),
        VerificationError::DocumentAlreadyUsed => ("document_number", T::ErrDocumentUsed.get(lang)),
        VerificationError::PersonErased => ("", T::ErrErased.get(lang)),
        VerificationError::Internal(detail) => {
            return Err(WebError::Internal(lang, detail.clone()))
        }
    }))
}

fn field_error(problem: Problem, name: &str) -> Option<&'static str> {
    problem.and_then(|(field, text)| (field == name).then_some(text))
}

/// `GET /verification`.
pub async fn verification_page(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    render(&state, &visitor, &Form::default(), None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    visitor: &Visitor,
    form: &Form,
    problem: Problem,
    status: StatusCode,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let reader = state.reader();
    let (verified, usage) = limits::usage(&reader, &state.config().limits, person.id, now_ns())
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let jurisdiction = verified.jurisdiction();
    let licence = licences::licence_for(&reader, &jurisdiction)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let unavailable: Vec<&str> = licences::Capability::ALL
        .into_iter()
        .filter(|capability| !licence.allows(*capability))
        .map(|capability| capability_name(lang, capability))
        .collect();
    let tier_text = match verified.tier {
        Tier::Unverified => T::Tier0.get(lang),
        Tier::Identity => T::Tier1.get(lang),
        Tier::Document => T::Tier2.get(lang),
    };
    let content = html! {
        p.tier #tier data-tier=(verified.tier.number()) { (tier_text) }
        @if !unavailable.is_empty() && verified.tier > Tier::Unverified {
            p.hint #unavailable { (T::NotAvailableHere.get(lang)) " " (unavailable.join(" · ")) }
        }
        section aria-labelledby="limits-title" {
            h2 #limits-title { (T::YourLimits.get(lang)) }
            (limits_table(lang, &usage))
        }
        @if problem.is_some_and(|(field, _)| field.is_empty()) {
            (form_error(problem.map_or("", |(_, text)| text)))
        }
        @match verified.tier {
            Tier::Unverified => { (identity_form(visitor, form, problem)) }
            Tier::Identity => { (document_form(visitor, form, problem)) }
            Tier::Document => { p #verified { (T::FullyVerified.get(lang)) } }
        }
    };
    Ok(page(visitor, status, T::Verification.get(lang), content))
}

fn capability_name(lang: Lang, capability: licences::Capability) -> &'static str {
    match capability {
        licences::Capability::P2p => T::CapabilityP2p.get(lang),
        licences::Capability::Cashout => T::CashOut.get(lang),
        licences::Capability::Savings => T::CapabilitySavings.get(lang),
        licences::Capability::Cards => T::CapabilityCards.get(lang),
    }
}

fn limits_table(lang: Lang, usage: &[LimitUsage]) -> Markup {
    html! {
        table.limits {
            thead { tr {
                th scope="col" { (T::Limit.get(lang)) }
                th scope="col" { (T::Used.get(lang)) }
                th scope="col" { (T::Resets.get(lang)) }
            } }
            tbody {
                @for row in usage {
                    tr data-limit=(row.limit) {
                        th scope="row" { (limit_name(lang, &row.limit)) }
                        td {
                            @if row.amount_minor == 0 {
                                (T::NotAllowedYet.get(lang))
                            } @else {
                                bdi { (usd(lang, row.used_minor)) } " / " bdi { (usd(lang, row.amount_minor)) }
                            }
                        }
                        td { (i18n::date_time(lang, &row.resets_at)) }
                    }
                }
            }
        }
    }
}

fn identity_form(visitor: &Visitor, form: &Form, problem: Problem) -> Markup {
    let lang = visitor.lang;
    let country = match form.get("country") {
        "" => "US",
        given => given,
    };
    html! {
        section aria-labelledby="identity-title" {
            h2 #identity-title { (T::VerifyIdentity.get(lang)) }
            p.hint { (T::VerifyIdentityHint.get(lang)) }
            form.card method="post" action="/verification/identity" novalidate {
                (csrf_field(visitor))
                (Field::new("legal_name", T::LegalName.get(lang)).value(form.get("legal_name"))
                    .autocomplete("name").error(field_error(problem, "legal_name")).render())
                (Field::new("date_of_birth", T::BirthDate.get(lang)).kind("date").value(form.get("date_of_birth"))
                    .autocomplete("bday").error(field_error(problem, "date_of_birth")).render())
                (Field::new("address_line", T::AddressLine.get(lang)).value(form.get("address_line"))
                    .autocomplete("address-line1").error(field_error(problem, "address_line")).render())
                (Field::new("city", T::City.get(lang)).value(form.get("city"))
                    .autocomplete("address-level2").render())
                (Field::new("postal_code", T::PostalCode.get(lang)).value(form.get("postal_code"))
                    .autocomplete("postal-code").render())
                (Field::new("country", T::Country.get(lang)).value(country)
                    .hint(T::CountryHint.get(lang)).autocomplete("country").render())
                (Field::new("state", T::State.get(lang)).value(form.get("state")).optional()
                    .hint(T::StateHint.get(lang)).autocomplete("address-level1")
                    .error(field_error(problem, "state")).render())
                (Field::new("ssn_last4", T::SsnLast4.get(lang)).optional().inputmode("numeric")
                    .hint(T::SsnLast4Hint.get(lang)).error(field_error(problem, "ssn_last4")).render())
                (submit(T::Verify.get(lang), T::Working.get(lang)))
            }
        }
    }
}

fn document_form(visitor: &Visitor, form: &Form, problem: Problem) -> Markup {
    let lang = visitor.lang;
    let chosen = form.get("document_type");
    let types = [
        ("passport", T::Passport),
        ("drivers_license", T::DriversLicense),
        ("national_id", T::NationalId),
    ];
    let type_error = field_error(problem, "document_type");
    html! {
        section aria-labelledby="document-title" {
            h2 #document-title { (T::VerifyDocument.get(lang)) }
            p.hint { (T::VerifyDocumentHint.get(lang)) }
            form.card method="post" action="/verification/document" novalidate {
                (csrf_field(visitor))
                div.field.invalid[type_error.is_some()] {
                    label for="field-document_type" { (T::DocumentType.get(lang)) }
                    select #field-document_type name="document_type" {
                        @for (value, text) in types {
                            option value=(value) selected[chosen == value] { (text.get(lang)) }
                        }
                    }
                    @if let Some(error) = type_error { p.error { (error) } }
                }
                (Field::new("document_number", T::DocumentNumber.get(lang)).value(form.get("document_number"))
                    .error(field_error(problem, "document_number")).render())
                (submit(T::Verify.get(lang), T::Working.get(lang)))
            }
        }
    }
}

/// `POST /verification/identity`: tier 1.
pub async fn verify_identity(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let optional = |name: &str| Some(form.get(name)).filter(|value| !value.trim().is_empty());
    let input = IdentityInput {
        legal_name: form.get("legal_name"),
        date_of_birth: form.get("date_of_birth"),
        address_line: form.get("address_line"),
        city: form.get("city"),
        postal_code: form.get("postal_code"),
        state: optional("state"),
        country: form.get("country"),
        ssn_last4: optional("ssn_last4"),
    };
    let now_ns = now_ns();
    let verified = match IdentityClaim::parse(&input, now_ns) {
        Ok(claim) => {
            let ledger = state
                .ledger()
                .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
            let vault = state
                .vault()
                .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
            let verifier = state.verifier();
            verification::verify_identity(
                &ledger,
                &state.reader(),
                verifier.as_ref(),
                &vault,
                &state.screener(),
                person.id,
                claim,
                now_ns,
            )
            .await
        }
        Err(error) => Err(error),
    };
    match verified {
        Ok(_) => Ok(layout::redirect("/verification")),
        Err(error) => {
            let problem = problem_of(lang, &error)?;
            render(
                &state,
                &visitor,
                &form,
                problem,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /verification/document`: tier 2.
pub async fn verify_document(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let verified =
        match IdentityDocument::parse(form.get("document_type"), form.get("document_number")) {
            Ok(document) => {
                let ledger = state
                    .ledger()
                    .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
                let vault = state
                    .vault()
                    .ok_or_else(|| internal(lang)("shutting down".to_owned()))?;
                let verifier = state.verifier();
                verification::verify_document(
                    &ledger,
                    &state.reader(),
                    verifier.as_ref(),
                    &vault,
                    person.id,
                    document,
                    now_ns(),
                )
                .await
            }
            Err(error) => Err(error),
        };
    match verified {
        Ok(_) => Ok(layout::redirect("/verification")),
        Err(error) => {
            let problem = problem_of(lang, &error)?;
            render(
                &state,
                &visitor,
                &form,
                problem,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}
