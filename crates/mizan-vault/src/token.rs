//! Card and bank numbers, and the random tokens that stand for them everywhere
//! outside the vault.
//!
//! A token is `tok_card_` or `tok_bank_` and 32 random hex digits: it carries no
//! information about the number (unlike format-preserving schemes), so a leaked
//! token table reveals nothing. The last 4 digits travel beside it for display.
//!
//! [`Cvv`] has no `Serialize`, no `Clone`, no `Display` and no path into the vault:
//! it exists only to be handed to a processor within one authorization and is
//! zeroed on drop. PCI DSS forbids storing it after authorization, and the type
//! makes storing it a compile error rather than a review comment.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use mizan_core::Secret;
use zeroize::{Zeroize, Zeroizing};

use crate::access::FieldKind;
use crate::VaultError;

const CARD_DIGITS_MIN: usize = 12;
const CARD_DIGITS_MAX: usize = 19;
const BANK_CHARACTERS_MIN: usize = 6;
/// IBAN's maximum length.
const BANK_CHARACTERS_MAX: usize = 34;
/// Longest raw input accepted before normalizing (spaces and hyphens included).
const RAW_NUMBER_BYTES_MAX: usize = 64;
const TOKEN_RANDOM_BYTES: usize = 16;

/// A full card number (PAN) that passed the Luhn check. Masked in `Debug`.
pub struct CardNumber(Secret<Zeroizing<String>>);

impl CardNumber {
    /// Digits with optional spaces or hyphens; 12 to 19 digits; Luhn-valid.
    pub fn parse(text: &str) -> Result<CardNumber, VaultError> {
        let digits = digits_only(text)?;
        if !(CARD_DIGITS_MIN..=CARD_DIGITS_MAX).contains(&digits.len()) {
            return Err(VaultError::InvalidInput(
                "a card number has 12 to 19 digits",
            ));
        }
        if !luhn_valid(&digits) {
            return Err(VaultError::InvalidInput("card number fails the Luhn check"));
        }
        Ok(CardNumber(Secret::new(digits)))
    }

    pub fn last4(&self) -> String {
        last4(self.0.expose())
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CardNumber(****{})", self.last4())
    }
}

/// A bank account number or IBAN: 6 to 34 letters and digits. Masked in `Debug`.
pub struct BankAccountNumber(Secret<Zeroizing<String>>);

impl BankAccountNumber {
    pub fn parse(text: &str) -> Result<BankAccountNumber, VaultError> {
        if text.len() > RAW_NUMBER_BYTES_MAX {
            return Err(VaultError::InvalidInput(
                "a bank account number is too long",
            ));
        }
        let canonical: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !(c.is_whitespace() || *c == '-'))
                .flat_map(char::to_uppercase)
                .collect(),
        );
        if !(BANK_CHARACTERS_MIN..=BANK_CHARACTERS_MAX).contains(&canonical.len())
            || !canonical.bytes().all(|byte| byte.is_ascii_alphanumeric())
        {
            return Err(VaultError::InvalidInput(
                "a bank account number has 6 to 34 letters and digits",
            ));
        }
        Ok(BankAccountNumber(Secret::new(canonical)))
    }

    pub fn last4(&self) -> String {
        last4(self.0.expose())
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for BankAccountNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "BankAccountNumber(****{})", self.last4())
    }
}

/// A card verification value. Deliberately not `Serialize`, `Clone` or `Display`,
/// and no vault method takes one: it can't be stored. Zeroed on drop.
///
/// ```compile_fail
/// fn storable<T: serde::Serialize>() {}
/// storable::<mizan_vault::Cvv>(); // error: `Cvv` is not `Serialize`
/// ```
pub struct Cvv(Zeroizing<String>);

impl Cvv {
    pub fn parse(text: &str) -> Result<Cvv, VaultError> {
        let text = text.trim();
        if !(3..=4).contains(&text.len()) || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(VaultError::InvalidInput("a CVV has 3 or 4 digits"));
        }
        Ok(Cvv(Zeroizing::new(text.to_owned())))
    }

    /// The digits, for the one authorization request they exist for.
    pub fn expose_for_authorization(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cvv {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Cvv(***)")
    }
}

/// A token standing for a card or bank number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct TokenId(String);

impl TokenId {
    /// A new random token for a field of `kind` (card or bank number).
    pub(crate) fn generate(kind: FieldKind) -> Result<TokenId, VaultError> {
        let prefix = token_prefix(kind)?;
        let mut random = [0u8; TOKEN_RANDOM_BYTES];
        OsRng.fill_bytes(&mut random);
        Ok(TokenId(format!("{prefix}{}", hex::encode(random))))
    }

    /// `tok_card_` or `tok_bank_` and 32 lowercase hex digits.
    pub fn parse(text: &str) -> Result<TokenId, VaultError> {
        let random = text
            .strip_prefix("tok_card_")
            .or_else(|| text.strip_prefix("tok_bank_"))
            .ok_or(VaultError::InvalidInput(
                "a token starts with tok_card_ or tok_bank_",
            ))?;
        if random.len() != 2 * TOKEN_RANDOM_BYTES
            || !random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(VaultError::InvalidInput(
                "a token ends in 32 lowercase hex digits",
            ));
        }
        Ok(TokenId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The kind of number the token stands for, read from its prefix.
    pub fn kind(&self) -> FieldKind {
        if self.0.starts_with("tok_bank_") {
            FieldKind::BankAccountNumber
        } else {
            FieldKind::CardNumber
        }
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

fn token_prefix(kind: FieldKind) -> Result<&'static str, VaultError> {
    match kind {
        FieldKind::CardNumber => Ok("tok_card_"),
        FieldKind::BankAccountNumber => Ok("tok_bank_"),
        FieldKind::LegalName
        | FieldKind::DateOfBirth
        | FieldKind::Address
        | FieldKind::GovernmentId
        | FieldKind::SsnLast4
        | FieldKind::ServiceSecret => Err(VaultError::InvalidInput(
            "only card and bank numbers are tokenized",
        )),
    }
}

/// Luhn (mod 10) check over ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (position, byte) in digits.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return false;
        }
        let mut digit = u32::from(byte - b'0');
        if position % 2 == 1 {
            digit *= 2;
            if digit > 9 {
                digit -= 9;
            }
        }
        sum += digit;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

fn digits_only(text: &str) -> Result<Zeroizing<String>, VaultError> {
    if text.len() > RAW_NUMBER_BYTES_MAX {
        return Err(VaultError::InvalidInput("a card number is too long"));
    }
    let mut digits = Zeroizing::new(String::with_capacity(CARD_DIGITS_MAX));
    for character in text.chars() {
        match character {
            '0'..='9' => digits.push(character),
            ' ' | '-' => {}
            _ => {
                digits.zeroize();
                return Err(VaultError::InvalidInput(
                    "a card number has only digits, spaces and hyphens",
                ));
            }
        }
    }
    Ok(digits)
}

fn last4(value: &str) -> String {
    let start = value.len().saturating_sub(4);
    value.get(start..).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_last4() {
        let card = CardNumber::parse("4242 4242 4242 4242").unwrap();
        assert_eq!(card.last4(), "4242");
        assert_eq!(format!("{card:?}"), "CardNumber(****4242)");
        assert!(CardNumber::parse("4242 4242 4242 4241").is_err());
        assert!(CardNumber::parse("4242x").is_err());
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        let bank = BankAccountNumber::parse("de89 3704 0044 0532 0130 00").unwrap();
        assert_eq!(bank.last4(), "3000");
        assert!(BankAccountNumber::parse("12").is_err());
        let cvv = Cvv::parse("123").unwrap();
        assert_eq!(format!("{cvv:?}"), "Cvv(***)");
        assert_eq!(cvv.expose_for_authorization(), "123");
    }

    #[test]
    fn tokens_round_trip_and_carry_their_kind() {
        let card = TokenId::generate(FieldKind::CardNumber).unwrap();
        assert!(card.as_str().starts_with("tok_card_"));
        assert_eq!(TokenId::parse(card.as_str()).unwrap(), card);
        assert_eq!(card.kind(), FieldKind::CardNumber);
        let bank = TokenId::generate(FieldKind::BankAccountNumber).unwrap();
        assert_eq!(bank.kind(), FieldKind::BankAccountNumber);
        assert!(TokenId::generate(FieldKind::LegalName).is_err());
        assert!(TokenId::parse("tok_card_XYZ").is_err());
    }
}
