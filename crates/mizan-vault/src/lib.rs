//! The vault: people's personal data and card and bank numbers, encrypted,
//! tokenized, audited and erasable. See `docs/VAULT.md` for the design.
//!
//! - [`keys`]: the master key ring (versioned, never in the database) and the
//!   separately versioned blind-index keys.
//! - [`envelope`]: per-person data keys wrapped by a master version; sealing fields.
//! - [`blind_index`]: keyed HMACs for exact lookups without decryption.
//! - [`token`]: card and bank numbers, tokens, last 4, and the unstorable [`Cvv`].
//! - [`access`]: roles, field kinds, the permission matrix, the access log entries.
//! - [`store`]: [`VaultStore`] on SQLite and PostgreSQL.
//! - [`Vault`]: the facade the rest of Mizan uses.

pub mod access;
pub mod blind_index;
pub mod envelope;
mod error;
pub mod keys;
pub mod store;
pub mod token;

use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::OsRng;
use mizan_core::{Clock, Secret, SystemClock};

pub use access::{may_reveal, AccessLogEntry, AccessOutcome, Accessor, FieldKind, Reason, Role};
pub use envelope::{DataKey, WrappedDataKey};
pub use error::VaultError;
pub use keys::MasterKeyRing;
pub use store::{
    DataKeyState, NewPerson, PostgresVaultStore, SealedRecord, SqliteVaultStore, TokenRecord,
    VaultStore,
};
pub use token::{BankAccountNumber, CardNumber, Cvv, TokenId};

use store::{Rewrapped, REWRAP_BATCH_MAX, ROWS_PER_QUERY_MAX};

macro_rules! vault_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            /// Zero and `u128::MAX` are never valid ids.
            pub fn new(raw: u128) -> Result<$name, VaultError> {
                if raw == 0 || raw == u128::MAX {
                    return Err(VaultError::InvalidInput("an id must not be zero or all ones"));
                }
                Ok($name(raw))
            }

            /// 32 hex digits, optionally with UUID hyphens.
            pub fn parse(text: &str) -> Result<$name, VaultError> {
                let raw = mizan_core::id::parse_u128_hex(text)
                    .map_err(|_| VaultError::InvalidInput("an id is 32 hex digits"))?;
                $name::new(raw)
            }

            pub(crate) const fn from_raw(raw: u128) -> $name {
                $name(raw)
            }

            pub const fn get(self) -> u128 {
                self.0
            }

            pub fn to_be_bytes(self) -> [u8; 16] {
                self.0.to_be_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{:032x}", self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "{}({:032x})", stringify!($name), self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

vault_id!(
    /// A person whose data the vault holds (the platform's payment identity).
    PersonId
);
vault_id!(
    /// One sealed field.
    RecordId
);

impl RecordId {
    /// A random record id: unguessable, and no ordering that hints at sign-up time.
    pub fn generate() -> RecordId {
        loop {
            let mut bytes = [0u8; 16];
            OsRng.fill_bytes(&mut bytes);
            let raw = u128::from_be_bytes(bytes);
            if raw != 0 && raw != u128::MAX {
                return RecordId(raw);
            }
        }
    }
}

/// A token handed out for a card or bank number, with what may be displayed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    pub token: TokenId,
    pub person: PersonId,
    pub last4: String,
}

/// A record whose blind index matched a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlindIndexMatch {
    pub person: PersonId,
    pub record: RecordId,
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RotationReport {
    /// The master version every data key is wrapped under afterwards.
    pub target_version: u32,
    pub rewrapped: u64,
    pub batches: u64,
}

/// How many data keys a master version wraps, and whether the ring holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionUse {
    pub version: u32,
    pub data_keys: u64,
    pub loaded: bool,
}

/// Rotation batches in a row that may replace nothing before rotation gives up
/// (something keeps writing under old versions: a process with a stale key ring).
const ROTATION_IDLE_BATCHES_MAX: u32 = 3;

/// Where a running vault re-reads its master keys when a rotation added a version
/// it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file, re-read whenever the store names a version the ring lacks.
    File(std::path::PathBuf),
    /// Keys given once (`MIZAN_MASTER_KEYS`, read at start, or a ring built in
    /// memory): nothing to re-read, so a process holding them must restart with the
    /// new keys after a rotation.
    Fixed,
}

/// The vault facade: every use of personal and card data goes through here.
pub struct Vault {
    store: Box<dyn VaultStore>,
    ring: RwLock<MasterKeyRing>,
    source: KeySource,
    clock: Arc<dyn Clock>,
}

impl Vault {
    /// Opens the vault over `store` with `ring`. Fails when a data key in the store
    /// is wrapped under a master version the ring lacks, or a rotation recorded a
    /// version the ring lacks: better now than on a read.
    pub fn open(store: Box<dyn VaultStore>, ring: MasterKeyRing) -> Result<Vault, VaultError> {
        if ring.current_version() == 0 {
            return Err(VaultError::KeyRing("the key ring has no master key".into()));
        }
        if ring.index_versions().is_empty() {
            return Err(VaultError::KeyRing(
                "the key ring has no blind-index key".into(),
            ));
        }
        let loaded = ring.master_versions();
        for (version, _) in store.versions_in_use()? {
            if !loaded.contains(&version) {
                return Err(VaultError::MasterKeyMissing { version });
            }
        }
        if let Some(version) = store.newest_key_version()? {
            if !loaded.contains(&version) {
                return Err(VaultError::MasterKeyMissing { version });
            }
        }
        Ok(Vault {
            store,
            ring: RwLock::new(ring),
            source: KeySource::Fixed,
            clock: Arc::new(SystemClock),
        })
    }

    /// Opens the vault with the ring read from `key_file`, re-reading that file
    /// whenever a rotation (in another process) added a version this ring lacks.
    pub fn open_with_key_file(
        store: Box<dyn VaultStore>,
        key_file: &std::path::Path,
    ) -> Result<Vault, VaultError> {
        let mut vault = Vault::open(store, MasterKeyRing::from_key_file(key_file)?)?;
        vault.source = KeySource::File(key_file.to_owned());
        Ok(vault)
    }

    /// Where this vault re-reads its keys.
    pub fn key_source(&self) -> &KeySource {
        &self.source
    }

    /// Re-reads the key source until the ring holds `needed`. Versions of the old
    /// ring that data keys still use are kept; retired ones go. Fails with
    /// `MasterKeyMissing` when the source lacks `needed` (a fixed source always
    /// does: restart with the new keys).
    fn refresh_ring(&self, needed: u32) -> Result<(), VaultError> {
        let KeySource::File(path) = &self.source else {
            return Err(VaultError::MasterKeyMissing { version: needed });
        };
        let mut ring = self
            .ring
            .write()
            .map_err(|_| VaultError::Invariant("key ring lock poisoned"))?;
        if ring.master_versions().contains(&needed) {
            return Ok(()); // another thread re-read it meanwhile
        }
        let fresh = MasterKeyRing::from_key_file(path)?;
        if !fresh.master_versions().contains(&needed) {
            return Err(VaultError::MasterKeyMissing { version: needed });
        }
        let in_use: Vec<u32> = self
            .store
            .versions_in_use()?
            .into_iter()
            .map(|(version, _)| version)
            .collect();
        *ring = fresh.keeping(&ring, &in_use);
        Ok(())
    }

    /// Runs `work` with the ring; if it needs a master version the ring lacks (a
    /// rotation elsewhere re-wrapped a data key under it), re-reads the key source
    /// once and runs it again.
    fn with_ring<T>(
        &self,
        work: impl Fn(&MasterKeyRing) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let first = work(&*self.ring()?);
        match first {
            Err(VaultError::MasterKeyMissing { version }) => {
                self.refresh_ring(version)?;
                work(&*self.ring()?)
            }
            other => other,
        }
    }

    /// The master version new data keys wrap under: the newest a rotation recorded
    /// in the store, or the ring's newest if that is newer. Re-reads the key
    /// source when the ring lacks it.
    fn wrap_version(&self) -> Result<u32, VaultError> {
        let current = self.ring()?.current_version();
        let recorded = self.store.newest_key_version()?.unwrap_or(0);
        let version = current.max(recorded);
        if !self.ring()?.master_versions().contains(&version) {
            self.refresh_ring(version)?;
        }
        Ok(version)
    }

    /// A fresh data key for `person`, wrapped under [`Vault::wrap_version`].
    fn generate_data_key(&self, person: PersonId) -> Result<(DataKey, WrappedDataKey), VaultError> {
        let version = self.wrap_version()?;
        DataKey::generate_under(&*self.ring()?, version, person)
    }

    fn unwrap_data_key(
        &self,
        person: PersonId,
        wrapped: &WrappedDataKey,
    ) -> Result<DataKey, VaultError> {
        self.with_ring(|ring| DataKey::unwrap(ring, person, wrapped))
    }

    /// Replaces the clock (tests move time).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Vault {
        self.clock = clock;
        self
    }

    fn ring(&self) -> Result<RwLockReadGuard<'_, MasterKeyRing>, VaultError> {
        self.ring
            .read()
            .map_err(|_| VaultError::Invariant("key ring lock poisoned"))
    }

    /// A copy of the ring, to write back to the key file after a change.
    pub fn key_ring(&self) -> Result<MasterKeyRing, VaultError> {
        Ok(self.ring()?.clone())
    }

    /// Seals one personal field (not card or bank numbers: see `tokenize_*`).
    pub fn put_person_field(
        &self,
        person: PersonId,
        kind: FieldKind,
        value: &str,
    ) -> Result<RecordId, VaultError> {
        if kind.tokenized() {
            return Err(VaultError::InvalidInput(
                "card and bank numbers are stored with tokenize_card / tokenize_bank_account",
            ));
        }
        if value.trim().is_empty() {
            return Err(VaultError::InvalidInput("a field value must not be empty"));
        }
        let record = RecordId::generate();
        let sealed = self.seal_record(person, record, kind, value)?;
        self.store.insert_record(&sealed, None)?;
        Ok(record)
    }

    /// Stores a Luhn-valid card number and returns its `tok_card_…` token.
    pub fn tokenize_card(
        &self,
        person: PersonId,
        number: &CardNumber,
    ) -> Result<Token, VaultError> {
        self.tokenize(
            person,
            FieldKind::CardNumber,
            number.expose(),
            number.last4(),
        )
    }

    /// Stores a bank account number and returns its `tok_bank_…` token.
    pub fn tokenize_bank_account(
        &self,
        person: PersonId,
        number: &BankAccountNumber,
    ) -> Result<Token, VaultError> {
        self.tokenize(
            person,
            FieldKind::BankAccountNumber,
            number.expose(),
            number.last4(),
        )
    }

    fn tokenize(
        &self,
        person: PersonId,
        kind: FieldKind,
        value: &str,
        last4: String,
    ) -> Result<Token, VaultError> {
        let record = RecordId::generate();
        let token = TokenId::generate(kind)?;
        let sealed = self.seal_record(person, record, kind, value)?;
        let row = TokenRecord {
            token: token.clone(),
            person,
            record,
            last4: last4.clone(),
        };
        self.store.insert_record(&sealed, Some(&row))?;
        Ok(Token {
            token,
            person,
            last4,
        })
    }

    fn seal_record(
        &self,
        person: PersonId,
        record: RecordId,
        kind: FieldKind,
        value: &str,
    ) -> Result<SealedRecord, VaultError> {
        let key = self.data_key_for_write(person)?;
        let ciphertext = key.seal(person, record, kind, value.as_bytes())?;
        let blind_index = if kind.blind_indexed() {
            Some(blind_index::compute(&*self.ring()?, kind, value)?)
        } else {
            None
        };
        Ok(SealedRecord {
            record,
            person,
            kind,
            ciphertext,
            blind_index,
            created_at_ns: self.clock.now_ns(),
        })
    }

    /// The person's data key, created (and wrapped under the newest master
    /// version) on their first field.
    fn data_key_for_write(&self, person: PersonId) -> Result<DataKey, VaultError> {
        match self.store.data_key(person)? {
            DataKeyState::Active(wrapped) => self.unwrap_data_key(person, &wrapped),
            DataKeyState::Erased => Err(VaultError::Erased),
            DataKeyState::Absent => {
                let (key, wrapped) = self.generate_data_key(person)?;
                let inserted =
                    match self
                        .store
                        .insert_data_key(person, &wrapped, self.clock.now_ns())
                    {
                        // A rotation recorded a newer version between our look and our
                        // insert: wrap again under it (once; rotations are rare).
                        Err(VaultError::StaleMasterVersion { newest, .. }) => {
                            self.refresh_ring(newest)?;
                            let (key, wrapped) = self.generate_data_key(person)?;
                            let state = self.store.insert_data_key(
                                person,
                                &wrapped,
                                self.clock.now_ns(),
                            )?;
                            return self.settle_new_key(person, key, &wrapped, state);
                        }
                        other => other?,
                    };
                self.settle_new_key(person, key, &wrapped, inserted)
            }
        }
    }

    /// The key to use after inserting `wrapped`: ours, or the winner's of a race.
    fn settle_new_key(
        &self,
        person: PersonId,
        key: DataKey,
        wrapped: &WrappedDataKey,
        state: DataKeyState,
    ) -> Result<DataKey, VaultError> {
        match state {
            DataKeyState::Active(stored) if stored == *wrapped => Ok(key),
            // Another writer created the key first: use theirs.
            DataKeyState::Active(stored) => self.unwrap_data_key(person, &stored),
            DataKeyState::Erased => Err(VaultError::Erased),
            DataKeyState::Absent => Err(VaultError::Invariant(
                "a data key vanished right after its insert",
            )),
        }
    }

    /// Opens a stored record; `Erased` if its person was shredded.
    fn open_record(
        &self,
        record: &SealedRecord,
    ) -> Result<Secret<zeroize::Zeroizing<Vec<u8>>>, VaultError> {
        match self.store.data_key(record.person)? {
            DataKeyState::Active(wrapped) => self.unwrap_data_key(record.person, &wrapped)?.open(
                record.person,
                record.record,
                record.kind,
                &record.ciphertext,
            ),
            DataKeyState::Erased => Err(VaultError::Erased),
            DataKeyState::Absent => Err(VaultError::Invariant(
                "a record exists but its person has no data key and no erasure",
            )),
        }
    }

    fn stored_record(&self, record: RecordId) -> Result<SealedRecord, VaultError> {
        self.store
            .record(record)?
            .ok_or(VaultError::NotFound("record"))
    }

    /// Reveals one field to `accessor`, if their role may see its kind, and writes
    /// the access log first: no value leaves the vault without its log entry.
    /// Denials and reads of erased people are logged too.
    pub fn reveal(
        &self,
        accessor: &Accessor,
        reason: &Reason,
        record: RecordId,
    ) -> Result<Secret<String>, VaultError> {
        let stored = self.stored_record(record)?;
        if let Err(denied) = accessor.check(stored.person, stored.kind) {
            self.log(accessor, reason, &stored, AccessOutcome::Denied)?;
            return Err(denied);
        }
        let plaintext = match self.open_record(&stored) {
            Err(VaultError::Erased) => {
                self.log(accessor, reason, &stored, AccessOutcome::Erased)?;
                return Err(VaultError::Erased);
            }
            other => other?,
        };
        let text = String::from_utf8(plaintext.expose().to_vec())
            .map_err(|_| VaultError::Invariant("a sealed field is not UTF-8"))?;
        self.log(accessor, reason, &stored, AccessOutcome::Granted)?;
        Ok(Secret::new(text))
    }

    /// Reveals the card or bank number behind a token (same rules as [`Vault::reveal`]).
    pub fn reveal_token(
        &self,
        accessor: &Accessor,
        reason: &Reason,
        token: &TokenId,
    ) -> Result<Secret<String>, VaultError> {
        let row = self
            .store
            .token(token)?
            .ok_or(VaultError::NotFound("token"))?;
        self.reveal(accessor, reason, row.record)
    }

    /// What may be shown about a token without a reveal: its person and last 4.
    pub fn token_info(&self, token: &TokenId) -> Result<Token, VaultError> {
        let row = self
            .store
            .token(token)?
            .ok_or(VaultError::NotFound("token"))?;
        Ok(Token {
            token: row.token,
            person: row.person,
            last4: row.last4,
        })
    }

    /// The person's existing token for this card or bank number, found by blind
    /// index without decrypting: a card funded twice keeps one token.
    pub fn find_token(
        &self,
        person: PersonId,
        kind: FieldKind,
        value: &str,
    ) -> Result<Option<Token>, VaultError> {
        if !kind.tokenized() {
            return Err(VaultError::InvalidInput(
                "only card and bank numbers have tokens",
            ));
        }
        let records: Vec<RecordId> = self
            .find_by_blind_index(kind, value)?
            .into_iter()
            .filter(|found| found.person == person)
            .map(|found| found.record)
            .collect();
        if records.is_empty() {
            return Ok(None);
        }
        Ok(self
            .store
            .tokens_of_person(person, ROWS_PER_QUERY_MAX)?
            .into_iter()
            .find(|row| records.contains(&row.record))
            .map(|row| Token {
                token: row.token,
                person: row.person,
                last4: row.last4,
            }))
    }

    /// The person's newest record of `kind`, if any (to reveal the current value
    /// of a field that was stored more than once).
    pub fn latest_record(
        &self,
        person: PersonId,
        kind: FieldKind,
    ) -> Result<Option<RecordId>, VaultError> {
        Ok(self
            .store
            .records_of_person(person, ROWS_PER_QUERY_MAX)?
            .into_iter()
            .filter(|record| record.kind == kind)
            .max_by_key(|record| record.created_at_ns)
            .map(|record| record.record))
    }

    /// Every token the person holds, with its last 4 (what may be displayed).
    pub fn tokens_of_person(&self, person: PersonId) -> Result<Vec<Token>, VaultError> {
        Ok(self
            .store
            .tokens_of_person(person, ROWS_PER_QUERY_MAX)?
            .into_iter()
            .map(|row| Token {
                token: row.token,
                person: row.person,
                last4: row.last4,
            })
            .collect())
    }

    /// Seals a secret the platform computes HMACs with (a TOTP seed, a webhook
    /// signing secret) under `owner`'s data key; erasing `owner` destroys it.
    pub fn put_service_secret(
        &self,
        owner: PersonId,
        secret: &Secret<String>,
    ) -> Result<RecordId, VaultError> {
        self.put_person_field(owner, FieldKind::ServiceSecret, secret.expose())
    }

    /// Runs `work` with a service secret's bytes, inside the vault: the secret is
    /// used (to compute or check an HMAC), never handed out as a value, and no
    /// role can reveal it. Not an access-log event: it is the platform checking a
    /// code or signing a webhook, many times a minute, not anyone reading data.
    /// Any other field kind is refused; an erased owner gives `Erased`.
    pub fn use_service_secret<T>(
        &self,
        record: RecordId,
        work: impl FnOnce(&[u8]) -> T,
    ) -> Result<T, VaultError> {
        let stored = self.stored_record(record)?;
        if stored.kind != FieldKind::ServiceSecret {
            return Err(VaultError::InvalidInput(
                "that record is not a service secret",
            ));
        }
        let plaintext = self.open_record(&stored)?;
        Ok(work(plaintext.expose()))
    }

    /// Checks that a record decrypts, without returning or logging its value: for
    /// health checks and the rotation benchmark's reader.
    pub fn check_readable(&self, record: RecordId) -> Result<(), VaultError> {
        let stored = self.stored_record(record)?;
        self.open_record(&stored).map(drop)
    }

    fn log(
        &self,
        accessor: &Accessor,
        reason: &Reason,
        record: &SealedRecord,
        outcome: AccessOutcome,
    ) -> Result<u64, VaultError> {
        self.store.append_access(&AccessLogEntry {
            sequence: 0,
            at_ns: self.clock.now_ns(),
            role: accessor.role().code().to_owned(),
            actor: accessor.actor().to_owned(),
            person: record.person,
            record: record.record,
            field: record.kind.code().to_owned(),
            reason: reason.as_str().to_owned(),
            outcome,
        })
    }

    /// Records whose value equals `value` (after normalizing), found by blind index
    /// under every loaded index version. Erased people never match.
    pub fn find_by_blind_index(
        &self,
        kind: FieldKind,
        value: &str,
    ) -> Result<Vec<BlindIndexMatch>, VaultError> {
        if !kind.blind_indexed() {
            return Err(VaultError::InvalidInput(
                "this field kind has no blind index",
            ));
        }
        let indexes = blind_index::compute_all(&*self.ring()?, kind, value)?;
        let mut found = Vec::new();
        for index in &indexes {
            for (person, record) in self
                .store
                .find_blind_index(kind, index, ROWS_PER_QUERY_MAX)?
            {
                found.push(BlindIndexMatch { person, record });
            }
        }
        Ok(found)
    }

    /// Erases a person by deleting their data key: their records stay as
    /// ciphertext nobody can open, their blind indexes are cleared. `false` if they
    /// were erased already.
    pub fn shred_person(&self, person: PersonId) -> Result<bool, VaultError> {
        self.store.shred(person, self.clock.now_ns())
    }

    /// Adds a random master version to the in-memory ring; new data keys wrap under
    /// it at once. Persist [`Vault::key_ring`] before relying on it.
    pub fn add_master_version(&self) -> Result<u32, VaultError> {
        self.ring
            .write()
            .map_err(|_| VaultError::Invariant("key ring lock poisoned"))?
            .add_master_version()
    }

    /// Re-wraps every data key under the current master version, `batch_size` keys
    /// per transaction, while readers keep working: a data key is readable under
    /// its old version until the moment its row switches to the new one.
    pub fn rotate(&self, batch_size: usize) -> Result<RotationReport, VaultError> {
        self.rotate_with_progress(batch_size, &mut |_| {})
    }

    /// [`Vault::rotate`], calling `progress` after every committed batch.
    pub fn rotate_with_progress(
        &self,
        batch_size: usize,
        progress: &mut dyn FnMut(&RotationReport),
    ) -> Result<RotationReport, VaultError> {
        if batch_size == 0 || batch_size > REWRAP_BATCH_MAX {
            return Err(VaultError::InvalidInput(
                "a rotation batch is 1 to 50000 keys",
            ));
        }
        let target = self.ring()?.current_version();
        // Recorded before the first re-wrap: from here on every process wraps new
        // data keys under `target` (re-reading its key file), so nothing new lands
        // under the old version while this rotation moves the existing keys.
        self.store.record_key_version(target, self.clock.now_ns())?;
        let mut report = RotationReport {
            target_version: target,
            ..RotationReport::default()
        };
        let mut idle_batches = 0;
        loop {
            let keys = self.store.data_keys_below(target, batch_size)?;
            if keys.is_empty() {
                return Ok(report);
            }
            let rewrapped = {
                let ring = self.ring()?;
                keys.iter()
                    .map(|(person, wrapped)| {
                        Ok(Rewrapped {
                            person: *person,
                            old_version: wrapped.master_version,
                            wrapped: envelope::rewrap(&ring, *person, wrapped, target)?,
                        })
                    })
                    .collect::<Result<Vec<_>, VaultError>>()?
            };
            let replaced = self.store.replace_data_keys(&rewrapped)?;
            if replaced > rewrapped.len() as u64 {
                return Err(VaultError::Invariant(
                    "a rotation batch replaced more keys than it held",
                ));
            }
            idle_batches = if replaced == 0 { idle_batches + 1 } else { 0 };
            if idle_batches >= ROTATION_IDLE_BATCHES_MAX {
                return Err(VaultError::Store(
                    "rotation makes no progress: is a process with an old key ring writing?".into(),
                ));
            }
            report.rewrapped += replaced;
            report.batches += 1;
            progress(&report);
        }
    }

    /// The newest master version a rotation recorded (what new data keys wrap
    /// under in every process), if any was.
    pub fn newest_recorded_version(&self) -> Result<Option<u32>, VaultError> {
        self.store.newest_key_version()
    }

    /// Every master version loaded or in use, with the data keys it wraps.
    pub fn versions_in_use(&self) -> Result<Vec<VersionUse>, VaultError> {
        let loaded = self.ring()?.master_versions();
        let in_use = self.store.versions_in_use()?;
        let mut versions: Vec<u32> = loaded.clone();
        versions.extend(in_use.iter().map(|(version, _)| *version));
        versions.sort_unstable();
        versions.dedup();
        Ok(versions
            .into_iter()
            .map(|version| VersionUse {
                version,
                data_keys: in_use
                    .iter()
                    .find(|(used, _)| *used == version)
                    .map_or(0, |(_, count)| *count),
                loaded: loaded.contains(&version),
            })
            .collect())
    }

    /// Drops a master version from the ring once no data key uses it. Refuses the
    /// current version and any version still wrapping a key. Persist
    /// [`Vault::key_ring`] afterwards.
    pub fn retire(&self, version: u32) -> Result<(), VaultError> {
        let mut ring = self
            .ring
            .write()
            .map_err(|_| VaultError::Invariant("key ring lock poisoned"))?;
        if version == ring.current_version() {
            return Err(VaultError::RetireCurrent { version });
        }
        // The newest version a rotation recorded is what every process wraps new
        // keys under, even one whose ring has not caught up yet.
        if self
            .store
            .newest_key_version()?
            .is_some_and(|newest| version >= newest)
        {
            return Err(VaultError::RetireCurrent { version });
        }
        if !ring.master_versions().contains(&version) {
            return Err(VaultError::MasterKeyMissing { version });
        }
        let in_use = self.store.versions_in_use()?;
        if let Some((_, data_keys)) = in_use.iter().find(|(used, _)| *used == version) {
            return Err(VaultError::VersionInUse {
                version,
                data_keys: *data_keys,
            });
        }
        if !ring.remove_master_version(version) {
            return Err(VaultError::Invariant(
                "a loaded version could not be removed",
            ));
        }
        Ok(())
    }

    /// Bulk import of new people, one field each, each with its own data key, in
    /// one transaction (migrations, and the rotation benchmark's setup).
    pub fn import_people(
        &self,
        people: &[(PersonId, FieldKind, &str)],
    ) -> Result<Vec<RecordId>, VaultError> {
        if people.len() > REWRAP_BATCH_MAX {
            return Err(VaultError::InvalidInput(
                "an import batch is at most 50000 people",
            ));
        }
        let version = self.wrap_version()?;
        let ring = self.ring()?;
        let now_ns = self.clock.now_ns();
        let mut rows = Vec::with_capacity(people.len());
        for (person, kind, value) in people {
            if kind.tokenized() || kind.blind_indexed() {
                return Err(VaultError::InvalidInput(
                    "import takes plain personal fields only",
                ));
            }
            let (key, wrapped) = DataKey::generate_under(&ring, version, *person)?;
            let record = RecordId::generate();
            rows.push(NewPerson {
                person: *person,
                wrapped,
                record: SealedRecord {
                    record,
                    person: *person,
                    kind: *kind,
                    ciphertext: key.seal(*person, record, *kind, value.as_bytes())?,
                    blind_index: None,
                    created_at_ns: now_ns,
                },
            });
        }
        self.store.insert_people(&rows)?;
        Ok(rows.iter().map(|row| row.record.record).collect())
    }

    /// A person's own data as JSON (data-subject access request): every field the
    /// accessor's role may reveal (each reveal logged), and every token with its
    /// last 4 digits. An erased person exports as `{"erased": true, …}`.
    pub fn export_person(
        &self,
        accessor: &Accessor,
        reason: &Reason,
        person: PersonId,
    ) -> Result<Secret<String>, VaultError> {
        let erased = matches!(self.store.data_key(person)?, DataKeyState::Erased);
        let mut fields = Vec::new();
        if !erased {
            for record in self.store.records_of_person(person, ROWS_PER_QUERY_MAX)? {
                if record.kind.tokenized() || accessor.check(person, record.kind).is_err() {
                    continue;
                }
                let value = self.reveal(accessor, reason, record.record)?;
                fields.push(serde_json::json!({
                    "record_id": record.record,
                    "kind": record.kind.code(),
                    "value": value.expose(),
                }));
            }
        }
        let tokens: Vec<_> = self
            .store
            .tokens_of_person(person, ROWS_PER_QUERY_MAX)?
            .into_iter()
            .map(|row| {
                serde_json::json!({
                    "token": row.token,
                    "kind": row.token.kind().code(),
                    "last4": row.last4,
                })
            })
            .collect();
        let document = serde_json::json!({
            "person_id": person,
            "erased": erased,
            "fields": fields,
            "tokens": tokens,
        });
        serde_json::to_string_pretty(&document)
            .map(Secret::new)
            .map_err(|_| VaultError::Invariant("an export did not serialize"))
    }

    /// Access log entries after `after_sequence`, oldest first.
    pub fn access_log(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<AccessLogEntry>, VaultError> {
        self.store.access_log(after_sequence, limit)
    }
}
