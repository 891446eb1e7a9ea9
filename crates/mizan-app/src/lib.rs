//! The use-case layer between the HTTP API and the ledger: no SQL, no HTTP.
//!
//! - [`identity`]: people sign up and log in; one USD wallet per person; sessions.

pub mod identity;
pub mod time;
