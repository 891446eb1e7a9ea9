//! Money requests and splits: one person asks another for an amount; the payer pays
//! (one atomic submission: transfer, payment, request rewritten to `paid`), declines,
//! or the requester cancels. Also the wallet activity feed.
//!
//! Every closing action (pay, decline, cancel) claims `Create("request_closed", id)` in
//! the same submission as its status change, so exactly one of racing actions commits.

use mizan_core::{Money, TransferId};
use mizan_ledger::{
    ledger_of, BusinessRow, CreateTransferResult, HistoryFilter, Ledger, Submission, TransferFlags,
    TransferRequest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{self, Handle, Person, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    find_handle, internal, read_by_id, time_ordered_u128, to_json, IdempotencyKey, Note,
    PaymentDocument, PaymentError, PaymentView, COLLECTION_IDEMPOTENCY, COLLECTION_PAYMENTS,
    STATUS_CODE_CREATED, STATUS_SUCCEEDED, TRANSFER_CODE_FUNDING, TRANSFER_CODE_P2P,
};
use crate::time::rfc3339_from_ns;

pub const COLLECTION_REQUESTS: &str = "requests";
/// One row per closed request: the claim racing closing actions compete for.
pub const COLLECTION_REQUEST_CLOSED: &str = "request_closed";
/// One row per (person, request), both sides: `{person}:{newest-first time}:{id}`.
pub const COLLECTION_REQUESTS_BY_PERSON: &str = "requests_by_person";
/// Most requests one listing returns.
pub const REQUESTS_LISTED_MAX: usize = 100;
pub const TOPIC_REQUEST_CREATED: &str = "request.created";
pub const TOPIC_REQUEST_PAID: &str = "request.paid";
pub const TOPIC_REQUEST_DECLINED: &str = "request.declined";
pub const TOPIC_REQUEST_CANCELLED: &str = "request.cancelled";
pub const STATUS_OPEN: &str = "open";
pub const STATUS_PAID: &str = "paid";
pub const STATUS_DECLINED: &str = "declined";
pub const STATUS_CANCELLED: &str = "cancelled";
/// Most people one split is shared with.
pub const SPLIT_PEOPLE_MAX: usize = 20;
pub const ACTIVITY_LIMIT_DEFAULT: usize = 20;
pub const ACTIVITY_LIMIT_MAX: usize = 100;

const REQUEST_ID_DOMAIN: &[u8] = b"mizan.request.v1";
const SPLIT_REQUEST_ID_DOMAIN: &[u8] = b"mizan.split.request.v1";
const REQUEST_PAY_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.request.pay.transfer.v1";
const REQUEST_PAY_PAYMENT_ID_DOMAIN: &[u8] = b"mizan.request.pay.payment.v1";

/// A request as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    /// The payer's handle (who is asked).
    pub from: String,
    /// The requester's handle (who is owed).
    pub to: String,
    pub amount: String,
    pub currency: String,
    pub note: String,
    /// `open`, `paid`, `declined` or `cancelled`.
    pub status: String,
    /// The payment that settled it, once `paid`.
    pub payment_id: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RequestDocument {
    requester: String,
    payer: String,
    amount_minor: i64,
    view: RequestView,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredAnswer<T> {
    pub(crate) request_sha256: String,
    /// When the key was claimed, for the sweep; 0 in claims from before it was kept.
    #[serde(default)]
    pub(crate) claimed_at_ns: u64,
    pub(crate) status: u16,
    pub(crate) response: T,
}

/// An answer: the first, or a replay of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    pub status: u16,
    pub body: T,
    pub replayed: bool,
}

/// A money request, parsed.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub from: Handle,
    pub amount: Money,
    pub note: Note,
}

/// A split bill, parsed: the caller paid `amount` and is owed equal shares.
#[derive(Debug, Clone)]
pub struct NewSplit {
    pub amount: Money,
    pub note: Note,
    pub with: Vec<Handle>,
}

pub(crate) fn fingerprint(canonical: &serde_json::Value) -> Result<String, PaymentError> {
    let bytes = serde_json::to_vec(canonical).map_err(|e| internal("canonical", e))?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn claim_key(kind: &str, person: PersonId, key: &IdempotencyKey) -> String {
    format!("{kind}:{person}:{}", key.as_str())
}

pub(crate) async fn stored_answer<T: for<'de> Deserialize<'de>>(
    reader: &SharedReader,
    claim: String,
    request_sha256: &str,
) -> Result<Option<Answer<T>>, PaymentError> {
    let Some(body) = identity::read_document(reader, COLLECTION_IDEMPOTENCY, claim).await? else {
        return Ok(None);
    };
    // A claim of another kind (the key was used for a payment or a funding) is a
    // reuse of the key, not a broken store.
    let record: StoredAnswer<T> =
        serde_json::from_slice(&body).map_err(|_| PaymentError::IdempotencyKeyReused)?;
    if record.request_sha256 != request_sha256 {
        return Err(PaymentError::IdempotencyKeyReused);
    }
    Ok(Some(Answer {
        status: record.status,
        body: record.response,
        replayed: true,
    }))
}

/// Equal shares in minor units, the remainder one unit each on the first shares.
pub fn equal_shares(total_minor: i64, people: usize) -> Result<Vec<i64>, PaymentError> {
    let count = i64::try_from(people).map_err(|e| internal("share count", e))?;
    if count == 0 || total_minor < count {
        return Err(PaymentError::SplitPeopleInvalid);
    }
    let base = total_minor / count;
    let remainder = total_minor % count;
    let shares: Vec<i64> = (0..count)
        .map(|index| base + i64::from(index < remainder))
        .collect();
    assert_eq!(
        shares.iter().sum::<i64>(),
        total_minor,
        "shares sum exactly"
    );
    Ok(shares)
}

/// The id of a split's `index`-th request, made at `now_ns` ([`crate::ids`]): the
/// split's claim commits with its requests, so a retry replays rather than derives.
fn share_request_id(requester: PersonId, key: &IdempotencyKey, index: usize, now_ns: u64) -> u128 {
    crate::ids::time_ordered(
        now_ns,
        SPLIT_REQUEST_ID_DOMAIN,
        &[
            &requester.get().to_be_bytes(),
            &(index as u64).to_be_bytes(),
            key.as_str().as_bytes(),
        ],
    )
}

struct Created {
    view: RequestView,
    rows: Vec<BusinessRow>,
}

fn request_rows(
    requester: &Person,
    payer: PersonId,
    payer_handle: &Handle,
    amount: Money,
    note: &Note,
    id: u128,
    now_ns: u64,
) -> Result<Created, PaymentError> {
    let view = RequestView {
        id: format!("{id:032x}"),
        from: payer_handle.as_str().to_owned(),
        to: requester.handle.as_str().to_owned(),
        amount: amount.format_major(),
        currency: amount.currency().code().to_owned(),
        note: note.as_str().to_owned(),
        status: STATUS_OPEN.to_owned(),
        payment_id: None,
        created_at: rfc3339_from_ns(now_ns),
    };
    let document = RequestDocument {
        requester: requester.id.to_string(),
        payer: payer.to_string(),
        amount_minor: amount.minor_units(),
        view: view.clone(),
    };
    let body = to_json(&document)?;
    let mut rows = vec![
        BusinessRow::Document {
            collection: COLLECTION_REQUESTS.to_owned(),
            key: view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(TOPIC_REQUEST_CREATED, &body, now_ns),
    ];
    for person in [requester.id, payer] {
        rows.push(BusinessRow::Document {
            collection: COLLECTION_REQUESTS_BY_PERSON.to_owned(),
            key: request_index_key(person, now_ns, &view.id),
            body: view.id.clone().into_bytes(),
        });
    }
    Ok(Created { view, rows })
}

/// Keys sort newest first within a person: the time is stored inverted.
fn request_index_key(person: PersonId, now_ns: u64, id: &str) -> String {
    format!("{person}:{:020}:{id}", u64::MAX - now_ns)
}

/// The requests a person made or was asked to pay, newest first, at most `limit`
/// (clamped to 1..=[`REQUESTS_LISTED_MAX`]), with their current status.
pub async fn requests_of(
    reader: &SharedReader,
    person: PersonId,
    limit: usize,
) -> Result<Vec<RequestView>, PaymentError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_REQUESTS_BY_PERSON,
        format!("{person}:"),
        None,
        limit.clamp(1, REQUESTS_LISTED_MAX),
    )
    .await
    .map_err(|error| internal("listing requests", error))?;
    let mut views = Vec::with_capacity(rows.len());
    for (_key, body) in rows {
        let id = String::from_utf8(body).map_err(|error| internal("request index", error))?;
        let missing = internal("index of a missing request", &id);
        let document: RequestDocument =
            read_by_id(reader, COLLECTION_REQUESTS, &id, missing).await?;
        views.push(document.view);
    }
    Ok(views)
}

async fn payer_of(
    reader: &SharedReader,
    requester: &Person,
    handle: &Handle,
) -> Result<PersonId, PaymentError> {
    let payer = find_handle(reader, handle)
        .await?
        .ok_or(PaymentError::RecipientNotFound)?;
    if payer == requester.id {
        return Err(PaymentError::CannotRequestFromYourself);
    }
    Ok(payer)
}

/// Submits rows whose only `Create` is the idempotency claim; a taken claim replays.
async fn submit_claimed<T: for<'de> Deserialize<'de>>(
    ledger: &Ledger,
    reader: &SharedReader,
    claim: String,
    request_sha256: &str,
    rows: Vec<BusinessRow>,
) -> Result<Option<Answer<T>>, PaymentError> {
    let submission = Submission {
        rows,
        atomic: true,
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("submitting a request", error))?;
    if result.row_conflict.is_some() {
        return stored_answer(reader, claim, request_sha256)
            .await?
            .ok_or_else(|| internal("claim taken but unreadable", "request"))
            .map(Some);
    }
    Ok(None)
}

/// Asks `request.from` for money, once per key.
#[tracing::instrument(skip_all, fields(requester = %requester.id))]
pub async fn create_request(
    ledger: &Ledger,
    reader: &SharedReader,
    requester: &Person,
    request: NewRequest,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<Answer<RequestView>, PaymentError> {
    let request_sha256 = fingerprint(&serde_json::json!({
        "from": request.from.as_str(),
        "amount_minor": request.amount.minor_units(),
        "currency": request.amount.currency().code(),
        "note": request.note.as_str(),
    }))?;
    let claim = claim_key("request", requester.id, &key);
    if let Some(answer) = stored_answer(reader, claim.clone(), &request_sha256).await? {
        return Ok(answer);
    }
    let payer = payer_of(reader, requester, &request.from).await?;
    let id = time_ordered_u128(REQUEST_ID_DOMAIN, requester.id, &key, now_ns);
    let created = request_rows(
        requester,
        payer,
        &request.from,
        request.amount,
        &request.note,
        id,
        now_ns,
    )?;
    let record = StoredAnswer {
        request_sha256: request_sha256.clone(),
        claimed_at_ns: now_ns,
        status: STATUS_CODE_CREATED,
        response: created.view.clone(),
    };
    let mut rows = vec![BusinessRow::Create {
        collection: COLLECTION_IDEMPOTENCY.to_owned(),
        key: claim.clone(),
        body: to_json(&record)?,
    }];
    rows.extend(created.rows);
    if let Some(answer) = submit_claimed(ledger, reader, claim, &request_sha256, rows).await? {
        return Ok(answer);
    }
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: created.view,
        replayed: false,
    })
}

/// Splits a bill the caller paid: one request per person, all in one submission.
#[tracing::instrument(skip_all, fields(requester = %requester.id))]
pub async fn create_split(
    ledger: &Ledger,
    reader: &SharedReader,
    requester: &Person,
    split: NewSplit,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<Answer<Vec<RequestView>>, PaymentError> {
    let handles: Vec<&str> = split.with.iter().map(Handle::as_str).collect();
    let distinct: std::collections::BTreeSet<&str> = handles.iter().copied().collect();
    if handles.is_empty() || handles.len() > SPLIT_PEOPLE_MAX || distinct.len() != handles.len() {
        return Err(PaymentError::SplitPeopleInvalid);
    }
    let request_sha256 = fingerprint(&serde_json::json!({
        "with": handles,
        "amount_minor": split.amount.minor_units(),
        "currency": split.amount.currency().code(),
        "note": split.note.as_str(),
    }))?;
    let claim = claim_key("split", requester.id, &key);
    if let Some(answer) = stored_answer(reader, claim.clone(), &request_sha256).await? {
        return Ok(answer);
    }
    let shares = equal_shares(split.amount.minor_units(), split.with.len())?;
    let mut views = Vec::with_capacity(split.with.len());
    let mut rows = Vec::new();
    for (index, (handle, share)) in split.with.iter().zip(shares).enumerate() {
        let payer = payer_of(reader, requester, handle).await?;
        let id = share_request_id(requester.id, &key, index, now_ns);
        let amount = Money::from_minor(share, split.amount.currency());
        let created = request_rows(requester, payer, handle, amount, &split.note, id, now_ns)?;
        views.push(created.view);
        rows.extend(created.rows);
    }
    let record = StoredAnswer {
        request_sha256: request_sha256.clone(),
        claimed_at_ns: now_ns,
        status: STATUS_CODE_CREATED,
        response: views.clone(),
    };
    rows.insert(
        0,
        BusinessRow::Create {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: claim.clone(),
            body: to_json(&record)?,
        },
    );
    if let Some(answer) = submit_claimed(ledger, reader, claim, &request_sha256, rows).await? {
        return Ok(answer);
    }
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: views,
        replayed: false,
    })
}

async fn read_request(
    reader: &SharedReader,
    viewer: PersonId,
    request_id: &str,
) -> Result<RequestDocument, PaymentError> {
    let document: RequestDocument = read_by_id(
        reader,
        COLLECTION_REQUESTS,
        request_id,
        PaymentError::RequestNotFound,
    )
    .await?;
    let viewer = viewer.to_string();
    if document.requester != viewer && document.payer != viewer {
        return Err(PaymentError::RequestNotFound);
    }
    Ok(document)
}

/// A request the viewer is a party to; anything else is not found.
pub async fn request_for(
    reader: &SharedReader,
    viewer: PersonId,
    request_id: &str,
) -> Result<RequestView, PaymentError> {
    Ok(read_request(reader, viewer, request_id).await?.view)
}

/// The rows that close a request: the `request_closed` claim, the rewritten document
/// and the event.
fn closing_rows(
    mut document: RequestDocument,
    status: &str,
    topic: &str,
    now_ns: u64,
) -> Result<(RequestView, Vec<BusinessRow>), PaymentError> {
    document.view.status = status.to_owned();
    let body = to_json(&document)?;
    let rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_REQUEST_CLOSED.to_owned(),
            key: document.view.id.clone(),
            body: status.as_bytes().to_vec(),
        },
        BusinessRow::Document {
            collection: COLLECTION_REQUESTS.to_owned(),
            key: document.view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(topic, &body, now_ns),
    ];
    Ok((document.view, rows))
}

/// Which party may close a request one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The payer declines.
    Decline,
    /// The requester cancels.
    Cancel,
}

/// Declines or cancels an open request; a closed one answers `RequestNotOpen`.
#[tracing::instrument(skip_all, fields(person = %person.id))]
pub async fn close_request(
    ledger: &Ledger,
    reader: &SharedReader,
    person: &Person,
    request_id: &str,
    closing: Closing,
    now_ns: u64,
) -> Result<RequestView, PaymentError> {
    let document = read_request(reader, person.id, request_id).await?;
    let (allowed_party, status, topic) = match closing {
        Closing::Decline => (&document.payer, STATUS_DECLINED, TOPIC_REQUEST_DECLINED),
        Closing::Cancel => (
            &document.requester,
            STATUS_CANCELLED,
            TOPIC_REQUEST_CANCELLED,
        ),
    };
    if *allowed_party != person.id.to_string() {
        return Err(PaymentError::RequestActionNotAllowed);
    }
    if document.view.status != STATUS_OPEN {
        return Err(PaymentError::RequestNotOpen);
    }
    let (view, rows) = closing_rows(document, status, topic, now_ns)?;
    let submission = Submission {
        rows,
        atomic: true,
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("closing a request", error))?;
    if result.row_conflict.is_some() {
        return Err(PaymentError::RequestNotOpen);
    }
    Ok(view)
}

/// Pays an open request: transfer payer → requester, the payment, the request
/// rewritten to `paid` and `request.paid`, in one atomic submission, once per key.
#[tracing::instrument(skip_all, fields(payer = %payer.id))]
pub async fn pay_request(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    payer: &Person,
    request_id: &str,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<Answer<RequestView>, PaymentError> {
    let request_sha256 = fingerprint(&serde_json::json!({
        "request": request_id.to_ascii_lowercase(),
    }))?;
    let claim = claim_key("request-pay", payer.id, &key);
    if let Some(answer) = stored_answer(reader, claim.clone(), &request_sha256).await? {
        return Ok(answer);
    }
    let mut document = read_request(reader, payer.id, request_id).await?;
    if document.payer != payer.id.to_string() {
        return Err(PaymentError::RequestActionNotAllowed);
    }
    if document.view.status != STATUS_OPEN {
        return Err(PaymentError::RequestNotOpen);
    }
    let requester = PersonId::parse(&document.requester)?;
    let amount = Money::from_minor(document.amount_minor, WALLET_CURRENCY);
    let charge = crate::limits::prepare(
        reader,
        limits,
        payer.id,
        crate::limits::Movement::Send,
        now_ns,
    )
    .await?;
    let transfer_id = TransferId::new(time_ordered_u128(
        REQUEST_PAY_TRANSFER_ID_DOMAIN,
        payer.id,
        &key,
        now_ns,
    ))
    .map_err(|error| internal("transfer id", error))?;
    let payment_id = time_ordered_u128(REQUEST_PAY_PAYMENT_ID_DOMAIN, payer.id, &key, now_ns);
    let payment = PaymentView {
        id: format!("{payment_id:032x}"),
        from: payer.handle.as_str().to_owned(),
        to: document.view.to.clone(),
        amount: amount.format_major(),
        currency: amount.currency().code().to_owned(),
        note: document.view.note.clone(),
        status: STATUS_SUCCEEDED.to_owned(),
        transfer_id: transfer_id.to_string(),
        created_at: rfc3339_from_ns(now_ns),
    };
    let payment_json = to_json(&PaymentDocument {
        payer: payer.id.to_string(),
        payee: document.requester.clone(),
        amount_minor: amount.minor_units(),
        created_at_ns: now_ns,
        view: payment.clone(),
    })?;
    document.view.payment_id = Some(payment.id.clone());
    let (view, closing) = closing_rows(document, STATUS_PAID, TOPIC_REQUEST_PAID, now_ns)?;
    let record = StoredAnswer {
        request_sha256: request_sha256.clone(),
        claimed_at_ns: now_ns,
        status: STATUS_CODE_CREATED,
        response: view.clone(),
    };
    let mut rows = vec![BusinessRow::Create {
        collection: COLLECTION_IDEMPOTENCY.to_owned(),
        key: claim.clone(),
        body: to_json(&record)?,
    }];
    rows.extend(closing);
    rows.push(BusinessRow::Document {
        collection: COLLECTION_PAYMENTS.to_owned(),
        key: payment.id.clone(),
        body: payment_json,
    });
    let transfer = TransferRequest::single(
        transfer_id,
        payer.id.wallet_id(WALLET_CURRENCY)?,
        requester.wallet_id(WALLET_CURRENCY)?,
        amount.minor_units(),
        ledger_of(WALLET_CURRENCY),
        TRANSFER_CODE_P2P,
    )
    .with_reference(payment_id);
    let mut transfers = vec![transfer];
    transfers.extend(charge.legs(transfer_id, amount.minor_units())?);
    let submission = Submission {
        transfers,
        rows,
        atomic: true,
        ensure: charge.ensure(),
        ..Submission::default()
    };
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("paying a request", error))?;
    if result.row_conflict.is_some() {
        // The same key committed first (a replay), or another action closed it.
        return stored_answer(reader, claim, &request_sha256)
            .await?
            .ok_or(PaymentError::RequestNotOpen);
    }
    match charge.settle(&result.transfers)? {
        CreateTransferResult::Ok => {}
        CreateTransferResult::ExceedsCredits => return Err(PaymentError::InsufficientFunds),
        other => return Err(internal("request transfer", format!("{other:?}"))),
    }
    tracing::info!(request = %view.id, transfer = %transfer_id, "request paid");
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: view,
        replayed: false,
    })
}

/// Which transfers an activity page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityType {
    Payment,
    Funding,
    Cashout,
    Tip,
}

impl ActivityType {
    pub fn parse(text: &str) -> Option<ActivityType> {
        match text {
            "payment" => Some(ActivityType::Payment),
            "funding" => Some(ActivityType::Funding),
            "cashout" => Some(ActivityType::Cashout),
            "tip" => Some(ActivityType::Tip),
            _ => None,
        }
    }

    fn code(self) -> u16 {
        match self {
            ActivityType::Payment => TRANSFER_CODE_P2P,
            ActivityType::Funding => TRANSFER_CODE_FUNDING,
            ActivityType::Cashout => crate::cashout::TRANSFER_CODE_CASHOUT,
            ActivityType::Tip => crate::tips::TRANSFER_CODE_TIP,
        }
    }
}

/// A page of activity, parsed: a cursor from a previous page, a limit, a type, and
/// optionally a date range and a counterparty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    cursor: Option<u64>,
    limit: usize,
    kind: Option<ActivityType>,
    /// Inclusive start (ns), from a `from` date.
    from_ns: Option<u64>,
    /// Exclusive end (ns): the day after a `to` date.
    until_ns: Option<u64>,
    counterparty: Option<Handle>,
}

impl ActivityQuery {
    pub fn parse(
        limit: Option<&str>,
        cursor: Option<&str>,
        kind: Option<&str>,
    ) -> Result<ActivityQuery, PaymentError> {
        let limit = match limit {
            None => ACTIVITY_LIMIT_DEFAULT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=ACTIVITY_LIMIT_MAX).contains(limit))
                .ok_or(PaymentError::InvalidLimit)?,
        };
        let cursor = match cursor {
            None => None,
            Some(text) => Some(
                text.parse::<u64>()
                    .ok()
                    .filter(|cursor| *cursor > 0 && text.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or(PaymentError::InvalidCursor)?,
            ),
        };
        let kind = match kind {
            None => None,
            Some(text) => Some(ActivityType::parse(text).ok_or(PaymentError::InvalidActivityType)?),
        };
        Ok(ActivityQuery {
            cursor,
            limit,
            kind,
            from_ns: None,
            until_ns: None,
            counterparty: None,
        })
    }

    /// Only activity from the day `from` through the day `to` (UTC, `YYYY-MM-DD`, both
    /// included, either optional).
    pub fn with_dates(
        self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<ActivityQuery, PaymentError> {
        let parse = |text: Option<&str>| match text {
            None => Ok(None),
            Some(text) => crate::time::ns_from_date(text)
                .map(Some)
                .ok_or(PaymentError::InvalidDate),
        };
        let from_ns = parse(from)?;
        let until_ns = parse(to)?
            .map(|ns| ns.checked_add(DAY_NS).ok_or(PaymentError::InvalidDate))
            .transpose()?;
        if let (Some(from), Some(until)) = (from_ns, until_ns) {
            if from >= until {
                return Err(PaymentError::InvalidDate);
            }
        }
        Ok(ActivityQuery {
            from_ns,
            until_ns,
            ..self
        })
    }

    /// Only payments with the person behind `handle` (`@` optional).
    pub fn with_counterparty(self, handle: Option<&str>) -> Result<ActivityQuery, PaymentError> {
        let counterparty = match handle {
            None => None,
            Some(text) => Some(
                Handle::parse(text.strip_prefix('@').unwrap_or(text))
                    .map_err(|_| PaymentError::InvalidCounterparty)?,
            ),
        };
        Ok(ActivityQuery {
            counterparty,
            ..self
        })
    }
}

const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// One line of a wallet's activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityItem {
    pub transfer_id: String,
    pub timestamp: String,
    /// `in` or `out`.
    pub direction: String,
    pub amount: String,
    pub currency: String,
    /// The other person's handle, or what the money was (`card funding`).
    pub counterparty: String,
    pub note: String,
    /// The P2P payment the transfer belongs to (for its receipt), if any.
    pub payment_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityPage {
    pub items: Vec<ActivityItem>,
    pub next_cursor: Option<String>,
}

/// The caller's wallet history, newest first.
pub async fn activity(
    reader: &SharedReader,
    person: PersonId,
    query: ActivityQuery,
) -> Result<ActivityPage, PaymentError> {
    let wallet = person.wallet_id(WALLET_CURRENCY)?;
    // A counterparty is someone paid or paying: only P2P transfers can match.
    let code = match (query.kind, &query.counterparty) {
        (Some(kind), _) => Some(kind.code()),
        (None, Some(_)) => Some(TRANSFER_CODE_P2P),
        (None, None) => None,
    };
    let filter = HistoryFilter {
        code,
        from_timestamp: query.from_ns,
        // The store's bound is inclusive; ours is the start of the next day.
        to_timestamp: query.until_ns.map(|until| until - 1),
        after_timestamp: query.cursor,
        newest_first: true,
        limit: query.limit,
    };
    let shared = reader.clone();
    let page = shared
        .read(move |r| r.account_history(wallet, &filter))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading history", error))?;
    let mut items = Vec::with_capacity(page.transfers.len());
    for transfer in &page.transfers {
        // Only money that moved: holds, voids and expiries stay out of the feed (and
        // with a counterparty, only payments with them), so a page may hold fewer
        // than `limit` items; the cursor still walks every transfer.
        let moved_nothing = [
            TransferFlags::PENDING,
            TransferFlags::VOID_PENDING,
            TransferFlags::EXPIRY,
        ]
        .iter()
        .any(|flag| transfer.flags.contains(*flag));
        if moved_nothing {
            continue;
        }
        let incoming = transfer.credit_account_id == wallet;
        let payment_key = format!("{:032x}", transfer.reference);
        let payment = match transfer.code {
            TRANSFER_CODE_P2P => {
                identity::read_document(reader, COLLECTION_PAYMENTS, payment_key.clone()).await?
            }
            _ => None,
        };
        let payment_id = payment.is_some().then_some(payment_key);
        let tip = match transfer.code {
            crate::tips::TRANSFER_CODE_TIP | crate::tips::TRANSFER_CODE_PLATFORM_FEE => {
                crate::tips::tip_of_reference(reader, transfer.reference).await?
            }
            _ => None,
        };
        let (counterparty, note) = match payment {
            Some(body) => {
                let document: PaymentDocument = serde_json::from_slice(&body)
                    .map_err(|error| internal("stored payment", error))?;
                let other = if incoming {
                    document.view.from
                } else {
                    document.view.to
                };
                (other, document.view.note)
            }
            None if transfer.code == crate::tips::TRANSFER_CODE_PLATFORM_FEE => {
                ("platform fee".to_owned(), String::new())
            }
            None if transfer.code == crate::messages::TRANSFER_CODE_PAID_DM => {
                match crate::messages::paid_dm_of_reference(reader, transfer.reference).await? {
                    Some(dm) => {
                        let other = if incoming { dm.from } else { dm.to };
                        (other, "paid DM".to_owned())
                    }
                    None => ("paid DM".to_owned(), String::new()),
                }
            }
            None if tip.is_some() => {
                let tip = tip.as_ref().map(|tip| {
                    let other = if incoming { &tip.from } else { &tip.to };
                    (other.clone(), tip.note.clone())
                });
                tip.unwrap_or_default()
            }
            None if transfer.code == crate::subscriptions::TRANSFER_CODE_SUBSCRIPTION => {
                match crate::subscriptions::subscription_of_reference(reader, transfer.reference)
                    .await?
                {
                    Some(subscription) => {
                        let other = if incoming {
                            subscription.subscriber
                        } else {
                            subscription.creator
                        };
                        (other, format!("subscription: {}", subscription.tier_name))
                    }
                    None => ("subscription".to_owned(), String::new()),
                }
            }
            None if transfer.code == crate::checkout::TRANSFER_CODE_ORDER => {
                match crate::checkout::order_of_reference(reader, transfer.reference).await? {
                    Some(order) => {
                        let other = if incoming { order.buyer } else { order.seller };
                        (other, format!("order: {} × {}", order.item, order.quantity))
                    }
                    None => ("order".to_owned(), String::new()),
                }
            }
            None if transfer.code == TRANSFER_CODE_FUNDING => {
                ("card funding".to_owned(), String::new())
            }
            None if transfer.code == crate::cashout::TRANSFER_CODE_CASHOUT => {
                ("bank cash-out".to_owned(), String::new())
            }
            None => ("platform".to_owned(), String::new()),
        };
        if let Some(wanted) = &query.counterparty {
            if counterparty != wanted.as_str() {
                continue;
            }
        }
        let amount = Money::from_minor(transfer.amount, WALLET_CURRENCY);
        items.push(ActivityItem {
            transfer_id: transfer.id.to_string(),
            timestamp: rfc3339_from_ns(transfer.timestamp),
            direction: if incoming { "in" } else { "out" }.to_owned(),
            amount: amount.format_major(),
            currency: amount.currency().code().to_owned(),
            counterparty,
            note,
            payment_id,
        });
    }
    Ok(ActivityPage {
        items,
        next_cursor: page.next_cursor.map(|cursor| cursor.to_string()),
    })
}

/// A payment with its ledger evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub payment: PaymentView,
    pub transfer_id: String,
    pub timestamp: String,
    pub hash: String,
}

/// The receipt of a payment the viewer is a party to.
pub async fn receipt_for(
    reader: &SharedReader,
    viewer: PersonId,
    payment_id: &str,
) -> Result<Receipt, PaymentError> {
    let payment = crate::payments::payment_for(reader, viewer, payment_id).await?;
    let transfer_id: TransferId = payment
        .transfer_id
        .parse()
        .map_err(|error| internal("stored transfer id", error))?;
    let shared = reader.clone();
    let transfers = shared
        .read(move |r| r.transfers(&[transfer_id]))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading the transfer", error))?;
    let [transfer] = transfers.as_slice() else {
        return Err(internal("payment transfer missing", transfer_id));
    };
    Ok(Receipt {
        transfer_id: transfer.id.to_string(),
        timestamp: rfc3339_from_ns(transfer.timestamp),
        hash: hex::encode(transfer.hash),
        payment,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shares_sum_exactly_remainder_first() {
        assert_eq!(equal_shares(1000, 3).unwrap(), vec![334, 333, 333]);
        assert_eq!(equal_shares(1001, 3).unwrap(), vec![334, 334, 333]);
        assert_eq!(equal_shares(5, 5).unwrap(), vec![1, 1, 1, 1, 1]);
        assert!(equal_shares(2, 3).is_err());
        assert!(equal_shares(2, 0).is_err());
    }

    #[test]
    fn activity_queries_have_bounds() {
        assert!(ActivityQuery::parse(None, None, None).is_ok());
        assert!(ActivityQuery::parse(Some("100"), Some("12"), Some("payment")).is_ok());
        for limit in ["0", "101", "x", "-1"] {
            let error = ActivityQuery::parse(Some(limit), None, None).unwrap_err();
            assert_eq!(error, PaymentError::InvalidLimit, "{limit}");
        }
        for cursor in ["abc", "-5", "+5", "0", ""] {
            let error = ActivityQuery::parse(None, Some(cursor), None).unwrap_err();
            assert_eq!(error, PaymentError::InvalidCursor, "{cursor}");
        }
    }
}
