//! Identity: who a person is (handle, e-mail, password), their one USD wallet, and
//! their sessions.
//!
//! Everything a sign-up writes — the wallet account, the unique handle and e-mail
//! claims, the person and credential documents and the `person.created` event — is
//! one atomic ledger submission: a taken handle or e-mail creates nothing. Session
//! tokens are returned once and stored only as SHA-256 hashes.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use mizan_core::{AccountId, Currency, Money, Secret};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, BusinessRow, CreateAccountResult, Ledger, NewAccount,
    Submission,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const HANDLE_CHARS_MIN: usize = 3;
pub const HANDLE_CHARS_MAX: usize = 30;
pub const EMAIL_CHARS_MAX: usize = 254;
pub const PASSWORD_CHARS_MIN: usize = 10;
pub const PASSWORD_CHARS_MAX: usize = 128;
/// Longest accepted login (a handle or an e-mail) before any lookup.
pub const LOGIN_CHARS_MAX: usize = EMAIL_CHARS_MAX;
pub const SESSION_LIFETIME_SECONDS: u64 = 30 * 24 * 3_600;
const SESSION_TOKEN_BYTES: usize = 32;
const PASSWORD_SALT_BYTES: usize = 16;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Domain separator of wallet account ids; bump the version to change the derivation.
const WALLET_ID_DOMAIN: &[u8] = b"mizan.wallet.v1";
/// The currency of the wallet every person gets at sign-up.
pub const WALLET_CURRENCY: Currency = Currency::USD;

pub const COLLECTION_HANDLES: &str = "handles";
pub const COLLECTION_EMAILS: &str = "emails";
pub const COLLECTION_PEOPLE: &str = "people";
pub const COLLECTION_CREDENTIALS: &str = "credentials";
pub const COLLECTION_SESSIONS: &str = "sessions";
/// Each person's sessions, keyed `person:session id`, for listing and revoking.
pub const COLLECTION_PERSON_SESSIONS: &str = "person_sessions";
/// Most sessions a person's list shows (and a password change revokes) in one go.
pub const SESSIONS_LISTED_MAX: usize = 100;
pub const TOPIC_PERSON_CREATED: &str = "person.created";

/// The reader the API shares between requests.
pub type SharedReader = Arc<crate::readers::ReaderPool>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("a handle is 3 to 30 ASCII letters, digits or underscores")]
    InvalidHandle,
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("a password is 10 to 128 characters")]
    WeakPassword,
    #[error("the handle is taken")]
    HandleTaken,
    #[error("the e-mail address is already registered")]
    EmailTaken,
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error("missing, unknown, expired or revoked session")]
    Unauthenticated,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("no such session")]
    SessionNotFound,
    #[error("a legal name is 1 to 200 characters, without control characters")]
    InvalidLegalName,
    /// A bug or a store failure; the detail is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl IdentityError {
    /// The stable code; never change one once published.
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::InvalidHandle => "invalid_handle",
            IdentityError::InvalidEmail => "invalid_email",
            IdentityError::WeakPassword => "weak_password",
            IdentityError::HandleTaken => "handle_taken",
            IdentityError::EmailTaken => "email_taken",
            IdentityError::InvalidCredentials => "invalid_credentials",
            IdentityError::Unauthenticated => "unauthenticated",
            IdentityError::WrongPassword => "wrong_password",
            IdentityError::SessionNotFound => "session_not_found",
            IdentityError::InvalidLegalName => "legal_name_invalid",
            IdentityError::Internal(_) => "internal_error",
        }
    }

    /// The input field the error is about, if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            IdentityError::InvalidHandle | IdentityError::HandleTaken => Some("handle"),
            IdentityError::InvalidEmail | IdentityError::EmailTaken => Some("email"),
            IdentityError::WeakPassword => Some("password"),
            IdentityError::WrongPassword => Some("current_password"),
            IdentityError::InvalidLegalName => Some("legal_name"),
            IdentityError::InvalidCredentials
            | IdentityError::Unauthenticated
            | IdentityError::SessionNotFound
            | IdentityError::Internal(_) => None,
        }
    }
}

fn internal(context: &str, error: impl fmt::Display) -> IdentityError {
    IdentityError::Internal(format!("{context}: {error}"))
}

/// A unique public name: 3–30 ASCII letters, digits or underscores, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle(String);

impl Handle {
    pub fn parse(text: &str) -> Result<Handle, IdentityError> {
        let length_ok = (HANDLE_CHARS_MIN..=HANDLE_CHARS_MAX).contains(&text.len());
        let chars_ok = text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if length_ok && chars_ok {
            Ok(Handle(text.to_ascii_lowercase()))
        } else {
            Err(IdentityError::InvalidHandle)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An e-mail address: trimmed, lowercase, one `@`, a dotted domain, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email, IdentityError> {
        let email = text.trim().to_lowercase();
        if email.chars().count() > EMAIL_CHARS_MAX || email.chars().any(char::is_whitespace) {
            return Err(IdentityError::InvalidEmail);
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(IdentityError::InvalidEmail);
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(IdentityError::InvalidEmail);
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 10–128 characters. Prints as `***`.
#[derive(Debug, Clone)]
pub struct Password(Secret<String>);

impl Password {
    pub fn parse(text: Secret<String>) -> Result<Password, IdentityError> {
        let chars = text.expose().chars().count();
        if (PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars) {
            Ok(Password(text))
        } else {
            Err(IdentityError::WeakPassword)
        }
    }

    fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A person's full legal name as given at sign-up: 1–200 characters after trimming,
/// no control characters. Personal data: prints as `***`, goes only to the vault
/// and the sanctions screener (`crate::sanctions::signup_screened`).
#[derive(Debug, Clone)]
pub struct LegalName(Secret<String>);

impl LegalName {
    pub fn parse(text: &str) -> Result<LegalName, IdentityError> {
        let name = text.trim();
        let chars = name.chars().count();
        let valid = (1..=crate::verification::LEGAL_NAME_CHARS_MAX).contains(&chars)
            && !name.chars().any(char::is_control);
        if valid {
            Ok(LegalName(Secret::new(name.to_owned())))
        } else {
            Err(IdentityError::InvalidLegalName)
        }
    }

    pub fn secret(&self) -> &Secret<String> {
        &self.0
    }
}

/// A person's id: random, never zero; printed as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersonId(u128);

impl PersonId {
    pub fn random() -> PersonId {
        loop {
            let raw: u128 = rand::random();
            if raw != 0 && raw != u128::MAX {
                return PersonId(raw);
            }
        }
    }

    pub fn parse(text: &str) -> Result<PersonId, IdentityError> {
        match u128::from_str_radix(text, 16) {
            Ok(raw) if text.len() == 32 && raw != 0 => Ok(PersonId(raw)),
            _ => Err(internal("stored person id", text)),
        }
    }

    pub fn get(self) -> u128 {
        self.0
    }

    /// The id of this person's wallet in `currency`: the first 16 bytes of
    /// SHA-256(domain ‖ person id ‖ currency code), so it never needs a lookup.
    pub fn wallet_id(self, currency: Currency) -> Result<AccountId, IdentityError> {
        let mut hasher = Sha256::new();
        hasher.update(WALLET_ID_DOMAIN);
        hasher.update(self.0.to_be_bytes());
        hasher.update(currency.code().as_bytes());
        let digest = hasher.finalize();
        let mut first = [0_u8; 16];
        first.copy_from_slice(&digest[..16]);
        AccountId::new(u128::from_be_bytes(first)).map_err(|error| internal("wallet id", error))
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:032x}", self.0)
    }
}

/// A person as the `people` collection stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PersonId,
    pub handle: Handle,
    pub email: Email,
    pub created_at_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct PersonDocument {
    id: String,
    handle: String,
    email: String,
    created_at_ns: u64,
}

#[derive(Serialize, Deserialize)]
struct SessionDocument {
    person: String,
    created_at_ns: u64,
    expires_at_ns: u64,
    #[serde(default)]
    revoked: bool,
    /// When this session last proved the second factor (TOTP step-up).
    #[serde(default)]
    stepped_up_at_ns: Option<u64>,
}

/// A session as its person sees it in their list; `id` is the SHA-256 of the token
/// (the key it is stored under), which cannot be turned back into the token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: String,
    pub created_at_ns: u64,
    pub expires_at_ns: u64,
    #[serde(default)]
    pub revoked: bool,
}

/// The session a request came with.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The stored key (the token's SHA-256), also its id in the person's list.
    pub key: String,
    pub stepped_up_at_ns: Option<u64>,
}

/// A session just created: the token leaves the server once, here.
#[derive(Debug)]
pub struct NewSession {
    pub token: Secret<String>,
    pub person: PersonId,
    pub expires_at_ns: u64,
}

fn wallet_account(person: PersonId) -> Result<NewAccount, IdentityError> {
    Ok(NewAccount {
        id: person.wallet_id(WALLET_CURRENCY)?,
        ledger: ledger_of(WALLET_CURRENCY),
        code: AccountCode::UserWallet,
        owner: person.get(),
        flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
    })
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, IdentityError> {
    serde_json::to_vec(value).map_err(|error| internal("encoding a document", error))
}

async fn hash_password(password: Password) -> Result<String, IdentityError> {
    let salt_bytes: [u8; PASSWORD_SALT_BYTES] = rand::random();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| internal("salt", e))?;
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| internal("hashing a password", error))
    })
    .await
    .map_err(|error| internal("hashing task", error))?
}

/// A fixed hash to verify against when the login is unknown, so that an unknown
/// login costs about as much time as a wrong password.
fn dummy_password_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt_bytes = [0x5a_u8; PASSWORD_SALT_BYTES];
        SaltString::encode_b64(&salt_bytes)
            .ok()
            .and_then(|salt| {
                Argon2::default()
                    .hash_password(b"mizan-dummy-password", &salt)
                    .ok()
                    .map(|hash| hash.to_string())
            })
            .unwrap_or_default()
    })
}

/// True when `password` matches the PHC string `phc`; without one, verifies against
/// the dummy hash (and answers false) so the caller spends the same time.
async fn verify_password(
    password: Secret<String>,
    phc: Option<String>,
) -> Result<bool, IdentityError> {
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| dummy_password_hash().to_owned());
        let Ok(hash) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok()
            && known
    })
    .await
    .map_err(|error| internal("verifying task", error))
}

/// Signs a person up: one atomic submission creates the wallet, claims the handle and
/// e-mail, and writes the person, the credential and the `person.created` event.
#[tracing::instrument(skip_all)]
pub async fn signup(
    ledger: &Ledger,
    handle: Handle,
    email: Email,
    password: Password,
    now_ns: u64,
) -> Result<Person, IdentityError> {
    signup_as(
        ledger,
        PersonId::random(),
        handle,
        email,
        password,
        Vec::new(),
        now_ns,
    )
    .await
}

/// [`signup`] under an id the caller chose, with `extra_rows` (documents about the
/// new person: the sanctions screening at sign-up) in the same atomic submission:
/// the person exists if and only if those rows do.
pub async fn signup_as(
    ledger: &Ledger,
    id: PersonId,
    handle: Handle,
    email: Email,
    password: Password,
    extra_rows: Vec<BusinessRow>,
    now_ns: u64,
) -> Result<Person, IdentityError> {
    let phc = hash_password(password).await?;
    let person = Person {
        id,
        handle,
        email,
        created_at_ns: now_ns,
    };
    let id_hex = person.id.to_string();
    let document = to_json(&PersonDocument {
        id: id_hex.clone(),
        handle: person.handle.as_str().to_owned(),
        email: person.email.as_str().to_owned(),
        created_at_ns: now_ns,
    })?;
    let create = |collection: &str, key: &str, body: Vec<u8>| BusinessRow::Create {
        collection: collection.to_owned(),
        key: key.to_owned(),
        body,
    };
    let submission = Submission {
        accounts: vec![wallet_account(person.id)?],
        transfers: Vec::new(),
        rows: vec![
            create(
                COLLECTION_HANDLES,
                person.handle.as_str(),
                id_hex.clone().into_bytes(),
            ),
            create(
                COLLECTION_EMAILS,
                person.email.as_str(),
                id_hex.clone().into_bytes(),
            ),
            BusinessRow::Document {
                collection: COLLECTION_PEOPLE.to_owned(),
                key: id_hex.clone(),
                body: document.clone(),
            },
            BusinessRow::Document {
                collection: COLLECTION_CREDENTIALS.to_owned(),
                key: id_hex,
                body: phc.into_bytes(),
            },
            crate::outbox::event_row(TOPIC_PERSON_CREATED, &document, now_ns),
        ]
        .into_iter()
        .chain(extra_rows)
        .collect(),
        atomic: true,
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting a sign-up", error))?;
    if let Some((collection, _key)) = &result.row_conflict {
        return Err(match collection.as_str() {
            COLLECTION_HANDLES => IdentityError::HandleTaken,
            COLLECTION_EMAILS => IdentityError::EmailTaken,
            other => internal("unexpected row conflict", other),
        });
    }
    if result.accounts != [CreateAccountResult::Ok] {
        return Err(internal(
            "creating the wallet",
            format!("{:?}", result.accounts),
        ));
    }
    tracing::info!(person = %person.id, "person signed up");
    Ok(person)
}

/// A document by key, through the pool's [`crate::readers::DocumentCache`].
pub(crate) async fn read_document(
    reader: &SharedReader,
    collection: &'static str,
    key: String,
) -> Result<Option<Vec<u8>>, IdentityError> {
    let cache = reader.documents();
    if let Some(entry) = cache.get(collection, &key) {
        return Ok(entry.map(|body| body.to_vec()));
    }
    let generation = cache.generation();
    let lookup = key.clone();
    let body = reader
        .read(move |r| r.document(collection, &lookup))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading a document", error))?;
    cache.fill(collection, key, body.as_deref(), generation);
    Ok(body)
}

/// The person a handle or an e-mail belongs to, if any.
async fn find_person(
    reader: &SharedReader,
    login: &str,
) -> Result<Option<PersonId>, IdentityError> {
    let lookup = if login.contains('@') {
        Email::parse(login).map(|email| (COLLECTION_EMAILS, email.0))
    } else {
        Handle::parse(login).map(|handle| (COLLECTION_HANDLES, handle.0))
    };
    let Ok((collection, key)) = lookup else {
        return Ok(None);
    };
    match read_document(reader, collection, key).await? {
        None => Ok(None),
        Some(body) => {
            let text = String::from_utf8(body).map_err(|error| internal("stored id", error))?;
            PersonId::parse(&text).map(Some)
        }
    }
}

/// The stored form of a bearer secret (session token, app key, app token): its
/// SHA-256 in hex, from which the secret cannot be recovered.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Logs a person in by handle or e-mail; unknown logins and wrong passwords answer
/// the same `InvalidCredentials`, after the same amount of hashing work.
#[tracing::instrument(skip_all)]
pub async fn login(
    reader: &SharedReader,
    ledger: &Ledger,
    login: &str,
    password: Secret<String>,
    now_ns: u64,
) -> Result<NewSession, IdentityError> {
    let length_ok =
        login.len() <= LOGIN_CHARS_MAX && password.expose().chars().count() <= PASSWORD_CHARS_MAX;
    let person = if length_ok {
        find_person(reader, login).await?
    } else {
        None
    };
    let phc = match person {
        Some(person) => read_document(reader, COLLECTION_CREDENTIALS, person.to_string())
            .await?
            .map(String::from_utf8)
            .transpose()
            .map_err(|error| internal("stored credential", error))?,
        None => None,
    };
    let known = phc.is_some();
    let verified = verify_password(password, phc).await?;
    let Some(person) = person.filter(|_| known && verified) else {
        return Err(IdentityError::InvalidCredentials);
    };
    create_session(ledger, person, now_ns).await
}

async fn create_session(
    ledger: &Ledger,
    person: PersonId,
    now_ns: u64,
) -> Result<NewSession, IdentityError> {
    let token_bytes: [u8; SESSION_TOKEN_BYTES] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token_bytes);
    let expires_at_ns = now_ns.saturating_add(SESSION_LIFETIME_SECONDS * NANOS_PER_SECOND);
    let body = to_json(&SessionDocument {
        person: person.to_string(),
        created_at_ns: now_ns,
        expires_at_ns,
        revoked: false,
        stepped_up_at_ns: None,
    })?;
    let key = token_hash(&token);
    let summary = SessionSummary {
        id: key.clone(),
        created_at_ns: now_ns,
        expires_at_ns,
        revoked: false,
    };
    let submission = Submission {
        rows: vec![
            BusinessRow::Create {
                collection: COLLECTION_SESSIONS.to_owned(),
                key,
                body,
            },
            summary_row(person, &summary)?,
        ],
        atomic: true,
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting a session", error))?;
    if let Some((collection, _)) = result.row_conflict {
        return Err(internal("session key taken", collection));
    }
    tracing::info!(%person, "session created");
    Ok(NewSession {
        token: Secret::new(token),
        person,
        expires_at_ns,
    })
}

/// The live session a token names: not unknown, not expired, not revoked.
async fn live_session(
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<(String, SessionDocument), IdentityError> {
    if token.is_empty() || token.len() > 2 * SESSION_TOKEN_BYTES {
        return Err(IdentityError::Unauthenticated);
    }
    let key = token_hash(token);
    let Some(body) = read_document(reader, COLLECTION_SESSIONS, key.clone()).await? else {
        return Err(IdentityError::Unauthenticated);
    };
    let session: SessionDocument =
        serde_json::from_slice(&body).map_err(|error| internal("stored session", error))?;
    if session.revoked || now_ns >= session.expires_at_ns {
        return Err(IdentityError::Unauthenticated);
    }
    Ok((key, session))
}

/// The person a session token belongs to, and that session.
pub async fn authenticate_session(
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<(Person, SessionInfo), IdentityError> {
    let (key, session) = live_session(reader, token, now_ns).await?;
    let person = person_by_id(reader, PersonId::parse(&session.person)?).await?;
    Ok((
        person,
        SessionInfo {
            key,
            stepped_up_at_ns: session.stepped_up_at_ns,
        },
    ))
}

fn summary_row(person: PersonId, summary: &SessionSummary) -> Result<BusinessRow, IdentityError> {
    Ok(BusinessRow::Document {
        collection: COLLECTION_PERSON_SESSIONS.to_owned(),
        key: format!("{person}:{}", summary.id),
        body: to_json(summary)?,
    })
}

/// The rows that revoke the session stored under `key` (the session and its summary).
async fn revocation_rows(
    reader: &SharedReader,
    person: PersonId,
    key: &str,
) -> Result<Vec<BusinessRow>, IdentityError> {
    let Some(body) = read_document(reader, COLLECTION_SESSIONS, key.to_owned()).await? else {
        return Err(IdentityError::SessionNotFound);
    };
    let mut session: SessionDocument =
        serde_json::from_slice(&body).map_err(|error| internal("stored session", error))?;
    if session.person != person.to_string() {
        return Err(IdentityError::SessionNotFound);
    }
    session.revoked = true;
    let summary = SessionSummary {
        id: key.to_owned(),
        created_at_ns: session.created_at_ns,
        expires_at_ns: session.expires_at_ns,
        revoked: true,
    };
    Ok(vec![
        BusinessRow::Document {
            collection: COLLECTION_SESSIONS.to_owned(),
            key: key.to_owned(),
            body: to_json(&session)?,
        },
        summary_row(person, &summary)?,
    ])
}

/// The person's sessions that are neither revoked nor expired (at most
/// [`SESSIONS_LISTED_MAX`]).
pub async fn sessions_of(
    reader: &SharedReader,
    person: PersonId,
    now_ns: u64,
) -> Result<Vec<SessionSummary>, IdentityError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_PERSON_SESSIONS,
        format!("{person}:"),
        None,
        SESSIONS_LISTED_MAX,
    )
    .await
    .map_err(|error| internal("reading sessions", error))?;
    let mut sessions = Vec::with_capacity(rows.len());
    for (_, body) in rows {
        let summary: SessionSummary =
            serde_json::from_slice(&body).map_err(|error| internal("stored summary", error))?;
        if !summary.revoked && now_ns < summary.expires_at_ns {
            sessions.push(summary);
        }
    }
    sessions.sort_by_key(|summary| std::cmp::Reverse(summary.created_at_ns));
    Ok(sessions)
}

/// Revokes one of the person's sessions by id.
pub async fn revoke_session(
    ledger: &Ledger,
    reader: &SharedReader,
    person: PersonId,
    session_id: &str,
) -> Result<(), IdentityError> {
    let valid = session_id.len() == 64 && session_id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(IdentityError::SessionNotFound);
    }
    let rows = revocation_rows(reader, person, session_id).await?;
    submit_rows(ledger, rows).await
}

async fn submit_rows(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<(), IdentityError> {
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("submitting", error))?;
    Ok(())
}

/// Changes the password after checking the current one, and signs out every other
/// session (a stolen session must not outlive the password it was opened with).
pub async fn change_password(
    ledger: &Ledger,
    reader: &SharedReader,
    person: PersonId,
    current_session_key: Option<&str>,
    current: Secret<String>,
    new: Password,
    now_ns: u64,
) -> Result<(), IdentityError> {
    let phc = read_document(reader, COLLECTION_CREDENTIALS, person.to_string())
        .await?
        .map(String::from_utf8)
        .transpose()
        .map_err(|error| internal("stored credential", error))?;
    let known = phc.is_some();
    if !(verify_password(current, phc).await? && known) {
        return Err(IdentityError::WrongPassword);
    }
    let new_phc = hash_password(new).await?;
    let mut rows = vec![BusinessRow::Document {
        collection: COLLECTION_CREDENTIALS.to_owned(),
        key: person.to_string(),
        body: new_phc.into_bytes(),
    }];
    for session in sessions_of(reader, person, now_ns).await? {
        if Some(session.id.as_str()) != current_session_key {
            rows.extend(revocation_rows(reader, person, &session.id).await?);
        }
    }
    submit_rows(ledger, rows).await?;
    tracing::info!(%person, "password changed");
    Ok(())
}

/// The row that marks the session stored under `key` as having stepped up now.
pub(crate) async fn stepped_up_session_row(
    reader: &SharedReader,
    key: &str,
    now_ns: u64,
) -> Result<BusinessRow, IdentityError> {
    let Some(body) = read_document(reader, COLLECTION_SESSIONS, key.to_owned()).await? else {
        return Err(IdentityError::Unauthenticated);
    };
    let mut session: SessionDocument =
        serde_json::from_slice(&body).map_err(|error| internal("stored session", error))?;
    session.stepped_up_at_ns = Some(now_ns);
    Ok(BusinessRow::Document {
        collection: COLLECTION_SESSIONS.to_owned(),
        key: key.to_owned(),
        body: to_json(&session)?,
    })
}

/// The person with this id; a missing one is an internal error (ids come from the
/// store, never from a request).
pub async fn person_by_id(reader: &SharedReader, id: PersonId) -> Result<Person, IdentityError> {
    let body = read_document(reader, COLLECTION_PEOPLE, id.to_string())
        .await?
        .ok_or_else(|| internal("a missing person", id))?;
    let document: PersonDocument =
        serde_json::from_slice(&body).map_err(|error| internal("stored person", error))?;
    Ok(Person {
        id: PersonId::parse(&document.id)?,
        handle: Handle::parse(&document.handle).map_err(|e| internal("stored handle", e))?,
        email: Email::parse(&document.email).map_err(|e| internal("stored email", e))?,
        created_at_ns: document.created_at_ns,
    })
}

/// The person a handle belongs to, if any.
pub async fn person_by_handle(
    reader: &SharedReader,
    handle: &Handle,
) -> Result<Option<PersonId>, IdentityError> {
    find_person(reader, handle.as_str()).await
}

/// Most handles one autocomplete answer holds.
pub const HANDLE_SUGGESTIONS_MAX: usize = 10;

/// Handles starting with `prefix` (case-insensitive), in order, at most `limit`
/// (clamped to 1..=[`HANDLE_SUGGESTIONS_MAX`]). A prefix that no handle could start
/// with (a character outside the handle alphabet, or too long) finds nothing.
pub async fn handles_starting_with(
    reader: &SharedReader,
    prefix: &str,
    limit: usize,
) -> Result<Vec<String>, IdentityError> {
    let valid = !prefix.is_empty()
        && prefix.len() <= HANDLE_CHARS_MAX
        && prefix
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !valid {
        return Ok(Vec::new());
    }
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_HANDLES,
        prefix.to_ascii_lowercase(),
        None,
        limit.clamp(1, HANDLE_SUGGESTIONS_MAX),
    )
    .await
    .map_err(|error| internal("listing handles", error))?;
    Ok(rows.into_iter().map(|(handle, _)| handle).collect())
}

/// Revokes the session a token names; the token authenticates nothing afterwards.
#[tracing::instrument(skip_all)]
pub async fn logout(
    ledger: &Ledger,
    reader: &SharedReader,
    token: &str,
    now_ns: u64,
) -> Result<(), IdentityError> {
    let (key, session) = live_session(reader, token, now_ns).await?;
    let person = PersonId::parse(&session.person)?;
    let rows = revocation_rows(reader, person, &key).await?;
    submit_rows(ledger, rows).await
}

/// A wallet's balances, each in the wallet's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletBalances {
    /// Posted credits minus posted debits: what the wallet holds.
    pub posted: Money,
    /// What the person may spend now: posted, less outgoing holds (a cash-out on its
    /// way to the bank, a paid DM in escrow).
    pub available: Money,
    /// Incoming holds not yet posted (a card top-up waiting for its processor).
    pub pending: Money,
}

/// The posted balance of a person's wallet.
pub async fn wallet_balance(
    reader: &SharedReader,
    person: PersonId,
) -> Result<Money, IdentityError> {
    Ok(wallet_balances(reader, person).await?.posted)
}

/// The posted, available and pending balances of a person's wallet.
pub async fn wallet_balances(
    reader: &SharedReader,
    person: PersonId,
) -> Result<WalletBalances, IdentityError> {
    let wallet = person.wallet_id(WALLET_CURRENCY)?;
    let reader = reader.clone();
    let accounts = reader
        .read(move |r| r.accounts(&[wallet]))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading the wallet", error))?;
    let [account] = accounts.as_slice() else {
        return Err(internal("wallet missing", wallet));
    };
    if account.owner != person.get() || account.ledger != ledger_of(WALLET_CURRENCY) {
        return Err(internal("wallet of another person or currency", wallet));
    }
    let money = |minor_units: i128| {
        i64::try_from(minor_units)
            .map(|minor_units| Money::from_minor(minor_units, WALLET_CURRENCY))
            .map_err(|error| internal("wallet balance", error))
    };
    Ok(WalletBalances {
        posted: money(account.balance_posted())?,
        available: money(account.balance_available())?,
        pending: money(i128::from(account.credits_pending))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn handles_parse_to_lowercase() {
        assert_eq!(Handle::parse("Ali_99").unwrap().as_str(), "ali_99");
        assert_eq!(Handle::parse("abc").unwrap().as_str(), "abc");
        assert!(Handle::parse(&"a".repeat(30)).is_ok());
        for bad in ["ab", "", "has space", "dash-ed", "émile", &"a".repeat(31)] {
            assert_eq!(
                Handle::parse(bad),
                Err(IdentityError::InvalidHandle),
                "{bad}"
            );
        }
        assert_eq!(IdentityError::InvalidHandle.code(), "invalid_handle");
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Sara@Example.COM ").unwrap().as_str(),
            "sara@example.com"
        );
        let long = format!("{}@example.com", "a".repeat(243));
        assert!(Email::parse(&long).is_err());
        for bad in [
            "",
            "sara",
            "@example.com",
            "sara@example",
            "sara@@example.com",
            "sa ra@example.com",
            "sara@exa@mple.com",
            "sara@.com",
            "sara@example.",
        ] {
            assert_eq!(Email::parse(bad), Err(IdentityError::InvalidEmail), "{bad}");
        }
        assert_eq!(IdentityError::InvalidEmail.code(), "invalid_email");
    }

    #[test]
    fn passwords_have_bounds_and_never_print() {
        let password = Password::parse(Secret::new("correct horse".to_owned())).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
        for bad in ["short", "123456789"] {
            let error = Password::parse(Secret::new(bad.to_owned())).unwrap_err();
            assert_eq!(error.code(), "weak_password");
        }
        assert!(Password::parse(Secret::new("x".repeat(129))).is_err());
        assert!(Password::parse(Secret::new("x".repeat(128))).is_ok());
    }

    #[test]
    fn wallet_ids_are_deterministic_and_distinct() {
        let person = PersonId(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let wallet = person.wallet_id(Currency::USD).unwrap();
        assert_eq!(wallet, person.wallet_id(Currency::USD).unwrap());
        let mut hasher = Sha256::new();
        hasher.update(b"mizan.wallet.v1");
        hasher.update(person.0.to_be_bytes());
        hasher.update(b"USD");
        let expected = hex::encode(&hasher.finalize()[..16]);
        assert_eq!(wallet.to_string(), expected);
        let other = PersonId(person.0 + 1).wallet_id(Currency::USD).unwrap();
        assert_ne!(wallet, other);
        let account = wallet_account(person).unwrap();
        assert_eq!(account.owner, person.0);
        assert_eq!(account.ledger, 840);
        assert_eq!(account.code, AccountCode::UserWallet);
        assert_eq!(account.flags, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS);
    }

    #[test]
    fn person_ids_print_as_32_hex_digits() {
        let id = PersonId::random();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(PersonId::parse(&text).unwrap(), id);
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let password = Password::parse(Secret::new("correct horse".to_owned())).unwrap();
        let phc = hash_password(password).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            verify_password(Secret::new("correct horse".to_owned()), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password(Secret::new("wrong horse!".to_owned()), Some(phc))
                .await
                .unwrap()
        );
        assert!(!dummy_password_hash().is_empty());
        let mizan_dummy = Secret::new("mizan-dummy-password".to_owned());
        assert!(!verify_password(mizan_dummy, None).await.unwrap());
    }

    #[test]
    fn session_tokens_never_print() {
        let session = NewSession {
            token: Secret::new("s3cr3t-token".to_owned()),
            person: PersonId(7),
            expires_at_ns: 0,
        };
        assert!(!format!("{session:?}").contains("s3cr3t"));
        assert_eq!(token_hash("abc").len(), 64);
    }
}
