//! Checkout cards in direct messages: a seller offers an item (name, unit price,
//! quantity available) in a thread where the other person has written; the buyer
//! pays for some units with one click, from the wallet or — when the wallet is
//! short — from their default saved card, and gets an order. Like a payment link, a
//! card may be passed on: anyone signed in who has its id may buy from it (the seller
//! excepted); only the thread's two people see which conversation it is in.
//!
//! **Stock lives on the ledger.** Each offer has a `stock` account on the units ledger
//! ([`LEDGER_UNITS`]) that can never be overdrawn (`debits_must_not_exceed_credits`),
//! credited with the quantity when the card is posted (from the offer's own
//! `stock_control` account, both created in the same atomic submission as the card).
//! A purchase's one atomic submission carries the money (buyer wallet → seller
//! wallet), the stock debit of `quantity` units, the allowance legs of the send
//! limits, the order document, the key's idempotency claim and the `order.paid`
//! event. The writer applies submissions one at a time, so concurrent buyers can
//! never take more units than are left: the one that would overdraw the stock fails
//! with `exceeds_credits`, and then nothing of its submission — money included — is
//! applied (`sold_out`).
//!
//! When the wallet is short and a default card is saved, the card tops the wallet up
//! by the order's amount (idempotency key derived from the order, so a retry never
//! charges twice) and the purchase is tried once more. Should the last units go to
//! someone else in between, the top-up stays in the buyer's wallet.

use mizan_core::{AccountId, Money, TransferId};
use mizan_ledger::{
    ledger_of, AccountCode, AccountFlags, BusinessRow, CreateTransferResult, Ledger, NewAccount,
    Submission, TransferRequest, LEDGER_UNITS,
};
use serde::{Deserialize, Serialize};

use crate::identity::{self, Person, PersonId, SharedReader, WALLET_CURRENCY};
use crate::payments::{
    internal, time_ordered_u128, to_json, IdempotencyKey, PaymentError, COLLECTION_IDEMPOTENCY,
    STATUS_CODE_CREATED,
};
use crate::requests::{claim_key, fingerprint, stored_answer, Answer, StoredAnswer};
use crate::subscriptions::CardFallback;
use crate::time::rfc3339_from_ns;

/// An order's money, buyer → seller (the next free code after subscription 7).
pub const TRANSFER_CODE_ORDER: u16 = 8;
/// Units put on sale: stock control → stock.
pub const TRANSFER_CODE_STOCK_OFFERED: u16 = 30;
/// Units sold: stock → stock control.
pub const TRANSFER_CODE_STOCK_SOLD: u16 = 31;

pub const COLLECTION_CHECKOUTS: &str = "checkouts";
pub const COLLECTION_ORDERS: &str = "orders";
/// `{person}:{newest-first time}:{order}` → empty: the orders a person bought or sold.
pub const COLLECTION_ORDERS_BY_PERSON: &str = "orders_by_person";
pub const TOPIC_CHECKOUT_CREATED: &str = "checkout.created";
pub const TOPIC_ORDER_PAID: &str = "order.paid";

pub const ITEM_CHARS_MAX: usize = 80;
/// Highest unit price: $10,000.00.
pub const CHECKOUT_PRICE_MINOR_MAX: i64 = 1_000_000;
/// Most units one card offers.
pub const CHECKOUT_QUANTITY_MAX: i64 = 10_000;
/// Most units one order buys.
pub const ORDER_QUANTITY_MAX: i64 = 100;
/// Most orders a listing answers.
pub const ORDERS_LISTED_MAX: usize = 100;

const STOCK_ACCOUNT_DOMAIN: &[u8] = b"mizan.checkout.stock.v1";
const STOCK_CONTROL_DOMAIN: &[u8] = b"mizan.checkout.stock_control.v1";
const STOCK_OFFERED_DOMAIN: &[u8] = b"mizan.checkout.offered.v1";
const ORDER_ID_DOMAIN: &[u8] = b"mizan.order.v1";
const ORDER_TRANSFER_DOMAIN: &[u8] = b"mizan.order.transfer.v1";
const ORDER_STOCK_DOMAIN: &[u8] = b"mizan.order.stock.v1";
/// A purchase is tried at most twice: from the wallet, then after a card top-up.
const PAY_ATTEMPTS_MAX: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckoutError {
    #[error("an item name is 1 to 80 characters on one line")]
    ItemInvalid,
    #[error("a checkout price is from 0.01 to 10,000.00 USD")]
    PriceInvalid,
    #[error("a quantity is a whole number: 1 to 10,000 offered, 1 to 100 in one order")]
    QuantityInvalid,
    #[error("a checkout card goes in a conversation the other person has written in")]
    ConversationRequired,
    #[error("no such checkout")]
    NotFound,
    #[error("you cannot buy what you offer")]
    OwnOffer,
    #[error("sold out: {remaining} left")]
    SoldOut { remaining: i64 },
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

impl CheckoutError {
    /// The stable code; never change one once published.
    pub fn code(&self) -> &'static str {
        match self {
            CheckoutError::ItemInvalid => "invalid_item",
            CheckoutError::PriceInvalid => "invalid_checkout_price",
            CheckoutError::QuantityInvalid => "invalid_quantity",
            CheckoutError::ConversationRequired => "conversation_required",
            CheckoutError::NotFound => "checkout_not_found",
            CheckoutError::OwnOffer => "cannot_buy_own_offer",
            CheckoutError::SoldOut { .. } => "sold_out",
            CheckoutError::Payment(error) => error.code(),
        }
    }

    /// The input field the error is about, if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            CheckoutError::ItemInvalid => Some("item"),
            CheckoutError::PriceInvalid => Some("price"),
            CheckoutError::QuantityInvalid => Some("quantity"),
            CheckoutError::ConversationRequired
            | CheckoutError::NotFound
            | CheckoutError::OwnOffer
            | CheckoutError::SoldOut { .. } => None,
            CheckoutError::Payment(error) => error.field(),
        }
    }
}

impl From<crate::social::SocialError> for CheckoutError {
    fn from(error: crate::social::SocialError) -> CheckoutError {
        CheckoutError::Payment(error.into())
    }
}

impl From<identity::IdentityError> for CheckoutError {
    fn from(error: identity::IdentityError) -> CheckoutError {
        CheckoutError::Payment(error.into())
    }
}

/// A checkout card, parsed: an item name, a unit price and the quantity offered.
#[derive(Debug, Clone)]
pub struct NewCheckout {
    item: String,
    price: Money,
    quantity: i64,
}

impl NewCheckout {
    pub fn parse(
        item: &str,
        price: &str,
        currency: &str,
        quantity: i64,
    ) -> Result<NewCheckout, CheckoutError> {
        let item = item.trim();
        let item_ok = !item.is_empty()
            && item.chars().count() <= ITEM_CHARS_MAX
            && !item.chars().any(char::is_control);
        if !item_ok {
            return Err(CheckoutError::ItemInvalid);
        }
        let price = crate::payments::parse_amount(price, currency)?;
        if price.minor_units() > CHECKOUT_PRICE_MINOR_MAX {
            return Err(CheckoutError::PriceInvalid);
        }
        if !(1..=CHECKOUT_QUANTITY_MAX).contains(&quantity) {
            return Err(CheckoutError::QuantityInvalid);
        }
        Ok(NewCheckout {
            item: item.to_owned(),
            price,
            quantity,
        })
    }
}

/// How many units one order buys: 1 to [`ORDER_QUANTITY_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderQuantity(i64);

impl OrderQuantity {
    pub fn parse(quantity: i64) -> Result<OrderQuantity, CheckoutError> {
        if (1..=ORDER_QUANTITY_MAX).contains(&quantity) {
            Ok(OrderQuantity(quantity))
        } else {
            Err(CheckoutError::QuantityInvalid)
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A checkout card as its two people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutView {
    pub id: String,
    pub thread_id: String,
    /// The seller's handle.
    pub seller: String,
    /// The handle of the person it is offered to.
    pub buyer: String,
    pub item: String,
    /// The unit price, major units.
    pub price: String,
    pub currency: String,
    /// Units offered.
    pub quantity: i64,
    /// Units still for sale, as the ledger's stock account holds them.
    pub remaining: i64,
    /// Whether the viewer is one of the thread's two people (else `thread_id` and
    /// `buyer` are not theirs to see). Set when read, never stored or sent in events.
    #[serde(default, skip_serializing)]
    pub party: bool,
    /// The stock account on the units ledger.
    pub stock_account_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckoutDocument {
    /// Person ids under the names webhook routing knows: the buyer pays the seller.
    payer: String,
    payee: String,
    price_minor: i64,
    /// SHA-256 of the creating request, for replays under one key.
    request_sha256: String,
    view: CheckoutView,
}

/// An order as its two people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub id: String,
    pub checkout_id: String,
    pub seller: String,
    pub buyer: String,
    pub item: String,
    pub quantity: i64,
    pub unit_price: String,
    pub amount: String,
    pub currency: String,
    /// `paid`: the money and the units moved together.
    pub status: String,
    /// Whether the buyer's default card topped the wallet up for it.
    pub funded_from_card: bool,
    pub transfer_id: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderDocument {
    payer: String,
    payee: String,
    amount_minor: i64,
    view: OrderView,
}

/// An order in a listing, with the viewer's side of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// True when the viewer bought it, false when they sold it.
    pub bought: bool,
    pub order: OrderView,
}

fn account(domain: &[u8], checkout: u128) -> Result<AccountId, PaymentError> {
    AccountId::new(crate::ids::hashed(domain, &[&checkout.to_be_bytes()]))
        .map_err(|error| internal("stock account id", error))
}

/// A transfer of a checkout or an order, sorting next to the object's own id.
fn transfer(domain: &[u8], id: u128) -> Result<TransferId, PaymentError> {
    TransferId::new(crate::ids::beside(id, domain, &[]))
        .map_err(|error| internal("checkout transfer id", error))
}

fn parse_id(id: &str) -> Result<u128, CheckoutError> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(CheckoutError::NotFound);
    }
    u128::from_str_radix(id, 16).map_err(|_| CheckoutError::NotFound)
}

/// Units left on a stock account.
async fn remaining(reader: &SharedReader, stock: AccountId) -> Result<i64, PaymentError> {
    let shared = reader.clone();
    let accounts = shared
        .read(move |r| r.accounts(&[stock]))
        .await
        .map_err(|error| internal("reading task", error))?
        .map_err(|error| internal("reading stock", error))?;
    let stock = accounts
        .first()
        .ok_or_else(|| internal("missing stock account", stock))?;
    Ok(stock.credits_posted - stock.debits_posted)
}

/// The seller posts a checkout card in their thread with `buyer_handle`, once per
/// key when one is given. The buyer must have written in the thread first, so
/// nobody gets cards they did not ask for.
#[tracing::instrument(skip_all, fields(seller = %seller.id))]
pub async fn create(
    ledger: &Ledger,
    reader: &SharedReader,
    seller: &Person,
    buyer_handle: &str,
    offer: NewCheckout,
    key: Option<IdempotencyKey>,
    now_ns: u64,
) -> Result<Answer<CheckoutView>, CheckoutError> {
    let buyer = crate::social::person_of(reader, buyer_handle).await?;
    if buyer.id == seller.id {
        return Err(PaymentError::CannotPayYourself.into());
    }
    let (thread, buyer_wrote) =
        crate::messages::thread_written_by(reader, seller.id, buyer.id, buyer.id).await?;
    if !buyer_wrote {
        return Err(CheckoutError::ConversationRequired);
    }
    let request_sha256 = fingerprint(&serde_json::json!({
        "buyer": buyer.handle.as_str(),
        "item": offer.item,
        "price_minor": offer.price.minor_units(),
        "quantity": offer.quantity,
    }))?;
    // Under a key, a claim commits with the card: a retry replays it.
    let creation = key.as_ref().map(|key| {
        let scope = format!("person:{}:checkouts", seller.id);
        crate::creation::Creation::new(&scope, key, &request_sha256, now_ns)
    });
    if let Some(replay) = crate::creation::replay_used(creation.as_ref(), reader)
        .await
        .map_err(PaymentError::from)?
    {
        return replayed_card(reader, replay).await;
    }
    let raw_id = loop {
        let raw: u128 = rand::random();
        if raw != 0 && raw != u128::MAX {
            break raw;
        }
    };
    let id = format!("{raw_id:032x}");
    let stock = account(STOCK_ACCOUNT_DOMAIN, raw_id)?;
    let control = account(STOCK_CONTROL_DOMAIN, raw_id)?;
    let view = CheckoutView {
        id: id.clone(),
        thread_id: thread.clone(),
        seller: seller.handle.as_str().to_owned(),
        buyer: buyer.handle.as_str().to_owned(),
        item: offer.item.clone(),
        price: offer.price.format_major(),
        currency: offer.price.currency().code().to_owned(),
        quantity: offer.quantity,
        remaining: offer.quantity,
        party: true,
        stock_account_id: stock.to_string(),
        created_at: rfc3339_from_ns(now_ns),
    };
    let document = CheckoutDocument {
        payer: buyer.id.to_string(),
        payee: seller.id.to_string(),
        price_minor: offer.price.minor_units(),
        request_sha256: request_sha256.clone(),
        view: view.clone(),
    };
    let body = to_json(&document)?;
    let (_, message_row) =
        crate::messages::checkout_message(&thread, seller, &buyer, &offer.item, &id, now_ns)?;
    let stock_account = |id, code, flags| NewAccount {
        id,
        ledger: LEDGER_UNITS,
        code,
        owner: seller.id.get(),
        flags,
    };
    let mut submission = Submission {
        accounts: vec![
            stock_account(control, AccountCode::StockControl, AccountFlags::NONE),
            stock_account(
                stock,
                AccountCode::Stock,
                AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
            ),
        ],
        transfers: vec![TransferRequest::single(
            transfer(STOCK_OFFERED_DOMAIN, raw_id)?,
            control,
            stock,
            offer.quantity,
            LEDGER_UNITS,
            TRANSFER_CODE_STOCK_OFFERED,
        )
        .with_reference(raw_id)],
        rows: vec![
            BusinessRow::Create {
                collection: COLLECTION_CHECKOUTS.to_owned(),
                key: id.clone(),
                body: body.clone(),
            },
            message_row,
            crate::outbox::event_row(TOPIC_CHECKOUT_CREATED, &body, now_ns),
        ],
        atomic: true,
        ..Submission::default()
    };
    if let Some(creation) = &creation {
        let claim = creation
            .answer_row(&id, &view)
            .map_err(PaymentError::from)?;
        submission.rows.push(claim);
    }
    let result = ledger
        .submit(submission)
        .await
        .map_err(|error| internal("posting a checkout", error))?;
    if let Some((collection, _)) = &result.row_conflict {
        // Only the key's claim can be taken (the card's id is random): a replay.
        let replay = crate::creation::replay_conflict(creation.as_ref(), collection, reader)
            .await
            .map_err(PaymentError::from)?
            .ok_or_else(|| internal("checkout id taken", &id))?;
        return replayed_card(reader, replay).await;
    }
    if !result.all_ok() {
        return Err(internal("checkout stock", format!("{result:?}")).into());
    }
    tracing::info!(checkout = %id, "checkout card posted");
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: view,
        replayed: false,
    })
}

/// The card a key's claim answered, as it is now (its remaining stock).
async fn replayed_card(
    reader: &SharedReader,
    replay: crate::creation::Replay,
) -> Result<Answer<CheckoutView>, CheckoutError> {
    let crate::creation::Replay::Response(first) = replay;
    let first: CheckoutView =
        serde_json::from_value(first).map_err(|error| internal("stored checkout answer", error))?;
    let stored = read_document(reader, &first.id).await?;
    Ok(Answer {
        status: STATUS_CODE_CREATED,
        body: with_remaining(reader, stored, true).await?,
        replayed: true,
    })
}

async fn read_document(reader: &SharedReader, id: &str) -> Result<CheckoutDocument, CheckoutError> {
    let body = identity::read_document(reader, COLLECTION_CHECKOUTS, id.to_owned())
        .await?
        .ok_or(CheckoutError::NotFound)?;
    serde_json::from_slice(&body).map_err(|error| internal("stored checkout", error).into())
}

async fn with_remaining(
    reader: &SharedReader,
    document: CheckoutDocument,
    party: bool,
) -> Result<CheckoutView, CheckoutError> {
    let stock: AccountId = document
        .view
        .stock_account_id
        .parse()
        .map_err(|error| internal("stored stock account", error))?;
    let mut view = document.view;
    view.remaining = remaining(reader, stock).await?;
    view.party = party;
    Ok(view)
}

/// A checkout card, with the units left, for anyone who has its id; an id no card has
/// is `checkout_not_found`. [`CheckoutView::party`] says whether the viewer is one of
/// its thread's two people.
pub async fn checkout_for(
    reader: &SharedReader,
    viewer: PersonId,
    id: &str,
) -> Result<CheckoutView, CheckoutError> {
    parse_id(id)?;
    let document = read_document(reader, &id.to_ascii_lowercase()).await?;
    let me = viewer.to_string();
    let party = document.payer == me || document.payee == me;
    with_remaining(reader, document, party).await
}

/// What one purchase attempt builds: the submission and how to read its answer.
struct Purchase {
    submission: Submission,
    order: OrderView,
    charge: crate::limits::Charge,
}

#[allow(clippy::too_many_arguments)]
fn purchase(
    document: &CheckoutDocument,
    buyer: &Person,
    quantity: OrderQuantity,
    key: &IdempotencyKey,
    claim: &str,
    request_sha256: &str,
    charge: crate::limits::Charge,
    funded_from_card: bool,
    now_ns: u64,
) -> Result<Purchase, CheckoutError> {
    let amount_minor = document
        .price_minor
        .checked_mul(quantity.get())
        .ok_or(PaymentError::AmountTooLarge)?;
    let amount = Money::from_minor(amount_minor, WALLET_CURRENCY);
    let order_id = time_ordered_u128(ORDER_ID_DOMAIN, buyer.id, key, now_ns);
    let money_id = transfer(ORDER_TRANSFER_DOMAIN, order_id)?;
    let checkout_raw = parse_id(&document.view.id)?;
    let stock = account(STOCK_ACCOUNT_DOMAIN, checkout_raw)?;
    let control = account(STOCK_CONTROL_DOMAIN, checkout_raw)?;
    let seller = PersonId::parse(&document.payee)?;
    let order = OrderView {
        id: format!("{order_id:032x}"),
        checkout_id: document.view.id.clone(),
        seller: document.view.seller.clone(),
        buyer: buyer.handle.as_str().to_owned(),
        item: document.view.item.clone(),
        quantity: quantity.get(),
        unit_price: document.view.price.clone(),
        amount: amount.format_major(),
        currency: WALLET_CURRENCY.code().to_owned(),
        status: "paid".to_owned(),
        funded_from_card,
        transfer_id: money_id.to_string(),
        created_at: rfc3339_from_ns(now_ns),
    };
    let mut transfers = vec![
        TransferRequest::single(
            money_id,
            buyer.id.wallet_id(WALLET_CURRENCY)?,
            seller.wallet_id(WALLET_CURRENCY)?,
            amount_minor,
            ledger_of(WALLET_CURRENCY),
            TRANSFER_CODE_ORDER,
        )
        .with_reference(order_id),
        TransferRequest::single(
            transfer(ORDER_STOCK_DOMAIN, order_id)?,
            stock,
            control,
            quantity.get(),
            LEDGER_UNITS,
            TRANSFER_CODE_STOCK_SOLD,
        )
        .with_reference(order_id),
    ];
    // The allowance legs go last, where `Charge::settle` looks for them.
    transfers.extend(charge.legs(money_id, amount_minor)?);
    let body = to_json(&OrderDocument {
        payer: buyer.id.to_string(),
        payee: document.payee.clone(),
        amount_minor,
        view: order.clone(),
    })?;
    let newest_first = u64::MAX - now_ns;
    let mut rows = vec![
        BusinessRow::Create {
            collection: COLLECTION_IDEMPOTENCY.to_owned(),
            key: claim.to_owned(),
            body: to_json(&StoredAnswer {
                request_sha256: request_sha256.to_owned(),
                claimed_at_ns: now_ns,
                status: STATUS_CODE_CREATED,
                response: order.clone(),
            })?,
        },
        BusinessRow::Document {
            collection: COLLECTION_ORDERS.to_owned(),
            key: order.id.clone(),
            body: body.clone(),
        },
    ];
    for person in [buyer.id, seller] {
        rows.push(BusinessRow::Document {
            collection: COLLECTION_ORDERS_BY_PERSON.to_owned(),
            key: format!("{person}:{newest_first:020}:{}", order.id),
            body: Vec::new(),
        });
    }
    rows.push(crate::outbox::event_row(TOPIC_ORDER_PAID, &body, now_ns));
    Ok(Purchase {
        submission: Submission {
            transfers,
            rows,
            atomic: true,
            ensure: charge.ensure(),
            ..Submission::default()
        },
        order,
        charge,
    })
}

/// The buyer pays for `quantity` units of a checkout, once per key: wallet first,
/// then (with `fallback`) the default saved card when the wallet is short. More
/// units than are left is `SoldOut` with nothing moved.
#[tracing::instrument(skip_all, fields(buyer = %buyer.id))]
#[allow(clippy::too_many_arguments)]
pub async fn pay(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    fallback: Option<CardFallback<'_>>,
    buyer: &Person,
    checkout_id: &str,
    quantity: OrderQuantity,
    key: IdempotencyKey,
    now_ns: u64,
) -> Result<Answer<OrderView>, CheckoutError> {
    parse_id(checkout_id)?;
    let document = read_document(reader, &checkout_id.to_ascii_lowercase()).await?;
    let me = buyer.id.to_string();
    if document.payee == me {
        return Err(CheckoutError::OwnOffer);
    }
    let request_sha256 = fingerprint(&serde_json::json!({
        "checkout": document.view.id,
        "quantity": quantity.get(),
    }))?;
    let claim = claim_key("order", buyer.id, &key);
    if let Some(answer) = stored_answer(reader, claim.clone(), &request_sha256).await? {
        return Ok(answer);
    }
    let mut funded_from_card = false;
    for _ in 0..PAY_ATTEMPTS_MAX {
        let charge = crate::limits::prepare(
            reader,
            limits,
            buyer.id,
            crate::limits::Movement::Send,
            now_ns,
        )
        .await?;
        let attempt = purchase(
            &document,
            buyer,
            quantity,
            &key,
            &claim,
            &request_sha256,
            charge,
            funded_from_card,
            now_ns,
        )?;
        let result = ledger
            .submit(attempt.submission)
            .await
            .map_err(|error| internal("paying a checkout", error))?;
        if let Some((collection, _)) = &result.row_conflict {
            if collection != COLLECTION_IDEMPOTENCY {
                return Err(internal("unexpected row conflict", collection).into());
            }
            return stored_answer(reader, claim, &request_sha256)
                .await?
                .ok_or_else(|| internal("claim taken but unreadable", &attempt.order.id).into());
        }
        // Units before money: an offer without enough units left is sold out, whatever
        // the wallet holds.
        let stock = result.transfers.get(1).map(|outcome| outcome.result);
        if stock == Some(CreateTransferResult::ExceedsCredits) {
            let stock_account = attempt_stock(&document)?;
            return Err(CheckoutError::SoldOut {
                remaining: remaining(reader, stock_account).await?,
            });
        }
        match attempt.charge.settle(&result.transfers)? {
            CreateTransferResult::Ok => {
                tracing::info!(order = %attempt.order.id, "checkout paid");
                return Ok(Answer {
                    status: STATUS_CODE_CREATED,
                    body: attempt.order,
                    replayed: false,
                });
            }
            CreateTransferResult::ExceedsCredits => {}
            other => return Err(internal("order transfer", format!("{other:?}")).into()),
        }
        let topped_up = match (fallback, funded_from_card) {
            (Some(fallback), false) => {
                top_up(
                    ledger,
                    reader,
                    limits,
                    fallback,
                    buyer,
                    &attempt.order,
                    now_ns,
                )
                .await?
            }
            _ => false,
        };
        if !topped_up {
            return Err(PaymentError::InsufficientFunds.into());
        }
        funded_from_card = true;
    }
    Err(PaymentError::InsufficientFunds.into())
}

fn attempt_stock(document: &CheckoutDocument) -> Result<AccountId, CheckoutError> {
    Ok(account(STOCK_ACCOUNT_DOMAIN, parse_id(&document.view.id)?)?)
}

/// Tops the buyer's wallet up by the order's amount from their default card, once
/// per order. False without a default card, or when the card was declined or asks
/// for a challenge.
async fn top_up(
    ledger: &Ledger,
    reader: &SharedReader,
    limits: &crate::limits::LimitsTable,
    fallback: CardFallback<'_>,
    buyer: &Person,
    order: &OrderView,
    now_ns: u64,
) -> Result<bool, CheckoutError> {
    let amount = crate::payments::parse_amount(&order.amount, &order.currency)?;
    let key = IdempotencyKey::parse(&format!("order-{}", order.id))?;
    let funded = crate::funding::charge_default_card(
        ledger,
        reader,
        limits,
        fallback.processor,
        fallback.vault,
        buyer.id,
        amount,
        key,
        now_ns,
    )
    .await;
    match funded {
        Ok(outcome) => Ok(!outcome.requires_action),
        Err(PaymentError::Internal(detail)) => Err(PaymentError::Internal(detail).into()),
        // A declined or missing card, or a funding limit: the wallet stays short.
        Err(error) => {
            tracing::info!(
                code = error.code(),
                "checkout top-up from the default card failed"
            );
            Ok(false)
        }
    }
}

/// The orders a person bought or sold, newest first (at most `limit`, 1..=100).
pub async fn orders_of(
    reader: &SharedReader,
    person: PersonId,
    limit: usize,
) -> Result<Vec<OrderLine>, CheckoutError> {
    let rows = crate::documents::with_prefix(
        reader,
        COLLECTION_ORDERS_BY_PERSON,
        format!("{person}:"),
        None,
        limit.clamp(1, ORDERS_LISTED_MAX),
    )
    .await
    .map_err(|error| internal("orders", error))?;
    let me = person.to_string();
    let mut lines = Vec::with_capacity(rows.len());
    for (key, _) in rows {
        let Some(id) = key.rsplit(':').next() else {
            continue;
        };
        let body = identity::read_document(reader, COLLECTION_ORDERS, id.to_owned())
            .await?
            .ok_or_else(|| internal("index of a missing order", id))?;
        let document: OrderDocument =
            serde_json::from_slice(&body).map_err(|error| internal("stored order", error))?;
        lines.push(OrderLine {
            bought: document.payer == me,
            order: document.view,
        });
    }
    Ok(lines)
}

/// The order behind a ledger transfer's reference, for the activity feed.
pub async fn order_of_reference(
    reader: &SharedReader,
    reference: u128,
) -> Result<Option<OrderView>, PaymentError> {
    let key = format!("{reference:032x}");
    match identity::read_document(reader, COLLECTION_ORDERS, key).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice::<OrderDocument>(&body)
            .map(|document| Some(document.view))
            .map_err(|error| internal("stored order", error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_and_orders_are_bounded() {
        assert!(NewCheckout::parse("Mug", "12.00", "USD", 5).is_ok());
        let code = |result: Result<NewCheckout, CheckoutError>| result.err().map(|e| e.code());
        assert_eq!(
            code(NewCheckout::parse(" ", "1.00", "USD", 1)),
            Some("invalid_item")
        );
        assert_eq!(
            code(NewCheckout::parse(&"x".repeat(81), "1.00", "USD", 1)),
            Some("invalid_item")
        );
        assert_eq!(
            code(NewCheckout::parse("a\nb", "1.00", "USD", 1)),
            Some("invalid_item")
        );
        assert_eq!(
            code(NewCheckout::parse("Mug", "10000.01", "USD", 1)),
            Some("invalid_checkout_price")
        );
        assert_eq!(
            code(NewCheckout::parse("Mug", "0", "USD", 1)),
            Some("amount_must_be_positive")
        );
        assert_eq!(
            code(NewCheckout::parse("Mug", "1.00", "USD", 0)),
            Some("invalid_quantity")
        );
        assert_eq!(
            code(NewCheckout::parse("Mug", "1.00", "USD", 10_001)),
            Some("invalid_quantity")
        );
        assert!(OrderQuantity::parse(1).is_ok());
        assert!(OrderQuantity::parse(100).is_ok());
        assert!(OrderQuantity::parse(0).is_err());
        assert!(OrderQuantity::parse(101).is_err());
    }

    #[test]
    fn stock_accounts_are_distinct_per_offer() {
        let a = account(STOCK_ACCOUNT_DOMAIN, 1).map(|id| id.get()).ok();
        let b = account(STOCK_ACCOUNT_DOMAIN, 2).map(|id| id.get()).ok();
        let control = account(STOCK_CONTROL_DOMAIN, 1).map(|id| id.get()).ok();
        assert_ne!(a, b);
        assert_ne!(a, control);
    }
}
