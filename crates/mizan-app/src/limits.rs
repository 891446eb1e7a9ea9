//! Limits on money movements, per verification tier, enforced by the ledger itself.
//!
//! Each person has, per limit ([`LimitKind`]) and window (a UTC day or an ISO week
//! from Monday 00:00 UTC), an *allowance account* on the ledger that can never be
//! overdrawn (`debits_must_not_exceed_credits`). It is credited with the window's
//! limit by grant transfers whose ids are derived from (account, tier) — one grant
//! per tier step, so upgrading mid-window adds the difference at once. Every movement
//! the limit counts adds a transfer allowance → limits control for its amount to the
//! movement's own atomic submission: an exhausted allowance fails that leg with
//! `exceeds_credits`, so the whole submission — money included — is not applied.
//! The writer applies submissions one at a time, so concurrent movements can never
//! spend the same allowance twice: no read-then-write race.
//!
//! A window's allowance accounts and grants ride in the first movement's own
//! submission as *ensured* events ([`mizan_ledger::Ensure`]): created when new, and
//! no failure when another movement created them first. A process remembers the
//! allowances it has seen granted and stops sending them.

use mizan_core::{AccountId, TransferId};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, CreateTransferResult, Ensure, NewAccount,
    TransferRequest, TransferResult,
};
use serde::{Deserialize, Serialize};

use crate::identity::{PersonId, SharedReader, WALLET_CURRENCY};
use crate::licences::{self, Capability};
use crate::payments::{internal, PaymentError, PLATFORM_OWNER};
use crate::time::rfc3339_from_ns;
use crate::verification::{self, Tier, VerificationStatus};

/// The platform account on the other side of every allowance grant and use.
pub const LIMITS_CONTROL_USD: u128 = 0x4d49_5a41_4e00_0000_0000_0000_0000_0006;
pub const TRANSFER_CODE_ALLOWANCE_GRANT: u16 = 20;
pub const TRANSFER_CODE_ALLOWANCE_USE: u16 = 21;
/// Largest configurable limit: $10,000,000.00.
pub const LIMIT_MINOR_MAX: i64 = 1_000_000_000;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;
const ALLOWANCE_ACCOUNT_DOMAIN: &[u8] = b"mizan.allowance.account.v1";
const ALLOWANCE_GRANT_DOMAIN: &[u8] = b"mizan.allowance.grant.v1";
/// v2: a leg's id sorts next to its movement's (`crate::ids::beside`).
const ALLOWANCE_USE_DOMAIN: &[u8] = b"mizan.allowance.use.v2";

/// What kind of movement a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// P2P payments and paid requests.
    Send,
    Cashout,
    /// Card top-ups.
    Funding,
}

impl Movement {
    fn kinds(self) -> &'static [LimitKind] {
        match self {
            Movement::Send => &[LimitKind::DailySend, LimitKind::WeeklySend],
            Movement::Cashout => &[LimitKind::WeeklyCashout],
            Movement::Funding => &[LimitKind::WeeklyFunding],
        }
    }

    /// Whether the money leaves the person (a frozen person may not).
    fn is_outgoing(self) -> bool {
        match self {
            Movement::Send | Movement::Cashout => true,
            Movement::Funding => false,
        }
    }

    fn capability(self) -> Option<Capability> {
        match self {
            Movement::Send => Some(Capability::P2p),
            Movement::Cashout => Some(Capability::Cashout),
            Movement::Funding => None,
        }
    }
}

/// One limit; its code is what `limit_exceeded` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    DailySend,
    WeeklySend,
    WeeklyCashout,
    WeeklyFunding,
}

impl LimitKind {
    pub const ALL: [LimitKind; 4] = [
        LimitKind::DailySend,
        LimitKind::WeeklySend,
        LimitKind::WeeklyCashout,
        LimitKind::WeeklyFunding,
    ];

    pub fn code(self) -> &'static str {
        match self {
            LimitKind::DailySend => "daily_send",
            LimitKind::WeeklySend => "weekly_send",
            LimitKind::WeeklyCashout => "weekly_cashout",
            LimitKind::WeeklyFunding => "weekly_funding",
        }
    }

    fn number(self) -> u8 {
        match self {
            LimitKind::DailySend => 1,
            LimitKind::WeeklySend => 2,
            LimitKind::WeeklyCashout => 3,
            LimitKind::WeeklyFunding => 4,
        }
    }

    fn window_seconds(self) -> u64 {
        match self {
            LimitKind::DailySend => SECONDS_PER_DAY,
            LimitKind::WeeklySend | LimitKind::WeeklyCashout | LimitKind::WeeklyFunding => {
                7 * SECONDS_PER_DAY
            }
        }
    }

    /// The window holding `now_ns`: (start, end) in seconds since the epoch. Weeks
    /// start on Monday 00:00 UTC (1970-01-01 was a Thursday).
    pub fn window_at(self, now_ns: u64) -> (u64, u64) {
        let day = now_ns / NANOS_PER_SECOND / SECONDS_PER_DAY;
        let start_day = match self.window_seconds() {
            SECONDS_PER_DAY => day,
            _ => day - (day + 3) % 7,
        };
        let start = start_day * SECONDS_PER_DAY;
        (start, start + self.window_seconds())
    }
}

/// The limits of one tier, in USD minor units (cents); 0 means not allowed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    pub daily_send_minor: i64,
    pub weekly_send_minor: i64,
    pub weekly_cashout_minor: i64,
    pub weekly_funding_minor: i64,
}

impl TierLimits {
    pub fn amount(&self, kind: LimitKind) -> i64 {
        match kind {
            LimitKind::DailySend => self.daily_send_minor,
            LimitKind::WeeklySend => self.weekly_send_minor,
            LimitKind::WeeklyCashout => self.weekly_cashout_minor,
            LimitKind::WeeklyFunding => self.weekly_funding_minor,
        }
    }

    /// The same amount for every limit (tests, demos).
    pub const fn uniform(minor: i64) -> TierLimits {
        TierLimits {
            daily_send_minor: minor,
            weekly_send_minor: minor,
            weekly_cashout_minor: minor,
            weekly_funding_minor: minor,
        }
    }
}

/// The limits of every tier (the `[limits.tier0]` … `[limits.tier2]` config tables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsTable {
    pub tier0: TierLimits,
    pub tier1: TierLimits,
    pub tier2: TierLimits,
}

impl Default for LimitsTable {
    /// Tier 0: $250 a week sent, $500 a week added, no cash-out. Tier 1: $2,500 a day
    /// and $10,000 a week sent, $2,500 a week cashed out, $10,000 added. Tier 2:
    /// $10,000 a day and $50,000 a week sent, $25,000 cashed out, $50,000 added.
    fn default() -> LimitsTable {
        LimitsTable {
            tier0: TierLimits {
                daily_send_minor: 25_000,
                weekly_send_minor: 25_000,
                weekly_cashout_minor: 0,
                weekly_funding_minor: 50_000,
            },
            tier1: TierLimits {
                daily_send_minor: 250_000,
                weekly_send_minor: 1_000_000,
                weekly_cashout_minor: 250_000,
                weekly_funding_minor: 1_000_000,
            },
            tier2: TierLimits {
                daily_send_minor: 1_000_000,
                weekly_send_minor: 5_000_000,
                weekly_cashout_minor: 2_500_000,
                weekly_funding_minor: 5_000_000,
            },
        }
    }
}

impl LimitsTable {
    pub fn uniform(minor: i64) -> LimitsTable {
        LimitsTable {
            tier0: TierLimits::uniform(minor),
            tier1: TierLimits::uniform(minor),
            tier2: TierLimits::uniform(minor),
        }
    }

    pub fn of(&self, tier: Tier) -> &TierLimits {
        match tier {
            Tier::Unverified => &self.tier0,
            Tier::Identity => &self.tier1,
            Tier::Document => &self.tier2,
        }
    }

    /// Every amount within 0..=[`LIMIT_MINOR_MAX`], never lower for a higher tier
    /// (an upgrade only ever adds to an allowance).
    pub fn validate(&self) -> Result<(), String> {
        for kind in LimitKind::ALL {
            let mut previous = 0;
            for tier in Tier::ALL {
                let amount = self.of(tier).amount(kind);
                if !(0..=LIMIT_MINOR_MAX).contains(&amount) {
                    return Err(format!(
                        "{} of tier {}: 0 to {LIMIT_MINOR_MAX}",
                        kind.code(),
                        tier.number()
                    ));
                }
                if amount < previous {
                    return Err(format!(
                        "{} of tier {} is lower than the tier below",
                        kind.code(),
                        tier.number()
                    ));
                }
                previous = amount;
            }
        }
        Ok(())
    }
}

/// Allowance accounts this process has seen granted up to an amount. It only spares
/// a movement the ensured events of its allowances; the ledger holds the truth (a
/// leg drawing on an allowance granted less than remembered fails there, as it
/// must), so an entry can never let money through. A window's account id is new each
/// window. Cleared when it reaches [`GRANTED_CACHE_MAX`] entries.
static GRANTED: std::sync::Mutex<Option<std::collections::HashMap<u128, i64>>> =
    std::sync::Mutex::new(None);
const GRANTED_CACHE_MAX: usize = 200_000;

fn granted_at_least(account: AccountId, limit_minor: i64) -> bool {
    let cache = GRANTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    cache
        .as_ref()
        .and_then(|granted| granted.get(&account.get()))
        .is_some_and(|granted| *granted >= limit_minor)
}

fn remember_granted(account: AccountId, credited_minor: i64) {
    let mut cache = GRANTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let granted = cache.get_or_insert_with(std::collections::HashMap::new);
    if granted.len() >= GRANTED_CACHE_MAX {
        granted.clear();
    }
    let entry = granted.entry(account.get()).or_insert(credited_minor);
    *entry = (*entry).max(credited_minor);
}

/// One allowance a movement draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Allowance {
    kind: LimitKind,
    account: AccountId,
    limit_minor: i64,
    resets_at_ns: u64,
}

fn allowance(
    person: PersonId,
    kind: LimitKind,
    limit_minor: i64,
    now_ns: u64,
) -> Result<Allowance, PaymentError> {
    let (start, end) = kind.window_at(now_ns);
    let raw = crate::ids::hashed(
        ALLOWANCE_ACCOUNT_DOMAIN,
        &[
            &person.get().to_be_bytes(),
            &[kind.number()],
            &start.to_be_bytes(),
        ],
    );
    Ok(Allowance {
        kind,
        account: AccountId::new(raw).map_err(|error| internal("allowance account id", error))?,
        limit_minor,
        resets_at_ns: end * NANOS_PER_SECOND,
    })
}

fn control_account() -> Result<AccountId, PaymentError> {
    AccountId::new(LIMITS_CONTROL_USD).map_err(|error| internal("limits control account", error))
}

/// What a movement was cleared for: its allowances, to draw on in its submission,
/// and the allowance accounts and grants the submission must ensure.
#[derive(Debug, Clone)]
pub struct Charge {
    allowances: Vec<Allowance>,
    ensure: Ensure,
}

/// Before a movement: refuses outgoing money of a frozen person
/// ([`crate::cases`]), checks the person's licence (by residence) and tier, and
/// names this window's allowances, with the events that create and grant the ones
/// this process has not seen granted yet.
pub async fn prepare(
    reader: &SharedReader,
    limits: &LimitsTable,
    person: PersonId,
    movement: Movement,
    now_ns: u64,
) -> Result<Charge, PaymentError> {
    if movement.is_outgoing() {
        let frozen = crate::cases::is_frozen(reader, person)
            .await
            .map_err(|error| internal("reading the freeze", error))?;
        if frozen {
            return Err(PaymentError::AccountFrozen);
        }
    }
    let status = verification::status_of(reader, person).await?;
    if let Some(capability) = movement.capability() {
        licences::require(reader, &status.jurisdiction(), capability).await?;
    }
    let mut allowances = Vec::with_capacity(2);
    for &kind in movement.kinds() {
        let limit_minor = limits.of(status.tier).amount(kind);
        if limit_minor == 0 {
            let needed = Tier::ALL
                .into_iter()
                .find(|tier| limits.of(*tier).amount(kind) > 0);
            return Err(PaymentError::VerificationRequired {
                tier: needed.map_or(u8::MAX, Tier::number),
            });
        }
        allowances.push(allowance(person, kind, limit_minor, now_ns)?);
    }
    let ensure = grants(limits, person, status.tier, &allowances)?;
    Ok(Charge { allowances, ensure })
}

/// The allowance accounts, and one grant per tier step up to `tier`, for each of
/// `allowances` not remembered as granted. A grant that exists with another amount
/// (the config changed mid-window) keeps the old amount until the window ends.
fn grants(
    limits: &LimitsTable,
    person: PersonId,
    tier: Tier,
    allowances: &[Allowance],
) -> Result<Ensure, PaymentError> {
    let mut ensure = Ensure::default();
    let unknown: Vec<&Allowance> = allowances
        .iter()
        .filter(|a| !granted_at_least(a.account, a.limit_minor))
        .collect();
    if unknown.is_empty() {
        return Ok(ensure);
    }
    let control = control_account()?;
    let usd = ledger_of(WALLET_CURRENCY);
    ensure.accounts.push(NewAccount {
        id: control,
        ledger: usd,
        code: AccountCode::LimitsControl,
        owner: PLATFORM_OWNER,
        flags: AccountFlags::NONE,
    });
    for allowance in unknown {
        ensure.accounts.push(NewAccount {
            id: allowance.account,
            ledger: usd,
            code: AccountCode::Allowance,
            owner: person.get(),
            flags: AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        });
        let mut below = 0;
        for step_tier in Tier::ALL.into_iter().filter(|step| *step <= tier) {
            let amount = limits.of(step_tier).amount(allowance.kind);
            let step = amount - below;
            below = amount.max(below);
            if step <= 0 {
                continue;
            }
            let raw = crate::ids::hashed(
                ALLOWANCE_GRANT_DOMAIN,
                &[
                    &allowance.account.get().to_be_bytes(),
                    &[step_tier.number()],
                ],
            );
            let id = TransferId::new(raw).map_err(|error| internal("grant id", error))?;
            ensure.transfers.push(TransferRequest::single(
                id,
                control,
                allowance.account,
                step,
                usd,
                TRANSFER_CODE_ALLOWANCE_GRANT,
            ));
        }
    }
    Ok(ensure)
}

impl Charge {
    /// The allowance accounts and grants the movement's submission must carry as its
    /// [`mizan_ledger::Submission::ensure`] (empty once this process saw them granted).
    pub fn ensure(&self) -> Ensure {
        self.ensure.clone()
    }

    /// The transfers drawing `amount_minor` from each allowance, for the movement
    /// whose money transfer is `movement`; they go after it in its submission.
    pub fn legs(
        &self,
        movement: TransferId,
        amount_minor: i64,
    ) -> Result<Vec<TransferRequest>, PaymentError> {
        let control = control_account()?;
        self.allowances
            .iter()
            .map(|allowance| {
                let raw = crate::ids::beside(
                    movement.get(),
                    ALLOWANCE_USE_DOMAIN,
                    &[&[allowance.kind.number()]],
                );
                let id =
                    TransferId::new(raw).map_err(|error| internal("allowance use id", error))?;
                Ok(TransferRequest::single(
                    id,
                    allowance.account,
                    control,
                    amount_minor,
                    ledger_of(WALLET_CURRENCY),
                    TRANSFER_CODE_ALLOWANCE_USE,
                ))
            })
            .collect()
    }

    /// The result of the movement's first money transfer (the first of `results`),
    /// or `limit_exceeded` when it failed only because an allowance leg (the last
    /// [`Charge::legs`] of `results`) did.
    pub fn settle(&self, results: &[TransferResult]) -> Result<CreateTransferResult, PaymentError> {
        let Some(money) = results.first() else {
            return Err(internal("movement results", 0));
        };
        let Some(first_leg) = results.len().checked_sub(self.allowances.len()) else {
            return Err(internal("allowance results", results.len()));
        };
        let legs = &results[first_leg.max(1)..];
        if legs.len() != self.allowances.len() {
            return Err(internal("allowance results", legs.len()));
        }
        if money.result == CreateTransferResult::Ok {
            // The submission committed, so its ensured allowances and grants exist.
            for allowance in &self.allowances {
                remember_granted(allowance.account, allowance.limit_minor);
            }
        }
        if money.result != CreateTransferResult::LinkedEventFailed {
            return Ok(money.result);
        }
        // Every leg was tried (an atomic submission is not a linked chain), so all
        // the exhausted allowances report; the one resetting last is what binds.
        let binding = legs
            .iter()
            .zip(&self.allowances)
            .filter(|(leg, _)| leg.result == CreateTransferResult::ExceedsCredits)
            .map(|(_, allowance)| allowance)
            .max_by_key(|allowance| allowance.resets_at_ns);
        match binding {
            Some(allowance) => Err(PaymentError::LimitExceeded {
                limit: allowance.kind.code(),
                resets_at: rfc3339_from_ns(allowance.resets_at_ns),
            }),
            None => Ok(money.result),
        }
    }
}

/// One limit as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitUsage {
    /// `daily_send`, `weekly_send`, `weekly_cashout` or `weekly_funding`.
    pub limit: String,
    pub amount_minor: i64,
    pub used_minor: i64,
    /// RFC 3339 UTC: when the window ends.
    pub resets_at: String,
}

/// A person's tier, residence and every limit with what this window used of it.
pub async fn usage(
    reader: &SharedReader,
    limits: &LimitsTable,
    person: PersonId,
    now_ns: u64,
) -> Result<(VerificationStatus, Vec<LimitUsage>), PaymentError> {
    let status = verification::status_of(reader, person).await?;
    let allowances = LimitKind::ALL
        .into_iter()
        .map(|kind| allowance(person, kind, limits.of(status.tier).amount(kind), now_ns))
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<AccountId> = allowances.iter().map(|a| a.account).collect();
    let pool = reader.clone();
    let stored = pool
        .read(move |r| r.accounts(&ids))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading allowances", error))?;
    let rows = allowances
        .iter()
        .map(|allowance| {
            let used = stored
                .iter()
                .find(|account| account.id == allowance.account)
                .map_or(0, |account| account.debits_posted);
            LimitUsage {
                limit: allowance.kind.code().to_owned(),
                amount_minor: allowance.limit_minor,
                used_minor: used,
                resets_at: rfc3339_from_ns(allowance.resets_at_ns),
            }
        })
        .collect();
    Ok((status, rows))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2026-11-21 is a Saturday; its week starts Monday 2026-11-16.
        let saturday_ns = 1_795_262_400 * NANOS_PER_SECOND; // 2026-11-21T12:00:00Z
        let (start, end) = LimitKind::WeeklySend.window_at(saturday_ns);
        assert_eq!(
            rfc3339_from_ns(start * NANOS_PER_SECOND),
            "2026-11-16T00:00:00Z"
        );
        assert_eq!(
            rfc3339_from_ns(end * NANOS_PER_SECOND),
            "2026-11-23T00:00:00Z"
        );
        let (start, _) = LimitKind::DailySend.window_at(saturday_ns);
        assert_eq!(
            rfc3339_from_ns(start * NANOS_PER_SECOND),
            "2026-11-21T00:00:00Z"
        );
        // Monday 00:00 itself opens a new week.
        let (start, _) = LimitKind::WeeklySend.window_at(end * NANOS_PER_SECOND);
        assert_eq!(start, end);
    }

    #[test]
    fn defaults_are_valid_and_lower_tiers_may_not_exceed_higher() {
        assert!(LimitsTable::default().validate().is_ok());
        let mut table = LimitsTable::default();
        table.tier1.weekly_send_minor = 1;
        assert!(table.validate().is_err());
        table = LimitsTable::default();
        table.tier0.daily_send_minor = -1;
        assert!(table.validate().is_err());
    }
}
