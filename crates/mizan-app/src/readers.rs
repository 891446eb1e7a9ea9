//! [`ReaderPool`]: a few `LedgerReader`s shared by every request, so reads run side
//! by side (SQLite in WAL mode lets readers proceed together; on PostgreSQL each is
//! its own connection) instead of queueing on one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mizan_ledger::store::ClosedReader;
use mizan_ledger::LedgerReader;

/// Most readers one pool holds.
pub const READERS_MAX: usize = 64;
/// Collections whose documents are written once and never rewritten, so a read can
/// be kept in memory: a handle names the same person forever, and a person
/// document holds only what never changes (id, handle, e-mail, sign-up time).
/// A collection that ever gets updated must leave this list.
pub const IMMUTABLE_COLLECTIONS: [&str; 2] = ["handles", "people"];
/// Most write-once documents kept; the cache starts over when full.
pub const IMMUTABLE_CACHE_MAX: usize = 100_000;

/// Write-once documents by (collection, key).
type ImmutableCache = HashMap<(&'static str, String), Arc<[u8]>>;

pub struct ReaderPool {
    /// Documents of collections that are written once and never changed, by
    /// (collection, key); found ones only (a missing key may appear later).
    immutable: Mutex<ImmutableCache>,
    readers: Vec<Mutex<Box<dyn LedgerReader>>>,
    next: AtomicUsize,
    /// Read on the calling (async) thread: right for SQLite, whose point reads take
    /// microseconds — a hop to the blocking pool costs more than the read. Network
    /// stores (PostgreSQL) read on the blocking pool.
    inline: bool,
}

/// A read run on the blocking pool panicked.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a ledger read panicked")]
pub struct ReadPanicked;

fn lock_ignoring_poison<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A reader stays valid if a holder panicked: every call is a fresh query.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ReaderPool {
    /// A pool over `readers` (1 to [`READERS_MAX`]; an empty list gets one closed
    /// reader, extra ones are dropped).
    pub fn new(mut readers: Vec<Box<dyn LedgerReader>>, inline: bool) -> ReaderPool {
        readers.truncate(READERS_MAX);
        if readers.is_empty() {
            readers.push(Box::new(ClosedReader));
        }
        ReaderPool {
            immutable: Mutex::new(HashMap::new()),
            readers: readers.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            inline,
        }
    }

    /// Runs `read` on a reader: inline for a local store, else on the blocking pool.
    pub async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, ReadPanicked>
    where
        F: FnOnce(&mut dyn LedgerReader) -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.inline {
            return Ok(read(&mut **self.lock()));
        }
        let pool = self.clone();
        tokio::task::spawn_blocking(move || read(&mut **pool.lock()))
            .await
            .map_err(|_| ReadPanicked)
    }

    pub fn len(&self) -> usize {
        self.readers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }

    /// A reader to use now: the first free one from a rotating start, else (all
    /// busy) the next in turn, waited for. Blocking: call it off the async workers.
    pub fn lock(&self) -> MutexGuard<'_, Box<dyn LedgerReader>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.readers.len();
        for offset in 0..count {
            let mutex = &self.readers[(start + offset) % count];
            match mutex.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        lock_ignoring_poison(&self.readers[start % count])
    }

    /// A write-once document read before (see [`IMMUTABLE_COLLECTIONS`]).
    pub fn cached(&self, collection: &'static str, key: &str) -> Option<Arc<[u8]>> {
        if !IMMUTABLE_COLLECTIONS.contains(&collection) {
            return None;
        }
        lock_ignoring_poison(&self.immutable)
            .get(&(collection, key.to_owned()))
            .cloned()
    }

    /// Keeps a write-once document just read; other collections are ignored.
    pub fn remember(&self, collection: &'static str, key: String, body: &[u8]) {
        if !IMMUTABLE_COLLECTIONS.contains(&collection) {
            return;
        }
        let mut cache = lock_ignoring_poison(&self.immutable);
        if cache.len() >= IMMUTABLE_CACHE_MAX {
            cache.clear();
        }
        cache.insert((collection, key), Arc::from(body));
    }

    /// Swaps every reader for a [`ClosedReader`] and drops the real ones here (a
    /// PostgreSQL client must be dropped off the async runtime). Blocking.
    pub fn close(&self) {
        for mutex in &self.readers {
            let open = std::mem::replace(&mut *lock_ignoring_poison(mutex), Box::new(ClosedReader));
            drop(open);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use mizan_ledger::StoreError;

    use super::*;

    #[test]
    fn a_busy_reader_is_skipped_and_close_closes_all() {
        let pool = ReaderPool::new(vec![Box::new(ClosedReader), Box::new(ClosedReader)], true);
        assert_eq!(pool.len(), 2);
        let first = pool.lock();
        // With one held, the next lock takes the other without waiting.
        let second = pool.lock();
        drop((first, second));
        pool.close();
        assert!(matches!(pool.lock().chain_head(), Err(StoreError::Closed)));
        // Only write-once collections are remembered.
        pool.remember("handles", "sara".into(), b"id");
        pool.remember("sessions", "token".into(), b"id");
        assert_eq!(pool.cached("handles", "sara").as_deref(), Some(&b"id"[..]));
        assert_eq!(pool.cached("sessions", "token"), None);
        assert_eq!(pool.cached("handles", "omar"), None);
        assert_eq!(ReaderPool::new(Vec::new(), false).len(), 1);
    }
}
