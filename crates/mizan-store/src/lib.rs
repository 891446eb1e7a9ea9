//! Storage for the ledger: SQLite (the embedded default) and PostgreSQL, both
//! implementing `mizan_ledger::LedgerStore` (the writer's side) and
//! `mizan_ledger::LedgerReader` (queries), checked by one conformance suite.

pub mod postgres;
mod postgres_history;
pub mod sqlite;

pub use postgres::{PostgresReader, PostgresStore};
pub use sqlite::{SqliteReader, SqliteStore};

use mizan_ledger::store::{HistoryFilter, DOCUMENTS_PAGE_LIMIT_MAX, HISTORY_PAGE_LIMIT_MAX};
use mizan_ledger::StoreError;

/// Checks a requested page size: 1 to `HISTORY_PAGE_LIMIT_MAX`, never silently clamped.
pub(crate) fn page_limit(filter: &HistoryFilter) -> Result<usize, StoreError> {
    if filter.limit == 0 || filter.limit > HISTORY_PAGE_LIMIT_MAX {
        return Err(StoreError::InvalidQuery(
            "page limit must be between 1 and 1000",
        ));
    }
    Ok(filter.limit)
}

/// Where the ledger lives: a SQLite file (the embedded default) or a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

/// File name of the ledger database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "mizan.sqlite";

impl Location {
    /// PostgreSQL when a URL is given, else `mizan.sqlite` in `data_dir`.
    pub fn from_config(data_dir: &std::path::Path, database_url: Option<&str>) -> Location {
        match database_url {
            Some(url) if !url.is_empty() => Location::Postgres(url.to_owned()),
            _ => Location::Sqlite(data_dir.join(SQLITE_FILE_NAME)),
        }
    }

    /// A description safe to log: the file path, or the PostgreSQL host without credentials.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => format!("sqlite:{}", path.display()),
            Location::Postgres(url) => {
                let host = url.rsplit('@').next().unwrap_or("postgres");
                format!(
                    "postgresql://…@{}",
                    host.trim_start_matches("postgres://")
                        .trim_start_matches("postgresql://")
                )
            }
        }
    }

    /// Opens the writer's side (SQLite: takes the single-writer lock).
    pub fn open_store(&self) -> Result<Box<dyn mizan_ledger::LedgerStore>, StoreError> {
        match self {
            Location::Sqlite(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|error| {
                        StoreError::Database(format!("{}: {error}", parent.display()))
                    })?;
                }
                Ok(Box::new(SqliteStore::open(path)?))
            }
            Location::Postgres(url) => Ok(Box::new(PostgresStore::connect(url)?)),
        }
    }

    /// Opens a read-only connection for queries.
    pub fn open_reader(&self) -> Result<Box<dyn mizan_ledger::LedgerReader>, StoreError> {
        match self {
            Location::Sqlite(path) => Ok(Box::new(SqliteReader::open(path)?)),
            Location::Postgres(url) => Ok(Box::new(PostgresReader::connect(url)?)),
        }
    }
}

/// Checks a requested number of documents: 1 to `DOCUMENTS_PAGE_LIMIT_MAX`.
pub(crate) fn documents_page_limit(limit: usize) -> Result<usize, StoreError> {
    if limit == 0 || limit > DOCUMENTS_PAGE_LIMIT_MAX {
        return Err(StoreError::InvalidQuery(
            "document page limit must be between 1 and 1000",
        ));
    }
    Ok(limit)
}

/// The smallest string greater than every string starting with `prefix`, in byte
/// order: U+10FFFF is the largest character, and its UTF-8 bytes the largest lead.
pub(crate) fn prefix_upper_bound(prefix: &str) -> String {
    let mut upper = prefix.to_owned();
    upper.push(char::MAX);
    upper
}
