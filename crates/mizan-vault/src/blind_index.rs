//! Blind indexes: a keyed HMAC-SHA256 of a normalized value, stored beside the
//! ciphertext, so an exact lookup ("is this government id already registered?")
//! needs no decryption.
//!
//! Key: HKDF-SHA256 from the ring's blind-index key (its own version line `index.N`,
//! never a master key), one subkey per field kind, so equal strings in different
//! kinds index differently. Master rotation leaves indexes untouched; the index
//! version is stored with each index, and lookups try every loaded index version.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::access::FieldKind;
use crate::keys::{KeyBytes, MasterKeyRing, KEY_BYTES};
use crate::VaultError;

const HKDF_SALT: &[u8] = b"mizan-vault/blind-index/1";

/// A blind index and the index-key version that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlindIndex {
    pub index_version: u32,
    pub bytes: [u8; 32],
}

/// The canonical form that equal values share: government ids, card and bank numbers
/// lose spaces, hyphens and dots and are upper-cased ("123-45-6789" = "123456789").
pub fn normalize(kind: FieldKind, value: &str) -> Zeroizing<String> {
    let canonical = match kind {
        FieldKind::GovernmentId | FieldKind::CardNumber | FieldKind::BankAccountNumber => value
            .chars()
            .filter(|c| !(c.is_whitespace() || *c == '-' || *c == '.'))
            .flat_map(char::to_uppercase)
            .collect(),
        FieldKind::LegalName
        | FieldKind::DateOfBirth
        | FieldKind::Address
        | FieldKind::SsnLast4
        | FieldKind::ServiceSecret => value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase(),
    };
    Zeroizing::new(canonical)
}

/// The blind index under the ring's newest index key.
pub fn compute(
    ring: &MasterKeyRing,
    kind: FieldKind,
    value: &str,
) -> Result<BlindIndex, VaultError> {
    let (version, key) = ring.current_index_key()?;
    compute_with(version, key, kind, value)
}

/// The blind index of `value` under every loaded index version, for lookups.
pub fn compute_all(
    ring: &MasterKeyRing,
    kind: FieldKind,
    value: &str,
) -> Result<Vec<BlindIndex>, VaultError> {
    ring.index_keys()
        .map(|(version, key)| compute_with(version, key, kind, value))
        .collect()
}

fn compute_with(
    version: u32,
    key: &KeyBytes,
    kind: FieldKind,
    value: &str,
) -> Result<BlindIndex, VaultError> {
    let mut subkey = Zeroizing::new([0u8; KEY_BYTES]);
    Hkdf::<Sha256>::new(Some(HKDF_SALT), key.expose().as_slice())
        .expand(kind.code().as_bytes(), subkey.as_mut_slice())
        .map_err(|_| VaultError::Invariant("HKDF refused a 32-byte output"))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(subkey.as_slice())
        .map_err(|_| VaultError::Invariant("HMAC refused a 32-byte key"))?;
    mac.update(normalize(kind, value).as_bytes());
    Ok(BlindIndex {
        index_version: version,
        bytes: mac.finalize().into_bytes().into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_equal_values_share_an_index_and_kinds_do_not() {
        let mut ring = MasterKeyRing::generate();
        let a = compute(&ring, FieldKind::GovernmentId, "123-45-6789").unwrap();
        let b = compute(&ring, FieldKind::GovernmentId, " 123 45 6789").unwrap();
        assert_eq!(a, b);
        let other_kind = compute(&ring, FieldKind::BankAccountNumber, "123456789").unwrap();
        assert_ne!(a.bytes, other_kind.bytes);
        ring.add_master_version().unwrap();
        assert_eq!(
            compute(&ring, FieldKind::GovernmentId, "123456789").unwrap(),
            a
        );
    }
}
