//! Transaction monitoring over the ledger: reads each person's wallet history, runs
//! the rules of `mizan_compliance::monitoring` on it, and opens a case per alert.
//!
//! Monitoring is a scan, not a step of each movement: a movement's latency and its
//! exactly-once guarantees stay as they are, and a scan that stops half-way loses
//! nothing (the next one finds the same patterns). Alerts are deduplicated by case
//! reason `monitoring:{rule}:{person}:{first transfer id}`: the same pattern found by
//! the next scan opens no second case. Monitoring never freezes by itself; an
//! operator decides.

use mizan_compliance::monitoring::{self, Alert, Channel, Direction, Movement, Thresholds};
use mizan_core::AccountId;
use mizan_ledger::{HistoryFilter, Ledger, TransferFlags};
use serde::{Deserialize, Serialize};

use crate::cases::{self, CaseError, CaseKind, Evidence, FlaggedMovement, NewCase};
use crate::identity::{self, PersonId, SharedReader, WALLET_CURRENCY};

/// Transfers one history page reads.
const HISTORY_PAGE: usize = 500;
/// People one listing page reads.
const PEOPLE_PAGE: usize = 100;
const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;

fn cases_internal(context: &str, error: impl std::fmt::Display) -> CaseError {
    cases::internal(context, error)
}

fn channel_of(code: u16) -> Option<Channel> {
    match code {
        crate::payments::TRANSFER_CODE_P2P => Some(Channel::P2p),
        crate::payments::TRANSFER_CODE_FUNDING => Some(Channel::Funding),
        crate::cashout::TRANSFER_CODE_CASHOUT => Some(Channel::Cashout),
        crate::tips::TRANSFER_CODE_TIP => Some(Channel::Tip),
        crate::messages::TRANSFER_CODE_PAID_DM => Some(Channel::PaidDm),
        crate::subscriptions::TRANSFER_CODE_SUBSCRIPTION => Some(Channel::Subscription),
        _ => None,
    }
}

/// The money that moved in or out of a person's wallet from `from_ns` up to
/// `until_ns`, oldest first, at most [`monitoring::MOVEMENTS_MAX`] (the newest kept).
/// Holds count when they are posted, not when they are placed.
pub async fn movements_of(
    reader: &SharedReader,
    person: PersonId,
    from_ns: u64,
    until_ns: u64,
) -> Result<Vec<Movement>, CaseError> {
    let wallet = person
        .wallet_id(WALLET_CURRENCY)
        .map_err(|error| cases_internal("wallet id", error))?;
    let mut movements = Vec::new();
    let mut after = None;
    loop {
        let filter = HistoryFilter {
            code: None,
            from_timestamp: Some(from_ns),
            to_timestamp: Some(until_ns),
            after_timestamp: after,
            newest_first: true,
            limit: HISTORY_PAGE,
        };
        let shared = reader.clone();
        let page = shared
            .read(move |r| r.account_history(wallet, &filter))
            .await
            .map_err(|error| cases_internal("reading task", error))?
            .map_err(|error| cases_internal("reading history", error))?;
        for transfer in &page.transfers {
            let moved_nothing = [
                TransferFlags::PENDING,
                TransferFlags::VOID_PENDING,
                TransferFlags::EXPIRY,
            ]
            .iter()
            .any(|flag| transfer.flags.contains(*flag));
            let Some(channel) = channel_of(transfer.code) else {
                continue;
            };
            if moved_nothing || transfer.amount <= 0 {
                continue;
            }
            let incoming = transfer.credit_account_id == wallet;
            let other: AccountId = if incoming {
                transfer.debit_account_id
            } else {
                transfer.credit_account_id
            };
            movements.push(Movement {
                id: transfer.id.get(),
                at_ns: transfer.timestamp,
                amount_minor: transfer.amount,
                direction: if incoming {
                    Direction::In
                } else {
                    Direction::Out
                },
                channel,
                counterparty: match channel {
                    Channel::P2p | Channel::Tip | Channel::PaidDm | Channel::Subscription => {
                        Some(other.get())
                    }
                    Channel::Funding | Channel::Cashout => None,
                },
            });
        }
        match page.next_cursor {
            Some(next) if movements.len() < monitoring::MOVEMENTS_MAX => after = Some(next),
            _ => break,
        }
    }
    movements.reverse();
    Ok(movements)
}

pub(crate) fn flagged(movement: &Movement) -> FlaggedMovement {
    let kind = match (movement.channel, movement.direction) {
        (Channel::P2p, Direction::In) => "payment_in",
        (Channel::P2p, Direction::Out) => "payment_out",
        (Channel::Tip, Direction::In) => "tip_in",
        (Channel::Tip, Direction::Out) => "tip_out",
        (Channel::PaidDm, Direction::In) => "paid_dm_in",
        (Channel::PaidDm, Direction::Out) => "paid_dm_out",
        (Channel::Subscription, Direction::In) => "subscription_in",
        (Channel::Subscription, Direction::Out) => "subscription_out",
        (Channel::Funding, _) => "funding",
        (Channel::Cashout, _) => "cashout",
    };
    FlaggedMovement {
        transfer: format!("{:032x}", movement.id),
        kind: kind.to_owned(),
        amount_minor: movement.amount_minor,
        currency: WALLET_CURRENCY.code().to_owned(),
        at_ns: movement.at_ns,
    }
}

/// The case an alert opens.
pub fn case_for(person: PersonId, alert: &Alert) -> NewCase {
    NewCase {
        person,
        kind: CaseKind::MonitoringAlert,
        reason: format!(
            "monitoring:{}:{person}:{:032x}",
            alert.rule.code(),
            alert.anchor()
        ),
        evidence: Evidence::Monitoring {
            rule: alert.rule.code().to_owned(),
            summary: alert.summary.clone(),
            movements: alert.movements.iter().map(flagged).collect(),
        },
        freeze: false,
    }
}

/// How far back a scan reads: the longest window any rule looks at, plus a day.
fn lookback_ns(thresholds: &Thresholds) -> u64 {
    let hours = [
        thresholds.structuring_window_hours,
        thresholds.rapid_in_out_window_hours,
        thresholds.new_senders_window_hours,
        thresholds.round_window_hours,
    ];
    let longest_hours = hours.into_iter().max().unwrap_or(0);
    let days = (longest_hours / 24 + 1).max(thresholds.velocity_history_days + 1);
    days.saturating_mul(NANOS_PER_DAY)
}

/// Runs every rule on one person; returns the cases newly opened.
pub async fn scan_person(
    ledger: &Ledger,
    reader: &SharedReader,
    thresholds: &Thresholds,
    person: PersonId,
    opened_at_ns: u64,
    now_ns: u64,
) -> Result<u64, CaseError> {
    let from_ns = now_ns.saturating_sub(lookback_ns(thresholds));
    let movements = movements_of(reader, person, from_ns, now_ns).await?;
    let mut opened = 0;
    for alert in monitoring::evaluate(&movements, opened_at_ns, now_ns, thresholds) {
        if cases::open_case(ledger, reader, case_for(person, &alert), now_ns)
            .await?
            .is_some()
        {
            opened += 1;
        }
    }
    Ok(opened)
}

/// What a scan of everyone did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    pub people: u64,
    pub cases_opened: u64,
}

/// Every person's id, in key order.
pub(crate) async fn everyone(reader: &SharedReader) -> Result<Vec<PersonId>, CaseError> {
    let mut people = Vec::new();
    let mut after = None;
    loop {
        let rows = crate::documents::with_prefix(
            reader,
            identity::COLLECTION_PEOPLE,
            String::new(),
            after.clone(),
            PEOPLE_PAGE,
        )
        .await
        .map_err(|error| cases_internal("listing people", error))?;
        let full = rows.len() == PEOPLE_PAGE;
        for (key, _) in rows {
            people
                .push(PersonId::parse(&key).map_err(|error| cases_internal("person key", error))?);
            after = Some(key);
        }
        if !full {
            return Ok(people);
        }
    }
}

#[derive(Deserialize)]
struct PersonCreated {
    created_at_ns: u64,
}

/// Runs every rule on every person.
#[tracing::instrument(skip_all)]
pub async fn scan_all(
    ledger: &Ledger,
    reader: &SharedReader,
    thresholds: &Thresholds,
    now_ns: u64,
) -> Result<ScanReport, CaseError> {
    let mut report = ScanReport::default();
    let mut after = None;
    loop {
        let rows = crate::documents::with_prefix(
            reader,
            identity::COLLECTION_PEOPLE,
            String::new(),
            after.clone(),
            PEOPLE_PAGE,
        )
        .await
        .map_err(|error| cases_internal("listing people", error))?;
        let full = rows.len() == PEOPLE_PAGE;
        for (key, body) in rows {
            let person =
                PersonId::parse(&key).map_err(|error| cases_internal("person key", error))?;
            let created: PersonCreated = serde_json::from_slice(&body)
                .map_err(|error| cases_internal("stored person", error))?;
            report.cases_opened += scan_person(
                ledger,
                reader,
                thresholds,
                person,
                created.created_at_ns,
                now_ns,
            )
            .await?;
            report.people += 1;
            after = Some(key);
        }
        if !full {
            tracing::info!(
                people = report.people,
                cases_opened = report.cases_opened,
                "monitoring scan done"
            );
            return Ok(report);
        }
    }
}
