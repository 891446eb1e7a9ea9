//! Projections for SQLite ([`mizan_ledger::ProjectionStore`]): read models rebuilt
//! from the outbox (a person's notifications), kept in a database file of their own
//! (`<ledger>.projections`) so writing them never takes the ledger's write lock nor
//! adds pages to its commits.
//!
//! The file commits with `synchronous=NORMAL` and is never flushed on purpose: a
//! projection is derived data. A process crash loses nothing (WAL mode); a power
//! loss may take back its last commits, rows and cursor together, and the projector
//! then derives them again from the ledger's outbox.

use std::path::{Path, PathBuf};

use mizan_ledger::{ProjectionStore, StoreError};
use rusqlite::{params, Connection, OptionalExtension};

use super::database_error;

/// Rows per multi-row INSERT (3 values each).
const INSERT_ROWS_MAX: usize = 256;

/// The projections database next to a ledger file.
pub fn projections_path(ledger_path: &Path) -> PathBuf {
    let mut name = ledger_path.as_os_str().to_owned();
    name.push(".projections");
    PathBuf::from(name)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS projected (
    projection TEXT NOT NULL,
    key TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (projection, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_cursors (
    projection TEXT PRIMARY KEY,
    through INTEGER NOT NULL
) WITHOUT ROWID;";

fn open(ledger_path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(projections_path(ledger_path)).map_err(database_error)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536;",
        )
        .map_err(database_error)?;
    connection.execute_batch(SCHEMA).map_err(database_error)?;
    Ok(connection)
}

/// Creates the projections database if needed.
pub fn create(ledger_path: &Path) -> Result<(), StoreError> {
    open(ledger_path).map(drop)
}

/// Removes the projections of an earlier ledger at the same path: a new ledger's
/// outbox starts again at sequence 1, which an old cursor would skip.
pub(super) fn remove(ledger_path: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = projections_path(ledger_path).into_os_string();
        file.push(suffix);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(StoreError::Database(format!(
                    "removing {}: {error}",
                    PathBuf::from(file).display()
                )))
            }
        }
    }
    Ok(())
}

/// The projector's connection to `<ledger>.projections`.
pub struct SqliteProjections {
    connection: Connection,
}

impl std::fmt::Debug for SqliteProjections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteProjections").finish_non_exhaustive()
    }
}

impl SqliteProjections {
    /// Opens (creating if needed) the projections of the ledger at `ledger_path`.
    pub fn open(ledger_path: &Path) -> Result<SqliteProjections, StoreError> {
        let connection = open(ledger_path)?;
        connection.set_prepared_statement_cache_capacity(64);
        Ok(SqliteProjections { connection })
    }
}

impl ProjectionStore for SqliteProjections {
    fn projected_through(&mut self, projection: &str) -> Result<u64, StoreError> {
        let through: Option<i64> = self
            .connection
            .prepare_cached("SELECT through FROM projection_cursors WHERE projection = ?1")
            .map_err(database_error)?
            .query_row([projection], |row| row.get(0))
            .optional()
            .map_err(database_error)?;
        Ok(through.map_or(0, |through| u64::try_from(through).unwrap_or(0)))
    }

    fn project(
        &mut self,
        projection: &str,
        rows: &[(String, Vec<u8>)],
        through: u64,
    ) -> Result<(), StoreError> {
        let through = i64::try_from(through)
            .map_err(|_| StoreError::InvalidQuery("projection cursor out of range"))?;
        let transaction = self.connection.transaction().map_err(database_error)?;
        for chunk in rows.chunks(INSERT_ROWS_MAX) {
            let placeholders = vec!["(?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT OR REPLACE INTO projected (projection, key, body) VALUES {placeholders}"
            );
            let mut statement = transaction.prepare_cached(&sql).map_err(database_error)?;
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * 3);
            for (key, body) in chunk {
                values.push(&projection);
                values.push(key);
                values.push(body);
            }
            statement
                .execute(values.as_slice())
                .map_err(database_error)?;
        }
        transaction
            .execute(
                "INSERT INTO projection_cursors (projection, through) VALUES (?1, ?2) \
                 ON CONFLICT (projection) DO UPDATE SET through = max(through, excluded.through)",
                params![projection, through],
            )
            .map_err(database_error)?;
        transaction.commit().map_err(database_error)
    }
}
