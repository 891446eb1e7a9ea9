//! Tips: a fan sends money to a creator, on one of their posts or on their profile,
//! with an optional note the fan makes public or keeps private. A post shows how many
//! tips it got, never the amounts.
//!
//! One atomic submission per tip, once per idempotency key: the fan → creator
//! transfer and, when the platform takes a fee, the creator → platform revenue fee
//! as the second transfer of the same linked chain (both or neither), the key's
//! claim, the tip document, the post's tip index row and the `tip.received` event.
//! The fan's activity shows the tip; the creator's shows the tip and the fee.

use mizan_core::{AccountId, Money, TransferId};
use mizan_ledger::{
    ledger_of, BusinessRow, CreateTransferResult, Ledger, Submission, TransferFlags,
    TransferRequest,
};
use serde::{Deserialize, Serialize};

use crate::identity::{self, Person, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    internal, time_ordered_u128, to_json, IdempotencyKey, Note, PaymentError,
    COLLECTION_IDEMPOTENCY, PLATFORM_REVENUE_USD, STATUS_CODE_CREATED,
};
use crate::requests::{claim_key, fingerprint, stored_answer, Answer, StoredAnswer};
use crate::social::{self, SocialError};
use crate::time::rfc3339_from_ns;

pub const TRANSFER_CODE_TIP: u16 = 4;
/// The platform's cut of a tip, from the creator's wallet.
pub const TRANSFER_CODE_PLATFORM_FEE: u16 = 5;
pub const COLLECTION_TIPS: &str = "tips";
/// One row per tip on a post, `post:tip`, for the post's tip count.
pub const COLLECTION_TIPS_BY_POST: &str = "tips_by_post";
pub const TOPIC_TIP_RECEIVED: &str = "tip.received";
/// The count a post shows stops here ("1,000+").
pub const TIP_COUNT_MAX: usize = 1_000;
/// Largest platform fee: 100% in basis points.
pub const FEE_BPS_MAX: u32 = 10_000;
/// The amounts a tip form offers first, in minor units.
pub const PRESET_TIPS_MINOR: [i64; 4] = [100, 300, 500, 1_000];

const TIP_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.tip.transfer.v1";
const TIP_FEE_TRANSFER_ID_DOMAIN: &[u8] = b"mizan.tip.fee.v1";
const TIP_ID_DOMAIN: &[u8] = b"mizan.tip.v1";

/// What a tip is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TipTarget {
    /// A post, by id (the creator is its author).
    Post(String),
    /// A creator's profile, by handle.
    Profile(String),
}

/// A tip, parsed.
#[derive(Debug, Clone)]
pub struct NewTip {
    pub target: TipTarget,
    pub amount: Money,
    pub note: Note,
    /// Whether the note may be shown to everyone (else only to the creator).
    pub public_note: bool,
}

/// A tip as its two parties see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipView {
    pub id: String,
    /// The fan's handle.
    pub from: String,
    /// The creator's handle.
    pub to: String,
    pub post_id: Option<String>,
    pub amount: String,
    /// What the platform kept of it.
    pub fee: String,
    pub currency: String,
    pub note: String,
    pub public_note: bool,
    pub transfer_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TipDocument {
    /// Person ids under the names webhook routing knows (`payer`, `payee`).
    payer: String,
    payee: String,
    amount_minor: i64,
    fee_minor: i64,
    created_at_ns: u64,
    view: TipView,
}

impl From<SocialError> for PaymentError {
    fn from(error: SocialError) -> PaymentError {
        match error {
            SocialError::PersonNotFound => PaymentError::RecipientNotFound,
            SocialError::PostNotFound => PaymentError::PostNotFound,
            other => internal("social", other),
        }
    }
}

/// The platform's fee on `amount` at `fee_bps` basis points, rounded down.
pub fn fee_of(amount: Money, fee_bps: u32) -> Result<Money, PaymentError> {
    if fee_bps > FEE_BPS_MAX {
        return Err(internal("tip fee", fee_bps));
    }
    amount
        .share_floor(i64::from(fee_bps), i64::from(FEE_BPS_MAX))
        .map_err(|error| internal("tip fee", error))
}

/// Sends a tip, once per key. `fee_bps` is the platform's cut (0 for none).
#[tracing::instrument(skip_all, fields(fan = %fan.id))]
#[allow(clippy::too_many_arguments)]
pub async fn tip(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    fan: &Person,
    tip: NewTip,
    key: IdempotencyKey,
    fee_bps: u32,
    now_ns: u64,
) -> Result<Answer<TipView>, PaymentError> {
    let (creator, post_id) = match &tip.target {
        TipTarget::Post(id) => {
            let post = social::post_document(reader, id).await?;
            let author = identity::PersonId::parse(&post.author)?;
            (
                identity::person_by_id(reader, author).await?,
                Some(id.to_ascii_lowercase()),
            )
        }
        TipTarget::Profile(handle) => (social::person_of(reader, handle).await?, None),
    };
    if creator.id == fan.id {
        return Err(PaymentError::CannotPayYourself);
    }
    let request_sha256 = fingerprint(&serde_json::json!({
        "to": creator.handle.as_str(),
        "post": post_id,
        "amount_minor": tip.amount.minor_units(),
        "currency": tip.amount.currency().code(),
        "note": tip.note.as_str(),
        "public_note": tip.public_note,
    }))?;
    let claim = claim_key("tip", fan.id, &key);
    let fee = fee_of(tip.amount, fee_bps)?;
    let tip_id = time_ordered_u128(TIP_ID_DOMAIN, fan.id, &key, now_ns);
    let charge = crate::limits::prepare(
        reader,
        limits,
        fan.id,
        crate::limits::Movement::Send,
        now_ns,
    )
    .await?;
    let transfer_id = TransferId::new(time_ordered_u128(
        TIP_TRANSFER_ID_DOMAIN,
        fan.id,
        &key,
        now_ns,
    ))
    .map_err(|error| internal("tip transfer id", error))?;
    let view = TipView {
        id: format!("{tip_id:032x}"),
        from: fan.handle.as_str().to_owned(),
        to: creator.handle.as_str().to_owned(),
        post_id: post_id.clone(),
        amount: tip.amount.format_major(),
        fee: fee.format_major(),
        currency: tip.amount.currency().code().to_owned(),
        note: tip.note.as_str().to_owned(),
        public_note: tip.public_note,
        transfer_id: transfer_id.to_string(),
        created_at: rfc3339_from_ns(now_ns),
    };
    let creator_wallet = creator.id.wallet_id(WALLET_CURRENCY)?;
    let ledger_id = ledger_of(tip.amount.currency());
    let mut transfers = vec![TransferRequest::single(
        transfer_id,
        fan.id.wallet_id(WALLET_CURRENCY)?,
        creator_wallet,
        tip.amount.minor_units(),
        ledger_id,
        TRANSFER_CODE_TIP,
    )
    .with_reference(tip_id)];
    if fee.minor_units() > 0 {
        let fee_id = TransferId::new(crate::ids::beside(
            transfer_id.get(),
            TIP_FEE_TRANSFER_ID_DOMAIN,
            &[],
        ))
        .map_err(|error| internal("tip fee transfer id", error))?;
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
            .with_reference(tip_id),
        );
    }
    transfers.extend(charge.legs(transfer_id, tip.amount.minor_units())?);
    let document = TipDocument {
        payer: fan.id.to_string(),
        payee: creator.id.to_string(),
        amount_minor: tip.amount.minor_units(),
        fee_minor: fee.minor_units(),
        created_at_ns: now_ns,
        view: view.clone(),
    };
    let body = to_json(&document)?;
    let record = StoredAnswer {
        request_sha256: request_sha256.clone(),
        claimed_at_ns: now_ns,
        status: STATUS_CODE_CREATED,
        response: view.clone(),
    };
    let mut rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: claim.clone(),
            body: to_json(&record)?,
        },
        BusinessRow::Document {
            collection: COLLECTION_TIPS.to_owned(),
            key: view.id.clone(),
            body: body.clone(),
        },
        crate::outbox::event_row(TOPIC_TIP_RECEIVED, &body, now_ns),
    ];
    if let Some(post) = &post_id {
        // A public note is shown on the post; a private one only to the creator.
        let shown = (view.public_note && !view.note.is_empty()).then(|| PublicNote {
            from: view.from.clone(),
            note: view.note.clone(),
        });
        rows.push(BusinessRow::Document {
            collection: COLLECTION_TIPS_BY_POST.to_owned(),
            key: format!("{post}:{}", view.id),
            body: match shown {
                Some(note) => to_json(&note)?,
                None => Vec::new(),
            },
        });
    }
    let result = ledger
        .submit(Submission {
            transfers,
            rows,
            atomic: true,
            ensure: charge.ensure(),
            ..Submission::default()
        })
        .await
        .map_err(|error| internal("submitting a tip", error))?;
    if let Some((collection, _)) = &result.row_conflict {
        if collection != COLLECTION_IDEMPOTENCY {
            return Err(internal("unexpected row conflict", collection));
        }
        return stored_answer(reader, claim, &request_sha256)
            .await?
            .ok_or_else(|| internal("claim taken but unreadable", &view.id));
    }
    match charge.settle(&result.transfers)? {
        CreateTransferResult::Ok => {}
        CreateTransferResult::ExceedsCredits => return Err(PaymentError::InsufficientFunds),
        other => return Err(internal("tip transfer", format!("{other:?}"))),
    }
    tracing::info!(tip = %view.id, "tip sent");
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: view,
        replayed: false,
    })
}

/// How many tips a post received (at most [`TIP_COUNT_MAX`]).
pub async fn tip_count(reader: &SharedReader, post_id: &str) -> Result<usize, SocialError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_TIPS_BY_POST,
        format!("{}:", post_id.to_ascii_lowercase()),
        None,
        TIP_COUNT_MAX,
    )
    .await
    .map_err(|error| SocialError::Internal(format!("counting tips: {error}")))?;
    Ok(rows.len())
}

/// A note a fan made public with their tip on a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicNote {
    /// The fan's handle.
    pub from: String,
    pub note: String,
}

/// The public notes of a post's tips, at most `limit` (amounts are never shown).
pub async fn public_notes(
    reader: &SharedReader,
    post_id: &str,
    limit: usize,
) -> Result<Vec<PublicNote>, SocialError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_TIPS_BY_POST,
        format!("{}:", post_id.to_ascii_lowercase()),
        None,
        TIP_COUNT_MAX,
    )
    .await
    .map_err(|error| SocialError::Internal(format!("reading tip notes: {error}")))?;
    Ok(rows
        .iter()
        .filter(|(_, body)| !body.is_empty())
        .filter_map(|(_, body)| serde_json::from_slice(body).ok())
        .take(limit)
        .collect())
}

/// The tip behind a ledger transfer's reference, for the activity feed.
pub(crate) async fn tip_of_reference(
    reader: &SharedReader,
    reference: u128,
) -> Result<Option<TipView>, PaymentError> {
    let key = format!("{reference:032x}");
    match identity::read_document(reader, COLLECTION_TIPS, key).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice::<TipDocument>(&body)
            .map(|document| Some(document.view))
            .map_err(|error| internal("stored tip", error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mizan_core::Currency;

    #[test]
    fn the_fee_is_a_floor_share_and_never_over_the_whole() {
        let amount = Money::from_minor(999, Currency::USD);
        assert_eq!(fee_of(amount, 0).map(Money::minor_units), Ok(0));
        assert_eq!(fee_of(amount, 1_000).map(Money::minor_units), Ok(99));
        assert_eq!(fee_of(amount, 10_000).map(Money::minor_units), Ok(999));
        assert!(fee_of(amount, 10_001).is_err());
    }
}
