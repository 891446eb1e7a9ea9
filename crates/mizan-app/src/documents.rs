//! The two store calls every use case makes besides money movements: submit
//! business rows alone, and read a page of documents by key prefix. Errors come back
//! as text for the caller to wrap in its own error enum.

use mizan_ledger::store::DOCUMENTS_PAGE_LIMIT_MAX;
use mizan_ledger::writer::SUBMISSION_ROWS_MAX;
use mizan_ledger::{BusinessRow, Ledger, Submission};

use crate::identity::SharedReader;

/// Submits `rows` (no transfers) as one atomic submission. `Ok(Some(collection))`
/// names the collection of a `Create` key that was taken: then nothing was written.
pub(crate) async fn submit_rows(
    ledger: &Ledger,
    rows: Vec<BusinessRow>,
) -> Result<Option<String>, String> {
    let result = ledger
        .submit(Submission {
            rows,
            atomic: true,
            ..Submission::default()
        })
        .await
        .map_err(|error| format!("submitting: {error}"))?;
    Ok(result.row_conflict.map(|(collection, _)| collection))
}

/// Submits `rows` in order, in atomic submissions of at most the writer's row cap.
/// For rows each keyed and idempotent (a delivery's state, a deleted claim), where a
/// crash between two submissions only means some are written again; a `Create`
/// among them that meets a taken key is an error.
pub async fn submit_rows_in_chunks(ledger: &Ledger, rows: Vec<BusinessRow>) -> Result<(), String> {
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(SUBMISSION_ROWS_MAX).collect();
        if let Some(collection) = submit_rows(ledger, chunk).await? {
            return Err(format!("a {collection} key was taken"));
        }
    }
    Ok(())
}

/// Documents of `collection` whose key starts with `prefix`, in key order, after
/// `after` (exclusive), at most `limit` (clamped to 1..=`DOCUMENTS_PAGE_LIMIT_MAX`).
pub(crate) async fn with_prefix(
    reader: &SharedReader,
    collection: &'static str,
    prefix: String,
    after: Option<String>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    reader
        .read(move |r| {
            r.documents_with_prefix(
                collection,
                &prefix,
                after.as_deref(),
                limit.clamp(1, DOCUMENTS_PAGE_LIMIT_MAX),
            )
        })
        .await
        .map_err(|error| format!("reading task: {error}"))?
        .map_err(|error| format!("reading {collection}: {error}"))
}
