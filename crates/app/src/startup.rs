//! Wiring: storage, services and the HTTP server, built from [`Settings`].

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use webhooks_adapters_diesel::{Database, DieselTenancyRepository, DieselWebhookRepository};
use webhooks_adapters_http::{ApiState, ReadinessProbe};
use webhooks_domain::{
    DemoTenant, RandomIds, SecretCipher, SystemClock, TenancyService, WebhookService,
};

use crate::cli::Role;
use crate::config::Settings;

/// The storage and use cases every command works with.
#[derive(Clone)]
pub struct Services {
    pub database: Database,
    pub webhooks: WebhookService,
    pub tenancy: TenancyService,
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
        let tenancy_repository = Arc::new(DieselTenancyRepository::new(database.clone()));
        let webhooks = WebhookService::new(
            Arc::new(DieselWebhookRepository::new(database.clone())),
            tenancy_repository.clone(),
            clock.clone(),
            ids.clone(),
            cipher,
        );
        let tenancy = TenancyService::new(tenancy_repository, clock, ids);
        Ok(Self {
            database,
            webhooks,
            tenancy,
        })
    }
}

fn default_pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 4).unwrap_or(8).clamp(4, 32)
}

/// The key that seals signing secrets: from configuration, or from the key
/// file, which is generated on first use.
fn load_cipher(settings: &Settings) -> anyhow::Result<SecretCipher> {
    if let Some(key) = &settings.secrets.encryption_key {
        return SecretCipher::from_base64(key).context("invalid setting secrets.encryption_key");
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
    demo: Option<DemoTenant>,
}

impl Application {
    /// Opens storage, seeds the demo tenant on an empty database, binds the
    /// listener. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(settings: Settings, role: Role) -> anyhow::Result<Self> {
        let services = Services::connect(&settings)?;
        // Only an API process seeds the demo tenant; should two start at once
        // on an empty database, the loser's attempt fails harmlessly.
        let demo = if role == Role::Worker {
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
        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("cannot listen on {} (server.bind)", settings.server.bind))?;
        let address = listener.local_addr()?;
        let state = web::Data::new(ApiState {
            webhooks: services.webhooks.clone(),
            tenancy: services.tenancy.clone(),
            readiness: Arc::new(DatabaseReadiness(services.database.clone())),
            admin_token: settings.auth.admin_token.clone(),
        });
        let server = HttpServer::new(move || {
            App::new().configure(webhooks_adapters_http::configure(state.clone()))
        })
        .listen(listener)?
        .shutdown_timeout(settings.delivery.timeout.as_secs() + 5)
        .run();
        tracing::info!(role = ?role, "listening on http://{address}");
        Ok(Self {
            port: address.port(),
            server,
            demo,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The demo tenant, when this start created it (a brand-new database).
    pub fn take_demo(&mut self) -> Option<DemoTenant> {
        self.demo.take()
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
