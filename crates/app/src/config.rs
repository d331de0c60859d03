//! Settings: built-in defaults (`config/default.toml`), then the `--config`
//! file, then `WEBHOOKS__SECTION__KEY` environment variables. Everything is
//! checked here, once; a bad value stops start-up with one line naming it.
//! [`Settings::effective`] is what `okaya-webhooks config check` prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use ipnet::IpNet;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};

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
    /// How long a request body may take to arrive once its reading starts.
    pub body_timeout: Duration,
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
    /// Timeouts in a row that open an endpoint's circuit; 0: never.
    pub circuit_breaker_timeouts: usize,
    /// How long a circuit first stays open.
    pub circuit_breaker_open_for: Duration,
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
    body_timeout: String,
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
    circuit_breaker_timeouts: i64,
    circuit_breaker_open_for: String,
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
        let body_timeout = duration("server.body_timeout", &raw.server.body_timeout)?;
        if body_timeout.is_zero() || body_timeout > Duration::from_secs(3600) {
            return Err(invalid(
                "server.body_timeout",
                "must be longer than zero and at most 1h",
            ));
        }
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
        if timeout.is_zero() || timeout > Duration::from_secs(24 * 3600) {
            return Err(invalid(
                "delivery.timeout",
                "must be longer than zero and at most 24h",
            ));
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
            server: ServerSettings { bind, body_timeout },
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
                circuit_breaker_timeouts: count(
                    "delivery.circuit_breaker_timeouts",
                    raw.delivery.circuit_breaker_timeouts,
                    0,
                )?,
                circuit_breaker_open_for: duration(
                    "delivery.circuit_breaker_open_for",
                    &raw.delivery.circuit_breaker_open_for,
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

/// What `config check` shows instead of a secret that is set.
pub const MASK: &str = "****";

/// One setting's value as `config check` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue {
    Unset,
    Text(String),
    Number(u64),
    Bool(bool),
    List(Vec<String>),
}

/// The effective configuration with its secrets masked, section by section
/// in the order of `config/default.toml`: what `okaya-webhooks config check`
/// prints, and the list of settings the documentation is checked against.
#[derive(Debug, Clone)]
pub struct EffectiveConfig {
    sections: Vec<(&'static str, Vec<(&'static str, SettingValue)>)>,
}

impl Settings {
    /// These settings as `config check` shows them: durations in humantime
    /// syntax, tokens, the encryption key and the database password as
    /// [`MASK`].
    pub fn effective(&self) -> EffectiveConfig {
        // Destructured without `..`: a new setting does not compile until it
        // is shown here, and so in `config check` and in the documentation
        // test that compares docs/configuration.md with this list.
        let Settings {
            server: ServerSettings { bind, body_timeout },
            database: DatabaseSettings { url, pool_size },
            auth:
                AuthSettings {
                    admin_token,
                    service_token,
                },
            secrets:
                SecretSettings {
                    encryption_key,
                    key_file,
                },
            delivery:
                DeliverySettings {
                    retry_schedule,
                    timeout,
                    allow_networks,
                    workers,
                    per_endpoint_concurrency,
                    circuit_breaker_timeouts,
                    circuit_breaker_open_for,
                    disable_after,
                    secret_rotation_grace,
                },
            log: LogSettings { format },
            demo_tenant,
        } = self;
        let text = |value: String| SettingValue::Text(value);
        let time = |value: &Duration| text(humantime::format_duration(*value).to_string());
        let secret = |value: &Option<String>| match value {
            Some(_) => text(MASK.to_owned()),
            None => SettingValue::Unset,
        };
        let number = |value: usize| SettingValue::Number(value as u64);
        EffectiveConfig {
            sections: vec![
                (
                    "server",
                    vec![
                        ("bind", text(bind.to_string())),
                        ("body_timeout", time(body_timeout)),
                    ],
                ),
                (
                    "database",
                    vec![
                        ("url", text(mask_database_url(url))),
                        ("pool_size", SettingValue::Number(u64::from(*pool_size))),
                    ],
                ),
                (
                    "auth",
                    vec![
                        ("admin_token", secret(admin_token)),
                        ("service_token", secret(service_token)),
                    ],
                ),
                (
                    "secrets",
                    vec![
                        ("encryption_key", secret(encryption_key)),
                        ("key_file", text(key_file.display().to_string())),
                    ],
                ),
                (
                    "delivery",
                    vec![
                        (
                            "retry_schedule",
                            SettingValue::List(
                                retry_schedule
                                    .iter()
                                    .map(|wait| humantime::format_duration(*wait).to_string())
                                    .collect(),
                            ),
                        ),
                        ("timeout", time(timeout)),
                        (
                            "allow_networks",
                            SettingValue::List(
                                allow_networks.iter().map(ToString::to_string).collect(),
                            ),
                        ),
                        ("workers", number(*workers)),
                        (
                            "per_endpoint_concurrency",
                            number(*per_endpoint_concurrency),
                        ),
                        (
                            "circuit_breaker_timeouts",
                            number(*circuit_breaker_timeouts),
                        ),
                        ("circuit_breaker_open_for", time(circuit_breaker_open_for)),
                        ("disable_after", time(disable_after)),
                        ("secret_rotation_grace", time(secret_rotation_grace)),
                    ],
                ),
                (
                    "bootstrap",
                    vec![("demo_tenant", SettingValue::Bool(*demo_tenant))],
                ),
                (
                    "log",
                    vec![(
                        "format",
                        text(
                            match format {
                                LogFormat::Text => "text",
                                LogFormat::Json => "json",
                            }
                            .to_owned(),
                        ),
                    )],
                ),
            ],
        }
    }
}

impl EffectiveConfig {
    /// Every setting as (`section.key`, value), in order.
    pub fn settings(&self) -> impl Iterator<Item = (String, &SettingValue)> + '_ {
        self.sections.iter().flat_map(|(section, settings)| {
            settings
                .iter()
                .map(move |(key, value)| (format!("{section}.{key}"), value))
        })
    }

    /// A TOML file that `--config` reads back, masked values aside; unset
    /// settings appear as comments.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for (index, (section, settings)) in self.sections.iter().enumerate() {
            if index > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{section}]\n"));
            for (key, value) in settings {
                let line = match value {
                    SettingValue::Unset => format!("# {key} is unset"),
                    SettingValue::Text(text) => format!("{key} = {}", toml_string(text)),
                    SettingValue::Number(number) => format!("{key} = {number}"),
                    SettingValue::Bool(flag) => format!("{key} = {flag}"),
                    SettingValue::List(items) => {
                        let items: Vec<String> = items.iter().map(|i| toml_string(i)).collect();
                        format!("{key} = [{}]", items.join(", "))
                    }
                };
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// A TOML basic string. JSON's escapes are a subset of TOML's, and
/// serde_json escapes every control character.
fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// One JSON object per section, unset settings as `null`, in order.
impl Serialize for EffectiveConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Section<'a>(&'a [(&'static str, SettingValue)]);
        impl Serialize for Section<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (key, value) in self.0 {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.sections.len()))?;
        for (section, settings) in &self.sections {
            map.serialize_entry(section, &Section(settings))?;
        }
        map.end()
    }
}

impl Serialize for SettingValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SettingValue::Unset => serializer.serialize_none(),
            SettingValue::Text(text) => serializer.serialize_str(text),
            SettingValue::Number(number) => serializer.serialize_u64(*number),
            SettingValue::Bool(flag) => serializer.serialize_bool(*flag),
            SettingValue::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// A PostgreSQL URL with its password replaced by [`MASK`], both the one of
/// `user:password@host` and a `password=` query parameter (libpq reads
/// either). SQLite URLs carry no password and stay as they are.
fn mask_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    if !scheme.starts_with("postgres") {
        return url.to_owned();
    }
    let mut masked = format!("{scheme}://");
    // The last `@`: a password may hold an unencoded `@`, a host never does.
    // Should a later part hold one, more is masked, never less.
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _password)) => masked.push_str(&format!("{user}:{MASK}@")),
                None => masked.push_str(&rest[..=at]),
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    match after_userinfo.split_once('?') {
        Some((location, query)) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}={MASK}")
                    }
                    _ => parameter.to_owned(),
                })
                .collect();
            masked.push_str(&format!("{location}?{}", parameters.join("&")));
        }
        None => masked.push_str(after_userinfo),
    }
    masked
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
        assert_eq!(settings.server.body_timeout, Duration::from_secs(10));
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
            (
                "WEBHOOKS__SERVER__BODY_TIMEOUT",
                "slowly",
                "server.body_timeout",
            ),
            (
                "WEBHOOKS__SERVER__BODY_TIMEOUT",
                "0s",
                "server.body_timeout",
            ),
            (
                "WEBHOOKS__SERVER__BODY_TIMEOUT",
                "2h",
                "server.body_timeout",
            ),
            ("WEBHOOKS__DATABASE__URL", "mysql://x", "database.url"),
            ("WEBHOOKS__DELIVERY__TIMEOUT", "soon", "delivery.timeout"),
            ("WEBHOOKS__DELIVERY__TIMEOUT", "48h", "delivery.timeout"),
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

    #[test]
    fn effective_configuration_masks_every_secret() {
        let key = webhooks_domain::SecretCipher::generate_key();
        let settings = load(&[
            ("WEBHOOKS__AUTH__ADMIN_TOKEN", "admin-t0ken-value"),
            ("WEBHOOKS__AUTH__SERVICE_TOKEN", "service-t0ken-value"),
            ("WEBHOOKS__SECRETS__ENCRYPTION_KEY", key.as_str()),
            (
                "WEBHOOKS__DATABASE__URL",
                "postgres://webhooks:db-pa55word@db:5432/webhooks?password=query-pa55&sslmode=require",
            ),
        ])
        .unwrap();
        let effective = settings.effective();
        let toml = effective.to_toml();
        let json = serde_json::to_string(&effective).unwrap();
        for secret in [
            "admin-t0ken-value",
            "service-t0ken-value",
            key.as_str(),
            "db-pa55word",
            "query-pa55",
        ] {
            assert!(!toml.contains(secret), "{secret} in\n{toml}");
            assert!(!json.contains(secret), "{secret} in\n{json}");
        }
        assert!(toml.contains("admin_token = \"****\""), "{toml}");
        assert!(toml.contains("service_token = \"****\""), "{toml}");
        assert!(toml.contains("encryption_key = \"****\""), "{toml}");
        assert!(
            toml.contains(
                "url = \"postgres://webhooks:****@db:5432/webhooks?password=****&sslmode=require\""
            ),
            "{toml}"
        );
    }

    #[test]
    fn unset_secrets_are_shown_unset_not_masked() {
        let effective = load(&[]).unwrap().effective();
        let toml = effective.to_toml();
        assert!(toml.contains("# admin_token is unset"), "{toml}");
        assert!(toml.contains("# encryption_key is unset"), "{toml}");
        let json = serde_json::to_value(&effective).unwrap();
        assert_eq!(json["auth"]["admin_token"], serde_json::Value::Null);
        assert_eq!(json["database"]["url"], "sqlite://data/webhooks.db");
        assert_eq!(json["delivery"]["timeout"], "15s");
    }

    #[test]
    fn database_passwords_are_masked_wherever_libpq_reads_them() {
        let cases = [
            ("sqlite://data/webhooks.db", "sqlite://data/webhooks.db"),
            ("sqlite:///srv/a:b@c.db", "sqlite:///srv/a:b@c.db"),
            ("postgres://db/webhooks", "postgres://db/webhooks"),
            ("postgres://user@db/webhooks", "postgres://user@db/webhooks"),
            (
                "postgres://user:pw@db/webhooks",
                "postgres://user:****@db/webhooks",
            ),
            (
                "postgresql://:pw@db/webhooks",
                "postgresql://:****@db/webhooks",
            ),
            // An unencoded `@`, `/` or `?` in the password.
            (
                "postgres://u:p@s/s?w@db:5432/x",
                "postgres://u:****@db:5432/x",
            ),
            (
                "postgres://db/x?sslmode=require&PASSWORD=pw",
                "postgres://db/x?sslmode=require&PASSWORD=****",
            ),
        ];
        for (url, masked) in cases {
            assert_eq!(mask_database_url(url), masked, "{url}");
        }
    }

    #[test]
    fn the_printed_toml_reads_back_as_the_same_configuration() {
        let settings = load(&[
            ("WEBHOOKS__SERVER__BIND", "0.0.0.0:9000"),
            ("WEBHOOKS__SERVER__BODY_TIMEOUT", "1m 30s"),
            ("WEBHOOKS__DELIVERY__ALLOW_NETWORKS", "10.0.0.0/8,::1/128"),
            ("WEBHOOKS__DELIVERY__RETRY_SCHEDULE", "1s,90s,2h"),
            ("WEBHOOKS__DELIVERY__DISABLE_AFTER", "3d"),
            ("WEBHOOKS__BOOTSTRAP__DEMO_TENANT", "false"),
            ("WEBHOOKS__LOG__FORMAT", "json"),
        ])
        .unwrap();
        let printed = settings.effective().to_toml();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("printed.toml");
        std::fs::write(&file, &printed).unwrap();
        let no_variables = Environment::with_prefix("WEBHOOKS").source(Some(HashMap::new()));
        let again = Settings::load_from(Some(&file), no_variables).unwrap();
        assert_eq!(again.effective().to_toml(), printed);
    }
}
