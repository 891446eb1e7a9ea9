//! Time-based one-time passwords (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits)
//! as a second factor, and step-up: a payment at or above the configured amount needs
//! a session that proved the second factor in the last five minutes.
//!
//! Enrolment is two steps — `begin` hands out the secret (as an `otpauth://` URI for
//! an authenticator app), `confirm` turns it on once a code from it checks out — so a
//! mistyped secret never locks a person out. A code works once: each accepted time
//! step is claimed with a `Create` row (`totp_used`, `person:step`), so two racing
//! requests with the same code cannot both pass.
//!
//! The secret lives in the vault (`FieldKind::ServiceSecret`, sealed under the
//! person's data key): the `totp` document keeps only its vault record id, codes are
//! checked inside the vault (`Vault::use_service_secret`), and erasing the person
//! destroys it with the rest of their data.

use std::fmt;

use hmac::{Hmac, Mac};
use mizan_core::Secret;
use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::identity::{self, IdentityError, Person, SharedReader};
use crate::vault::{blocking, vault_person, SharedVault};

pub const COLLECTION_TOTP: &str = "totp";
pub const COLLECTION_TOTP_USED: &str = "totp_used";
pub const STEP_SECONDS: u64 = 30;
pub const DIGITS: u32 = 6;
/// Steps either side of now a code is accepted in (clock drift, typing time).
pub const WINDOW_STEPS: u64 = 1;
/// How long a proved second factor lets a session make large payments.
pub const STEP_UP_FRESH_SECONDS: u64 = 300;
const SECRET_BYTES: usize = 20;
const NANOS_PER_SECOND: u64 = 1_000_000_000;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("two-factor authentication is already on")]
    AlreadyEnabled,
    #[error("start two-factor set-up first")]
    NotEnrolling,
    #[error("two-factor authentication is not on for this account")]
    NotEnabled,
    #[error("the code is wrong, expired or already used")]
    InvalidCode,
    #[error("payments of this size need a fresh second factor: step up with a TOTP code")]
    StepUpRequired,
    #[error("only the person, signed in to Mizan, can do that; not an app")]
    SessionRequired,
    /// The person's personal data was erased: their vault key, and with it any
    /// second-factor secret, is gone.
    #[error("this person's personal data was erased")]
    PersonErased,
    #[error("internal error: {0}")]
    Internal(String),
}

impl TotpError {
    pub fn code(&self) -> &'static str {
        match self {
            TotpError::AlreadyEnabled => "totp_already_enabled",
            TotpError::NotEnrolling => "totp_not_enrolling",
            TotpError::NotEnabled => "totp_not_enabled",
            TotpError::InvalidCode => "invalid_totp_code",
            TotpError::StepUpRequired => "step_up_required",
            TotpError::SessionRequired => "session_required",
            TotpError::PersonErased => "person_erased",
            TotpError::Internal(_) => "internal_error",
        }
    }
}

fn internal(context: &str, error: impl fmt::Display) -> TotpError {
    TotpError::Internal(format!("{context}: {error}"))
}

fn vault_error(error: mizan_vault::VaultError) -> TotpError {
    match error {
        mizan_vault::VaultError::Erased => TotpError::PersonErased,
        other => internal("vault", other.code()),
    }
}

impl From<IdentityError> for TotpError {
    fn from(error: IdentityError) -> TotpError {
        internal("identity", error)
    }
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for character in text.bytes() {
        let value = BASE32.iter().position(|&symbol| symbol == character)?;
        buffer = (buffer << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The code for `secret` at time step `step` (RFC 4226 dynamic truncation).
pub fn code_at(secret: &[u8], step: u64) -> u32 {
    // HMAC takes a key of any length.
    #[allow(clippy::expect_used)]
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    binary % 10_u32.pow(DIGITS)
}

/// The time step a 6-digit `code` matches within the window around `now_s`, if any.
pub fn matching_step(secret: &[u8], code: &str, now_s: u64) -> Option<u64> {
    if code.len() != DIGITS as usize || !code.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let now_step = now_s / STEP_SECONDS;
    (now_step.saturating_sub(WINDOW_STEPS)..=now_step + WINDOW_STEPS)
        .find(|&step| code_at(secret, step) == wanted)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TotpDocument {
    /// The vault record holding the base32 secret (never the secret itself).
    secret_record: String,
    enabled: bool,
    created_at_ns: u64,
}

/// A secret being set up: shown once, here.
#[derive(Debug)]
pub struct Enrolment {
    pub secret_base32: Secret<String>,
    pub otpauth_uri: Secret<String>,
}

async fn read(reader: &SharedReader, person: &Person) -> Result<Option<TotpDocument>, TotpError> {
    match identity::read_document(reader, COLLECTION_TOTP, person.id.to_string()).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| internal("stored totp", error)),
    }
}

fn document_row(person: &Person, document: &TotpDocument) -> Result<BusinessRow, TotpError> {
    Ok(BusinessRow::Document {
        collection: COLLECTION_TOTP.to_owned(),
        key: person.id.to_string(),
        body: serde_json::to_vec(document).map_err(|error| internal("totp", error))?,
    })
}

async fn submit(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<bool, TotpError> {
    let conflict = crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("submitting", error))?;
    Ok(conflict.is_none())
}

/// Whether the person has a second factor on.
pub async fn enabled(reader: &SharedReader, person: &Person) -> Result<bool, TotpError> {
    Ok(read(reader, person).await?.is_some_and(|totp| totp.enabled))
}

/// Starts set-up: a new secret (replacing an unconfirmed one).
pub async fn begin(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    person: &Person,
    now_ns: u64,
) -> Result<Enrolment, TotpError> {
    if enabled(reader, person).await? {
        return Err(TotpError::AlreadyEnabled);
    }
    let secret: [u8; SECRET_BYTES] = rand::random();
    let secret_base32 = base32(&secret);
    let owner = vault_person(person.id).map_err(vault_error)?;
    let sealed = Secret::new(secret_base32.clone());
    let record = blocking(vault, move |vault| vault.put_service_secret(owner, &sealed))
        .await
        .map_err(vault_error)?;
    let document = TotpDocument {
        secret_record: record.to_string(),
        enabled: false,
        created_at_ns: now_ns,
    };
    submit(ledger, vec![document_row(person, &document)?]).await?;
    Ok(enrolment(person, secret_base32))
}

fn enrolment(person: &Person, secret_base32: String) -> Enrolment {
    let uri = format!(
        "otpauth://totp/Mizan:{}?secret={secret_base32}&issuer=Mizan&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        person.handle.as_str()
    );
    Enrolment {
        secret_base32: Secret::new(secret_base32),
        otpauth_uri: Secret::new(uri),
    }
}

/// The set-up the person started and has not confirmed yet, if any: after a mistyped
/// code the same secret is shown again rather than a new one begun. The secret is
/// opened in the vault, for the person themselves, as at [`begin`].
pub async fn pending(
    reader: &SharedReader,
    vault: &SharedVault,
    person: &Person,
) -> Result<Option<Enrolment>, TotpError> {
    let Some(document) = read(reader, person).await?.filter(|totp| !totp.enabled) else {
        return Ok(None);
    };
    let record = mizan_vault::RecordId::parse(&document.secret_record)
        .map_err(|_| internal("stored totp", "bad vault record id"))?;
    let opened = blocking(vault, move |vault| {
        vault.use_service_secret(record, |stored| {
            std::str::from_utf8(stored).ok().map(str::to_owned)
        })
    })
    .await
    .map_err(vault_error)?
    .ok_or_else(|| internal("stored totp secret", "not text"))?;
    Ok(Some(enrolment(person, opened)))
}

/// Claims the time step of a valid, unused code; the claim commits with `rows`.
async fn use_code(
    ledger: &Ledger,
    vault: &SharedVault,
    person: &Person,
    document: &TotpDocument,
    code: &str,
    now_ns: u64,
    mut rows: Vec<BusinessRow>,
) -> Result<(), TotpError> {
    let record = mizan_vault::RecordId::parse(&document.secret_record)
        .map_err(|_| internal("stored totp", "bad vault record id"))?;
    let code = code.to_owned();
    let checked = blocking(vault, move |vault| {
        vault.use_service_secret(record, |stored| {
            let secret = std::str::from_utf8(stored).ok().and_then(base32_decode)?;
            Some(matching_step(&secret, &code, now_ns / NANOS_PER_SECOND))
        })
    })
    .await
    .map_err(vault_error)?;
    let step = checked
        .ok_or_else(|| internal("stored totp secret", "not base32"))?
        .ok_or(TotpError::InvalidCode)?;
    rows.push(BusinessRow::Create {
        collection: COLLECTION_TOTP_USED.to_owned(),
        key: format!("{}:{step}", person.id),
        body: Vec::new(),
    });
    if submit(ledger, rows).await? {
        Ok(())
    } else {
        Err(TotpError::InvalidCode)
    }
}

/// Turns the second factor on, given a code from the new secret.
pub async fn confirm(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    person: &Person,
    code: &str,
    now_ns: u64,
) -> Result<(), TotpError> {
    let Some(mut document) = read(reader, person).await? else {
        return Err(TotpError::NotEnrolling);
    };
    if document.enabled {
        return Err(TotpError::AlreadyEnabled);
    }
    document.enabled = true;
    let rows = vec![document_row(person, &document)?];
    use_code(ledger, vault, person, &document, code, now_ns, rows).await?;
    tracing::info!(person = %person.id, "two-factor authentication enabled");
    Ok(())
}

/// Marks the session (by its stored key) as having proved the second factor now.
pub async fn step_up(
    ledger: &Ledger,
    reader: &SharedReader,
    vault: &SharedVault,
    person: &Person,
    session_key: &str,
    code: &str,
    now_ns: u64,
) -> Result<(), TotpError> {
    let Some(document) = read(reader, person).await?.filter(|totp| totp.enabled) else {
        return Err(TotpError::NotEnabled);
    };
    let session_row = identity::stepped_up_session_row(reader, session_key, now_ns).await?;
    use_code(
        ledger,
        vault,
        person,
        &document,
        code,
        now_ns,
        vec![session_row],
    )
    .await
}

/// Refuses a money movement of `amount_minor` when the person has TOTP on, the
/// amount is at or above `threshold_minor`, and the caller's session has not
/// stepped up in the last five minutes (an app token never has).
pub async fn require_step_up(
    reader: &SharedReader,
    caller: &crate::apps::Caller,
    amount_minor: i64,
    threshold_minor: i64,
    now_ns: u64,
) -> Result<(), TotpError> {
    if amount_minor < threshold_minor || !enabled(reader, &caller.person).await? {
        return Ok(());
    }
    let fresh = caller
        .stepped_up_at_ns
        .is_some_and(|at| now_ns.saturating_sub(at) <= STEP_UP_FRESH_SECONDS * NANOS_PER_SECOND);
    if fresh {
        Ok(())
    } else {
        Err(TotpError::StepUpRequired)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rfc_6238_test_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890", 8 digits there;
        // the 6-digit code is the last six of each.
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59_u64, 94_287_082_u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(
                code_at(secret, time / STEP_SECONDS),
                eight % 1_000_000,
                "{time}"
            );
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        let bytes: [u8; SECRET_BYTES] = rand::random();
        assert_eq!(base32_decode(&base32(&bytes)).unwrap(), bytes);
        assert!(base32_decode("not base32!").is_none());
    }

    #[test]
    fn codes_match_within_one_step_only() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let code = format!("{:06}", code_at(secret, now / STEP_SECONDS));
        assert_eq!(matching_step(secret, &code, now), Some(now / STEP_SECONDS));
        assert!(matching_step(secret, &code, now + STEP_SECONDS).is_some());
        assert!(matching_step(secret, &code, now + 3 * STEP_SECONDS).is_none());
        for bad in ["", "12345", "1234567", "12a456"] {
            assert!(matching_step(secret, bad, now).is_none(), "{bad}");
        }
    }
}
