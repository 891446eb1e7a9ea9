#![allow(clippy::unwrap_used)]
//! Each monitoring rule on synthetic traffic: a pattern that must raise it, and a
//! near miss that must not.

use mizan_compliance::monitoring::{evaluate, Channel, Direction, Movement, Rule, Thresholds};

const HOUR_NS: u64 = 3_600 * 1_000_000_000;
const DAY_NS: u64 = 24 * HOUR_NS;
/// 2026-11-01T00:00:00Z.
const START_NS: u64 = 1_793_491_200 * 1_000_000_000;

struct Traffic {
    movements: Vec<Movement>,
    next_id: u128,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            movements: Vec::new(),
            next_id: 1,
        }
    }

    fn add(
        &mut self,
        at_ns: u64,
        amount_minor: i64,
        direction: Direction,
        channel: Channel,
        counterparty: Option<u128>,
    ) -> &mut Traffic {
        self.movements.push(Movement {
            id: self.next_id,
            at_ns,
            amount_minor,
            direction,
            channel,
            counterparty,
        });
        self.next_id += 1;
        self
    }

    fn out(&mut self, at_ns: u64, amount_minor: i64) -> &mut Traffic {
        self.add(at_ns, amount_minor, Direction::Out, Channel::P2p, Some(99))
    }

    fn inbound(&mut self, at_ns: u64, amount_minor: i64, from: u128) -> &mut Traffic {
        self.add(at_ns, amount_minor, Direction::In, Channel::P2p, Some(from))
    }

    /// The rules raised, for an account opened a year before `START_NS`.
    fn rules_at(&self, now_ns: u64) -> Vec<Rule> {
        self.rules_for(START_NS - 365 * DAY_NS, now_ns)
    }

    fn rules_for(&self, opened_at_ns: u64, now_ns: u64) -> Vec<Rule> {
        evaluate(
            &self.movements,
            opened_at_ns,
            now_ns,
            &Thresholds::default(),
        )
        .into_iter()
        .map(|alert| alert.rule)
        .collect()
    }
}

#[test]
fn structuring_under_10000_within_days_raises_it() {
    let mut traffic = Traffic::new();
    traffic
        .add(START_NS, 950_000, Direction::In, Channel::Funding, None)
        .add(
            START_NS + DAY_NS,
            980_000,
            Direction::In,
            Channel::Funding,
            None,
        )
        .add(
            START_NS + 2 * DAY_NS,
            999_999,
            Direction::In,
            Channel::Funding,
            None,
        );
    let alerts = evaluate(
        &traffic.movements,
        START_NS - 365 * DAY_NS,
        START_NS + 3 * DAY_NS,
        &Thresholds::default(),
    );
    let structuring = alerts
        .iter()
        .find(|alert| alert.rule == Rule::Structuring)
        .unwrap();
    assert_eq!(structuring.movements.len(), 3);
    assert_eq!(structuring.anchor(), 1);
    assert!(
        structuring.summary.contains("$29299.99"),
        "{}",
        structuring.summary
    );
}

#[test]
fn structuring_under_3000_raises_it_too() {
    let mut traffic = Traffic::new();
    for day in 0..3 {
        traffic.out(START_NS + day * DAY_NS, 290_000);
    }
    assert!(traffic
        .rules_at(START_NS + 3 * DAY_NS)
        .contains(&Rule::Structuring));
}

#[test]
fn structuring_near_misses_do_not_raise_it() {
    // Spread over more than four days.
    let mut spread = Traffic::new();
    for day in 0..3 {
        spread.out(START_NS + day * 3 * DAY_NS, 950_000);
    }
    assert!(!spread
        .rules_at(START_NS + 7 * DAY_NS)
        .contains(&Rule::Structuring));
    // At the threshold (a CTR is filed anyway) or well under it.
    let mut honest = Traffic::new();
    honest
        .out(START_NS, 1_000_000)
        .out(START_NS + HOUR_NS, 1_000_000)
        .out(START_NS + 2 * HOUR_NS, 500_000)
        .out(START_NS + 3 * HOUR_NS, 800_000);
    assert!(!honest
        .rules_at(START_NS + DAY_NS)
        .contains(&Rule::Structuring));
    // Only two just under.
    let mut two = Traffic::new();
    two.out(START_NS, 990_000).out(START_NS + HOUR_NS, 990_000);
    assert!(!two.rules_at(START_NS + DAY_NS).contains(&Rule::Structuring));
}

#[test]
fn funds_in_and_out_within_a_day_raise_rapid_in_out() {
    let mut traffic = Traffic::new();
    traffic
        .add(START_NS, 500_000, Direction::In, Channel::Funding, None)
        .add(
            START_NS + 20 * HOUR_NS,
            480_000,
            Direction::Out,
            Channel::Cashout,
            None,
        );
    assert!(traffic
        .rules_at(START_NS + DAY_NS)
        .contains(&Rule::RapidInOut));
}

#[test]
fn money_that_stays_or_leaves_later_does_not_raise_rapid_in_out() {
    let mut stays = Traffic::new();
    stays
        .add(START_NS, 500_000, Direction::In, Channel::Funding, None)
        .add(
            START_NS + HOUR_NS,
            100_000,
            Direction::Out,
            Channel::Cashout,
            None,
        );
    assert!(!stays
        .rules_at(START_NS + DAY_NS)
        .contains(&Rule::RapidInOut));
    let mut later = Traffic::new();
    later
        .add(START_NS, 500_000, Direction::In, Channel::Funding, None)
        .add(
            START_NS + 30 * HOUR_NS,
            500_000,
            Direction::Out,
            Channel::Cashout,
            None,
        );
    assert!(!later
        .rules_at(START_NS + 2 * DAY_NS)
        .contains(&Rule::RapidInOut));
    // Small amounts are everyday life.
    let mut small = Traffic::new();
    small
        .add(START_NS, 5_000, Direction::In, Channel::Funding, None)
        .out(START_NS + HOUR_NS, 5_000);
    assert!(!small
        .rules_at(START_NS + DAY_NS)
        .contains(&Rule::RapidInOut));
}

#[test]
fn a_day_far_above_the_persons_own_history_raises_velocity_spike() {
    let mut traffic = Traffic::new();
    // $50 a day for 30 days, then $3,000 in one day.
    for day in 0..30 {
        traffic.out(START_NS + day * DAY_NS, 5_000);
    }
    let spike_day = START_NS + 30 * DAY_NS + HOUR_NS;
    traffic
        .out(spike_day, 150_000)
        .out(spike_day + HOUR_NS, 150_000);
    assert!(traffic
        .rules_at(spike_day + 2 * HOUR_NS)
        .contains(&Rule::VelocitySpike));
}

#[test]
fn steady_or_historyless_traffic_does_not_raise_velocity_spike() {
    let mut steady = Traffic::new();
    for day in 0..31 {
        steady.out(START_NS + day * DAY_NS, 200_000);
    }
    assert!(!steady
        .rules_at(START_NS + 30 * DAY_NS + HOUR_NS)
        .contains(&Rule::VelocitySpike));
    let mut first_day = Traffic::new();
    first_day.out(START_NS, 500_000);
    assert!(!first_day
        .rules_at(START_NS + HOUR_NS)
        .contains(&Rule::VelocitySpike));
    // Five times a tiny history is still under the floor.
    let mut tiny = Traffic::new();
    for day in 0..30 {
        tiny.out(START_NS + day * DAY_NS, 100);
    }
    tiny.out(START_NS + 30 * DAY_NS + HOUR_NS, 10_000);
    assert!(!tiny
        .rules_at(START_NS + 30 * DAY_NS + 2 * HOUR_NS)
        .contains(&Rule::VelocitySpike));
}

#[test]
fn many_senders_to_a_new_account_raise_many_new_senders() {
    let mut traffic = Traffic::new();
    for sender in 0..10 {
        traffic.inbound(
            START_NS + u64::try_from(sender).unwrap() * HOUR_NS,
            2_000,
            1_000 + sender,
        );
    }
    let opened = START_NS - DAY_NS;
    assert!(traffic
        .rules_for(opened, START_NS + DAY_NS)
        .contains(&Rule::ManyNewSenders));
}

#[test]
fn old_accounts_or_few_senders_do_not_raise_many_new_senders() {
    let mut traffic = Traffic::new();
    for sender in 0..10 {
        traffic.inbound(
            START_NS + u64::try_from(sender).unwrap() * HOUR_NS,
            2_000,
            1_000 + sender,
        );
    }
    // A year-old account (a creator getting tips) is not a funnel by this rule.
    assert!(!traffic
        .rules_at(START_NS + DAY_NS)
        .contains(&Rule::ManyNewSenders));
    // One sender ten times is one sender.
    let mut one = Traffic::new();
    for n in 0..10 {
        one.inbound(START_NS + n * HOUR_NS, 2_000, 7);
    }
    assert!(!one
        .rules_for(START_NS - DAY_NS, START_NS + DAY_NS)
        .contains(&Rule::ManyNewSenders));
}

#[test]
fn repeated_round_thousands_raise_round_amounts() {
    let mut traffic = Traffic::new();
    traffic
        .out(START_NS, 200_000)
        .out(START_NS + DAY_NS, 500_000)
        .out(START_NS + 2 * DAY_NS, 100_000);
    assert!(traffic
        .rules_at(START_NS + 3 * DAY_NS)
        .contains(&Rule::RoundAmounts));
}

#[test]
fn uneven_or_small_round_amounts_do_not_raise_round_amounts() {
    let mut uneven = Traffic::new();
    uneven
        .out(START_NS, 200_000)
        .out(START_NS + DAY_NS, 512_345)
        .out(START_NS + 2 * DAY_NS, 100_050);
    assert!(!uneven
        .rules_at(START_NS + 3 * DAY_NS)
        .contains(&Rule::RoundAmounts));
    let mut small = Traffic::new();
    small
        .out(START_NS, 10_000)
        .out(START_NS + HOUR_NS, 20_000)
        .out(START_NS + 2 * HOUR_NS, 50_000);
    assert!(!small
        .rules_at(START_NS + DAY_NS)
        .contains(&Rule::RoundAmounts));
}

#[test]
fn ordinary_traffic_raises_nothing() {
    let mut traffic = Traffic::new();
    for day in 0..30 {
        traffic.inbound(START_NS + day * DAY_NS, 4_250, 5);
        traffic.out(START_NS + day * DAY_NS + HOUR_NS, 1_999);
    }
    assert_eq!(traffic.rules_at(START_NS + 30 * DAY_NS), Vec::<Rule>::new());
}

#[test]
fn thresholds_validate() {
    assert!(Thresholds::default().validate().is_ok());
    let mut bad = Thresholds {
        structuring_count_min: 0,
        ..Thresholds::default()
    };
    assert!(bad.validate().is_err());
    bad = Thresholds {
        rapid_in_out_ratio_bps: 10_001,
        ..Thresholds::default()
    };
    assert!(bad.validate().is_err());
    bad = Thresholds {
        structuring_thresholds_minor: Vec::new(),
        ..Thresholds::default()
    };
    assert!(bad.validate().is_err());
}
