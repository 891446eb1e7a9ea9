//! Envelope encryption: one random data key per person seals that person's fields;
//! a master key version wraps the data key. Rotating the master key re-wraps 61-byte
//! data keys instead of re-encrypting every record, and deleting one data key
//! erases a person (crypto-shredding).
//!
//! Formats (all AES-256-GCM, random 96-bit nonces, 128-bit tags):
//!
//! - wrapped data key: `[1][nonce 12][ciphertext 32 + tag 16]` = 61 bytes, AAD =
//!   `"mizan-vault/data-key/1" ‖ person id (16, big-endian) ‖ master version (4, BE)`.
//!   A wrapped key copied to another person or relabelled with another version fails.
//! - sealed field: `[1][nonce 12][ciphertext + tag 16]`, AAD =
//!   `"mizan-vault/field/1" ‖ person id (16) ‖ record id (16) ‖ field kind code`.
//!   A ciphertext moved to another record, person or field kind fails to open.
//!
//! Random nonces are safe for far more than 2^32 seals per key; one person's data key
//! seals a handful of fields.

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, OsRng, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use mizan_core::Secret;
use zeroize::Zeroizing;

use crate::access::FieldKind;
use crate::keys::{random_key, KeyBytes, MasterKeyRing, KEY_BYTES};
use crate::{PersonId, RecordId, VaultError};

/// First byte of every wrapped key and sealed field; a new format gets a new number.
const FORMAT_VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
/// Bytes of a wrapped data key.
pub const WRAPPED_KEY_BYTES: usize = 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES;
/// Longest plaintext one field may hold, in bytes.
pub const FIELD_PLAINTEXT_BYTES_MAX: usize = 4_096;
/// Longest sealed field, in bytes.
pub const SEALED_FIELD_BYTES_MAX: usize = 1 + NONCE_BYTES + FIELD_PLAINTEXT_BYTES_MAX + TAG_BYTES;

const DATA_KEY_AAD_LABEL: &[u8] = b"mizan-vault/data-key/1";
const FIELD_AAD_LABEL: &[u8] = b"mizan-vault/field/1";

/// A person's data key, unwrapped: lives in memory only for one operation.
pub struct DataKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DataKey(***)")
    }
}

/// A data key as stored: wrapped under one master version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub master_version: u32,
    pub bytes: Vec<u8>,
}

impl DataKey {
    /// A fresh random data key, and its wrapping under the ring's current version.
    pub fn generate(
        ring: &MasterKeyRing,
        person: PersonId,
    ) -> Result<(DataKey, WrappedDataKey), VaultError> {
        DataKey::generate_under(ring, ring.current_version(), person)
    }

    /// A fresh random data key wrapped under master `version` (the newest version
    /// a rotation recorded, which may be newer than the ring's own newest).
    pub fn generate_under(
        ring: &MasterKeyRing,
        version: u32,
        person: PersonId,
    ) -> Result<(DataKey, WrappedDataKey), VaultError> {
        let bytes = random_key();
        let wrapped = wrap(ring, version, person, &bytes)?;
        Ok((DataKey::from_bytes(&bytes), wrapped))
    }

    fn from_bytes(bytes: &KeyBytes) -> DataKey {
        DataKey {
            cipher: Aes256Gcm::new(bytes.expose().as_slice().into()),
        }
    }

    /// Unwraps a stored data key with the master version it names.
    pub fn unwrap(
        ring: &MasterKeyRing,
        person: PersonId,
        wrapped: &WrappedDataKey,
    ) -> Result<DataKey, VaultError> {
        let bytes = unwrap_bytes(ring, person, wrapped)?;
        Ok(DataKey::from_bytes(&bytes))
    }

    /// Seals one field value, bound to its person, record and kind.
    pub fn seal(
        &self,
        person: PersonId,
        record: RecordId,
        kind: FieldKind,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        if plaintext.len() > FIELD_PLAINTEXT_BYTES_MAX {
            return Err(VaultError::InvalidInput(
                "a field value is at most 4096 bytes",
            ));
        }
        let aad = field_aad(person, record, kind);
        seal_with(&self.cipher, &aad, plaintext)
    }

    /// Opens a sealed field; any change of bytes, record, person or kind fails with
    /// [`VaultError::Tampered`].
    pub fn open(
        &self,
        person: PersonId,
        record: RecordId,
        kind: FieldKind,
        sealed: &[u8],
    ) -> Result<Secret<Zeroizing<Vec<u8>>>, VaultError> {
        if sealed.len() > SEALED_FIELD_BYTES_MAX {
            return Err(VaultError::Tampered);
        }
        let aad = field_aad(person, record, kind);
        open_with(&self.cipher, &aad, sealed)
            .map(|plaintext| Secret::new(Zeroizing::new(plaintext)))
            .ok_or(VaultError::Tampered)
    }
}

/// Moves a wrapped data key to master version `target`: unwrap, wrap again. The
/// data key itself, and so every record, stays as it is.
pub fn rewrap(
    ring: &MasterKeyRing,
    person: PersonId,
    wrapped: &WrappedDataKey,
    target: u32,
) -> Result<WrappedDataKey, VaultError> {
    let bytes = unwrap_bytes(ring, person, wrapped)?;
    wrap(ring, target, person, &bytes)
}

fn wrap(
    ring: &MasterKeyRing,
    version: u32,
    person: PersonId,
    bytes: &KeyBytes,
) -> Result<WrappedDataKey, VaultError> {
    let master = ring.master(version)?;
    let aad = data_key_aad(person, version);
    let sealed = seal_with(&master.cipher, &aad, bytes.expose().as_slice())?;
    if sealed.len() != WRAPPED_KEY_BYTES {
        return Err(VaultError::Invariant(
            "a wrapped data key has the wrong length",
        ));
    }
    Ok(WrappedDataKey {
        master_version: version,
        bytes: sealed,
    })
}

fn unwrap_bytes(
    ring: &MasterKeyRing,
    person: PersonId,
    wrapped: &WrappedDataKey,
) -> Result<KeyBytes, VaultError> {
    let version = wrapped.master_version;
    let master = ring.master(version)?;
    let aad = data_key_aad(person, version);
    let plaintext = Zeroizing::new(
        open_with(&master.cipher, &aad, &wrapped.bytes)
            .ok_or(VaultError::MasterKeyMismatch { version })?,
    );
    if plaintext.len() != KEY_BYTES {
        return Err(VaultError::Invariant(
            "an unwrapped data key has the wrong length",
        ));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
    bytes.copy_from_slice(&plaintext);
    Ok(Secret::new(bytes))
}

fn seal_with(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::Invariant("AES-GCM refused to encrypt"))?;
    let mut sealed = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
    sealed.push(FORMAT_VERSION);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// `None` for anything that does not authenticate, including an unknown format.
fn open_with(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] != FORMAT_VERSION {
        return None;
    }
    let (nonce, ciphertext) = sealed[1..].split_at(NONCE_BYTES);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
}

fn data_key_aad(person: PersonId, version: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DATA_KEY_AAD_LABEL.len() + 20);
    aad.extend_from_slice(DATA_KEY_AAD_LABEL);
    aad.extend_from_slice(&person.to_be_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn field_aad(person: PersonId, record: RecordId, kind: FieldKind) -> Vec<u8> {
    let code = kind.code().as_bytes();
    let mut aad = Vec::with_capacity(FIELD_AAD_LABEL.len() + 32 + code.len());
    aad.extend_from_slice(FIELD_AAD_LABEL);
    aad.extend_from_slice(&person.to_be_bytes());
    aad.extend_from_slice(&record.to_be_bytes());
    aad.extend_from_slice(code);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_key_is_bound_to_person_and_version() {
        let mut ring = MasterKeyRing::generate();
        let alice = PersonId::new(1).unwrap();
        let bob = PersonId::new(2).unwrap();
        let (_, wrapped) = DataKey::generate(&ring, alice).unwrap();
        assert_eq!(wrapped.bytes.len(), WRAPPED_KEY_BYTES);
        assert!(DataKey::unwrap(&ring, alice, &wrapped).is_ok());
        assert!(matches!(
            DataKey::unwrap(&ring, bob, &wrapped),
            Err(VaultError::MasterKeyMismatch { version: 1 })
        ));
        ring.add_master_version().unwrap();
        let relabelled = WrappedDataKey {
            master_version: 2,
            bytes: wrapped.bytes.clone(),
        };
        assert!(DataKey::unwrap(&ring, alice, &relabelled).is_err());
        let moved = rewrap(&ring, alice, &wrapped, 2).unwrap();
        assert_eq!(moved.master_version, 2);
        assert!(DataKey::unwrap(&ring, alice, &moved).is_ok());
    }
}
