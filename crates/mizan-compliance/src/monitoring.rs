//! Transaction monitoring: rules over one person's movements that raise alerts for a
//! compliance operator (each alert becomes a case, see `mizan-app`'s `monitoring`).
//!
//! The rules are pure functions of the movements, the account's age and the time of
//! evaluation, so each is tested on synthetic traffic. Thresholds are configuration
//! ([`Thresholds`], `[monitoring]` in the server config); amounts are USD cents.
//!
//! | rule | raises when |
//! |---|---|
//! | `structuring` | at least `structuring_count_min` movements in one direction within `structuring_window_hours`, each just under a reporting threshold (within `structuring_margin_bps` below $10,000 or $3,000) |
//! | `rapid_in_out` | at least `rapid_in_out_minor` came in and at least `rapid_in_out_ratio_bps` of it left within `rapid_in_out_window_hours` |
//! | `velocity_spike` | money out in the last 24 h is at least `velocity_factor` × the daily average of the previous `velocity_history_days` days, and at least `velocity_floor_minor` |
//! | `many_new_senders` | an account younger than `new_account_days` got money from at least `new_senders_min` distinct senders within `new_senders_window_hours` |
//! | `round_amounts` | at least `round_count_min` movements within `round_window_hours`, each a whole multiple of `round_unit_minor` and at least `round_unit_minor` |

use serde::{Deserialize, Serialize};

const NANOS_PER_HOUR: u64 = 3_600 * 1_000_000_000;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;
const BPS_PER_UNIT: i64 = 10_000;
/// Movements one evaluation looks at; older ones beyond it are dropped first.
pub const MOVEMENTS_MAX: usize = 10_000;

/// Which way the money went, seen from the person's wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// What kind of movement (for reports and for which rules look at it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A payment between two people (also paid requests, splits).
    P2p,
    Tip,
    PaidDm,
    /// A creator subscription's charge (first month and each renewal).
    Subscription,
    /// Card funding: cash-like money coming in.
    Funding,
    /// Bank cash-out: cash-like money going out.
    Cashout,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::P2p => "p2p",
            Channel::Tip => "tip",
            Channel::PaidDm => "paid_dm",
            Channel::Subscription => "subscription",
            Channel::Funding => "funding",
            Channel::Cashout => "cashout",
        }
    }

    /// Money crossing the platform's edge, as a CTR counts it.
    pub fn is_cash_like(self) -> bool {
        match self {
            Channel::Funding | Channel::Cashout => true,
            Channel::P2p | Channel::Tip | Channel::PaidDm | Channel::Subscription => false,
        }
    }
}

/// One movement of one person's wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The ledger transfer id.
    pub id: u128,
    pub at_ns: u64,
    /// USD cents, > 0.
    pub amount_minor: i64,
    pub direction: Direction,
    pub channel: Channel,
    /// The other wallet (for P2P, tips, paid DMs), if a person's.
    pub counterparty: Option<u128>,
}

/// Every rule's thresholds; [`Thresholds::default`] is what docs/COMPLIANCE.md lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// The reporting thresholds structuring stays under: $10,000 (CTR) and $3,000
    /// (funds-transfer recordkeeping).
    pub structuring_thresholds_minor: Vec<i64>,
    /// How far under a threshold counts as "just under", in basis points of it
    /// (1,000 = 10 %: $9,000.00–$9,999.99 and $2,700.00–$2,999.99).
    pub structuring_margin_bps: i64,
    pub structuring_count_min: usize,
    pub structuring_window_hours: u64,
    pub rapid_in_out_minor: i64,
    pub rapid_in_out_ratio_bps: i64,
    pub rapid_in_out_window_hours: u64,
    pub velocity_factor: i64,
    pub velocity_floor_minor: i64,
    pub velocity_history_days: u64,
    pub new_account_days: u64,
    pub new_senders_min: usize,
    pub new_senders_window_hours: u64,
    pub round_unit_minor: i64,
    pub round_count_min: usize,
    pub round_window_hours: u64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            structuring_thresholds_minor: vec![1_000_000, 300_000],
            structuring_margin_bps: 1_000,
            structuring_count_min: 3,
            structuring_window_hours: 4 * 24,
            rapid_in_out_minor: 100_000,
            rapid_in_out_ratio_bps: 9_000,
            rapid_in_out_window_hours: 24,
            velocity_factor: 5,
            velocity_floor_minor: 100_000,
            velocity_history_days: 30,
            new_account_days: 14,
            new_senders_min: 10,
            new_senders_window_hours: 7 * 24,
            round_unit_minor: 100_000,
            round_count_min: 3,
            round_window_hours: 7 * 24,
        }
    }
}

impl Thresholds {
    /// Every count and window at least 1, every amount positive, ratios within 0–100 %.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("structuring_margin_bps", self.structuring_margin_bps),
            ("rapid_in_out_minor", self.rapid_in_out_minor),
            ("rapid_in_out_ratio_bps", self.rapid_in_out_ratio_bps),
            ("velocity_factor", self.velocity_factor),
            ("velocity_floor_minor", self.velocity_floor_minor),
            ("round_unit_minor", self.round_unit_minor),
        ];
        for (name, value) in positive {
            if value <= 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.structuring_margin_bps > BPS_PER_UNIT || self.rapid_in_out_ratio_bps > BPS_PER_UNIT
        {
            return Err("basis points are at most 10000".to_owned());
        }
        if self.structuring_thresholds_minor.is_empty()
            || self.structuring_thresholds_minor.iter().any(|t| *t <= 0)
        {
            return Err("structuring_thresholds_minor: at least one, each positive".to_owned());
        }
        let counts = [
            self.structuring_count_min,
            self.new_senders_min,
            self.round_count_min,
        ];
        let windows = [
            self.structuring_window_hours,
            self.rapid_in_out_window_hours,
            self.velocity_history_days,
            self.new_account_days,
            self.new_senders_window_hours,
            self.round_window_hours,
        ];
        if counts.contains(&0) || windows.contains(&0) {
            return Err("counts and windows are at least 1".to_owned());
        }
        Ok(())
    }
}

/// A rule; its code names alerts and case reasons and never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    Structuring,
    RapidInOut,
    VelocitySpike,
    ManyNewSenders,
    RoundAmounts,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::Structuring,
        Rule::RapidInOut,
        Rule::VelocitySpike,
        Rule::ManyNewSenders,
        Rule::RoundAmounts,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Rule::Structuring => "structuring",
            Rule::RapidInOut => "rapid_in_out",
            Rule::VelocitySpike => "velocity_spike",
            Rule::ManyNewSenders => "many_new_senders",
            Rule::RoundAmounts => "round_amounts",
        }
    }

    /// How a SAR characterizes it (FinCEN SAR item 29–38 categories).
    pub fn sar_category(self) -> &'static str {
        match self {
            Rule::Structuring => {
                "Structuring: transaction(s) below BSA recordkeeping or CTR threshold"
            }
            Rule::RapidInOut => {
                "Money laundering: funds transferred in and out within a short period"
            }
            Rule::VelocitySpike => {
                "Other suspicious activity: unusual increase in transaction volume"
            }
            Rule::ManyNewSenders => {
                "Money laundering: funnel account (many senders to one new account)"
            }
            Rule::RoundAmounts => "Other suspicious activity: repeated round-dollar transactions",
        }
    }
}

/// One rule that fired, with the movements that made it fire (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub rule: Rule,
    /// Amounts and counts in words; no names.
    pub summary: String,
    pub movements: Vec<Movement>,
}

impl Alert {
    /// The first movement's id: the same pattern found again gives the same key.
    pub fn anchor(&self) -> u128 {
        self.movements.first().map_or(0, |movement| movement.id)
    }
}

fn dollars(minor: i64) -> String {
    format!("${}.{:02}", minor / 100, minor % 100)
}

/// Every alert the movements raise at `now_ns`, for an account opened at `opened_at_ns`.
pub fn evaluate(
    movements: &[Movement],
    opened_at_ns: u64,
    now_ns: u64,
    thresholds: &Thresholds,
) -> Vec<Alert> {
    let mut sorted: Vec<Movement> = movements
        .iter()
        .copied()
        .filter(|m| m.amount_minor > 0 && m.at_ns <= now_ns)
        .collect();
    sorted.sort_by_key(|m| (m.at_ns, m.id));
    if sorted.len() > MOVEMENTS_MAX {
        sorted.drain(..sorted.len() - MOVEMENTS_MAX);
    }
    let mut alerts = Vec::new();
    for rule in Rule::ALL {
        let found = match rule {
            Rule::Structuring => structuring(&sorted, thresholds),
            Rule::RapidInOut => rapid_in_out(&sorted, thresholds),
            Rule::VelocitySpike => velocity_spike(&sorted, now_ns, thresholds),
            Rule::ManyNewSenders => many_new_senders(&sorted, opened_at_ns, now_ns, thresholds),
            Rule::RoundAmounts => round_amounts(&sorted, thresholds),
        };
        alerts.extend(found);
    }
    alerts
}

/// The first window (by its earliest movement) of `window_ns` in which at least
/// `count_min` of `selected` fall.
fn dense_window(selected: &[Movement], window_ns: u64, count_min: usize) -> Option<Vec<Movement>> {
    for (start, first) in selected.iter().enumerate() {
        let inside: Vec<Movement> = selected[start..]
            .iter()
            .take_while(|m| m.at_ns - first.at_ns < window_ns)
            .copied()
            .collect();
        if inside.len() >= count_min {
            return Some(inside);
        }
    }
    None
}

fn structuring(sorted: &[Movement], t: &Thresholds) -> Option<Alert> {
    let window_ns = t.structuring_window_hours * NANOS_PER_HOUR;
    for &threshold in &t.structuring_thresholds_minor {
        let floor = threshold - threshold * t.structuring_margin_bps / BPS_PER_UNIT;
        for direction in [Direction::In, Direction::Out] {
            let under: Vec<Movement> = sorted
                .iter()
                .copied()
                .filter(|m| m.direction == direction)
                .filter(|m| (floor..threshold).contains(&m.amount_minor))
                .collect();
            if let Some(window) = dense_window(&under, window_ns, t.structuring_count_min) {
                let total: i64 = window.iter().map(|m| m.amount_minor).sum();
                return Some(Alert {
                    rule: Rule::Structuring,
                    summary: format!(
                        "{} movements ({}) each between {} and {} within {} hours, {} in total",
                        window.len(),
                        match direction {
                            Direction::In => "in",
                            Direction::Out => "out",
                        },
                        dollars(floor),
                        dollars(threshold - 1),
                        t.structuring_window_hours,
                        dollars(total)
                    ),
                    movements: window,
                });
            }
        }
    }
    None
}

fn rapid_in_out(sorted: &[Movement], t: &Thresholds) -> Option<Alert> {
    let window_ns = t.rapid_in_out_window_hours * NANOS_PER_HOUR;
    for (start, first) in sorted.iter().enumerate() {
        if first.direction != Direction::In {
            continue;
        }
        let inside: Vec<Movement> = sorted[start..]
            .iter()
            .take_while(|m| m.at_ns - first.at_ns < window_ns)
            .copied()
            .collect();
        let sum = |direction| -> i64 {
            inside
                .iter()
                .filter(|m| m.direction == direction)
                .map(|m| m.amount_minor)
                .sum()
        };
        let (came_in, went_out) = (sum(Direction::In), sum(Direction::Out));
        let enough_in = came_in >= t.rapid_in_out_minor;
        // went_out / came_in >= ratio, in integers.
        let enough_out = went_out.saturating_mul(BPS_PER_UNIT)
            >= came_in.saturating_mul(t.rapid_in_out_ratio_bps);
        if enough_in && enough_out {
            return Some(Alert {
                rule: Rule::RapidInOut,
                summary: format!(
                    "{} came in and {} went out within {} hours",
                    dollars(came_in),
                    dollars(went_out),
                    t.rapid_in_out_window_hours
                ),
                movements: inside,
            });
        }
    }
    None
}

fn velocity_spike(sorted: &[Movement], now_ns: u64, t: &Thresholds) -> Option<Alert> {
    let recent_from = now_ns.saturating_sub(NANOS_PER_DAY);
    let history_from = recent_from.saturating_sub(t.velocity_history_days * NANOS_PER_DAY);
    let out = sorted.iter().filter(|m| m.direction == Direction::Out);
    let recent: Vec<Movement> = out
        .clone()
        .filter(|m| m.at_ns >= recent_from)
        .copied()
        .collect();
    let history: Vec<&Movement> = out
        .filter(|m| (history_from..recent_from).contains(&m.at_ns))
        .collect();
    // No history is no baseline: a new account's first day is not a spike.
    if history.is_empty() {
        return None;
    }
    let recent_total: i64 = recent.iter().map(|m| m.amount_minor).sum();
    let history_total: i64 = history.iter().map(|m| m.amount_minor).sum();
    let days = i64::try_from(t.velocity_history_days).unwrap_or(i64::MAX);
    // recent >= factor × (history / days), in integers.
    let spike =
        recent_total.saturating_mul(days) >= history_total.saturating_mul(t.velocity_factor);
    if spike && recent_total >= t.velocity_floor_minor {
        return Some(Alert {
            rule: Rule::VelocitySpike,
            summary: format!(
                "{} out in the last 24 hours against a daily average of {} over {} days",
                dollars(recent_total),
                dollars(history_total / days.max(1)),
                t.velocity_history_days
            ),
            movements: recent,
        });
    }
    None
}

fn many_new_senders(
    sorted: &[Movement],
    opened_at_ns: u64,
    now_ns: u64,
    t: &Thresholds,
) -> Option<Alert> {
    if now_ns.saturating_sub(opened_at_ns) >= t.new_account_days * NANOS_PER_DAY {
        return None;
    }
    let window_ns = t.new_senders_window_hours * NANOS_PER_HOUR;
    let incoming: Vec<Movement> = sorted
        .iter()
        .copied()
        .filter(|m| m.direction == Direction::In && m.counterparty.is_some())
        .collect();
    for (start, first) in incoming.iter().enumerate() {
        let inside: Vec<Movement> = incoming[start..]
            .iter()
            .take_while(|m| m.at_ns - first.at_ns < window_ns)
            .copied()
            .collect();
        let mut senders: Vec<u128> = inside.iter().filter_map(|m| m.counterparty).collect();
        senders.sort_unstable();
        senders.dedup();
        if senders.len() >= t.new_senders_min {
            let total: i64 = inside.iter().map(|m| m.amount_minor).sum();
            return Some(Alert {
                rule: Rule::ManyNewSenders,
                summary: format!(
                    "{} distinct senders paid {} into an account opened less than {} days ago",
                    senders.len(),
                    dollars(total),
                    t.new_account_days
                ),
                movements: inside,
            });
        }
    }
    None
}

fn round_amounts(sorted: &[Movement], t: &Thresholds) -> Option<Alert> {
    let round: Vec<Movement> = sorted
        .iter()
        .copied()
        .filter(|m| {
            m.amount_minor >= t.round_unit_minor && m.amount_minor % t.round_unit_minor == 0
        })
        .collect();
    let window = dense_window(
        &round,
        t.round_window_hours * NANOS_PER_HOUR,
        t.round_count_min,
    )?;
    let total: i64 = window.iter().map(|m| m.amount_minor).sum();
    Some(Alert {
        rule: Rule::RoundAmounts,
        summary: format!(
            "{} movements in whole multiples of {} within {} hours, {} in total",
            window.len(),
            dollars(t.round_unit_minor),
            t.round_window_hours,
            dollars(total)
        ),
        movements: window,
    })
}
