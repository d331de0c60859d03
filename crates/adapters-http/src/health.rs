//! `/healthz` (the process runs) and `/readyz` (the database answers).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use crate::error::error_response;
use crate::state::ApiState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<ApiState>) -> HttpResponse {
    match state.readiness.check().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
        }
    }
}
