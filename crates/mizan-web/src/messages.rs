//! Message pages: the inbox (threads and the priority inbox of paid DMs), a thread
//! with its messages and a box to write, the paid-DM price in settings, and accept /
//! decline on a paid DM. A message to someone who charges for it shows the price and
//! asks to confirm; the sender always sees each paid DM's status. A seller posts a
//! checkout card in a thread the buyer wrote in; the buyer pays it with one click
//! (`mizan_app::checkout`) and finds the order on `/orders`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use mizan_api::AppState;
use mizan_app::checkout::{self, CheckoutError, CheckoutView, NewCheckout, OrderQuantity};
use mizan_app::identity::{PersonId, WALLET_CURRENCY};
use mizan_app::messages::{self, MessageText, MessageView, PaidDmPolicy, PaidDmStatus, PaidDmView};
use mizan_app::payments::{self, IdempotencyKey, PaymentError};
use mizan_app::requests::{self, ActivityItem};
use mizan_core::{Clock, Money, SystemClock};

use crate::i18n::{self, Lang, T};
use crate::layout::{self, csrf_field, form_error, key_field, page, submit, Field};
use crate::visitor::{form_key, random_token, Form, Visitor};
use crate::WebError;

/// Messages a thread page shows.
const MESSAGES_SHOWN: usize = 50;

fn now_ns() -> u64 {
    SystemClock.now_ns()
}

fn ledger(state: &AppState, lang: Lang) -> Result<mizan_ledger::Ledger, WebError> {
    state
        .ledger()
        .ok_or_else(|| WebError::Internal(lang, "shutting down".to_owned()))
}

fn policy(state: &AppState) -> PaidDmPolicy {
    PaidDmPolicy {
        cut_bps: state.config().paid_dm_cut_bps,
        timeout_seconds: state.config().paid_dm_timeout_seconds,
    }
}

fn failed(lang: Lang) -> impl Fn(PaymentError) -> WebError {
    move |error| match error {
        PaymentError::RecipientNotFound | PaymentError::PaidDmNotFound => WebError::NotFound(lang),
        other => WebError::Internal(lang, other.to_string()),
    }
}

fn status_text(lang: Lang, status: PaidDmStatus) -> &'static str {
    match status {
        PaidDmStatus::Pending => T::DmPending.get(lang),
        PaidDmStatus::Paid => T::DmPaid.get(lang),
        PaidDmStatus::Declined => T::DmDeclined.get(lang),
        PaidDmStatus::Expired => T::DmExpired.get(lang),
    }
}

fn price_text(lang: Lang, dm: &PaidDmView) -> String {
    i18n::stored_money(lang, &dm.price, &dm.currency)
}

#[derive(serde::Deserialize)]
pub struct InboxQuery {
    to: Option<String>,
}

/// `GET /messages`: threads, and the paid DMs waiting for an answer; with `?to=` it
/// goes to the thread with that person.
pub async fn inbox_page(
    State(state): State<AppState>,
    visitor: Visitor,
    axum::extract::Query(query): axum::extract::Query<InboxQuery>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    if let Some(to) = query
        .to
        .as_deref()
        .map(str::trim)
        .filter(|to| !to.is_empty())
    {
        let to = to.trim_start_matches('@');
        return Ok(layout::redirect(&format!(
            "/messages/{}",
            layout::query_escape(to)
        )));
    }
    let reader = state.reader();
    let threads = messages::threads_of(&reader, person.id)
        .await
        .map_err(failed(lang))?;
    let priority = messages::priority_inbox(&reader, person.id)
        .await
        .map_err(failed(lang))?;
    let settings = messages::dm_settings(&reader, person.id)
        .await
        .map_err(failed(lang))?;
    let content = html! {
        form.inline.new-message method="get" action="/messages" {
            (Field::new("to", T::To.get(lang)).list("handle-suggestions").hint(T::HandleHint.get(lang)).render())
            datalist #handle-suggestions {}
            button type="submit" { (T::Write.get(lang)) }
        }
        @if !priority.is_empty() {
            section aria-labelledby="priority-title" {
                h2 #priority-title { (T::PriorityInbox.get(lang)) }
                ul.requests {
                    @for dm in &priority {
                        li.request id={ "paid-dm-" (dm.id) } {
                            a.who href={ "/messages/" (dm.from) } { bdi { "@" (dm.from) } }
                            span.amount { bdi { (price_text(lang, dm)) } }
                            span.status { (status_text(lang, dm.status)) }
                            @if dm.status == PaidDmStatus::Pending {
                                span.hint { (T::AnswerBy.get(lang)) " " (i18n::date_time(lang, &dm.expires_at)) }
                                form.inline method="post" action={ "/paid-dms/" (dm.id) "/decline" } {
                                    (csrf_field(&visitor))
                                    button type="submit" data-busy=(T::Working.get(lang)) { (T::Decline.get(lang)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        p { a href="/orders" { (T::Orders.get(lang)) } }
        section aria-labelledby="threads-title" {
            h2 #threads-title { (T::Conversations.get(lang)) }
            @if threads.is_empty() { p { (T::NoMessages.get(lang)) } }
            ul.apps {
                @for thread in &threads {
                    li { a href={ "/messages/" (thread.with) } { bdi { "@" (thread.with) } } }
                }
            }
        }
        section aria-labelledby="price-title" {
            h2 #price-title { (T::PaidDms.get(lang)) }
            p.hint { (T::PaidDmsHint.get(lang)) }
            (price_form(&visitor, settings.paid_dms.then(|| Money::from_minor(settings.price_minor, WALLET_CURRENCY).format_major()).as_deref().unwrap_or(""), None))
        }
    };
    Ok(page(
        &visitor,
        StatusCode::OK,
        T::Messages.get(lang),
        content,
    ))
}

fn price_form(visitor: &Visitor, price: &str, error: Option<&str>) -> Markup {
    let lang = visitor.lang;
    html! {
        form.card method="post" action="/dm-price" novalidate {
            (csrf_field(visitor))
            (Field::new("price", T::DmPrice.get(lang)).value(price).optional().inputmode("decimal")
                .hint(T::DmPriceHint.get(lang)).error(error).render())
            (submit(T::Save.get(lang), T::Working.get(lang)))
        }
    }
}

/// `POST /dm-price`: an empty price turns paid DMs off.
pub async fn set_price(
    State(state): State<AppState>,
    visitor: Visitor,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let price = match form.get("price") {
        "" => Ok(None),
        text => i18n::typed_amount(text).map(Some),
    };
    let ledger = ledger(&state, lang)?;
    let saved = match price {
        Ok(price) => messages::set_dm_price(&ledger, person, price).await,
        Err(error) => Err(error),
    };
    match saved {
        Ok(_) => Ok(layout::redirect("/messages")),
        Err(PaymentError::Internal(detail)) => Err(WebError::Internal(lang, detail)),
        Err(_) => {
            let content = price_form(&visitor, form.get("price"), Some(T::ErrDmPrice.get(lang)));
            Ok(page(
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                T::PaidDms.get(lang),
                content,
            ))
        }
    }
}

/// `GET /messages/{handle}`.
pub async fn thread_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(handle): Path<String>,
) -> Result<Response, WebError> {
    render_thread(
        &state,
        &visitor,
        &handle,
        &Form::default(),
        Problems::default(),
        None,
        StatusCode::OK,
    )
    .await
}

/// What went wrong with a form of the thread page, shown next to it.
#[derive(Default, Clone, Copy)]
struct Problems<'a> {
    /// The message box.
    message: Option<&'a str>,
    /// The pay form of one card: its id, the problem, and whether to ask for a code.
    card: Option<(&'a str, &'a str, bool)>,
    /// The form that posts a card.
    sell: Option<&'a str>,
}

async fn render_thread(
    state: &AppState,
    visitor: &Visitor,
    handle: &str,
    form: &Form,
    problems: Problems<'_>,
    price: Option<Money>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let problem = problems.message;
    let lang = visitor.lang;
    let person = visitor.person()?;
    let reader = state.reader();
    let list = messages::thread_messages(&reader, person, handle, MESSAGES_SHOWN)
        .await
        .map_err(failed(lang))?;
    let other = mizan_app::social::person_of(&reader, handle)
        .await
        .map_err(|_| WebError::NotFound(lang))?;
    let other_handle = other.handle.as_str();
    let mut cards = Vec::with_capacity(list.len());
    for message in &list {
        let dm = match &message.paid_dm_id {
            Some(id) => Some(
                messages::paid_dm(&reader, person.id, id)
                    .await
                    .map_err(failed(lang))?,
            ),
            None => None,
        };
        let card = match &message.checkout_id {
            Some(id) => Some(
                checkout::checkout_for(&reader, person.id, id)
                    .await
                    .map_err(checkout_failed(lang))?,
            ),
            None => None,
        };
        cards.push((message, dm, card));
    }
    // Money between the two shows in the conversation as cards, in time order.
    let payments = payments_between(state, person.id, other_handle, lang).await?;
    let mut timeline: Vec<Entry<'_>> = cards
        .iter()
        .map(|(message, dm, card)| match card {
            Some(card) => Entry::Card(message, card),
            None => Entry::Message(message, dm.as_ref()),
        })
        .chain(payments.iter().map(Entry::Payment))
        .collect();
    timeline.sort_by(|a, b| a.at().cmp(b.at()));
    let content = html! {
        p.thread-actions {
            a.button href={ "/send?to=" (layout::query_escape(other_handle)) } { (T::SendMoney.get(lang)) }
            " "
            a.button href={ "/request?from=" (layout::query_escape(other_handle)) } { (T::AskForMoney.get(lang)) }
        }
        ol.thread {
            @for entry in &timeline {
              @match entry {
                Entry::Card(message, card) => {
                    (card_item(visitor, message, card, problems.card))
                }
                Entry::Payment(item) => {
                    @let mine = item.direction == "out";
                    li.message.payment-card.mine[mine] data-payment=[item.payment_id.as_deref()] {
                        p.text {
                            @let amount = i18n::stored_money(lang, &item.amount, &item.currency);
                            @if mine {
                                (T::YouSent.get(lang)) " " bdi.amount { (amount) }
                            } @else {
                                (T::SentYou.get(lang)) " " bdi.amount { (amount) }
                            }
                            @if !item.note.is_empty() { " · " bdi { (item.note) } }
                        }
                        @if let Some(id) = &item.payment_id {
                            a href={ "/receipts/" (id) } { (T::Receipt.get(lang)) }
                            " "
                        }
                        time datetime=(item.timestamp) { (i18n::date_time(lang, &item.timestamp)) }
                    }
                }
                Entry::Message(message, dm) => {
                @let mine = message.from == person.handle.as_str();
                li.message.mine[mine] {
                    p.text { (message.text) }
                    @if let Some(dm) = dm {
                        p.paid-dm {
                            (T::PaidDm.get(lang)) ": " bdi { (price_text(lang, dm)) } " · "
                            span.dm-status { (status_text(lang, dm.status)) }
                            @if !mine && dm.status == PaidDmStatus::Pending {
                                " · " (T::ReplyToAccept.get(lang))
                            }
                        }
                    }
                    time datetime=(message.created_at) { (i18n::date_time(lang, &message.created_at)) }
                }
                }
              }
            }
        }
        form.card method="post" action={ "/messages/" (other_handle) } novalidate {
            (csrf_field(visitor))
            (key_field(&random_token()))
            @if let Some(price) = price {
                p.notice role="status" {
                    (T::CostsToMessage.get(lang)) " " bdi { (i18n::money(lang, price)) } ". " (T::CostsHint.get(lang))
                }
                input type="hidden" name="offer" value=(price.format_major());
            }
            @if let Some(problem) = problem { (form_error(problem)) }
            div.field {
                label for="field-text" { (T::Message.get(lang)) }
                textarea #field-text name="text" rows="3" maxlength="2000" required { (form.get("text")) }
            }
            @if let Some(price) = price {
                (submit(&format!("{} {}", T::PayAndSend.get(lang), i18n::money(lang, price)), T::Sending.get(lang)))
            } @else {
                (submit(T::SendMessage.get(lang), T::Sending.get(lang)))
            }
        }
        (sell_form(visitor, other_handle, form, problems.sell))
    };
    let title = format!("@{other_handle}");
    Ok(page(visitor, status, &title, content))
}

/// One thing in a conversation: a message (with its paid DM), a checkout card, or
/// money that moved.
enum Entry<'a> {
    Message(&'a MessageView, Option<&'a PaidDmView>),
    Card(&'a MessageView, &'a CheckoutView),
    Payment(&'a ActivityItem),
}

impl Entry<'_> {
    /// RFC 3339 UTC to the second: ordering by text is ordering by time.
    fn at(&self) -> &str {
        match self {
            Entry::Message(message, _) | Entry::Card(message, _) => &message.created_at,
            Entry::Payment(item) => &item.timestamp,
        }
    }
}

/// The newest P2P payments between the signed-in person and `handle`, oldest first.
async fn payments_between(
    state: &AppState,
    person: PersonId,
    handle: &str,
    lang: Lang,
) -> Result<Vec<ActivityItem>, WebError> {
    let limit = MESSAGES_SHOWN.to_string();
    let query = requests::ActivityQuery::parse(Some(&limit), None, None)
        .and_then(|query| query.with_counterparty(Some(handle)))
        .map_err(failed(lang))?;
    let mut items = requests::activity(&state.reader(), person, query)
        .await
        .map_err(failed(lang))?
        .items;
    items.reverse();
    Ok(items)
}

/// `POST /messages/{handle}`.
pub async fn send(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(handle): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let Ok(text) = MessageText::parse(form.get("text")) else {
        let problem = T::ErrMessage.get(lang);
        return render_thread(
            &state,
            &visitor,
            &handle,
            &form,
            Problems {
                message: Some(problem),
                ..Problems::default()
            },
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let offer = match form.get("offer") {
        "" => None,
        text => i18n::typed_amount(text).ok(),
    };
    let key = IdempotencyKey::parse(&form_key(&form, "message"))
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let ledger = ledger(&state, lang)?;
    let sent = messages::send_message(
        &ledger,
        &state.reader(),
        &state.config().limits,
        person,
        &handle,
        text,
        offer,
        key,
        policy(&state),
        now_ns(),
    )
    .await;
    drop(ledger);
    let (problem, price) = match sent {
        Ok(_) => return Ok(layout::redirect(&format!("/messages/{handle}"))),
        // The price is shown and the person confirms with a new key.
        Err(PaymentError::PaidDmRequired(price)) => (None, Some(price)),
        Err(PaymentError::InsufficientFunds) => (Some(T::ErrFunds.get(lang)), None),
        Err(PaymentError::CannotPayYourself) => (Some(T::ErrSelfMessage.get(lang)), None),
        Err(PaymentError::IdempotencyRequestInProgress) => (Some(T::ErrInProgress.get(lang)), None),
        Err(PaymentError::LimitExceeded { .. }) => (Some(T::ErrLimit.get(lang)), None),
        Err(PaymentError::CapabilityUnavailable { .. }) => {
            (Some(T::ErrUnavailable.get(lang)), None)
        }
        Err(PaymentError::VerificationRequired { .. }) => (Some(T::ErrVerify.get(lang)), None),
        Err(PaymentError::AccountFrozen) => (Some(T::ErrFrozen.get(lang)), None),
        Err(error) => return Err(failed(lang)(error)),
    };
    render_thread(
        &state,
        &visitor,
        &handle,
        &form,
        Problems {
            message: problem,
            ..Problems::default()
        },
        price,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// `POST /paid-dms/{id}/decline` (and `/accept`).
pub async fn settle(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    visitor.check_form(&Form::parse(&body))?;
    let accept = match action.as_str() {
        "accept" => true,
        "decline" => false,
        _ => return Err(WebError::NotFound(lang)),
    };
    let ledger = ledger(&state, lang)?;
    match messages::settle_paid_dm(&ledger, &state.reader(), person, &id, accept, now_ns()).await {
        Ok(_) | Err(PaymentError::PaidDmNotPending) => Ok(layout::redirect("/messages")),
        Err(PaymentError::RequestActionNotAllowed) => Err(WebError::NotFound(lang)),
        Err(error) => Err(failed(lang)(error)),
    }
}

fn checkout_failed(lang: Lang) -> impl Fn(CheckoutError) -> WebError {
    move |error| match error {
        CheckoutError::NotFound => WebError::NotFound(lang),
        CheckoutError::Payment(error) => failed(lang)(error),
        other => WebError::Internal(lang, other.to_string()),
    }
}

/// A checkout card in the thread: the item, its price and what is left, and for the
/// buyer a one-click pay form.
fn card_item(
    visitor: &Visitor,
    message: &MessageView,
    card: &CheckoutView,
    problem: Option<(&str, &str, bool)>,
) -> Markup {
    let lang = visitor.lang;
    let mine = visitor
        .caller
        .as_ref()
        .is_some_and(|caller| caller.person.handle.as_str() == card.seller);
    let price = i18n::stored_money(lang, &card.price, &card.currency);
    let problem = problem.filter(|(id, _, _)| *id == card.id);
    let left = i18n::numerals(lang, &card.remaining.to_string());
    html! {
        li.message.checkout-card.mine[mine] data-checkout=(card.id) {
            p.item { bdi { (card.item) } }
            p { bdi.amount { (price) } " · "
                @if card.remaining > 0 {
                    span.stock { (left) " " (T::UnitsLeft.get(lang)) }
                } @else {
                    span.stock.sold-out { (T::SoldOut.get(lang)) }
                }
            }
            @if !mine && card.remaining > 0 {
                form.inline.pay-card method="post" action={ "/checkouts/" (card.id) "/pay" } novalidate {
                    (csrf_field(visitor))
                    (key_field(&random_token()))
                    @if let Some((_, text, _)) = problem { (form_error(text)) }
                    label for={ "quantity-" (card.id) } { (T::Quantity.get(lang)) }
                    input id={ "quantity-" (card.id) } type="number" name="quantity" value="1" min="1"
                        max=(card.remaining.min(checkout::ORDER_QUANTITY_MAX)) inputmode="numeric";
                    @if problem.is_some_and(|(_, _, ask_code)| ask_code) {
                        (Field::new("code", T::AuthenticatorCode.get(lang)).inputmode("numeric")
                            .autocomplete("one-time-code").render())
                    }
                    button.primary type="submit" data-busy=(T::Working.get(lang)) { (T::PayNow.get(lang)) " " bdi { (price) } }
                }
            }
            time datetime=(message.created_at) { (i18n::date_time(lang, &message.created_at)) }
        }
    }
}

/// The seller's form to post a checkout card in this thread.
fn sell_form(visitor: &Visitor, other: &str, form: &Form, problem: Option<&str>) -> Markup {
    let lang = visitor.lang;
    html! {
        details.card.sell open[problem.is_some()] {
            summary { (T::SellSomething.get(lang)) }
            form method="post" action={ "/messages/" (other) "/checkouts" } novalidate {
                (csrf_field(visitor))
                (key_field(&random_token()))
                @if let Some(problem) = problem { (form_error(problem)) }
                (Field::new("item", T::Item.get(lang)).value(form.get("item")).render())
                (Field::new("price", T::UnitPrice.get(lang)).value(form.get("price")).inputmode("decimal").render())
                (Field::new("quantity", T::QuantityAvailable.get(lang)).value(form.get("quantity")).inputmode("numeric").render())
                (submit(T::PostCard.get(lang), T::Working.get(lang)))
            }
        }
    }
}

/// `POST /messages/{handle}/checkouts`: the seller posts a card.
pub async fn post_checkout(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(handle): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let quantity = i18n::ascii_amount(form.get("quantity"))
        .trim()
        .parse::<i64>()
        .unwrap_or(0);
    let price = i18n::ascii_amount(form.get("price"));
    let offer = NewCheckout::parse(form.get("item"), &price, WALLET_CURRENCY.code(), quantity);
    let key = IdempotencyKey::parse(&form_key(&form, "checkout"))
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let posted = match offer {
        Ok(offer) => {
            let ledger = ledger(&state, lang)?;
            checkout::create(
                &ledger,
                &state.reader(),
                person,
                &handle,
                offer,
                Some(key),
                now_ns(),
            )
            .await
        }
        Err(error) => Err(error),
    };
    let problem = match posted {
        Ok(_) => return Ok(layout::redirect(&format!("/messages/{handle}"))),
        Err(CheckoutError::ConversationRequired) => T::ErrConversationFirst.get(lang),
        Err(CheckoutError::Payment(PaymentError::Internal(detail))) => {
            return Err(WebError::Internal(lang, detail))
        }
        Err(CheckoutError::Payment(PaymentError::RecipientNotFound)) => {
            return Err(WebError::NotFound(lang))
        }
        Err(_) => T::ErrCheckout.get(lang),
    };
    let problems = Problems {
        sell: Some(problem),
        ..Problems::default()
    };
    render_thread(
        &state,
        &visitor,
        &handle,
        &form,
        problems,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Passes when the amount needs no second factor, steps up with the form's code when
/// one is given; else says why not (always asking for a code). The check itself is
/// the one every money form shares, [`crate::people::step_up`].
async fn checked_step_up(
    state: &AppState,
    visitor: &Visitor,
    amount_minor: i64,
    code: &str,
) -> Result<Option<(&'static str, bool)>, WebError> {
    let caller = visitor.caller()?;
    let checked = crate::people::step_up(state, caller, amount_minor, code, visitor.lang).await?;
    Ok(checked.err().map(|problem| (problem, true)))
}

/// `POST /checkouts/{id}/pay`: one click; the order is on `/orders`.
pub async fn pay_checkout(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let form = Form::parse(&body);
    visitor.check_form(&form)?;
    let reader = state.reader();
    let card = checkout::checkout_for(&reader, person.id, &id)
        .await
        .map_err(checkout_failed(lang))?;
    let quantity = OrderQuantity::parse(form.get("quantity").trim().parse::<i64>().unwrap_or(0));
    let problem = match quantity {
        Err(_) => Some((T::ErrSoldOut.get(lang), false)),
        Ok(quantity) => {
            let unit = payments::parse_amount(&card.price, &card.currency).map_err(failed(lang))?;
            let amount_minor = unit.minor_units().saturating_mul(quantity.get());
            match checked_step_up(&state, &visitor, amount_minor, form.get("code")).await? {
                Some(problem) => Some(problem),
                None => pay_card(&state, &visitor, &card, quantity, &form).await?,
            }
        }
    };
    let Some((text, ask_code)) = problem else {
        return Ok(layout::redirect("/orders?done=paid"));
    };
    let problems = Problems {
        card: Some((card.id.as_str(), text, ask_code)),
        ..Problems::default()
    };
    render_thread(
        &state,
        &visitor,
        &card.seller,
        &Form::default(),
        problems,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Pays the card; `Some(problem)` when it did not go through.
async fn pay_card(
    state: &AppState,
    visitor: &Visitor,
    card: &CheckoutView,
    quantity: OrderQuantity,
    form: &Form,
) -> Result<Option<(&'static str, bool)>, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let key = IdempotencyKey::parse(&form_key(form, "order"))
        .map_err(|error| WebError::Internal(lang, error.to_string()))?;
    let ledger = ledger(state, lang)?;
    let vault = state.vault();
    let processor = state.processor();
    let fallback = vault
        .as_ref()
        .map(|vault| mizan_app::subscriptions::CardFallback {
            processor: processor.as_ref(),
            vault,
        });
    let paid = checkout::pay(
        &ledger,
        &state.reader(),
        &state.config().limits,
        fallback,
        person,
        &card.id,
        quantity,
        key,
        now_ns(),
    )
    .await;
    drop(ledger);
    Ok(match paid {
        Ok(_) => None,
        Err(CheckoutError::SoldOut { .. }) => Some((T::ErrSoldOut.get(lang), false)),
        Err(CheckoutError::Payment(PaymentError::InsufficientFunds)) => {
            Some((T::ErrFunds.get(lang), false))
        }
        Err(CheckoutError::Payment(PaymentError::LimitExceeded { .. })) => {
            Some((T::ErrLimit.get(lang), false))
        }
        Err(CheckoutError::Payment(PaymentError::IdempotencyRequestInProgress)) => {
            Some((T::ErrInProgress.get(lang), false))
        }
        Err(CheckoutError::Payment(PaymentError::AccountFrozen)) => {
            Some((T::ErrFrozen.get(lang), false))
        }
        Err(CheckoutError::Payment(PaymentError::VerificationRequired { .. })) => {
            Some((T::ErrVerify.get(lang), false))
        }
        Err(CheckoutError::Payment(PaymentError::CapabilityUnavailable { .. })) => {
            Some((T::ErrUnavailable.get(lang), false))
        }
        Err(error) => return Err(checkout_failed(lang)(error)),
    })
}

#[derive(serde::Deserialize)]
pub struct OrdersQuery {
    done: Option<String>,
}

/// `GET /orders`: what the person bought and sold through checkout cards.
pub async fn orders_page(
    State(state): State<AppState>,
    visitor: Visitor,
    axum::extract::Query(query): axum::extract::Query<OrdersQuery>,
) -> Result<Response, WebError> {
    let lang = visitor.lang;
    let person = visitor.person()?;
    let lines = checkout::orders_of(&state.reader(), person.id, checkout::ORDERS_LISTED_MAX)
        .await
        .map_err(checkout_failed(lang))?;
    let content = html! {
        @if query.done.as_deref() == Some("paid") { (layout::notice(T::OrderPaidNotice.get(lang))) }
        @if lines.is_empty() { p { (T::NoOrders.get(lang)) } }
        ul.requests.orders {
            @for line in &lines {
                @let order = &line.order;
                @let amount = i18n::stored_money(lang, &order.amount, &order.currency);
                li.request.order data-order=(order.id) {
                    @if line.bought {
                        span { (T::YouBought.get(lang)) " " }
                        a.who href={ "/messages/" (order.seller) } { bdi { "@" (order.seller) } }
                    } @else {
                        span { (T::YouSold.get(lang)) " " }
                        a.who href={ "/messages/" (order.buyer) } { bdi { "@" (order.buyer) } }
                    }
                    " · " bdi.item { (order.item) } " × " (i18n::numerals(lang, &order.quantity.to_string()))
                    " · " span.amount { bdi { (amount) } }
                    " " time datetime=(order.created_at) { (i18n::date_time(lang, &order.created_at)) }
                }
            }
        }
    };
    Ok(page(&visitor, StatusCode::OK, T::Orders.get(lang), content))
}
