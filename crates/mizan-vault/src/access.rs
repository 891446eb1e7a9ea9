//! Who may reveal what: roles, the kinds of field the vault holds, the permission
//! matrix, reveal reasons and the entries of the append-only access log.
//!
//! The matrix is an exhaustive `match` on (role, field kind): adding a role or a field
//! kind breaks the build here until someone decides what it may see.

use std::fmt;

use crate::{PersonId, RecordId, VaultError};

/// The kinds of sensitive field the vault seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldKind {
    LegalName,
    DateOfBirth,
    Address,
    /// Government id numbers: SSN, national id, passport, tax id.
    GovernmentId,
    /// The last 4 digits of a US SSN: too few digits to index (10,000 values), so
    /// apart from [`FieldKind::GovernmentId`], which is blind-indexed.
    SsnLast4,
    /// A full card number (PAN); stored only through `Vault::tokenize_card`.
    CardNumber,
    /// A full bank account number or IBAN; stored only through
    /// `Vault::tokenize_bank_account`.
    BankAccountNumber,
    /// A secret the platform itself computes HMACs with: a person's TOTP seed, an
    /// app's webhook signing secret. No role may reveal it; the platform uses it
    /// inside the vault through `Vault::use_service_secret`.
    ServiceSecret,
}

impl FieldKind {
    pub const ALL: [FieldKind; 8] = [
        FieldKind::LegalName,
        FieldKind::DateOfBirth,
        FieldKind::Address,
        FieldKind::GovernmentId,
        FieldKind::SsnLast4,
        FieldKind::CardNumber,
        FieldKind::BankAccountNumber,
        FieldKind::ServiceSecret,
    ];

    /// Stable code, stored in the database and bound into every ciphertext's AAD.
    pub fn code(self) -> &'static str {
        match self {
            FieldKind::LegalName => "legal_name",
            FieldKind::DateOfBirth => "date_of_birth",
            FieldKind::Address => "address",
            FieldKind::GovernmentId => "government_id",
            FieldKind::SsnLast4 => "ssn_last4",
            FieldKind::CardNumber => "card_number",
            FieldKind::BankAccountNumber => "bank_account_number",
            FieldKind::ServiceSecret => "service_secret",
        }
    }

    pub fn parse(code: &str) -> Result<FieldKind, VaultError> {
        FieldKind::ALL
            .into_iter()
            .find(|kind| kind.code() == code)
            .ok_or(VaultError::InvalidInput("unknown field kind"))
    }

    /// Whether the vault keeps a blind index for exact-match lookups. Only
    /// high-entropy identifiers: an index over names or birth dates would let anyone
    /// with the index key confirm guesses cheaply and adds little lookup value.
    pub fn blind_indexed(self) -> bool {
        match self {
            FieldKind::GovernmentId | FieldKind::CardNumber | FieldKind::BankAccountNumber => true,
            FieldKind::LegalName
            | FieldKind::DateOfBirth
            | FieldKind::Address
            | FieldKind::SsnLast4
            | FieldKind::ServiceSecret => false,
        }
    }

    /// Card and bank numbers only enter the vault as tokens (with last 4 digits).
    pub fn tokenized(self) -> bool {
        match self {
            FieldKind::CardNumber | FieldKind::BankAccountNumber => true,
            FieldKind::LegalName
            | FieldKind::DateOfBirth
            | FieldKind::Address
            | FieldKind::GovernmentId
            | FieldKind::SsnLast4
            | FieldKind::ServiceSecret => false,
        }
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

/// The roles that may ask the vault for anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The person the data is about, seeing their own data (export, profile).
    DataSubject,
    /// Customer support verifying who is on the line.
    SupportAgent,
    /// KYC/AML review, regulator requests, suspicious-activity reports.
    ComplianceOfficer,
    /// The service that sends card and bank numbers to processors and banks.
    PaymentProcessing,
    /// Product analytics: never reads vault data.
    Analytics,
    /// Advertising: never reads vault data.
    Advertising,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::DataSubject,
        Role::SupportAgent,
        Role::ComplianceOfficer,
        Role::PaymentProcessing,
        Role::Analytics,
        Role::Advertising,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::DataSubject => "data_subject",
            Role::SupportAgent => "support_agent",
            Role::ComplianceOfficer => "compliance_officer",
            Role::PaymentProcessing => "payment_processing",
            Role::Analytics => "analytics",
            Role::Advertising => "advertising",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

/// The permission matrix: may `role` reveal a field of `kind` in full?
///
/// Full card numbers go to payment processing only (PCI DSS: need to know); people
/// and support see the last 4 digits, which the token carries without a reveal.
pub fn may_reveal(role: Role, kind: FieldKind) -> bool {
    use FieldKind::*;
    match role {
        Role::DataSubject => match kind {
            LegalName | DateOfBirth | Address | GovernmentId | SsnLast4 => true,
            CardNumber | BankAccountNumber | ServiceSecret => false,
        },
        Role::SupportAgent => match kind {
            LegalName | DateOfBirth | Address => true,
            GovernmentId | SsnLast4 | CardNumber | BankAccountNumber | ServiceSecret => false,
        },
        Role::ComplianceOfficer => match kind {
            LegalName | DateOfBirth | Address | GovernmentId | SsnLast4 | BankAccountNumber => true,
            CardNumber | ServiceSecret => false,
        },
        Role::PaymentProcessing => match kind {
            LegalName | CardNumber | BankAccountNumber => true,
            DateOfBirth | Address | GovernmentId | SsnLast4 | ServiceSecret => false,
        },
        Role::Analytics | Role::Advertising => false,
    }
}

/// Longest actor id, in bytes.
pub const ACTOR_BYTES_MAX: usize = 128;
/// Shortest reveal reason, in characters: "because" is not a reason.
pub const REASON_CHARS_MIN: usize = 8;
/// Longest reveal reason, in characters.
pub const REASON_CHARS_MAX: usize = 500;

/// Who is asking: a role and the id of the staff member, service or person acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessor {
    role: Role,
    actor: String,
}

impl Accessor {
    /// `actor` names who acts (staff id, service name, or for [`Role::DataSubject`]
    /// the person id): 1 to [`ACTOR_BYTES_MAX`] printable ASCII bytes.
    pub fn new(role: Role, actor: &str) -> Result<Accessor, VaultError> {
        if actor.is_empty()
            || actor.len() > ACTOR_BYTES_MAX
            || !actor.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(VaultError::InvalidInput(
                "actor must be 1 to 128 printable ASCII characters",
            ));
        }
        Ok(Accessor {
            role,
            actor: actor.to_owned(),
        })
    }

    /// The person themself.
    pub fn data_subject(person: PersonId) -> Accessor {
        Accessor {
            role: Role::DataSubject,
            actor: person.to_string(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The full check: the role's permission, and a data subject only for themself.
    pub fn check(&self, person: PersonId, kind: FieldKind) -> Result<(), VaultError> {
        let own_data = match self.role {
            Role::DataSubject => self.actor == person.to_string(),
            Role::SupportAgent
            | Role::ComplianceOfficer
            | Role::PaymentProcessing
            | Role::Analytics
            | Role::Advertising => true,
        };
        if own_data && may_reveal(self.role, kind) {
            Ok(())
        } else {
            Err(VaultError::PermissionDenied {
                role: self.role,
                field: kind,
            })
        }
    }
}

/// Why a value is revealed, written to the access log with the reveal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// [`REASON_CHARS_MIN`] to [`REASON_CHARS_MAX`] characters, no control characters.
    pub fn parse(text: &str) -> Result<Reason, VaultError> {
        let text = text.trim();
        let characters = text.chars().count();
        if !(REASON_CHARS_MIN..=REASON_CHARS_MAX).contains(&characters) {
            return Err(VaultError::InvalidInput(
                "a reason must be 8 to 500 characters",
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(VaultError::InvalidInput(
                "a reason must not contain control characters",
            ));
        }
        Ok(Reason(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What happened to one reveal request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessOutcome {
    Granted,
    Denied,
    /// Permitted, but the person was crypto-shredded: nothing was revealed.
    Erased,
}

impl AccessOutcome {
    pub fn code(self) -> &'static str {
        match self {
            AccessOutcome::Granted => "granted",
            AccessOutcome::Denied => "denied",
            AccessOutcome::Erased => "erased",
        }
    }

    pub fn parse(code: &str) -> Result<AccessOutcome, VaultError> {
        match code {
            "granted" => Ok(AccessOutcome::Granted),
            "denied" => Ok(AccessOutcome::Denied),
            "erased" => Ok(AccessOutcome::Erased),
            _ => Err(VaultError::Invariant("unknown access outcome in the log")),
        }
    }
}

/// One line of the append-only access log. Holds ids and the reason, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// Assigned by the store, strictly increasing.
    pub sequence: u64,
    pub at_ns: u64,
    pub role: String,
    pub actor: String,
    pub person: PersonId,
    pub record: RecordId,
    pub field: String,
    pub reason: String,
    pub outcome: AccessOutcome,
}
