//! Time as the ledger sees it: nanoseconds since the Unix epoch, from a [`Clock`].
//!
//! Production uses [`SystemClock`]; tests use [`ManualClock`] and move time by hand
//! (pending-transfer timeouts, interest, renewals), so no test ever sleeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// A source of wall-clock time in nanoseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> u64;
}

/// The machine's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        // A clock before 1970 is a misconfigured machine; report the epoch rather than
        // panic, the ledger keeps its own timestamps strictly increasing anyway.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to. Cloning shares the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now_ns: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start_ns: u64) -> Self {
        Self {
            now_ns: Arc::new(AtomicU64::new(start_ns)),
        }
    }

    pub fn advance_ns(&self, delta_ns: u64) {
        self.now_ns.fetch_add(delta_ns, Ordering::SeqCst);
    }

    pub fn advance_seconds(&self, delta_seconds: u64) {
        self.advance_ns(delta_seconds.saturating_mul(NANOS_PER_SECOND));
    }

    pub fn set_ns(&self, now_ns: u64) {
        self.now_ns.store(now_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let clock = ManualClock::new(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ns(), 1_000);
        other.advance_seconds(2);
        assert_eq!(clock.now_ns(), 1_000 + 2 * NANOS_PER_SECOND);
        clock.set_ns(5);
        assert_eq!(other.now_ns(), 5);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_ns() > 1_577_836_800 * NANOS_PER_SECOND);
    }
}
