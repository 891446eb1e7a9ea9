//! Compliance for a licensed money transmitter.
pub mod sanctions;
