//! The notification projection, step by step on a real SQLite ledger: it consumes
//! the outbox in order, resumes from its cursor, and a projection deleted and built
//! again from the outbox lists exactly the same notifications.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use mizan_app::identity::PersonId;
use mizan_app::notifications::{project_step, PROJECTION_NOTIFICATIONS, PROJECTION_PAGE};
use mizan_app::payments::TOPIC_PAYMENT_SUCCEEDED;
use mizan_core::SystemClock;
use mizan_ledger::writer::SUBMISSION_ROWS_MAX;
use mizan_ledger::{BusinessRow, Ledger, LedgerReader, ProjectionStore, Submission, WriterConfig};
use mizan_store::sqlite::projections_path;
use mizan_store::{SqliteProjections, SqliteReader, SqliteStore};

fn payment_event(payer: PersonId, payee: PersonId, cents: i64) -> BusinessRow {
    let payload = serde_json::json!({
        "amount_minor": cents, "occurred_at_ns": 1, "payer": payer.to_string(),
        "payee": payee.to_string(),
        "view": {"amount": "1.00", "currency": "USD", "from": "payer", "to": "payee", "id": "p"},
    });
    BusinessRow::Outbox {
        topic: TOPIC_PAYMENT_SUCCEEDED.to_owned(),
        payload: payload.to_string().into_bytes(),
    }
}

/// Every projected row of `person`, page by page.
fn listed(reader: &mut dyn LedgerReader, person: PersonId) -> Vec<(String, Vec<u8>)> {
    let prefix = format!("{person}:");
    let mut all: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let after = all.last().map(|(key, _)| key.clone());
        let page = reader
            .projected_with_prefix(PROJECTION_NOTIFICATIONS, &prefix, after.as_deref(), 1_000)
            .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

#[test]
fn the_projection_follows_the_outbox_and_rebuilds_the_same() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ledger.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    let (ledger, writer) =
        Ledger::start(store, Arc::new(SystemClock), WriterConfig::default()).unwrap();
    let (payer, payee, bystander) = (PersonId::random(), PersonId::random(), PersonId::random());
    // More events than one step takes, in submissions as large as allowed.
    let events = PROJECTION_PAGE + 700;
    for start in (0..events).step_by(SUBMISSION_ROWS_MAX) {
        let rows = (start..events.min(start + SUBMISSION_ROWS_MAX))
            .map(|i| payment_event(payer, payee, i as i64 + 1))
            .collect();
        ledger
            .submit_blocking(Submission {
                rows,
                ..Submission::default()
            })
            .unwrap();
    }
    let mut reader = SqliteReader::open(&path).unwrap();
    let mut projections = SqliteProjections::open(&path).unwrap();
    // One step takes one page; the next resumes from the cursor; then it has caught up.
    assert_eq!(
        project_step(&mut reader, &mut projections, &ledger).unwrap(),
        PROJECTION_PAGE
    );
    assert_eq!(
        projections
            .projected_through(PROJECTION_NOTIFICATIONS)
            .unwrap(),
        PROJECTION_PAGE as u64
    );
    assert_eq!(
        project_step(&mut reader, &mut projections, &ledger).unwrap(),
        700
    );
    assert_eq!(
        project_step(&mut reader, &mut projections, &ledger).unwrap(),
        0
    );
    // The payee is told of every payment; the payer and a bystander of none.
    let first = listed(&mut reader, payee);
    assert_eq!(first.len(), events);
    assert!(listed(&mut reader, payer).is_empty());
    assert!(listed(&mut reader, bystander).is_empty());
    // Lost projections (a deleted file) are derived again, the same.
    drop(projections);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = projections_path(&path).into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    let mut projections = SqliteProjections::open(&path).unwrap();
    let mut fresh_reader = SqliteReader::open(&path).unwrap();
    while project_step(&mut fresh_reader, &mut projections, &ledger).unwrap() > 0 {}
    assert_eq!(listed(&mut fresh_reader, payee), first);
    drop(ledger);
    writer.join().unwrap();
}
