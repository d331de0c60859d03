//! The HTTP side of the webhooks service: the actix-web API (routes,
//! extractors, the mapping of domain errors to the seed's JSON).
//!
//! [`configure`] mounts every route on an actix `App`; the `app` crate builds
//! the [`ApiState`] and runs the server.

mod admin;
mod auth;
mod body;
mod deliveries;
mod error;
mod events;
mod health;
pub mod sender;
mod state;
mod webhooks;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

pub use body::MAX_BODY_BYTES;
pub use error::{error_response, ApiError};
pub use state::{ApiState, ReadinessProbe};
pub use webhooks::WebhookView;

/// Mounts every route and the JSON answers for unknown routes (404) and
/// methods (405).
pub fn configure(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .configure(webhooks::routes)
            .configure(deliveries::routes)
            .configure(events::routes)
            .configure(admin::routes)
            .configure(health::routes)
            .default_service(web::to(not_found));
    }
}

/// Only `/healthz` and `/readyz`, for a worker-only process.
pub fn configure_health(state: web::Data<ApiState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .configure(health::routes)
            .default_service(web::to(not_found));
    }
}

async fn not_found() -> HttpResponse {
    error_response(StatusCode::NOT_FOUND, "Not found")
}

pub(crate) async fn method_not_allowed() -> HttpResponse {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}
