//! Live updates: `GET /events` is a server-sent event stream of what happens to the
//! signed-in person (money received, requests, …), so an open page updates without a
//! reload.
//!
//! One task per server tails the ledger's outbox (the same events webhooks deliver)
//! and broadcasts each to the streams of the people it is about. It starts with the
//! first stream and stops when the server shuts down; streams end then too, so they
//! never hold shutdown up.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::stream::{self, Stream};
use mizan_api::AppState;
use mizan_app::identity::PersonId;
use mizan_app::outbox::occurred_at_ns;
use mizan_app::payments::TOPIC_PAYMENT_SUCCEEDED;
use mizan_app::requests::TOPIC_REQUEST_CREATED;
use mizan_app::webhooks;
use mizan_core::{Clock, Currency, Money, SystemClock};
use tokio::sync::broadcast;

use crate::i18n::{self, Lang, T};
use crate::visitor::Visitor;

/// Events one read of the outbox takes.
const OUTBOX_PAGE: usize = 500;
/// How often the tailer looks for new events when it is caught up.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Events a slow stream may fall behind by before it skips ahead.
const CHANNEL_CAPACITY: usize = 1_024;
/// Events older than this when the tailer starts are history, not news.
const STARTUP_WINDOW_NS: u64 = 5_000_000_000;

/// One outbox event, with the people it is about.
#[derive(Debug)]
pub struct LiveEvent {
    pub people: Vec<PersonId>,
    pub topic: String,
    pub payload: Vec<u8>,
}

/// The broadcast hub the event streams subscribe to.
#[derive(Debug, Clone)]
pub struct Live {
    sender: broadcast::Sender<Arc<LiveEvent>>,
    started: Arc<AtomicBool>,
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

impl Live {
    pub fn new() -> Live {
        Live {
            sender: broadcast::Sender::new(CHANNEL_CAPACITY),
            started: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A receiver of every event from now on; starts the tailer on first use.
    pub fn subscribe(&self, state: &AppState) -> broadcast::Receiver<Arc<LiveEvent>> {
        let receiver = self.sender.subscribe();
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(tail(state.clone(), self.sender.clone()));
        }
        receiver
    }
}

/// Reads the outbox from the webhook worker's cursor on, broadcasting new events.
async fn tail(state: AppState, sender: broadcast::Sender<Arc<LiveEvent>>) {
    let reader = state.reader();
    let mut closing = state.closing();
    let started_ns = SystemClock.now_ns();
    let mut after = match webhooks::cursor(&reader).await {
        Ok(cursor) => cursor,
        Err(error) => {
            tracing::warn!(%error, "live updates: no outbox cursor; reading from the start");
            0
        }
    };
    loop {
        if *closing.borrow() {
            break;
        }
        match webhooks::outbox_page(&reader, after, OUTBOX_PAGE).await {
            Ok(page) if !page.is_empty() => {
                for (seq, topic, payload) in page {
                    after = seq;
                    let recent = occurred_at_ns(&payload)
                        .is_none_or(|at| at.saturating_add(STARTUP_WINDOW_NS) >= started_ns);
                    let people = webhooks::people_of(&payload);
                    if recent && !people.is_empty() {
                        // No receivers is fine: nobody is watching right now.
                        let _ = sender.send(Arc::new(LiveEvent {
                            people,
                            topic,
                            payload,
                        }));
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "live updates: reading the outbox failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = closing.changed() => {}
        }
    }
    tracing::debug!("live updates stopped");
}

/// `GET /events`: the signed-in person's events as `text/event-stream`. Each event is
/// `event: update` with JSON data `{topic, message}`; `message` is a sentence for
/// people (empty when there is nothing to announce) in the visitor's language.
pub async fn events(
    State(state): State<AppState>,
    Extension(live): Extension<Live>,
    visitor: Visitor,
) -> Response {
    let Some(caller) = visitor.caller else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let person = caller.person.id;
    let receiver = live.subscribe(&state);
    let closing = state.closing();
    Sse::new(person_events(receiver, closing, person, visitor.lang))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn person_events(
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    closing: tokio::sync::watch::Receiver<bool>,
    person: PersonId,
    lang: Lang,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (receiver, closing),
        move |(mut receiver, mut closing)| async move {
            loop {
                if *closing.borrow() {
                    return None;
                }
                let next = tokio::select! {
                    next = receiver.recv() => next,
                    _ = closing.changed() => return None,
                };
                let event = match next {
                    Ok(event) => event,
                    // Fell behind: the page refreshes from the server anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let data = serde_json::json!({"topic": "lagged", "message": ""});
                        let event = Event::default().event("update").data(data.to_string());
                        return Some((Ok(event), (receiver, closing)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                if !event.people.contains(&person) {
                    continue;
                }
                let data = serde_json::json!({
                    "topic": event.topic,
                    "message": message_for(person, &event, lang),
                });
                let event = Event::default().event("update").data(data.to_string());
                return Some((Ok(event), (receiver, closing)));
            }
        },
    )
}

/// What to tell `person` about `event`: money they received, a request they got.
fn message_for(person: PersonId, event: &LiveEvent, lang: Lang) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&event.payload) else {
        return String::new();
    };
    let text = |field: &str| {
        value
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    };
    let view = |field: &str| {
        value
            .get("view")
            .and_then(|view| view.get(field))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let amount = value
        .get("amount_minor")
        .and_then(serde_json::Value::as_i64)
        .map(|minor| i18n::money(lang, Money::from_minor(minor, Currency::USD)));
    let me = person.to_string();
    match (event.topic.as_str(), amount) {
        (TOPIC_PAYMENT_SUCCEEDED, Some(amount)) if text("payee") == me => format!(
            "{} {amount} {} @{}",
            T::ReceivedLive.get(lang),
            T::FromWord.get(lang),
            view("from")
        ),
        (mizan_app::tips::TOPIC_TIP_RECEIVED, Some(amount)) if text("payee") == me => {
            format!("@{} {} {amount}", view("from"), T::TippedYou.get(lang))
        }
        (TOPIC_REQUEST_CREATED, Some(amount)) if text("payer") == me => {
            format!("@{} → {amount}", view("to"))
        }
        _ => String::new(),
    }
}
