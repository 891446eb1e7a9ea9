//! Answers committed batches once they are durable, from a thread of its own.
//!
//! A store whose commit returns before its disk flush (SQLite with
//! `synchronous=NORMAL`) gives the writer a [`DeferredSync`]. The writer commits a
//! batch and hands its answers here; this thread flushes once for every batch that
//! arrived meanwhile and only then answers their callers. Meanwhile the writer is
//! already building and writing the next batch: on this machine's disk a flush of a
//! hundred pages takes about as long as building and writing a batch of payments,
//! so the two overlap instead of adding up. No caller hears of a batch before the
//! flush that made it durable returned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::store::{DeferredSync, StoreError};
use crate::writer::{LedgerError, Reply, SubmissionResult, WriterStats};

/// Committed batches waiting for their flush before the writer must wait.
const WAITING_BATCHES_MAX: usize = 1_024;

/// One committed batch's answers.
pub(crate) type Answers = Vec<(Reply, SubmissionResult)>;

pub(crate) struct Syncer {
    sender: Option<SyncSender<Answers>>,
    handle: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

impl Syncer {
    pub(crate) fn start(
        sync: Box<dyn DeferredSync>,
        stats: Arc<WriterStats>,
    ) -> Result<Syncer, LedgerError> {
        let (sender, receiver) = sync_channel(WAITING_BATCHES_MAX);
        let failed = Arc::new(AtomicBool::new(false));
        let thread_failed = failed.clone();
        let handle = std::thread::Builder::new()
            .name("mizan-ledger-sync".into())
            .spawn(move || run(sync, receiver, &stats, &thread_failed))
            .map_err(|error| LedgerError::Store(StoreError::Database(error.to_string())))?;
        Ok(Syncer {
            sender: Some(sender),
            handle: Some(handle),
            failed,
        })
    }

    /// True once a flush failed: nothing committed since can be called durable.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Queues a committed batch's answers behind its flush (waits while the queue is
    /// full). Answers the callers with an error at once if the sync thread is gone.
    pub(crate) fn answer_when_durable(&self, answers: Answers) {
        let Some(sender) = &self.sender else {
            return fail_all(answers, "the sync thread has stopped");
        };
        match sender.try_send(answers) {
            Ok(()) => {}
            Err(TrySendError::Full(answers)) => {
                if let Err(unsent) = sender.send(answers) {
                    fail_all(unsent.0, "the sync thread has stopped");
                }
            }
            Err(TrySendError::Disconnected(answers)) => {
                fail_all(answers, "the sync thread has stopped");
            }
        }
    }

    /// Flushes what is queued, answers it, and joins the thread.
    pub(crate) fn stop(&mut self) {
        self.sender = None;
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                tracing::error!("the ledger's sync thread panicked");
            }
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fail_all(answers: Answers, why: &str) {
    let error = Arc::new(LedgerError::Store(StoreError::Database(why.to_owned())));
    for (reply, _) in answers {
        let _ = reply.send(Err(error.clone()));
    }
}

fn run(
    mut sync: Box<dyn DeferredSync>,
    receiver: Receiver<Answers>,
    stats: &WriterStats,
    failed: &AtomicBool,
) {
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while let Ok(more) = receiver.try_recv() {
            group.push(more);
        }
        if failed.load(Ordering::Acquire) {
            group.into_iter().for_each(|answers| {
                fail_all(answers, "an earlier flush failed; the writer stopped")
            });
            continue;
        }
        let started = Instant::now();
        match sync.sync() {
            Ok(()) => {
                add(&stats.sync_nanos_total, started);
                stats.syncs.fetch_add(1, Ordering::Relaxed);
                for (reply, result) in group.into_iter().flatten() {
                    // A caller that gave up waiting is no error: its work is durable.
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) => {
                // After a failed flush the kernel may have dropped the dirty pages:
                // what was committed since the last good flush may not be on disk.
                // Say so to everyone waiting, and make the writer stop.
                tracing::error!(%error, "flushing committed batches failed; the ledger stops");
                failed.store(true, Ordering::Release);
                let why = format!("flushing to disk failed: {error}");
                group
                    .into_iter()
                    .for_each(|answers| fail_all(answers, &why));
            }
        }
    }
}

fn add(counter: &AtomicU64, since: Instant) {
    let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    counter.fetch_add(nanos, Ordering::Relaxed);
}
