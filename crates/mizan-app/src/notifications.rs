//! Notifications: the in-app list of what happened *to* a person — money received,
//! requests, paid DMs, messages, new followers, a returned cash-out.
//!
//! The list is a projection of the outbox (the same events webhooks deliver): the
//! webhook worker, which already reads every event once in order, turns each into
//! rows for the people it notifies ([`rows_for_event`]) in the same submission that
//! records the event's deliveries. A row's key is (person, event sequence), so reading
//! an event again after a crash writes the same row again: nothing is lost and nothing
//! doubles. A person's "seen" marker is one document holding the newest sequence they
//! have seen; everything newer is unread.
//!
//! Only facts for display are kept (who, how much, which object): never a message's
//! text or a note, which stay with their own documents and permissions.

use mizan_core::{Currency, Money};
use mizan_ledger::{BusinessRow, Ledger};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::identity::{PersonId, SharedReader};
use crate::payments::{internal, PaymentError};
use crate::time::rfc3339_from_ns;

pub const COLLECTION_NOTIFICATIONS: &str = "notifications";
pub const COLLECTION_NOTIFICATIONS_SEEN: &str = "notifications_seen";
/// Most notifications one page lists.
pub const NOTIFICATIONS_PAGE_MAX: usize = 100;

/// What a notification says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Someone paid you.
    PaymentReceived,
    /// Someone tipped you.
    TipReceived,
    /// Someone asks you for money.
    RequestReceived,
    /// Someone paid your request.
    RequestPaid,
    /// Someone declined your request.
    RequestDeclined,
    /// Someone paid to message you (it waits in your priority inbox).
    PaidDmReceived,
    /// The person you paid to reach answered: the hold went to them.
    PaidDmAnswered,
    /// Your paid DM was declined or not answered in time: you got the money back.
    PaidDmRefunded,
    /// Someone wrote to you.
    MessageReceived,
    /// Someone followed you.
    Followed,
    /// Your bank returned a cash-out: the money is back in your wallet.
    CashoutReturned,
    /// A card top-up failed after its challenge.
    FundingFailed,
    /// Someone subscribed to you.
    NewSubscriber,
    /// Your subscription was charged for another period.
    SubscriptionRenewed,
    /// A renewal could not be charged: the subscription is in grace.
    SubscriptionRenewalFailed,
    /// Grace ran out: the subscription ended.
    SubscriptionLapsed,
    /// Someone offered you something to buy in your conversation.
    CheckoutReceived,
    /// Someone bought what you offered.
    OrderReceived,
    /// You bought something: your order is paid.
    OrderPaid,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Kind::PaymentReceived => "payment_received",
            Kind::TipReceived => "tip_received",
            Kind::RequestReceived => "request_received",
            Kind::RequestPaid => "request_paid",
            Kind::RequestDeclined => "request_declined",
            Kind::PaidDmReceived => "paid_dm_received",
            Kind::PaidDmAnswered => "paid_dm_answered",
            Kind::PaidDmRefunded => "paid_dm_refunded",
            Kind::MessageReceived => "message_received",
            Kind::Followed => "followed",
            Kind::CashoutReturned => "cashout_returned",
            Kind::FundingFailed => "funding_failed",
            Kind::NewSubscriber => "new_subscriber",
            Kind::SubscriptionRenewed => "subscription_renewed",
            Kind::SubscriptionRenewalFailed => "subscription_renewal_failed",
            Kind::SubscriptionLapsed => "subscription_lapsed",
            Kind::CheckoutReceived => "checkout_received",
            Kind::OrderReceived => "order_received",
            Kind::OrderPaid => "order_paid",
        }
    }
}

/// One notification as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The outbox sequence of the event: increasing, so newer is larger.
    pub seq: u64,
    pub kind: Kind,
    /// The other person's handle, when there is one.
    pub from: Option<String>,
    pub amount_minor: Option<i64>,
    /// ISO 4217 code of `amount_minor`.
    pub currency: Option<String>,
    /// The object it is about: a payment, request, tip, paid DM or cash-out id.
    pub subject_id: Option<String>,
    pub occurred_at_ns: u64,
}

impl Notification {
    pub fn amount(&self) -> Option<Money> {
        let currency: Currency = self.currency.as_deref()?.parse().ok()?;
        Some(Money::from_minor(self.amount_minor?, currency))
    }

    pub fn occurred_at(&self) -> String {
        rfc3339_from_ns(self.occurred_at_ns)
    }
}

fn key(person: PersonId, seq: u64) -> String {
    // Newest first in key order.
    format!("{person}:{:020}", u64::MAX - seq)
}

/// A JSON value kept only when it is a string: any other value reads as absent, so
/// an event with an odd field still notifies what it can.
#[derive(Debug, Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(text))))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(text.to_owned()))))
            }
            fn visit_string<E>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(text))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_none<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Text<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Text<'de>, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Text(None))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Text<'_> {
    fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A JSON value kept only when it is a number.
#[derive(Debug, Default)]
struct Number(Option<serde_json::Number>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(number) => Ok(Number(Some(number))),
            _ => Ok(Number(None)),
        }
    }
}

impl Number {
    fn as_i64(&self) -> Option<i64> {
        self.0.as_ref().and_then(serde_json::Number::as_i64)
    }

    fn as_u64(&self) -> Option<u64> {
        self.0.as_ref().and_then(serde_json::Number::as_u64)
    }
}

/// The fields of an event's view that notifications read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ViewFields<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    currency: Text<'a>,
    #[serde(borrow)]
    amount: Text<'a>,
    #[serde(borrow)]
    from: Text<'a>,
    #[serde(borrow)]
    to: Text<'a>,
    #[serde(borrow)]
    subscriber: Text<'a>,
    #[serde(borrow)]
    creator: Text<'a>,
    #[serde(borrow)]
    seller: Text<'a>,
    #[serde(borrow)]
    buyer: Text<'a>,
}

/// A view that is not an object reads as an empty one.
#[derive(Debug, Default)]
struct View<'a>(ViewFields<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for View<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = View<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<View<'de>, A::Error> {
                let fields =
                    ViewFields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(View(fields))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<View<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(View::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<View<'de>, E> {
                Ok(View::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<View<'de>, E> {
                Ok(View::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<View<'de>, E> {
                Ok(View::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<View<'de>, E> {
                Ok(View::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<View<'de>, E> {
                Ok(View::default())
            }
            fn visit_unit<E>(self) -> Result<View<'de>, E> {
                Ok(View::default())
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The fields of an outbox event that notifications read; every other field is
/// skipped without being built.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EventFields<'a> {
    #[serde(borrow)]
    payee: Text<'a>,
    #[serde(borrow)]
    payer: Text<'a>,
    #[serde(borrow)]
    requester: Text<'a>,
    #[serde(borrow)]
    person: Text<'a>,
    #[serde(borrow)]
    follower: Text<'a>,
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    currency: Text<'a>,
    amount_minor: Number,
    price_minor: Number,
    occurred_at_ns: Number,
    #[serde(borrow)]
    view: View<'a>,
}

impl EventFields<'_> {
    fn person_at(&self, field: &str) -> Option<PersonId> {
        let text = match field {
            "payee" => &self.payee,
            "payer" => &self.payer,
            "requester" => &self.requester,
            "person" => &self.person,
            _ => return None,
        };
        text.get().and_then(|id| PersonId::parse(id).ok())
    }

    /// The amount of an event: `amount_minor` with `currency` (USD when absent), or
    /// the view's major-unit amount.
    fn amount(&self) -> (Option<i64>, Option<String>) {
        let currency = self
            .currency
            .get()
            .or_else(|| self.view.0.currency.get())
            .unwrap_or("USD")
            .to_owned();
        if let Some(minor) = self.amount_minor.as_i64().or(self.price_minor.as_i64()) {
            return (Some(minor), Some(currency));
        }
        let parsed = self
            .view
            .0
            .amount
            .get()
            .and_then(|amount| crate::payments::parse_amount(amount, &currency).ok())
            .map(Money::minor_units);
        (parsed, parsed.map(|_| currency))
    }
}

/// Whom an event notifies, of what, and who the other person is.
fn recipients(topic: &str, event: &EventFields<'_>) -> Vec<(PersonId, Kind, Option<String>)> {
    let view = &event.view.0;
    let named = |text: &Text<'_>| text.get().map(str::to_owned);
    let one = |field: &str, kind: Kind, from: Option<String>| {
        event
            .person_at(field)
            .map(|person| vec![(person, kind, from)])
            .unwrap_or_default()
    };
    match topic {
        crate::payments::TOPIC_PAYMENT_SUCCEEDED => {
            one("payee", Kind::PaymentReceived, named(&view.from))
        }
        crate::tips::TOPIC_TIP_RECEIVED => one("payee", Kind::TipReceived, named(&view.from)),
        // A request's view says who pays: `to` asks `from` for money.
        crate::requests::TOPIC_REQUEST_CREATED => {
            one("payer", Kind::RequestReceived, named(&view.to))
        }
        crate::requests::TOPIC_REQUEST_PAID => {
            one("requester", Kind::RequestPaid, named(&view.from))
        }
        crate::requests::TOPIC_REQUEST_DECLINED => {
            one("requester", Kind::RequestDeclined, named(&view.from))
        }
        crate::messages::TOPIC_PAID_DM_RECEIVED => {
            one("payee", Kind::PaidDmReceived, named(&view.from))
        }
        crate::messages::TOPIC_PAID_DM_PAID => one("payer", Kind::PaidDmAnswered, named(&view.to)),
        crate::messages::TOPIC_PAID_DM_REFUNDED => {
            one("payer", Kind::PaidDmRefunded, named(&view.to))
        }
        crate::messages::TOPIC_MESSAGE_SENT => {
            one("payee", Kind::MessageReceived, named(&view.from))
        }
        crate::social::TOPIC_FOLLOWED => one("person", Kind::Followed, named(&event.follower)),
        crate::cashout::TOPIC_CASHOUT_RETURNED => one("person", Kind::CashoutReturned, None),
        crate::funding::TOPIC_FUNDING_FAILED => one("person", Kind::FundingFailed, None),
        crate::subscriptions::TOPIC_SUBSCRIPTION_CREATED => {
            one("payee", Kind::NewSubscriber, named(&view.subscriber))
        }
        crate::subscriptions::TOPIC_SUBSCRIPTION_RENEWED => {
            one("payer", Kind::SubscriptionRenewed, named(&view.creator))
        }
        crate::subscriptions::TOPIC_SUBSCRIPTION_RENEWAL_FAILED => one(
            "payer",
            Kind::SubscriptionRenewalFailed,
            named(&view.creator),
        ),
        crate::subscriptions::TOPIC_SUBSCRIPTION_LAPSED => {
            one("payer", Kind::SubscriptionLapsed, named(&view.creator))
        }
        crate::checkout::TOPIC_CHECKOUT_CREATED => {
            one("payer", Kind::CheckoutReceived, named(&view.seller))
        }
        crate::checkout::TOPIC_ORDER_PAID => {
            let mut both = one("payee", Kind::OrderReceived, named(&view.buyer));
            both.extend(one("payer", Kind::OrderPaid, named(&view.seller)));
            both
        }
        _ => Vec::new(),
    }
}

/// The notification rows for outbox event `seq` (none for events that notify nobody,
/// or a payload that is not a JSON object).
pub fn rows_for_event(seq: u64, topic: &str, payload: &[u8]) -> Result<Vec<BusinessRow>, String> {
    let Ok(event) = serde_json::from_slice::<EventFields<'_>>(payload) else {
        return Ok(Vec::new());
    };
    let occurred_at_ns = event.occurred_at_ns.as_u64().unwrap_or_default();
    let (amount_minor, currency) = event.amount();
    let subject_id = event
        .view
        .0
        .id
        .get()
        .or_else(|| event.id.get())
        .map(str::to_owned);
    recipients(topic, &event)
        .into_iter()
        .map(|(person, kind, from)| {
            let notification = Notification {
                seq,
                kind,
                from,
                amount_minor,
                currency: currency.clone(),
                subject_id: subject_id.clone(),
                occurred_at_ns,
            };
            let body = serde_json::to_vec(&notification)
                .map_err(|error| format!("notification: {error}"))?;
            Ok(BusinessRow::Document {
                collection: COLLECTION_NOTIFICATIONS.to_owned(),
                key: key(person, seq),
                body,
            })
        })
        .collect()
}

/// A page of a person's notifications, newest first, and how many of them are unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Notification>,
    /// Newest sequence the person has seen (0 for none).
    pub seen_through: u64,
    /// Unread among the newest [`NOTIFICATIONS_PAGE_MAX`] (a count to show, capped).
    pub unread: usize,
}

impl Page {
    pub fn is_unread(&self, notification: &Notification) -> bool {
        notification.seq > self.seen_through
    }
}

async fn seen_through(reader: &SharedReader, person: PersonId) -> Result<u64, PaymentError> {
    let stored =
        crate::identity::read_document(reader, COLLECTION_NOTIFICATIONS_SEEN, person.to_string())
            .await?;
    match stored {
        None => Ok(0),
        Some(body) => std::str::from_utf8(&body)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| internal("stored seen marker", person)),
    }
}

async fn newest(
    reader: &SharedReader,
    person: PersonId,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<Notification>, PaymentError> {
    // Keys run newest first, so "older than `before`" is "after before's key".
    let after = before.map(|seq| key(person, seq));
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_NOTIFICATIONS,
        format!("{person}:"),
        after,
        limit.clamp(1, NOTIFICATIONS_PAGE_MAX),
    )
    .await
    .map_err(|error| internal("notifications", error))?;
    rows.into_iter()
        .map(|(_, body)| {
            serde_json::from_slice(&body).map_err(|error| internal("stored notification", error))
        })
        .collect()
}

/// A person's notifications, newest first: `limit` (1..=100) older than `before`.
pub async fn list(
    reader: &SharedReader,
    person: PersonId,
    before: Option<u64>,
    limit: usize,
) -> Result<Page, PaymentError> {
    let seen = seen_through(reader, person).await?;
    let items = newest(reader, person, before, limit).await?;
    let unread = unread_count_after(reader, person, seen).await?;
    Ok(Page {
        items,
        seen_through: seen,
        unread,
    })
}

async fn unread_count_after(
    reader: &SharedReader,
    person: PersonId,
    seen: u64,
) -> Result<usize, PaymentError> {
    let newest = newest(reader, person, None, NOTIFICATIONS_PAGE_MAX).await?;
    Ok(newest.iter().take_while(|n| n.seq > seen).count())
}

/// How many notifications the person has not seen (at most [`NOTIFICATIONS_PAGE_MAX`]).
pub async fn unread_count(reader: &SharedReader, person: PersonId) -> Result<usize, PaymentError> {
    let seen = seen_through(reader, person).await?;
    unread_count_after(reader, person, seen).await
}

/// Marks everything up to `through` (default: the newest) as seen. The marker only
/// moves forward, so a stale request cannot make read notifications unread again.
pub async fn mark_seen(
    ledger: &Ledger,
    reader: &SharedReader,
    person: PersonId,
    through: Option<u64>,
) -> Result<u64, PaymentError> {
    let seen = seen_through(reader, person).await?;
    let newest_seq = newest(reader, person, None, 1)
        .await?
        .first()
        .map_or(0, |n| n.seq);
    let target = through.unwrap_or(newest_seq).min(newest_seq);
    if target <= seen {
        return Ok(seen);
    }
    let row = BusinessRow::Document {
        collection: COLLECTION_NOTIFICATIONS_SEEN.to_owned(),
        key: person.to_string(),
        body: target.to_string().into_bytes(),
    };
    crate::documents::submit_rows(ledger, vec![row])
        .await
        .map_err(|error| internal("marking notifications seen", error))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decoded(row: &BusinessRow) -> (String, Notification) {
        let BusinessRow::Document { key, body, .. } = row else {
            panic!("not a document: {row:?}");
        };
        (key.clone(), serde_json::from_slice(body).unwrap())
    }

    #[test]
    fn a_payment_notifies_its_payee_only() {
        let payer = PersonId::random();
        let payee = PersonId::random();
        let payload = serde_json::json!({
            "amount_minor": 1925, "occurred_at_ns": 7, "payer": payer.to_string(),
            "payee": payee.to_string(),
            "view": {"amount": "19.25", "currency": "USD", "from": "gabriel", "to": "bilal",
                     "id": "e627bc4d8c0376b842e743062c3382b9", "note": "secret note"},
        });
        let rows = rows_for_event(
            42,
            crate::payments::TOPIC_PAYMENT_SUCCEEDED,
            payload.to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        let (key, notification) = decoded(&rows[0]);
        assert!(key.starts_with(&payee.to_string()));
        assert_eq!(notification.kind, Kind::PaymentReceived);
        assert_eq!(notification.from.as_deref(), Some("gabriel"));
        assert_eq!(notification.amount().unwrap().format_major(), "19.25");
        assert_eq!(notification.occurred_at_ns, 7);
        let BusinessRow::Document { body, .. } = &rows[0] else {
            unreachable!()
        };
        assert!(!String::from_utf8_lossy(body).contains("secret note"));
    }

    #[test]
    fn requests_notify_the_other_side_and_unknown_events_nobody() {
        let payer = PersonId::random();
        let requester = PersonId::random();
        let payload = serde_json::json!({
            "amount_minor": 500, "payer": payer.to_string(), "requester": requester.to_string(),
            "view": {"amount": "5.00", "currency": "USD", "from": "elif", "to": "dana", "id": "ab"},
        })
        .to_string();
        let created = rows_for_event(
            1,
            crate::requests::TOPIC_REQUEST_CREATED,
            payload.as_bytes(),
        )
        .unwrap();
        let (key, n) = decoded(&created[0]);
        assert!(key.starts_with(&payer.to_string()));
        assert_eq!(
            (n.kind, n.from.as_deref()),
            (Kind::RequestReceived, Some("dana"))
        );
        let paid =
            rows_for_event(2, crate::requests::TOPIC_REQUEST_PAID, payload.as_bytes()).unwrap();
        let (key, n) = decoded(&paid[0]);
        assert!(key.starts_with(&requester.to_string()));
        assert_eq!(
            (n.kind, n.from.as_deref()),
            (Kind::RequestPaid, Some("elif"))
        );
        assert!(rows_for_event(3, "person.created", payload.as_bytes())
            .unwrap()
            .is_empty());
        assert!(
            rows_for_event(4, crate::payments::TOPIC_PAYMENT_SUCCEEDED, b"not json")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn subscriptions_notify_the_creator_once_and_then_the_subscriber() {
        let fan = PersonId::random();
        let star = PersonId::random();
        let payload = serde_json::json!({
            "payer": fan.to_string(), "payee": star.to_string(), "price_minor": 500,
            "view": {"id": "s1", "subscriber": "fan", "creator": "star", "price": "5.00",
                     "currency": "USD"},
        })
        .to_string();
        let created = rows_for_event(
            1,
            crate::subscriptions::TOPIC_SUBSCRIPTION_CREATED,
            payload.as_bytes(),
        )
        .unwrap();
        let (key, n) = decoded(&created[0]);
        assert!(key.starts_with(&star.to_string()));
        assert_eq!(
            (n.kind, n.from.as_deref()),
            (Kind::NewSubscriber, Some("fan"))
        );
        assert_eq!(n.amount().unwrap().format_major(), "5.00");
        for topic in [
            crate::subscriptions::TOPIC_SUBSCRIPTION_RENEWED,
            crate::subscriptions::TOPIC_SUBSCRIPTION_RENEWAL_FAILED,
            crate::subscriptions::TOPIC_SUBSCRIPTION_LAPSED,
        ] {
            let rows = rows_for_event(2, topic, payload.as_bytes()).unwrap();
            assert_eq!(rows.len(), 1, "{topic}");
            let (key, n) = decoded(&rows[0]);
            assert!(key.starts_with(&fan.to_string()), "{topic}");
            assert_eq!(n.from.as_deref(), Some("star"));
        }
        assert!(rows_for_event(
            3,
            crate::subscriptions::TOPIC_SUBSCRIPTION_CANCELED,
            payload.as_bytes()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn an_order_notifies_its_seller_and_its_buyer() {
        let buyer = PersonId::random();
        let seller = PersonId::random();
        let payload = serde_json::json!({
            "payer": buyer.to_string(), "payee": seller.to_string(), "amount_minor": 2400,
            "view": {"id": "o1", "buyer": "dana", "seller": "omar", "amount": "24.00",
                     "currency": "USD", "item": "Mug"},
        })
        .to_string();
        let rows =
            rows_for_event(9, crate::checkout::TOPIC_ORDER_PAID, payload.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        let (key, n) = decoded(&rows[0]);
        assert!(key.starts_with(&seller.to_string()));
        assert_eq!(
            (n.kind, n.from.as_deref()),
            (Kind::OrderReceived, Some("dana"))
        );
        let (key, n) = decoded(&rows[1]);
        assert!(key.starts_with(&buyer.to_string()));
        assert_eq!((n.kind, n.from.as_deref()), (Kind::OrderPaid, Some("omar")));
        assert_eq!(n.amount().unwrap().format_major(), "24.00");
        assert_eq!(n.subject_id.as_deref(), Some("o1"));
    }

    #[test]
    fn keys_list_newest_first() {
        let person = PersonId::random();
        assert!(key(person, 10) < key(person, 9));
        assert!(key(person, u64::MAX) < key(person, 0));
    }

    #[test]
    fn odd_fields_read_as_absent_and_escaped_text_is_read() {
        let payee = PersonId::random();
        // A view that is not an object, a number where text was expected, an
        // escaped handle, and fields nobody reads.
        let payload = format!(
            r#"{{"payee":"{payee}","amount_minor":"12","currency":7,"view":[1,2],
               "id":"p\u0031","extra":{{"deep":[null,true]}},"occurred_at_ns":99}}"#
        );
        let rows = rows_for_event(
            3,
            crate::payments::TOPIC_PAYMENT_SUCCEEDED,
            payload.as_bytes(),
        )
        .unwrap();
        let (_, n) = decoded(&rows[0]);
        assert_eq!(n.from, None);
        assert_eq!(n.amount_minor, None);
        assert_eq!(n.subject_id.as_deref(), Some("p1"));
        assert_eq!(n.occurred_at_ns, 99);
        let payload = format!(
            r#"{{"payee":"{payee}","view":{{"from":"s\u00e1ra","amount":"1.50","currency":"USD"}}}}"#
        );
        let rows = rows_for_event(
            4,
            crate::payments::TOPIC_PAYMENT_SUCCEEDED,
            payload.as_bytes(),
        )
        .unwrap();
        let (_, n) = decoded(&rows[0]);
        assert_eq!(n.from.as_deref(), Some("s\u{e1}ra"));
        assert_eq!(n.amount_minor, Some(150));
        assert!(
            rows_for_event(5, crate::payments::TOPIC_PAYMENT_SUCCEEDED, b"[1]")
                .unwrap()
                .is_empty()
        );
    }
}
