//! Rate limits per client IP, per person and per app: the generic cell rate
//! algorithm (GCRA), one stored "theoretical arrival time" per key.
//!
//! A limit of `n` per minute lets a key send one request every `60/n` seconds on
//! average with a burst of `n/6` (ten seconds' worth) on top; past that a request is
//! refused with the time until the next one would pass (`Retry-After`). Memory is
//! bounded: at most [`KEYS_MAX`] keys; when full, keys whose bucket has refilled are
//! forgotten (they behave exactly like new keys), and if every key is still active
//! a new key is refused for a second rather than letting the table grow.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Most keys one limiter remembers.
pub const KEYS_MAX: usize = 100_000;
const NANOS_PER_MINUTE: u64 = 60_000_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    Ip(std::net::IpAddr),
    Person(u128),
    App(String),
}

#[derive(Debug)]
pub struct RateLimiter {
    /// Nanoseconds between requests at the sustained rate; 0 = unlimited.
    interval_ns: u64,
    /// How far ahead of now a key's arrival time may run (the burst).
    tolerance_ns: u64,
    arrivals: Mutex<HashMap<RateKey, u64>>,
}

impl RateLimiter {
    /// `per_minute` requests a minute (0 turns the limiter off).
    pub fn per_minute(per_minute: u32) -> RateLimiter {
        let interval_ns = if per_minute == 0 {
            0
        } else {
            NANOS_PER_MINUTE / u64::from(per_minute)
        };
        let burst = u64::from((per_minute / 6).max(1));
        RateLimiter {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst - 1),
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `key` at `now_ns`; `Err(seconds)` to wait when over.
    pub fn check(&self, key: RateKey, now_ns: u64) -> Result<(), u64> {
        if self.interval_ns == 0 {
            return Ok(());
        }
        let mut arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if arrivals.len() >= KEYS_MAX && !arrivals.contains_key(&key) {
            arrivals.retain(|_, arrival| *arrival > now_ns);
            if arrivals.len() >= KEYS_MAX {
                return Err(1);
            }
        }
        let arrival = arrivals.get(&key).copied().unwrap_or(now_ns).max(now_ns);
        if arrival - now_ns > self.tolerance_ns {
            let wait_ns = arrival - self.tolerance_ns - now_ns;
            return Err(wait_ns.div_ceil(NANOS_PER_SECOND).max(1));
        }
        arrivals.insert(key, arrival + self.interval_ns);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> RateKey {
        RateKey::Ip(std::net::IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn a_burst_then_the_sustained_rate() {
        // 60 a minute: one a second, a burst of 10.
        let limiter = RateLimiter::per_minute(60);
        let start = 1_000 * NANOS_PER_SECOND;
        for _ in 0..10 {
            assert_eq!(limiter.check(ip(1), start), Ok(()));
        }
        assert_eq!(limiter.check(ip(1), start), Err(1));
        // Other keys are not affected.
        assert_eq!(limiter.check(ip(2), start), Ok(()));
        // A second later, one more passes.
        assert_eq!(limiter.check(ip(1), start + NANOS_PER_SECOND), Ok(()));
        assert_eq!(limiter.check(ip(1), start + NANOS_PER_SECOND), Err(1));
    }

    #[test]
    fn the_wait_is_reported_in_whole_seconds() {
        // 6 a minute: one every 10 s, a burst of 1.
        let limiter = RateLimiter::per_minute(6);
        assert_eq!(limiter.check(RateKey::Person(7), 0), Ok(()));
        assert_eq!(limiter.check(RateKey::Person(7), 0), Err(10));
        assert_eq!(
            limiter.check(RateKey::Person(7), 4 * NANOS_PER_SECOND),
            Err(6)
        );
        assert_eq!(
            limiter.check(RateKey::Person(7), 10 * NANOS_PER_SECOND),
            Ok(())
        );
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::per_minute(0);
        for _ in 0..1_000 {
            assert_eq!(limiter.check(RateKey::App("a".into()), 0), Ok(()));
        }
    }

    #[test]
    fn the_table_is_bounded_and_forgets_refilled_keys() {
        let limiter = RateLimiter::per_minute(60_000);
        for index in 0..KEYS_MAX as u128 {
            assert_eq!(limiter.check(RateKey::Person(index), 0), Ok(()));
        }
        // Every key is still active at t=0: a new key waits.
        assert_eq!(limiter.check(RateKey::Person(u128::MAX), 0), Err(1));
        // A second later all have refilled and are forgotten.
        assert_eq!(
            limiter.check(RateKey::Person(u128::MAX), NANOS_PER_SECOND),
            Ok(())
        );
        let size = limiter.arrivals.lock().map(|map| map.len()).unwrap_or(0);
        assert_eq!(size, 1);
    }
}
