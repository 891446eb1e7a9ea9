//! Personal data in the vault: the use cases that put people's identity details,
//! cards and bank accounts into `mizan-vault`, and take them out again (a person's
//! export, an erasure, a payment processor's reveal).
//!
//! Nothing outside the vault holds a legal name, a date of birth, an address, an SSN
//! digit, a document number or a full card or bank number: the ledger's documents
//! keep tokens (`tok_card_…`, `tok_bank_…`) and last 4 digits. Every vault call
//! blocks on its store (SQLite or PostgreSQL), so it runs on the blocking pool.

use std::sync::Arc;

use mizan_core::Secret;
use mizan_ledger::{BusinessRow, Ledger};
use mizan_vault::{
    Accessor, CardNumber as VaultCardNumber, FieldKind, Reason, Role, Token, TokenId, Vault,
    VaultError,
};
use serde::{Deserialize, Serialize};

use crate::identity::{self, PersonId, SharedReader};
use crate::payments::{internal, to_json, PaymentError};
use crate::verification::{IdentityClaim, IdentityDocument, VerificationError};

/// The vault every request shares.
pub type SharedVault = Arc<Vault>;

/// Saved cards, one document per person.
pub const COLLECTION_SAVED_CARDS: &str = "saved_cards";
/// Most cards one person may save.
pub const SAVED_CARDS_MAX: usize = 10;
/// The actor name the payment service uses in the vault's access log.
const PAYMENT_SERVICE_ACTOR: &str = "mizan-funding";

/// The vault's id for a person: the same 128 bits as the platform's.
pub fn vault_person(person: PersonId) -> Result<mizan_vault::PersonId, VaultError> {
    mizan_vault::PersonId::new(person.get())
}

/// Runs one blocking vault call off the async workers.
pub async fn blocking<T, F>(vault: &SharedVault, call: F) -> Result<T, VaultError>
where
    T: Send + 'static,
    F: FnOnce(&Vault) -> Result<T, VaultError> + Send + 'static,
{
    let vault = vault.clone();
    tokio::task::spawn_blocking(move || call(&vault))
        .await
        .map_err(|_| VaultError::Store("a vault call panicked".into()))?
}

fn verification_error(error: VaultError) -> VerificationError {
    match error {
        VaultError::Erased => VerificationError::PersonErased,
        other => VerificationError::Internal(format!("vault: {}", other.code())),
    }
}

pub(crate) fn payment_error(error: VaultError) -> PaymentError {
    match error {
        VaultError::Erased => PaymentError::PersonErased,
        other => internal("vault", other.code()),
    }
}

/// Seals a verified tier-1 claim: legal name, date of birth, address (line, city,
/// postal code and residence on one record) and, when given, the SSN's last 4.
/// Answers the legal name's record (a sanctions case refers to it, never copies it).
pub async fn keep_identity(
    vault: &SharedVault,
    person: PersonId,
    claim: &IdentityClaim,
) -> Result<mizan_vault::RecordId, VerificationError> {
    let address = format!(
        "{}\n{}\n{}\n{}",
        claim.address_line.expose(),
        claim.city.expose(),
        claim.postal_code.expose(),
        claim.residence.as_str()
    );
    let mut fields = vec![
        (FieldKind::LegalName, claim.legal_name.clone()),
        (FieldKind::DateOfBirth, claim.date_of_birth.clone()),
        (FieldKind::Address, Secret::new(address)),
    ];
    if let Some(digits) = &claim.ssn_last4 {
        fields.push((FieldKind::SsnLast4, digits.clone()));
    }
    let owner = vault_person(person).map_err(verification_error)?;
    blocking(vault, move |vault| {
        let mut legal_name = None;
        for (kind, value) in &fields {
            let record = vault.put_person_field(owner, *kind, value.expose())?;
            if *kind == FieldKind::LegalName {
                legal_name = Some(record);
            }
        }
        legal_name.ok_or(VaultError::Invariant("a claim always has a legal name"))
    })
    .await
    .map_err(verification_error)
}

/// Refuses a document number another person already verified with, found by blind
/// index (nobody decrypts anything). Erased people never match.
pub async fn check_document_unused(
    vault: &SharedVault,
    person: PersonId,
    document: &IdentityDocument,
) -> Result<(), VerificationError> {
    let owner = vault_person(person).map_err(verification_error)?;
    let number = document.number.clone();
    let matches = blocking(vault, move |vault| {
        vault.find_by_blind_index(FieldKind::GovernmentId, number.expose())
    })
    .await
    .map_err(verification_error)?;
    if matches.iter().any(|found| found.person != owner) {
        return Err(VerificationError::DocumentAlreadyUsed);
    }
    Ok(())
}

/// Serializes "is this document number free? then seal it as mine": without it, two
/// people presenting the same number at once could both pass the check. One process
/// writes to a database (the ledger writer's lock), so a process-wide lock suffices.
static DOCUMENT_CLAIMS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Seals a verified document number (blind-indexed, so the next person presenting
/// it is refused). The check for another owner is repeated under
/// [`DOCUMENT_CLAIMS`], so of two people racing with one number exactly one keeps it.
pub async fn keep_document(
    vault: &SharedVault,
    person: PersonId,
    document: &IdentityDocument,
) -> Result<(), VerificationError> {
    let owner = vault_person(person).map_err(verification_error)?;
    let number = document.number.clone();
    let kept = blocking(vault, move |vault| {
        let _claim = DOCUMENT_CLAIMS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = vault.find_by_blind_index(FieldKind::GovernmentId, number.expose())?;
        if found.iter().any(|found| found.person != owner) {
            return Ok(false);
        }
        if found.iter().any(|found| found.person == owner) {
            return Ok(true);
        }
        vault
            .put_person_field(owner, FieldKind::GovernmentId, number.expose())
            .map(|_| true)
    })
    .await
    .map_err(verification_error)?;
    if kept {
        Ok(())
    } else {
        Err(VerificationError::DocumentAlreadyUsed)
    }
}

/// Tokenizes a card number for `person`, reusing their token when the vault holds
/// this number for them already. Luhn-invalid numbers are refused.
pub async fn tokenize_card(
    vault: &SharedVault,
    person: PersonId,
    number: &Secret<String>,
) -> Result<Token, PaymentError> {
    let card = VaultCardNumber::parse(number.expose()).map_err(|error| match error {
        VaultError::InvalidInput(_) => PaymentError::CardNumberInvalid,
        other => payment_error(other),
    })?;
    let owner = vault_person(person).map_err(payment_error)?;
    let number = number.clone();
    blocking(vault, move |vault| {
        match vault.find_token(owner, FieldKind::CardNumber, number.expose())? {
            Some(token) => Ok(token),
            None => vault.tokenize_card(owner, &card),
        }
    })
    .await
    .map_err(payment_error)
}

/// Tokenizes a US bank account (routing number then account number, as one value:
/// the token's last 4 are the account's) for `person`, one token per account.
pub async fn tokenize_bank_account(
    vault: &SharedVault,
    person: PersonId,
    routing: &str,
    account_number: &Secret<String>,
) -> Result<Token, PaymentError> {
    let joined = Secret::new(format!("{routing}{}", account_number.expose()));
    let account = mizan_vault::BankAccountNumber::parse(joined.expose())
        .map_err(|_| PaymentError::AccountNumberInvalid)?;
    let owner = vault_person(person).map_err(payment_error)?;
    blocking(vault, move |vault| {
        match vault.find_token(owner, FieldKind::BankAccountNumber, joined.expose())? {
            Some(token) => Ok(token),
            None => vault.tokenize_bank_account(owner, &account),
        }
    })
    .await
    .map_err(payment_error)
}

/// The full card number behind one of the person's tokens, revealed to the payment
/// service for one charge: the reveal and its reason (`purpose`, 8–500 characters)
/// are in the access log.
pub async fn reveal_card_for_charge(
    vault: &SharedVault,
    person: PersonId,
    token: &TokenId,
    purpose: &str,
) -> Result<Secret<String>, PaymentError> {
    let owner = vault_person(person).map_err(payment_error)?;
    let token = token.clone();
    let reason = purpose.to_owned();
    blocking(vault, move |vault| {
        let info = vault.token_info(&token)?;
        if info.person != owner || info.token.kind() != FieldKind::CardNumber {
            return Err(VaultError::NotFound("token"));
        }
        let accessor = Accessor::new(Role::PaymentProcessing, PAYMENT_SERVICE_ACTOR)?;
        vault.reveal_token(&accessor, &Reason::parse(&reason)?, &token)
    })
    .await
    .map_err(|error| match error {
        VaultError::NotFound(_) => PaymentError::CardNotFound,
        other => payment_error(other),
    })
}

/// The actor name sanctions screening uses in the vault's access log.
const SCREENING_ACTOR: &str = "mizan-sanctions";

/// The person's latest verified legal name, revealed to sanctions screening (as a
/// compliance officer; each reveal is in the access log). `None` when they never
/// verified or were erased.
pub async fn legal_name_for_screening(
    vault: &SharedVault,
    person: PersonId,
    purpose: &'static str,
) -> Result<Option<Secret<String>>, VaultError> {
    reveal_for_compliance(vault, person, FieldKind::LegalName, purpose).await
}

/// The person's latest value of `kind`, revealed to compliance (as
/// `mizan-sanctions` in the compliance-officer role, access-logged with `purpose`):
/// `None` when there is none or the person was erased.
pub async fn reveal_for_compliance(
    vault: &SharedVault,
    person: PersonId,
    kind: FieldKind,
    purpose: &'static str,
) -> Result<Option<Secret<String>>, VaultError> {
    let owner = vault_person(person)?;
    blocking(vault, move |vault| {
        let Some(record) = vault.latest_record(owner, kind)? else {
            return Ok(None);
        };
        let accessor = Accessor::new(Role::ComplianceOfficer, SCREENING_ACTOR)?;
        match vault.reveal(&accessor, &Reason::parse(purpose)?, record) {
            Ok(name) => Ok(Some(name)),
            Err(VaultError::Erased) => Ok(None),
            Err(other) => Err(other),
        }
    })
    .await
}

/// One saved card, as the person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCard {
    /// The card's token: the id to fund from or delete it by.
    pub id: String,
    pub last4: String,
    pub default: bool,
    pub saved_at_ns: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SavedCards {
    cards: Vec<SavedCard>,
}

/// The person's saved cards, the default first.
pub async fn saved_cards(
    reader: &SharedReader,
    person: PersonId,
) -> Result<Vec<SavedCard>, PaymentError> {
    let stored =
        identity::read_document(reader, COLLECTION_SAVED_CARDS, person.to_string()).await?;
    let Some(body) = stored else {
        return Ok(Vec::new());
    };
    let mut saved: SavedCards =
        serde_json::from_slice(&body).map_err(|error| internal("saved cards", error))?;
    saved.cards.sort_by_key(|card| !card.default);
    Ok(saved.cards)
}

async fn store_saved_cards(
    ledger: &Ledger,
    person: PersonId,
    cards: Vec<SavedCard>,
) -> Result<(), PaymentError> {
    let defaults = cards.iter().filter(|card| card.default).count();
    if defaults > 1 || cards.len() > SAVED_CARDS_MAX {
        return Err(internal("saved cards", "more than one default card"));
    }
    let row = BusinessRow::Document {
        collection: COLLECTION_SAVED_CARDS.to_owned(),
        key: person.to_string(),
        body: to_json(&SavedCards { cards })?,
    };
    crate::documents::submit_rows(ledger, vec![row])
        .await
        .map_err(|error| internal("saving cards", error))?;
    Ok(())
}

/// Saves a tokenized card as the person's default card (the previous default stays
/// saved, no longer default).
pub async fn save_default_card(
    ledger: &Ledger,
    reader: &SharedReader,
    person: PersonId,
    token: &Token,
    now_ns: u64,
) -> Result<SavedCard, PaymentError> {
    let mut cards = saved_cards(reader, person).await?;
    cards.retain(|card| card.id != token.token.as_str());
    if cards.len() >= SAVED_CARDS_MAX {
        return Err(PaymentError::SavedCardsFull);
    }
    for card in &mut cards {
        card.default = false;
    }
    let card = SavedCard {
        id: token.token.as_str().to_owned(),
        last4: token.last4.clone(),
        default: true,
        saved_at_ns: now_ns,
    };
    cards.insert(0, card.clone());
    store_saved_cards(ledger, person, cards).await?;
    Ok(card)
}

/// Forgets a saved card; the oldest remaining card becomes the default if the
/// deleted one was. The card's vault record stays (past fundings refer to it)
/// until the person is erased.
pub async fn delete_saved_card(
    ledger: &Ledger,
    reader: &SharedReader,
    person: PersonId,
    card_id: &str,
) -> Result<(), PaymentError> {
    let mut cards = saved_cards(reader, person).await?;
    let Some(position) = cards.iter().position(|card| card.id == card_id) else {
        return Err(PaymentError::CardNotFound);
    };
    let removed = cards.remove(position);
    if removed.default && !cards.iter().any(|card| card.default) {
        if let Some(oldest) = cards.iter_mut().min_by_key(|card| card.saved_at_ns) {
            oldest.default = true;
        }
    }
    store_saved_cards(ledger, person, cards).await
}

/// A saved card of the person's, by id (its token).
pub async fn saved_card(
    reader: &SharedReader,
    person: PersonId,
    card_id: &str,
) -> Result<SavedCard, PaymentError> {
    saved_cards(reader, person)
        .await?
        .into_iter()
        .find(|card| card.id == card_id)
        .ok_or(PaymentError::CardNotFound)
}

/// The person's own vault data as JSON (each reveal logged under `data_subject`).
pub async fn export_own(
    vault: &SharedVault,
    person: PersonId,
) -> Result<serde_json::Value, PaymentError> {
    let owner = vault_person(person).map_err(payment_error)?;
    let exported = blocking(vault, move |vault| {
        let reason = Reason::parse("data subject export (GET /v1/me/export)")?;
        vault.export_person(&Accessor::data_subject(owner), &reason, owner)
    })
    .await
    .map_err(payment_error)?;
    serde_json::from_str(exported.expose()).map_err(|error| internal("vault export", error))
}

/// Crypto-shreds the person's vault data: their data key is deleted, every record
/// becomes unreadable, their blind indexes are cleared and their saved cards are
/// forgotten. The ledger's money history is untouched. `false` if already erased.
pub async fn erase(
    ledger: &Ledger,
    vault: &SharedVault,
    person: PersonId,
) -> Result<bool, PaymentError> {
    let owner = vault_person(person).map_err(payment_error)?;
    let shredded = blocking(vault, move |vault| vault.shred_person(owner))
        .await
        .map_err(payment_error)?;
    store_saved_cards(ledger, person, Vec::new()).await?;
    Ok(shredded)
}

/// What an operator's reveal found.
#[derive(Debug)]
pub enum Revealed {
    Value(Secret<String>),
    /// The person has no field of this kind.
    Nothing,
    /// The operator's role may not see this kind (the denial is in the access log).
    Denied,
    /// The person was erased (logged too).
    Erased,
}

/// Reveals the person's newest field of `kind` to an operator acting under
/// `role`, for `reason` (8–500 characters): the vault writes its access log entry
/// (granted, denied or erased) before anything is shown.
pub async fn reveal_for_operator(
    vault: &SharedVault,
    person: PersonId,
    kind: FieldKind,
    role: Role,
    actor: &str,
    reason: &str,
) -> Result<Revealed, VaultError> {
    let owner = vault_person(person)?;
    let accessor = Accessor::new(role, actor)?;
    let reason = Reason::parse(reason)?;
    blocking(vault, move |vault| {
        let Some(record) = vault.latest_record(owner, kind)? else {
            return Ok(Revealed::Nothing);
        };
        match vault.reveal(&accessor, &reason, record) {
            Ok(value) => Ok(Revealed::Value(value)),
            Err(VaultError::PermissionDenied { .. }) => Ok(Revealed::Denied),
            Err(VaultError::Erased) => Ok(Revealed::Erased),
            Err(other) => Err(other),
        }
    })
    .await
}
