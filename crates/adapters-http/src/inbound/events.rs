//! `POST /internal/events`: events in from the rest of the platform, behind
//! the service token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_domain::{EventType, PublishError};

use super::api_doc::{error_responses, FAULT};
use super::auth::check_bearer;
use super::body::read_body;
use super::error::ApiError;
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
    request_body(content = NewEvent, content_type = "application/json"),
    responses((status = 202, description = "Accepted", body = Published), PublishErrors),
)]
async fn publish(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_bearer(&req, state.service_token.as_deref())?;
    let body = read_body(payload, state.body_timeout).await?;
    let outcome = state.publisher.publish_json(&body).await?;
    Ok(HttpResponse::Accepted().json(Published {
        id: outcome.event_id.as_str(),
        deliveries: outcome.deliveries,
    }))
}

// OpenAPI: the request body and the error answers the annotation above names.

/// An event of the platform, for the webhooks of one group.
// Only described: the domain parses the raw body (`PublishRequest::from_json`).
#[derive(ToSchema)]
#[schema(example = json!({
    "groupID": 123456,
    "type": "user.created",
    "data": { "userID": "u_1" },
    "idempotencyKey": "signup-u_1"
}))]
#[allow(dead_code)]
struct NewEvent {
    /// The group whose webhooks get the event.
    #[schema(rename = "groupID", minimum = 1)]
    group_id: i64,
    #[schema(rename = "type", schema_with = event_type_schema)]
    event_type: String,
    /// Any object, sent to the receivers as is (`\u0000` and other
    /// escapes included); `{}` when absent.
    #[schema(value_type = Object, required = false)]
    data: Option<serde_json::Value>,
    /// 1 to 255 characters on one line (no control character, no line
    /// break); remembered per group for 24 hours.
    #[schema(rename = "idempotencyKey", min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}

error_responses!(PublishErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    PublishError::InvalidJsonBody,
    PublishError::MissingGroupId,
    PublishError::GroupIdNotANumber,
    PublishError::MissingType,
    PublishError::UnknownType,
    PublishError::DataNotAnObject,
    PublishError::InvalidIdempotencyKey,
    PublishError::GroupNotFound,
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

fn event_type_schema() -> utoipa::openapi::schema::Object {
    super::api_doc::one_of_strings(EventType::ALL.map(EventType::as_str))
}
