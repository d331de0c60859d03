//! The HTTP side of the webhooks service, in two folders: `inbound/`, the
//! actix-web API (routes, extractors, the mapping of domain errors to the
//! seed's JSON, its OpenAPI document and reference page), and `outbound/`, the
//! sender that POSTs deliveries to receivers (the client, the classification
//! of failed attempts, the SSRF guard).
//!
//! [`configure`] mounts every route on an actix `App`; the `app` crate builds
//! the [`ApiState`] and runs the server.

mod inbound;
mod outbound;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub use inbound::admin::OperatorEndpointView;
pub use inbound::body::{close_on_unread_body, MAX_BODY_BYTES};
pub use inbound::error::{error_response, ApiError, RequestError};
pub use inbound::openapi::openapi;
pub use inbound::requests::admin::operational_events;
pub use inbound::routes::MountedRoute;
pub use inbound::state::{ApiState, MetricsSource, ReadinessProbe};
pub use inbound::telemetry::observe;
pub use inbound::webhooks::WebhookView;
pub use outbound::{
    is_forbidden, Blocked, DestinationGuard, HttpSender, ResolveError, SenderError, SenderSettings,
};

use inbound::routes::{self, RouteTable};
use inbound::{admin, deliveries, docs, events, health, openapi, portal, secrets, stats, webhooks};

/// Every route table [`configure`] mounts, in matching order.
fn api_tables() -> Vec<RouteTable> {
    vec![
        // Before `webhooks`, whose `/webhooks/{groupID}/{webhookID}` would
        // take `/webhooks/{groupID}/portal-sessions` for a webhook's path.
        portal::routes(),
        webhooks::routes(),
        secrets::routes(),
        deliveries::routes(),
        stats::routes(),
        events::routes(),
        admin::routes(),
        health::routes(),
        openapi::routes(),
        docs::routes(),
    ]
}

/// Mounts every route, the OpenAPI document (`/openapi.json`) and its
/// reference page (`/docs`), and the JSON answers for unknown routes (404) and
/// methods (405).
pub fn configure(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state);
        for table in api_tables() {
            routes::mount(cfg, table);
        }
        cfg.default_service(web::to(not_found));
    }
}

/// Only `/healthz`, `/readyz` and `/metrics`, for a worker-only process.
pub fn configure_health(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state);
        routes::mount(cfg, health::routes());
        cfg.default_service(web::to(not_found));
    }
}

/// Every (method, path) [`configure`] mounts, each marked with whether the
/// OpenAPI document must describe it. For the test that compares the router
/// with the document; the route tables are the only way routes are mounted.
#[doc(hidden)]
pub fn mounted_routes() -> Vec<MountedRoute> {
    api_tables().iter().flat_map(RouteTable::mounted).collect()
}

async fn not_found() -> HttpResponse {
    error_response(StatusCode::NOT_FOUND, "Not found")
}
