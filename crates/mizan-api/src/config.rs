//! [`ServerConfig`]: defaults, then an optional TOML file, then the environment.
//!
//! Secret fields are [`Secret`]s, so printing the config (`{:?}`, logs) shows `***`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mizan_core::Secret;
use serde::Deserialize;

/// Where the server listens unless told otherwise.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";

/// Largest request body the server reads; larger bodies get 413.
pub const REQUEST_BODY_BYTES_MAX_DEFAULT: usize = 64 * 1024;

/// How long, after the shutdown signal, in-flight requests may take to finish.
pub const SHUTDOWN_GRACE_MS_DEFAULT: u64 = 30_000;

pub const WEBHOOK_RETRY_BASE_MS_DEFAULT: u64 = 10_000;
/// Ten attempts at a 10 s base: the last retry comes about 85 minutes after the first.
pub const WEBHOOK_ATTEMPTS_MAX_DEFAULT: u32 = 10;
pub const WEBHOOK_TIMEOUT_MS_DEFAULT: u64 = 5_000;
pub const WEBHOOK_POLL_MS_DEFAULT: u64 = 200;
/// How often the subscription renewal job runs.
pub const SUBSCRIPTION_RENEWAL_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// $100.00: payments from this amount up need a fresh second factor (with TOTP on).
pub const STEP_UP_THRESHOLD_MINOR_DEFAULT: i64 = 10_000;
pub const RATE_LIMIT_IP_PER_MINUTE_DEFAULT: u32 = 1_200;
pub const READERS_DEFAULT: usize = 4;
pub const RATE_LIMIT_PERSON_PER_MINUTE_DEFAULT: u32 = 600;
pub const RATE_LIMIT_APP_PER_MINUTE_DEFAULT: u32 = 6_000;

/// Where `mizan serve` reads the OFAC list unless told otherwise (relative to the
/// working directory: the repository root).
pub const SANCTIONS_DIR_DEFAULT: &str = "data/ofac";

/// Shortest operator token accepted: a guessable one would open the operator routes.
pub const OPERATOR_TOKEN_CHARS_MIN: usize = 24;

/// Largest config file the server reads.
const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    fn parse(value: &str) -> Option<LogFormat> {
        match value {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on (`MIZAN_LISTEN`).
    pub listen: SocketAddr,
    /// `text` or `json` log lines on stderr (`MIZAN_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Largest accepted request body, in bytes.
    pub request_body_bytes_max: usize,
    /// After the shutdown signal, how long open connections may take to finish before
    /// the server stops waiting for them.
    pub shutdown_grace_ms: u64,
    /// Key that will sign session tokens (`MIZAN_SESSION_SIGNING_KEY`); never printed.
    pub session_signing_key: Option<Secret<String>>,
    /// The bearer token of the operator routes (`/v1/apps`), `MIZAN_OPERATOR_TOKEN`;
    /// without one those routes answer 401. Never printed.
    pub operator_token: Option<Secret<String>>,
    /// Webhook delivery: first retry delay (doubling per attempt, capped at an hour).
    pub webhook_retry_base_ms: u64,
    /// Webhook delivery: attempts before a delivery is marked failed.
    pub webhook_attempts_max: u32,
    /// Webhook delivery: how long one attempt may take.
    pub webhook_timeout_ms: u64,
    /// Webhook delivery: how often the worker looks for new outbox events.
    pub webhook_poll_ms: u64,
    /// Payments at or above this many minor units (USD cents) need a session that
    /// proved its second factor in the last five minutes, when the person has TOTP on.
    pub step_up_threshold_minor: i64,
    /// Requests a minute from one client IP (0: no limit); a burst of a sixth on top.
    pub rate_limit_ip_per_minute: u32,
    /// Requests a minute by one person's sessions (0: no limit).
    pub rate_limit_person_per_minute: u32,
    /// Requests a minute by one app, its key and its tokens together (0: no limit).
    pub rate_limit_app_per_minute: u32,
    /// Ledger readers requests share (SQLite WAL readers or PostgreSQL connections).
    pub readers: usize,
    /// The platform's cut of every tip, in basis points (0–10,000; default 0).
    pub tip_fee_bps: u32,
    /// The platform's cut of every subscription charge, in basis points (0–10,000;
    /// default 0).
    pub subscription_fee_bps: u32,
    /// Seconds a subscription whose renewal failed stays in grace (retried every
    /// run) before it lapses (default 259,200 = 3 days; at most 30 days).
    pub subscription_grace_seconds: u64,
    /// How often `mizan serve` runs the renewal job (default 60,000 = a minute).
    pub subscription_renewal_interval_ms: u64,
    /// The platform's cut of a paid DM when it is paid out (default 1,000 = 10%).
    pub paid_dm_cut_bps: u32,
    /// Seconds a paid DM's recipient has to answer before the ledger refunds the
    /// sender (default 259,200 = 72 h).
    pub paid_dm_timeout_seconds: u32,
    /// Limits per verification tier (`[limits.tier0]` … `[limits.tier2]`, USD
    /// cents; TOML only). See docs/COMPLIANCE.md.
    pub limits: mizan_app::limits::LimitsTable,
    /// The vault's master key file (`MIZAN_MASTER_KEY_FILE`; see docs/VAULT.md).
    /// Without it and without `MIZAN_MASTER_KEYS`, the embedded SQLite store uses
    /// `mizan.vault.key` in the data directory, created (mode 0600) on first start;
    /// PostgreSQL refuses to start.
    pub vault_key_file: Option<PathBuf>,
    /// The vault's keys themselves (`MIZAN_MASTER_KEYS`, environment only: keys never
    /// go in a config file). Never printed.
    #[serde(skip)]
    pub vault_master_keys: Option<Secret<String>>,
    /// Directory of the OFAC list (`sdn.csv`, `alt.csv`), loaded once at start; a
    /// list that fails to load stops the start. `ServerConfig::load` (the binary)
    /// defaults it to [`SANCTIONS_DIR_DEFAULT`]; `ServerConfig::default()` (library
    /// embeddings, tests) has none, and then nobody is screened.
    /// Env: `MIZAN_SANCTIONS_DIR`.
    pub sanctions_dir: Option<PathBuf>,
    /// The filing institution SAR and CTR drafts name (`[filer]`, TOML only).
    pub filer: mizan_app::reports::Filer,
    /// Transaction-monitoring thresholds (`[monitoring]`, TOML only); see
    /// docs/COMPLIANCE.md.
    pub monitoring: mizan_compliance::monitoring::Thresholds,
    /// Seconds between transaction-monitoring scans of everyone; 3,600 (an hour) by
    /// default, so alerts become cases without anyone asking; 0 runs none (operators
    /// still run one with `POST /v1/monitoring/scan`).
    pub monitoring_scan_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Text,
            request_body_bytes_max: REQUEST_BODY_BYTES_MAX_DEFAULT,
            shutdown_grace_ms: SHUTDOWN_GRACE_MS_DEFAULT,
            session_signing_key: None,
            operator_token: None,
            webhook_retry_base_ms: WEBHOOK_RETRY_BASE_MS_DEFAULT,
            webhook_attempts_max: WEBHOOK_ATTEMPTS_MAX_DEFAULT,
            webhook_timeout_ms: WEBHOOK_TIMEOUT_MS_DEFAULT,
            webhook_poll_ms: WEBHOOK_POLL_MS_DEFAULT,
            step_up_threshold_minor: STEP_UP_THRESHOLD_MINOR_DEFAULT,
            rate_limit_ip_per_minute: RATE_LIMIT_IP_PER_MINUTE_DEFAULT,
            rate_limit_person_per_minute: RATE_LIMIT_PERSON_PER_MINUTE_DEFAULT,
            rate_limit_app_per_minute: RATE_LIMIT_APP_PER_MINUTE_DEFAULT,
            readers: READERS_DEFAULT,
            tip_fee_bps: 0,
            subscription_fee_bps: 0,
            subscription_grace_seconds: mizan_app::subscriptions::GRACE_SECONDS_DEFAULT,
            subscription_renewal_interval_ms: SUBSCRIPTION_RENEWAL_INTERVAL_MS_DEFAULT,
            paid_dm_cut_bps: 1_000,
            paid_dm_timeout_seconds: 72 * 3_600,
            limits: mizan_app::limits::LimitsTable::default(),
            vault_key_file: None,
            vault_master_keys: None,
            sanctions_dir: None,
            filer: mizan_app::reports::Filer::default(),
            monitoring: mizan_compliance::monitoring::Thresholds::default(),
            monitoring_scan_seconds: 3_600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    // Only the parser's message: its full rendering quotes the offending line, which
    // may hold a secret.
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
}

impl ServerConfig {
    /// Defaults, overridden by `file` (TOML) when given, then by the process environment.
    pub fn load(file: Option<&Path>) -> Result<ServerConfig, ConfigError> {
        ServerConfig::load_from(file, |name| std::env::var(name).ok())
    }

    /// [`ServerConfig::load`] with the environment passed in (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut config = match file {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        config.apply_env(env)?;
        if config.sanctions_dir.is_none() {
            config.sanctions_dir = Some(PathBuf::from(SANCTIONS_DIR_DEFAULT));
        }
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let length = std::fs::metadata(path).map_err(read_error)?.len();
        if length > CONFIG_FILE_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                max: CONFIG_FILE_BYTES_MAX,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        ServerConfig::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML; the error is the parser's message without the quoted input.
    pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
        let config: ServerConfig =
            toml::from_str(text).map_err(|error: toml::de::Error| error.message().to_owned())?;
        if config.tip_fee_bps > mizan_app::tips::FEE_BPS_MAX {
            return Err("tip_fee_bps is at most 10000 (100%)".to_owned());
        }
        if config.subscription_fee_bps > mizan_app::tips::FEE_BPS_MAX {
            return Err("subscription_fee_bps is at most 10000 (100%)".to_owned());
        }
        if config.subscription_grace_seconds > mizan_app::subscriptions::GRACE_SECONDS_MAX {
            return Err("subscription_grace_seconds is at most 2592000 (30 days)".to_owned());
        }
        if config.subscription_renewal_interval_ms == 0 {
            return Err("subscription_renewal_interval_ms must be at least 1".to_owned());
        }
        if config.paid_dm_cut_bps > mizan_app::tips::FEE_BPS_MAX {
            return Err("paid_dm_cut_bps is at most 10000 (100%)".to_owned());
        }
        if config.paid_dm_timeout_seconds == 0 {
            return Err("paid_dm_timeout_seconds must be at least 1".to_owned());
        }
        config
            .limits
            .validate()
            .map_err(|reason| format!("limits: {reason}"))?;
        config
            .monitoring
            .validate()
            .map_err(|reason| format!("monitoring: {reason}"))?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(value) = env("MIZAN_LISTEN") {
            self.listen = value.parse().map_err(|_| ConfigError::Env {
                name: "MIZAN_LISTEN",
                reason: format!("{value:?} is not an address:port"),
            })?;
        }
        if let Some(value) = env("MIZAN_LOG_FORMAT") {
            self.log_format = LogFormat::parse(&value).ok_or_else(|| ConfigError::Env {
                name: "MIZAN_LOG_FORMAT",
                reason: format!("{value:?} is neither \"json\" nor \"text\""),
            })?;
        }
        if let Some(value) = env("MIZAN_SANCTIONS_DIR") {
            self.sanctions_dir = Some(PathBuf::from(value));
        }
        if let Some(value) = env("MIZAN_SESSION_SIGNING_KEY") {
            self.session_signing_key = Some(Secret::new(value));
        }
        if let Some(value) = env("MIZAN_OPERATOR_TOKEN") {
            if value.len() < OPERATOR_TOKEN_CHARS_MIN {
                return Err(ConfigError::Env {
                    name: "MIZAN_OPERATOR_TOKEN",
                    reason: format!("shorter than {OPERATOR_TOKEN_CHARS_MIN} characters"),
                });
            }
            self.operator_token = Some(Secret::new(value));
        }
        if let Some(value) = env("MIZAN_MASTER_KEY_FILE") {
            self.vault_key_file = Some(PathBuf::from(value));
        }
        if let Some(value) = env("MIZAN_MASTER_KEYS") {
            self.vault_master_keys = Some(Secret::new(value));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let config = ServerConfig::from_toml(
            "listen = \"127.0.0.1:9000\"\nsession_signing_key = \"top-secret-key\"\n",
        )
        .unwrap();
        assert_eq!(
            config.session_signing_key.as_ref().unwrap().expose(),
            "top-secret-key"
        );
        let printed = format!("{config:?}");
        assert!(!printed.contains("top-secret-key"), "{printed}");
        assert!(printed.contains("***"), "{printed}");
        assert!(!format!("{config:#?}").contains("top-secret-key"));
    }

    #[test]
    fn vault_keys_come_from_the_environment_and_never_print() {
        let keys = "master.1=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let env = |name: &str| match name {
            "MIZAN_MASTER_KEYS" => Some(keys.to_owned()),
            "MIZAN_MASTER_KEY_FILE" => Some("/etc/mizan/vault.key".to_owned()),
            _ => None,
        };
        let config = ServerConfig::load_from(None, env).unwrap();
        assert_eq!(config.vault_master_keys.as_ref().unwrap().expose(), keys);
        assert_eq!(
            config.vault_key_file.as_deref(),
            Some(Path::new("/etc/mizan/vault.key"))
        );
        assert!(!format!("{config:?}").contains("AAECAwQF"));
        // Keys never come from a config file.
        assert!(ServerConfig::from_toml("vault_master_keys = \"x\"").is_err());
    }

    #[test]
    fn parse_errors_do_not_quote_the_input() {
        let error = ServerConfig::from_toml("session_signing_key = top-secret-key\n").unwrap_err();
        assert!(!error.contains("top-secret-key"), "{error}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("mizan.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlog_format = \"text\"\n",
        )
        .unwrap();
        let env = |name: &str| match name {
            "MIZAN_LISTEN" => Some("0.0.0.0:7000".to_owned()),
            "MIZAN_LOG_FORMAT" => Some("json".to_owned()),
            _ => None,
        };
        let config = ServerConfig::load_from(Some(&path), env).unwrap();
        assert_eq!(config.listen, "0.0.0.0:7000".parse().unwrap());
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.request_body_bytes_max,
            REQUEST_BODY_BYTES_MAX_DEFAULT
        );
    }

    #[test]
    fn defaults_without_file_or_environment() {
        let config = ServerConfig::load_from(None, |_| None).unwrap();
        assert_eq!(config.listen.to_string(), LISTEN_DEFAULT);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(
            config.sanctions_dir.as_deref(),
            Some(Path::new(SANCTIONS_DIR_DEFAULT))
        );
        assert_eq!(ServerConfig::default().sanctions_dir, None);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_env() {
        assert!(ServerConfig::from_toml("listen_addr = \"x\"").is_err());
        let env = |name: &str| (name == "MIZAN_LOG_FORMAT").then(|| "xml".to_owned());
        assert!(ServerConfig::load_from(None, env).is_err());
    }
}
