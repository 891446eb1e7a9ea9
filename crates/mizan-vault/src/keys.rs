//! The key ring: versioned master keys that wrap data keys, and the separately
//! versioned blind-index keys.
//!
//! Master keys never enter the database. They come from a key file (or the
//! `MIZAN_MASTER_KEYS` environment variable) in this line format:
//!
//! ```text
//! # comments and blank lines are ignored
//! master.1=<32 bytes as 64 hex digits or standard base64>
//! master.2=<…>
//! index.1=<…>
//! ```
//!
//! A bare `N=<key>` line means `master.N`. In the environment variable, entries may
//! also be separated by `,` or `;`.
//!
//! Blind-index keys are deliberately *not* derived from a master version: a master
//! rotation must not change any blind index, or every duplicate lookup would miss
//! until all records were re-indexed, and master version 1 could never retire.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use mizan_core::Secret;
use zeroize::Zeroizing;

use crate::VaultError;

/// Bytes in every master, index and data key (AES-256, HMAC-SHA256).
pub const KEY_BYTES: usize = 32;
/// Most master key versions one ring holds; retire old ones.
pub const MASTER_KEY_VERSIONS_MAX: usize = 1_000;
/// Most blind-index key versions one ring holds.
pub const INDEX_KEY_VERSIONS_MAX: usize = 16;
/// Largest key file accepted, in bytes.
pub const KEY_FILE_BYTES_MAX: u64 = 1 << 20;
/// Environment variable holding key entries when no key file is given.
pub const MASTER_KEYS_ENV: &str = "MIZAN_MASTER_KEYS";

/// 256 secret bits, masked in `Debug`, zeroed on drop.
pub(crate) type KeyBytes = Secret<Zeroizing<[u8; KEY_BYTES]>>;

/// Fresh random key bytes from the operating system.
pub(crate) fn random_key() -> KeyBytes {
    let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
    OsRng.fill_bytes(bytes.as_mut_slice());
    Secret::new(bytes)
}

/// A master key of one version, with its AES cipher expanded once (the round keys
/// are zeroed on drop by the `aes/zeroize` feature).
#[derive(Clone)]
pub(crate) struct MasterKey {
    bytes: KeyBytes,
    pub(crate) cipher: Aes256Gcm,
}

impl MasterKey {
    fn new(bytes: KeyBytes) -> MasterKey {
        let cipher = Aes256Gcm::new(bytes.expose().as_slice().into());
        MasterKey { bytes, cipher }
    }
}

/// Every master and blind-index key version the process knows.
#[derive(Clone, Default)]
pub struct MasterKeyRing {
    master: BTreeMap<u32, MasterKey>,
    index: BTreeMap<u32, KeyBytes>,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MasterKeyRing")
            .field("master_versions", &self.master.keys().collect::<Vec<_>>())
            .field("index_versions", &self.index.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl MasterKeyRing {
    /// A new ring with master version 1 and index version 1, both random.
    pub fn generate() -> MasterKeyRing {
        let mut ring = MasterKeyRing::default();
        ring.master.insert(1, MasterKey::new(random_key()));
        ring.index.insert(1, random_key());
        ring
    }

    /// Parses the key file format (see the module docs).
    pub fn parse(text: &Secret<String>) -> Result<MasterKeyRing, VaultError> {
        let mut ring = MasterKeyRing::default();
        let entries = text
            .expose()
            .split(['\n', ',', ';'])
            .map(str::trim)
            .filter(|entry| !entry.is_empty() && !entry.starts_with('#'));
        for entry in entries {
            let (name, value) = entry
                .split_once('=')
                .ok_or_else(|| VaultError::KeyRing("an entry is not `name=key`".into()))?;
            let (is_index, version_text) = match name.trim() {
                name if name.starts_with("master.") => (false, &name["master.".len()..]),
                name if name.starts_with("index.") => (true, &name["index.".len()..]),
                name => (false, name),
            };
            let version: u32 = version_text
                .parse()
                .map_err(|_| VaultError::KeyRing(format!("bad key version `{version_text}`")))?;
            if version == 0 {
                return Err(VaultError::KeyRing("key versions start at 1".into()));
            }
            let bytes = decode_key(value.trim())?;
            let duplicate = if is_index {
                ring.index.insert(version, bytes).is_some()
            } else {
                ring.master.insert(version, MasterKey::new(bytes)).is_some()
            };
            if duplicate {
                return Err(VaultError::KeyRing(format!(
                    "key version {version} given twice"
                )));
            }
        }
        ring.check()?;
        Ok(ring)
    }

    /// Reads a key file. The file must be at most [`KEY_FILE_BYTES_MAX`] bytes.
    pub fn from_key_file(path: &Path) -> Result<MasterKeyRing, VaultError> {
        let metadata = std::fs::metadata(path)
            .map_err(|error| VaultError::KeyRing(format!("{}: {error}", path.display())))?;
        if metadata.len() > KEY_FILE_BYTES_MAX {
            return Err(VaultError::KeyRing(format!(
                "{} is too large",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|error| VaultError::KeyRing(format!("{}: {error}", path.display())))?;
        MasterKeyRing::parse(&Secret::new(text))
    }

    /// Reads [`MASTER_KEYS_ENV`]; `Ok(None)` when it is unset.
    pub fn from_env() -> Result<Option<MasterKeyRing>, VaultError> {
        match std::env::var(MASTER_KEYS_ENV) {
            Ok(text) => MasterKeyRing::parse(&Secret::new(text)).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(VaultError::KeyRing(format!(
                "{MASTER_KEYS_ENV} is not valid UTF-8"
            ))),
        }
    }

    /// The key file text for this ring. Write it somewhere the database never goes.
    pub fn to_key_file(&self) -> Secret<String> {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut text =
            String::from("# Mizan vault keys: never store them in the database or its backups.\n");
        for (version, key) in &self.master {
            let encoded = Zeroizing::new(engine.encode(key.bytes.expose().as_slice()));
            text.push_str(&format!("master.{version}={}\n", encoded.as_str()));
        }
        for (version, key) in &self.index {
            let encoded = Zeroizing::new(engine.encode(key.expose().as_slice()));
            text.push_str(&format!("index.{version}={}\n", encoded.as_str()));
        }
        Secret::new(text)
    }

    /// Writes the key file atomically (a temporary file renamed over the old one),
    /// readable by the owner only, so a crash never leaves a half-written ring.
    pub fn write_key_file(&self, path: &Path) -> Result<(), VaultError> {
        let io =
            |error: std::io::Error| VaultError::KeyRing(format!("{}: {error}", path.display()));
        let temporary = path.with_extension("tmp");
        let text = self.to_key_file();
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary).map_err(io)?;
            file.write_all(text.expose().as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// Adds a random master key as the next version and returns that version. New
    /// data keys are wrapped under it; `Vault::rotate` re-wraps the old ones.
    pub fn add_master_version(&mut self) -> Result<u32, VaultError> {
        let next = self
            .current_version()
            .checked_add(1)
            .ok_or(VaultError::KeyRing("master key versions exhausted".into()))?;
        if self.master.len() >= MASTER_KEY_VERSIONS_MAX {
            return Err(VaultError::KeyRing(
                "too many master key versions; retire old ones".into(),
            ));
        }
        self.master.insert(next, MasterKey::new(random_key()));
        Ok(next)
    }

    /// `self` (freshly re-read from its source) plus each version of `previous` in
    /// `keep` that `self` lacks: a re-read never drops a key that data still uses.
    /// Index keys never retire, so every index version of `previous` is kept too.
    pub(crate) fn keeping(mut self, previous: &MasterKeyRing, keep: &[u32]) -> MasterKeyRing {
        for version in keep {
            if let Some(key) = previous.master.get(version) {
                self.master.entry(*version).or_insert_with(|| key.clone());
            }
        }
        for (version, key) in &previous.index {
            self.index.entry(*version).or_insert_with(|| key.clone());
        }
        self
    }

    /// Forgets a master version. Only `Vault::retire` should call this, after the
    /// store confirmed no data key uses it.
    pub(crate) fn remove_master_version(&mut self, version: u32) -> bool {
        self.master.remove(&version).is_some()
    }

    /// The newest master version: every new wrap uses it. 0 for an empty ring.
    pub fn current_version(&self) -> u32 {
        self.master.keys().next_back().copied().unwrap_or(0)
    }

    /// Every master version loaded, oldest first.
    pub fn master_versions(&self) -> Vec<u32> {
        self.master.keys().copied().collect()
    }

    /// Every blind-index version loaded, oldest first.
    pub fn index_versions(&self) -> Vec<u32> {
        self.index.keys().copied().collect()
    }

    pub(crate) fn master(&self, version: u32) -> Result<&MasterKey, VaultError> {
        self.master
            .get(&version)
            .ok_or(VaultError::MasterKeyMissing { version })
    }

    /// The newest blind-index key and its version.
    pub(crate) fn current_index_key(&self) -> Result<(u32, &KeyBytes), VaultError> {
        self.index
            .iter()
            .next_back()
            .map(|(version, key)| (*version, key))
            .ok_or(VaultError::IndexKeyMissing { version: 1 })
    }

    pub(crate) fn index_keys(&self) -> impl Iterator<Item = (u32, &KeyBytes)> {
        self.index.iter().map(|(version, key)| (*version, key))
    }

    fn check(&self) -> Result<(), VaultError> {
        if self.master.is_empty() {
            return Err(VaultError::KeyRing("no master key given".into()));
        }
        if self.index.is_empty() {
            return Err(VaultError::KeyRing(
                "no blind-index key (index.N=…) given".into(),
            ));
        }
        if self.master.len() > MASTER_KEY_VERSIONS_MAX || self.index.len() > INDEX_KEY_VERSIONS_MAX
        {
            return Err(VaultError::KeyRing("too many key versions".into()));
        }
        Ok(())
    }
}

/// Decodes 64 hex digits or standard base64 into exactly [`KEY_BYTES`] bytes.
fn decode_key(text: &str) -> Result<KeyBytes, VaultError> {
    let decoded = Zeroizing::new(if text.len() == 2 * KEY_BYTES {
        hex::decode(text).map_err(|_| VaultError::KeyRing("a key is not valid hex".into()))?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| VaultError::KeyRing("a key is neither hex nor base64".into()))?
    });
    if decoded.len() != KEY_BYTES {
        return Err(VaultError::KeyRing(format!(
            "a key must be {KEY_BYTES} bytes"
        )));
    }
    let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
    bytes.copy_from_slice(&decoded);
    Ok(Secret::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trips_and_debug_leaks_nothing() {
        let mut ring = MasterKeyRing::generate();
        assert_eq!(ring.add_master_version().unwrap(), 2);
        let text = ring.to_key_file();
        let parsed = MasterKeyRing::parse(&text).unwrap();
        assert_eq!(parsed.master_versions(), vec![1, 2]);
        assert_eq!(parsed.index_versions(), vec![1]);
        assert_eq!(parsed.to_key_file().expose(), text.expose());
        let debug = format!("{parsed:?} {text:?}");
        let key_line = text.expose().lines().nth(1).unwrap();
        let encoded = key_line.split_once('=').unwrap().1;
        assert!(!debug.contains(encoded));
    }

    #[test]
    fn hex_bare_versions_and_separators_parse() {
        let hex_key = "ab".repeat(32);
        let text = format!("1={hex_key}; index.1={hex_key}");
        let ring = MasterKeyRing::parse(&Secret::new(text)).unwrap();
        assert_eq!(ring.current_version(), 1);
        let bad = MasterKeyRing::parse(&Secret::new("1=abcd\nindex.1=abcd".into()));
        assert!(matches!(bad, Err(VaultError::KeyRing(_))));
        let missing_index = MasterKeyRing::parse(&Secret::new(format!("1={hex_key}")));
        assert!(matches!(missing_index, Err(VaultError::KeyRing(_))));
    }
}
