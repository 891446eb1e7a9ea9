//! [`VaultError`]: the one error type of the vault layer.
//!
//! Messages never carry plaintext, keys, tokens or ciphertext: they name what went
//! wrong and, at most, a key version or a field kind. Every variant has a stable
//! snake_case [`VaultError::code`] for callers that map it to a response.

use crate::access::{FieldKind, Role};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The person was crypto-shredded: their data key is gone, their records stay
    /// unreadable forever.
    #[error("erased: this person's vault data was erased (crypto-shredded)")]
    Erased,
    /// AES-GCM rejected a sealed record: its bytes were altered, it was moved to
    /// another record, person or field kind, or it was sealed under another key.
    #[error("sealed record failed authentication: tampered, swapped between records, or sealed under another key")]
    Tampered,
    /// A wrapped data key did not unwrap under the master key of its version.
    #[error("data key did not unwrap under master key version {version}: wrong master key, or the wrapped key was altered")]
    MasterKeyMismatch { version: u32 },
    #[error(
        "master key version {version} is not loaded; the key file or MIZAN_MASTER_KEYS lacks it"
    )]
    MasterKeyMissing { version: u32 },
    /// A new data key was wrapped under an older master version than the newest one
    /// a rotation recorded: reload the key ring and wrap again.
    #[error("master key version {version} is older than the newest recorded version {newest}; reload the key ring")]
    StaleMasterVersion { version: u32, newest: u32 },
    #[error("blind-index key version {version} is not loaded")]
    IndexKeyMissing { version: u32 },
    #[error("key ring: {0}")]
    KeyRing(String),
    #[error("role {role} may not reveal {field}")]
    PermissionDenied { role: Role, field: FieldKind },
    #[error("master key version {version} still wraps {data_keys} data keys; rotate first")]
    VersionInUse { version: u32, data_keys: u64 },
    #[error("master key version {version} is the current version and cannot retire")]
    RetireCurrent { version: u32 },
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
    /// A broken invariant (a bug or a corrupted database): stop, don't limp on.
    #[error("vault invariant broken: {0}")]
    Invariant(&'static str),
    #[error("vault store: {0}")]
    Store(String),
}

impl VaultError {
    /// A stable code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Erased => "erased",
            VaultError::Tampered => "tampered",
            VaultError::MasterKeyMismatch { .. } => "master_key_mismatch",
            VaultError::MasterKeyMissing { .. } => "master_key_missing",
            VaultError::StaleMasterVersion { .. } => "stale_master_version",
            VaultError::IndexKeyMissing { .. } => "index_key_missing",
            VaultError::KeyRing(_) => "key_ring",
            VaultError::PermissionDenied { .. } => "permission_denied",
            VaultError::VersionInUse { .. } => "version_in_use",
            VaultError::RetireCurrent { .. } => "retire_current",
            VaultError::NotFound(_) => "not_found",
            VaultError::InvalidInput(_) => "invalid_input",
            VaultError::Invariant(_) => "invariant",
            VaultError::Store(_) => "store",
        }
    }
}

impl From<rusqlite::Error> for VaultError {
    fn from(error: rusqlite::Error) -> VaultError {
        VaultError::Store(format!("sqlite: {error}"))
    }
}

impl From<postgres::Error> for VaultError {
    fn from(error: postgres::Error) -> VaultError {
        VaultError::Store(format!("postgresql: {error}"))
    }
}
