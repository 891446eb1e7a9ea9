//! The webhook delivery log across every app: newest first, with status, attempts
//! and the last error. Endpoint secrets and event bodies are never shown.

use std::collections::HashMap;

use axum::extract::State;
use axum::response::Response;
use maud::html;
use mizan_api::AppState;
use mizan_app::apps;
use mizan_app::operators::OperatorAction;
use mizan_app::webhooks::{self, Delivery, DeliveryStatus};

use super::{internal, ops_page, time_of, Ops, OpsError};

/// Deliveries the log shows.
const DELIVERIES_SHOWN: usize = 100;
/// Deliveries read per store call.
const DELIVERIES_PAGE: usize = 500;
/// Pages read per app at most: the log is a window on recent work, not an export.
const DELIVERY_PAGES_PER_APP_MAX: usize = 10;
/// Longest last error shown.
const ERROR_CHARS_MAX: usize = 300;

/// A delivery as the log shows it (no body: it may carry personal data).
struct DeliveryLine {
    app_id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    status: DeliveryStatus,
    attempts: u32,
    last_status_code: Option<u16>,
    last_error: Option<String>,
    next_attempt_at_ns: u64,
    created_at_ns: u64,
}

impl From<Delivery> for DeliveryLine {
    fn from(delivery: Delivery) -> DeliveryLine {
        DeliveryLine {
            app_id: delivery.app_id,
            endpoint_id: delivery.endpoint_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            attempts: delivery.attempts,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            next_attempt_at_ns: delivery.next_attempt_at_ns,
            created_at_ns: delivery.created_at_ns,
        }
    }
}

fn status_text(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
    }
}

/// `text` with the user-info of every URL in it removed (`https://user:pass@host`
/// becomes `https://***@host`): an endpoint URL may carry credentials.
fn without_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == ')')
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// The newest deliveries of one app, reading at most a bounded number of pages
/// (the store lists them oldest first); `true` when the app had more than was read.
async fn newest_of(
    state: &AppState,
    app_id: &str,
    lines: &mut Vec<DeliveryLine>,
) -> Result<bool, OpsError> {
    let reader = state.reader();
    let mut after: Option<String> = None;
    for _ in 0..DELIVERY_PAGES_PER_APP_MAX {
        let page = webhooks::deliveries_of(&reader, app_id, after.as_deref(), DELIVERIES_PAGE)
            .await
            .map_err(internal)?;
        let full = page.len() == DELIVERIES_PAGE;
        after = page.last().map(|delivery| delivery.id.clone());
        lines.extend(page.into_iter().map(DeliveryLine::from));
        lines.sort_by_key(|line| std::cmp::Reverse(line.created_at_ns));
        lines.truncate(DELIVERIES_SHOWN);
        if !full {
            return Ok(false);
        }
    }
    Ok(true)
}

pub async fn webhooks_page(State(state): State<AppState>, ops: Ops) -> Result<Response, OpsError> {
    ops.audit(&state, OperatorAction::ViewWebhooks, "").await?;
    let reader = state.reader();
    let apps = apps::list_apps(&reader).await.map_err(internal)?;
    let endpoints = webhooks::all_endpoints(&reader).await.map_err(internal)?;
    let app_names: HashMap<&str, &str> = apps
        .iter()
        .map(|app| (app.id.as_str(), app.name.as_str()))
        .collect();
    let urls: HashMap<&str, String> = endpoints
        .iter()
        .map(|endpoint| (endpoint.id.as_str(), without_credentials(&endpoint.url)))
        .collect();
    let mut lines = Vec::new();
    let mut cut = false;
    for app in &apps {
        cut |= newest_of(&state, &app.id, &mut lines).await?;
    }
    let content = html! {
        p.lead { (apps.len()) " apps, " (endpoints.len()) " endpoints. The latest " (lines.len()) " deliveries, newest first." }
        @if cut { p.hint { "Some apps have more deliveries than this page reads; the oldest ones are not counted." } }
        @if lines.is_empty() { p { "No deliveries yet." } }
        @if !lines.is_empty() { ul.activity-list.deliveries {
            @for line in &lines {
                li {
                    (time_of(line.created_at_ns)) " · "
                    strong { (line.event_type) } " " code { (line.event_id) }
                    " → " bdi { (app_names.get(line.app_id.as_str()).copied().unwrap_or("unknown app")) }
                    " at " code { (urls.get(line.endpoint_id.as_str()).map_or("a removed endpoint", String::as_str)) }
                    " · " strong.status { (status_text(line.status)) }
                    " · " (line.attempts) " attempts"
                    @if let Some(code) = line.last_status_code { " · last HTTP " (code) }
                    @if let Some(error) = &line.last_error {
                        " · last error: " (without_credentials(&error.chars().take(ERROR_CHARS_MAX).collect::<String>()))
                    }
                    @if line.status == DeliveryStatus::Pending { " · next attempt " (time_of(line.next_attempt_at_ns)) }
                }
            }
        } }
    };
    Ok(ops_page("Webhook deliveries", &ops, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(
            without_credentials("https://user:pass@hooks.example/x?y=1"),
            "https://***@hooks.example/x?y=1"
        );
        assert_eq!(
            without_credentials("error sending request for url (http://a:b@h:1/p): refused"),
            "error sending request for url (http://***@h:1/p): refused"
        );
        assert_eq!(
            without_credentials("https://hooks.example/x"),
            "https://hooks.example/x"
        );
        assert_eq!(without_credentials("no url"), "no url");
    }
}
