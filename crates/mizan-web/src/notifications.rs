//! `GET /notifications`: what happened to the person, newest first, each a sentence
//! with a link to what it is about. Opening the page marks what it shows as seen (the
//! nav's unread count goes back to zero); unread ones are highlighted this once.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::notifications::{self, Kind, Notification};

use crate::i18n::{self, Lang, T};
use crate::layout::page;
use crate::visitor::Visitor;
use crate::WebError;

/// Notifications one page shows.
const PAGE: usize = 50;

#[derive(serde::Deserialize)]
pub struct NotificationsQuery {
    before: Option<u64>,
}

/// The sentence for one notification, and where it links.
fn sentence(lang: Lang, notification: &Notification) -> (String, Option<String>) {
    let who = notification
        .from
        .as_deref()
        .map(|handle| format!("@{handle}"))
        .unwrap_or_default();
    let amount = notification
        .amount()
        .map(|money| i18n::money(lang, money))
        .unwrap_or_default();
    let subject = notification.subject_id.as_deref().unwrap_or_default();
    let profile = notification
        .from
        .as_deref()
        .map(|handle| format!("/people/{handle}"));
    let thread = notification
        .from
        .as_deref()
        .map(|handle| format!("/messages/{handle}"));
    match notification.kind {
        Kind::PaymentReceived => (
            format!("{who} {} {amount}", T::NoteSentYou.get(lang)),
            Some(format!("/receipts/{subject}")),
        ),
        Kind::TipReceived => (
            format!("{who} {} {amount}", T::TippedYou.get(lang)),
            profile,
        ),
        Kind::RequestReceived => (
            format!("{who} {} {amount}", T::NoteRequested.get(lang)),
            Some("/requests".to_owned()),
        ),
        Kind::RequestPaid => (
            format!("{who} {} ({amount})", T::NotePaidRequest.get(lang)),
            Some("/requests".to_owned()),
        ),
        Kind::RequestDeclined => (
            format!("{who} {} ({amount})", T::NoteDeclinedRequest.get(lang)),
            Some("/requests".to_owned()),
        ),
        Kind::PaidDmReceived => (
            format!("{who} {} {amount}", T::NotePaidDm.get(lang)),
            Some("/messages".to_owned()),
        ),
        Kind::PaidDmAnswered => (
            format!("{who} {} {amount}", T::NoteDmAnswered.get(lang)),
            thread,
        ),
        Kind::PaidDmRefunded => (
            format!("{} {amount} ({who})", T::NoteDmRefunded.get(lang)),
            thread,
        ),
        Kind::MessageReceived => (format!("{who} {}", T::NoteMessaged.get(lang)), thread),
        Kind::Followed => (format!("{who} {}", T::NoteFollowed.get(lang)), profile),
        Kind::CashoutReturned => (
            format!("{} {amount}", T::NoteCashoutReturned.get(lang)),
            Some("/activity".to_owned()),
        ),
        Kind::NewSubscriber => (
            format!("{who} {} ({amount})", T::NoteNewSubscriber.get(lang)),
            Some("/subscriptions/subscribers".to_owned()),
        ),
        Kind::SubscriptionRenewed => (
            format!("{} {who}: {amount}", T::NoteRenewed.get(lang)),
            Some("/subscriptions".to_owned()),
        ),
        Kind::SubscriptionRenewalFailed => (
            format!("{} {who} ({amount})", T::NoteRenewalFailed.get(lang)),
            Some("/subscriptions".to_owned()),
        ),
        Kind::SubscriptionLapsed => (
            format!("{} {who}", T::NoteLapsed.get(lang)),
            Some("/subscriptions".to_owned()),
        ),
        Kind::CheckoutReceived => (
            format!("{who} {} ({amount})", T::NoteOffered.get(lang)),
            thread,
        ),
        Kind::OrderReceived => (
            format!("{who} {} {amount}", T::NoteBought.get(lang)),
            Some("/orders".to_owned()),
        ),
        Kind::OrderPaid => (
            format!("{} {amount} ({who})", T::NoteOrderPaid.get(lang)),
            Some("/orders".to_owned()),
        ),
        Kind::FundingFailed => (
            format!("{} {amount}", T::NoteFundingFailed.get(lang)),
            Some("/add-money".to_owned()),
        ),
    }
}

fn item(lang: Lang, notification: &Notification, unread: bool) -> Markup {
    let (text, link) = sentence(lang, notification);
    let at = notification.occurred_at();
    html! {
        li.notification.unread[unread] data-kind=(notification.kind.code()) {
            @if let Some(link) = link {
                a href=(link) { bdi { (text) } }
            } @else {
                bdi { (text) }
            }
            " "
            time datetime=(at) { (i18n::date_time(lang, &at)) }
        }
    }
}

/// `GET /notifications[?before=seq]`.
pub async fn notifications_page(
    State(state): State<AppState>,
    mut visitor: Visitor,
    Query(query): Query<NotificationsQuery>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?.id;
    let reader = state.reader();
    let internal =
        |error: mizan_app::payments::PaymentError| WebError::Internal(lang, error.to_string());
    let listed = notifications::list(&reader, person, query.before, PAGE)
        .await
        .map_err(internal)?;
    // Seen once shown: only the first page moves the marker (to its newest).
    if query.before.is_none() {
        if let Some(newest) = listed.items.first() {
            if listed.is_unread(newest) {
                let ledger = state
                    .ledger()
                    .ok_or_else(|| WebError::Internal(lang, "shutting down".to_owned()))?;
                notifications::mark_seen(&ledger, &reader, person, Some(newest.seq))
                    .await
                    .map_err(internal)?;
                visitor.unread = 0;
            }
        }
    }
    let older = (listed.items.len() == PAGE)
        .then(|| listed.items.last().map(|n| n.seq))
        .flatten();
    let content = html! {
        @if listed.items.is_empty() {
            p { (T::NoNotifications.get(lang)) }
        } @else {
            ol.notifications #notifications {
                @for notification in &listed.items {
                    (item(lang, notification, listed.is_unread(notification)))
                }
            }
        }
        @if let Some(older) = older {
            p { a href={ "/notifications?before=" (older) } { (T::Older.get(lang)) } }
        }
    };
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::Notifications.get(lang),
        content,
    ))
}
