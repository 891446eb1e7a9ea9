//! The hash chain over committed transfers.
//!
//! Each transfer's hash is SHA-256 over the previous transfer's hash and a fixed,
//! versioned byte encoding of every field of this transfer (its timestamp included).
//! Editing, inserting, deleting or reordering any committed transfer changes every
//! hash after it, which `mizan ledger verify` detects.

use sha2::{Digest, Sha256};

use crate::types::Transfer;

/// The hash before the first transfer.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

const ENCODING_VERSION: u8 = 1;

/// The newest committed transfer's timestamp and hash, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChainHead {
    pub last_timestamp: u64,
    pub last_hash: [u8; 32],
    pub transfers_count: u64,
}

impl ChainHead {
    pub fn genesis() -> ChainHead {
        ChainHead {
            last_timestamp: 0,
            last_hash: GENESIS_HASH,
            transfers_count: 0,
        }
    }
}

/// The hash of `transfer` chained after `previous`.
pub fn transfer_hash(previous: &[u8; 32], transfer: &Transfer) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([ENCODING_VERSION]);
    hasher.update(previous);
    hasher.update(transfer.id.get().to_be_bytes());
    hasher.update(transfer.debit_account_id.get().to_be_bytes());
    hasher.update(transfer.credit_account_id.get().to_be_bytes());
    hasher.update(transfer.amount.to_be_bytes());
    hasher.update(transfer.pending_id.get().to_be_bytes());
    hasher.update(transfer.ledger.to_be_bytes());
    hasher.update(transfer.code.to_be_bytes());
    hasher.update(transfer.reference.to_be_bytes());
    hasher.update(transfer.flags.bits().to_be_bytes());
    hasher.update(transfer.timeout_seconds.to_be_bytes());
    hasher.update(transfer.timestamp.to_be_bytes());
    hasher.finalize().into()
}

/// Sets the hash of each transfer in order and advances the head past them.
pub fn chain_transfers(head: &mut ChainHead, transfers: &mut [Transfer]) {
    for transfer in transfers {
        assert!(
            transfer.timestamp > head.last_timestamp,
            "transfer timestamps must increase along the chain"
        );
        transfer.hash = transfer_hash(&head.last_hash, transfer);
        head.last_hash = transfer.hash;
        head.last_timestamp = transfer.timestamp;
        head.transfers_count += 1;
    }
}
