//! [`PostgresVaultStore`]: the vault's `vault_*` tables in the ledger's PostgreSQL
//! database (or in a given schema). The access log is append-only by a trigger that
//! raises on UPDATE, DELETE and TRUNCATE; production should also grant the service
//! role INSERT and SELECT only on it.

use std::sync::{Mutex, MutexGuard};

use postgres::{Client, NoTls, Row};

use super::{
    id_from_bytes, index_from_parts, limit_rows, to_i64, to_u32, to_u64, DataKeyState, NewPerson,
    Rewrapped, SealedRecord, TokenRecord, VaultStore,
};
use crate::access::{AccessLogEntry, AccessOutcome, FieldKind};
use crate::blind_index::BlindIndex;
use crate::envelope::WrappedDataKey;
use crate::token::TokenId;
use crate::{PersonId, RecordId, VaultError};

/// Advisory lock that serializes the vault's schema setup across processes.
const SCHEMA_LOCK_KEY: i64 = 0x6d_76_61_75_6c_74; // "mvault"
/// Longest schema name accepted.
const SCHEMA_NAME_BYTES_MAX: usize = 63;

/// The schema, in order; each version is applied once and recorded in
/// `vault_schema_migrations`, under an advisory lock so concurrent starts agree.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_vault.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_key_versions.sql"),
    ),
];

const RECORD_COLUMNS: &str =
    "record_id, person_id, field_kind, ciphertext, blind_index, index_version, created_at_ns";

/// Two connections: one for writes, one for reads, so rotation batches don't stall
/// readers behind a mutex.
pub struct PostgresVaultStore {
    writer: Mutex<Client>,
    reader: Mutex<Client>,
}

impl PostgresVaultStore {
    /// Connects and creates the `vault_*` tables if needed. With `schema`, every
    /// connection works in that (existing) schema instead of the default path.
    pub fn connect(url: &str, schema: Option<&str>) -> Result<PostgresVaultStore, VaultError> {
        if let Some(name) = schema {
            if name.is_empty()
                || name.len() > SCHEMA_NAME_BYTES_MAX
                || !name
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
            {
                return Err(VaultError::InvalidInput(
                    "a schema name is 1 to 63 lowercase letters, digits and underscores",
                ));
            }
        }
        let mut writer = connect_one(url, schema)?;
        let mut transaction = writer.transaction()?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])?;
        migrate(&mut transaction)?;
        transaction.commit()?;
        let reader = connect_one(url, schema)?;
        Ok(PostgresVaultStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn writer(&self) -> Result<MutexGuard<'_, Client>, VaultError> {
        self.writer
            .lock()
            .map_err(|_| VaultError::Store("writer connection poisoned".into()))
    }

    fn reader(&self) -> Result<MutexGuard<'_, Client>, VaultError> {
        self.reader
            .lock()
            .map_err(|_| VaultError::Store("reader connection poisoned".into()))
    }
}

fn connect_one(url: &str, schema: Option<&str>) -> Result<Client, VaultError> {
    let mut client = Client::connect(url, NoTls)?;
    if let Some(name) = schema {
        // The name was checked to be [a-z0-9_]+, so quoting it is enough.
        client.batch_execute(&format!("SET search_path TO \"{name}\""))?;
    }
    Ok(client)
}

fn read_record(row: &Row) -> Result<SealedRecord, VaultError> {
    let kind: String = row.try_get(2)?;
    Ok(SealedRecord {
        record: RecordId::from_raw(id_from_bytes(row.try_get(0)?)?),
        person: PersonId::from_raw(id_from_bytes(row.try_get(1)?)?),
        kind: FieldKind::parse(&kind)?,
        ciphertext: row.try_get(3)?,
        blind_index: index_from_parts(row.try_get(4)?, row.try_get(5)?)?,
        created_at_ns: to_u64(row.try_get(6)?)?,
    })
}

fn read_token(row: &Row) -> Result<TokenRecord, VaultError> {
    let token: String = row.try_get(0)?;
    Ok(TokenRecord {
        token: TokenId::parse(&token)?,
        person: PersonId::from_raw(id_from_bytes(row.try_get(1)?)?),
        record: RecordId::from_raw(id_from_bytes(row.try_get(2)?)?),
        last4: row.try_get(3)?,
    })
}

/// Applies every migration the database lacks (inside the caller's locked
/// transaction).
fn migrate(transaction: &mut postgres::Transaction<'_>) -> Result<(), VaultError> {
    transaction.batch_execute(
        "CREATE TABLE IF NOT EXISTS vault_schema_migrations (version bigint PRIMARY KEY)",
    )?;
    for (version, sql) in MIGRATIONS {
        let applied = transaction
            .query_opt(
                "SELECT 1 FROM vault_schema_migrations WHERE version = $1",
                &[version],
            )?
            .is_some();
        if !applied {
            transaction.batch_execute(sql)?;
            transaction.execute(
                "INSERT INTO vault_schema_migrations (version) VALUES ($1)",
                &[version],
            )?;
        }
    }
    Ok(())
}

/// Refuses a new data key wrapped under a master version older than the newest
/// one recorded: a process with a stale key ring must reload it first, or the
/// version it uses could be retired under it.
fn refuse_stale_version(
    client: &mut impl postgres::GenericClient,
    version: u32,
) -> Result<(), VaultError> {
    if let Some(newest) = newest_key_version_on(client)? {
        if version < newest {
            return Err(VaultError::StaleMasterVersion { version, newest });
        }
    }
    Ok(())
}

fn newest_key_version_on(
    client: &mut impl postgres::GenericClient,
) -> Result<Option<u32>, VaultError> {
    let newest: Option<i32> = client
        .query_one("SELECT MAX(version) FROM vault_key_versions", &[])?
        .try_get(0)?;
    newest.map(|version| to_u32(i64::from(version))).transpose()
}

fn version_i32(version: u32) -> Result<i32, VaultError> {
    i32::try_from(version).map_err(|_| VaultError::Invariant("a key version exceeds i32"))
}

fn insert_record_on(
    client: &mut impl postgres::GenericClient,
    record: &SealedRecord,
) -> Result<(), VaultError> {
    let index = record
        .blind_index
        .as_ref()
        .map(|index| index.bytes.to_vec());
    let index_version = record
        .blind_index
        .as_ref()
        .map(|index| i64::from(index.index_version));
    client.execute(
        &format!(
            "INSERT INTO vault_records ({RECORD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        &[
            &record.record.to_be_bytes().as_slice(),
            &record.person.to_be_bytes().as_slice(),
            &record.kind.code(),
            &record.ciphertext,
            &index,
            &index_version,
            &to_i64(record.created_at_ns)?,
        ],
    )?;
    Ok(())
}

fn data_key_on(
    client: &mut impl postgres::GenericClient,
    person: PersonId,
) -> Result<DataKeyState, VaultError> {
    let id = person.to_be_bytes();
    let key = client.query_opt(
        "SELECT master_version, wrapped FROM vault_data_keys WHERE person_id = $1",
        &[&id.as_slice()],
    )?;
    if let Some(row) = key {
        let version: i32 = row.try_get(0)?;
        return Ok(DataKeyState::Active(WrappedDataKey {
            master_version: to_u32(i64::from(version))?,
            bytes: row.try_get(1)?,
        }));
    }
    let erased = client
        .query_opt(
            "SELECT 1 FROM vault_erasures WHERE person_id = $1",
            &[&id.as_slice()],
        )?
        .is_some();
    Ok(if erased {
        DataKeyState::Erased
    } else {
        DataKeyState::Absent
    })
}

impl VaultStore for PostgresVaultStore {
    fn data_key(&self, person: PersonId) -> Result<DataKeyState, VaultError> {
        data_key_on(&mut *self.reader()?, person)
    }

    fn insert_data_key(
        &self,
        person: PersonId,
        wrapped: &WrappedDataKey,
        at_ns: u64,
    ) -> Result<DataKeyState, VaultError> {
        let mut client = self.writer()?;
        let mut transaction = client.transaction()?;
        refuse_stale_version(&mut transaction, wrapped.master_version)?;
        let id = person.to_be_bytes();
        transaction.execute(
            "INSERT INTO vault_data_keys (person_id, master_version, wrapped, created_at_ns)
             SELECT $1, $2, $3, $4
             WHERE NOT EXISTS (SELECT 1 FROM vault_erasures WHERE person_id = $1)
             ON CONFLICT (person_id) DO NOTHING",
            &[
                &id.as_slice(),
                &version_i32(wrapped.master_version)?,
                &wrapped.bytes,
                &to_i64(at_ns)?,
            ],
        )?;
        let state = data_key_on(&mut transaction, person)?;
        transaction.commit()?;
        Ok(state)
    }

    fn insert_record(
        &self,
        record: &SealedRecord,
        token: Option<&TokenRecord>,
    ) -> Result<(), VaultError> {
        let mut client = self.writer()?;
        let mut transaction = client.transaction()?;
        insert_record_on(&mut transaction, record)?;
        if let Some(token) = token {
            transaction.execute(
                "INSERT INTO vault_tokens (token, person_id, record_id, last4)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &token.token.as_str(),
                    &token.person.to_be_bytes().as_slice(),
                    &token.record.to_be_bytes().as_slice(),
                    &token.last4,
                ],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn insert_people(&self, people: &[NewPerson]) -> Result<(), VaultError> {
        let mut client = self.writer()?;
        let mut transaction = client.transaction()?;
        // One check for the batch: its oldest version.
        if let Some(oldest) = people.iter().map(|new| new.wrapped.master_version).min() {
            refuse_stale_version(&mut transaction, oldest)?;
        }
        for new in people {
            transaction.execute(
                "INSERT INTO vault_data_keys (person_id, master_version, wrapped, created_at_ns)
                 VALUES ($1, $2, $3, $4)",
                &[
                    &new.person.to_be_bytes().as_slice(),
                    &version_i32(new.wrapped.master_version)?,
                    &new.wrapped.bytes,
                    &to_i64(new.record.created_at_ns)?,
                ],
            )?;
            insert_record_on(&mut transaction, &new.record)?;
        }
        transaction.commit()?;
        Ok(())
    }

    fn record(&self, record: RecordId) -> Result<Option<SealedRecord>, VaultError> {
        let row = self.reader()?.query_opt(
            &format!("SELECT {RECORD_COLUMNS} FROM vault_records WHERE record_id = $1"),
            &[&record.to_be_bytes().as_slice()],
        )?;
        row.as_ref().map(read_record).transpose()
    }

    fn records_of_person(
        &self,
        person: PersonId,
        limit: usize,
    ) -> Result<Vec<SealedRecord>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let rows = self.reader()?.query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM vault_records WHERE person_id = $1
                 ORDER BY created_at_ns, record_id LIMIT $2"
            ),
            &[&person.to_be_bytes().as_slice(), &limit],
        )?;
        rows.iter().map(read_record).collect()
    }

    fn find_blind_index(
        &self,
        kind: FieldKind,
        index: &BlindIndex,
        limit: usize,
    ) -> Result<Vec<(PersonId, RecordId)>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let rows = self.reader()?.query(
            "SELECT person_id, record_id FROM vault_records
             WHERE field_kind = $1 AND blind_index = $2 AND index_version = $3 LIMIT $4",
            &[
                &kind.code(),
                &index.bytes.as_slice(),
                &i64::from(index.index_version),
                &limit,
            ],
        )?;
        rows.iter()
            .map(|row| {
                Ok((
                    PersonId::from_raw(id_from_bytes(row.try_get(0)?)?),
                    RecordId::from_raw(id_from_bytes(row.try_get(1)?)?),
                ))
            })
            .collect()
    }

    fn token(&self, token: &TokenId) -> Result<Option<TokenRecord>, VaultError> {
        let row = self.reader()?.query_opt(
            "SELECT token, person_id, record_id, last4 FROM vault_tokens WHERE token = $1",
            &[&token.as_str()],
        )?;
        row.as_ref().map(read_token).transpose()
    }

    fn tokens_of_person(
        &self,
        person: PersonId,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let rows = self.reader()?.query(
            "SELECT token, person_id, record_id, last4 FROM vault_tokens
             WHERE person_id = $1 ORDER BY token LIMIT $2",
            &[&person.to_be_bytes().as_slice(), &limit],
        )?;
        rows.iter().map(read_token).collect()
    }

    fn append_access(&self, entry: &AccessLogEntry) -> Result<u64, VaultError> {
        let row = self.writer()?.query_one(
            "INSERT INTO vault_access_log
             (at_ns, role, actor, person_id, record_id, field_kind, reason, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING sequence",
            &[
                &to_i64(entry.at_ns)?,
                &entry.role,
                &entry.actor,
                &entry.person.to_be_bytes().as_slice(),
                &entry.record.to_be_bytes().as_slice(),
                &entry.field,
                &entry.reason,
                &entry.outcome.code(),
            ],
        )?;
        to_u64(row.try_get(0)?)
    }

    fn access_log(
        &self,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<AccessLogEntry>, VaultError> {
        let limit = to_i64(limit_rows(limit)? as u64)?;
        let rows = self.reader()?.query(
            "SELECT sequence, at_ns, role, actor, person_id, record_id, field_kind, reason, outcome
             FROM vault_access_log WHERE sequence > $1 ORDER BY sequence LIMIT $2",
            &[&to_i64(after_sequence)?, &limit],
        )?;
        rows.iter()
            .map(|row| {
                let outcome: String = row.try_get(8)?;
                Ok(AccessLogEntry {
                    sequence: to_u64(row.try_get(0)?)?,
                    at_ns: to_u64(row.try_get(1)?)?,
                    role: row.try_get(2)?,
                    actor: row.try_get(3)?,
                    person: PersonId::from_raw(id_from_bytes(row.try_get(4)?)?),
                    record: RecordId::from_raw(id_from_bytes(row.try_get(5)?)?),
                    field: row.try_get(6)?,
                    reason: row.try_get(7)?,
                    outcome: AccessOutcome::parse(&outcome)?,
                })
            })
            .collect()
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
        let rows = self.reader()?.query(
            "SELECT person_id, master_version, wrapped FROM vault_data_keys
             WHERE master_version < $1 LIMIT $2",
            &[&version_i32(version)?, &to_i64(limit as u64)?],
        )?;
        rows.iter()
            .map(|row| {
                let master_version: i32 = row.try_get(1)?;
                Ok((
                    PersonId::from_raw(id_from_bytes(row.try_get(0)?)?),
                    WrappedDataKey {
                        master_version: to_u32(i64::from(master_version))?,
                        bytes: row.try_get(2)?,
                    },
                ))
            })
            .collect()
    }

    fn replace_data_keys(&self, rewrapped: &[Rewrapped]) -> Result<u64, VaultError> {
        let people: Vec<Vec<u8>> = rewrapped
            .iter()
            .map(|item| item.person.to_be_bytes().to_vec())
            .collect();
        let old_versions = rewrapped
            .iter()
            .map(|item| version_i32(item.old_version))
            .collect::<Result<Vec<i32>, VaultError>>()?;
        let new_versions = rewrapped
            .iter()
            .map(|item| version_i32(item.wrapped.master_version))
            .collect::<Result<Vec<i32>, VaultError>>()?;
        let wrapped: Vec<&[u8]> = rewrapped
            .iter()
            .map(|item| item.wrapped.bytes.as_slice())
            .collect();
        // One statement per batch: a round trip per key would bound rotation by
        // network latency rather than by the database.
        let replaced = self.writer()?.execute(
            "UPDATE vault_data_keys AS keys
             SET master_version = batch.new_version, wrapped = batch.wrapped
             FROM unnest($1::bytea[], $2::integer[], $3::integer[], $4::bytea[])
                 AS batch (person_id, old_version, new_version, wrapped)
             WHERE keys.person_id = batch.person_id
               AND keys.master_version = batch.old_version",
            &[&people, &old_versions, &new_versions, &wrapped],
        )?;
        Ok(replaced)
    }

    fn versions_in_use(&self) -> Result<Vec<(u32, u64)>, VaultError> {
        let rows = self.reader()?.query(
            "SELECT master_version, COUNT(*) FROM vault_data_keys
             GROUP BY master_version ORDER BY master_version",
            &[],
        )?;
        rows.iter()
            .map(|row| {
                let version: i32 = row.try_get(0)?;
                Ok((to_u32(i64::from(version))?, to_u64(row.try_get(1)?)?))
            })
            .collect()
    }

    fn shred(&self, person: PersonId, at_ns: u64) -> Result<bool, VaultError> {
        let mut client = self.writer()?;
        let mut transaction = client.transaction()?;
        let id = person.to_be_bytes();
        let inserted = transaction.execute(
            "INSERT INTO vault_erasures (person_id, erased_at_ns) VALUES ($1, $2)
             ON CONFLICT (person_id) DO NOTHING",
            &[&id.as_slice(), &to_i64(at_ns)?],
        )?;
        transaction.execute(
            "DELETE FROM vault_data_keys WHERE person_id = $1",
            &[&id.as_slice()],
        )?;
        transaction.execute(
            "UPDATE vault_records SET blind_index = NULL, index_version = NULL
             WHERE person_id = $1",
            &[&id.as_slice()],
        )?;
        transaction.commit()?;
        Ok(inserted == 1)
    }

    fn record_key_version(&self, version: u32, at_ns: u64) -> Result<(), VaultError> {
        self.writer()?.execute(
            "INSERT INTO vault_key_versions (version, recorded_at_ns) VALUES ($1, $2)
             ON CONFLICT (version) DO NOTHING",
            &[&version_i32(version)?, &to_i64(at_ns)?],
        )?;
        Ok(())
    }

    fn newest_key_version(&self) -> Result<Option<u32>, VaultError> {
        newest_key_version_on(&mut *self.reader()?)
    }
}
