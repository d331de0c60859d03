//! Wiring: storage, services and the HTTP server, built from [`Settings`].
//! [`Services`] (in `services.rs`) are what every command works with;
//! [`Application`] is the running `serve` process around them.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use async_trait::async_trait;
use tokio::sync::watch;
use webhooks_adapters_diesel::{Database, Listener, ListenerHooks};
use webhooks_adapters_http::{ApiState, ReadinessProbe};
use webhooks_domain::{DemoTenant, Dispatcher, HandOff, Prober, Pruner};

use crate::cli::Role;
use crate::config::{Secret, Settings};
use crate::metrics::PrometheusMetrics;

mod services;

pub use services::{Services, USER_AGENT};

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
