//! [`SqliteVaultStore`]: the vault in its own SQLite file (`mizan.vault.sqlite`).
//!
//! Two connections in WAL mode: writes go through one, reads through the other, so
//! a rotation's write transactions never stall readers.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use super::{
    id_from_bytes, index_from_parts, limit_rows, to_i64, to_u32, to_u64, DataKeyState, NewPerson,
    Rewrapped, SealedRecord, TokenRecord, VaultStore,
};
use crate::access::{AccessLogEntry, AccessOutcome, FieldKind};
use crate::blind_index::BlindIndex;
use crate::envelope::WrappedDataKey;
use crate::token::TokenId;
use crate::{PersonId, RecordId, VaultError};

/// File name of the vault database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "mizan.vault.sqlite";
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// Page cache per connection, in KiB (SQLite's negative `cache_size`). The 2 MiB
/// default makes a rotation over a million keys re-read pages from the OS cache.
const PAGE_CACHE_KIB: i64 = 32 * 1024;

/// The schema, in order; each version is applied once and recorded in
/// `vault_schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_vault.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_key_versions.sql"),
    ),
];

const RECORD_COLUMNS: &str =
    "record_id, person_id, field_kind, ciphertext, blind_index, index_version, created_at_ns";

pub struct SqliteVaultStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteVaultStore {
    /// Opens (creating if needed) the vault file and its schema.
    pub fn open(path: &Path) -> Result<SqliteVaultStore, VaultError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| VaultError::Store(format!("{}: {error}", parent.display())))?;
        }
        let mut writer = connect(path)?;
        migrate(&mut writer)?;
        let reader = connect(path)?;
        Ok(SqliteVaultStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, VaultError> {
        self.writer
            .lock()
            .map_err(|_| VaultError::Store("writer connection poisoned".into()))
    }

    fn reader(&self) -> Result<MutexGuard<'_, Connection>, VaultError> {
        self.reader
            .lock()
            .map_err(|_| VaultError::Store("reader connection poisoned".into()))
    }
}

/// Applies every migration the file lacks, each in its own transaction.
fn migrate(connection: &mut Connection) -> Result<(), VaultError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS vault_schema_migrations (version INTEGER PRIMARY KEY)",
    )?;
    for (version, sql) in MIGRATIONS {
        let transaction =
            connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied = transaction
            .query_row(
                "SELECT 1 FROM vault_schema_migrations WHERE version = ?1",
                params![version],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !applied {
            transaction.execute_batch(sql)?;
            transaction.execute(
                "INSERT INTO vault_schema_migrations (version) VALUES (?1)",
                params![version],
            )?;
        }
        transaction.commit()?;
    }
    Ok(())
}

/// Refuses a new data key wrapped under a master version older than the newest
/// one recorded: a process with a stale key ring must reload it first, or the
/// version it uses could be retired under it.
fn refuse_stale_version(connection: &Connection, version: u32) -> Result<(), VaultError> {
    if let Some(newest) = newest_key_version_on(connection)? {
        if version < newest {
            return Err(VaultError::StaleMasterVersion { version, newest });
        }
    }
    Ok(())
}

fn newest_key_version_on(connection: &Connection) -> Result<Option<u32>, VaultError> {
    let newest: Option<i64> = connection
        .prepare_cached("SELECT MAX(version) FROM vault_key_versions")?
        .query_row([], |row| row.get(0))?;
    newest.map(to_u32).transpose()
}

fn connect(path: &Path) -> Result<Connection, VaultError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    // A committed vault write survives a crash of the process; NORMAL in WAL mode
    // risks only the last transactions on power loss, like the ledger's file.
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    // A shredded data key's bytes are overwritten in the file, not left in a free
    // page (copies in the WAL go at the next checkpoint; backups are their own matter).
    connection.pragma_update(None, "secure_delete", "ON")?;
    connection.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    Ok(connection)
}

fn read_record(row: &rusqlite::Row<'_>) -> Result<SealedRecord, VaultError> {
    let kind: String = row.get(2)?;
    Ok(SealedRecord {
        record: RecordId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(0)?)?),
        person: PersonId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(1)?)?),
        kind: FieldKind::parse(&kind)?,
        ciphertext: row.get(3)?,
        blind_index: index_from_parts(row.get(4)?, row.get(5)?)?,
        created_at_ns: to_u64(row.get(6)?)?,
    })
}

fn read_token(row: &rusqlite::Row<'_>) -> Result<TokenRecord, VaultError> {
    let token: String = row.get(0)?;
    Ok(TokenRecord {
        token: TokenId::parse(&token)?,
        person: PersonId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(1)?)?),
        record: RecordId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(2)?)?),
        last4: row.get(3)?,
    })
}

fn insert_record_on(connection: &Connection, record: &SealedRecord) -> Result<(), VaultError> {
    let (index, index_version) = match &record.blind_index {
        Some(index) => (
            Some(index.bytes.to_vec()),
            Some(i64::from(index.index_version)),
        ),
        None => (None, None),
    };
    connection
        .prepare_cached(&format!(
            "INSERT INTO vault_records ({RECORD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))?
        .execute(params![
            record.record.to_be_bytes().as_slice(),
            record.person.to_be_bytes().as_slice(),
            record.kind.code(),
            record.ciphertext,
            index,
            index_version,
            to_i64(record.created_at_ns)?,
        ])?;
    Ok(())
}

fn data_key_on(connection: &Connection, person: PersonId) -> Result<DataKeyState, VaultError> {
    let id = person.to_be_bytes();
    let key = connection
        .prepare_cached("SELECT master_version, wrapped FROM vault_data_keys WHERE person_id = ?1")?
        .query_row(params![id.as_slice()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    if let Some((version, bytes)) = key {
        return Ok(DataKeyState::Active(WrappedDataKey {
            master_version: to_u32(version)?,
            bytes,
        }));
    }
    let erased = connection
        .prepare_cached("SELECT 1 FROM vault_erasures WHERE person_id = ?1")?
        .exists(params![id.as_slice()])?;
    Ok(if erased {
        DataKeyState::Erased
    } else {
        DataKeyState::Absent
    })
}

impl VaultStore for SqliteVaultStore {
    fn data_key(&self, person: PersonId) -> Result<DataKeyState, VaultError> {
        data_key_on(&*self.reader()?, person)
    }

    fn insert_data_key(
        &self,
        person: PersonId,
        wrapped: &WrappedDataKey,
        at_ns: u64,
    ) -> Result<DataKeyState, VaultError> {
        let mut connection = self.writer()?;
        let transaction = connection.transaction()?;
        refuse_stale_version(&transaction, wrapped.master_version)?;
        let id = person.to_be_bytes();
        transaction
            .prepare_cached(
                "INSERT INTO vault_data_keys (person_id, master_version, wrapped, created_at_ns)
                 SELECT ?1, ?2, ?3, ?4
                 WHERE NOT EXISTS (SELECT 1 FROM vault_erasures WHERE person_id = ?1)
                 ON CONFLICT (person_id) DO NOTHING",
            )?
            .execute(params![
                id.as_slice(),
                i64::from(wrapped.master_version),
                wrapped.bytes,
                to_i64(at_ns)?
            ])?;
        let state = data_key_on(&transaction, person)?;
        transaction.commit()?;
        Ok(state)
    }

    fn insert_record(
        &self,
        record: &SealedRecord,
        token: Option<&TokenRecord>,
    ) -> Result<(), VaultError> {
        let mut connection = self.writer()?;
        let transaction = connection.transaction()?;
        insert_record_on(&transaction, record)?;
        if let Some(token) = token {
            transaction
                .prepare_cached(
                    "INSERT INTO vault_tokens (token, person_id, record_id, last4)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    token.token.as_str(),
                    token.person.to_be_bytes().as_slice(),
                    token.record.to_be_bytes().as_slice(),
                    token.last4,
                ])?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn insert_people(&self, people: &[NewPerson]) -> Result<(), VaultError> {
        let mut connection = self.writer()?;
        let transaction = connection.transaction()?;
        // One check for the batch: its oldest version.
        if let Some(oldest) = people.iter().map(|new| new.wrapped.master_version).min() {
            refuse_stale_version(&transaction, oldest)?;
        }
        for new in people {
            transaction
                .prepare_cached(
                    "INSERT INTO vault_data_keys (person_id, master_version, wrapped, created_at_ns)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    new.person.to_be_bytes().as_slice(),
                    i64::from(new.wrapped.master_version),
                    new.wrapped.bytes,
                    to_i64(new.record.created_at_ns)?
                ])?;
            insert_record_on(&transaction, &new.record)?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn record(&self, record: RecordId) -> Result<Option<SealedRecord>, VaultError> {
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM vault_records WHERE record_id = ?1"
        ))?;
        let mut rows = statement.query(params![record.to_be_bytes().as_slice()])?;
        match rows.next()? {
            Some(row) => read_record(row).map(Some),
            None => Ok(None),
        }
    }

    fn records_of_person(
        &self,
        person: PersonId,
        limit: usize,
    ) -> Result<Vec<SealedRecord>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM vault_records WHERE person_id = ?1
             ORDER BY created_at_ns, record_id LIMIT ?2"
        ))?;
        let mut rows = statement.query(params![person.to_be_bytes().as_slice(), limit])?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(read_record(row)?);
        }
        Ok(records)
    }

    fn find_blind_index(
        &self,
        kind: FieldKind,
        index: &BlindIndex,
        limit: usize,
    ) -> Result<Vec<(PersonId, RecordId)>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(
            "SELECT person_id, record_id FROM vault_records
             WHERE field_kind = ?1 AND blind_index = ?2 AND index_version = ?3 LIMIT ?4",
        )?;
        let mut rows = statement.query(params![
            kind.code(),
            index.bytes.as_slice(),
            i64::from(index.index_version),
            limit
        ])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push((
                PersonId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(0)?)?),
                RecordId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(1)?)?),
            ));
        }
        Ok(found)
    }

    fn token(&self, token: &TokenId) -> Result<Option<TokenRecord>, VaultError> {
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(
            "SELECT token, person_id, record_id, last4 FROM vault_tokens WHERE token = ?1",
        )?;
        let mut rows = statement.query(params![token.as_str()])?;
        match rows.next()? {
            Some(row) => read_token(row).map(Some),
            None => Ok(None),
        }
    }

    fn tokens_of_person(
        &self,
        person: PersonId,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(
            "SELECT token, person_id, record_id, last4 FROM vault_tokens
             WHERE person_id = ?1 ORDER BY token LIMIT ?2",
        )?;
        let mut rows = statement.query(params![person.to_be_bytes().as_slice(), limit])?;
        let mut tokens = Vec::new();
        while let Some(row) = rows.next()? {
            tokens.push(read_token(row)?);
        }
        Ok(tokens)
    }

    fn append_access(&self, entry: &AccessLogEntry) -> Result<u64, VaultError> {
        let connection = self.writer()?;
        connection
            .prepare_cached(
                "INSERT INTO vault_access_log
                 (at_ns, role, actor, person_id, record_id, field_kind, reason, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                to_i64(entry.at_ns)?,
                entry.role,
                entry.actor,
                entry.person.to_be_bytes().as_slice(),
                entry.record.to_be_bytes().as_slice(),
                entry.field,
                entry.reason,
                entry.outcome.code(),
            ])?;
        to_u64(connection.last_insert_rowid())
    }

    fn access_log(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<AccessLogEntry>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(
            "SELECT sequence, at_ns, role, actor, person_id, record_id, field_kind, reason, outcome
             FROM vault_access_log WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
        )?;
        let mut rows = statement.query(params![to_i64(after_sequence)?, limit])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            let outcome: String = row.get(8)?;
            entries.push(AccessLogEntry {
                sequence: to_u64(row.get(0)?)?,
                at_ns: to_u64(row.get(1)?)?,
                role: row.get(2)?,
                actor: row.get(3)?,
                person: PersonId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(4)?)?),
                record: RecordId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(5)?)?),
                field: row.get(6)?,
                reason: row.get(7)?,
                outcome: AccessOutcome::parse(&outcome)?,
            });
        }
        Ok(entries)
    }

    fn data_keys_below(
        &self,
        version: u32,
        limit: usize,
    ) -> Result<Vec<(PersonId, WrappedDataKey)>, VaultError> {
        if limit == 0 || limit > super::REWRAP_BATCH_MAX {
            return Err(VaultError::InvalidInput(
                "a rotation batch is 1 to 50000 keys",
            ));
        }
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(
            "SELECT person_id, master_version, wrapped FROM vault_data_keys
             WHERE master_version < ?1 LIMIT ?2",
        )?;
        let mut rows = statement.query(params![i64::from(version), to_i64(limit as u64)?])?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next()? {
            keys.push((
                PersonId::from_raw(id_from_bytes(&row.get::<_, Vec<u8>>(0)?)?),
                WrappedDataKey {
                    master_version: to_u32(row.get(1)?)?,
                    bytes: row.get(2)?,
                },
            ));
        }
        Ok(keys)
    }

    fn replace_data_keys(&self, rewrapped: &[Rewrapped]) -> Result<u64, VaultError> {
        let mut connection = self.writer()?;
        let transaction = connection.transaction()?;
        let mut replaced = 0u64;
        {
            let mut statement = transaction.prepare_cached(
                "UPDATE vault_data_keys SET master_version = ?1, wrapped = ?2
                 WHERE person_id = ?3 AND master_version = ?4",
            )?;
            for item in rewrapped {
                replaced += statement.execute(params![
                    i64::from(item.wrapped.master_version),
                    item.wrapped.bytes,
                    item.person.to_be_bytes().as_slice(),
                    i64::from(item.old_version),
                ])? as u64;
            }
        }
        transaction.commit()?;
        Ok(replaced)
    }

    fn versions_in_use(&self) -> Result<Vec<(u32, u64)>, VaultError> {
        let connection = self.reader()?;
        let mut statement = connection.prepare_cached(
            "SELECT master_version, COUNT(*) FROM vault_data_keys
             GROUP BY master_version ORDER BY master_version",
        )?;
        let mut rows = statement.query([])?;
        let mut versions = Vec::new();
        while let Some(row) = rows.next()? {
            versions.push((to_u32(row.get(0)?)?, to_u64(row.get(1)?)?));
        }
        Ok(versions)
    }

    fn shred(&self, person: PersonId, at_ns: u64) -> Result<bool, VaultError> {
        let mut connection = self.writer()?;
        let transaction = connection.transaction()?;
        let id = person.to_be_bytes();
        let inserted = transaction.execute(
            "INSERT INTO vault_erasures (person_id, erased_at_ns) VALUES (?1, ?2)
             ON CONFLICT (person_id) DO NOTHING",
            params![id.as_slice(), to_i64(at_ns)?],
        )?;
        transaction.execute(
            "DELETE FROM vault_data_keys WHERE person_id = ?1",
            params![id.as_slice()],
        )?;
        transaction.execute(
            "UPDATE vault_records SET blind_index = NULL, index_version = NULL
             WHERE person_id = ?1",
            params![id.as_slice()],
        )?;
        transaction.commit()?;
        Ok(inserted == 1)
    }

    fn record_key_version(&self, version: u32, at_ns: u64) -> Result<(), VaultError> {
        self.writer()?
            .prepare_cached(
                "INSERT INTO vault_key_versions (version, recorded_at_ns) VALUES (?1, ?2)
                 ON CONFLICT (version) DO NOTHING",
            )?
            .execute(params![i64::from(version), to_i64(at_ns)?])?;
        Ok(())
    }

    fn newest_key_version(&self) -> Result<Option<u32>, VaultError> {
        newest_key_version_on(&*self.reader()?)
    }
}
