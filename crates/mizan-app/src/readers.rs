//! [`ReaderPool`]: a few `LedgerReader`s shared by every request, so reads run side
//! by side (SQLite in WAL mode lets readers proceed together; on PostgreSQL each is
//! its own connection) instead of queueing on one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use mizan_ledger::store::ClosedReader;
use mizan_ledger::LedgerReader;

/// Most readers one pool holds.
pub const READERS_MAX: usize = 64;

pub struct ReaderPool {
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
}
