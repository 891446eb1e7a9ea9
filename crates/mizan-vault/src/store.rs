//! Persistence of the vault: [`VaultStore`] and its SQLite and PostgreSQL
//! implementations. The store only ever sees wrapped data keys, ciphertexts, blind
//! indexes, tokens with last 4 digits, and the access log: never a master key and
//! never a plaintext.
//!
//! Tables (all prefixed `vault_`): `data_keys` (person → wrapped key + master
//! version), `erasures` (who was crypto-shredded, and when), `records` (sealed
//! fields with optional blind index), `tokens` (token → record, last 4), and
//! `access_log`, which refuses UPDATE, DELETE (and on PostgreSQL TRUNCATE) by trigger,
//! and `key_versions` (the master version *numbers* rotations added). The schema is
//! built by numbered migrations (`migrations/{sqlite,postgres}/NNNN_*.sql`).

pub mod postgres;
pub mod sqlite;

pub use self::postgres::PostgresVaultStore;
pub use self::sqlite::SqliteVaultStore;

use crate::access::{AccessLogEntry, FieldKind};
use crate::blind_index::BlindIndex;
use crate::envelope::WrappedDataKey;
use crate::token::TokenId;
use crate::{PersonId, RecordId, VaultError};

/// Most rows one listing or lookup returns.
pub const ROWS_PER_QUERY_MAX: usize = 10_000;
/// Most data keys re-wrapped in one transaction; bounds a rotation's lock time.
pub const REWRAP_BATCH_MAX: usize = 50_000;

/// What the store holds for a person's data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKeyState {
    Active(WrappedDataKey),
    /// Crypto-shredded: the key is gone for good.
    Erased,
    /// No field was ever stored for this person.
    Absent,
}

/// One sealed field as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    pub record: RecordId,
    pub person: PersonId,
    pub kind: FieldKind,
    pub ciphertext: Vec<u8>,
    pub blind_index: Option<BlindIndex>,
    pub created_at_ns: u64,
}

/// One token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: TokenId,
    pub person: PersonId,
    pub record: RecordId,
    pub last4: String,
}

/// A data key moved from `old_version` to the version in `wrapped`.
#[derive(Debug, Clone)]
pub struct Rewrapped {
    pub person: PersonId,
    pub old_version: u32,
    pub wrapped: WrappedDataKey,
}

/// A new person with their first record, for bulk import.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub person: PersonId,
    pub wrapped: WrappedDataKey,
    pub record: SealedRecord,
}

/// Storage for the vault. Methods take `&self`: implementations serialize writers
/// internally and let readers proceed during a rotation.
pub trait VaultStore: Send + Sync {
    fn data_key(&self, person: PersonId) -> Result<DataKeyState, VaultError>;

    /// Stores `wrapped` unless the person already has a key or was erased; returns
    /// what the store holds afterwards (the winner of a race, or `Erased`).
    fn insert_data_key(
        &self,
        person: PersonId,
        wrapped: &WrappedDataKey,
        at_ns: u64,
    ) -> Result<DataKeyState, VaultError>;

    /// Inserts a record, and its token when given, in one transaction.
    fn insert_record(
        &self,
        record: &SealedRecord,
        token: Option<&TokenRecord>,
    ) -> Result<(), VaultError>;

    /// Inserts new people (data key and one record each) in one transaction.
    fn insert_people(&self, people: &[NewPerson]) -> Result<(), VaultError>;

    fn record(&self, record: RecordId) -> Result<Option<SealedRecord>, VaultError>;

    fn records_of_person(
        &self,
        person: PersonId,
        limit: usize,
    ) -> Result<Vec<SealedRecord>, VaultError>;

    /// Records of `kind` whose blind index equals `index`.
    fn find_blind_index(
        &self,
        kind: FieldKind,
        index: &BlindIndex,
        limit: usize,
    ) -> Result<Vec<(PersonId, RecordId)>, VaultError>;

    fn token(&self, token: &TokenId) -> Result<Option<TokenRecord>, VaultError>;

    fn tokens_of_person(
        &self,
        person: PersonId,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, VaultError>;

    /// Appends an entry (its `sequence` is ignored) and returns the sequence given.
    fn append_access(&self, entry: &AccessLogEntry) -> Result<u64, VaultError>;

    /// Entries with a sequence above `after_sequence`, oldest first.
    fn access_log(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<AccessLogEntry>, VaultError>;

    /// Up to `limit` data keys wrapped under a version below `version`.
    fn data_keys_below(
        &self,
        version: u32,
        limit: usize,
    ) -> Result<Vec<(PersonId, WrappedDataKey)>, VaultError>;

    /// Replaces each data key still wrapped under its `old_version` (a key shredded
    /// or re-wrapped meanwhile is skipped) in one transaction; returns how many.
    fn replace_data_keys(&self, rewrapped: &[Rewrapped]) -> Result<u64, VaultError>;

    /// (master version, data keys wrapped under it), oldest version first.
    fn versions_in_use(&self) -> Result<Vec<(u32, u64)>, VaultError>;

    /// Deletes the person's data key, clears their blind indexes and records the
    /// erasure, in one transaction. `false` if they were already erased.
    fn shred(&self, person: PersonId, at_ns: u64) -> Result<bool, VaultError>;

    /// Records that master version `version` exists (its number only, never the
    /// key); recording a known version again changes nothing.
    fn record_key_version(&self, version: u32, at_ns: u64) -> Result<(), VaultError>;

    /// The newest master version recorded, if any. `insert_data_key` and
    /// `insert_people` refuse a key wrapped under an older one
    /// ([`VaultError::StaleMasterVersion`]).
    fn newest_key_version(&self) -> Result<Option<u32>, VaultError>;
}

pub(crate) fn limit_rows(limit: usize) -> Result<usize, VaultError> {
    if limit == 0 || limit > ROWS_PER_QUERY_MAX {
        return Err(VaultError::InvalidInput("a row limit is 1 to 10000"));
    }
    Ok(limit)
}

pub(crate) fn id_from_bytes(bytes: &[u8]) -> Result<u128, VaultError> {
    let array: [u8; 16] = bytes
        .try_into()
        .map_err(|_| VaultError::Invariant("a stored id is not 16 bytes"))?;
    Ok(u128::from_be_bytes(array))
}

pub(crate) fn index_from_parts(
    bytes: Option<Vec<u8>>,
    version: Option<i64>,
) -> Result<Option<BlindIndex>, VaultError> {
    match (bytes, version) {
        (Some(bytes), Some(version)) => Ok(Some(BlindIndex {
            index_version: u32::try_from(version)
                .map_err(|_| VaultError::Invariant("a stored index version is out of range"))?,
            bytes: bytes
                .try_into()
                .map_err(|_| VaultError::Invariant("a stored blind index is not 32 bytes"))?,
        })),
        (None, _) => Ok(None),
        (Some(_), None) => Err(VaultError::Invariant("a blind index without its version")),
    }
}

pub(crate) fn to_i64(value: u64) -> Result<i64, VaultError> {
    i64::try_from(value).map_err(|_| VaultError::Invariant("a number exceeds i64"))
}

pub(crate) fn to_u64(value: i64) -> Result<u64, VaultError> {
    u64::try_from(value).map_err(|_| VaultError::Invariant("a stored number is negative"))
}

pub(crate) fn to_u32(value: i64) -> Result<u32, VaultError> {
    u32::try_from(value).map_err(|_| VaultError::Invariant("a stored version is out of range"))
}
