//! Subscription pages: a creator's tiers on their profile with Subscribe buttons, a
//! confirm page that subscribes once per page-made key, "Your subscriptions" with
//! cancel, and a creator's tier editor and subscriber list. Subscriber-only posts are
//! shown or locked by `social::post_card` through `mizan_app::social`.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::creation::Creation;
use mizan_app::identity::{Person, WALLET_CURRENCY};
use mizan_app::payments::{IdempotencyKey, PaymentError};
use mizan_app::subscriptions::{self, NewTier, SubscriptionStatus, SubscriptionView, TierView};
use mizan_core::{Clock, Money, SystemClock};
use serde::Deserialize;

use crate::i18n::{self, Lang, T};
use crate::layout::{self, csrf_field, form_error, key_field, notice, page, submit, Field};
use crate::visitor::{form_key, random_token, Form, Visitor};
use crate::WebError;

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

fn ledger(state: &AppState, lang: Lang) -> Result<mizan_ledger::Ledger, WebError> {
    state
        .ledger()
        .ok_or_else(|| WebError::Internal(lang, "shutting down".to_owned()))
}

fn internal(lang: Lang) -> impl Fn(PaymentError) -> WebError {
    move |error| match error {
        PaymentError::TierNotFound | PaymentError::SubscriptionNotFound => WebError::NotFound(lang),
        other => WebError::Internal(lang, other.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn price(lang: Lang, tier_price: &str) -> String {
    Money::parse_major(tier_price, WALLET_CURRENCY)
        .map(|money| i18n::money(lang, money))
        .unwrap_or_else(|_| tier_price.to_owned())
}

/// The tiers section of a creator's profile: Subscribe buttons for others, a link
/// to the tier editor for the creator.
pub async fn profile_section(
    state: &AppState,
    visitor: &Visitor,
    owner: &Person,
) -> Result<Markup, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let tiers = subscriptions::tiers_of(&state.reader(), owner.id, false)
        .await
        .map_err(internal(lang))?;
    let own = person.id == owner.id;
    if tiers.is_empty() && !own {
        return Ok(html! {});
    }
    Ok(html! {
        section aria-labelledby="tiers-title" {
            h2 #tiers-title { (T::Tiers.get(lang)) }
            @if tiers.is_empty() { p { (T::NoTiers.get(lang)) } }
            ul.tiers {
                @for tier in &tiers {
                    li.tier {
                        strong { (tier.name) } " · "
                        bdi { (price(lang, &tier.price)) } " " (T::AMonth.get(lang))
                        @if !tier.perks.is_empty() { p.perks { (tier.perks) } }
                        @if !own {
                            a.button href={ "/subscribe/" (tier.id) } { (T::Subscribe.get(lang)) }
                        }
                    }
                }
            }
            @if own { p { a href="/subscriptions/tiers" { (T::ManageTiers.get(lang)) } } }
        }
    })
}

/// `GET /subscribe/{tier}`: what subscribing costs, and the button that pays.
pub async fn confirm_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(tier): Path<String>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    visitor.person()?;
    let tier = subscriptions::tier(&state.reader(), &tier)
        .await
        .map_err(internal(lang))?;
    Ok(confirm(&visitor, &tier, None, StatusCode::OK))
}

fn confirm(
    visitor: &Visitor,
    tier: &TierView,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let lang = visitor.lang;
    let content = html! {
        section.card {
            p { bdi { "@" (tier.creator) } }
            p { strong { (tier.name) } " · " bdi { (price(lang, &tier.price)) } " " (T::AMonth.get(lang)) }
            @if !tier.perks.is_empty() { p.perks { (tier.perks) } }
            p { (T::SubscribeTerms.get(lang)) }
            form method="post" action={ "/subscribe/" (tier.id) } novalidate {
                (csrf_field(visitor))
                (key_field(&random_token()))
                @if let Some(error) = error { (form_error(error)) }
                (submit(T::ConfirmAndPay.get(lang), T::Working.get(lang)))
            }
        }
    };
    page(visitor, status, T::ConfirmSubscription.get(lang), content)
}

fn subscribe_problem(lang: Lang, error: &PaymentError) -> Option<&'static str> {
    Some(match error {
        PaymentError::InsufficientFunds => T::ErrFunds.get(lang),
        PaymentError::CannotPayYourself => T::ErrSelf.get(lang),
        PaymentError::AlreadySubscribed => T::ErrAlreadySubscribed.get(lang),
        PaymentError::TierRetired => T::ErrTierRetired.get(lang),
        PaymentError::LimitExceeded { .. } => T::ErrLimit.get(lang),
        PaymentError::VerificationRequired { .. } | PaymentError::CapabilityUnavailable { .. } => {
            T::ErrVerify.get(lang)
        }
        PaymentError::IdempotencyRequestInProgress => T::ErrInProgress.get(lang),
        _ => return None,
    })
}

/// `POST /subscribe/{tier}`: subscribes once per the page's key.
pub async fn subscribe(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(tier_id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let tier = subscriptions::tier(&state.reader(), &tier_id)
        .await
        .map_err(internal(lang))?;
    let key = IdempotencyKey::parse(&form_key(&form, "subscription"))
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let ledger = ledger(&state, lang)?;
    let answer = subscriptions::subscribe(
        &ledger,
        &state.reader(),
        &state.config().limits,
        person,
        &tier.id,
        key,
        state.config().subscription_fee_bps,
        now_ns(),
    )
    .await;
    match answer {
        Ok(_) => Ok(layout::redirect(&format!(
            "/people/{}?done=subscribed",
            tier.creator
        ))),
        Err(error) => match subscribe_problem(lang, &error) {
            Some(text) => Ok(confirm(
                &visitor,
                &tier,
                Some(text),
                StatusCode::UNPROCESSABLE_ENTITY,
            )),
            None => Err(internal(lang)(error)),
        },
    }
}

fn status_text(lang: Lang, status: SubscriptionStatus) -> &'static str {
    match status {
        SubscriptionStatus::Active => T::StatusActive.get(lang),
        SubscriptionStatus::Grace => T::StatusGrace.get(lang),
        SubscriptionStatus::Canceled => T::StatusCanceled.get(lang),
        SubscriptionStatus::Lapsed => T::StatusLapsed.get(lang),
    }
}

fn subscription_line(visitor: &Visitor, view: &SubscriptionView, as_creator: bool) -> Markup {
    let lang = visitor.lang;
    let who = if as_creator {
        &view.subscriber
    } else {
        &view.creator
    };
    let live = matches!(
        view.status,
        SubscriptionStatus::Active | SubscriptionStatus::Grace
    );
    html! {
        li.subscription data-status=(view.status.code()) {
            a href={ "/people/" (who) } { bdi { "@" (who) } }
            " · " (view.tier_name) " · " bdi { (price(lang, &view.price)) } " " (T::AMonth.get(lang))
            " · " span.status { (status_text(lang, view.status)) }
            @if view.status == SubscriptionStatus::Active {
                " · "
                @if view.cancel_at_period_end { (T::EndsOn.get(lang)) } @else { (T::RenewsOn.get(lang)) }
                " " time datetime=(view.current_period_end) { (i18n::date_time(lang, &view.current_period_end)) }
            }
            @if let (SubscriptionStatus::Grace, Some(until)) = (view.status, &view.grace_until) {
                " · " (T::GraceUntil.get(lang)) " " time datetime=(until) { (i18n::date_time(lang, until)) }
            }
            @if !as_creator && live && !view.cancel_at_period_end {
                form.inline method="post" action={ "/subscriptions/" (view.id) "/cancel" } {
                    (csrf_field(visitor))
                    button type="submit" data-busy=(T::Working.get(lang)) { (T::CancelSubscription.get(lang)) }
                }
            }
        }
    }
}

/// `GET /subscriptions`: the visitor's subscriptions, with cancel.
pub async fn subscriptions_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let views = subscriptions::subscriptions_of(&state.reader(), person.id, now_ns())
        .await
        .map_err(internal(lang))?;
    let content = html! {
        @if done.done.as_deref() == Some("canceled") { (notice(T::SubscriptionCanceled.get(lang))) }
        @if views.is_empty() { p { (T::NoSubscriptions.get(lang)) } }
        ul.subscriptions {
            @for view in &views { (subscription_line(&visitor, view, false)) }
        }
        p {
            a href="/subscriptions/tiers" { (T::ManageTiers.get(lang)) }
            " · "
            a href="/subscriptions/subscribers" { (T::YourSubscribers.get(lang)) }
        }
    };
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::YourSubscriptions.get(lang),
        content,
    ))
}

/// `POST /subscriptions/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let ledger = ledger(&state, lang)?;
    match subscriptions::cancel(&ledger, &state.reader(), person, &id, now_ns()).await {
        Ok(_) | Err(PaymentError::SubscriptionEnded) => {
            Ok(layout::redirect("/subscriptions?done=canceled"))
        }
        Err(error) => Err(internal(lang)(error)),
    }
}

/// `GET /subscriptions/subscribers`: the creator's subscribers.
pub async fn subscribers_page(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let views = subscriptions::subscribers_of(&state.reader(), person.id, now_ns())
        .await
        .map_err(internal(lang))?;
    let content = html! {
        @if views.is_empty() { p { (T::NoSubscribers.get(lang)) } }
        ul.subscriptions {
            @for view in &views { (subscription_line(&visitor, view, true)) }
        }
        p { a href="/subscriptions/tiers" { (T::ManageTiers.get(lang)) } }
    };
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::YourSubscribers.get(lang),
        content,
    ))
}

/// `GET /subscriptions/tiers`: the creator's tiers, retire, and a form for a new one.
pub async fn tiers_page(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    render_tiers(&state, &visitor, &Form::default(), None, StatusCode::OK).await
}

async fn render_tiers(
    state: &AppState,
    visitor: &Visitor,
    form: &Form,
    problem: Option<(&str, &str)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let tiers = subscriptions::tiers_of(&state.reader(), person.id, true)
        .await
        .map_err(internal(lang))?;
    let field_error =
        |name: &str| problem.and_then(|(field, text)| (field == name).then_some(text));
    let content = html! {
        @if tiers.is_empty() { p { (T::NoTiers.get(lang)) } }
        ul.tiers {
            @for tier in &tiers {
                li.tier {
                    strong { (tier.name) } " · " bdi { (price(lang, &tier.price)) } " " (T::AMonth.get(lang))
                    @if tier.retired {
                        " · " (T::Retired.get(lang))
                    } @else {
                        form.inline method="post" action={ "/subscriptions/tiers/" (tier.id) "/retire" } {
                            (csrf_field(visitor))
                            button type="submit" data-busy=(T::Working.get(lang)) { (T::RetireTier.get(lang)) }
                        }
                    }
                }
            }
        }
        form.card method="post" action="/subscriptions/tiers" novalidate {
            h2 { (T::NewTier.get(lang)) }
            (csrf_field(visitor))
            // A double submit creates one tier: the key claims it.
            (key_field(&random_token()))
            @if let Some(("", text)) = problem { (form_error(text)) }
            (Field::new("name", T::TierName.get(lang)).value(form.get("name")).error(field_error("name")).render())
            (Field::new("price", T::TierPrice.get(lang)).value(form.get("price")).inputmode("decimal")
                .error(field_error("price")).render())
            (Field::new("perks", T::TierPerks.get(lang)).value(form.get("perks")).optional()
                .error(field_error("perks")).render())
            (submit(T::CreateTier.get(lang), T::Working.get(lang)))
        }
        p { a href="/subscriptions/subscribers" { (T::YourSubscribers.get(lang)) } }
    };
    Ok(page(visitor, status, T::ManageTiers.get(lang), content))
}

fn tier_problem(lang: Lang, error: &PaymentError) -> Option<(&'static str, &'static str)> {
    Some(match error {
        PaymentError::TierNameInvalid => ("name", T::ErrTierName.get(lang)),
        PaymentError::TierPriceInvalid
        | PaymentError::AmountMalformed
        | PaymentError::AmountTooPrecise
        | PaymentError::AmountTooLarge
        | PaymentError::AmountMustBePositive => ("price", T::ErrTierPrice.get(lang)),
        PaymentError::TierPerksInvalid => ("perks", T::ErrTierPerks.get(lang)),
        PaymentError::TooManyTiers => ("", T::ErrTooManyTiers.get(lang)),
        PaymentError::IdempotencyRequestInProgress => ("", T::ErrInProgress.get(lang)),
        _ => return None,
    })
}

/// `POST /subscriptions/tiers`.
pub async fn create_tier(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let parsed = i18n::typed_amount(form.get("price"))
        .and_then(|price| NewTier::parse(form.get("name"), price, form.get("perks")));
    let created = match parsed {
        Ok(tier) => {
            let key = IdempotencyKey::parse(&form_key(&form, "tier"))
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
            let creation = Creation::new(
                &format!("person:{}:subscription-tiers", person.id),
                &key,
                &subscriptions::tier_canonical(&tier),
                SystemClock.now_ns(),
            );
            let ledger = ledger(&state, lang)?;
            subscriptions::create_tier_once(
                &ledger,
                &state.reader(),
                person,
                tier,
                Some(&creation),
                now_ns(),
            )
            .await
        }
        Err(error) => Err(error),
    };
    match created {
        Ok(_) => Ok(layout::redirect("/subscriptions/tiers")),
        Err(error) => match tier_problem(lang, &error) {
            Some(problem) => {
                render_tiers(
                    &state,
                    &visitor,
                    &form,
                    Some(problem),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => Err(internal(lang)(error)),
        },
    }
}

/// `POST /subscriptions/tiers/{id}/retire`.
pub async fn retire_tier(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let ledger = ledger(&state, lang)?;
    subscriptions::retire_tier(&ledger, &state.reader(), person, &id)
        .await
        .map_err(internal(lang))?;
    Ok(layout::redirect("/subscriptions/tiers"))
}
