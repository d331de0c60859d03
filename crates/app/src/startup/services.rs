//! The storage and use cases every command works with ([`Services`]), and
//! the parts of a process built from them: the dispatcher, the prober, the
//! pruner.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use webhooks_adapters_diesel::{
    Database, DieselDeliveryQueue, DieselEventStore, DieselPortalStore, DieselProbeStore,
    DieselRetention, DieselTenancyRepository, DieselWebhookRepository,
};
use webhooks_adapters_http::{HttpSender, SenderSettings};
use webhooks_domain::{
    CachedTenancy, CachedWebhooks, CircuitSettings, DeliveryService, DispatchSettings, Dispatcher,
    EventPublisher, OperatorEndpoints, PortalService, ProbePolicy, Prober, Pruner, RandomIds,
    RetentionPolicy, RetryPolicy, SecretCipher, SystemClock, TenancyRepository, TenancyService,
    Wakeup, WebhookRepository, WebhookService, DEFAULT_API_KEY_TTL, DEFAULT_WEBHOOK_LIST_TTL,
};

use crate::config::Settings;
/// The `user-agent` of every delivery.
pub const USER_AGENT: &str = concat!("okaya-webhooks/", env!("CARGO_PKG_VERSION"));

/// The storage and use cases every command works with.
#[derive(Clone)]
pub struct Services {
    pub database: Database,
    pub webhooks: WebhookService,
    pub tenancy: TenancyService,
    pub deliveries: DeliveryService,
    pub publisher: EventPublisher,
    pub portal: PortalService,
    pub operators: OperatorEndpoints,
    pub cipher: SecretCipher,
    pub wakeup: Wakeup,
    pub(super) queue: Arc<DieselDeliveryQueue>,
    pub(super) events: Arc<DieselEventStore>,
    pub(super) cached_tenancy: Arc<CachedTenancy>,
}

impl Services {
    /// Connects to the database, applies migrations and builds the use cases.
    pub fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let pool_size = match settings.database.pool_size {
            0 => default_pool_size(),
            n => n,
        };
        let database = Database::connect(&settings.database.url, pool_size)
            .with_context(|| "cannot open the database (database.url)")?;
        database
            .migrate()
            .context("cannot apply database migrations")?;
        let cipher = load_cipher(settings)?;
        let clock = Arc::new(SystemClock);
        let ids = Arc::new(RandomIds::default());
        let wakeup = Wakeup::default();
        // Keys and groups are read on every request: keep them in memory
        // (a revocation elsewhere is seen within DEFAULT_API_KEY_TTL).
        let cached_tenancy = Arc::new(CachedTenancy::new(
            Arc::new(DieselTenancyRepository::new(database.clone())),
            DEFAULT_API_KEY_TTL,
        ));
        let tenancy_repository: Arc<dyn TenancyRepository> = cached_tenancy.clone();
        let events = Arc::new(DieselEventStore::new(database.clone()));
        let queue = Arc::new(DieselDeliveryQueue::new(database.clone()));
        // A group's list is read on every GET of it: keep it in memory (a
        // change through another process is seen within its time-to-live,
        // one made here at once).
        let cached_webhooks = Arc::new(CachedWebhooks::new(
            Arc::new(DieselWebhookRepository::new(database.clone())),
            DEFAULT_WEBHOOK_LIST_TTL,
        ));
        let forget = Arc::downgrade(&cached_webhooks);
        database.on_webhook_status_change(move || {
            if let Some(cache) = forget.upgrade() {
                cache.forget_lists();
            }
        });
        let webhook_repository: Arc<dyn WebhookRepository> = cached_webhooks;
        let webhooks = WebhookService::new(
            webhook_repository.clone(),
            tenancy_repository.clone(),
            clock.clone(),
            ids.clone(),
            cipher.clone(),
        )
        .with_rotation_grace(settings.delivery.secret_rotation_grace);
        let deliveries = DeliveryService::new(
            webhooks.clone(),
            queue.clone(),
            events.clone(),
            clock.clone(),
            ids.clone(),
            wakeup.clone(),
        );
        let publisher = EventPublisher::new(
            events.clone(),
            tenancy_repository.clone(),
            clock.clone(),
            ids.clone(),
            wakeup.clone(),
        );
        let portal = PortalService::new(
            Arc::new(DieselPortalStore::new(database.clone())),
            tenancy_repository.clone(),
            webhooks.clone(),
            clock.clone(),
        )
        .with_lifetimes(settings.portal.link_ttl, settings.portal.session_ttl);
        let tenancy = TenancyService::new(tenancy_repository, clock.clone(), ids.clone());
        let operators = OperatorEndpoints::new(
            webhook_repository,
            tenancy.clone(),
            clock,
            ids,
            cipher.clone(),
        );
        Ok(Self {
            database,
            webhooks,
            tenancy,
            deliveries,
            publisher,
            portal,
            operators,
            cipher,
            wakeup,
            queue,
            events,
            cached_tenancy,
        })
    }

    /// Closes the database pool, waiting until none of its connections is
    /// open (see `Database::close`). Call it last, once nothing needs the
    /// database any more.
    pub async fn close(&self) {
        let database = self.database.clone();
        if tokio::task::spawn_blocking(move || database.close())
            .await
            .is_err()
        {
            tracing::warn!("closing the database pool failed");
        }
    }

    /// The sender of deliveries and probes, with the SSRF guard.
    fn sender(&self, settings: &Settings) -> anyhow::Result<HttpSender> {
        let delivery = &settings.delivery;
        HttpSender::new(SenderSettings {
            timeout: delivery.timeout,
            allow_networks: delivery.allow_networks.clone(),
            user_agent: USER_AGENT.to_owned(),
        })
        .map_err(|err| anyhow::anyhow!("cannot build the HTTP client: {err}"))
    }

    /// The delivery workers of this process.
    pub fn dispatcher(&self, settings: &Settings) -> anyhow::Result<Dispatcher> {
        let delivery = &settings.delivery;
        let sender = self.sender(settings)?;
        let workers = match delivery.workers {
            0 => default_workers(),
            n => n,
        };
        let mut dispatch = DispatchSettings::for_timeout(delivery.timeout, workers);
        dispatch.per_endpoint = delivery.per_endpoint_concurrency;
        dispatch.disable_after = delivery.disable_after;
        dispatch.circuit = CircuitSettings {
            timeouts_to_open: u32::try_from(delivery.circuit_breaker_timeouts).unwrap_or(u32::MAX),
            open_for: delivery.circuit_breaker_open_for,
            max_open: MAX_CIRCUIT_OPEN.max(delivery.circuit_breaker_open_for),
        };
        Ok(Dispatcher::new(
            self.queue.clone(),
            Arc::new(sender),
            Arc::new(SystemClock),
            self.cipher.clone(),
            RetryPolicy::new(delivery.retry_schedule.clone()),
            dispatch,
            self.wakeup.clone(),
        ))
    }

    /// The probing task of a worker process, unless probes are off.
    pub fn prober(&self, settings: &Settings) -> anyhow::Result<Option<Prober>> {
        let probes = &settings.probes;
        if !probes.enabled {
            return Ok(None);
        }
        let policy = ProbePolicy {
            first: probes.first,
            max: probes.max,
            give_up_after: probes.give_up_after,
            successes: u32::try_from(probes.successes).unwrap_or(u32::MAX),
        };
        Ok(Some(Prober::new(
            Arc::new(DieselProbeStore::new(self.database.clone())),
            Arc::new(self.sender(settings)?),
            Arc::new(SystemClock),
            Arc::new(RandomIds::default()),
            self.cipher.clone(),
            policy,
            self.wakeup.clone(),
        )))
    }

    /// The retention task of a worker process.
    pub fn pruner(&self, settings: &Settings) -> Pruner {
        let retention = &settings.retention;
        let kept_for = |keep: std::time::Duration| (!keep.is_zero()).then_some(keep);
        let policy = RetentionPolicy {
            deliveries: kept_for(retention.deliveries),
            events: kept_for(retention.events),
            interval: retention.interval,
            ..RetentionPolicy::default()
        };
        Pruner::new(
            Arc::new(DieselRetention::new(self.database.clone())),
            Arc::new(SystemClock),
            policy,
        )
    }
}

/// The longest a circuit stays open, however often its probes time out.
const MAX_CIRCUIT_OPEN: Duration = Duration::from_secs(600);

/// The most deliveries a process holds at once by default.
const MAX_DEFAULT_WORKERS: u64 = 4096;

/// Deliveries wait on the network, not the CPU: a waiting request costs a
/// socket, so the open-file limit (raised to its hard limit first) sizes the
/// default: a quarter of it, leaving the rest to the API's connections and
/// the database pool, between 128 and 4096.
fn default_workers() -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the open-file limit; assuming 1024");
            1024
        }
    };
    let workers = (files / 4).clamp(128, MAX_DEFAULT_WORKERS);
    usize::try_from(workers).unwrap_or(128)
}

fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 8).unwrap_or(16).clamp(8, 64)
}

/// The key that seals signing secrets: from configuration, or from the key
/// file, which is generated on first use.
fn load_cipher(settings: &Settings) -> anyhow::Result<SecretCipher> {
    if let Some(key) = &settings.secrets.encryption_key {
        return SecretCipher::from_base64(key.expose())
            .context("invalid setting secrets.encryption_key");
    }
    let path = &settings.secrets.key_file;
    if !path.exists() {
        write_new_key(path)
            .with_context(|| format!("cannot create the key file {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated a new secret encryption key");
    }
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    SecretCipher::from_base64(&key)
        .with_context(|| format!("invalid key in {} (secrets.key_file)", path.display()))
}

fn write_new_key(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(SecretCipher::generate_key().as_bytes())
}
