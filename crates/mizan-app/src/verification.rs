//! Verification tiers: what the platform knows about a person, which sets their limits
//! ([`crate::limits`]) and, through their residence, what they may do
//! ([`crate::licences`]).
//!
//! - Tier 0: just signed up.
//! - Tier 1: legal name, date of birth, address and (US residents) SSN last 4 checked
//!   by an identity-verification provider, an [`IdentityVerifier`] connector.
//! - Tier 2: an identity document verified as well.
//!
//! The `verifications` collection holds, per person, only the tier, the residence
//! and when each step passed. The personal fields themselves (name, date of birth,
//! address, SSN last 4, document number) go to the provider and, once verified, into
//! the vault ([`crate::vault`]), sealed under the person's data key; a document
//! number is blind-indexed so another person presenting it is refused. Sanctions
//! screening keeps the legal name too, to screen again on a list reload
//! (`sanctions_subjects`, see [`crate::sanctions`]). They are
//! [`Secret`]s, so `{:?}` and logs never show them.

use mizan_core::Secret;
use mizan_ledger::{BusinessRow, Ledger};
use serde::{Deserialize, Serialize};

use crate::identity::{self, PersonId, SharedReader};
use crate::licences::Jurisdiction;
use crate::payments::{internal, to_json, PaymentError};
use crate::sanctions::SharedScreener;
use crate::vault::SharedVault;

pub const COLLECTION_VERIFICATIONS: &str = "verifications";
pub const LEGAL_NAME_CHARS_MAX: usize = 200;
pub const ADDRESS_LINE_CHARS_MAX: usize = 200;
pub const DOCUMENT_NUMBER_CHARS_MAX: usize = 40;
/// Oldest and youngest accepted dates of birth (ages, in years, at verification).
pub const AGE_YEARS_MIN: i64 = 18;
pub const AGE_YEARS_MAX: i64 = 130;

/// A verification tier; the numbers never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum Tier {
    Unverified,
    Identity,
    Document,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Unverified, Tier::Identity, Tier::Document];

    pub fn number(self) -> u8 {
        match self {
            Tier::Unverified => 0,
            Tier::Identity => 1,
            Tier::Document => 2,
        }
    }
}

impl From<Tier> for u8 {
    fn from(tier: Tier) -> u8 {
        tier.number()
    }
}

impl TryFrom<u8> for Tier {
    type Error = String;
    fn try_from(number: u8) -> Result<Tier, String> {
        Tier::ALL
            .into_iter()
            .find(|tier| tier.number() == number)
            .ok_or_else(|| format!("no tier {number}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerificationError {
    #[error("a legal name is 1 to 200 characters")]
    LegalNameInvalid,
    #[error("a date of birth is YYYY-MM-DD, 18 to 130 years ago")]
    DateOfBirthInvalid,
    #[error("an address has a line, a city and a postal code of at most 200 characters")]
    AddressInvalid,
    #[error("a residence is a US state (\"CA\" with country \"US\") or a country code")]
    JurisdictionInvalid,
    #[error("the last 4 digits of the SSN are required for US residents")]
    SsnLast4Invalid,
    #[error("a document type is \"passport\", \"drivers_license\" or \"national_id\"")]
    DocumentTypeInvalid,
    #[error("a document number is 1 to 40 letters or digits")]
    DocumentNumberInvalid,
    #[error("the identity provider could not verify these details")]
    VerificationFailed,
    #[error("verify your identity (tier 1) before your document")]
    IdentityNotVerified,
    #[error("this document number is already used by another person")]
    DocumentAlreadyUsed,
    #[error("this person's personal data was erased")]
    PersonErased,
    #[error("internal error: {0}")]
    Internal(String),
}

impl VerificationError {
    pub fn code(&self) -> &'static str {
        match self {
            VerificationError::LegalNameInvalid => "legal_name_invalid",
            VerificationError::DateOfBirthInvalid => "date_of_birth_invalid",
            VerificationError::AddressInvalid => "address_invalid",
            VerificationError::JurisdictionInvalid => "jurisdiction_invalid",
            VerificationError::SsnLast4Invalid => "ssn_last4_invalid",
            VerificationError::DocumentTypeInvalid => "document_type_invalid",
            VerificationError::DocumentNumberInvalid => "document_number_invalid",
            VerificationError::VerificationFailed => "verification_failed",
            VerificationError::IdentityNotVerified => "verification_required",
            VerificationError::DocumentAlreadyUsed => "document_already_used",
            VerificationError::PersonErased => "person_erased",
            VerificationError::Internal(_) => "internal_error",
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            VerificationError::LegalNameInvalid => Some("legal_name"),
            VerificationError::DateOfBirthInvalid => Some("date_of_birth"),
            VerificationError::AddressInvalid => Some("address"),
            VerificationError::JurisdictionInvalid => Some("address"),
            VerificationError::SsnLast4Invalid => Some("ssn_last4"),
            VerificationError::DocumentTypeInvalid => Some("document_type"),
            VerificationError::DocumentNumberInvalid | VerificationError::DocumentAlreadyUsed => {
                Some("document_number")
            }
            VerificationError::PersonErased
            | VerificationError::VerificationFailed
            | VerificationError::IdentityNotVerified
            | VerificationError::Internal(_) => None,
        }
    }
}

impl From<PaymentError> for VerificationError {
    fn from(error: PaymentError) -> VerificationError {
        VerificationError::Internal(error.to_string())
    }
}

/// The tier-1 details, parsed. Personal fields are secrets.
#[derive(Debug)]
pub struct IdentityClaim {
    pub legal_name: Secret<String>,
    pub date_of_birth: Secret<String>,
    pub address_line: Secret<String>,
    pub city: Secret<String>,
    pub postal_code: Secret<String>,
    pub residence: Jurisdiction,
    pub ssn_last4: Option<Secret<String>>,
}

/// The unparsed tier-1 details, as a request carries them.
pub struct IdentityInput<'a> {
    pub legal_name: &'a str,
    pub date_of_birth: &'a str,
    pub address_line: &'a str,
    pub city: &'a str,
    pub postal_code: &'a str,
    /// A US state code (`CA`) when `country` is `US`.
    pub state: Option<&'a str>,
    pub country: &'a str,
    pub ssn_last4: Option<&'a str>,
}

fn bounded(text: &str, max: usize) -> Option<Secret<String>> {
    let trimmed = text.trim();
    let ok = !trimmed.is_empty() && trimmed.chars().count() <= max;
    ok.then(|| Secret::new(trimmed.to_owned()))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn date_of_birth(text: &str, now_ns: u64) -> Option<Secret<String>> {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-';
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: i64 = text.get(5..7)?.parse().ok()?;
    let day: i64 = text.get(8..10)?.parse().ok()?;
    let days_in_month = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let valid = shape
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month[usize::try_from(month - 1).ok()?]
        && (leap || month != 2 || day != 29);
    let today = i64::try_from(now_ns / 86_400_000_000_000).ok()?;
    // The birthdays that make the person 18 and 130 (29 February counts as 1 March
    // in a common year).
    let adult_from = days_from_civil(year + AGE_YEARS_MIN, month, day);
    let too_old_from = days_from_civil(year + AGE_YEARS_MAX, month, day);
    let age_ok = (adult_from..too_old_from).contains(&today);
    (valid && age_ok).then(|| Secret::new(text.to_owned()))
}

impl IdentityClaim {
    pub fn parse(
        input: &IdentityInput<'_>,
        now_ns: u64,
    ) -> Result<IdentityClaim, VerificationError> {
        let legal_name = bounded(input.legal_name, LEGAL_NAME_CHARS_MAX)
            .ok_or(VerificationError::LegalNameInvalid)?;
        let date_of_birth = date_of_birth(input.date_of_birth, now_ns)
            .ok_or(VerificationError::DateOfBirthInvalid)?;
        let line = bounded(input.address_line, ADDRESS_LINE_CHARS_MAX);
        let city = bounded(input.city, ADDRESS_LINE_CHARS_MAX);
        let postal_code = bounded(input.postal_code, ADDRESS_LINE_CHARS_MAX);
        let (Some(address_line), Some(city), Some(postal_code)) = (line, city, postal_code) else {
            return Err(VerificationError::AddressInvalid);
        };
        let country = input.country.trim().to_ascii_uppercase();
        let residence = if country == "US" {
            let state = input.state.ok_or(VerificationError::JurisdictionInvalid)?;
            Jurisdiction::parse_residence(&format!("US-{}", state.trim()))
        } else {
            Jurisdiction::parse_residence(&country)
        }
        .ok_or(VerificationError::JurisdictionInvalid)?;
        let ssn_last4 = match input.ssn_last4 {
            Some(digits) if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(Secret::new(digits.to_owned()))
            }
            Some(_) => return Err(VerificationError::SsnLast4Invalid),
            None if country == "US" => return Err(VerificationError::SsnLast4Invalid),
            None => None,
        };
        Ok(IdentityClaim {
            legal_name,
            date_of_birth,
            address_line,
            city,
            postal_code,
            residence,
            ssn_last4,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Passport,
    DriversLicense,
    NationalId,
}

impl DocumentType {
    pub fn parse(text: &str) -> Result<DocumentType, VerificationError> {
        match text {
            "passport" => Ok(DocumentType::Passport),
            "drivers_license" => Ok(DocumentType::DriversLicense),
            "national_id" => Ok(DocumentType::NationalId),
            _ => Err(VerificationError::DocumentTypeInvalid),
        }
    }
}

/// The tier-2 details, parsed.
#[derive(Debug)]
pub struct IdentityDocument {
    pub document_type: DocumentType,
    pub number: Secret<String>,
}

impl IdentityDocument {
    pub fn parse(document_type: &str, number: &str) -> Result<IdentityDocument, VerificationError> {
        let document_type = DocumentType::parse(document_type)?;
        let ok = (1..=DOCUMENT_NUMBER_CHARS_MAX).contains(&number.len())
            && number.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok {
            return Err(VerificationError::DocumentNumberInvalid);
        }
        Ok(IdentityDocument {
            document_type,
            number: Secret::new(number.to_ascii_uppercase()),
        })
    }
}

/// What an identity-verification provider answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifierDecision {
    Verified,
    Failed,
}

/// An identity-verification provider, behind one trait like the card processors.
pub trait IdentityVerifier: Send + Sync {
    fn verify_identity(&self, person: PersonId, claim: &IdentityClaim) -> VerifierDecision;
    fn verify_document(&self, person: PersonId, document: &IdentityDocument) -> VerifierDecision;
}

/// The deterministic sandbox: SSN last 4 `0000` fails tier 1; a document number
/// ending `0000` fails tier 2; anything else passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SandboxVerifier;

impl IdentityVerifier for SandboxVerifier {
    fn verify_identity(&self, _: PersonId, claim: &IdentityClaim) -> VerifierDecision {
        match &claim.ssn_last4 {
            Some(digits) if digits.expose() == "0000" => VerifierDecision::Failed,
            _ => VerifierDecision::Verified,
        }
    }

    fn verify_document(&self, _: PersonId, document: &IdentityDocument) -> VerifierDecision {
        if document.number.expose().ends_with("0000") {
            VerifierDecision::Failed
        } else {
            VerifierDecision::Verified
        }
    }
}

/// A person's verification as stored (no personal fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationStatus {
    pub tier: Tier,
    /// `US-CA`, `GB`, …; none before tier 1.
    pub residence: Option<String>,
    pub identity_verified_at_ns: Option<u64>,
    pub document_verified_at_ns: Option<u64>,
}

impl VerificationStatus {
    pub const UNVERIFIED: VerificationStatus = VerificationStatus {
        tier: Tier::Unverified,
        residence: None,
        identity_verified_at_ns: None,
        document_verified_at_ns: None,
    };

    /// The key the licence table is read under for this person.
    pub fn jurisdiction(&self) -> Jurisdiction {
        self.residence
            .as_deref()
            .and_then(Jurisdiction::parse_residence)
            .unwrap_or_else(Jurisdiction::unverified)
    }
}

/// A person's verification; tier 0 when they never verified.
pub async fn status_of(
    reader: &SharedReader,
    person: PersonId,
) -> Result<VerificationStatus, PaymentError> {
    let stored =
        identity::read_document(reader, COLLECTION_VERIFICATIONS, person.to_string()).await?;
    let Some(body) = stored else {
        return Ok(VerificationStatus::UNVERIFIED);
    };
    serde_json::from_slice(&body).map_err(|error| internal("stored verification", error))
}

async fn store(
    ledger: &Ledger,
    person: PersonId,
    status: &VerificationStatus,
    mut rows: Vec<BusinessRow>,
) -> Result<(), VerificationError> {
    rows.push(BusinessRow::Document {
        collection: COLLECTION_VERIFICATIONS.to_owned(),
        key: person.to_string(),
        body: to_json(status)?,
    });
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(VerificationError::Internal)?;
    Ok(())
}

/// Tier 1: the provider checks the claim; on success the person's residence is set
/// and their tier is at least 1, effective for the next movement. The legal name is
/// then screened against the sanctions list ([`crate::sanctions`]): a hit freezes
/// the person and opens a case, and the answer says nothing of it (a person is never
/// told they are under review).
#[tracing::instrument(skip_all, fields(%person))]
#[allow(clippy::too_many_arguments)]
pub async fn verify_identity(
    ledger: &Ledger,
    reader: &SharedReader,
    verifier: &dyn IdentityVerifier,
    vault: &SharedVault,
    screener: &SharedScreener,
    person: PersonId,
    claim: IdentityClaim,
    now_ns: u64,
) -> Result<VerificationStatus, VerificationError> {
    if verifier.verify_identity(person, &claim) == VerifierDecision::Failed {
        tracing::info!("identity verification failed");
        return Err(VerificationError::VerificationFailed);
    }
    let record = crate::vault::keep_identity(vault, person, &claim).await?;
    let mut status = status_of(reader, person).await?;
    status.tier = status.tier.max(Tier::Identity);
    status.residence = Some(claim.residence.as_str().to_owned());
    status.identity_verified_at_ns = Some(now_ns);
    // Screened before the tier is stored: a screening that fails leaves the person
    // at their old tier, and a hit is frozen before the new tier exists.
    crate::sanctions::screen_person(
        ledger,
        reader,
        screener,
        person,
        &crate::sanctions::KeptName {
            record,
            name: claim.legal_name.clone(),
        },
        crate::sanctions::Trigger::IdentityVerification,
        now_ns,
    )
    .await
    .map_err(|error| VerificationError::Internal(error.to_string()))?;
    let subject = crate::sanctions::subject_row(person)
        .map_err(|error| VerificationError::Internal(error.to_string()))?;
    store(ledger, person, &status, vec![subject]).await?;
    tracing::info!(tier = status.tier.number(), "identity verified");
    Ok(status)
}

/// Tier 2: needs tier 1 first; the provider checks the document.
#[tracing::instrument(skip_all, fields(%person))]
pub async fn verify_document(
    ledger: &Ledger,
    reader: &SharedReader,
    verifier: &dyn IdentityVerifier,
    vault: &SharedVault,
    person: PersonId,
    document: IdentityDocument,
    now_ns: u64,
) -> Result<VerificationStatus, VerificationError> {
    let mut status = status_of(reader, person).await?;
    if status.tier < Tier::Identity {
        return Err(VerificationError::IdentityNotVerified);
    }
    crate::vault::check_document_unused(vault, person, &document).await?;
    if verifier.verify_document(person, &document) == VerifierDecision::Failed {
        tracing::info!("document verification failed");
        return Err(VerificationError::VerificationFailed);
    }
    crate::vault::keep_document(vault, person, &document).await?;
    status.tier = Tier::Document;
    status.document_verified_at_ns = Some(now_ns);
    store(ledger, person, &status, Vec::new()).await?;
    tracing::info!(tier = status.tier.number(), "document verified");
    Ok(status)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW_NS: u64 = 1_790_000_000 * 1_000_000_000; // 2026-09-21

    fn input<'a>(ssn: Option<&'a str>, dob: &'a str) -> IdentityInput<'a> {
        IdentityInput {
            legal_name: "Sara Haddad",
            date_of_birth: dob,
            address_line: "1 Main St",
            city: "Springfield",
            postal_code: "12345",
            state: Some("CA"),
            country: "US",
            ssn_last4: ssn,
        }
    }

    #[test]
    fn claims_parse_and_never_print_personal_fields() {
        let claim = IdentityClaim::parse(&input(Some("1234"), "1990-02-28"), NOW_NS).unwrap();
        assert_eq!(claim.residence.as_str(), "US-CA");
        let printed = format!("{claim:?}");
        assert!(
            !printed.contains("1234") && !printed.contains("1990"),
            "{printed}"
        );
        let cases = [
            (Some("12a4"), "1990-02-28", "ssn_last4_invalid"),
            (None, "1990-02-28", "ssn_last4_invalid"),
            (Some("1234"), "1990-02-30", "date_of_birth_invalid"),
            (Some("1234"), "2020-01-01", "date_of_birth_invalid"),
            (Some("1234"), "90-02-28", "date_of_birth_invalid"),
        ];
        for (ssn, dob, code) in cases {
            let error = IdentityClaim::parse(&input(ssn, dob), NOW_NS).unwrap_err();
            assert_eq!(error.code(), code, "{ssn:?} {dob}");
        }
    }

    #[test]
    fn the_sandbox_fails_zeros() {
        let person = PersonId::random();
        let claim = IdentityClaim::parse(&input(Some("0000"), "1990-02-28"), NOW_NS).unwrap();
        let sandbox = SandboxVerifier;
        assert_eq!(
            sandbox.verify_identity(person, &claim),
            VerifierDecision::Failed
        );
        let passport = IdentityDocument::parse("passport", "X1230000").unwrap();
        assert_eq!(
            sandbox.verify_document(person, &passport),
            VerifierDecision::Failed
        );
        let passport = IdentityDocument::parse("passport", "X1234567").unwrap();
        assert_eq!(
            sandbox.verify_document(person, &passport),
            VerifierDecision::Verified
        );
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }
}
