//! Ids derived from what a request names, so a use case can name its transfers and
//! documents before it submits them.
//!
//! Two shapes:
//! - [`hashed`]: all 128 bits from SHA-256 over a domain and parts. The same inputs
//!   give the same id forever: for objects a retry or a background job must find
//!   again by deriving (a funding intent, a subscription's charge of a period, an
//!   allowance account of a window).
//! - [`time_ordered`] and [`beside`]: the high 64 bits are the time the object was
//!   made, the low 64 bits hashed. Ids made later sort after, so inserting them
//!   appends to the id indexes (transfers, documents) where a random id would land
//!   on a random page and cost a page write of its own; measured as the larger part
//!   of what a payment writes (docs/BENCHMARKS.md). Only for objects that an
//!   idempotency claim protects in the same atomic submission: a retry does not
//!   derive the id again, it finds the claim and replays the stored answer.

use sha2::{Digest, Sha256};

/// 128 bits of SHA-256 over `domain` and `parts`, in order.
pub(crate) fn hashed(domain: &[u8], parts: &[&[u8]]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    for part in parts {
        hasher.update(part);
    }
    let mut first = [0_u8; 16];
    first.copy_from_slice(&hasher.finalize()[..16]);
    u128::from_be_bytes(first)
}

const LOW_BITS: u128 = u64::MAX as u128;

/// `now_ns` in the high 64 bits; the low 64 bits hashed from `domain` and `parts`,
/// so two requests of the same nanosecond still differ.
pub(crate) fn time_ordered(now_ns: u64, domain: &[u8], parts: &[&[u8]]) -> u128 {
    (u128::from(now_ns) << 64) | (hashed(domain, parts) & LOW_BITS)
}

/// An id sorting next to `parent` (its high 64 bits), hashed from `domain`, `parent`
/// and `parts` below: the fee, stock or allowance legs of a movement.
pub(crate) fn beside(parent: u128, domain: &[u8], parts: &[&[u8]]) -> u128 {
    let parent_bytes = parent.to_be_bytes();
    let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    all.push(&parent_bytes);
    all.extend_from_slice(parts);
    (parent & !LOW_BITS) | (hashed(domain, &all) & LOW_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_sort_by_time_and_differ_within_a_nanosecond() {
        let early = time_ordered(1_000, b"d", &[b"a"]);
        let late = time_ordered(1_001, b"d", &[b"a"]);
        assert!(early < late);
        assert_eq!(early >> 64, 1_000);
        assert_ne!(time_ordered(1_000, b"d", &[b"b"]), early);
        assert_ne!(time_ordered(1_000, b"e", &[b"a"]), early);
        assert_eq!(time_ordered(1_000, b"d", &[b"a"]), early);
    }

    #[test]
    fn ids_beside_a_parent_share_its_time_and_differ_by_domain() {
        let parent = time_ordered(5_000, b"d", &[b"a"]);
        let fee = beside(parent, b"fee", &[]);
        let leg = beside(parent, b"leg", &[]);
        assert_eq!(fee >> 64, 5_000);
        assert_ne!(fee, leg);
        assert_ne!(fee, parent);
        assert_eq!(beside(parent, b"fee", &[]), fee);
        assert_ne!(
            beside(parent, b"leg", &[&[1]]),
            beside(parent, b"leg", &[&[2]])
        );
    }

    #[test]
    fn hashed_ids_depend_on_every_part() {
        let id = hashed(b"d", &[b"a", b"b"]);
        assert_eq!(id, hashed(b"d", &[b"a", b"b"]));
        assert_ne!(id, hashed(b"d", &[b"b", b"a"]));
        assert_ne!(id, hashed(b"e", &[b"a", b"b"]));
    }
}
