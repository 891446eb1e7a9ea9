//! The Mizan program: command-line entry points over the ledger and its stores.
//!
//! - [`cli`]: argument parsing and dispatch.
//! - [`demo`]: `mizan demo`, a ledger with demo people and history.
//! - [`bench`]: `mizan bench ledger`.
//! - [`load`]: `mizan ledger load`, the child process of the crash test.

pub mod bench;
pub mod cli;
pub mod demo;
pub mod load;
