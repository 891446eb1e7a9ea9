//! Direct messages and paid DMs.
//!
//! Two people share one thread (its id derived from the pair). A person may opt in to
//! paid DMs with a price: then a message from someone they don't follow, in a thread
//! they have not answered yet, costs that price. The price is held on the ledger as a
//! pending transfer sender → recipient with the paid-DM timeout (72 h by default), and
//! the message lands in the recipient's priority inbox. Then exactly one of:
//!
//! - the recipient **replies** (or accepts): the hold posts and, with a platform cut,
//!   recipient → platform revenue moves the cut in the same linked chain;
//! - the recipient **declines**: the hold is voided, the sender refunded;
//! - nobody acts in time: the **ledger itself** voids the hold at its timeout (an
//!   expiry event), even if Mizan was down at the deadline.
//!
//! Settling claims `Create("paid_dm_closed", id)` in the same atomic submission as the
//! post or void, and the ledger refuses to post, void or expire a pending transfer
//! twice, so a paid DM is paid out or refunded exactly once whatever the interleaving
//! of replies, declines, retries and the timeout. Its status is read from the ledger's
//! pending status, so an expiry shows as a refund without any job running.

use mizan_core::{AccountId, Money, TransferId};
use mizan_ledger::{
    ledger_of, BusinessRow, CreateTransferResult, Ledger, PendingStatus, Submission, TransferFlags,
    TransferRequest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::identity::{self, Person, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    internal, time_ordered_u128, to_json, IdempotencyKey, PaymentError, PLATFORM_REVENUE_USD,
    STATUS_CODE_CREATED,
};
use crate::requests::{claim_key, fingerprint, stored_answer, Answer, StoredAnswer};
use crate::social;
use crate::time::rfc3339_from_ns;
use crate::tips::{fee_of, TRANSFER_CODE_PLATFORM_FEE};

pub const TRANSFER_CODE_PAID_DM: u16 = 6;
pub const COLLECTION_THREADS: &str = "threads";
/// `{person}:{other}` → the thread id, for a person's thread list.
pub const COLLECTION_THREADS_BY_PERSON: &str = "threads_by_person";
/// `{thread}:{newest-first time}:{message}` → the message.
pub const COLLECTION_MESSAGES: &str = "messages";
pub const COLLECTION_DM_SETTINGS: &str = "dm_settings";
pub const COLLECTION_PAID_DMS: &str = "paid_dms";
/// `{recipient}:{newest-first time}:{paid dm}`: the priority inbox.
pub const COLLECTION_PRIORITY_INBOX: &str = "priority_inbox";
/// One row per settled paid DM: the claim racing settlements compete for.
pub const COLLECTION_PAID_DM_CLOSED: &str = "paid_dm_closed";
/// `{deadline ns, 20 digits}:{paid dm}` → the id: paid DMs in deadline order, for the
/// job that records the ledger's refunds ([`record_expiries`]).
pub const COLLECTION_PAID_DM_DEADLINES: &str = "paid_dm_deadlines";
/// The last deadline row the expiry job is done with.
pub const COLLECTION_PAID_DM_DEADLINE_CURSOR: &str = "paid_dm_deadline_cursor";
const DEADLINE_CURSOR_KEY: &str = "expiries";
/// Deadline rows one run of the expiry job reads.
pub const EXPIRY_SCAN_MAX: usize = 1_000;
pub const TOPIC_MESSAGE_SENT: &str = "message.sent";
pub const TOPIC_PAID_DM_RECEIVED: &str = "paid_dm.received";
pub const TOPIC_PAID_DM_PAID: &str = "paid_dm.paid";
pub const TOPIC_PAID_DM_REFUNDED: &str = "paid_dm.refunded";

pub const MESSAGE_CHARS_MAX: usize = 2_000;
/// Most messages a thread page shows; most threads a list shows.
pub const MESSAGES_LISTED_MAX: usize = 100;
pub const THREADS_LISTED_MAX: usize = 200;
/// Highest paid-DM price: $1,000.00.
pub const PAID_DM_PRICE_MINOR_MAX: i64 = 100_000;

/// Attempts at sending one message when paid DMs it settles change meanwhile.
const SEND_ATTEMPTS_MAX: usize = 3;
const THREAD_ID_DOMAIN: &[u8] = b"mizan.thread.v1";
const PAID_DM_ID_DOMAIN: &[u8] = b"mizan.paid_dm.v1";
const PAID_DM_HOLD_DOMAIN: &[u8] = b"mizan.paid_dm.hold.v1";
const PAID_DM_SETTLE_DOMAIN: &[u8] = b"mizan.paid_dm.settle.v1";
const PAID_DM_FEE_DOMAIN: &[u8] = b"mizan.paid_dm.fee.v1";

/// The policy the server runs paid DMs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidDmPolicy {
    /// The platform's cut, basis points.
    pub cut_bps: u32,
    /// Seconds the recipient has to answer before the ledger refunds the sender.
    pub timeout_seconds: u32,
}

/// A message's text, parsed: 1–2,000 characters, no control characters but new lines.
#[derive(Debug, Clone)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: &str) -> Result<MessageText, PaymentError> {
        let text = text.trim();
        let ok = !text.is_empty()
            && text.chars().count() <= MESSAGE_CHARS_MAX
            && text.chars().all(|c| !c.is_control() || c == '\n');
        if ok {
            Ok(MessageText(text.to_owned()))
        } else {
            Err(PaymentError::MessageInvalid)
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmSettings {
    pub paid_dms: bool,
    pub price_minor: i64,
}

/// A person's paid-DM settings (off unless they opted in).
pub async fn dm_settings(
    reader: &SharedReader,
    person: PersonId,
) -> Result<DmSettings, PaymentError> {
    match identity::read_document(reader, COLLECTION_DM_SETTINGS, person.to_string()).await? {
        None => Ok(DmSettings::default()),
        Some(body) => serde_json::from_slice(&body).map_err(|error| internal("dm settings", error)),
    }
}

/// Opts in to paid DMs at `price` (or out, with `None`).
pub async fn set_dm_price(
    ledger: &Ledger,
    person: &Person,
    price: Option<Money>,
) -> Result<DmSettings, PaymentError> {
    let settings = match price {
        None => DmSettings::default(),
        Some(price) => {
            let minor = price.minor_units();
            if price.currency() != WALLET_CURRENCY
                || !(1..=PAID_DM_PRICE_MINOR_MAX).contains(&minor)
            {
                return Err(PaymentError::DmPriceInvalid);
            }
            DmSettings {
                paid_dms: true,
                price_minor: minor,
            }
        }
    };
    let rows = vec![BusinessRow::Document {
        collection: COLLECTION_DM_SETTINGS.to_owned(),
        key: person.id.to_string(),
        body: to_json(&settings)?,
    }];
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("saving dm settings", error))?;
    Ok(settings)
}

fn thread_id(a: PersonId, b: PersonId) -> String {
    let (low, high) = if a.get() < b.get() { (a, b) } else { (b, a) };
    let mut hasher = Sha256::new();
    hasher.update(THREAD_ID_DOMAIN);
    hasher.update(low.get().to_be_bytes());
    hasher.update(high.get().to_be_bytes());
    hex::encode(&hasher.finalize()[..16])
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ThreadDocument {
    a: String,
    b: String,
    /// People who have written in the thread; a recipient in this list has answered.
    writers: Vec<String>,
}

/// A message as the two people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: String,
    pub thread_id: String,
    pub from: String,
    pub to: String,
    pub text: String,
    /// The paid DM this message came with, if it was one.
    pub paid_dm_id: Option<String>,
    /// The checkout card this message is, if one (see [`crate::checkout`]).
    #[serde(default)]
    pub checkout_id: Option<String>,
    pub created_at: String,
}

/// A paid DM's state: `pending` until the recipient acts or the deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidDmStatus {
    Pending,
    /// The recipient answered: paid out (less the platform's cut).
    Paid,
    /// The recipient declined: the sender got the price back.
    Declined,
    /// Nobody answered in time: the ledger refunded the sender.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidDmView {
    pub id: String,
    pub thread_id: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub price: String,
    /// What the platform keeps when it is paid out.
    pub cut: String,
    pub currency: String,
    pub status: PaidDmStatus,
    pub pending_transfer_id: String,
    pub created_at: String,
    /// When the ledger refunds it if nobody answers.
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PaidDmDocument {
    /// Person ids under the names webhook routing knows.
    payer: String,
    payee: String,
    amount_minor: i64,
    cut_minor: i64,
    /// Written when settled by a reply or decline; an expiry is read from the ledger.
    settled: Option<PaidDmStatus>,
    view: PaidDmView,
}

/// What sending a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub message: MessageView,
    pub paid_dm: Option<PaidDmView>,
    /// Paid DMs this message (a reply) paid out.
    pub settled: Vec<String>,
}

fn message_key(thread: &str, now_ns: u64, id: &str) -> String {
    format!("{thread}:{:020}:{id}", u64::MAX - now_ns)
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

/// Sends a message to `to_handle`, once per key. When it needs paying (see the module
/// docs), `offer` must be at least the price, else `PaidDmRequired` says the price.
#[allow(clippy::too_many_arguments)]
pub async fn send_message(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    sender: &Person,
    to_handle: &str,
    text: MessageText,
    offer: Option<Money>,
    key: IdempotencyKey,
    policy: PaidDmPolicy,
    now_ns: u64,
) -> Result<Answer<Sent>, PaymentError> {
    let recipient = social::person_of(reader, to_handle).await?;
    if recipient.id == sender.id {
        return Err(PaymentError::CannotPayYourself);
    }
    let request_sha256 = fingerprint(&serde_json::json!({
        "to": recipient.handle.as_str(),
        "text": text.0,
        "offer": offer.map(Money::minor_units),
    }))?;
    let claim = claim_key("message", sender.id, &key);
    if let Some(answer) =
        stored_answer::<SentRecord>(reader, claim.clone(), &request_sha256).await?
    {
        return Ok(Answer {
            status: answer.status,
            body: answer.body.into_sent(),
            replayed: true,
        });
    }
    // A paid DM this message settles can expire or be settled between reading it and
    // submitting; then nothing was applied, and the message is built again.
    'attempts: for _ in 0..SEND_ATTEMPTS_MAX {
        let thread = thread_id(sender.id, recipient.id);
        let stored: Option<ThreadDocument> =
            read_json(reader, COLLECTION_THREADS, thread.clone()).await?;
        let mut document = stored.unwrap_or_else(|| ThreadDocument {
            a: sender.id.to_string(),
            b: recipient.id.to_string(),
            writers: Vec::new(),
        });
        let me = sender.id.to_string();
        // A message pays out what the other person paid to reach the sender.
        let to_settle = pending_paid_dms(reader, &thread, recipient.id, sender.id).await?;
        let settings = dm_settings(reader, recipient.id).await?;
        let answered = document.writers.contains(&recipient.id.to_string());
        let needs_payment = settings.paid_dms
            && !answered
            && !social_follows(reader, recipient.id, sender.id).await?;
        let message_id = format!(
            "{:032x}",
            time_ordered_u128(b"mizan.message.v1", sender.id, &key, now_ns)
        );
        let mut view = MessageView {
            id: message_id.clone(),
            thread_id: thread.clone(),
            from: sender.handle.as_str().to_owned(),
            to: recipient.handle.as_str().to_owned(),
            text: text.0.clone(),
            paid_dm_id: None,
            checkout_id: None,
            created_at: rfc3339_from_ns(now_ns),
        };
        let mut transfers = Vec::new();
        let mut rows = Vec::new();
        let mut paid_dm = None;
        let mut charge = None;
        if needs_payment {
            let price = Money::from_minor(settings.price_minor, WALLET_CURRENCY);
            let offered = offer.is_some_and(|offer| {
                offer.currency() == WALLET_CURRENCY && offer.minor_units() >= price.minor_units()
            });
            if !offered {
                return Err(PaymentError::PaidDmRequired(price));
            }
            let id = format!(
                "{:032x}",
                time_ordered_u128(PAID_DM_ID_DOMAIN, sender.id, &key, now_ns)
            );
            let hold_id = TransferId::new(time_ordered_u128(
                PAID_DM_HOLD_DOMAIN,
                sender.id,
                &key,
                now_ns,
            ))
            .map_err(|error| internal("paid dm hold id", error))?;
            // Paying to reach someone is sending money: it counts against the limits.
            let cleared = crate::limits::prepare(
                reader,
                limits,
                sender.id,
                crate::limits::Movement::Send,
                now_ns,
            )
            .await?;
            charge = Some((cleared, hold_id, price.minor_units()));
            let cut = fee_of(price, policy.cut_bps)?;
            let expires_ns =
                now_ns.saturating_add(u64::from(policy.timeout_seconds) * 1_000_000_000);
            let dm = PaidDmView {
                id: id.clone(),
                thread_id: thread.clone(),
                message_id: message_id.clone(),
                from: view.from.clone(),
                to: view.to.clone(),
                price: price.format_major(),
                cut: cut.format_major(),
                currency: WALLET_CURRENCY.code().to_owned(),
                status: PaidDmStatus::Pending,
                pending_transfer_id: hold_id.to_string(),
                created_at: view.created_at.clone(),
                expires_at: rfc3339_from_ns(expires_ns),
            };
            view.paid_dm_id = Some(id.clone());
            transfers.push(
                TransferRequest::single(
                    hold_id,
                    sender.id.wallet_id(WALLET_CURRENCY)?,
                    recipient.id.wallet_id(WALLET_CURRENCY)?,
                    price.minor_units(),
                    ledger_of(WALLET_CURRENCY),
                    TRANSFER_CODE_PAID_DM,
                )
                .with_reference(
                    u128::from_str_radix(&id, 16).map_err(|e| internal("paid dm id", e))?,
                )
                .with_flags(TransferFlags::PENDING)
                .with_timeout(policy.timeout_seconds),
            );
            let document = PaidDmDocument {
                payer: me.clone(),
                payee: recipient.id.to_string(),
                amount_minor: price.minor_units(),
                cut_minor: cut.minor_units(),
                settled: None,
                view: dm.clone(),
            };
            let body = to_json(&document)?;
            rows.push(BusinessRow::Create {
                collection: COLLECTION_PAID_DMS.to_owned(),
                key: id.clone(),
                body: body.clone(),
            });
            rows.push(BusinessRow::Document {
                collection: COLLECTION_PRIORITY_INBOX.to_owned(),
                key: format!("{}:{:020}:{id}", recipient.id, u64::MAX - now_ns),
                body: id.clone().into_bytes(),
            });
            rows.push(BusinessRow::Document {
                collection: COLLECTION_PAID_DM_DEADLINES.to_owned(),
                key: deadline_key(expires_ns, &id),
                body: id.clone().into_bytes(),
            });
            rows.push(crate::outbox::event_row(
                TOPIC_PAID_DM_RECEIVED,
                &body,
                now_ns,
            ));
            paid_dm = Some(dm);
        }
        // A reply pays out what the other person paid to reach the sender.
        let mut settled = Vec::new();
        for dm in &to_settle {
            let (mut dm_transfers, dm_rows) = settlement(dm, true, now_ns)?;
            transfers.append(&mut dm_transfers);
            rows.extend(dm_rows);
            settled.push(dm.view.id.clone());
        }
        // The allowance legs go last, where `Charge::settle` looks for them.
        if let Some((charge, hold, amount_minor)) = &charge {
            transfers.extend(charge.legs(*hold, *amount_minor)?);
        }
        if !document.writers.contains(&me) {
            document.writers.push(me.clone());
        }
        let message_body = to_json(&MessageRecord {
            payer: me.clone(),
            payee: recipient.id.to_string(),
            view: view.clone(),
        })?;
        let sent = Sent {
            message: view.clone(),
            paid_dm: paid_dm.clone(),
            settled: settled.clone(),
        };
        rows.push(BusinessRow::Create {
            collection: COLLECTION_IDEMPOTENCY_CLAIMS.to_owned(),
            key: claim.clone(),
            body: to_json(&StoredAnswer {
                request_sha256: request_sha256.clone(),
                claimed_at_ns: now_ns,
                status: STATUS_CODE_CREATED,
                response: SentRecord::from(&sent),
            })?,
        });
        rows.push(BusinessRow::Document {
            collection: COLLECTION_THREADS.to_owned(),
            key: thread.clone(),
            body: to_json(&document)?,
        });
        for (person, other) in [(sender.id, recipient.id), (recipient.id, sender.id)] {
            rows.push(BusinessRow::Document {
                collection: COLLECTION_THREADS_BY_PERSON.to_owned(),
                key: format!("{person}:{other}"),
                body: thread.clone().into_bytes(),
            });
        }
        rows.push(BusinessRow::Document {
            collection: COLLECTION_MESSAGES.to_owned(),
            key: message_key(&thread, now_ns, &message_id),
            body: message_body.clone(),
        });
        rows.push(crate::outbox::event_row(
            TOPIC_MESSAGE_SENT,
            &message_body,
            now_ns,
        ));
        let ensure = charge
            .as_ref()
            .map(|(charge, _, _)| charge.ensure())
            .unwrap_or_default();
        let result = ledger
            .submit(Submission {
                transfers,
                rows,
                atomic: true,
                ensure,
                ..Submission::default()
            })
            .await
            .map_err(|error| internal("sending a message", error))?;
        if let Some((collection, _)) = &result.row_conflict {
            if collection == COLLECTION_IDEMPOTENCY_CLAIMS {
                return stored_answer::<SentRecord>(reader, claim, &request_sha256)
                    .await?
                    .map(|answer| Answer {
                        status: answer.status,
                        body: answer.body.into_sent(),
                        replayed: true,
                    })
                    .ok_or_else(|| internal("claim taken but unreadable", &message_id));
            }
            // A paid DM this reply would settle was settled meanwhile: read again.
            continue;
        }
        if let Some((charge, _, _)) = &charge {
            // `limit_exceeded` when only an allowance leg failed; else the loop below.
            charge.settle(&result.transfers)?;
        }
        for outcome in &result.transfers {
            match outcome.result {
                CreateTransferResult::Ok => {}
                CreateTransferResult::ExceedsCredits => {
                    return Err(PaymentError::InsufficientFunds)
                }
                CreateTransferResult::PendingTransferExpired
                | CreateTransferResult::PendingTransferAlreadyVoided
                | CreateTransferResult::PendingTransferAlreadyPosted => {
                    // The hold expired (or was settled) between the read and the submit:
                    // nothing of this submission was applied; the next attempt reads again.
                    continue 'attempts;
                }
                CreateTransferResult::LinkedEventFailed => {}
                other => return Err(internal("message transfers", format!("{other:?}"))),
            }
        }
        return Ok(Answer {
            status: STATUS_CODE_CREATED,
            body: sent,
            replayed: false,
        });
    }
    Err(PaymentError::IdempotencyRequestInProgress)
}

/// The idempotency claims of messages live with every other claim.
const COLLECTION_IDEMPOTENCY_CLAIMS: &str = crate::payments::COLLECTION_IDEMPOTENCY;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MessageRecord {
    payer: String,
    payee: String,
    view: MessageView,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SentRecord {
    message: MessageView,
    paid_dm: Option<PaidDmView>,
    settled: Vec<String>,
}

impl From<&Sent> for SentRecord {
    fn from(sent: &Sent) -> SentRecord {
        SentRecord {
            message: sent.message.clone(),
            paid_dm: sent.paid_dm.clone(),
            settled: sent.settled.clone(),
        }
    }
}

impl SentRecord {
    fn into_sent(self) -> Sent {
        Sent {
            message: self.message,
            paid_dm: self.paid_dm,
            settled: self.settled,
        }
    }
}

async fn social_follows(
    reader: &SharedReader,
    follower: PersonId,
    followee: PersonId,
) -> Result<bool, PaymentError> {
    social::follows(reader, follower, followee)
        .await
        .map_err(|error| internal("follows", error))
}

/// The transfers and rows that pay out (`post`) or refund a paid DM, guarded by its
/// `paid_dm_closed` claim.
fn settlement(
    dm: &PaidDmDocument,
    post: bool,
    now_ns: u64,
) -> Result<(Vec<TransferRequest>, Vec<BusinessRow>), PaymentError> {
    let hold: TransferId = dm
        .view
        .pending_transfer_id
        .parse()
        .map_err(|error| internal("stored hold id", error))?;
    let reference =
        u128::from_str_radix(&dm.view.id, 16).map_err(|error| internal("paid dm id", error))?;
    let derived = |domain: &[u8]| -> Result<TransferId, PaymentError> {
        let mut hasher = Sha256::new();
        hasher.update(domain);
        hasher.update(reference.to_be_bytes());
        let digest = hasher.finalize();
        let mut first = [0_u8; 16];
        first.copy_from_slice(&digest[..16]);
        TransferId::new(u128::from_be_bytes(first)).map_err(|error| internal("settle id", error))
    };
    let mut transfers =
        vec![
            TransferRequest::resolve(derived(PAID_DM_SETTLE_DOMAIN)?, hold, post, 0)
                .with_reference(reference),
        ];
    if post && dm.cut_minor > 0 {
        transfers[0] = transfers[0].with_flags(TransferFlags::LINKED);
        let payee = PersonId::parse(&dm.payee)?;
        let revenue = AccountId::new(PLATFORM_REVENUE_USD)
            .map_err(|error| internal("revenue account", error))?;
        transfers.push(
            TransferRequest::single(
                derived(PAID_DM_FEE_DOMAIN)?,
                payee.wallet_id(WALLET_CURRENCY)?,
                revenue,
                dm.cut_minor,
                ledger_of(WALLET_CURRENCY),
                TRANSFER_CODE_PLATFORM_FEE,
            )
            .with_reference(reference),
        );
    }
    let status = if post {
        PaidDmStatus::Paid
    } else {
        PaidDmStatus::Declined
    };
    let mut settled = dm.clone();
    settled.settled = Some(status);
    settled.view.status = status;
    let body = to_json(&settled)?;
    let topic = if post {
        TOPIC_PAID_DM_PAID
    } else {
        TOPIC_PAID_DM_REFUNDED
    };
    let rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_PAID_DM_CLOSED.to_owned(),
            key: dm.view.id.clone(),
            body: Vec::new(),
        },
        BusinessRow::Document {
            collection: COLLECTION_PAID_DMS.to_owned(),
            key: dm.view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(topic, &body, now_ns),
    ];
    Ok((transfers, rows))
}

/// The paid DMs `payer` sent `payee` in `thread` that are still pending on the ledger.
async fn pending_paid_dms(
    reader: &SharedReader,
    thread: &str,
    payer: PersonId,
    payee: PersonId,
) -> Result<Vec<PaidDmDocument>, PaymentError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_PRIORITY_INBOX,
        format!("{payee}:"),
        None,
        MESSAGES_LISTED_MAX,
    )
    .await
    .map_err(|error| internal("priority inbox", error))?;
    let mut pending = Vec::new();
    for (_, body) in rows {
        let id = String::from_utf8(body).map_err(|error| internal("inbox row", error))?;
        let Some(dm) = read_json::<PaidDmDocument>(reader, COLLECTION_PAID_DMS, id).await? else {
            continue;
        };
        if dm.view.thread_id != thread || dm.payer != payer.to_string() {
            continue;
        }
        if status_of(reader, &dm).await? == PaidDmStatus::Pending {
            pending.push(dm);
        }
    }
    Ok(pending)
}

/// A paid DM's status: as settled, else as the ledger's hold stands now.
async fn status_of(
    reader: &SharedReader,
    dm: &PaidDmDocument,
) -> Result<PaidDmStatus, PaymentError> {
    if let Some(status) = dm.settled {
        return Ok(status);
    }
    let hold: TransferId = dm
        .view
        .pending_transfer_id
        .parse()
        .map_err(|error| internal("stored hold id", error))?;
    let reader = reader.clone();
    let status = reader
        .read(move |r| r.pending_status(hold))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("pending status", error))?;
    Ok(match status {
        Some(PendingStatus::Pending) | None => PaidDmStatus::Pending,
        Some(PendingStatus::Posted) => PaidDmStatus::Paid,
        Some(PendingStatus::Voided) => PaidDmStatus::Declined,
        Some(PendingStatus::Expired) => PaidDmStatus::Expired,
    })
}

/// A paid DM its sender or recipient may see, with its current status.
pub async fn paid_dm(
    reader: &SharedReader,
    viewer: PersonId,
    id: &str,
) -> Result<PaidDmView, PaymentError> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(PaymentError::PaidDmNotFound);
    }
    let dm: PaidDmDocument = read_json(reader, COLLECTION_PAID_DMS, id.to_ascii_lowercase())
        .await?
        .ok_or(PaymentError::PaidDmNotFound)?;
    let me = viewer.to_string();
    if dm.payer != me && dm.payee != me {
        return Err(PaymentError::PaidDmNotFound);
    }
    let mut view = dm.view.clone();
    view.status = status_of(reader, &dm).await?;
    Ok(view)
}

/// The recipient accepts (pays out) or declines (refunds) a pending paid DM. Exactly
/// one settlement wins; a DM no longer pending answers `PaidDmNotPending`.
pub async fn settle_paid_dm(
    ledger: &Ledger,
    reader: &SharedReader,
    recipient: &Person,
    id: &str,
    accept: bool,
    now_ns: u64,
) -> Result<PaidDmView, PaymentError> {
    let view = paid_dm(reader, recipient.id, id).await?;
    let dm: PaidDmDocument = read_json(reader, COLLECTION_PAID_DMS, view.id.clone())
        .await?
        .ok_or(PaymentError::PaidDmNotFound)?;
    if dm.payee != recipient.id.to_string() {
        return Err(PaymentError::RequestActionNotAllowed);
    }
    if view.status != PaidDmStatus::Pending {
        return Err(PaymentError::PaidDmNotPending);
    }
    let (transfers, rows) = settlement(&dm, accept, now_ns)?;
    let result = ledger
        .submit(Submission {
            transfers,
            rows,
            atomic: true,
            ..Submission::default()
        })
        .await
        .map_err(|error| internal("settling a paid dm", error))?;
    if result.row_conflict.is_some() {
        return Err(PaymentError::PaidDmNotPending);
    }
    match result.transfers.first().map(|outcome| outcome.result) {
        Some(CreateTransferResult::Ok) => {}
        Some(
            CreateTransferResult::PendingTransferExpired
            | CreateTransferResult::PendingTransferAlreadyPosted
            | CreateTransferResult::PendingTransferAlreadyVoided,
        ) => return Err(PaymentError::PaidDmNotPending),
        other => return Err(internal("paid dm settlement", format!("{other:?}"))),
    }
    paid_dm(reader, recipient.id, &view.id).await
}

/// A thread's latest messages, oldest first, for one of its two people.
pub async fn thread_messages(
    reader: &SharedReader,
    viewer: &Person,
    other_handle: &str,
    limit: usize,
) -> Result<Vec<MessageView>, PaymentError> {
    let other = social::person_of(reader, other_handle).await?;
    let thread = thread_id(viewer.id, other.id);
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_MESSAGES,
        format!("{thread}:"),
        None,
        limit.clamp(1, MESSAGES_LISTED_MAX),
    )
    .await
    .map_err(|error| internal("messages", error))?;
    let mut messages = rows
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<MessageRecord>(body)
                .map(|record| record.view)
                .map_err(|error| internal("message", error))
        })
        .collect::<Result<Vec<_>, _>>()?;
    messages.reverse();
    Ok(messages)
}

/// One line of a person's thread list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub with: String,
    pub thread_id: String,
}

/// The people a person has threads with.
pub async fn threads_of(
    reader: &SharedReader,
    person: PersonId,
) -> Result<Vec<ThreadSummary>, PaymentError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_THREADS_BY_PERSON,
        format!("{person}:"),
        None,
        THREADS_LISTED_MAX,
    )
    .await
    .map_err(|error| internal("threads", error))?;
    let mut threads = Vec::with_capacity(rows.len());
    for (key, body) in rows {
        let Some((_, other)) = key.split_once(':') else {
            continue;
        };
        let other = identity::person_by_id(reader, PersonId::parse(other)?).await?;
        threads.push(ThreadSummary {
            with: other.handle.as_str().to_owned(),
            thread_id: String::from_utf8(body).map_err(|error| internal("thread row", error))?,
        });
    }
    Ok(threads)
}

/// The recipient's priority inbox: paid DMs, newest first, with their status.
pub async fn priority_inbox(
    reader: &SharedReader,
    person: PersonId,
) -> Result<Vec<PaidDmView>, PaymentError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_PRIORITY_INBOX,
        format!("{person}:"),
        None,
        MESSAGES_LISTED_MAX,
    )
    .await
    .map_err(|error| internal("priority inbox", error))?;
    let mut views = Vec::with_capacity(rows.len());
    for (_, body) in rows {
        let id = String::from_utf8(body).map_err(|error| internal("inbox row", error))?;
        views.push(paid_dm(reader, person, &id).await?);
    }
    Ok(views)
}

/// The paid DM behind a ledger transfer's reference, for the activity feed.
pub(crate) async fn paid_dm_of_reference(
    reader: &SharedReader,
    reference: u128,
) -> Result<Option<PaidDmView>, PaymentError> {
    read_json::<PaidDmDocument>(reader, COLLECTION_PAID_DMS, format!("{reference:032x}"))
        .await
        .map(|dm| dm.map(|dm| dm.view))
}

fn deadline_key(expires_ns: u64, id: &str) -> String {
    format!("{expires_ns:020}:{id}")
}

/// What one run of [`record_expiries`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Deadline rows looked at.
    pub scanned: usize,
    /// Paid DMs newly recorded as refunded by the ledger (one event each).
    pub expired: usize,
}

/// Records the paid DMs the ledger refunded at their deadline: for each one past its
/// deadline whose hold the ledger expired, marks the document `expired` and emits
/// `paid_dm.refunded`, exactly once — the submission claims the same
/// `Create("paid_dm_closed", id)` a reply or decline would, so a second run, a
/// concurrent run on another process, or a settlement that won first changes nothing.
/// The money needs no job (the ledger voided the hold); this only tells people.
pub async fn record_expiries(
    ledger: &Ledger,
    reader: &SharedReader,
    now_ns: u64,
) -> Result<ExpiryReport, PaymentError> {
    let cursor = identity::read_document(
        reader,
        COLLECTION_PAID_DM_DEADLINE_CURSOR,
        DEADLINE_CURSOR_KEY.to_owned(),
    )
    .await?
    .map(|body| String::from_utf8(body).map_err(|error| internal("expiry cursor", error)))
    .transpose()?;
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_PAID_DM_DEADLINES,
        String::new(),
        cursor.clone(),
        EXPIRY_SCAN_MAX,
    )
    .await
    .map_err(|error| internal("paid dm deadlines", error))?;
    let mut report = ExpiryReport::default();
    let mut done_through = None;
    for (key, body) in rows {
        let due = key
            .split_once(':')
            .and_then(|(deadline, _)| deadline.parse::<u64>().ok())
            .is_some_and(|deadline_ns| deadline_ns <= now_ns);
        if !due {
            break;
        }
        report.scanned += 1;
        let id = String::from_utf8(body).map_err(|error| internal("deadline row", error))?;
        let Some(dm) = read_json::<PaidDmDocument>(reader, COLLECTION_PAID_DMS, id).await? else {
            return Err(internal("deadline of a missing paid dm", key));
        };
        match status_of(reader, &dm).await? {
            // The ledger expires holds on its own clock, a moment after the deadline:
            // this row and every later one wait for the next run.
            PaidDmStatus::Pending => break,
            PaidDmStatus::Paid | PaidDmStatus::Declined => {}
            PaidDmStatus::Expired => {
                if dm.settled.is_none() && record_expiry(ledger, &dm, now_ns).await? {
                    report.expired += 1;
                }
            }
        }
        done_through = Some(key);
    }
    if let Some(key) = done_through {
        let row = BusinessRow::Document {
            collection: COLLECTION_PAID_DM_DEADLINE_CURSOR.to_owned(),
            key: DEADLINE_CURSOR_KEY.to_owned(),
            body: key.into_bytes(),
        };
        crate::documents::submit_rows(ledger, vec![row])
            .await
            .map_err(|error| internal("saving the expiry cursor", error))?;
    }
    Ok(report)
}

/// Marks one expired paid DM and emits its event; false when another run or a
/// settlement claimed it first.
async fn record_expiry(
    ledger: &Ledger,
    dm: &PaidDmDocument,
    now_ns: u64,
) -> Result<bool, PaymentError> {
    let mut expired = dm.clone();
    expired.settled = Some(PaidDmStatus::Expired);
    expired.view.status = PaidDmStatus::Expired;
    let body = to_json(&expired)?;
    let rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_PAID_DM_CLOSED.to_owned(),
            key: dm.view.id.clone(),
            body: Vec::new(),
        },
        BusinessRow::Document {
            collection: COLLECTION_PAID_DMS.to_owned(),
            key: dm.view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(TOPIC_PAID_DM_REFUNDED, &body, now_ns),
    ];
    let conflict = crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("recording a paid dm expiry", error))?;
    if conflict.is_none() {
        tracing::info!(paid_dm = %dm.view.id, "paid dm refunded by the ledger at its deadline");
    }
    Ok(conflict.is_none())
}

/// The thread between `a` and `b`, and whether `writer` has written in it.
pub(crate) async fn thread_written_by(
    reader: &SharedReader,
    a: PersonId,
    b: PersonId,
    writer: PersonId,
) -> Result<(String, bool), PaymentError> {
    let thread = thread_id(a, b);
    let stored: Option<ThreadDocument> =
        read_json(reader, COLLECTION_THREADS, thread.clone()).await?;
    let written = stored.is_some_and(|document| document.writers.contains(&writer.to_string()));
    Ok((thread, written))
}

/// The message that shows a checkout card in its thread, and its row (the thread
/// itself already exists: a card goes only where the buyer has written).
pub(crate) fn checkout_message(
    thread: &str,
    seller: &Person,
    buyer: &Person,
    text: &str,
    checkout_id: &str,
    now_ns: u64,
) -> Result<(MessageView, BusinessRow), PaymentError> {
    let view = MessageView {
        id: checkout_id.to_owned(),
        thread_id: thread.to_owned(),
        from: seller.handle.as_str().to_owned(),
        to: buyer.handle.as_str().to_owned(),
        text: text.to_owned(),
        paid_dm_id: None,
        checkout_id: Some(checkout_id.to_owned()),
        created_at: rfc3339_from_ns(now_ns),
    };
    let body = to_json(&MessageRecord {
        payer: buyer.id.to_string(),
        payee: seller.id.to_string(),
        view: view.clone(),
    })?;
    let row = BusinessRow::Document {
        collection: COLLECTION_MESSAGES.to_owned(),
        key: message_key(thread, now_ns, checkout_id),
        body,
    };
    Ok((view, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_the_same_from_both_sides_and_distinct_per_pair() {
        let a =
            PersonId::parse("00000000000000000000000000000001").unwrap_or_else(|e| panic!("{e}"));
        let b =
            PersonId::parse("00000000000000000000000000000002").unwrap_or_else(|e| panic!("{e}"));
        let c =
            PersonId::parse("00000000000000000000000000000003").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(thread_id(a, b), thread_id(b, a));
        assert_ne!(thread_id(a, b), thread_id(a, c));
        assert_eq!(thread_id(a, b).len(), 32);
    }

    #[test]
    fn message_texts_are_bounded() {
        assert!(MessageText::parse("hi").is_ok());
        assert!(MessageText::parse("line\nline").is_ok());
        assert!(MessageText::parse("  ").is_err());
        assert!(MessageText::parse("a\u{0}b").is_err());
        assert!(MessageText::parse(&"x".repeat(2_001)).is_err());
    }
}
