//! `mizan sanctions screen` and `mizan bench sanctions`: the operator's view of the
//! screener in `mizan-compliance` (how it matches: docs/COMPLIANCE.md).
//!
//! `screen` reads names from standard input, one per line, and writes one JSON object
//! per input line, in order, so outputs line up with inputs:
//!
//! ```text
//! {"line":1,"name":"Manuel Noriega","decision":"block","score":0.932,"matches":[{"ent_num":1572,"name":"NORIEGA, Manuel Antonio","score":0.932,"type":"individual","programs":"CUBA"}]}
//! ```
//!
//! A line that cannot be screened (empty, longer than [`QUERY_BYTES_MAX`] bytes, not
//! UTF-8) still gets its object, with an `error` (`code`, `message`) and — failing
//! closed — `"decision":"review"`, so a script reading only `decision` never clears a
//! name nobody looked at. Over-long lines are never held in memory whole: reading
//! stops keeping bytes at the limit and skips to the end of the line.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use mizan_compliance::sanctions::{
    Decision, SanctionsList, ScreenError, Screener, Screening, Subject, Thresholds, QUERY_BYTES_MAX,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;

#[derive(Debug, clap::Subcommand)]
pub enum SanctionsCommand {
    /// Screens names read from standard input, one per line; one JSON object per line out.
    Screen {
        #[command(flatten)]
        list: ListArgs,
        /// Whose names these are: `any` matches every list entry; `person` (how Mizan
        /// screens its customers) skips vessels and aircraft, and one word is at most
        /// `review`.
        #[arg(long, value_enum, default_value_t = SubjectArg::Any)]
        subject: SubjectArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SubjectArg {
    Any,
    Person,
}

impl From<SubjectArg> for Subject {
    fn from(subject: SubjectArg) -> Subject {
        match subject {
            SubjectArg::Any => Subject::Any,
            SubjectArg::Person => Subject::Person,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Directory holding the OFAC legacy CSV files (sdn.csv, alt.csv).
    #[arg(long, env = "MIZAN_SANCTIONS_DIR", default_value = "data/ofac")]
    pub list_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// Screening threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Names screened through the index (the labelled set's queries, shuffled and repeated).
    #[arg(long, default_value_t = 500_000)]
    pub names: usize,
    /// Names screened by the naive baseline (every list name scored per query).
    #[arg(long, default_value_t = 300)]
    pub naive_names: usize,
    /// Screen the names as `any` (every entry) or as `person` (how customers are screened).
    #[arg(long, value_enum, default_value_t = SubjectArg::Any)]
    pub subject: SubjectArg,
}

/// Threads the bench may start; the machine it is written for has 2 cores.
const BENCH_THREADS_MAX: usize = 64;
/// Names the bench may screen.
const BENCH_NAMES_MAX: usize = 50_000_000;

/// The labelled set built in `mizan-compliance`; its queries are the bench's workload.
const LABELLED_SET: &str = include_str!("../../mizan-compliance/tests/data/sanctions_labelled.tsv");

pub fn run(command: &SanctionsCommand) -> anyhow::Result<ExitCode> {
    match command {
        SanctionsCommand::Screen { list, subject } => screen(&list.list_dir, (*subject).into()),
    }
}

fn load(list_dir: &Path) -> anyhow::Result<Screener> {
    let list = SanctionsList::load_dir(list_dir)
        .with_context(|| format!("loading the sanctions list from {}", list_dir.display()))?;
    Ok(Screener::new(&list, Thresholds::TUNED))
}

fn screen(list_dir: &Path, subject: Subject) -> anyhow::Result<ExitCode> {
    let screener = load(list_dir)?;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buffer = Vec::with_capacity(QUERY_BYTES_MAX + 1);
    let mut line_number = 0u64;
    loop {
        let line = read_line_capped(&mut input, &mut buffer, QUERY_BYTES_MAX)
            .context("reading standard input")?;
        let Some(too_long) = line else { break };
        line_number += 1;
        let object = if too_long {
            error_object(
                line_number,
                None,
                "name_too_long",
                &format!("the line is longer than {QUERY_BYTES_MAX} bytes"),
            )
        } else {
            match std::str::from_utf8(&buffer) {
                Ok(name) => screen_one(&screener, subject, line_number, name.trim()),
                Err(_) => error_object(
                    line_number,
                    None,
                    "invalid_utf8",
                    "the line is not valid UTF-8",
                ),
            }
        };
        say!("{object}");
    }
    Ok(ExitCode::SUCCESS)
}

fn screen_one(
    screener: &Screener,
    subject: Subject,
    line_number: u64,
    name: &str,
) -> serde_json::Value {
    match screener.screen_as(name, subject) {
        Ok(screening) => screening_object(line_number, name, &screening),
        Err(error) => error_object(line_number, Some(name), error.code(), &error.to_string()),
    }
}

fn screening_object(line_number: u64, name: &str, screening: &Screening) -> serde_json::Value {
    serde_json::json!({
        "line": line_number,
        "name": name,
        "decision": screening.decision.as_str(),
        "score": screening.best_score,
        "matches": screening.matches,
    })
}

fn error_object(
    line_number: u64,
    name: Option<&str>,
    code: &str,
    message: &str,
) -> serde_json::Value {
    serde_json::json!({
        "line": line_number,
        "name": name,
        "decision": Decision::Review.as_str(),
        "matches": [],
        "error": { "code": code, "message": message },
    })
}

/// Reads one line (without its `\n` or `\r\n`) into `buffer`, keeping at most
/// `bytes_max` bytes. `None` at end of input; `Some(true)` when the line was longer
/// than `bytes_max` (the rest of it is read and dropped).
fn read_line_capped(
    input: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    bytes_max: usize,
) -> std::io::Result<Option<bool>> {
    buffer.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            break;
        }
        read_any = true;
        let (chunk, used, done) = match available.iter().position(|&byte| byte == b'\n') {
            Some(end) => (&available[..end], end + 1, true),
            None => (available, available.len(), false),
        };
        let room = (bytes_max + 1).saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        input.consume(used);
        if done {
            break;
        }
    }
    if !read_any {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    if buffer.len() > bytes_max {
        too_long = true;
        buffer.clear();
    }
    Ok(Some(too_long))
}

/// The labelled set's queries (positives and negatives), in file order.
fn bench_queries() -> Vec<String> {
    LABELLED_SET
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split('\t').nth(3))
        .map(str::to_string)
        .collect()
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=BENCH_THREADS_MAX).contains(&args.threads),
        "--threads must be 1..={BENCH_THREADS_MAX}"
    );
    anyhow::ensure!(
        (1..=BENCH_NAMES_MAX).contains(&args.names) && args.naive_names <= BENCH_NAMES_MAX,
        "--names must be 1..={BENCH_NAMES_MAX}"
    );
    say!("machine: {}", machine_facts());
    let started = Instant::now();
    let list = SanctionsList::load_dir(&args.list.list_dir).with_context(|| {
        format!(
            "loading the sanctions list from {}",
            args.list.list_dir.display()
        )
    })?;
    let parsed = started.elapsed();
    let screener = Screener::new(&list, Thresholds::TUNED);
    let indexed = started.elapsed() - parsed;
    say!(
        "load: {} entries, {} aliases, {} names indexed; parse {:.1} ms, index {:.1} ms, total {:.1} ms",
        list.entries().len(),
        list.aliases().len(),
        screener.name_count(),
        millis(parsed),
        millis(indexed),
        millis(parsed + indexed)
    );
    let distinct = bench_queries();
    anyhow::ensure!(!distinct.is_empty(), "the labelled set has no queries");
    let mut random = rand::rngs::StdRng::seed_from_u64(20_261_121);
    let mut workload: Vec<&str> = distinct
        .iter()
        .cycle()
        .take(args.names)
        .map(String::as_str)
        .collect();
    workload.shuffle(&mut random);
    // Warm-up: every distinct query once, so the first timed calls are not page faults.
    let subject = Subject::from(args.subject);
    for query in &distinct {
        let _ = screener.screen_as(query, subject);
    }
    let run = screen_parallel(&screener, subject, &workload, args.threads);
    say!(
        "indexed ({subject:?}): {} names ({} distinct) on {} threads in {:.1} ms: {:.0} names/s; per name p50 {:.1} µs p99 {:.1} µs max {:.1} µs; decisions clear {} review {} block {} error {}",
        workload.len(),
        distinct.len(),
        args.threads,
        millis(run.elapsed),
        run.rate(),
        run.percentile_micros(0.50),
        run.percentile_micros(0.99),
        run.percentile_micros(1.0),
        run.decisions[0],
        run.decisions[1],
        run.decisions[2],
        run.errors
    );
    let naive_workload: Vec<&str> = workload.iter().take(args.naive_names).copied().collect();
    let naive = screen_naive(&screener, subject, &naive_workload);
    if !naive_workload.is_empty() {
        say!(
            "naive: {} names on 1 thread in {:.1} ms: {:.0} names/s; per name p50 {:.1} µs p99 {:.1} µs max {:.1} µs; decisions differing from the index: {}",
            naive_workload.len(),
            millis(naive.run.elapsed),
            naive.run.rate(),
            naive.run.percentile_micros(0.50),
            naive.run.percentile_micros(0.99),
            naive.run.percentile_micros(1.0),
            naive.disagreements
        );
        say!(
            "ratio: per-name p50 naive / indexed {:.0}x",
            naive.run.percentile_micros(0.50) / run.percentile_micros(0.50).max(0.001)
        );
    }
    let met = run.rate() >= 50_000.0 && run.percentile_micros(0.99) < 1_000.0;
    say!(
        "target (>= 50,000 names/s, p99 < 1 ms): {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(ExitCode::SUCCESS)
}

struct Run {
    elapsed: Duration,
    latencies_nanos: Vec<u64>,
    /// clear, review, block
    decisions: [usize; 3],
    errors: usize,
}

impl Run {
    fn rate(&self) -> f64 {
        self.latencies_nanos.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// `latencies_nanos` is sorted by the runners.
    fn percentile_micros(&self, fraction: f64) -> f64 {
        if self.latencies_nanos.is_empty() {
            return 0.0;
        }
        let last = self.latencies_nanos.len() - 1;
        let index = ((last as f64) * fraction).round() as usize;
        self.latencies_nanos[index.min(last)] as f64 / 1_000.0
    }
}

fn screen_parallel(
    screener: &Screener,
    subject: Subject,
    workload: &[&str],
    threads: usize,
) -> Run {
    let chunk = workload.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let parts: Vec<(Vec<u64>, [usize; 3], usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = workload
            .chunks(chunk)
            .map(|part| scope.spawn(move || screen_all(screener, subject, part)))
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok())
            .collect()
    });
    let elapsed = started.elapsed();
    let mut run = Run {
        elapsed,
        latencies_nanos: Vec::with_capacity(workload.len()),
        decisions: [0; 3],
        errors: 0,
    };
    for (latencies, decisions, errors) in parts {
        run.latencies_nanos.extend(latencies);
        for (total, count) in run.decisions.iter_mut().zip(decisions) {
            *total += count;
        }
        run.errors += errors;
    }
    run.latencies_nanos.sort_unstable();
    run
}

fn screen_all(
    screener: &Screener,
    subject: Subject,
    part: &[&str],
) -> (Vec<u64>, [usize; 3], usize) {
    let mut latencies = Vec::with_capacity(part.len());
    let mut decisions = [0usize; 3];
    let mut errors = 0usize;
    for query in part {
        let started = Instant::now();
        let result = screener.screen_as(query, subject);
        latencies.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        count(&result, &mut decisions, &mut errors);
    }
    (latencies, decisions, errors)
}

fn count(result: &Result<Screening, ScreenError>, decisions: &mut [usize; 3], errors: &mut usize) {
    match result {
        Ok(screening) => {
            let slot = match screening.decision {
                Decision::Clear => 0,
                Decision::Review => 1,
                Decision::Block => 2,
            };
            decisions[slot] += 1;
        }
        Err(_) => *errors += 1,
    }
}

struct NaiveRun {
    run: Run,
    disagreements: usize,
}

fn screen_naive(screener: &Screener, subject: Subject, workload: &[&str]) -> NaiveRun {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(workload.len());
    let mut decisions = [0usize; 3];
    let mut errors = 0usize;
    let mut naive_decisions = Vec::with_capacity(workload.len());
    for query in workload {
        let begun = Instant::now();
        let result = screener.screen_naive_as(query, subject);
        latencies.push(u64::try_from(begun.elapsed().as_nanos()).unwrap_or(u64::MAX));
        naive_decisions.push(result.as_ref().ok().map(|screening| screening.decision));
        count(&result, &mut decisions, &mut errors);
    }
    let elapsed = started.elapsed();
    let disagreements = workload
        .iter()
        .zip(&naive_decisions)
        .filter(|(query, naive)| {
            screener
                .screen_as(query, subject)
                .ok()
                .map(|screening| screening.decision)
                != **naive
        })
        .count();
    latencies.sort_unstable();
    NaiveRun {
        run: Run {
            elapsed,
            latencies_nanos: latencies,
            decisions,
            errors,
        },
        disagreements,
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// CPU model, core count and load average, read from /proc where it exists.
fn machine_facts() -> String {
    let cores = std::thread::available_parallelism()
        .map(|cores| cores.get())
        .unwrap_or(0);
    let model = read_small("/proc/cpuinfo")
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let load = read_small("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_string());
    format!("{model}, {cores} cores, load average {load} at start")
}

/// Reads at most 1 MiB of a small system file.
fn read_small(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_capped_and_split() {
        let long = "x".repeat(20);
        let text = format!("ab\r\n\n{long}\ncd");
        let mut input = std::io::Cursor::new(text.into_bytes());
        let mut buffer = Vec::new();
        let mut lines = Vec::new();
        while let Some(too_long) = read_line_capped(&mut input, &mut buffer, 10).unwrap() {
            lines.push((String::from_utf8(buffer.clone()).unwrap(), too_long));
        }
        assert_eq!(
            lines,
            vec![
                ("ab".to_string(), false),
                (String::new(), false),
                (String::new(), true),
                ("cd".to_string(), false),
            ]
        );
    }
}
