//! Prometheus metrics: HTTP requests by route and status, and the ledger writer's
//! counters read from [`Ledger::stats`] at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mizan_ledger::Ledger;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The `route` label of requests no route matched, so unknown paths cannot grow the
/// number of series without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let labels = ["method", "route", "status"];
        let requests = IntCounterVec::new(
            Opts::new("mizan_http_requests_total", "HTTP requests answered."),
            &labels,
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "mizan_http_request_duration_seconds",
                "Time from receiving a request to its response headers.",
            )
            .buckets(LATENCY_BUCKETS_SECONDS.to_vec()),
            &labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            durations,
        })
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.durations
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format: the registry, then the ledger's counters.
    pub fn render(&self, ledger: Option<&Ledger>) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        let mut text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some(ledger) = ledger {
            render_ledger(&mut text, ledger);
        }
        Ok(text)
    }
}

fn render_ledger(text: &mut String, ledger: &Ledger) {
    let stats = ledger.stats();
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let commit_seconds = load(&stats.commit_nanos_total) as f64 / 1e9;
    let sync_seconds = load(&stats.sync_nanos_total) as f64 / 1e9;
    let families: [(&str, &str, &str, String); 9] = [
        (
            "mizan_ledger_batches_committed_total",
            "counter",
            "Batches the writer committed.",
            load(&stats.batches_committed).to_string(),
        ),
        (
            "mizan_ledger_batches_failed_total",
            "counter",
            "Batches that failed to commit.",
            load(&stats.batches_failed).to_string(),
        ),
        (
            "mizan_ledger_transfers_committed_total",
            "counter",
            "Transfers committed.",
            load(&stats.transfers_committed).to_string(),
        ),
        (
            "mizan_ledger_events_submitted_total",
            "counter",
            "Events (accounts and transfers) submitted to the writer.",
            load(&stats.events_submitted).to_string(),
        ),
        (
            "mizan_ledger_commit_seconds_total",
            "counter",
            "Time spent committing batches.",
            commit_seconds.to_string(),
        ),
        (
            "mizan_ledger_syncs_total",
            "counter",
            "Flushes that made committed batches durable (SQLite: fdatasync of the WAL).",
            load(&stats.syncs).to_string(),
        ),
        (
            "mizan_ledger_sync_seconds_total",
            "counter",
            "Time spent in those flushes, while the writer went on with the next batches.",
            sync_seconds.to_string(),
        ),
        (
            "mizan_ledger_last_batch_events",
            "gauge",
            "Events in the last committed batch.",
            load(&stats.last_batch_events).to_string(),
        ),
        (
            "mizan_ledger_queue_depth",
            "gauge",
            "Submissions waiting for the writer.",
            ledger.queue_depth().to_string(),
        ),
    ];
    for (name, kind, help, value) in families {
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    }
}
