//! One module per group of endpoints.

pub mod apps;
pub mod cases;
pub mod checkout;
pub mod compliance;
pub mod docs;
pub mod health;
pub mod identity;
pub mod messages;
pub mod metrics;
pub mod notifications;
pub mod payments;
pub mod requests;
pub mod security;
pub mod social;
pub mod subscriptions;
pub mod vault;
