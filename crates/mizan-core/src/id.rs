//! Typed 128-bit ids. One newtype per entity, so an account id can never be passed
//! where a transfer id is expected.
//!
//! Ids are written as 32 lowercase hex digits, or in the hyphenated UUID form; both
//! parse. Zero and `u128::MAX` are never valid ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id is 32 hex digits (optionally with UUID hyphens)")]
    Malformed,
    #[error("an id must not be zero or all ones")]
    Reserved,
}

/// Parses 32 hex digits, with or without UUID hyphens, into a u128.
pub fn parse_u128_hex(text: &str) -> Result<u128, IdError> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    let hyphens = text.len() - digits.len();
    if digits.len() != 32 || !(hyphens == 0 || hyphens == 4) {
        return Err(IdError::Malformed);
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdError::Malformed);
    }
    u128::from_str_radix(&digits, 16).map_err(|_| IdError::Malformed)
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            /// Wraps a raw value. Zero and `u128::MAX` are rejected.
            pub fn new(raw: u128) -> Result<Self, IdError> {
                if raw == 0 || raw == u128::MAX {
                    return Err(IdError::Reserved);
                }
                Ok(Self(raw))
            }

            /// Wraps a raw value read back from storage or from a transfer field whose
            /// validity the ledger checks itself (zero there means "not given").
            pub const fn from_raw(raw: u128) -> Self {
                Self(raw)
            }

            pub const fn get(self) -> u128 {
                self.0
            }

            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            pub fn to_be_bytes(self) -> [u8; 16] {
                self.0.to_be_bytes()
            }

            pub fn from_be_bytes(bytes: [u8; 16]) -> Self {
                Self(u128::from_be_bytes(bytes))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:032x})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::new(parse_u128_hex(text)?)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// The id of a ledger account, chosen by the caller.
    AccountId
);
id_type!(
    /// The id of a ledger transfer, chosen by the caller; re-submitting it is a no-op.
    TransferId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_in_both_forms() {
        let id = AccountId::new(0x0123_4567_89ab_cdef_0011_2233_4455_6677).unwrap();
        let text = id.to_string();
        assert_eq!(text, "0123456789abcdef0011223344556677");
        assert_eq!(text.parse::<AccountId>().unwrap(), id);
        let hyphenated = "01234567-89ab-cdef-0011-223344556677";
        assert_eq!(hyphenated.parse::<AccountId>().unwrap(), id);
    }

    #[test]
    fn malformed_and_reserved_ids_are_rejected() {
        assert_eq!("xyz".parse::<TransferId>(), Err(IdError::Malformed));
        assert_eq!("0123".parse::<TransferId>(), Err(IdError::Malformed));
        assert_eq!(
            "0123456789abcdef001122334455667g".parse::<TransferId>(),
            Err(IdError::Malformed)
        );
        assert_eq!(
            "00000000000000000000000000000000".parse::<TransferId>(),
            Err(IdError::Reserved)
        );
        assert_eq!(
            "ffffffffffffffffffffffffffffffff".parse::<TransferId>(),
            Err(IdError::Reserved)
        );
    }
}
