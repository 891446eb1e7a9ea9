//! The webhook worker: reads the outbox after its cursor, routes each event to the
//! endpoints of the apps linked to the people it is about, and sends each delivery,
//! signed, until it succeeds or runs out of attempts (exponential backoff).
//!
//! At least once: the cursor (`webhook_cursor`) only moves past an event once every
//! delivery of it has finished, and delivery records are written before their first
//! attempt. After a crash the worker re-reads the outbox from the cursor, finds the
//! records it already wrote (finished ones are skipped, pending ones keep their
//! attempt count) and carries on; a receiver may see an attempt twice, never zero
//! times. It runs on its own task and talks to the ledger writer in batches (one
//! submission per outbox page and per round of attempts), so payments never wait on
//! a receiver.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use mizan_app::identity::SharedReader;
use mizan_app::vault::SharedVault;
use mizan_app::webhooks::{
    self, Delivery, DeliveryStatus, Endpoint, WebhookError, SIGNATURE_HEADER,
};
use mizan_core::{Clock, SystemClock};
use mizan_ledger::BusinessRow;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::ServerConfig;
use crate::state::AppState;

/// Outbox events read per round.
const OUTBOX_PAGE: usize = 256;
/// Unfinished deliveries held in memory; past this the worker stops reading the
/// outbox until some finish (a dead endpoint then delays others: see docs/API.md).
const PENDING_MAX: usize = 10_000;
/// Attempts in flight at once.
const CONCURRENT_ATTEMPTS_MAX: usize = 32;
/// Longest error text kept on a delivery.
const ERROR_CHARS_MAX: usize = 200;

fn internal(context: &str, error: impl std::fmt::Display) -> WebhookError {
    WebhookError::Internal(format!("{context}: {error}"))
}

/// The HTTP client deliveries go out with: no redirects, a timeout per attempt.
pub fn client(config: &ServerConfig) -> Result<reqwest::Client, WebhookError> {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(config.webhook_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mizan-Webhooks/1")
        .build()
        .map_err(|error| internal("webhook client", error))
}

/// One attempt: POST the body with its signature; records the outcome on `delivery`.
/// The signature comes from the vault, which holds the endpoint's secret; a
/// signing failure counts as a failed attempt (retried like any other).
async fn attempt(
    client: &reqwest::Client,
    config: &ServerConfig,
    vault: &SharedVault,
    endpoint: &Endpoint,
    mut delivery: Delivery,
) -> Delivery {
    let now_ns = SystemClock.now_ns();
    let signature =
        webhooks::signature_header_for(vault, endpoint, webhooks::seconds(now_ns), &delivery.body)
            .await;
    let sent = match signature {
        Ok(signature) => Ok(client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("mizan-event-id", &delivery.event_id)
            .header("mizan-delivery-id", &delivery.id)
            .body(delivery.body.clone())
            .send()
            .await),
        Err(error) => {
            tracing::error!(endpoint = %endpoint.id, %error, "signing a webhook failed");
            Err(())
        }
    };
    delivery.attempts = delivery.attempts.saturating_add(1);
    let succeeded = match sent {
        Err(()) => {
            delivery.last_status_code = None;
            delivery.last_error = Some("signing failed".to_owned());
            false
        }
        Ok(Ok(response)) => {
            let status = response.status();
            delivery.last_status_code = Some(status.as_u16());
            delivery.last_error = (!status.is_success()).then(|| format!("HTTP {status}"));
            status.is_success()
        }
        Ok(Err(error)) => {
            delivery.last_status_code = None;
            let text = error.without_url().to_string();
            delivery.last_error = Some(text.chars().take(ERROR_CHARS_MAX).collect());
            false
        }
    };
    delivery.status = if succeeded {
        DeliveryStatus::Succeeded
    } else if delivery.attempts >= config.webhook_attempts_max {
        DeliveryStatus::Failed
    } else {
        DeliveryStatus::Pending
    };
    delivery.next_attempt_at_ns = now_ns.saturating_add(webhooks::backoff_ns(
        config.webhook_retry_base_ms,
        delivery.attempts,
    ));
    tracing::info!(
        delivery = %delivery.id,
        attempts = delivery.attempts,
        status = ?delivery.status,
        "webhook attempt"
    );
    delivery
}

/// Writes `rows` in order, in submissions of at most the writer's row cap. Every row
/// the worker writes is keyed and idempotent (a delivery's state, the cursor), so a
/// crash between two submissions only means the next round writes some again.
async fn submit_rows(state: &AppState, rows: Vec<BusinessRow>) -> Result<(), WebhookError> {
    if rows.is_empty() {
        return Ok(());
    }
    let Some(ledger) = state.ledger() else {
        return Err(internal("ledger", "shutting down"));
    };
    mizan_app::documents::submit_rows_in_chunks(&ledger, rows)
        .await
        .map_err(|error| internal("submitting deliveries", error))
}

/// `POST …/replay`: one attempt now, whatever the delivery's status, recorded.
pub async fn replay(state: &AppState, delivery: Delivery) -> Result<Delivery, WebhookError> {
    let Some(endpoint) =
        webhooks::endpoint_of(&state.reader(), &delivery.app_id, &delivery.endpoint_id).await?
    else {
        return Err(WebhookError::DeliveryNotFound);
    };
    let client = client(state.config())?;
    let vault = state
        .vault()
        .ok_or_else(|| internal("vault", "shutting down"))?;
    let was_finished = delivery.status != DeliveryStatus::Pending;
    let mut delivery = attempt(&client, state.config(), &vault, &endpoint, delivery).await;
    // A replay of a finished delivery never puts it back in the retry queue.
    if was_finished && delivery.status == DeliveryStatus::Pending {
        delivery.status = DeliveryStatus::Failed;
    }
    submit_rows(state, vec![delivery.row()?]).await?;
    Ok(delivery)
}

struct Worker {
    state: AppState,
    reader: SharedReader,
    client: reqwest::Client,
    /// Events up to here have been routed.
    read_through: u64,
    /// Events up to here have every delivery finished (persisted).
    cursor: u64,
    pending: BTreeMap<String, Delivery>,
    endpoints: HashMap<String, Endpoint>,
}

impl Worker {
    async fn start(state: AppState) -> Result<Worker, WebhookError> {
        let reader = state.reader();
        let cursor = webhooks::cursor(&reader).await?;
        let client = client(state.config())?;
        Ok(Worker {
            state,
            reader,
            client,
            read_through: cursor,
            cursor,
            pending: BTreeMap::new(),
            endpoints: HashMap::new(),
        })
    }

    /// Routes one page of new outbox events; true when it read any.
    async fn fan_out(&mut self) -> Result<bool, WebhookError> {
        if self.pending.len() >= PENDING_MAX {
            return Ok(false);
        }
        let reader = self.reader.clone();
        let after = self.read_through;
        let page = webhooks::outbox_page(&reader, after, OUTBOX_PAGE).await?;
        let Some(&(last_seq, _, _)) = page.last() else {
            return Ok(false);
        };
        let endpoints = webhooks::all_endpoints(&self.reader).await?;
        let now_ns = SystemClock.now_ns();
        let mut rows = Vec::new();
        for (seq, topic, payload) in &page {
            // The people's notification list is projected from the same events, in
            // the same submission (rewriting a row on a re-read is harmless).
            rows.extend(
                mizan_app::notifications::rows_for_event(*seq, topic, payload)
                    .map_err(|error| internal("notification rows", error))?,
            );
            let routed =
                webhooks::route(&self.reader, &endpoints, *seq, topic, payload, now_ns).await?;
            for delivery in routed {
                let key = delivery.key();
                let stored = webhooks::stored_delivery(&self.reader, &key).await?;
                match stored {
                    Some(stored) if stored.status != DeliveryStatus::Pending => {}
                    Some(stored) => {
                        self.pending.insert(key, stored);
                    }
                    None => {
                        rows.push(delivery.row()?);
                        self.pending.insert(key, delivery);
                    }
                }
            }
        }
        self.endpoints = endpoints
            .into_iter()
            .map(|endpoint| (endpoint.id.clone(), endpoint))
            .collect();
        submit_rows(&self.state, rows).await?;
        self.read_through = last_seq;
        Ok(true)
    }

    /// Attempts every due delivery (bounded concurrency); true when it sent any.
    async fn send_due(&mut self) -> Result<bool, WebhookError> {
        let now_ns = SystemClock.now_ns();
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, delivery)| delivery.next_attempt_at_ns <= now_ns)
            .map(|(key, _)| key.clone())
            .take(CONCURRENT_ATTEMPTS_MAX)
            .collect();
        if due.is_empty() {
            return Ok(false);
        }
        let Some(vault) = self.state.vault() else {
            return Ok(false); // shutting down
        };
        let config = Arc::new(self.state.config().clone());
        let mut attempts = JoinSet::new();
        let mut rows = Vec::new();
        for key in due {
            let Some(delivery) = self.pending.remove(&key) else {
                continue;
            };
            match self.endpoints.get(&delivery.endpoint_id).cloned() {
                Some(endpoint) => {
                    let client = self.client.clone();
                    let config = config.clone();
                    let vault = vault.clone();
                    attempts.spawn(async move {
                        attempt(&client, &config, &vault, &endpoint, delivery).await
                    });
                }
                None => {
                    let mut delivery = delivery;
                    delivery.status = DeliveryStatus::Failed;
                    delivery.last_error = Some("endpoint no longer exists".to_owned());
                    rows.push(delivery.row()?);
                }
            }
        }
        while let Some(joined) = attempts.join_next().await {
            let delivery = joined.map_err(|error| internal("attempt task", error))?;
            rows.push(delivery.row()?);
            if delivery.status == DeliveryStatus::Pending {
                self.pending.insert(delivery.key(), delivery);
            }
        }
        submit_rows(&self.state, rows).await?;
        Ok(true)
    }

    /// Moves the persisted cursor up to the event before the oldest unfinished one.
    async fn advance_cursor(&mut self) -> Result<(), WebhookError> {
        let oldest_pending = self.pending.values().filter_map(Delivery::outbox_seq).min();
        let finished_through = match oldest_pending {
            Some(seq) => seq.saturating_sub(1),
            None => self.read_through,
        };
        if finished_through <= self.cursor {
            return Ok(());
        }
        let row = webhooks::cursor_row(finished_through);
        submit_rows(&self.state, vec![row]).await?;
        self.cursor = finished_through;
        Ok(())
    }

    async fn round(&mut self) -> Result<bool, WebhookError> {
        let read = self.fan_out().await?;
        let sent = self.send_due().await?;
        self.advance_cursor().await?;
        Ok(read || sent)
    }
}

/// Runs the worker until `stop` turns true. Errors are logged and the round retried
/// after a pause; the worker never takes the server down.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(state.config().webhook_poll_ms.max(1));
    let mut worker = loop {
        match Worker::start(state.clone()).await {
            Ok(worker) => break worker,
            Err(error) => {
                tracing::error!(%error, "webhook worker cannot start; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(poll * 10) => {}
                }
            }
        }
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let busy = match worker.round().await {
            Ok(busy) => busy,
            Err(error) => {
                tracing::error!(%error, "webhook round failed");
                false
            }
        };
        if !busy {
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}
