//! `POST /internal/events`: events in from the rest of the platform, behind
//! the service token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_domain::{DomainError, Resource};

use super::api_doc::{error_responses, FAULT};
use super::auth::check_bearer;
use super::body::read_body;
use super::error::{ApiError, RequestError};
use super::requests::events::NewEventBody;
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

/// An event accepted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PublishedEvent)]
#[schema(example = json!({ "id": "evt_01jf3z5h0b8m3c1y4k7q2w9e6r", "deliveries": 2 }))]
struct Published<'a> {
    /// `evt_` and 26 characters of `[0-9a-z]`; the first event's on an idempotent repeat.
    id: &'a str,
    /// How many webhooks it goes to.
    deliveries: u64,
}

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![Operation::documented(__path_publish, web::to(publish))],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// Publish an event
///
/// Stores the event and one delivery per enabled webhook of the group that
/// receives its type. A repeated `idempotencyKey` within 24 hours answers the
/// first event's figures and makes no new deliveries.
#[utoipa::path(
    post, path = "/internal/events", operation_id = "publishEvent", tag = "events",
    security(("serviceToken" = [])),
    request_body(content = NewEventBody, content_type = "application/json"),
    responses((status = 202, description = "Accepted", body = Published), PublishErrors),
)]
async fn publish(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_bearer(&req, state.service_token.as_deref())?;
    let body = read_body(payload, state.body_timeout).await?;
    let event = NewEventBody::read(&body)?;
    let outcome = state.publisher.publish(event).await?;
    Ok(HttpResponse::Accepted().json(Published {
        id: outcome.event_id.as_str(),
        deliveries: outcome.deliveries,
    }))
}

// OpenAPI: the error answers the annotation above names; the request body is
// described where it is read (`requests::events`).

error_responses!(PublishErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    RequestError::InvalidJsonBody,
    RequestError::MissingBodyGroupId,
    RequestError::GroupIdNotANumber,
    RequestError::MissingType,
    RequestError::UnknownType,
    RequestError::DataNotAnObject,
    RequestError::InvalidIdempotencyKey,
    DomainError::NotFound(Resource::Group),
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);
