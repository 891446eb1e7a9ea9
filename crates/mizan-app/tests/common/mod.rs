//! What the use-case tests start from: a SQLite ledger with its writer, the
//! platform accounts, a reader pool and a vault, in a directory of their own; and
//! people signed up with the test password.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::thread::JoinHandle;

use mizan_app::identity::{self, Email, Handle, Password, Person, SharedReader};
use mizan_app::payments;
use mizan_app::readers::ReaderPool;
use mizan_app::vault::SharedVault;
use mizan_core::{Clock, Secret};
use mizan_ledger::{Ledger, WriterConfig};
use mizan_store::Location;
use mizan_vault::{MasterKeyRing, SqliteVaultStore, Vault};

pub struct Started {
    pub dir: tempfile::TempDir,
    pub ledger: Ledger,
    pub writer: JoinHandle<()>,
    pub reader: SharedReader,
    pub vault: SharedVault,
}

/// Starts a fresh ledger on `clock`. Call it on a multi-threaded runtime: creating
/// the platform accounts blocks.
pub fn start(clock: Arc<dyn Clock>) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("mizan.sqlite"));
    let (ledger, writer) = Ledger::start(
        location.open_store().unwrap(),
        clock,
        WriterConfig::default(),
    )
    .unwrap();
    tokio::task::block_in_place(|| payments::ensure_platform_accounts(&ledger)).unwrap();
    let reader: SharedReader =
        Arc::new(ReaderPool::new(vec![location.open_reader().unwrap()], true));
    let store = SqliteVaultStore::open(&dir.path().join("mizan.vault.sqlite")).unwrap();
    let vault: SharedVault =
        Arc::new(Vault::open(Box::new(store), MasterKeyRing::generate()).unwrap());
    Started {
        dir,
        ledger,
        writer,
        reader,
        vault,
    }
}

/// Signs `handle` up (e-mail `{handle}@example.com`) at `now_ns`.
pub async fn sign_up(ledger: &Ledger, handle: &str, now_ns: u64) -> Person {
    identity::signup(
        ledger,
        Handle::parse(handle).unwrap(),
        Email::parse(&format!("{handle}@example.com")).unwrap(),
        Password::parse(Secret::new("a long enough password".to_owned())).unwrap(),
        now_ns,
    )
    .await
    .unwrap()
}
