//! Creator subscriptions: a creator offers monthly tiers; a person subscribes to one,
//! paying at once from their wallet, and is charged again at every period end until
//! they cancel or a renewal keeps failing. Subscribers (and the creator) read the
//! creator's subscriber-only posts.
//!
//! - A **tier** has a name, a monthly price and perks. It is never changed or
//!   deleted, only retired: nobody new can take it, existing subscribers keep it.
//! - A **period** is [`PERIOD_SECONDS`] (30 days) long; period `n` of a subscription
//!   starts where period `n - 1` ended, whenever the renewal was actually charged.
//! - **Money**: subscriber wallet → creator wallet (code [`TRANSFER_CODE_SUBSCRIPTION`]),
//!   with the platform's fee creator → revenue as the second transfer of the same
//!   linked chain (code 5, shared with tips and paid DMs); every charge counts against
//!   the subscriber's send limits like a tip.
//! - **Exactly once**: the charge of period `n` has a transfer id derived from
//!   (subscription, `n`). Every change of a subscription document also claims
//!   `Create("subscription_versions", "{id}:{version}")` in the same atomic
//!   submission, so two writers that read the same version (two renewal runs, a run
//!   and a cancel) can never both apply: the loser changes nothing and reads again.
//!   After a crash the job re-reads the documents, which moved together with the
//!   money, and carries on; a replayed charge answers `exists` and applies nothing.
//! - **Grace**: a renewal that fails (insufficient funds, a limit, a missing
//!   verification) puts the subscription in `grace` until `period end + grace`;
//!   every run retries the same charge; still failing at the end of grace, it lapses.
//!   A subscriber in grace still reads subscriber-only posts.
//! - **Cancel**: no further renewal; the subscription stays active to its period end
//!   (in grace, it ends at once: the unpaid period was never paid for).
//!
//! When the wallet is short at renewal and the job was given a [`CardFallback`], the
//! subscriber's default saved card (vault) tops the wallet up by the price — once per
//! (subscription, period), the funding's idempotency key — and the charge is tried
//! again; a declined, challenged or missing card means grace as before.

use mizan_core::{AccountId, Clock, Money, TransferId};
use mizan_ledger::{
    ledger_of, BusinessRow, CreateTransferResult, Ledger, Submission, TransferFlags,
    TransferRequest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::creation::{self, Created, Creation};
use crate::identity::{self, Person, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    internal, time_ordered_u128, to_json, IdempotencyKey, PaymentError, COLLECTION_IDEMPOTENCY,
    PLATFORM_REVENUE_USD, STATUS_CODE_CREATED,
};
use crate::requests::{claim_key, fingerprint, stored_answer, Answer, StoredAnswer};
use crate::time::rfc3339_from_ns;
use crate::tips::{fee_of, TRANSFER_CODE_PLATFORM_FEE};

/// A subscription charge, the first and every renewal (the next free code after
/// funding 1, P2P 2, cash-out 3, tip 4, platform fee 5, paid DM 6).
pub const TRANSFER_CODE_SUBSCRIPTION: u16 = 7;

/// Tier id → the tier.
pub const COLLECTION_TIERS: &str = "subscription_tiers";
/// `{creator}:{nn}` → tier id: a creator's tiers in creation order.
pub const COLLECTION_TIERS_BY_CREATOR: &str = "subscription_tiers_by_creator";
/// Subscription id → the subscription.
pub const COLLECTION_SUBSCRIPTIONS: &str = "subscriptions";
/// `{subscriber}:{subscription}` → empty.
pub const COLLECTION_SUBSCRIPTIONS_BY_SUBSCRIBER: &str = "subscriptions_by_subscriber";
/// `{creator}:{subscription}` → empty.
pub const COLLECTION_SUBSCRIPTIONS_BY_CREATOR: &str = "subscriptions_by_creator";
/// `{subscriber}:{creator}` → the pair's latest subscription.
pub const COLLECTION_SUBSCRIPTION_PAIRS: &str = "subscription_pairs";
/// `{subscriber}:{creator}:{n}`: claimed by the pair's `n`th subscription, so two
/// concurrent subscribes of one pair cannot both start one.
pub const COLLECTION_SUBSCRIPTION_PAIR_CLAIMS: &str = "subscription_pair_claims";
/// `{subscription}:{version}`: claimed by every change of a subscription.
pub const COLLECTION_SUBSCRIPTION_VERSIONS: &str = "subscription_versions";

pub const TOPIC_SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const TOPIC_SUBSCRIPTION_RENEWED: &str = "subscription.renewed";
pub const TOPIC_SUBSCRIPTION_RENEWAL_FAILED: &str = "subscription.renewal_failed";
pub const TOPIC_SUBSCRIPTION_LAPSED: &str = "subscription.lapsed";
pub const TOPIC_SUBSCRIPTION_CANCELED: &str = "subscription.canceled";

/// One period: 30 days.
pub const PERIOD_SECONDS: u64 = 30 * 86_400;
/// Default grace after a failed renewal: 3 days.
pub const GRACE_SECONDS_DEFAULT: u64 = 3 * 86_400;
/// Longest configurable grace: one period.
pub const GRACE_SECONDS_MAX: u64 = PERIOD_SECONDS;
pub const TIER_NAME_CHARS_MAX: usize = 40;
pub const TIER_PERKS_CHARS_MAX: usize = 500;
/// Tiers one creator may ever create (retired ones count).
pub const TIERS_PER_CREATOR_MAX: usize = 10;
/// Highest tier price: $1,000.00 a month.
pub const TIER_PRICE_MINOR_MAX: i64 = 100_000;
/// Most subscriptions one list shows.
pub const SUBSCRIPTIONS_LISTED_MAX: usize = 200;
/// Periods one run charges for one subscription (after an outage, the rest follow
/// on the next runs).
pub const CATCH_UP_PERIODS_MAX: u32 = 12;
/// Subscriptions one run looks at, and the page it reads them in.
pub const RENEWAL_SCAN_MAX: usize = 100_000;
const RENEWAL_PAGE: usize = 500;
/// Attempts at a change that lost a version race to another writer.
const CHANGE_ATTEMPTS_MAX: usize = 3;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const TIER_ID_DOMAIN: &[u8] = b"mizan.subscription.tier.v1";
const SUBSCRIPTION_ID_DOMAIN: &[u8] = b"mizan.subscription.v1";
const CHARGE_ID_DOMAIN: &[u8] = b"mizan.subscription.charge.v1";
const FEE_ID_DOMAIN: &[u8] = b"mizan.subscription.fee.v1";

/// What the renewal job runs with (server config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalPolicy {
    /// The platform's cut of every charge, basis points.
    pub fee_bps: u32,
    /// How long a subscription stays in grace after its period end.
    pub grace_seconds: u64,
}

fn hash_u128(domain: &[u8], parts: &[&[u8]]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut first = [0_u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

fn is_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn clean(text: &str, max: usize, multiline: bool) -> Option<String> {
    let text = text.trim();
    let allowed = text
        .chars()
        .all(|c| !c.is_control() || (multiline && c == '\n'));
    (allowed && text.chars().count() <= max).then(|| text.to_owned())
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    reader: &SharedReader,
    collection: &'static str,
    key: String,
) -> Result<Option<T>, PaymentError> {
    match identity::read_document(reader, collection, key).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| internal(collection, error)),
    }
}

async fn keys_with_prefix(
    reader: &SharedReader,
    collection: &'static str,
    prefix: String,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, PaymentError> {
    crate::documents::with_prefix(reader, collection, prefix, None, limit)
        .await
        .map_err(|error| internal(collection, error))
}

// ---------------------------------------------------------------------------------
// Tiers

/// A tier as parsed from a creator's form: name, monthly price, perks.
#[derive(Debug, Clone)]
pub struct NewTier {
    name: String,
    price: Money,
    perks: String,
}

impl NewTier {
    pub fn parse(name: &str, price: Money, perks: &str) -> Result<NewTier, PaymentError> {
        let name = clean(name, TIER_NAME_CHARS_MAX, false)
            .filter(|name| !name.is_empty())
            .ok_or(PaymentError::TierNameInvalid)?;
        let minor = price.minor_units();
        if price.currency() != WALLET_CURRENCY || !(1..=TIER_PRICE_MINOR_MAX).contains(&minor) {
            return Err(PaymentError::TierPriceInvalid);
        }
        let perks =
            clean(perks, TIER_PERKS_CHARS_MAX, true).ok_or(PaymentError::TierPerksInvalid)?;
        Ok(NewTier { name, price, perks })
    }
}

/// A tier as everyone sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierView {
    pub id: String,
    /// The creator's handle.
    pub creator: String,
    pub name: String,
    /// A month's price, major units ("4.99").
    pub price: String,
    pub price_minor: i64,
    pub currency: String,
    pub perks: String,
    /// Retired tiers take no new subscribers; existing ones keep them.
    pub retired: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TierDocument {
    /// The creator's person id.
    creator: String,
    view: TierView,
}

/// Creates a tier for `creator` (at most [`TIERS_PER_CREATOR_MAX`] ever).
pub async fn create_tier(
    ledger: &Ledger,
    reader: &SharedReader,
    creator: &Person,
    tier: NewTier,
    now_ns: u64,
) -> Result<TierView, PaymentError> {
    match create_tier_once(ledger, reader, creator, tier, None, now_ns).await? {
        Created::New(view) => Ok(view),
        Created::Replayed(_) => Err(internal("a tier replayed without a key", creator.id)),
    }
}

/// The canonical request of a new tier, for [`Creation::new`].
pub fn tier_canonical(tier: &NewTier) -> String {
    format!(
        "tier|{}|{}|{}",
        tier.price.minor_units(),
        tier.name,
        tier.perks
    )
}

/// [`create_tier`] under an optional `Idempotency-Key` (`creation`): a retry answers
/// the first tier again instead of creating a second.
pub async fn create_tier_once(
    ledger: &Ledger,
    reader: &SharedReader,
    creator: &Person,
    tier: NewTier,
    creation: Option<&Creation>,
    now_ns: u64,
) -> Result<Created<TierView>, PaymentError> {
    if let Some(replay) = creation::replay_used(creation, reader).await? {
        return Ok(Created::Replayed(replay));
    }
    for _ in 0..CHANGE_ATTEMPTS_MAX {
        let existing = keys_with_prefix(
            reader,
            COLLECTION_TIERS_BY_CREATOR,
            format!("{}:", creator.id),
            TIERS_PER_CREATOR_MAX + 1,
        )
        .await?;
        let number = existing.len();
        if number >= TIERS_PER_CREATOR_MAX {
            return Err(PaymentError::TooManyTiers);
        }
        let id = format!(
            "{:032x}",
            hash_u128(
                TIER_ID_DOMAIN,
                &[
                    &creator.id.get().to_be_bytes(),
                    &(number as u64).to_be_bytes()
                ]
            )
        );
        let view = TierView {
            id: id.clone(),
            creator: creator.handle.as_str().to_owned(),
            name: tier.name.clone(),
            price: tier.price.format_major(),
            price_minor: tier.price.minor_units(),
            currency: WALLET_CURRENCY.code().to_owned(),
            perks: tier.perks.clone(),
            retired: false,
            created_at: rfc3339_from_ns(now_ns),
        };
        let document = TierDocument {
            creator: creator.id.to_string(),
            view: view.clone(),
        };
        let mut rows = vec![
            BusinessRow::Create {
                collection: COLLECTION_TIERS_BY_CREATOR.to_owned(),
                key: format!("{}:{number:02}", creator.id),
                body: id.clone().into_bytes(),
            },
            BusinessRow::Create {
                collection: COLLECTION_TIERS.to_owned(),
                key: id,
                body: to_json(&document)?,
            },
        ];
        if let Some(creation) = creation {
            rows.push(creation.answer_row(&view.id, &view)?);
        }
        let Some(collection) = crate::documents::submit_rows(ledger, rows)
            .await
            .map_err(|error| internal("saving a tier", error))?
        else {
            return Ok(Created::New(view));
        };
        if let Some(replay) = creation::replay_conflict(creation, &collection, reader).await? {
            return Ok(Created::Replayed(replay));
        }
        // Another tier of this creator took the number meanwhile: count again.
    }
    Err(PaymentError::IdempotencyRequestInProgress)
}

async fn tier_document(reader: &SharedReader, id: &str) -> Result<TierDocument, PaymentError> {
    if !is_id(id) {
        return Err(PaymentError::TierNotFound);
    }
    read_json(reader, COLLECTION_TIERS, id.to_ascii_lowercase())
        .await?
        .ok_or(PaymentError::TierNotFound)
}

/// A tier by id.
pub async fn tier(reader: &SharedReader, id: &str) -> Result<TierView, PaymentError> {
    Ok(tier_document(reader, id).await?.view)
}

/// A creator's tiers in creation order; retired ones only with `include_retired`.
pub async fn tiers_of(
    reader: &SharedReader,
    creator: PersonId,
    include_retired: bool,
) -> Result<Vec<TierView>, PaymentError> {
    let rows = keys_with_prefix(
        reader,
        COLLECTION_TIERS_BY_CREATOR,
        format!("{creator}:"),
        TIERS_PER_CREATOR_MAX,
    )
    .await?;
    let mut tiers = Vec::with_capacity(rows.len());
    for (_, body) in rows {
        let id = String::from_utf8(body).map_err(|error| internal("tier row", error))?;
        let view = tier_document(reader, &id).await?.view;
        if include_retired || !view.retired {
            tiers.push(view);
        }
    }
    Ok(tiers)
}

/// Retires one of the creator's tiers (again: no change).
pub async fn retire_tier(
    ledger: &Ledger,
    reader: &SharedReader,
    creator: &Person,
    id: &str,
) -> Result<TierView, PaymentError> {
    let mut document = tier_document(reader, id).await?;
    if document.creator != creator.id.to_string() {
        return Err(PaymentError::TierNotFound);
    }
    if document.view.retired {
        return Ok(document.view);
    }
    document.view.retired = true;
    let rows = vec![BusinessRow::Document {
        collection: COLLECTION_TIERS.to_owned(),
        key: document.view.id.clone(),
        body: to_json(&document)?,
    }];
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("retiring a tier", error))?;
    Ok(document.view)
}

// ---------------------------------------------------------------------------------
// Subscriptions

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Paid for the current period.
    Active,
    /// The renewal failed; retried every run until `grace_until`.
    Grace,
    /// Canceled by the subscriber and past its last paid period.
    Canceled,
    /// Renewals kept failing through the grace period.
    Lapsed,
}

impl SubscriptionStatus {
    pub fn code(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Grace => "grace",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Lapsed => "lapsed",
        }
    }
}

/// A subscription as its subscriber and its creator see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub id: String,
    /// The subscriber's handle.
    pub subscriber: String,
    /// The creator's handle.
    pub creator: String,
    pub tier_id: String,
    pub tier_name: String,
    /// A month's price, fixed when subscribing.
    pub price: String,
    pub currency: String,
    pub status: SubscriptionStatus,
    /// Canceled: no renewal at the end of the current period.
    pub cancel_at_period_end: bool,
    /// The current period's number, 0 for the first; `period + 1` charges were made.
    pub period: u32,
    pub current_period_start: String,
    pub current_period_end: String,
    /// In grace: when the subscription lapses unless a retry succeeds.
    pub grace_until: Option<String>,
    /// Why the last renewal failed (`insufficient_funds`, `limit_exceeded`, …).
    pub last_failure: Option<String>,
    /// The transfer of the latest charge.
    pub last_transfer_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SubscriptionDocument {
    /// Person ids under the names webhook routing knows.
    payer: String,
    payee: String,
    version: u64,
    price_minor: i64,
    period_start_ns: u64,
    period_end_ns: u64,
    grace_until_ns: Option<u64>,
    view: SubscriptionView,
}

impl SubscriptionDocument {
    /// Whether the subscriber reads subscriber-only posts at `now_ns`.
    fn grants_access(&self, now_ns: u64) -> bool {
        match self.view.status {
            SubscriptionStatus::Active => {
                !(self.view.cancel_at_period_end && now_ns >= self.period_end_ns)
            }
            SubscriptionStatus::Grace => self.grace_until_ns.is_some_and(|until| now_ns < until),
            SubscriptionStatus::Canceled | SubscriptionStatus::Lapsed => false,
        }
    }

    /// The view at `now_ns`: a canceled subscription past its period end reads as
    /// canceled even before the job wrote it down.
    fn view_at(&self, now_ns: u64) -> SubscriptionView {
        let mut view = self.view.clone();
        if view.status == SubscriptionStatus::Active
            && view.cancel_at_period_end
            && now_ns >= self.period_end_ns
        {
            view.status = SubscriptionStatus::Canceled;
        }
        view
    }

    fn id(&self) -> &str {
        &self.view.id
    }

    /// This document at the next version, claimed by the returned row.
    fn next_version(&self) -> (SubscriptionDocument, BusinessRow) {
        let mut next = self.clone();
        next.version = self.version + 1;
        let claim = version_claim(self.id(), next.version);
        (next, claim)
    }
}

fn version_claim(id: &str, version: u64) -> BusinessRow {
    BusinessRow::Create {
        collection: COLLECTION_SUBSCRIPTION_VERSIONS.to_owned(),
        key: format!("{id}:{version:010}"),
        body: Vec::new(),
    }
}

fn charge_ids(subscription: u128, period: u32) -> Result<(TransferId, TransferId), PaymentError> {
    let parts: [&[u8]; 2] = [&subscription.to_be_bytes(), &period.to_be_bytes()];
    let charge = TransferId::new(hash_u128(CHARGE_ID_DOMAIN, &parts))
        .map_err(|error| internal("charge id", error))?;
    let fee = TransferId::new(hash_u128(FEE_ID_DOMAIN, &parts))
        .map_err(|error| internal("fee id", error))?;
    Ok((charge, fee))
}

/// The money of one period's charge: subscriber → creator, and the fee linked to it.
fn charge_transfers(
    document: &SubscriptionDocument,
    period: u32,
    fee_bps: u32,
) -> Result<(TransferId, Vec<TransferRequest>), PaymentError> {
    let reference = u128::from_str_radix(document.id(), 16)
        .map_err(|error| internal("subscription id", error))?;
    let (charge_id, fee_id) = charge_ids(reference, period)?;
    let payer = PersonId::parse(&document.payer)?;
    let payee = PersonId::parse(&document.payee)?;
    let creator_wallet = payee.wallet_id(WALLET_CURRENCY)?;
    let price = Money::from_minor(document.price_minor, WALLET_CURRENCY);
    let fee = fee_of(price, fee_bps)?;
    let ledger_id = ledger_of(WALLET_CURRENCY);
    let mut transfers = vec![TransferRequest::single(
        charge_id,
        payer.wallet_id(WALLET_CURRENCY)?,
        creator_wallet,
        price.minor_units(),
        ledger_id,
        TRANSFER_CODE_SUBSCRIPTION,
    )
    .with_reference(reference)];
    if fee.minor_units() > 0 {
        let revenue = AccountId::new(PLATFORM_REVENUE_USD)
            .map_err(|error| internal("revenue account", error))?;
        transfers[0] = transfers[0].with_flags(TransferFlags::LINKED);
        transfers.push(
            TransferRequest::single(
                fee_id,
                creator_wallet,
                revenue,
                fee.minor_units(),
                ledger_id,
                TRANSFER_CODE_PLATFORM_FEE,
            )
            .with_reference(reference),
        );
    }
    Ok((charge_id, transfers))
}

/// Subscribes `subscriber` to a tier, charging the first period at once; once per key.
#[tracing::instrument(skip_all, fields(subscriber = %subscriber.id))]
#[allow(clippy::too_many_arguments)]
pub async fn subscribe(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    subscriber: &Person,
    tier_id: &str,
    key: IdempotencyKey,
    fee_bps: u32,
    now_ns: u64,
) -> Result<Answer<SubscriptionView>, PaymentError> {
    let request_sha256 = fingerprint(&serde_json::json!({
        "tier_id": tier_id.to_ascii_lowercase(),
    }))?;
    let claim = claim_key("subscription", subscriber.id, &key);
    if let Some(answer) = stored_answer(reader, claim.clone(), &request_sha256).await? {
        return Ok(answer);
    }
    let tier = tier_document(reader, tier_id).await?;
    let creator = identity::person_by_id(reader, PersonId::parse(&tier.creator)?).await?;
    if creator.id == subscriber.id {
        return Err(PaymentError::CannotPayYourself);
    }
    if tier.view.retired {
        return Err(PaymentError::TierRetired);
    }
    let pair_key = format!("{}:{}", subscriber.id, creator.id);
    let pair: Option<PairDocument> =
        read_json(reader, COLLECTION_SUBSCRIPTION_PAIRS, pair_key.clone()).await?;
    if let Some(pair) = &pair {
        let latest = subscription_document(reader, &pair.latest).await?;
        if latest.grants_access(now_ns) {
            return Err(PaymentError::AlreadySubscribed);
        }
    }
    let number = pair.as_ref().map_or(0, |pair| pair.count) + 1;
    let id_raw = time_ordered_u128(SUBSCRIPTION_ID_DOMAIN, subscriber.id, &key, now_ns);
    let id = format!("{id_raw:032x}");
    let charge = crate::limits::prepare(
        reader,
        limits,
        subscriber.id,
        crate::limits::Movement::Send,
        now_ns,
    )
    .await?;
    let period_end_ns = now_ns.saturating_add(PERIOD_SECONDS * NANOS_PER_SECOND);
    let mut document = SubscriptionDocument {
        payer: subscriber.id.to_string(),
        payee: creator.id.to_string(),
        version: 0,
        price_minor: tier.view.price_minor,
        period_start_ns: now_ns,
        period_end_ns,
        grace_until_ns: None,
        view: SubscriptionView {
            id: id.clone(),
            subscriber: subscriber.handle.as_str().to_owned(),
            creator: creator.handle.as_str().to_owned(),
            tier_id: tier.view.id.clone(),
            tier_name: tier.view.name.clone(),
            price: tier.view.price.clone(),
            currency: WALLET_CURRENCY.code().to_owned(),
            status: SubscriptionStatus::Active,
            cancel_at_period_end: false,
            period: 0,
            current_period_start: rfc3339_from_ns(now_ns),
            current_period_end: rfc3339_from_ns(period_end_ns),
            grace_until: None,
            last_failure: None,
            last_transfer_id: String::new(),
            created_at: rfc3339_from_ns(now_ns),
        },
    };
    let (charge_id, mut transfers) = charge_transfers(&document, 0, fee_bps)?;
    document.view.last_transfer_id = charge_id.to_string();
    transfers.extend(charge.legs(charge_id, document.price_minor)?);
    let body = to_json(&document)?;
    let view = document.view.clone();
    let rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: claim.clone(),
            body: to_json(&StoredAnswer {
                request_sha256: request_sha256.clone(),
                claimed_at_ns: now_ns,
                status: STATUS_CODE_CREATED,
                response: view.clone(),
            })?,
        },
        BusinessRow::Create {
            collection: COLLECTION_SUBSCRIPTION_PAIR_CLAIMS.to_owned(),
            key: format!("{pair_key}:{number:010}"),
            body: Vec::new(),
        },
        version_claim(&id, 0),
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTION_PAIRS.to_owned(),
            key: pair_key,
            body: to_json(&PairDocument {
                count: number,
                latest: id.clone(),
            })?,
        },
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTIONS.to_owned(),
            key: id.clone(),
            body: body.clone(),
        },
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTIONS_BY_SUBSCRIBER.to_owned(),
            key: format!("{}:{id}", subscriber.id),
            body: Vec::new(),
        },
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTIONS_BY_CREATOR.to_owned(),
            key: format!("{}:{id}", creator.id),
            body: Vec::new(),
        },
        crate::outbox::event_row(TOPIC_SUBSCRIPTION_CREATED, &body, now_ns),
    ];
    let result = ledger
        .submit(Submission {
            transfers,
            rows,
            atomic: true,
            ensure: charge.ensure(),
            ..Submission::default()
        })
        .await
        .map_err(|error| internal("submitting a subscription", error))?;
    if let Some((collection, _)) = &result.row_conflict {
        if collection == COLLECTION_IDEMPOTENCY {
            return stored_answer(reader, claim, &request_sha256)
                .await?
                .ok_or_else(|| internal("claim taken but unreadable", &id));
        }
        // Another subscribe of this pair won the race.
        return Err(PaymentError::AlreadySubscribed);
    }
    match charge.settle(&result.transfers)? {
        CreateTransferResult::Ok => {}
        CreateTransferResult::ExceedsCredits => return Err(PaymentError::InsufficientFunds),
        other => return Err(internal("subscription charge", format!("{other:?}"))),
    }
    tracing::info!(subscription = %id, "subscribed");
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: view,
        replayed: false,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PairDocument {
    /// Subscriptions the pair ever had.
    count: u64,
    latest: String,
}

async fn subscription_document(
    reader: &SharedReader,
    id: &str,
) -> Result<SubscriptionDocument, PaymentError> {
    if !is_id(id) {
        return Err(PaymentError::SubscriptionNotFound);
    }
    read_json(reader, COLLECTION_SUBSCRIPTIONS, id.to_ascii_lowercase())
        .await?
        .ok_or(PaymentError::SubscriptionNotFound)
}

/// A subscription its subscriber or creator may see.
pub async fn subscription_for(
    reader: &SharedReader,
    viewer: PersonId,
    id: &str,
    now_ns: u64,
) -> Result<SubscriptionView, PaymentError> {
    let document = subscription_document(reader, id).await?;
    let me = viewer.to_string();
    if document.payer != me && document.payee != me {
        return Err(PaymentError::SubscriptionNotFound);
    }
    Ok(document.view_at(now_ns))
}

async fn listed(
    reader: &SharedReader,
    collection: &'static str,
    person: PersonId,
    now_ns: u64,
) -> Result<Vec<SubscriptionView>, PaymentError> {
    let rows = keys_with_prefix(
        reader,
        collection,
        format!("{person}:"),
        SUBSCRIPTIONS_LISTED_MAX,
    )
    .await?;
    let mut views = Vec::with_capacity(rows.len());
    for (key, _) in rows {
        let Some((_, id)) = key.split_once(':') else {
            return Err(internal("subscription row", key));
        };
        views.push(subscription_document(reader, id).await?.view_at(now_ns));
    }
    views.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(views)
}

/// The subscriptions a person took, newest first.
pub async fn subscriptions_of(
    reader: &SharedReader,
    subscriber: PersonId,
    now_ns: u64,
) -> Result<Vec<SubscriptionView>, PaymentError> {
    listed(
        reader,
        COLLECTION_SUBSCRIPTIONS_BY_SUBSCRIBER,
        subscriber,
        now_ns,
    )
    .await
}

/// A creator's subscribers (every subscription ever taken, with its status).
pub async fn subscribers_of(
    reader: &SharedReader,
    creator: PersonId,
    now_ns: u64,
) -> Result<Vec<SubscriptionView>, PaymentError> {
    listed(reader, COLLECTION_SUBSCRIPTIONS_BY_CREATOR, creator, now_ns).await
}

/// The monthly price of the subscription through which `viewer` reads `creator`'s
/// subscriber-only posts at `now_ns`, if they do.
pub async fn access_price_minor(
    reader: &SharedReader,
    viewer: PersonId,
    creator: PersonId,
    now_ns: u64,
) -> Result<Option<i64>, PaymentError> {
    let pair: Option<PairDocument> = read_json(
        reader,
        COLLECTION_SUBSCRIPTION_PAIRS,
        format!("{viewer}:{creator}"),
    )
    .await?;
    let Some(pair) = pair else {
        return Ok(None);
    };
    let document = subscription_document(reader, &pair.latest).await?;
    Ok(document
        .grants_access(now_ns)
        .then_some(document.price_minor))
}

/// Submits one change of a subscription with its version claim; `false` when
/// another writer changed it first (nothing applied).
async fn submit_change(
    ledger: &Ledger,
    transfers: Vec<TransferRequest>,
    rows: Vec<BusinessRow>,
    ensure: mizan_ledger::Ensure,
) -> Result<(bool, Vec<mizan_ledger::TransferResult>), PaymentError> {
    let result = ledger
        .submit(Submission {
            transfers,
            rows,
            atomic: true,
            ensure,
            ..Submission::default()
        })
        .await
        .map_err(|error| internal("submitting a subscription change", error))?;
    match &result.row_conflict {
        None => Ok((true, result.transfers)),
        Some((collection, _)) if collection == COLLECTION_SUBSCRIPTION_VERSIONS => {
            Ok((false, result.transfers))
        }
        Some((collection, key)) => Err(internal(
            "unexpected row conflict",
            format!("{collection}:{key}"),
        )),
    }
}

/// The subscriber cancels: no renewal; active to the end of the paid period (a
/// subscription in grace ends at once). Canceling again answers the same.
pub async fn cancel(
    ledger: &Ledger,
    reader: &SharedReader,
    subscriber: &Person,
    id: &str,
    now_ns: u64,
) -> Result<SubscriptionView, PaymentError> {
    for _ in 0..CHANGE_ATTEMPTS_MAX {
        let document = subscription_document(reader, id).await?;
        if document.payer != subscriber.id.to_string() {
            return Err(PaymentError::SubscriptionNotFound);
        }
        match document.view.status {
            SubscriptionStatus::Canceled | SubscriptionStatus::Lapsed => {
                return Err(PaymentError::SubscriptionEnded)
            }
            SubscriptionStatus::Active if document.view.cancel_at_period_end => {
                return Ok(document.view_at(now_ns))
            }
            SubscriptionStatus::Active | SubscriptionStatus::Grace => {}
        }
        let (mut next, claim) = document.next_version();
        next.view.cancel_at_period_end = true;
        if next.view.status == SubscriptionStatus::Grace {
            next.view.status = SubscriptionStatus::Canceled;
        }
        let body = to_json(&next)?;
        let rows = vec![
            claim,
            BusinessRow::Document {
                collection: COLLECTION_SUBSCRIPTIONS.to_owned(),
                key: next.view.id.clone(),
                body: body.clone(),
            },
            crate::outbox::event_row(TOPIC_SUBSCRIPTION_CANCELED, &body, now_ns),
        ];
        if submit_change(ledger, Vec::new(), rows, mizan_ledger::Ensure::default())
            .await?
            .0
        {
            tracing::info!(subscription = %next.view.id, "subscription canceled");
            return Ok(next.view_at(now_ns));
        }
    }
    Err(PaymentError::IdempotencyRequestInProgress)
}

// ---------------------------------------------------------------------------------
// Renewals

/// What one run of the renewal job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenewalReport {
    /// Subscriptions looked at.
    pub scanned: usize,
    /// Periods charged.
    pub renewed: usize,
    /// Renewals that failed and put (or kept) a subscription in grace.
    pub failed: usize,
    pub lapsed: usize,
    /// Canceled subscriptions that reached their period end.
    pub ended: usize,
    /// Changes another writer made first (picked up by the next run).
    pub raced: usize,
}

/// Where a renewal may top up a short wallet: the subscriber's default saved card,
/// charged through `processor`, its number revealed by the vault for that charge.
#[derive(Clone, Copy)]
pub struct CardFallback<'a> {
    pub processor: &'a dyn crate::funding::Processor,
    pub vault: &'a crate::vault::SharedVault,
}

/// Tops the wallet up by `amount` from the default card, once per (subscription,
/// period). True when new money arrived (a replay of an earlier top-up is false:
/// that money was already there for the charge that just failed).
async fn top_up_from_default_card(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    fallback: CardFallback<'_>,
    document: &SubscriptionDocument,
    period: u32,
    now_ns: u64,
) -> Result<bool, PaymentError> {
    let payer = PersonId::parse(&document.payer)?;
    let amount = Money::from_minor(document.price_minor, WALLET_CURRENCY);
    let key = IdempotencyKey::parse(&format!("renewal-{}-{period}", document.view.id))?;
    let funded = crate::funding::charge_default_card(
        ledger,
        reader,
        limits,
        fallback.processor,
        fallback.vault,
        payer,
        amount,
        key,
        now_ns,
    )
    .await;
    match funded {
        // A decline is an error; an answer without a challenge is money in the wallet.
        Ok(outcome) => Ok(!outcome.replayed && !outcome.requires_action),
        // No default card, a decline, a limit on funding, erased data: grace.
        Err(PaymentError::Internal(detail)) => Err(PaymentError::Internal(detail)),
        Err(error) => {
            tracing::info!(
                code = error.code(),
                "renewal top-up from the default card failed"
            );
            Ok(false)
        }
    }
}

/// Runs the renewal job once at `clock`'s now: every subscription past its period
/// end is renewed (charged for the next period), moved to grace, lapsed or ended.
/// Safe to run twice, concurrently, or again after a crash: see the module docs.
pub async fn run_renewals(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    policy: RenewalPolicy,
    fallback: Option<CardFallback<'_>>,
    clock: &dyn Clock,
) -> Result<RenewalReport, PaymentError> {
    let now_ns = clock.now_ns();
    let mut report = RenewalReport::default();
    let mut after: Option<String> = None;
    while report.scanned < RENEWAL_SCAN_MAX {
        let page = crate::documents::with_prefix(
            reader,
            COLLECTION_SUBSCRIPTIONS,
            String::new(),
            after.clone(),
            RENEWAL_PAGE,
        )
        .await
        .map_err(|error| internal("reading subscriptions", error))?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        for (id, _) in &page {
            report.scanned += 1;
            advance(
                ledger,
                reader,
                limits,
                policy,
                fallback,
                id,
                now_ns,
                &mut report,
            )
            .await?;
        }
        if page.len() < RENEWAL_PAGE {
            break;
        }
    }
    let quiet = RenewalReport {
        scanned: report.scanned,
        ..RenewalReport::default()
    };
    if report != quiet {
        tracing::info!(?report, "renewal run");
    }
    Ok(report)
}

/// Brings one subscription up to `now_ns`, at most [`CATCH_UP_PERIODS_MAX`] charges.
#[allow(clippy::too_many_arguments)]
async fn advance(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    policy: RenewalPolicy,
    fallback: Option<CardFallback<'_>>,
    id: &str,
    now_ns: u64,
    report: &mut RenewalReport,
) -> Result<(), PaymentError> {
    for _ in 0..CATCH_UP_PERIODS_MAX {
        let document = subscription_document(reader, id).await?;
        let due = now_ns >= document.period_end_ns;
        let step = match document.view.status {
            SubscriptionStatus::Canceled | SubscriptionStatus::Lapsed => return Ok(()),
            SubscriptionStatus::Active if !due => return Ok(()),
            SubscriptionStatus::Active if document.view.cancel_at_period_end => {
                end(ledger, &document, report).await?;
                return Ok(());
            }
            SubscriptionStatus::Active | SubscriptionStatus::Grace => {
                renew(ledger, reader, limits, policy, fallback, &document, now_ns).await?
            }
        };
        match step {
            Renewal::Renewed => report.renewed += 1,
            // The wallet was topped up from the default card: charge again.
            Renewal::ToppedUp => {}
            Renewal::Raced => {
                report.raced += 1;
                return Ok(());
            }
            Renewal::Failed(reason) => {
                fail(ledger, &document, policy, reason, now_ns, report).await?;
                return Ok(());
            }
        }
    }
    Ok(())
}

enum Renewal {
    Renewed,
    ToppedUp,
    Raced,
    Failed(&'static str),
}

/// Charges the next period of `document`: money, version claim, document and event
/// in one atomic submission.
#[allow(clippy::too_many_arguments)]
async fn renew(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    policy: RenewalPolicy,
    fallback: Option<CardFallback<'_>>,
    document: &SubscriptionDocument,
    now_ns: u64,
) -> Result<Renewal, PaymentError> {
    let payer = PersonId::parse(&document.payer)?;
    let charge =
        match crate::limits::prepare(reader, limits, payer, crate::limits::Movement::Send, now_ns)
            .await
        {
            Ok(charge) => charge,
            Err(
                error @ (PaymentError::VerificationRequired { .. }
                | PaymentError::CapabilityUnavailable { .. }),
            ) => return Ok(Renewal::Failed(error.code())),
            Err(error) => return Err(error),
        };
    let period = document.view.period + 1;
    let (charge_id, mut transfers) = charge_transfers(document, period, policy.fee_bps)?;
    transfers.extend(charge.legs(charge_id, document.price_minor)?);
    let (mut next, claim) = document.next_version();
    next.view.period = period;
    next.period_start_ns = document.period_end_ns;
    next.period_end_ns = document
        .period_end_ns
        .saturating_add(PERIOD_SECONDS * NANOS_PER_SECOND);
    next.view.current_period_start = rfc3339_from_ns(next.period_start_ns);
    next.view.current_period_end = rfc3339_from_ns(next.period_end_ns);
    next.view.status = SubscriptionStatus::Active;
    next.grace_until_ns = None;
    next.view.grace_until = None;
    next.view.last_failure = None;
    next.view.last_transfer_id = charge_id.to_string();
    let body = to_json(&next)?;
    let rows = vec![
        claim,
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTIONS.to_owned(),
            key: next.view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(TOPIC_SUBSCRIPTION_RENEWED, &body, now_ns),
    ];
    let (applied, results) = submit_change(ledger, transfers, rows, charge.ensure()).await?;
    if !applied {
        return Ok(Renewal::Raced);
    }
    match charge.settle(&results) {
        Ok(CreateTransferResult::Ok) => {
            tracing::info!(subscription = %next.view.id, period, "subscription renewed");
            Ok(Renewal::Renewed)
        }
        // The charge of this period exists: another run made it (the documents moved
        // with it, so the next read shows it).
        Ok(CreateTransferResult::Exists) => Ok(Renewal::Raced),
        Ok(CreateTransferResult::ExceedsCredits) => {
            if let Some(fallback) = fallback {
                let topped_up = top_up_from_default_card(
                    ledger, reader, limits, fallback, document, period, now_ns,
                )
                .await?;
                if topped_up {
                    return Ok(Renewal::ToppedUp);
                }
            }
            Ok(Renewal::Failed(PaymentError::InsufficientFunds.code()))
        }
        Err(error @ PaymentError::LimitExceeded { .. }) => Ok(Renewal::Failed(error.code())),
        Ok(other) => Err(internal("renewal charge", format!("{other:?}"))),
        Err(error) => Err(error),
    }
}

/// A renewal failed: into grace (first failure), lapsed (grace over), else unchanged.
async fn fail(
    ledger: &Ledger,
    document: &SubscriptionDocument,
    policy: RenewalPolicy,
    reason: &'static str,
    now_ns: u64,
    report: &mut RenewalReport,
) -> Result<(), PaymentError> {
    let grace_until_ns = document.grace_until_ns.unwrap_or_else(|| {
        document
            .period_end_ns
            .saturating_add(policy.grace_seconds.saturating_mul(NANOS_PER_SECOND))
    });
    let lapse = now_ns >= grace_until_ns;
    if !lapse && document.view.status == SubscriptionStatus::Grace {
        report.failed += 1;
        return Ok(());
    }
    let (mut next, claim) = document.next_version();
    next.view.last_failure = Some(reason.to_owned());
    next.grace_until_ns = Some(grace_until_ns);
    next.view.grace_until = Some(rfc3339_from_ns(grace_until_ns));
    let topic = if lapse {
        next.view.status = SubscriptionStatus::Lapsed;
        TOPIC_SUBSCRIPTION_LAPSED
    } else {
        next.view.status = SubscriptionStatus::Grace;
        TOPIC_SUBSCRIPTION_RENEWAL_FAILED
    };
    let body = to_json(&next)?;
    let rows = vec![
        claim,
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTIONS.to_owned(),
            key: next.view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(topic, &body, now_ns),
    ];
    if !submit_change(ledger, Vec::new(), rows, mizan_ledger::Ensure::default())
        .await?
        .0
    {
        report.raced += 1;
    } else if lapse {
        tracing::info!(subscription = %next.view.id, reason, "subscription lapsed");
        report.lapsed += 1;
    } else {
        tracing::info!(subscription = %next.view.id, reason, "subscription renewal failed");
        report.failed += 1;
    }
    Ok(())
}

/// A canceled subscription reached its period end: written down as canceled (its
/// event went out when the subscriber canceled).
async fn end(
    ledger: &Ledger,
    document: &SubscriptionDocument,
    report: &mut RenewalReport,
) -> Result<(), PaymentError> {
    let (mut next, claim) = document.next_version();
    next.view.status = SubscriptionStatus::Canceled;
    let rows = vec![
        claim,
        BusinessRow::Document {
            collection: COLLECTION_SUBSCRIPTIONS.to_owned(),
            key: next.view.id.clone(),
            body: to_json(&next)?,
        },
    ];
    if submit_change(ledger, Vec::new(), rows, mizan_ledger::Ensure::default())
        .await?
        .0
    {
        report.ended += 1;
    } else {
        report.raced += 1;
    }
    Ok(())
}

/// The subscription behind a ledger transfer's reference, for the activity feed.
pub(crate) async fn subscription_of_reference(
    reader: &SharedReader,
    reference: u128,
) -> Result<Option<SubscriptionView>, PaymentError> {
    read_json::<SubscriptionDocument>(
        reader,
        COLLECTION_SUBSCRIPTIONS,
        format!("{reference:032x}"),
    )
    .await
    .map(|document| document.map(|document| document.view))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tiers_are_bounded() {
        let usd = |minor| Money::from_minor(minor, WALLET_CURRENCY);
        assert!(NewTier::parse("Gold", usd(500), "Everything.\nEarly.").is_ok());
        assert_eq!(
            NewTier::parse(" ", usd(500), "").err(),
            Some(PaymentError::TierNameInvalid)
        );
        assert_eq!(
            NewTier::parse(&"x".repeat(41), usd(500), "").err(),
            Some(PaymentError::TierNameInvalid)
        );
        assert_eq!(
            NewTier::parse("Gold", usd(0), "").err(),
            Some(PaymentError::TierPriceInvalid)
        );
        assert_eq!(
            NewTier::parse("Gold", usd(100_001), "").err(),
            Some(PaymentError::TierPriceInvalid)
        );
        assert_eq!(
            NewTier::parse("Gold", usd(500), &"x".repeat(501)).err(),
            Some(PaymentError::TierPerksInvalid)
        );
    }

    #[test]
    fn charge_ids_differ_per_period_and_subscription_and_repeat_exactly() {
        let a = charge_ids(1, 0).unwrap();
        assert_eq!(a, charge_ids(1, 0).unwrap());
        assert_ne!(a.0, charge_ids(1, 1).unwrap().0);
        assert_ne!(a.0, charge_ids(2, 0).unwrap().0);
        assert_ne!(a.0, a.1);
    }
}
