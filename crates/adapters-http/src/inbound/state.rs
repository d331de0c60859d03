//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use webhooks_domain::{
    DeliveryService, EventPublisher, OperatorEndpoints, PortalService, TenancyService,
    WebhookService,
};

/// Whether the storage answers, for `/readyz`.
#[async_trait]
pub trait ReadinessProbe: Send + Sync {
    /// `Err` with a reason when a request would fail now.
    async fn check(&self) -> Result<(), String>;
}

/// The Prometheus text of `/metrics`, rendered on each scrape.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    async fn render(&self) -> String;
}

/// Shared state of the API, built once by the application.
pub struct ApiState {
    pub webhooks: WebhookService,
    pub tenancy: TenancyService,
    pub deliveries: DeliveryService,
    pub publisher: EventPublisher,
    /// The portal's links and sessions.
    pub portal: PortalService,
    /// Organizations' operator endpoints, behind `/admin`.
    pub operators: OperatorEndpoints,
    pub readiness: Arc<dyn ReadinessProbe>,
    pub metrics: Arc<dyn MetricsSource>,
    /// Bearer token of `/admin`; `None` switches the admin API off.
    pub admin_token: Option<String>,
    /// Bearer token of `/internal/events`; `None` switches it off.
    pub service_token: Option<String>,
    /// How long a request body may take to arrive (`server.body_timeout`).
    pub body_timeout: Duration,
    /// Who may embed the portal: the CSP `frame-ancestors` of its pages.
    pub portal_frame_ancestors: String,
}
