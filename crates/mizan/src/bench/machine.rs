//! The facts printed before any figure, so a pasted result says what it ran on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct PostgresFacts {
    pub version: String,
    /// `synchronous_commit`, `fsync`, `shared_buffers`, `max_wal_size`.
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachineFacts {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1, 5 and 15 minute load averages when the bench started.
    pub load_average: String,
    pub sqlite_version: String,
    pub sqlite_directory: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresFacts>,
}

impl MachineFacts {
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "machine: {}, {} cores, {:.1} GiB memory, Linux {}, load average {} at start",
                self.cpu, self.cores, self.memory_gib, self.kernel, self.load_average
            ),
            format!(
                "sqlite {} (WAL; the writer flushes the WAL before it replies) in {}",
                self.sqlite_version, self.sqlite_directory
            ),
        ];
        if let Some(postgres) = &self.postgres {
            let settings: Vec<String> = postgres
                .settings
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            lines.push(format!(
                "postgres {} ({})",
                postgres.version,
                settings.join(", ")
            ));
        }
        lines
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of the first `key: value` line of /proc/cpuinfo or /proc/meminfo.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim() == key)
        .map(|(_, value)| value.trim().to_owned())
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews the figures.
pub fn load_average() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn facts(sqlite_directory: &Path, postgres: Option<&PostgresFacts>) -> MachineFacts {
    let memory_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
        .and_then(|value| value.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    MachineFacts {
        cpu: field(&read("/proc/cpuinfo"), "model name").unwrap_or_else(|| "unknown".into()),
        cores: std::thread::available_parallelism().map_or(0, |cores| cores.get()),
        memory_gib: memory_kib / 1024.0 / 1024.0,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        load_average: load_average(),
        sqlite_version: rusqlite::version().to_owned(),
        sqlite_directory: sqlite_directory.display().to_string(),
        postgres: postgres.cloned(),
    }
}

/// Connects to the admin URL (or fails within `timeout_ms`) and reads the server's
/// version and durability settings.
pub fn postgres_facts(admin_url: &str, timeout_ms: u64) -> anyhow::Result<PostgresFacts> {
    let mut config: postgres::Config = admin_url.parse()?;
    config.connect_timeout(Duration::from_millis(timeout_ms));
    let mut client = config.connect(postgres::NoTls)?;
    let version: String = client.query_one("SHOW server_version", &[])?.try_get(0)?;
    let mut settings = BTreeMap::new();
    for name in [
        "synchronous_commit",
        "fsync",
        "shared_buffers",
        "max_wal_size",
    ] {
        let value: String = client.query_one(&format!("SHOW {name}"), &[])?.try_get(0)?;
        settings.insert(name.to_owned(), value);
    }
    Ok(PostgresFacts { version, settings })
}
