//! The use-case layer between the HTTP API and the ledger: no SQL, no HTTP.
//!
//! - [`identity`]: people sign up and log in; one USD wallet per person; sessions.
//! - [`payments`]: the platform's accounts; P2P payments, exactly once per key;
//!   [`creation`] and [`actions`]: the same `Idempotency-Key` promise for requests
//!   that create something or act on something.
//! - [`requests`]: money requests, splits, the activity feed and receipts.
//! - [`funding`]: money entering a wallet from a card, through a processor;
//!   [`cashout`]: money leaving to a bank; [`reconcile`]: finishes the intents of
//!   both that a crash left open.
//! - [`verification`], [`limits`], [`licences`]: tiers, limits on every money
//!   movement, and availability by jurisdiction.
//! - [`cases`], [`sanctions`]: compliance cases, freezes, and sanctions screening of
//!   the people on the platform.
//! - [`social`]: profiles, follows and posts; [`tips`]: money to creators;
//!   [`subscriptions`]: monthly creator tiers, renewals and subscriber-only posts.

pub mod actions;
pub mod apps;
pub mod cases;
pub mod cashout;
pub mod checkout;
pub mod creation;
pub mod documents;
pub mod export;
pub mod funding;
pub mod identity;
mod ids;
pub mod licences;
pub mod limits;
pub mod messages;
pub mod monitoring;
pub mod notifications;
pub mod operators;
pub mod outbox;
pub mod payments;
pub mod readers;
pub mod reconcile;
pub mod reports;
pub mod requests;
pub mod sanctions;
pub mod social;
pub mod subscriptions;
pub mod time;
pub mod tips;
pub mod totp;
pub mod vault;
pub mod verification;
pub mod webhooks;
