//! `POST /internal/events`: events in from the rest of the platform, behind
//! the service token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::auth::check_bearer;
use crate::body::read_body;
use crate::error::ApiError;
use crate::state::ApiState;

#[derive(Debug, Serialize)]
struct Published<'a> {
    id: &'a str,
    deliveries: u64,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/internal/events")
            .route(web::post().to(publish))
            .default_service(web::to(crate::method_not_allowed)),
    );
}

/// 202 with the event's id and its delivery count; an idempotent repeat
/// answers the first event's figures.
async fn publish(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_bearer(&req, state.service_token.as_deref())?;
    let body = read_body(payload).await?;
    let outcome = state.publisher.publish_json(&body).await?;
    Ok(HttpResponse::Accepted().json(Published {
        id: outcome.event_id.as_str(),
        deliveries: outcome.deliveries,
    }))
}
