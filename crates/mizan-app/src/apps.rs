//! Apps: the platform's other apps (chat, video, shopping…) act for people who said
//! yes, so a person keeps one wallet and one activity list whichever app they use.
//!
//! The flow, Meta-Pay style:
//! 1. An operator registers an app; it gets an API key, shown once and stored as a
//!    SHA-256 hash (`apps`, `app_keys`).
//! 2. The app asks to link one of its user ids to a Mizan handle with scopes
//!    (`link_requests`, keyed `person:request`, so the person can list theirs).
//! 3. The person approves (signed in to Mizan itself, never through the app): one
//!    atomic submission writes the link (`app_links`, keyed `person:app`) and claims
//!    the app's user id (`app_users`, keyed `app:external id`, a `Create`, so one
//!    external id never names two people).
//! 4. The app trades its key and the external id for a token that acts for the person
//!    with the granted scopes for an hour (`app_tokens`, keyed by the token's hash).
//!    Every use re-reads the link, so a person's revoke stops the app at once.
//!
//! Creating an app, a link request or a webhook endpoint takes an optional
//! `Idempotency-Key` ([`Creation`]): its claim commits with the object, so a retry
//! never creates a second one. A replay answers the stored object — except when the
//! first answer held a secret shown once (an API key, a signing secret), which is
//! never stored in a claim: then it is [`AppError::SecretNotReplayable`].

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};

use crate::creation::CreationError;
pub use crate::creation::{Created, Creation, Replay};
use crate::identity::{self, IdentityError, Person, PersonId, SharedReader};
use crate::payments::COLLECTION_IDEMPOTENCY;

pub const APP_NAME_CHARS_MAX: usize = 80;
pub const EXTERNAL_USER_ID_CHARS_MAX: usize = 128;
pub const APP_TOKEN_LIFETIME_SECONDS: u64 = 3_600;
/// A pending link request the person has not answered expires after a week.
pub const LINK_REQUEST_LIFETIME_SECONDS: u64 = 7 * 24 * 3_600;
/// Most links (or pending requests) one person can have; listing reads one page.
pub const LINKS_PER_PERSON_MAX: usize = 100;
const SECRET_BYTES: usize = 32;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
pub const API_KEY_PREFIX: &str = "mzk_";
pub const APP_TOKEN_PREFIX: &str = "mzt_";

pub const COLLECTION_APPS: &str = "apps";
pub const COLLECTION_APP_KEYS: &str = "app_keys";
pub const COLLECTION_LINK_REQUESTS: &str = "link_requests";
pub const COLLECTION_APP_LINKS: &str = "app_links";
pub const COLLECTION_APP_USERS: &str = "app_users";
pub const COLLECTION_APP_TOKENS: &str = "app_tokens";
pub const TOPIC_APP_LINKED: &str = "app.linked";
pub const TOPIC_APP_UNLINKED: &str = "app.unlinked";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    #[error("an app name is 1 to 80 characters")]
    InvalidAppName,
    #[error("an external user id is 1 to 128 visible ASCII characters")]
    InvalidExternalUserId,
    #[error("unknown scope; the scopes are wallet:read and payments:write")]
    InvalidScope,
    #[error("name at least one scope")]
    NoScopes,
    #[error("no person has that handle")]
    PersonNotFound,
    #[error("no such link request, or it is no longer pending")]
    LinkRequestNotFound,
    #[error("the person has not linked this user id to the app, or revoked it")]
    LinkNotFound,
    #[error("this external user id is already linked to another person")]
    ExternalUserIdTaken,
    #[error("the person did not grant that scope to the app")]
    ScopeNotGranted,
    #[error("this token may not do that; it lacks the scope")]
    InsufficientScope,
    #[error("only the person, signed in to Mizan, can do that; not an app")]
    SessionRequired,
    #[error("missing, unknown or expired API key or token")]
    Unauthenticated,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(
        "this Idempotency-Key already created {id}; its secret was shown once and is not kept, so the answer can't be replayed"
    )]
    SecretNotReplayable { id: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidAppName => "invalid_app_name",
            AppError::InvalidExternalUserId => "invalid_external_user_id",
            AppError::InvalidScope => "invalid_scope",
            AppError::NoScopes => "no_scopes",
            AppError::PersonNotFound => "person_not_found",
            AppError::LinkRequestNotFound => "link_request_not_found",
            AppError::LinkNotFound => "link_not_found",
            AppError::ExternalUserIdTaken => "external_user_id_taken",
            AppError::ScopeNotGranted => "scope_not_granted",
            AppError::InsufficientScope => "insufficient_scope",
            AppError::SessionRequired => "session_required",
            AppError::Unauthenticated => "unauthenticated",
            AppError::IdempotencyKeyReused => "idempotency_key_reused",
            AppError::SecretNotReplayable { .. } => "idempotency_secret_not_replayable",
            AppError::Internal(_) => "internal_error",
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            AppError::InvalidAppName => Some("name"),
            AppError::InvalidExternalUserId | AppError::ExternalUserIdTaken => {
                Some("external_user_id")
            }
            AppError::InvalidScope | AppError::NoScopes | AppError::ScopeNotGranted => {
                Some("scopes")
            }
            AppError::PersonNotFound => Some("handle"),
            _ => None,
        }
    }
}

fn internal(context: &str, error: impl fmt::Display) -> AppError {
    AppError::Internal(format!("{context}: {error}"))
}

impl From<IdentityError> for AppError {
    fn from(error: IdentityError) -> AppError {
        match error {
            IdentityError::Unauthenticated => AppError::Unauthenticated,
            other => internal("identity", other),
        }
    }
}

/// What a token may do. A person's own session may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read the wallet, activity, payments, requests and receipts.
    #[serde(rename = "wallet:read")]
    WalletRead,
    /// Move money: fund, pay, request, split, answer requests.
    #[serde(rename = "payments:write")]
    PaymentsWrite,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::WalletRead, Scope::PaymentsWrite];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::WalletRead => "wallet:read",
            Scope::PaymentsWrite => "payments:write",
        }
    }

    pub fn parse(text: &str) -> Result<Scope, AppError> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or(AppError::InvalidScope)
    }

    /// A non-empty set from the request's strings (duplicates collapse).
    pub fn parse_set(texts: &[String]) -> Result<BTreeSet<Scope>, AppError> {
        if texts.len() > Scope::ALL.len() * 4 {
            return Err(AppError::InvalidScope);
        }
        let scopes = texts
            .iter()
            .map(|text| Scope::parse(text))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if scopes.is_empty() {
            return Err(AppError::NoScopes);
        }
        Ok(scopes)
    }
}

/// A random id (never zero), as 32 hex digits.
fn random_id() -> String {
    loop {
        let raw: u128 = rand::random();
        if raw != 0 {
            return format!("{raw:032x}");
        }
    }
}

fn random_secret(prefix: &str) -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn is_hex_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// A host app's own id for one of its users: 1–128 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalUserId(String);

impl ExternalUserId {
    pub fn parse(text: &str) -> Result<ExternalUserId, AppError> {
        let ok = (1..=EXTERNAL_USER_ID_CHARS_MAX).contains(&text.len())
            && text.bytes().all(|byte| byte.is_ascii_graphic());
        if ok {
            Ok(ExternalUserId(text.to_owned()))
        } else {
            Err(AppError::InvalidExternalUserId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub created_at_ns: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AppDocument {
    view: AppView,
    key_sha256: String,
}

/// A registered app and its API key, which leaves the server only here.
#[derive(Debug)]
pub struct NewApp {
    pub app: AppView,
    pub api_key: mizan_core::Secret<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkRequestView {
    pub id: String,
    pub app_id: String,
    pub app_name: String,
    pub handle: String,
    pub external_user_id: String,
    pub scopes: BTreeSet<Scope>,
    /// "pending", "approved" or "declined".
    pub status: String,
    pub created_at_ns: u64,
    pub expires_at_ns: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkView {
    pub app_id: String,
    pub app_name: String,
    pub external_user_id: String,
    pub scopes: BTreeSet<Scope>,
    pub linked_at_ns: u64,
    #[serde(default)]
    pub revoked_at_ns: Option<u64>,
}

impl LinkView {
    /// Whether the app was linked at `at_ns`: linked by then and not yet revoked.
    pub fn covers(&self, at_ns: u64) -> bool {
        self.linked_at_ns <= at_ns && self.revoked_at_ns.is_none_or(|revoked| at_ns < revoked)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenDocument {
    app_id: String,
    person: String,
    scopes: BTreeSet<Scope>,
    expires_at_ns: u64,
}

/// A token an app acts with; leaves the server only here.
#[derive(Debug)]
pub struct NewAppToken {
    pub token: mizan_core::Secret<String>,
    pub person: PersonId,
    pub scopes: BTreeSet<Scope>,
    pub expires_at_ns: u64,
}

/// Who is calling: a person through their own session, or an app acting for them.
#[derive(Debug, Clone)]
pub struct Caller {
    pub person: Person,
    /// `None` for the person's own session.
    pub app_id: Option<String>,
    scopes: BTreeSet<Scope>,
    /// The person's own session (its stored key); `None` for an app token.
    pub session_key: Option<String>,
    /// When the session last proved the second factor; never for an app token.
    pub stepped_up_at_ns: Option<u64>,
}

impl Caller {
    /// The person, if this caller may use `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Person, AppError> {
        if self.app_id.is_none() || self.scopes.contains(&scope) {
            Ok(&self.person)
        } else {
            Err(AppError::InsufficientScope)
        }
    }

    /// The person, if this is their own session (not an app).
    pub fn require_session(&self) -> Result<&Person, AppError> {
        match self.app_id {
            None => Ok(&self.person),
            Some(_) => Err(AppError::SessionRequired),
        }
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    reader: &SharedReader,
    collection: &'static str,
    key: String,
) -> Result<Option<T>, AppError> {
    match identity::read_document(reader, collection, key).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| internal(collection, error)),
    }
}

async fn read_prefix<T: serde::de::DeserializeOwned>(
    reader: &SharedReader,
    collection: &'static str,
    prefix: String,
) -> Result<Vec<T>, AppError> {
    let rows =
        crate::documents::with_prefix(reader, collection, prefix, None, LINKS_PER_PERSON_MAX)
            .await
            .map_err(|error| internal("reading documents", error))?;
    rows.iter()
        .map(|(_, body)| serde_json::from_slice(body).map_err(|e| internal(collection, e)))
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(value).map_err(|error| internal("encoding a document", error))
}

impl From<CreationError> for AppError {
    fn from(error: CreationError) -> AppError {
        match error {
            CreationError::KeyReused => AppError::IdempotencyKeyReused,
            CreationError::SecretNotReplayable { id } => AppError::SecretNotReplayable { id },
            CreationError::Internal(detail) => AppError::Internal(detail),
        }
    }
}

async fn submit(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<Option<String>, AppError> {
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("submitting", error))
}

/// Registers an app (an operator's act) and returns its API key, once.
pub async fn register_app(ledger: &Ledger, name: &str, now_ns: u64) -> Result<NewApp, AppError> {
    match register_app_once(ledger, None, name, None, now_ns).await? {
        Created::New(app) => Ok(app),
        Created::Replayed(_) => Err(internal("a replay without a key", name)),
    }
}

/// The canonical request of an app registration, for [`Creation::new`].
pub fn app_canonical(name: &str) -> String {
    format!("app|{}", name.trim())
}

/// [`register_app`] under an optional `Idempotency-Key`: a retry never registers a
/// second app; its answer is [`AppError::SecretNotReplayable`], the API key having
/// been shown once.
pub async fn register_app_once(
    ledger: &Ledger,
    reader: Option<&SharedReader>,
    name: &str,
    creation: Option<&Creation>,
    now_ns: u64,
) -> Result<Created<NewApp>, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > APP_NAME_CHARS_MAX {
        return Err(AppError::InvalidAppName);
    }
    if let (Some(creation), Some(reader)) = (creation, reader) {
        if let Some(replay) = creation.replay(reader).await? {
            return Ok(Created::Replayed(replay));
        }
    }
    let api_key = random_secret(API_KEY_PREFIX);
    let view = AppView {
        id: random_id(),
        name: name.to_owned(),
        created_at_ns: now_ns,
    };
    let key_sha256 = identity::token_hash(&api_key);
    let mut rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_APP_KEYS.to_owned(),
            key: key_sha256.clone(),
            body: view.id.clone().into_bytes(),
        },
        BusinessRow::Document {
            collection: COLLECTION_APPS.to_owned(),
            key: view.id.clone(),
            body: to_json(&AppDocument {
                view: view.clone(),
                key_sha256,
            })?,
        },
    ];
    if let Some(creation) = creation {
        rows.push(creation.claim_row(&view.id, None)?);
    }
    match (submit(ledger, rows).await?, creation, reader) {
        (None, _, _) => {}
        (Some(collection), Some(creation), Some(reader))
            if collection == COLLECTION_IDEMPOTENCY =>
        {
            return Ok(Created::Replayed(
                creation.replay_after_conflict(reader).await?,
            ));
        }
        (Some(conflict), _, _) => return Err(internal("random key taken", conflict)),
    }
    tracing::info!(app = %view.id, "app registered");
    Ok(Created::New(NewApp {
        app: view,
        api_key: mizan_core::Secret::new(api_key),
    }))
}

/// Every registered app (an operator's view), oldest id first, at most one page.
pub async fn list_apps(reader: &SharedReader) -> Result<Vec<AppView>, AppError> {
    let documents: Vec<AppDocument> = read_prefix(reader, COLLECTION_APPS, String::new()).await?;
    Ok(documents
        .into_iter()
        .map(|document| document.view)
        .collect())
}

/// The app an API key belongs to.
pub async fn authenticate_app(reader: &SharedReader, api_key: &str) -> Result<AppView, AppError> {
    if !api_key.starts_with(API_KEY_PREFIX) || api_key.len() > 2 * SECRET_BYTES + 8 {
        return Err(AppError::Unauthenticated);
    }
    let Some(id) =
        identity::read_document(reader, COLLECTION_APP_KEYS, identity::token_hash(api_key)).await?
    else {
        return Err(AppError::Unauthenticated);
    };
    let id = String::from_utf8(id).map_err(|error| internal("stored app id", error))?;
    let document: AppDocument = read_json(reader, COLLECTION_APPS, id)
        .await?
        .ok_or_else(|| internal("app key without an app", "missing"))?;
    Ok(document.view)
}

/// An app asks a person (by handle) to link `external` to them with `scopes`.
pub async fn request_link(
    ledger: &Ledger,
    reader: &SharedReader,
    app: &AppView,
    handle: &str,
    external: &ExternalUserId,
    scopes: BTreeSet<Scope>,
    now_ns: u64,
) -> Result<LinkRequestView, AppError> {
    let link = LinkAsk {
        handle,
        external,
        scopes,
    };
    match request_link_once(ledger, reader, app, link, None, now_ns).await? {
        Created::New(view) => Ok(view),
        Created::Replayed(_) => Err(internal("a replay without a key", &app.id)),
    }
}

/// What an app asks a person to link.
#[derive(Debug, Clone)]
pub struct LinkAsk<'a> {
    pub handle: &'a str,
    pub external: &'a ExternalUserId,
    pub scopes: BTreeSet<Scope>,
}

impl LinkAsk<'_> {
    /// The canonical request, for [`Creation::new`].
    pub fn canonical(&self) -> String {
        let scopes: Vec<&str> = self.scopes.iter().map(|scope| scope.as_str()).collect();
        format!(
            "link|{}|{}|{}",
            self.handle.to_ascii_lowercase(),
            self.external.as_str(),
            scopes.join(",")
        )
    }
}

/// [`request_link`] under an optional `Idempotency-Key`: a retry answers the same
/// link request (it holds no secret) instead of asking the person twice.
pub async fn request_link_once(
    ledger: &Ledger,
    reader: &SharedReader,
    app: &AppView,
    link: LinkAsk<'_>,
    creation: Option<&Creation>,
    now_ns: u64,
) -> Result<Created<LinkRequestView>, AppError> {
    let LinkAsk {
        handle,
        external,
        scopes,
    } = link;
    if let Some(replay) = crate::creation::replay_used(creation, reader).await? {
        return Ok(Created::Replayed(replay));
    }
    let Ok(handle) = identity::Handle::parse(handle) else {
        return Err(AppError::PersonNotFound);
    };
    let Some(person) = identity::person_by_handle(reader, &handle).await? else {
        return Err(AppError::PersonNotFound);
    };
    let view = LinkRequestView {
        id: random_id(),
        app_id: app.id.clone(),
        app_name: app.name.clone(),
        handle: handle.as_str().to_owned(),
        external_user_id: external.as_str().to_owned(),
        scopes,
        status: "pending".to_owned(),
        created_at_ns: now_ns,
        expires_at_ns: now_ns.saturating_add(LINK_REQUEST_LIFETIME_SECONDS * NANOS_PER_SECOND),
    };
    let mut rows = vec![BusinessRow::Document {
        collection: COLLECTION_LINK_REQUESTS.to_owned(),
        key: format!("{person}:{}", view.id),
        body: to_json(&view)?,
    }];
    if let Some(creation) = creation {
        rows.push(creation.answer_row(&view.id, &view)?);
    }
    let Some(collection) = submit(ledger, rows).await? else {
        return Ok(Created::New(view));
    };
    match crate::creation::replay_conflict(creation, &collection, reader).await? {
        Some(replay) => Ok(Created::Replayed(replay)),
        None => Err(internal("link request conflict", collection)),
    }
}

/// The person's link requests still waiting for an answer.
pub async fn pending_link_requests(
    reader: &SharedReader,
    person: PersonId,
    now_ns: u64,
) -> Result<Vec<LinkRequestView>, AppError> {
    let all: Vec<LinkRequestView> =
        read_prefix(reader, COLLECTION_LINK_REQUESTS, format!("{person}:")).await?;
    Ok(all
        .into_iter()
        .filter(|request| request.status == "pending" && now_ns < request.expires_at_ns)
        .collect())
}

/// The person answers one of their pending link requests. Approving links the app
/// (replacing an earlier link of the same app) and claims the app's user id.
pub async fn answer_link_request(
    ledger: &Ledger,
    reader: &SharedReader,
    person: &Person,
    request_id: &str,
    approve: bool,
    now_ns: u64,
) -> Result<LinkRequestView, AppError> {
    if !is_hex_id(request_id) {
        return Err(AppError::LinkRequestNotFound);
    }
    let key = format!("{}:{request_id}", person.id);
    let Some(mut request) =
        read_json::<LinkRequestView>(reader, COLLECTION_LINK_REQUESTS, key.clone()).await?
    else {
        return Err(AppError::LinkRequestNotFound);
    };
    if request.status != "pending" || now_ns >= request.expires_at_ns {
        return Err(AppError::LinkRequestNotFound);
    }
    request.status = if approve { "approved" } else { "declined" }.to_owned();
    let mut rows = vec![BusinessRow::Document {
        collection: COLLECTION_LINK_REQUESTS.to_owned(),
        key,
        body: to_json(&request)?,
    }];
    if approve {
        let user_key = format!("{}:{}", request.app_id, request.external_user_id);
        match identity::read_document(reader, COLLECTION_APP_USERS, user_key.clone()).await? {
            Some(owner) if owner != person.id.to_string().into_bytes() => {
                return Err(AppError::ExternalUserIdTaken)
            }
            Some(_) => {}
            None => rows.push(BusinessRow::Create {
                collection: COLLECTION_APP_USERS.to_owned(),
                key: user_key,
                body: person.id.to_string().into_bytes(),
            }),
        }
        let link = LinkView {
            app_id: request.app_id.clone(),
            app_name: request.app_name.clone(),
            external_user_id: request.external_user_id.clone(),
            scopes: request.scopes.clone(),
            linked_at_ns: now_ns,
            revoked_at_ns: None,
        };
        let link_json = to_json(&link)?;
        rows.push(BusinessRow::Document {
            collection: COLLECTION_APP_LINKS.to_owned(),
            key: format!("{}:{}", person.id, request.app_id),
            body: link_json,
        });
        let event = to_json(&LinkEvent {
            person: person.id.to_string(),
            link: &link,
        })?;
        rows.push(crate::outbox::event_row(TOPIC_APP_LINKED, &event, now_ns));
    }
    if submit(ledger, rows).await?.is_some() {
        return Err(AppError::ExternalUserIdTaken);
    }
    tracing::info!(person = %person.id, app = %request.app_id, approve, "link request answered");
    Ok(request)
}

#[derive(Serialize)]
struct LinkEvent<'a> {
    person: String,
    link: &'a LinkView,
}

/// The apps linked to the person, revoked ones included (with their revoke time).
pub async fn links_of(reader: &SharedReader, person: PersonId) -> Result<Vec<LinkView>, AppError> {
    read_prefix(reader, COLLECTION_APP_LINKS, format!("{person}:")).await
}

/// The person revokes an app: its tokens stop working at once.
pub async fn revoke_link(
    ledger: &Ledger,
    reader: &SharedReader,
    person: &Person,
    app_id: &str,
    now_ns: u64,
) -> Result<LinkView, AppError> {
    if !is_hex_id(app_id) {
        return Err(AppError::LinkNotFound);
    }
    let key = format!("{}:{app_id}", person.id);
    let Some(mut link) = read_json::<LinkView>(reader, COLLECTION_APP_LINKS, key.clone()).await?
    else {
        return Err(AppError::LinkNotFound);
    };
    if link.revoked_at_ns.is_some() {
        return Err(AppError::LinkNotFound);
    }
    link.revoked_at_ns = Some(now_ns);
    let rows = vec![
        BusinessRow::Document {
            collection: COLLECTION_APP_LINKS.to_owned(),
            key,
            body: to_json(&link)?,
        },
        crate::outbox::event_row(
            TOPIC_APP_UNLINKED,
            &to_json(&LinkEvent {
                person: person.id.to_string(),
                link: &link,
            })?,
            now_ns,
        ),
    ];
    submit(ledger, rows).await?;
    tracing::info!(person = %person.id, app = %app_id, "app link revoked");
    Ok(link)
}

/// The person's link to the app, revoked or not, if there ever was one.
pub async fn link_of(
    reader: &SharedReader,
    person: PersonId,
    app_id: &str,
) -> Result<Option<LinkView>, AppError> {
    read_json(reader, COLLECTION_APP_LINKS, format!("{person}:{app_id}")).await
}

async fn active_link(
    reader: &SharedReader,
    person: PersonId,
    app_id: &str,
) -> Result<Option<LinkView>, AppError> {
    let link = link_of(reader, person, app_id).await?;
    Ok(link.filter(|link| link.revoked_at_ns.is_none()))
}

/// An app trades its key and a linked user id for an hour-long token with `scopes`
/// (a subset of what the person granted).
pub async fn issue_token(
    ledger: &Ledger,
    reader: &SharedReader,
    app: &AppView,
    external: &ExternalUserId,
    scopes: BTreeSet<Scope>,
    now_ns: u64,
) -> Result<NewAppToken, AppError> {
    let user_key = format!("{}:{}", app.id, external.as_str());
    let Some(owner) = identity::read_document(reader, COLLECTION_APP_USERS, user_key).await? else {
        return Err(AppError::LinkNotFound);
    };
    let owner = String::from_utf8(owner).map_err(|error| internal("stored person", error))?;
    let person = PersonId::parse(&owner)?;
    let Some(link) = active_link(reader, person, &app.id).await? else {
        return Err(AppError::LinkNotFound);
    };
    if link.external_user_id != external.as_str() {
        return Err(AppError::LinkNotFound);
    }
    if !scopes.is_subset(&link.scopes) {
        return Err(AppError::ScopeNotGranted);
    }
    let token = random_secret(APP_TOKEN_PREFIX);
    let expires_at_ns = now_ns.saturating_add(APP_TOKEN_LIFETIME_SECONDS * NANOS_PER_SECOND);
    let rows = vec![BusinessRow::Create {
        collection: COLLECTION_APP_TOKENS.to_owned(),
        key: identity::token_hash(&token),
        body: to_json(&TokenDocument {
            app_id: app.id.clone(),
            person: person.to_string(),
            scopes: scopes.clone(),
            expires_at_ns,
        })?,
    }];
    if let Some(conflict) = submit(ledger, rows).await? {
        return Err(internal("random token taken", conflict));
    }
    Ok(NewAppToken {
        token: mizan_core::Secret::new(token),
        person,
        scopes,
        expires_at_ns,
    })
}

/// Who a bearer token (a person's session or an app token) belongs to.
pub async fn authenticate(
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<Caller, AppError> {
    if !token.starts_with(APP_TOKEN_PREFIX) {
        let (person, session) = identity::authenticate_session(reader, token, now_ns).await?;
        return Ok(Caller {
            person,
            app_id: None,
            scopes: Scope::ALL.into_iter().collect(),
            session_key: Some(session.key),
            stepped_up_at_ns: session.stepped_up_at_ns,
        });
    }
    if token.len() > 2 * SECRET_BYTES + 8 {
        return Err(AppError::Unauthenticated);
    }
    let Some(document) =
        read_json::<TokenDocument>(reader, COLLECTION_APP_TOKENS, identity::token_hash(token))
            .await?
    else {
        return Err(AppError::Unauthenticated);
    };
    if now_ns >= document.expires_at_ns {
        return Err(AppError::Unauthenticated);
    }
    let person_id = PersonId::parse(&document.person)?;
    // Re-read the link on every use: a revoke takes effect at once.
    let Some(link) = active_link(reader, person_id, &document.app_id).await? else {
        return Err(AppError::Unauthenticated);
    };
    let scopes = document
        .scopes
        .intersection(&link.scopes)
        .copied()
        .collect();
    let person = identity::person_by_id(reader, person_id).await?;
    Ok(Caller {
        person,
        app_id: Some(document.app_id),
        scopes,
        session_key: None,
        stepped_up_at_ns: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scopes_parse_and_reject_unknowns() {
        let set = Scope::parse_set(&["wallet:read".into(), "wallet:read".into()]).unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![Scope::WalletRead]);
        assert_eq!(Scope::parse_set(&[]), Err(AppError::NoScopes));
        assert_eq!(
            Scope::parse_set(&["wallet:write".into()]),
            Err(AppError::InvalidScope)
        );
        assert_eq!(
            serde_json::to_string(&Scope::PaymentsWrite).unwrap(),
            "\"payments:write\""
        );
    }

    #[test]
    fn external_ids_are_bounded_visible_ascii() {
        assert!(ExternalUserId::parse("user-42").is_ok());
        assert!(ExternalUserId::parse(&"x".repeat(128)).is_ok());
        for bad in ["", "has space", "é", &"x".repeat(129)] {
            assert_eq!(
                ExternalUserId::parse(bad),
                Err(AppError::InvalidExternalUserId)
            );
        }
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let a = random_secret(API_KEY_PREFIX);
        let b = random_secret(API_KEY_PREFIX);
        assert!(a.starts_with("mzk_"));
        assert_ne!(a, b);
        assert_eq!(identity::token_hash(&a).len(), 64);
        assert!(is_hex_id(&random_id()));
    }

    #[test]
    fn a_session_caller_has_every_scope_and_an_app_only_its_own() {
        let person = Person {
            id: PersonId::random(),
            handle: identity::Handle::parse("sara").unwrap(),
            email: identity::Email::parse("sara@example.com").unwrap(),
            created_at_ns: 0,
        };
        let session = Caller {
            person: person.clone(),
            app_id: None,
            scopes: BTreeSet::new(),
            session_key: Some("k".to_owned()),
            stepped_up_at_ns: None,
        };
        assert!(session.require(Scope::PaymentsWrite).is_ok());
        assert!(session.require_session().is_ok());
        let app = Caller {
            person,
            app_id: Some(random_id()),
            scopes: [Scope::WalletRead].into_iter().collect(),
            session_key: None,
            stepped_up_at_ns: None,
        };
        assert!(app.require(Scope::WalletRead).is_ok());
        assert_eq!(
            app.require(Scope::PaymentsWrite).unwrap_err(),
            AppError::InsufficientScope
        );
        assert_eq!(
            app.require_session().unwrap_err(),
            AppError::SessionRequired
        );
    }
}
