//! The Mizan program: command-line entry points over the ledger and its stores.
//!
//! - [`cli`]: argument parsing and dispatch.
//! - [`demo`]: `mizan demo`, a ledger with demo people and history.

pub mod cli;
pub mod demo;
