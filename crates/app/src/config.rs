//! Settings: built-in defaults (`config/default.toml`), then the `--config`
//! file, then `WEBHOOKS__SECTION__KEY` environment variables. Everything is
//! checked here, once; a bad value stops start-up with one line naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.toml");

/// A setting that cannot be used, with its dotted name.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot read configuration: {0}")]
    Unreadable(String),
}

fn invalid(name: &'static str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// The effective configuration, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub secrets: SecretSettings,
    pub delivery: DeliverySettings,
    pub log: LogSettings,
    /// Whether the first start on an empty database creates a demo tenant.
    pub demo_tenant: bool,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub admin_token: Option<String>,
    pub service_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SecretSettings {
    pub encryption_key: Option<String>,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub retry_schedule: Vec<Duration>,
    pub timeout: Duration,
    pub allow_networks: Vec<IpNet>,
    pub workers: usize,
    pub per_endpoint_concurrency: usize,
    pub disable_after: Duration,
    pub secret_rotation_grace: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// The settings as read, before checking. Unknown keys are refused, so a
/// misspelt setting stops start-up instead of being ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    server: RawServer,
    database: RawDatabase,
    #[serde(default)]
    auth: RawAuth,
    secrets: RawSecrets,
    delivery: RawDelivery,
    log: RawLog,
    bootstrap: RawBootstrap,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBootstrap {
    demo_tenant: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    bind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    pool_size: i64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    admin_token: Option<String>,
    service_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    encryption_key: Option<String>,
    key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    retry_schedule: ListOrString,
    timeout: String,
    allow_networks: ListOrString,
    workers: i64,
    per_endpoint_concurrency: i64,
    disable_after: String,
    secret_rotation_grace: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: String,
}

/// A list written either as a TOML array or as one comma-separated string
/// (as environment variables are).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListOrString {
    List(Vec<String>),
    Text(String),
}

impl ListOrString {
    fn items(&self) -> Vec<String> {
        let items: Vec<String> = match self {
            ListOrString::List(items) => items.clone(),
            ListOrString::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    }
}

impl Settings {
    /// Defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, Environment::with_prefix("WEBHOOKS"))
    }

    /// The built-in defaults alone, ignoring the environment (for tests and
    /// embedding).
    pub fn defaults() -> Result<Self, SettingsError> {
        let no_variables = std::collections::HashMap::new();
        Self::load_from(
            None,
            Environment::with_prefix("WEBHOOKS").source(Some(no_variables)),
        )
    }

    fn load_from(file: Option<&Path>, env: Environment) -> Result<Self, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError::Unreadable(format!(
                    "configuration file {} not found",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).required(true));
        }
        // Lists stay strings here and are split by `ListOrString`, so an
        // empty variable is an empty list.
        let env = env
            .prefix_separator("__")
            .separator("__")
            .try_parsing(false);
        let raw: Raw = builder
            .add_source(env)
            .build()
            .and_then(Config::try_deserialize)
            // One line, whatever the parser printed.
            .map_err(|err| SettingsError::Unreadable(one_line(&err.to_string())))?;
        Self::check(raw)
    }

    fn check(raw: Raw) -> Result<Self, SettingsError> {
        let bind = raw.server.bind.trim().parse().map_err(|_| {
            invalid(
                "server.bind",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    raw.server.bind
                ),
            )
        })?;
        let url = raw.database.url.trim().to_owned();
        if !(url.starts_with("sqlite://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        let pool_size = u32::try_from(raw.database.pool_size)
            .ok()
            .filter(|n| *n <= 1000)
            .ok_or_else(|| invalid("database.pool_size", "must be between 0 and 1000"))?;
        let encryption_key = non_empty(raw.secrets.encryption_key);
        if let Some(key) = &encryption_key {
            webhooks_domain::SecretCipher::from_base64(key)
                .map_err(|err| invalid("secrets.encryption_key", err.to_string()))?;
        }
        let retry_schedule = raw
            .delivery
            .retry_schedule
            .items()
            .iter()
            .map(|item| duration("delivery.retry_schedule", item))
            .collect::<Result<Vec<_>, _>>()?;
        let allow_networks = raw
            .delivery
            .allow_networks
            .items()
            .iter()
            .map(|item| {
                item.parse::<IpNet>().map_err(|_| {
                    invalid(
                        "delivery.allow_networks",
                        format!("{item:?} is not a CIDR like 127.0.0.0/8"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = duration("delivery.timeout", &raw.delivery.timeout)?;
        if timeout.is_zero() {
            return Err(invalid("delivery.timeout", "must be longer than zero"));
        }
        let demo_tenant = match raw.bootstrap.demo_tenant.trim() {
            "true" => true,
            "false" => false,
            other => {
                return Err(invalid(
                    "bootstrap.demo_tenant",
                    format!("{other:?} is neither true nor false"),
                ))
            }
        };
        if encryption_key.is_none() && !url.starts_with("sqlite://") {
            // Every process must seal and open secrets with the same key; a
            // key file per machine would silently differ between processes.
            return Err(invalid(
                "secrets.encryption_key",
                "must be set with PostgreSQL, the same in every process (e.g. openssl rand -base64 32)",
            ));
        }
        let format = match raw.log.format.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "log.format",
                    format!("{other:?} is neither text nor json"),
                ))
            }
        };
        Ok(Settings {
            server: ServerSettings { bind },
            database: DatabaseSettings { url, pool_size },
            auth: AuthSettings {
                admin_token: non_empty(raw.auth.admin_token),
                service_token: non_empty(raw.auth.service_token),
            },
            secrets: SecretSettings {
                encryption_key,
                key_file: PathBuf::from(raw.secrets.key_file),
            },
            delivery: DeliverySettings {
                retry_schedule,
                timeout,
                allow_networks,
                workers: count("delivery.workers", raw.delivery.workers, 0)?,
                per_endpoint_concurrency: count(
                    "delivery.per_endpoint_concurrency",
                    raw.delivery.per_endpoint_concurrency,
                    1,
                )?,
                disable_after: duration("delivery.disable_after", &raw.delivery.disable_after)?,
                secret_rotation_grace: duration(
                    "delivery.secret_rotation_grace",
                    &raw.delivery.secret_rotation_grace,
                )?,
            },
            log: LogSettings { format },
            demo_tenant,
        })
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn duration(name: &'static str, raw: &str) -> Result<Duration, SettingsError> {
    humantime::parse_duration(raw.trim()).map_err(|_| {
        invalid(
            name,
            format!("{raw:?} is not a duration like 15s, 5m or 2h"),
        )
    })
}

fn count(name: &'static str, raw: i64, min: i64) -> Result<usize, SettingsError> {
    if (min..=100_000).contains(&raw) {
        usize::try_from(raw).map_err(|_| invalid(name, "out of range"))
    } else {
        Err(invalid(
            name,
            format!("must be a whole number from {min} to 100000"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load_from(None, Environment::with_prefix("WEBHOOKS").source(Some(map)))
    }

    #[test]
    fn defaults_match_the_contract() {
        let settings = load(&[]).unwrap();
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database.url, "sqlite://data/webhooks.db");
        assert_eq!(settings.auth.admin_token, None);
        assert_eq!(settings.auth.service_token, None);
        assert_eq!(settings.delivery.timeout, Duration::from_secs(15));
        let hours = |h: u64| Duration::from_secs(h * 3600);
        assert_eq!(
            settings.delivery.retry_schedule,
            vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                hours(2),
                hours(5),
                hours(10),
                hours(10)
            ]
        );
        assert!(settings.delivery.allow_networks.is_empty());
        assert_eq!(settings.log.format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_defaults_and_splits_lists() {
        let settings = load(&[
            ("WEBHOOKS__SERVER__BIND", "127.0.0.1:0"),
            ("WEBHOOKS__AUTH__ADMIN_TOKEN", "adm"),
            ("WEBHOOKS__DELIVERY__ALLOW_NETWORKS", "127.0.0.0/8, ::1/128"),
            ("WEBHOOKS__DELIVERY__RETRY_SCHEDULE", "1s,2s"),
        ])
        .unwrap();
        assert_eq!(settings.server.bind.port(), 0);
        assert_eq!(settings.auth.admin_token.as_deref(), Some("adm"));
        assert_eq!(settings.delivery.allow_networks.len(), 2);
        assert_eq!(settings.delivery.retry_schedule.len(), 2);
    }

    #[test]
    fn an_empty_variable_is_an_empty_list() {
        let settings = load(&[("WEBHOOKS__DELIVERY__RETRY_SCHEDULE", "")]).unwrap();
        assert!(settings.delivery.retry_schedule.is_empty());
    }

    #[test]
    fn a_bad_value_names_its_setting() {
        let cases = [
            ("WEBHOOKS__SERVER__BIND", "nowhere", "server.bind"),
            ("WEBHOOKS__DATABASE__URL", "mysql://x", "database.url"),
            ("WEBHOOKS__DELIVERY__TIMEOUT", "soon", "delivery.timeout"),
            (
                "WEBHOOKS__DELIVERY__ALLOW_NETWORKS",
                "10.0.0.0/99",
                "delivery.allow_networks",
            ),
            (
                "WEBHOOKS__SECRETS__ENCRYPTION_KEY",
                "short",
                "secrets.encryption_key",
            ),
            ("WEBHOOKS__LOG__FORMAT", "xml", "log.format"),
            (
                "WEBHOOKS__BOOTSTRAP__DEMO_TENANT",
                "maybe",
                "bootstrap.demo_tenant",
            ),
            (
                "WEBHOOKS__DATABASE__URL",
                "postgres://db/x",
                "secrets.encryption_key",
            ),
            ("WEBHOOKS__SERVER__BINDX", "127.0.0.1:1", "bindx"),
        ];
        for (var, value, name) in cases {
            let err = load(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{var}={value}: {err}");
        }
    }
}
