//! Wiring: storage, services and the HTTP server, built from [`Settings`].

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use tokio::sync::watch;
use webhooks_adapters_diesel::{
    Database, DieselDeliveryQueue, DieselEventStore, DieselPortalStore, DieselProbeStore,
    DieselRetention, DieselTenancyRepository, DieselWebhookRepository, Listener, ListenerHooks,
};
use webhooks_adapters_http::{ApiState, ReadinessProbe};
use webhooks_adapters_http::{HttpSender, SenderSettings};
use webhooks_domain::{
    CachedTenancy, CachedWebhooks, CircuitSettings, DeliveryService, DemoTenant, DispatchSettings,
    Dispatcher, EventPublisher, HandOff, OperatorEndpoints, PortalService, ProbePolicy, Prober,
    Pruner, RandomIds, RetentionPolicy, RetryPolicy, SecretCipher, SystemClock, TenancyRepository,
    TenancyService, Wakeup, WebhookRepository, WebhookService, DEFAULT_API_KEY_TTL,
    DEFAULT_WEBHOOK_LIST_TTL,
};

use crate::cli::Role;
use crate::config::{Secret, Settings};
use crate::metrics::PrometheusMetrics;

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
    queue: Arc<DieselDeliveryQueue>,
    events: Arc<DieselEventStore>,
    cached_tenancy: Arc<CachedTenancy>,
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

struct DatabaseReadiness(Database);

#[async_trait]
impl ReadinessProbe for DatabaseReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|err| err.to_string())
    }
}

/// The running service: tests build it on port 0 and read the bound port.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    dispatcher: Option<Arc<Dispatcher>>,
    /// Retention, in the processes that deliver.
    pruner: Option<Pruner>,
    /// Probes of webhooks disabled for failures, in the processes that deliver.
    prober: Option<Prober>,
    demo: Option<DemoTenant>,
    services: Services,
    /// The `LISTEN` connection (PostgreSQL), closed at shutdown.
    notifications: Listener,
}

impl Application {
    /// Opens storage, seeds the demo tenant on an empty database, binds the
    /// listener. Nothing is served until [`Application::run_until_stopped`].
    /// A worker-only process serves just `/healthz` and `/readyz`.
    pub async fn build(settings: Settings, role: Role) -> anyhow::Result<Self> {
        let services = Services::connect(&settings)?;
        // Only an API process seeds the demo tenant; should several start at
        // once on an empty database, one makes it and the others see it.
        let demo = if role == Role::Worker || !settings.bootstrap.demo_tenant {
            None
        } else {
            services
                .tenancy
                .bootstrap_demo()
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "demo tenant not created");
                    None
                })
        };
        let dispatcher = match role {
            Role::Api => None,
            Role::All | Role::Worker => Some(Arc::new(services.dispatcher(&settings)?)),
        };
        if let (Role::All, Some(dispatcher), true) = (role, &dispatcher, settings.delivery.hand_off)
        {
            // This process publishes and delivers: new deliveries go
            // straight to its workers (ADR 0012).
            services
                .events
                .hand_off_to(Arc::new(HandOff::new(Arc::clone(dispatcher))));
        }
        let pruner = dispatcher.as_ref().map(|_| services.pruner(&settings));
        let prober = match dispatcher {
            Some(_) => services.prober(&settings)?,
            None => None,
        };
        // Publications of other processes wake this one's workers; their
        // revocations empty this one's key cache.
        let cache = services.cached_tenancy.clone();
        let notifications = services.database.spawn_listener(ListenerHooks {
            deliveries: dispatcher.as_ref().map(|_| services.wakeup.clone()),
            api_key_revoked: (role != Role::Worker)
                .then(|| Arc::new(move || cache.forget_api_keys()) as Arc<dyn Fn() + Send + Sync>),
        });
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("cannot listen on {} (server.bind)", settings.server.bind))?;
        let address = listener.local_addr()?;
        let state = web::Data::new(ApiState {
            webhooks: services.webhooks.clone(),
            tenancy: services.tenancy.clone(),
            deliveries: services.deliveries.clone(),
            publisher: services.publisher.clone(),
            operators: services.operators.clone(),
            readiness: Arc::new(DatabaseReadiness(services.database.clone())),
            metrics: Arc::new(PrometheusMetrics::install(services.queue.clone())),
            admin_token: settings.auth.admin_token.clone().map(Secret::into_exposed),
            service_token: settings
                .auth
                .service_token
                .clone()
                .map(Secret::into_exposed),
            body_timeout: settings.server.body_timeout,
            portal: services.portal.clone(),
            portal_frame_ancestors: settings.portal.frame_ancestors.clone(),
        });
        let api = role != Role::Worker;
        let server = HttpServer::new(move || {
            let app = App::new()
                .wrap(actix_web::middleware::from_fn(
                    webhooks_adapters_http::close_on_unread_body,
                ))
                .wrap(actix_web::middleware::from_fn(
                    webhooks_adapters_http::observe,
                ));
            if api {
                app.configure(webhooks_adapters_http::configure(state.clone()))
            } else {
                app.configure(webhooks_adapters_http::configure_health(state.clone()))
            }
        })
        .listen(listener)?
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        tracing::info!(role = ?role, "listening on http://{address}");
        if api {
            tracing::info!("portal at http://{address}/portal/");
        }
        Ok(Self {
            port: address.port(),
            server,
            dispatcher,
            pruner,
            prober,
            demo,
            services,
            notifications,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The use cases this application serves, for in-process publishing.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The demo tenant, when this start created it (a brand-new database).
    pub fn take_demo(&mut self) -> Option<DemoTenant> {
        self.demo.take()
    }

    /// Serves until SIGINT or SIGTERM. Then it stops accepting requests and
    /// claiming deliveries, and finishes what is in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves, then shuts down gracefully: the last
    /// step closes the `LISTEN` connection and every pooled connection, so
    /// that no database connection (nor its TLS) is open when `main` returns.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Application {
            server,
            dispatcher,
            pruner,
            prober,
            services,
            notifications,
            ..
        } = self;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let retention = pruner.map(|pruner| tokio::spawn(pruner.run(shutdown_rx.clone())));
        let probes = prober.map(|prober| tokio::spawn(prober.run(shutdown_rx.clone())));
        let workers = dispatcher.map(|dispatcher| tokio::spawn(dispatcher.run(shutdown_rx)));
        let handle = server.handle();
        let server = tokio::spawn(server);
        stop.await;
        tracing::info!("shutting down: finishing requests and deliveries in flight");
        let _ = shutdown_tx.send(true);
        // Deliveries handed over by publishes run on the HTTP workers'
        // threads (ADR 0012): no new connections, then the dispatcher
        // finishes what it holds, then the HTTP workers stop.
        handle.pause().await;
        if let Some(workers) = workers {
            let _ = workers.await;
        }
        handle.stop(true).await;
        let _ = server.await;
        for task in [retention, probes].into_iter().flatten() {
            let _ = task.await;
        }
        if tokio::task::spawn_blocking(move || notifications.stop())
            .await
            .is_err()
        {
            tracing::warn!("stopping the PostgreSQL listener failed");
        }
        services.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
