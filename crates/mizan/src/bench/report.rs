//! What the bench prints: one line per store × workload (or one JSON object per
//! line with `--json`), latency summaries and the writer's own figures.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mizan_ledger::writer::WriterStats;
use serde::Serialize;

use super::baseline::NaiveRun;
use super::history::HistoryFigures;
use super::machine::MachineFacts;
use super::workload::{BatchRun, CallRun};

/// The tail over which the sustained rate is reported, when the run is long enough.
const TAIL_TRANSFERS: u64 = 1_000_000;
/// Replies closer together than this answer the same commit. A commit of a batch
/// workload takes tens of milliseconds at least.
const REPLY_BURST_GAP: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of latencies in nanoseconds.
pub fn summarize(mut latencies_ns: Vec<u64>) -> LatencySummary {
    if latencies_ns.is_empty() {
        return LatencySummary::default();
    }
    latencies_ns.sort_unstable();
    let rank = |percent: usize| {
        let index = (latencies_ns.len() * percent).div_ceil(100).max(1) - 1;
        latencies_ns[index] as f64 / 1e6
    };
    LatencySummary {
        count: latencies_ns.len(),
        p50_ms: rank(50),
        p99_ms: rank(99),
        max_ms: rank(100),
    }
}

/// The writer's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub struct WriterSnapshot {
    batches: u64,
    transfers: u64,
    busy_ns: u64,
    failed: u64,
}

/// What the writer did during a workload. A commit is one storage transaction,
/// which may carry several submissions.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WriterFigures {
    pub commits: u64,
    pub transfers_per_commit: f64,
    /// Mean time the writer spent on one commit: load, engine, hash, write, commit.
    pub commit_busy_ms: f64,
    /// Share of the wall time the writer was busy.
    pub busy_share: f64,
    pub commits_failed: u64,
}

impl WriterSnapshot {
    pub fn read(stats: &WriterStats) -> WriterSnapshot {
        WriterSnapshot {
            batches: stats.batches_committed.load(Ordering::Relaxed),
            transfers: stats.transfers_committed.load(Ordering::Relaxed),
            busy_ns: stats.commit_nanos_total.load(Ordering::Relaxed),
            failed: stats.batches_failed.load(Ordering::Relaxed),
        }
    }

    pub fn since(&self, before: &WriterSnapshot, wall: Duration) -> WriterFigures {
        let batches = self.batches - before.batches;
        let transfers = self.transfers - before.transfers;
        let busy_ns = self.busy_ns - before.busy_ns;
        WriterFigures {
            commits: batches,
            transfers_per_commit: transfers as f64 / batches.max(1) as f64,
            commit_busy_ms: busy_ns as f64 / 1e6 / batches.max(1) as f64,
            busy_share: busy_ns as f64 / wall.as_nanos().max(1) as f64,
            commits_failed: self.failed - before.failed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tail {
    pub transfers: u64,
    pub transfers_per_second: f64,
}

/// One store × workload.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub store: &'static str,
    /// `uniform`, `hot`, `concurrent`, `naive-uniform`, `naive-hot`.
    pub workload: String,
    /// Transfers acknowledged as committed.
    pub transfers: u64,
    pub seconds: f64,
    pub transfers_per_second: f64,
    /// The rate over the last transfers of the run (the last million when it is long enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
    /// What one latency sample is: a `batch` submission, a single-transfer `call`,
    /// or a naive `transaction`.
    pub latency_of: &'static str,
    pub latency: LatencySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<WriterFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryFigures>,
    /// Naive transactions retried after a deadlock or serialization failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Result codes other than `ok`, with their counts.
    pub failures: BTreeMap<String, u64>,
    /// Failed consistency checks.
    pub problems: Vec<String>,
}

impl Measurement {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
            && self.problems.is_empty()
            && self.history.as_ref().is_none_or(|h| h.problems_total == 0)
    }

    pub fn batches(
        store: &'static str,
        workload: &str,
        run: &BatchRun,
        writer: WriterFigures,
        history: HistoryFigures,
    ) -> Measurement {
        let seconds = run.elapsed.as_secs_f64();
        Measurement {
            store,
            workload: workload.to_owned(),
            transfers: run.tally.ok,
            seconds,
            transfers_per_second: rate(run.tally.ok, seconds),
            tail: tail(&run.completions, run.elapsed),
            latency_of: "batch",
            latency: summarize(run.latencies_ns.clone()),
            writer: Some(writer),
            failures: run.tally.failures.clone(),
            problems: Vec::new(),
            history: Some(history),
            retries: None,
        }
    }

    pub fn calls(
        store: &'static str,
        run: &CallRun,
        writer: WriterFigures,
        problems: Vec<String>,
    ) -> Measurement {
        let seconds = run.elapsed.as_secs_f64();
        Measurement {
            store,
            workload: "concurrent".to_owned(),
            transfers: run.tally.ok,
            seconds,
            transfers_per_second: rate(run.tally.ok, seconds),
            tail: None,
            latency_of: "call",
            latency: summarize(run.latencies_ns.clone()),
            writer: Some(writer),
            history: None,
            retries: None,
            failures: run.tally.failures.clone(),
            problems,
        }
    }

    pub fn naive(store: &'static str, pattern: &str, run: &NaiveRun) -> Measurement {
        let seconds = run.elapsed.as_secs_f64();
        Measurement {
            store,
            workload: format!("naive-{pattern}"),
            transfers: run.committed,
            seconds,
            transfers_per_second: rate(run.committed, seconds),
            tail: None,
            latency_of: "transaction",
            latency: summarize(run.latencies_ns.clone()),
            writer: None,
            history: None,
            retries: Some(run.retries),
            failures: run.failures.clone(),
            problems: run.problems.clone(),
        }
    }
}

fn rate(transfers: u64, seconds: f64) -> f64 {
    transfers as f64 / seconds.max(1e-9)
}

/// The rate over the last million transfers (the last half of a shorter run).
///
/// The writer commits several submissions in one transaction and answers them
/// together, so replies come in bursts. The window opens when the burst (commit) that
/// reached the mark has answered its last caller, and counts only what came after:
/// counting from the burst's first reply would credit the window with that commit's
/// other replies without their time.
fn tail(completions: &[(Duration, u64)], end: Duration) -> Option<Tail> {
    let total: u64 = completions.iter().map(|(_, transfers)| transfers).sum();
    let wanted = if total >= 2 * TAIL_TRANSFERS {
        TAIL_TRANSFERS
    } else {
        total / 2
    };
    if wanted == 0 {
        return None;
    }
    let mut committed = 0;
    let mut index = 0;
    while index < completions.len() {
        committed += completions[index].1;
        if committed >= total - wanted {
            break;
        }
        index += 1;
    }
    // Take in the rest of the burst.
    while index + 1 < completions.len()
        && completions[index + 1].0 - completions[index].0 < REPLY_BURST_GAP
    {
        index += 1;
        committed += completions[index].1;
    }
    let transfers = total - committed;
    let opened = completions.get(index)?.0;
    if transfers == 0 || end <= opened {
        return None;
    }
    Some(Tail {
        transfers,
        transfers_per_second: rate(transfers, end.saturating_sub(opened).as_secs_f64()),
    })
}

/// 1234567.8 → "1,234,568".
pub fn thousands(value: f64) -> String {
    let rounded = value.round().max(0.0) as u64;
    let digits = rounded.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    // A comma goes before every digit whose index is this modulo 3 (but the first).
    let comma_phase = digits.len() % 3;
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && index % 3 == comma_phase {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// 1,000,000 → "1M", 100,000 → "100k".
fn short_count(count: u64) -> String {
    // Exact multiples only (`is_multiple_of` is newer than the workspace's MSRV).
    if count >= 1_000_000 && count / 1_000_000 * 1_000_000 == count {
        format!("{}M", count / 1_000_000)
    } else if count >= 1_000 && count / 1_000 * 1_000 == count {
        format!("{}k", count / 1_000)
    } else {
        thousands(count as f64)
    }
}

/// Prints to stdout, text or JSON lines, flushing each line so progress is visible.
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    fn emit(&self, text: &str, json: &serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(stdout, "{json}")
        } else {
            writeln!(stdout, "{text}")
        };
        let _ = stdout.flush();
    }

    pub fn notice(&mut self, notice: &str) {
        self.emit(notice, &serde_json::json!({ "notice": notice }));
    }

    pub fn machine(&mut self, facts: &MachineFacts) {
        self.emit(
            &facts.lines().join("\n"),
            &serde_json::json!({ "machine": facts }),
        );
    }

    pub fn measurement(&mut self, measurement: &Measurement) {
        let json = serde_json::to_value(measurement).unwrap_or_default();
        self.emit(&measurement_text(measurement), &json);
    }

    /// Mizan over naive, uniform and hot, for one store.
    pub fn ratios(&mut self, store: &str, mizan: [Option<f64>; 2], naive: [Option<f64>; 2]) {
        let ratio = |slot: usize| match (mizan[slot], naive[slot]) {
            (Some(mizan), Some(naive)) if naive > 0.0 => Some(mizan / naive),
            _ => None,
        };
        let (uniform, hot) = (ratio(0), ratio(1));
        if uniform.is_none() && hot.is_none() {
            return;
        }
        let show = |ratio: Option<f64>| ratio.map_or("-".to_owned(), |r| format!("{r:.0}x"));
        self.emit(
            &format!(
                "{store:<10} ratio           mizan / naive transfers/s: uniform {}, hot {}",
                show(uniform),
                show(hot)
            ),
            &serde_json::json!({ "store": store, "ratio_mizan_over_naive": { "uniform": uniform, "hot": hot } }),
        );
    }
}

fn measurement_text(m: &Measurement) -> String {
    let mut line = format!(
        "{:<10} {:<15} {:>9} transfers {:>9} transfers/s",
        m.store,
        m.workload,
        m.transfers,
        thousands(m.transfers_per_second)
    );
    if let Some(tail) = &m.tail {
        line += &format!(
            " (last {}: {}/s)",
            short_count(tail.transfers),
            thousands(tail.transfers_per_second)
        );
    }
    line += &format!(
        "  {} p50 {:.1} ms p99 {:.1} ms",
        m.latency_of, m.latency.p50_ms, m.latency.p99_ms
    );
    if let Some(history) = &m.history {
        line += &format!(
            "  history p50 {:.1} ms p99 {:.1} ms",
            history.page.p50_ms, history.page.p99_ms
        );
    }
    for detail in details(m) {
        line += "\n           ";
        line += &detail;
    }
    line
}

/// The indented lines under a measurement: writer figures, history breakdown, failures.
fn details(m: &Measurement) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(writer) = &m.writer {
        lines.push(format!(
            "writer: {} commits of {:.0} transfers, {:.1} ms busy per commit, busy {:.0}% of the run{}",
            writer.commits,
            writer.transfers_per_commit,
            writer.commit_busy_ms,
            writer.busy_share * 100.0,
            if writer.commits_failed > 0 {
                format!(", {} commits FAILED", writer.commits_failed)
            } else {
                String::new()
            }
        ));
    }
    if let Some(history) = &m.history {
        lines.push(format!(
            "history: {} rounds; page p50/p99 random account {:.1}/{:.1} ms, hot account {:.1}/{:.1} ms; \
             balances_at {:.1}/{:.1} ms; hot account balances_at at the end {:.0} ms",
            history.rounds,
            history.random_account_page.p50_ms,
            history.random_account_page.p99_ms,
            history.hot_account_page.p50_ms,
            history.hot_account_page.p99_ms,
            history.balances_at.p50_ms,
            history.balances_at.p99_ms,
            history.hot_balances_at_final_ms
        ));
        for problem in &history.problems {
            lines.push(format!("HISTORY PROBLEM: {problem}"));
        }
        if history.problems_total > history.problems.len() as u64 {
            lines.push(format!(
                "… {} history problems in all",
                history.problems_total
            ));
        }
    }
    if let Some(retries) = m.retries.filter(|retries| *retries > 0) {
        lines.push(format!("{retries} transactions retried after deadlocks"));
    }
    if !m.failures.is_empty() {
        lines.push(format!("FAILURES: {:?}", m.failures));
    }
    for problem in &m.problems {
        lines.push(format!("PROBLEM: {problem}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(231_512.0), "231,512");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(short_count(1_000_000), "1M");
        assert_eq!(short_count(96_000), "96k");
        assert_eq!(short_count(1_500), "1,500");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let summary = summarize((1..=100).map(|ms| ms * 1_000_000).collect());
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(summarize(vec![7_000_000]).p99_ms, 7.0);
        assert_eq!(summarize(Vec::new()).count, 0);
    }

    #[test]
    fn tail_rate_covers_the_last_million() {
        // 5M transfers in 1M steps, one per second; the last million takes the last second.
        let completions: Vec<(Duration, u64)> = (1..=5)
            .map(|second| (Duration::from_secs(second), 1_000_000))
            .collect();
        let tail = tail(&completions, Duration::from_secs(5)).expect("a tail");
        assert_eq!(tail.transfers, 1_000_000);
        assert_eq!(tail.transfers_per_second, 1_000_000.0);
        // A short run reports its last half.
        let short = [(Duration::from_secs(1), 50), (Duration::from_secs(3), 50)];
        let tail = super::tail(&short, Duration::from_secs(3)).expect("a tail");
        assert_eq!((tail.transfers, tail.transfers_per_second), (50, 25.0));
    }

    #[test]
    fn tail_opens_after_the_whole_commit_that_reached_the_mark() {
        let millis = Duration::from_millis;
        // Five commits of three replies (a millisecond apart), one per second.
        let completions: Vec<(Duration, u64)> = (1..=5_u64)
            .flat_map(|commit| (0..3).map(move |reply| (millis(commit * 1_000 + reply), 100)))
            .collect();
        // 1,500 transfers: the last 750 start at the second reply of the third commit,
        // so the window opens after that commit's last reply (3.002 s) and holds the
        // last two commits: 600 transfers in 2 s, not 700 in 2.001 s.
        let tail = tail(&completions, millis(5_002)).expect("a tail");
        assert_eq!(tail.transfers, 600);
        assert!((tail.transfers_per_second - 300.0).abs() < 1e-9);
        // Everything in one commit: no tail to speak of.
        let one_commit = [(millis(10), 8_000), (millis(11), 8_000)];
        assert!(super::tail(&one_commit, millis(11)).is_none());
    }
}
