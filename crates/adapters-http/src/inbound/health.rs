//! `/healthz` (the process runs), `/readyz` (the database answers) and
//! `/metrics` (Prometheus).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::{RefOr, Response};
use utoipa::ToSchema;

use super::error::error_response;
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

/// The log target this module has always had, kept when it moved to its folder,
/// so log filters and log lines stay the same.
const LOG_TARGET: &str = "webhooks_adapters_http::health";

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![
            Operation::documented(__path_healthz, web::to(healthz)),
            Operation::documented(__path_readyz, web::to(readyz)),
            Operation::documented(__path_metrics, web::to(metrics)),
        ],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// The process's state.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    status: &'static str,
}

/// Liveness
///
/// 200 while the process runs.
#[utoipa::path(
    get, path = "/healthz", operation_id = "getHealth", tag = "operations",
    responses((status = 200, description = "Alive", body = Health, example = json!({ "status": "ok" }))),
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness
///
/// 200 while the database answers, else 503.
#[utoipa::path(
    get, path = "/readyz", operation_id = "getReadiness", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health, example = json!({ "status": "ready" })),
        NotReady,
    ),
)]
async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(Health { status: "ready" }),
        Err(reason) => {
            tracing::warn!(target: LOG_TARGET, %reason, "not ready");
            error_response(StatusCode::SERVICE_UNAVAILABLE, NOT_READY)
        }
    }
}

/// Prometheus metrics
///
/// The Prometheus text exposition: HTTP requests by route, method and status
/// with latency histograms; events published by type; delivery attempts by
/// outcome and their latency; queue depth (due and scheduled) and the age of
/// the oldest due delivery; deliveries in flight in this process.
#[utoipa::path(
    get, path = "/metrics", operation_id = "getMetrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)),
)]
async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render().await)
}

const NOT_READY: &str = "Database unavailable";

/// The 503 of `/readyz`, for its OpenAPI annotation.
struct NotReady;

impl utoipa::IntoResponses for NotReady {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        super::api_doc::error_responses_of(StatusCode::SERVICE_UNAVAILABLE, &[NOT_READY])
    }
}
