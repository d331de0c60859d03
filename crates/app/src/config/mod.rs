//! Settings: built-in defaults (`config/default.toml`), then the `--config`
//! file, then `WEBHOOKS__SECTION__KEY` environment variables.
//!
//! Each setting is written once, as a field below: its type, or the rule
//! named by `#[serde(with = …)]` (see `values.rs`), is how it is read,
//! checked and shown; its default is in `config/default.toml`. Everything is
//! checked at load, once; a bad value stops start-up with one line naming it
//! (`load.rs` says which, when several are bad). [`Settings::effective`] is
//! what `okaya-webhooks config check` prints (see `effective.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

mod effective;
mod load;
mod masked;
mod show;
mod values;

pub use effective::{EffectiveConfig, SettingValue, MASK};
pub use masked::{DatabaseUrl, Secret};
pub use values::LogFormat;

use values::{
    Address, Count, Durations, FrameAncestors, Humantime, KeptFor, Networks, PoolSize, TrueOrFalse,
    UpToADay, UpToAnHour,
};

/// A setting that cannot be used, with its dotted name.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("cannot read configuration: {0}")]
    Unreadable(String),
}

/// The effective configuration, validated. Unknown keys are refused, so a
/// misspelt setting stops start-up instead of being ignored.
///
/// The sections are read in this order (the one an unknown section's error
/// lists them in) and shown in the order of `config/default.toml` (see the
/// `Serialize` impl).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    pub secrets: SecretSettings,
    pub delivery: DeliverySettings,
    pub retention: RetentionSettings,
    pub portal: PortalSettings,
    pub probes: ProbeSettings,
    pub log: LogSettings,
    pub bootstrap: BootstrapSettings,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// The listen address; port 0 picks any free port.
    #[serde(with = "Address")]
    pub bind: SocketAddr,
    /// How long a request body may take to arrive once its reading starts.
    #[serde(with = "UpToAnHour")]
    pub body_timeout: Duration,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    /// Connections in the pool; 0 sizes it to the machine.
    #[serde(with = "PoolSize")]
    pub pool_size: u32,
}

/// `[auth]`: an unset token switches its API off.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Bearer token of `/admin`.
    #[serde(default, deserialize_with = "Secret::unless_blank")]
    pub admin_token: Option<Secret>,
    /// Bearer token of `/internal/events`.
    #[serde(default, deserialize_with = "Secret::unless_blank")]
    pub service_token: Option<Secret>,
}

/// `[secrets]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSettings {
    /// Encrypts signing secrets at rest; required with PostgreSQL.
    #[serde(default, deserialize_with = "Secret::encryption_key")]
    pub encryption_key: Option<Secret>,
    /// SQLite without `encryption_key`: where the key is read from (or
    /// generated into on first use).
    pub key_file: PathBuf,
}

/// `[delivery]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Waits between attempts; after the last one a delivery is failed.
    #[serde(with = "Durations")]
    pub retry_schedule: Vec<Duration>,
    /// Per attempt.
    #[serde(with = "UpToADay")]
    pub timeout: Duration,
    /// CIDRs exempt from the SSRF guard.
    #[serde(with = "Networks")]
    pub allow_networks: Vec<IpNet>,
    /// Deliveries held at once per process; 0 sizes it to the open-file limit.
    #[serde(with = "Count::<0>")]
    pub workers: usize,
    /// Concurrent deliveries to one webhook, per process.
    #[serde(with = "Count::<1>")]
    pub per_endpoint_concurrency: usize,
    /// Timeouts in a row that open an endpoint's circuit; 0: never.
    #[serde(with = "Count::<0>")]
    pub circuit_breaker_timeouts: usize,
    /// How long a circuit first stays open.
    #[serde(with = "Humantime")]
    pub circuit_breaker_open_for: Duration,
    /// A webhook with nothing but failures for this long is disabled.
    #[serde(with = "Humantime")]
    pub disable_after: Duration,
    /// How long the previous secret keeps signing after a rotation.
    #[serde(with = "Humantime")]
    pub secret_rotation_grace: Duration,
    /// Whether a process with every role hands the deliveries it stores to
    /// its own workers, leased, instead of leaving them for a claim.
    #[serde(with = "TrueOrFalse")]
    pub hand_off: bool,
}

/// `[retention]`: a worker process prunes old rows.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// How long a succeeded or failed delivery and its attempts are kept
    /// after it finished; 0: forever.
    #[serde(with = "KeptFor::<1>")]
    pub deliveries: Duration,
    /// How long an event is kept after it was accepted, once none of its
    /// deliveries remains; 0: forever. At least the idempotency window.
    #[serde(with = "KeptFor::<86400>")]
    pub events: Duration,
    /// The wait between two pruning passes.
    #[serde(with = "UpToADay")]
    pub interval: Duration,
}

/// `[portal]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// How long a portal link stays usable, unused.
    #[serde(with = "UpToADay")]
    pub link_ttl: Duration,
    /// How long a portal session lasts.
    #[serde(with = "UpToADay")]
    pub session_ttl: Duration,
    /// The CSP `frame-ancestors` of the portal's pages: who may embed it.
    #[serde(with = "FrameAncestors")]
    pub frame_ancestors: String,
}

/// `[probes]`: worker processes probe webhooks disabled for failures and
/// enable them again once they answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettings {
    /// Whether they do.
    #[serde(with = "TrueOrFalse")]
    pub enabled: bool,
    /// The first probe after disabling, and the next after a success.
    #[serde(with = "UpToAnHour")]
    pub first: Duration,
    /// The longest wait between probes (the wait doubles after a failure).
    #[serde(with = "UpToADay")]
    pub max: Duration,
    /// How long after disabling probing stops.
    #[serde(with = "Humantime")]
    pub give_up_after: Duration,
    /// 2xx answers in a row that enable the webhook again.
    #[serde(with = "Count::<1>")]
    pub successes: usize,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// `[bootstrap]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    /// Whether the first start on an empty database creates a demo tenant.
    #[serde(with = "TrueOrFalse")]
    pub demo_tenant: bool,
}

/// The sections in the order `config check` shows them.
impl Serialize for Settings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut sections = serializer.serialize_struct("Settings", 9)?;
        sections.serialize_field("server", &self.server)?;
        sections.serialize_field("database", &self.database)?;
        sections.serialize_field("auth", &self.auth)?;
        sections.serialize_field("secrets", &self.secrets)?;
        sections.serialize_field("delivery", &self.delivery)?;
        sections.serialize_field("retention", &self.retention)?;
        sections.serialize_field("portal", &self.portal)?;
        sections.serialize_field("probes", &self.probes)?;
        sections.serialize_field("bootstrap", &self.bootstrap)?;
        sections.serialize_field("log", &self.log)?;
        sections.end()
    }
}
