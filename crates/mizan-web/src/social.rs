//! Social pages: the feed (with a box to post), profiles (follow, tip), and a post's
//! page with its tip count, public tip notes and a tip form (preset amounts or your
//! own). Tips go through `mizan_app::tips`, exactly once per page-made key.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::creation::{Created, Creation, Replay};
use mizan_app::identity::WALLET_CURRENCY;
use mizan_app::payments::{IdempotencyKey, Note, PaymentError};
use mizan_app::social::{
    self, Audience, MinimumTier, PostText, PostView, ProfileEdit, SocialError, Viewer,
};
use mizan_app::subscriptions::{self, TierView};
use mizan_app::tips::{self, NewTip, TipTarget, PRESET_TIPS_MINOR};
use mizan_core::{Clock, Money, SystemClock};
use serde::Deserialize;

use crate::i18n::{self, Lang, T};
use crate::layout::{self, csrf_field, form_error, key_field, notice, page, submit, Field};
use crate::visitor::{form_key, random_token, Form, Visitor};
use crate::WebError;

/// Posts a page lists.
const POSTS_SHOWN: usize = 30;
/// Public tip notes a post's page shows.
const NOTES_SHOWN: usize = 20;

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

/// The signed-in person reading posts now.
fn viewer(person: &mizan_app::identity::Person) -> Viewer {
    Viewer {
        person: Some(person.id),
        now_ns: now_ns(),
    }
}

fn social_error(lang: Lang) -> impl Fn(SocialError) -> WebError {
    move |error| match error {
        SocialError::PersonNotFound | SocialError::PostNotFound => WebError::NotFound(lang),
        other => WebError::Internal(lang, other.to_string()),
    }
}

fn ledger(state: &AppState, lang: Lang) -> Result<mizan_ledger::Ledger, WebError> {
    state
        .ledger()
        .ok_or_else(|| WebError::Internal(lang, "shutting down".to_owned()))
}

fn post_card(lang: Lang, post: &PostView) -> Markup {
    html! {
        article.post {
            header {
                a.who href={ "/people/" (post.author) } { bdi { "@" (post.author) } }
                " "
                time datetime=(post.created_at) { (i18n::date_time(lang, &post.created_at)) }
            }
            @if post.locked {
                p.locked {
                    (T::SubscribersOnly.get(lang))
                    @if let Some(tier) = &post.minimum_tier { " (" (tier.name) ")" }
                    " · "
                    a href={ "/people/" (post.author) "#tiers-title" } { (T::SubscribeToRead.get(lang)) }
                }
            } @else {
                @if post.subscribers_only { p.badge { (T::SubscribersOnly.get(lang)) } }
                p.text { (post.text) }
            }
            footer {
                a href={ "/posts/" (post.id) } {
                    (T::Tips.get(lang)) ": " span.tip-count { (i18n::numerals(lang, &post.tips.to_string())) }
                    " · " (T::TipThis.get(lang))
                }
            }
        }
    }
}

/// `GET /feed`: what the people you follow posted, and a box to post.
pub async fn feed_page(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let posts = social::feed(&state.reader(), person.id, POSTS_SHOWN, now_ns())
        .await
        .map_err(social_error(lang))?;
    let tiers = subscriptions::tiers_of(&state.reader(), person.id, false)
        .await
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let content = html! {
        (compose_form(&visitor, "", None, &tiers))
        section aria-labelledby="posts-title" {
            h2 #posts-title { (T::Feed.get(lang)) }
            @if posts.is_empty() { p { (T::NoPosts.get(lang)) } }
            @for post in &posts { (post_card(lang, post)) }
        }
    };
    Ok(page(&visitor, StatusCode::OK, T::Feed.get(lang), content))
}

fn compose_form(visitor: &Visitor, text: &str, error: Option<&str>, tiers: &[TierView]) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/posts" novalidate {
            (csrf_field(visitor))
            // A double submit publishes one post: the key claims it.
            (key_field(&random_token()))
            div.field.invalid[error.is_some()] {
                label for="field-text" { (T::NewPost.get(lang)) }
                textarea #field-text name="text" rows="3" maxlength="1000" required
                    aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[error.map(|_| "field-text-error")] { (text) }
                @if let Some(error) = error { p.error #field-text-error { (error) } }
            }
            @if !tiers.is_empty() {
                div.field {
                    label {
                        input type="checkbox" name="subscribers_only" value="on";
                        " " (T::ForSubscribersOnly.get(lang))
                    }
                }
                div.field {
                    label for="field-minimum-tier" { (T::MinimumTier.get(lang)) }
                    select #field-minimum-tier name="minimum_tier" {
                        option value="" { (T::AnyTier.get(lang)) }
                        @for tier in tiers {
                            option value=(tier.id) { (tier.name) " · " (tier.price) " " (tier.currency) }
                        }
                    }
                }
            }
            (submit(T::Publish.get(lang), T::Working.get(lang)))
        }
    }
}

/// Who a new post is for: everyone, or the author's subscribers from a tier up (a
/// tier not the author's own counts as any tier).
async fn audience_of(
    state: &AppState,
    person: &mizan_app::identity::Person,
    form: &Form,
    lang: Lang,
) -> Result<Audience, WebError> {
    if form.get("subscribers_only") != "on" {
        return Ok(Audience::Everyone);
    }
    let minimum_tier = match form.get("minimum_tier") {
        "" => None,
        id => match subscriptions::tier(&state.reader(), id).await {
            Ok(tier) if tier.creator == person.handle.as_str() => Some(MinimumTier {
                id: tier.id,
                name: tier.name,
                price_minor: tier.price_minor,
            }),
            Ok(_) | Err(PaymentError::TierNotFound) => None,
            Err(error) => return Err(WebError::Internal(lang, error.to_string())),
        },
    };
    Ok(Audience::Subscribers { minimum_tier })
}

/// `POST /posts`.
pub async fn create_post(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let audience = audience_of(&state, person, &form, lang).await?;
    match PostText::parse(form.get("text")) {
        Ok(text) => {
            let key = IdempotencyKey::parse(&form_key(&form, "post"))
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
            let creation = Creation::new(
                &format!("person:{}:posts", person.id),
                &key,
                &social::post_canonical(&text, &audience),
                SystemClock.now_ns(),
            );
            let ledger = ledger(&state, lang)?;
            let created = social::create_post(
                &ledger,
                &state.reader(),
                person,
                text,
                audience,
                Some(&creation),
                now_ns(),
            )
            .await
            .map_err(social_error(lang))?;
            let id = match created {
                Created::New(post) => post.id,
                Created::Replayed(Replay::Response(stored)) => {
                    serde_json::from_value::<PostView>(stored)
                        .map_err(|error| WebError::Internal(lang, error.to_string()))?
                        .id
                }
            };
            Ok(layout::redirect(&format!("/posts/{id}")))
        }
        Err(_) => {
            let tiers = subscriptions::tiers_of(&state.reader(), person.id, false)
                .await
                .map_err(|error| WebError::Internal(lang, error.to_string()))?;
            let content = compose_form(
                &visitor,
                form.get("text"),
                Some(T::ErrPost.get(lang)),
                &tiers,
            );
            Ok(page(
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                T::Feed.get(lang),
                content,
            ))
        }
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// The tip form for a post or a profile: preset amounts as buttons, or your own.
fn tip_form(visitor: &Visitor, action: &str, form: &Form, problem: Option<(&str, &str)>) -> Markup {
    let lang = visitor.lang;
    let field_error =
        |name: &str| problem.and_then(|(field, text)| (field == name).then_some(text));
    html! {
        form.card.tip method="post" action=(action) novalidate {
            (csrf_field(visitor))
            (key_field(&random_token()))
            @if let Some(("", text)) = problem { (form_error(text)) }
            fieldset {
                legend { (T::TipAmount.get(lang)) }
                div.presets {
                    @for minor in PRESET_TIPS_MINOR {
                        @let money = Money::from_minor(minor, WALLET_CURRENCY);
                        button type="submit" name="preset" value=(money.format_major()) data-busy=(T::Sending.get(lang)) {
                            bdi { (i18n::money(lang, money)) }
                        }
                    }
                }
            }
            (Field::new("amount", T::OtherAmount.get(lang)).value(form.get("amount")).optional()
                .inputmode("decimal").hint(T::AmountHint.get(lang)).error(field_error("amount")).render())
            (Field::new("note", T::Note.get(lang)).value(form.get("note")).optional()
                .error(field_error("note")).render())
            div.check {
                input #field-public type="checkbox" name="public" value="yes" checked[form.get("public") == "yes"];
                label for="field-public" { (T::PublicNote.get(lang)) }
            }
            (submit(T::SendTip.get(lang), T::Sending.get(lang)))
        }
    }
}

/// `GET /posts/{id}`.
pub async fn post_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    render_post(
        &state,
        &visitor,
        &id,
        done.done.as_deref(),
        &Form::default(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render_post(
    state: &AppState,
    visitor: &Visitor,
    id: &str,
    done: Option<&str>,
    form: &Form,
    problem: Option<(&str, &str)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let reader = state.reader();
    let post = social::post(&reader, id, viewer(person))
        .await
        .map_err(social_error(lang))?;
    let notes = tips::public_notes(&reader, &post.id, NOTES_SHOWN)
        .await
        .map_err(social_error(lang))?;
    let own = post.author == person.handle.as_str();
    let content = html! {
        @if done == Some("tipped") { (notice(T::TipSent.get(lang))) }
        (post_card(lang, &post))
        @if !notes.is_empty() {
            section aria-labelledby="notes-title" {
                h2 #notes-title { (T::TipNotes.get(lang)) }
                ul.notes {
                    @for note in &notes {
                        li { bdi { "@" (note.from) } ": " (note.note) }
                    }
                }
            }
        }
        @if !own {
            section aria-labelledby="tip-title" {
                h2 #tip-title { (T::TipThis.get(lang)) }
                (tip_form(visitor, &format!("/posts/{}/tip", post.id), form, problem))
            }
        }
    };
    Ok(page(visitor, status, T::Post.get(lang), content))
}

fn tip_problem(lang: Lang, error: &PaymentError) -> Option<(&'static str, &'static str)> {
    Some(match error {
        PaymentError::AmountMalformed | PaymentError::UnknownCurrency => {
            ("amount", T::ErrBadAmount.get(lang))
        }
        PaymentError::AmountTooPrecise => ("amount", T::ErrTooPrecise.get(lang)),
        PaymentError::AmountTooLarge => ("amount", T::ErrAmountLarge.get(lang)),
        PaymentError::AmountMustBePositive => ("amount", T::ErrAmountPositive.get(lang)),
        PaymentError::InsufficientFunds => ("", T::ErrFunds.get(lang)),
        PaymentError::NoteTooLong => ("note", T::ErrNoteLong.get(lang)),
        PaymentError::CannotPayYourself => ("", T::ErrSelf.get(lang)),
        PaymentError::IdempotencyRequestInProgress => ("", T::ErrInProgress.get(lang)),
        PaymentError::AccountFrozen => ("", T::ErrFrozen.get(lang)),
        _ => return None,
    })
}

/// Sends the tip a form asked for; `Ok(None)` when it went through.
async fn send_tip(
    state: &AppState,
    visitor: &Visitor,
    target: TipTarget,
    form: &Form,
) -> Result<Option<(&'static str, &'static str)>, WebError> {
    let lang = visitor.lang;
    let fan = visitor.person()?;
    let amount_text = match form.get("preset") {
        "" => form.get("amount"),
        preset => preset,
    };
    let amount = i18n::typed_amount(amount_text);
    let note = Note::parse(form.get("note"));
    let (amount, note) = match (amount, note) {
        (Ok(amount), Ok(note)) => (amount, note),
        (Err(error), _) | (_, Err(error)) => {
            return tip_problem(lang, &error)
                .map(Some)
                .ok_or_else(|| WebError::Internal(lang, error.to_string()))
        }
    };
    let key = IdempotencyKey::parse(&form_key(form, "tip"))
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let tip = NewTip {
        target,
        amount,
        note,
        public_note: form.get("public") == "yes",
    };
    let ledger = ledger(state, lang)?;
    let fee_bps = state.config().tip_fee_bps;
    let limits = &state.config().limits;
    match tips::tip(
        &ledger,
        &state.reader(),
        limits,
        fan,
        tip,
        key,
        fee_bps,
        now_ns(),
    )
    .await
    {
        Ok(_) => Ok(None),
        Err(PaymentError::PostNotFound | PaymentError::RecipientNotFound) => {
            Err(WebError::NotFound(lang))
        }
        Err(error) => tip_problem(lang, &error)
            .map(Some)
            .ok_or_else(|| WebError::Internal(lang, error.to_string())),
    }
}

/// `POST /posts/{id}/tip`.
pub async fn tip_post(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    match send_tip(&state, &visitor, TipTarget::Post(id.clone()), &form).await? {
        None => Ok(layout::redirect(&format!("/posts/{id}?done=tipped"))),
        Some(problem) => {
            render_post(
                &state,
                &visitor,
                &id,
                None,
                &form,
                Some(problem),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `GET /people/{handle}`: a profile with follow, posts and a tip form.
pub async fn profile_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(handle): Path<String>,
    Query(done): Query<DoneQuery>,
) -> Result<Response, WebError> {
    render_profile(
        &state,
        &visitor,
        &handle,
        done.done.as_deref(),
        &Form::default(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn render_profile(
    state: &AppState,
    visitor: &Visitor,
    handle: &str,
    done: Option<&str>,
    form: &Form,
    problem: Option<(&str, &str)>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let reader = state.reader();
    let owner = social::person_of(&reader, handle)
        .await
        .map_err(social_error(lang))?;
    let profile = social::profile(&reader, owner.handle.as_str())
        .await
        .map_err(social_error(lang))?;
    let posts = social::posts_by(&reader, owner.id, POSTS_SHOWN, viewer(person))
        .await
        .map_err(social_error(lang))?;
    let own = owner.id == person.id;
    let following = !own
        && social::follows(&reader, person.id, owner.id)
            .await
            .map_err(social_error(lang))?;
    let handle = owner.handle.as_str();
    let tiers = crate::subscriptions::profile_section(state, visitor, &owner).await?;
    let content = html! {
        @if done == Some("tipped") { (notice(T::TipSent.get(lang))) }
        @if done == Some("subscribed") { (notice(T::Subscribed.get(lang))) }
        section.profile {
            p.handle { bdi { "@" (handle) } }
            // Linked, not loaded: the page's CSP loads images from this origin only,
            // so a third-party host never learns who views the profile.
            @if let Some(avatar) = &profile.avatar_url {
                p.avatar { a href=(avatar) rel="noopener noreferrer nofollow" target="_blank" { (T::ProfilePicture.get(lang)) } }
            }
            @if !profile.bio.is_empty() { p.bio { (profile.bio) } }
            p.counts {
                (i18n::numerals(lang, &profile.followers.to_string())) " " (T::Followers.get(lang))
                " · "
                (i18n::numerals(lang, &profile.following.to_string())) " " (T::Following.get(lang))
            }
            @if own {
                (profile_form(visitor, &profile.display_name, &profile.bio, profile.avatar_url.as_deref().unwrap_or(""), None))
            } @else {
                form.inline method="post" action={ "/people/" (handle) (if following { "/unfollow" } else { "/follow" }) } {
                    (csrf_field(visitor))
                    @if following {
                        button type="submit" data-busy=(T::Working.get(lang)) { (T::Unfollow.get(lang)) }
                    } @else {
                        (submit(T::Follow.get(lang), T::Working.get(lang)))
                    }
                }
                a.button href={ "/send?to=" (handle) } { (T::Send.get(lang)) }
            }
        }
        (tiers)
        @if !own {
            section aria-labelledby="tip-title" {
                h2 #tip-title { (T::TipCreator.get(lang)) }
                (tip_form(visitor, &format!("/people/{handle}/tip"), form, problem))
            }
        }
        section aria-labelledby="posts-title" {
            h2 #posts-title { (T::Posts.get(lang)) }
            @if posts.is_empty() { p { (T::NoPosts.get(lang)) } }
            @for post in &posts { (post_card(lang, post)) }
        }
    };
    Ok(page(visitor, status, &profile.display_name, content))
}

fn profile_form(
    visitor: &Visitor,
    name: &str,
    bio: &str,
    avatar_url: &str,
    error: Option<&str>,
) -> Markup {
    let lang = visitor.lang;
    html! {
        details open[error.is_some()] {
            summary { (T::EditProfile.get(lang)) }
            form.card method="post" action="/profile" novalidate {
                (csrf_field(visitor))
                (Field::new("display_name", T::DisplayName.get(lang)).value(name).error(error).render())
                (Field::new("bio", T::Bio.get(lang)).value(bio).optional().render())
                (Field::new("avatar_url", T::AvatarUrl.get(lang)).value(avatar_url).optional()
                    .inputmode("url").hint(T::AvatarUrlHint.get(lang)).render())
                (submit(T::Save.get(lang), T::Working.get(lang)))
            }
        }
    }
}

/// `POST /people/{handle}/tip`.
pub async fn tip_profile(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(handle): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    match send_tip(&state, &visitor, TipTarget::Profile(handle.clone()), &form).await? {
        None => Ok(layout::redirect(&format!("/people/{handle}?done=tipped"))),
        Some(problem) => {
            render_profile(
                &state,
                &visitor,
                &handle,
                None,
                &form,
                Some(problem),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /people/{handle}/follow` and `/unfollow`.
pub async fn set_follow(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((handle, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    visitor.check_form(&Form::parse(&body))?;
    let active = match action.as_str() {
        "follow" => true,
        "unfollow" => false,
        _ => return Err(WebError::NotFound(lang)),
    };
    let ledger = ledger(&state, lang)?;
    match social::set_follow(&ledger, &state.reader(), person, &handle, active, now_ns()).await {
        Ok(_) | Err(SocialError::CannotFollowYourself) => {}
        Err(error) => return Err(social_error(lang)(error)),
    }
    Ok(layout::redirect(&format!("/people/{handle}")))
}

/// `POST /profile`: the signed-in person's display name and bio.
pub async fn edit_profile(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let parsed = ProfileEdit::parse(form.get("display_name"), form.get("bio"))
        .and_then(|edit| edit.with_avatar_url(form.get("avatar_url")));
    match parsed {
        Ok(edit) => {
            let ledger = ledger(&state, lang)?;
            social::update_profile(&ledger, &state.reader(), person, edit)
                .await
                .map_err(social_error(lang))?;
            Ok(layout::redirect(&format!(
                "/people/{}",
                person.handle.as_str()
            )))
        }
        Err(error) => {
            let problem = match error {
                SocialError::AvatarUrlInvalid => T::ErrAvatarUrl.get(lang),
                _ => T::ErrDisplayName.get(lang),
            };
            let content = profile_form(
                &visitor,
                form.get("display_name"),
                form.get("bio"),
                form.get("avatar_url"),
                Some(problem),
            );
            Ok(page(
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                T::EditProfile.get(lang),
                content,
            ))
        }
    }
}
