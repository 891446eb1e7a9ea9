//! [`ReaderPool`]: a few `LedgerReader`s shared by every request, so reads run side
//! by side (SQLite in WAL mode lets readers proceed together; on PostgreSQL each is
//! its own connection) instead of queueing on one, and a [`DocumentCache`] of the
//! documents every request reads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mizan_ledger::store::ClosedReader;
use mizan_ledger::{BusinessRow, CommitObserver, LedgerReader};

/// Most readers one pool holds.
pub const READERS_MAX: usize = 64;
/// Collections whose documents are written once and never rewritten, so a read can
/// be kept in memory on any store: a handle names the same person forever, and a
/// person document holds only what never changes (id, handle, e-mail, sign-up
/// time). A collection that ever gets updated must leave this list.
pub const IMMUTABLE_COLLECTIONS: [&str; 2] = ["handles", "people"];
/// Collections that change, read by nearly every request: sessions, and what every
/// money movement checks (freezes, verification, licences). Kept in memory only by
/// a cache the writer tells of its commits ([`DocumentCache::observing`]).
pub const OBSERVED_COLLECTIONS: [&str; 4] = [
    crate::identity::COLLECTION_SESSIONS,
    crate::cases::COLLECTION_FREEZES,
    crate::verification::COLLECTION_VERIFICATIONS,
    crate::licences::COLLECTION_LICENCES,
];
/// Most documents kept; the cache starts over when full.
pub const DOCUMENT_CACHE_MAX: usize = 100_000;

/// A document as last read: its body, or `None` when no document had the key.
type Entry = Option<Arc<[u8]>>;

/// Documents by (collection, key), for [`IMMUTABLE_COLLECTIONS`] (found ones only:
/// a missing key may appear later) and, when observing, [`OBSERVED_COLLECTIONS`]
/// (missing ones too: a person is usually not frozen).
///
/// An observing cache is the ledger writer's [`CommitObserver`]: after every commit,
/// before any caller hears of it, the writer drops the keys the batch wrote and
/// bumps the generation. A reader fills the cache only if the generation has not
/// moved since before its database read, so a read from before a commit is never
/// kept after that commit's drop.
///
/// On a database other processes write too (PostgreSQL), the writer also tells it
/// when one of them committed ([`CommitObserver::foreign_commits`]), at its next
/// batch or idle wake-up: the cache then drops everything. Until then a document
/// another process changed may be read as it was — for at most the writer's idle
/// interval plus a batch (`mizan serve` wakes it every 100 ms on PostgreSQL).
#[derive(Debug, Default)]
pub struct DocumentCache {
    entries: Mutex<HashMap<(&'static str, String), Entry>>,
    generation: AtomicU64,
    observing: bool,
}

impl DocumentCache {
    /// A cache of write-once documents only.
    pub fn immutable() -> Arc<DocumentCache> {
        Arc::new(DocumentCache::default())
    }

    /// A cache that also keeps [`OBSERVED_COLLECTIONS`]: register it as the writer's
    /// observer ([`mizan_ledger::WriterConfig::observer`]); on a shared database,
    /// with a short idle interval, so other processes' commits are seen soon.
    pub fn observing() -> Arc<DocumentCache> {
        Arc::new(DocumentCache {
            observing: true,
            ..DocumentCache::default()
        })
    }

    /// The collection's own `&'static` name, when its documents are cached.
    fn cached_collection(&self, collection: &str) -> Option<&'static str> {
        let immutable = IMMUTABLE_COLLECTIONS.iter();
        let observed = OBSERVED_COLLECTIONS.iter().filter(|_| self.observing);
        immutable
            .chain(observed)
            .find(|name| **name == collection)
            .copied()
    }

    /// The generation to pass to [`DocumentCache::fill`] after a database read.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The document as last read, if it is kept: `Some(None)` when it was missing.
    pub fn get(&self, collection: &str, key: &str) -> Option<Entry> {
        let collection = self.cached_collection(collection)?;
        lock_ignoring_poison(&self.entries)
            .get(&(collection, key.to_owned()))
            .cloned()
    }

    /// Keeps what a read found, unless a commit touched cached documents since
    /// `generation` was taken (before the read).
    pub fn fill(&self, collection: &str, key: String, body: Option<&[u8]>, generation: u64) {
        let Some(collection) = self.cached_collection(collection) else {
            return;
        };
        if body.is_none() && !OBSERVED_COLLECTIONS.contains(&collection) {
            return;
        }
        let mut entries = lock_ignoring_poison(&self.entries);
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.len() >= DOCUMENT_CACHE_MAX {
            entries.clear();
        }
        entries.insert((collection, key), body.map(Arc::from));
    }
}

impl CommitObserver for DocumentCache {
    fn committed(&self, rows: &[BusinessRow]) {
        let mut entries = lock_ignoring_poison(&self.entries);
        let mut touched = false;
        for (collection, key) in rows.iter().filter_map(BusinessRow::document_key) {
            if let Some(collection) = self.cached_collection(collection) {
                entries.remove(&(collection, key.to_owned()));
                touched = true;
            }
        }
        if touched {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn foreign_commits(&self) {
        let mut entries = lock_ignoring_poison(&self.entries);
        entries.clear();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct ReaderPool {
    documents: Arc<DocumentCache>,
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
    /// reader, extra ones are dropped) that keeps write-once documents in memory.
    pub fn new(readers: Vec<Box<dyn LedgerReader>>, inline: bool) -> ReaderPool {
        ReaderPool::with_cache(readers, inline, DocumentCache::immutable())
    }

    /// [`ReaderPool::new`] with the given document cache (an observing one, see
    /// [`DocumentCache::observing`]).
    pub fn with_cache(
        mut readers: Vec<Box<dyn LedgerReader>>,
        inline: bool,
        documents: Arc<DocumentCache>,
    ) -> ReaderPool {
        readers.truncate(READERS_MAX);
        if readers.is_empty() {
            readers.push(Box::new(ClosedReader));
        }
        ReaderPool {
            documents,
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

    /// The pool's document cache.
    pub fn documents(&self) -> &DocumentCache {
        &self.documents
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
        assert_eq!(ReaderPool::new(Vec::new(), false).len(), 1);
    }

    fn document(collection: &str, key: &str, body: &[u8]) -> BusinessRow {
        BusinessRow::Document {
            collection: collection.to_owned(),
            key: key.to_owned(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn without_observing_only_found_write_once_documents_are_kept() {
        let cache = DocumentCache::immutable();
        let generation = cache.generation();
        cache.fill("handles", "sara".into(), Some(b"id"), generation);
        cache.fill("handles", "omar".into(), None, generation);
        cache.fill("sessions", "token".into(), Some(b"s"), generation);
        assert_eq!(
            cache.get("handles", "sara"),
            Some(Some(Arc::from(&b"id"[..])))
        );
        assert_eq!(cache.get("handles", "omar"), None);
        assert_eq!(cache.get("sessions", "token"), None);
    }

    #[test]
    fn an_observing_cache_drops_what_a_commit_wrote_and_keeps_no_read_from_before_it() {
        let cache = DocumentCache::observing();
        let freezes = crate::cases::COLLECTION_FREEZES;
        let generation = cache.generation();
        cache.fill(freezes, "p1".into(), None, generation);
        cache.fill("sessions", "t1".into(), Some(b"live"), generation);
        cache.fill("payments", "x".into(), Some(b"not kept"), generation);
        assert_eq!(cache.get(freezes, "p1"), Some(None));
        assert_eq!(cache.get("payments", "x"), None);
        // A read that began before a commit of the key is not kept after it.
        let before_commit = cache.generation();
        cache.committed(&[document(freezes, "p1", b"frozen")]);
        assert_eq!(cache.get(freezes, "p1"), None);
        cache.fill(freezes, "p1".into(), None, before_commit);
        assert_eq!(cache.get(freezes, "p1"), None);
        // Other keys stay; a read after the commit is kept.
        assert_eq!(
            cache.get("sessions", "t1"),
            Some(Some(Arc::from(&b"live"[..])))
        );
        cache.fill(freezes, "p1".into(), Some(b"frozen"), cache.generation());
        assert_eq!(
            cache.get(freezes, "p1"),
            Some(Some(Arc::from(&b"frozen"[..])))
        );
        // A delete drops the key too; rows of other collections leave the generation.
        let generation = cache.generation();
        cache.committed(&[document("payments", "x", b"y")]);
        assert_eq!(cache.generation(), generation);
        cache.committed(&[BusinessRow::Delete {
            collection: "sessions".into(),
            key: "t1".into(),
        }]);
        assert_eq!(cache.get("sessions", "t1"), None);
    }
}
