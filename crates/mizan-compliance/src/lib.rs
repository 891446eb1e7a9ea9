//! Compliance for a licensed money transmitter: sanctions screening ([`sanctions`])
//! and transaction-monitoring rules ([`monitoring`]).
pub mod monitoring;
pub mod sanctions;
