//! What `okaya-webhooks config check` prints: the settings as each value
//! shows itself through `Serialize` (durations in humantime syntax, secrets
//! and database passwords as [`MASK`]), section by section in the order
//! `Settings` serializes them.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::{show, Settings};

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

/// The effective configuration with its secrets masked, section by section:
/// what `okaya-webhooks config check` prints, and the list of settings the
/// documentation is checked against.
#[derive(Debug, Clone)]
pub struct EffectiveConfig {
    sections: Vec<(&'static str, Vec<(&'static str, SettingValue)>)>,
}

impl Settings {
    /// These settings as `config check` shows them: durations in humantime
    /// syntax, tokens, the encryption key and the database password as
    /// [`MASK`].
    pub fn effective(&self) -> EffectiveConfig {
        EffectiveConfig {
            sections: show::sections(self),
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
            SettingValue::List(items) => serializer.collect_seq(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use config::Environment;

    use super::*;

    fn load(vars: &[(&str, &str)]) -> Settings {
        Settings::from_variables(vars).unwrap()
    }

    #[test]
    fn the_defaults_print_as_toml_in_the_order_of_the_defaults_file() {
        let expected = r#"[server]
bind = "127.0.0.1:8080"
body_timeout = "10s"

[database]
url = "sqlite://data/webhooks.db"
pool_size = 0

[auth]
# admin_token is unset
# service_token is unset

[secrets]
# encryption_key is unset
key_file = "data/encryption.key"

[delivery]
retry_schedule = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"]
timeout = "15s"
allow_networks = []
workers = 0
per_endpoint_concurrency = 32
circuit_breaker_timeouts = 5
circuit_breaker_open_for = "30s"
disable_after = "5days"
secret_rotation_grace = "1day"
hand_off = true

[retention]
deliveries = "30days"
events = "1day"
interval = "5m"

[portal]
link_ttl = "1h"
session_ttl = "8h"
frame_ancestors = "'none'"

[probes]
enabled = true
first = "1m"
max = "1h"
give_up_after = "3days"
successes = 3

[bootstrap]
demo_tenant = true

[log]
format = "text"
"#;
        assert_eq!(load(&[]).effective().to_toml(), expected);
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
        ]);
        let effective = settings.effective();
        let toml = effective.to_toml();
        let json = serde_json::to_string(&effective).unwrap();
        let debug = format!("{settings:?}");
        for secret in [
            "admin-t0ken-value",
            "service-t0ken-value",
            key.as_str(),
            "db-pa55word",
            "query-pa55",
        ] {
            assert!(!toml.contains(secret), "{secret} in\n{toml}");
            assert!(!json.contains(secret), "{secret} in\n{json}");
            assert!(!debug.contains(secret), "{secret} in\n{debug}");
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
        let effective = load(&[]).effective();
        let toml = effective.to_toml();
        assert!(toml.contains("# admin_token is unset"), "{toml}");
        assert!(toml.contains("# encryption_key is unset"), "{toml}");
        let json = serde_json::to_value(&effective).unwrap();
        assert_eq!(json["auth"]["admin_token"], serde_json::Value::Null);
        assert_eq!(json["database"]["url"], "sqlite://data/webhooks.db");
        assert_eq!(json["delivery"]["timeout"], "15s");
    }

    #[test]
    fn the_json_keeps_the_order_of_the_toml() {
        let effective = load(&[]).effective();
        let json = serde_json::to_string(&effective).unwrap();
        let sections = [
            "server",
            "database",
            "auth",
            "secrets",
            "delivery",
            "retention",
            "portal",
            "bootstrap",
            "log",
        ];
        let at: Vec<usize> = sections
            .iter()
            .map(|section| json.find(&format!("\"{section}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|pair| pair[0] < pair[1]), "{json}");
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
        ]);
        let printed = settings.effective().to_toml();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("printed.toml");
        std::fs::write(&file, &printed).unwrap();
        let no_variables =
            Environment::with_prefix("WEBHOOKS").source(Some(std::collections::HashMap::new()));
        let again = Settings::load_from(Some(&file), no_variables).unwrap();
        assert_eq!(again.effective().to_toml(), printed);
    }
}
