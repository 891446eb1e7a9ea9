//! The types every Mizan crate shares: money and currencies, typed ids, and time.
//!
//! This crate does no I/O. A value of a type defined here is valid by construction:
//! amounts are integer minor units with their currency, ids are checked when parsed,
//! and time comes from a [`Clock`] so tests can move it.

pub mod clock;
pub mod id;
pub mod money;
pub mod secret;

pub use clock::{Clock, ManualClock, SystemClock};
pub use id::{AccountId, TransferId};
pub use money::{Currency, Money, MoneyError};
pub use secret::Secret;
