//! Webhooks: apps register endpoints for event types and receive, at least once,
//! the outbox events about the people linked to them, signed with HMAC-SHA256.
//!
//! This module is the domain half: endpoints, delivery records, routing an outbox
//! event to endpoints, the event body, the signature and its verification. The
//! sending loop (HTTP, timers) lives in the API crate's `webhooks` worker.
//!
//! Signing secrets live in the vault (`FieldKind::ServiceSecret`, under a data key
//! of the app's own, [`app_vault_owner`]); an endpoint document keeps only the vault
//! record id, and signatures are computed inside the vault ([`signature_header_for`]).
//!
//! Storage: `webhook_endpoints` keyed `app:endpoint`; `webhook_deliveries` keyed
//! `app:delivery`, a delivery id being `<outbox seq, 20 digits>_<endpoint id>` so an
//! app's deliveries list oldest first and a re-routed event maps to the same record.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use mizan_ledger::store::DOCUMENTS_PAGE_LIMIT_MAX;
use mizan_ledger::{BusinessRow, Ledger, Submission};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::apps::AppView;
use crate::identity::{self, IdentityError, PersonId, SharedReader};
use crate::vault::{blocking, SharedVault};
use mizan_core::Secret;

pub const COLLECTION_WEBHOOK_ENDPOINTS: &str = "webhook_endpoints";
pub const COLLECTION_WEBHOOK_DELIVERIES: &str = "webhook_deliveries";
/// The last outbox sequence number every delivery of which has finished.
pub const COLLECTION_WEBHOOK_CURSOR: &str = "webhook_cursor";
pub const WEBHOOK_CURSOR_KEY: &str = "deliveries";
pub const URL_CHARS_MAX: usize = 2_048;
pub const ENDPOINTS_PER_APP_MAX: usize = 16;
/// A signature older or newer than this (vs the receiver's clock) must be rejected.
pub const SIGNATURE_TOLERANCE_SECONDS: u64 = 300;
pub const SIGNATURE_HEADER: &str = "mizan-signature";
const SECRET_BYTES: usize = 32;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 20] = [
    crate::payments::TOPIC_PAYMENT_SUCCEEDED,
    crate::requests::TOPIC_REQUEST_CREATED,
    crate::requests::TOPIC_REQUEST_PAID,
    crate::requests::TOPIC_REQUEST_DECLINED,
    crate::requests::TOPIC_REQUEST_CANCELLED,
    crate::funding::TOPIC_FUNDING_SUCCEEDED,
    crate::funding::TOPIC_FUNDING_FAILED,
    crate::apps::TOPIC_APP_LINKED,
    crate::apps::TOPIC_APP_UNLINKED,
    crate::subscriptions::TOPIC_SUBSCRIPTION_CREATED,
    crate::subscriptions::TOPIC_SUBSCRIPTION_RENEWED,
    crate::subscriptions::TOPIC_SUBSCRIPTION_RENEWAL_FAILED,
    crate::subscriptions::TOPIC_SUBSCRIPTION_LAPSED,
    crate::subscriptions::TOPIC_SUBSCRIPTION_CANCELED,
    crate::tips::TOPIC_TIP_RECEIVED,
    crate::messages::TOPIC_PAID_DM_RECEIVED,
    crate::messages::TOPIC_PAID_DM_PAID,
    crate::messages::TOPIC_PAID_DM_REFUNDED,
    crate::checkout::TOPIC_CHECKOUT_CREATED,
    crate::checkout::TOPIC_ORDER_PAID,
];

/// The payload fields that name the people an event is about. They are internal
/// ids: the body an app receives leaves them out.
const PERSON_FIELDS: [&str; 4] = ["person", "payer", "payee", "requester"];
/// Internal bookkeeping fields an app's copy of an event leaves out.
const INTERNAL_FIELDS: [&str; 2] = [crate::outbox::OCCURRED_AT_FIELD, "pending_transfer_id"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("a webhook URL is an http:// or https:// URL of at most 2,048 characters")]
    InvalidUrl,
    #[error("unknown event type")]
    InvalidEventType,
    #[error("name at least one event type")]
    NoEventTypes,
    #[error("an app has at most 16 webhook endpoints")]
    TooManyEndpoints,
    #[error("no such webhook delivery")]
    DeliveryNotFound,
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebhookError {
    pub fn code(&self) -> &'static str {
        match self {
            WebhookError::InvalidUrl => "invalid_url",
            WebhookError::InvalidEventType => "invalid_event_type",
            WebhookError::NoEventTypes => "no_event_types",
            WebhookError::TooManyEndpoints => "too_many_endpoints",
            WebhookError::DeliveryNotFound => "delivery_not_found",
            WebhookError::Internal(_) => "internal_error",
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            WebhookError::InvalidUrl => Some("url"),
            WebhookError::InvalidEventType | WebhookError::NoEventTypes => Some("events"),
            _ => None,
        }
    }
}

fn internal(context: &str, error: impl fmt::Display) -> WebhookError {
    WebhookError::Internal(format!("{context}: {error}"))
}

impl From<IdentityError> for WebhookError {
    fn from(error: IdentityError) -> WebhookError {
        internal("identity", error)
    }
}

/// An endpoint as stored. The signing secret must be usable to sign, so it is kept
/// (not hashed) — sealed in the vault, this document holding only its record id;
/// it is shown to the app once, when the endpoint is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub app_id: String,
    pub url: String,
    pub events: BTreeSet<String>,
    pub created_at_ns: u64,
    /// The vault record of the signing secret (`whsec_…`).
    secret_record: String,
}

/// The vault owner of an app's webhook secrets: 128 bits of
/// SHA-256("mizan/webhook-owner/1" ‖ app id), so each app has a data key of its own
/// and no person's erasure touches it.
pub fn app_vault_owner(app_id: &str) -> Result<mizan_vault::PersonId, WebhookError> {
    use sha2::Digest;
    let digest = Sha256::new()
        .chain_update(b"mizan/webhook-owner/1")
        .chain_update(app_id.as_bytes())
        .finalize();
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&digest[..16]);
    mizan_vault::PersonId::new(u128::from_be_bytes(raw))
        .map_err(|error| internal("webhook vault owner", error.code()))
}

/// The `Mizan-Signature` header for `body`, computed inside the vault with the
/// endpoint's sealed secret.
pub async fn signature_header_for(
    vault: &SharedVault,
    endpoint: &Endpoint,
    timestamp_s: u64,
    body: &str,
) -> Result<String, WebhookError> {
    let record = mizan_vault::RecordId::parse(&endpoint.secret_record)
        .map_err(|_| internal("stored endpoint", "bad vault record id"))?;
    let body = body.to_owned();
    let header = blocking(vault, move |vault| {
        vault.use_service_secret(record, |secret| {
            std::str::from_utf8(secret)
                .ok()
                .map(|secret| signature_header(secret, timestamp_s, &body))
        })
    })
    .await
    .map_err(|error| internal("vault", error.code()))?;
    header.ok_or_else(|| internal("stored endpoint secret", "not UTF-8"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

/// One event for one endpoint, with what its attempts got.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub app_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub next_attempt_at_ns: u64,
    pub created_at_ns: u64,
    /// The exact JSON body every attempt sends.
    pub body: String,
}

impl Delivery {
    pub fn key(&self) -> String {
        format!("{}:{}", self.app_id, self.id)
    }

    pub fn outbox_seq(&self) -> Option<u64> {
        self.id.split('_').next()?.parse().ok()
    }

    pub fn row(&self) -> Result<BusinessRow, WebhookError> {
        Ok(BusinessRow::Document {
            collection: COLLECTION_WEBHOOK_DELIVERIES.to_owned(),
            key: self.key(),
            body: serde_json::to_vec(self).map_err(|error| internal("delivery", error))?,
        })
    }
}

fn validate_url(url: &str) -> Result<(), WebhookError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(WebhookError::InvalidUrl)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let ok = url.len() <= URL_CHARS_MAX
        && !host.is_empty()
        && url.bytes().all(|byte| byte.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(WebhookError::InvalidUrl)
    }
}

fn parse_events(events: &[String]) -> Result<BTreeSet<String>, WebhookError> {
    if events.len() > EVENT_TYPES.len() * 2 {
        return Err(WebhookError::InvalidEventType);
    }
    let set = events
        .iter()
        .map(|event| {
            EVENT_TYPES
                .contains(&event.as_str())
                .then(|| event.clone())
                .ok_or(WebhookError::InvalidEventType)
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    if set.is_empty() {
        return Err(WebhookError::NoEventTypes);
    }
    Ok(set)
}

async fn read_prefix<T: serde::de::DeserializeOwned>(
    reader: &SharedReader,
    collection: &'static str,
    prefix: String,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<T>, WebhookError> {
    let rows = crate::documents::with_prefix(reader, collection, prefix, after, limit)
        .await
        .map_err(|error| internal("reading documents", error))?;
    rows.iter()
        .map(|(_, body)| serde_json::from_slice(body).map_err(|e| internal(collection, e)))
        .collect()
}

/// Registers an endpoint for `app`; the answer carries the signing secret, once
/// (the vault keeps it sealed afterwards).
pub async fn create_endpoint(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    app: &AppView,
    url: &str,
    events: &[String],
    now_ns: u64,
) -> Result<(Endpoint, Secret<String>), WebhookError> {
    create_endpoint_claimed(ledger, reader, vault, app, url, events, None, now_ns)
        .await?
        .ok_or_else(|| internal("an endpoint conflict", "without a claim"))
}

/// The claim row an endpoint's creation commits with (an `Idempotency-Key`), given
/// the new endpoint's id.
pub type EndpointClaim<'a> = &'a (dyn Fn(&str) -> Option<BusinessRow> + Sync);

/// [`create_endpoint`] with a `Create` claim in the same submission: `None` when the
/// claim was taken (nothing was created).
#[allow(clippy::too_many_arguments)]
pub async fn create_endpoint_claimed(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    app: &AppView,
    url: &str,
    events: &[String],
    claim: Option<EndpointClaim<'_>>,
    now_ns: u64,
) -> Result<Option<(Endpoint, Secret<String>)>, WebhookError> {
    validate_url(url)?;
    let events = parse_events(events)?;
    if endpoints_of(reader, &app.id).await?.len() >= ENDPOINTS_PER_APP_MAX {
        return Err(WebhookError::TooManyEndpoints);
    }
    let secret_bytes: [u8; SECRET_BYTES] = rand::random();
    let secret = Secret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes)
    ));
    let owner = app_vault_owner(&app.id)?;
    let sealed = secret.clone();
    let record = blocking(vault, move |vault| vault.put_service_secret(owner, &sealed))
        .await
        .map_err(|error| internal("vault", error.code()))?;
    let id_raw: u128 = rand::random();
    let endpoint = Endpoint {
        id: format!("{:032x}", id_raw.max(1)),
        app_id: app.id.clone(),
        url: url.to_owned(),
        events,
        created_at_ns: now_ns,
        secret_record: record.to_string(),
    };
    let mut rows = vec![BusinessRow::Document {
        collection: COLLECTION_WEBHOOK_ENDPOINTS.to_owned(),
        key: format!("{}:{}", app.id, endpoint.id),
        body: serde_json::to_vec(&endpoint).map_err(|error| internal("endpoint", error))?,
    }];
    rows.extend(claim.and_then(|claim| claim(&endpoint.id)));
    let submission = Submission {
        rows,
        atomic: true,
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting an endpoint", error))?;
    if result.row_conflict.is_some() {
        return Ok(None);
    }
    tracing::info!(app = %app.id, endpoint = %endpoint.id, "webhook endpoint created");
    Ok(Some((endpoint, secret)))
}

pub async fn endpoints_of(
    reader: &SharedReader,
    app_id: &str,
) -> Result<Vec<Endpoint>, WebhookError> {
    read_prefix(
        reader,
        COLLECTION_WEBHOOK_ENDPOINTS,
        format!("{app_id}:"),
        None,
        ENDPOINTS_PER_APP_MAX,
    )
    .await
}

/// Every endpoint of every app (the worker routes against this; one page).
pub async fn all_endpoints(reader: &SharedReader) -> Result<Vec<Endpoint>, WebhookError> {
    read_prefix(
        reader,
        COLLECTION_WEBHOOK_ENDPOINTS,
        String::new(),
        None,
        DOCUMENTS_PAGE_LIMIT_MAX,
    )
    .await
}

/// An app's deliveries, oldest first, after the delivery id `after`.
pub async fn deliveries_of(
    reader: &SharedReader,
    app_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Delivery>, WebhookError> {
    read_prefix(
        reader,
        COLLECTION_WEBHOOK_DELIVERIES,
        format!("{app_id}:"),
        after.map(|after| format!("{app_id}:{after}")),
        limit,
    )
    .await
}

/// One of an app's deliveries; another app's id answers `DeliveryNotFound`.
pub async fn delivery_of(
    reader: &SharedReader,
    app_id: &str,
    delivery_id: &str,
) -> Result<Delivery, WebhookError> {
    let valid = delivery_id.len() <= 64
        && delivery_id
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit() || byte == b'_');
    if !valid {
        return Err(WebhookError::DeliveryNotFound);
    }
    let key = format!("{app_id}:{delivery_id}");
    match identity::read_document(reader, COLLECTION_WEBHOOK_DELIVERIES, key).await? {
        None => Err(WebhookError::DeliveryNotFound),
        Some(body) => serde_json::from_slice(&body).map_err(|error| internal("delivery", error)),
    }
}

/// The worker's persisted cursor: every delivery of every event up to it finished.
pub async fn cursor(reader: &SharedReader) -> Result<u64, WebhookError> {
    let stored = identity::read_document(
        reader,
        COLLECTION_WEBHOOK_CURSOR,
        WEBHOOK_CURSOR_KEY.to_owned(),
    )
    .await?;
    Ok(stored
        .and_then(|body| String::from_utf8(body).ok()?.parse().ok())
        .unwrap_or(0))
}

/// The row that persists the cursor.
pub fn cursor_row(finished_through: u64) -> BusinessRow {
    BusinessRow::Document {
        collection: COLLECTION_WEBHOOK_CURSOR.to_owned(),
        key: WEBHOOK_CURSOR_KEY.to_owned(),
        body: finished_through.to_string().into_bytes(),
    }
}

/// Outbox events after `after`, oldest first.
pub async fn outbox_page(
    reader: &SharedReader,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, String, Vec<u8>)>, WebhookError> {
    let reader = reader.clone();
    reader
        .read(move |r| r.outbox(after, limit))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading the outbox", error))
}

/// The stored record of a delivery, by its key, if it was written.
pub async fn stored_delivery(
    reader: &SharedReader,
    key: &str,
) -> Result<Option<Delivery>, WebhookError> {
    match identity::read_document(reader, COLLECTION_WEBHOOK_DELIVERIES, key.to_owned()).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| internal("delivery", error)),
    }
}

/// One endpoint of an app.
pub async fn endpoint_of(
    reader: &SharedReader,
    app_id: &str,
    endpoint_id: &str,
) -> Result<Option<Endpoint>, WebhookError> {
    let key = format!("{app_id}:{endpoint_id}");
    match identity::read_document(reader, COLLECTION_WEBHOOK_ENDPOINTS, key).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| internal("endpoint", error)),
    }
}

/// The people an outbox event is about.
pub fn people_of(payload: &[u8]) -> Vec<PersonId> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(payload) else {
        return Vec::new();
    };
    let mut people: Vec<PersonId> = PERSON_FIELDS
        .iter()
        .filter_map(|field| fields.get(*field)?.as_str())
        .filter_map(|text| PersonId::parse(text).ok())
        .collect();
    people.sort_by_key(|person| person.get());
    people.dedup();
    people
}

/// The body an app receives for outbox event `seq`: `{id, type, created_at, data}`,
/// `data` being the event's public view without internal person ids.
pub fn event_body(seq: u64, topic: &str, payload: &[u8], now_ns: u64) -> String {
    let data = match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(serde_json::Value::Object(mut fields)) => match fields.remove("view") {
            Some(view) => view,
            None => {
                for field in PERSON_FIELDS.iter().chain(&INTERNAL_FIELDS) {
                    fields.remove(*field);
                }
                serde_json::Value::Object(fields)
            }
        },
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "id": event_id(seq),
        "type": topic,
        "created_at": crate::time::rfc3339_from_ns(now_ns),
        "data": data,
    })
    .to_string()
}

pub fn event_id(seq: u64) -> String {
    format!("evt_{seq:020}")
}

/// The deliveries an outbox event makes: one per endpoint subscribed to its type
/// whose app is linked (now) to a person the event is about.
pub async fn route(
    reader: &SharedReader,
    endpoints: &[Endpoint],
    seq: u64,
    topic: &str,
    payload: &[u8],
    now_ns: u64,
) -> Result<Vec<Delivery>, WebhookError> {
    let subscribed: Vec<&Endpoint> = endpoints
        .iter()
        .filter(|endpoint| endpoint.events.contains(topic))
        .collect();
    if subscribed.is_empty() {
        return Ok(Vec::new());
    }
    let people = people_of(payload);
    // Linked when the event happened: an app never learns about what came before the
    // person linked it, nor after they revoked it.
    let occurred = crate::outbox::occurred_at_ns(payload).unwrap_or(now_ns);
    // An unlink event still reaches the app it is about.
    let unlinked_app = (topic == crate::apps::TOPIC_APP_UNLINKED)
        .then(|| serde_json::from_slice::<serde_json::Value>(payload).ok())
        .flatten()
        .and_then(|value| value["link"]["app_id"].as_str().map(str::to_owned));
    let apps: BTreeSet<&str> = subscribed
        .iter()
        .map(|endpoint| endpoint.app_id.as_str())
        .collect();
    let mut linked_apps = BTreeSet::new();
    for app_id in apps {
        if people.is_empty() {
            continue;
        }
        let mut linked = unlinked_app.as_deref() == Some(app_id);
        for person in &people {
            if linked {
                break;
            }
            let link = crate::apps::link_of(reader, *person, app_id)
                .await
                .map_err(|error| internal("reading a link", error))?;
            linked = link.is_some_and(|link| link.covers(occurred));
        }
        if linked {
            linked_apps.insert(app_id.to_owned());
        }
    }
    let body = event_body(seq, topic, payload, now_ns);
    Ok(subscribed
        .into_iter()
        .filter(|endpoint| linked_apps.contains(&endpoint.app_id))
        .map(|endpoint| Delivery {
            id: format!("{seq:020}_{}", endpoint.id),
            app_id: endpoint.app_id.clone(),
            endpoint_id: endpoint.id.clone(),
            event_id: event_id(seq),
            event_type: topic.to_owned(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_status_code: None,
            last_error: None,
            next_attempt_at_ns: now_ns,
            created_at_ns: now_ns,
            body: body.clone(),
        })
        .collect())
}

/// The delay before retry number `attempt` (1-based): `base · 2^(attempt-1)`, capped
/// at an hour.
pub fn backoff_ns(base_ms: u64, attempt: u32) -> u64 {
    let factor = 1_u64 << attempt.saturating_sub(1).min(20);
    base_ms
        .saturating_mul(factor)
        .min(3_600_000)
        .saturating_mul(1_000_000)
}

/// The `Mizan-Signature` header for `body` sent at `timestamp_s` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature_header(secret: &str, timestamp_s: u64, body: &str) -> String {
    format!(
        "t={timestamp_s},v1={}",
        signature(secret, timestamp_s, body)
    )
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used)]
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

fn signature(secret: &str, timestamp_s: u64, body: &str) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is more than 5 minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// What a receiver does with a delivery: checks the header against the raw body,
/// rejecting a timestamp more than [`SIGNATURE_TOLERANCE_SECONDS`] from `now_s`.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &str,
    now_s: u64,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<u64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if timestamp.abs_diff(now_s) > SIGNATURE_TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    for candidate in signatures {
        let Ok(bytes) = hex::decode(candidate) else {
            continue;
        };
        let mut mac = mac(secret);
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        if mac.verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

pub fn seconds(now_ns: u64) -> u64 {
    now_ns / NANOS_PER_SECOND
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_verify_and_reject_tampering_and_skew() {
        let body = r#"{"id":"evt_1"}"#;
        let header = signature_header("whsec_test", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(
            verify_signature("whsec_test", &header, body, 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            verify_signature("whsec_test", &header, r#"{"id":"evt_2"}"#, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("other", &header, body, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_test", &header, body, 1_700_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature("whsec_test", &header, body, 1_699_999_699),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature("whsec_test", "v1=abc", body, 1_700_000_000),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn backoff_doubles_and_caps_at_an_hour() {
        assert_eq!(backoff_ns(1_000, 1), 1_000_000_000);
        assert_eq!(backoff_ns(1_000, 2), 2_000_000_000);
        assert_eq!(backoff_ns(1_000, 4), 8_000_000_000);
        assert_eq!(backoff_ns(1_000, 40), 3_600_000_000_000);
    }

    #[test]
    fn urls_and_event_types_are_checked() {
        assert!(validate_url("https://example.com/hooks").is_ok());
        assert!(validate_url("http://127.0.0.1:9000/x").is_ok());
        for bad in ["ftp://x", "https://", "https:// x", "example.com"] {
            assert_eq!(validate_url(bad), Err(WebhookError::InvalidUrl), "{bad}");
        }
        assert!(validate_url(&format!("https://x/{}", "a".repeat(2_048))).is_err());
        assert_eq!(
            parse_events(&["payment.succeeded".into()]).unwrap().len(),
            1
        );
        assert_eq!(
            parse_events(&["payment.exploded".into()]),
            Err(WebhookError::InvalidEventType)
        );
        assert_eq!(parse_events(&[]), Err(WebhookError::NoEventTypes));
    }

    #[test]
    fn event_bodies_drop_internal_person_ids() {
        let person = PersonId::random().to_string();
        let payload = serde_json::json!({"payer": person, "view": {"id": "p1", "amount": "1.00"}});
        let payload = serde_json::to_vec(&payload).unwrap();
        assert_eq!(people_of(&payload).len(), 1);
        let body = event_body(7, "payment.succeeded", &payload, 0);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["id"], "evt_00000000000000000007");
        assert_eq!(value["type"], "payment.succeeded");
        assert_eq!(value["data"]["id"], "p1");
        assert!(!body.contains(&person));
        let funding =
            serde_json::to_vec(&serde_json::json!({"person": person, "id": "f1"})).unwrap();
        let body = event_body(8, "funding.failed", &funding, 0);
        assert!(!body.contains(&person));
        assert!(body.contains("f1"));
    }
}
