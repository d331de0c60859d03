//! Reading the layers into [`Settings`], and which problem is reported when
//! several settings are bad.

use std::path::Path;

use config::{Config, ConfigError, Environment, File, FileFormat, Value, ValueKind};

use super::values::REFUSED;
use super::{Settings, SettingsError};

const DEFAULTS: &str = include_str!("../../config/default.toml");

/// One check, in [`REPORT_ORDER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The value of the setting of this dotted name.
    Value(&'static str),
    /// PostgreSQL needs `secrets.encryption_key`.
    KeyForPostgres,
}

/// Of several bad settings, the one reported is the first here; a value
/// that cannot be read at all (a word where a number belongs) or an unknown
/// key comes before any of them. The order is the one the checks have always
/// run in, kept so that a configuration gets the same message it always
/// did. Every setting is listed, so that a new one has to be placed (a test
/// checks).
const REPORT_ORDER: [Check; 32] = [
    Check::Value("server.bind"),
    Check::Value("server.body_timeout"),
    Check::Value("database.url"),
    Check::Value("database.pool_size"),
    Check::Value("auth.admin_token"),
    Check::Value("auth.service_token"),
    Check::Value("secrets.encryption_key"),
    Check::Value("secrets.key_file"),
    Check::Value("delivery.retry_schedule"),
    Check::Value("delivery.allow_networks"),
    Check::Value("delivery.timeout"),
    Check::Value("bootstrap.demo_tenant"),
    Check::KeyForPostgres,
    Check::Value("log.format"),
    Check::Value("delivery.workers"),
    Check::Value("delivery.per_endpoint_concurrency"),
    Check::Value("delivery.circuit_breaker_timeouts"),
    Check::Value("delivery.circuit_breaker_open_for"),
    Check::Value("delivery.disable_after"),
    Check::Value("delivery.secret_rotation_grace"),
    Check::Value("delivery.hand_off"),
    Check::Value("retention.deliveries"),
    Check::Value("retention.events"),
    Check::Value("retention.interval"),
    Check::Value("portal.link_ttl"),
    Check::Value("portal.session_ttl"),
    Check::Value("portal.frame_ancestors"),
    Check::Value("probes.enabled"),
    Check::Value("probes.first"),
    Check::Value("probes.max"),
    Check::Value("probes.give_up_after"),
    Check::Value("probes.successes"),
];

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

    pub(super) fn load_from(file: Option<&Path>, env: Environment) -> Result<Self, SettingsError> {
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
        // Lists stay strings here and are split by their rule
        // (`values::Durations`, `values::Networks`), so an empty variable is
        // an empty list.
        let env = env
            .prefix_separator("__")
            .separator("__")
            .try_parsing(false);
        let config = builder.add_source(env).build().map_err(unreadable)?;
        read(config)
    }

    /// PostgreSQL without an encryption key: every process must seal and
    /// open secrets with the same key, and a key file per machine would
    /// silently differ between processes.
    fn lacks_key_for_postgres(&self) -> bool {
        self.secrets.encryption_key.is_none() && !self.database.url.is_sqlite()
    }
}

/// Deserializes `config` into settings. Serde stops at the first refused
/// value it meets, in no set order (a map's); so each refused value is set
/// aside (replaced by its default) and reading starts again, until the rest
/// reads. Then the first problem in [`REPORT_ORDER`] is reported, the same
/// whatever the order of the map.
fn read(mut config: Config) -> Result<Settings, SettingsError> {
    let mut refused: Vec<(&'static str, String)> = Vec::new();
    loop {
        let err = match config.clone().try_deserialize::<Settings>() {
            Ok(settings) => return first_problem(&refused, &settings).map_or(Ok(settings), Err),
            Err(err) => err,
        };
        let Some((name, reason)) = refusal(&err) else {
            return Err(unreadable(err));
        };
        if refused.iter().any(|(seen, _)| *seen == name) {
            // Its default refused too: cannot happen with a sound default file.
            return Err(SettingsError::Invalid { name, reason });
        }
        refused.push((name, reason));
        config = Config::builder()
            .add_source(config)
            .set_override(name, default_of(name))
            .and_then(|builder| builder.build())
            .map_err(unreadable)?;
    }
}

fn first_problem(refused: &[(&'static str, String)], settings: &Settings) -> Option<SettingsError> {
    REPORT_ORDER.iter().find_map(|check| match check {
        Check::Value(name) => refused
            .iter()
            .find(|(bad, _)| bad == name)
            .map(|(name, reason)| SettingsError::Invalid {
                name,
                reason: reason.clone(),
            }),
        Check::KeyForPostgres => settings
            .lacks_key_for_postgres()
            .then(|| SettingsError::Invalid {
                name: "secrets.encryption_key",
                reason: "must be set with PostgreSQL, the same in every process (e.g. openssl rand -base64 32)"
                    .to_owned(),
            }),
    })
}

/// The setting and reason of a value one of the `values` rules refused.
fn refusal(err: &ConfigError) -> Option<(&'static str, String)> {
    let ConfigError::At {
        error,
        key: Some(key),
        ..
    } = err
    else {
        return None;
    };
    let ConfigError::Message(message) = error.as_ref() else {
        return None;
    };
    let reason = message.strip_prefix(REFUSED)?;
    let name = REPORT_ORDER.iter().find_map(|check| match check {
        Check::Value(name) if name == key => Some(*name),
        _ => None,
    })?;
    Some((name, reason.to_owned()))
}

/// The built-in default of `name`; unset where the defaults have none.
fn default_of(name: &str) -> Value {
    Config::builder()
        .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
        .build()
        .and_then(|defaults| defaults.get::<Value>(name))
        .unwrap_or_else(|_| Value::new(None, ValueKind::Nil))
}

fn unreadable(err: ConfigError) -> SettingsError {
    // One line, whatever the parser printed.
    SettingsError::Unreadable(one_line(&err.to_string()))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
impl Settings {
    /// The defaults with these `WEBHOOKS__…` variables, and no others.
    pub(super) fn from_variables(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load_from(None, Environment::with_prefix("WEBHOOKS").source(Some(map)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::*;
    use crate::config::{LogFormat, Secret};

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_variables(vars)
    }

    #[test]
    fn defaults_match_the_contract() {
        let settings = load(&[]).unwrap();
        assert_eq!(settings.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.database.url.as_str(), "sqlite://data/webhooks.db");
        assert!(settings.auth.admin_token.is_none());
        assert!(settings.auth.service_token.is_none());
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
        assert!(settings.bootstrap.demo_tenant);
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
        assert_eq!(
            settings.auth.admin_token.as_ref().map(Secret::expose),
            Some("adm")
        );
        assert_eq!(settings.delivery.allow_networks.len(), 2);
        assert_eq!(settings.delivery.retry_schedule.len(), 2);
    }

    #[test]
    fn an_empty_variable_is_an_empty_list() {
        let settings = load(&[("WEBHOOKS__DELIVERY__RETRY_SCHEDULE", "")]).unwrap();
        assert!(settings.delivery.retry_schedule.is_empty());
    }

    #[test]
    fn a_blank_token_or_key_is_unset() {
        let settings = load(&[
            ("WEBHOOKS__AUTH__ADMIN_TOKEN", "  "),
            ("WEBHOOKS__AUTH__SERVICE_TOKEN", ""),
            ("WEBHOOKS__SECRETS__ENCRYPTION_KEY", " "),
        ])
        .unwrap();
        assert!(settings.auth.admin_token.is_none());
        assert!(settings.auth.service_token.is_none());
        assert!(settings.secrets.encryption_key.is_none());
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
    fn a_refused_value_is_one_line_naming_the_setting_and_why() {
        let err = load(&[("WEBHOOKS__DELIVERY__TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting delivery.timeout: \"soon\" is not a duration like 15s, 5m or 2h"
        );
        let err = load(&[("WEBHOOKS__DATABASE__POOL_SIZE", "abc")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read configuration: invalid type: string \"abc\", expected an integer \
             for key `database.pool_size` in the environment"
        );
    }

    #[test]
    fn of_several_bad_values_the_first_in_the_report_order_is_named() {
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[
                    ("WEBHOOKS__DELIVERY__TIMEOUT", "soon"),
                    ("WEBHOOKS__DELIVERY__ALLOW_NETWORKS", "x"),
                ],
                "delivery.allow_networks",
            ),
            (
                &[
                    ("WEBHOOKS__DELIVERY__WORKERS", "-1"),
                    ("WEBHOOKS__LOG__FORMAT", "xml"),
                ],
                "log.format",
            ),
            (
                &[
                    ("WEBHOOKS__DATABASE__URL", "postgres://db/x"),
                    ("WEBHOOKS__LOG__FORMAT", "xml"),
                ],
                "secrets.encryption_key: must be set with PostgreSQL",
            ),
            (
                &[
                    ("WEBHOOKS__DATABASE__URL", "postgres://db/x"),
                    ("WEBHOOKS__BOOTSTRAP__DEMO_TENANT", "no"),
                ],
                "bootstrap.demo_tenant",
            ),
            // A value that cannot be read at all comes first.
            (
                &[
                    ("WEBHOOKS__SERVER__BIND", "nowhere"),
                    ("WEBHOOKS__DATABASE__POOL_SIZE", "abc"),
                ],
                "cannot read configuration: invalid type",
            ),
        ];
        for (vars, named) in cases {
            // Each load's maps have their own hash order: twenty loads meet
            // the two bad values in both orders.
            for _ in 0..20 {
                let err = load(vars).unwrap_err().to_string();
                assert!(err.contains(named), "{vars:?}: {err}");
            }
        }
    }

    #[test]
    fn the_report_order_lists_every_setting_once() {
        let listed: Vec<&str> = REPORT_ORDER
            .iter()
            .filter_map(|check| match check {
                Check::Value(name) => Some(*name),
                Check::KeyForPostgres => None,
            })
            .collect();
        let unique: BTreeSet<&str> = listed.iter().copied().collect();
        assert_eq!(unique.len(), listed.len(), "listed twice: {listed:?}");
        let settings = load(&[]).unwrap().effective();
        let real: BTreeSet<String> = settings.settings().map(|(name, _)| name).collect();
        let listed: BTreeSet<String> = unique.into_iter().map(str::to_owned).collect();
        assert_eq!(listed, real);
    }
}
