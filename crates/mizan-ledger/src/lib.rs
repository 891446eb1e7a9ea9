//! The Mizan ledger: the only code that changes balances.
//!
//! - [`types`]: accounts, transfers and their flags.
//! - [`results`]: the stable result codes, in precedence order.
//! - [`engine`]: the pure state machine that validates and applies a batch.
//! - [`chain`]: the hash chain over committed transfers.
//! - [`store`]: the storage port the stores implement.
//! - [`writer`]: the single writer that group-commits batches.
//! - [`verify`]: recomputes the chain and every balance from the transfers.

pub mod chain;
pub mod engine;
pub mod results;
pub mod store;
mod sync;
pub mod types;
pub mod verify;
pub mod writer;

#[cfg(any(test, feature = "testing"))]
pub mod model;
#[cfg(any(test, feature = "testing"))]
pub mod strategies;

pub use chain::ChainHead;
pub use results::{CreateAccountResult, CreateTransferResult};
pub use store::{BusinessRow, HistoryFilter, HistoryPage, LedgerReader, LedgerStore, StoreError};
pub use types::*;
pub use writer::{
    CommitObserver, Ensure, Ledger, LedgerError, Submission, SubmissionResult, TransferResult,
    WriterConfig,
};

#[cfg(test)]
mod model_tests;
