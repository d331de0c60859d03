//! The delivery log of a webhook and its actions: list, show, retry, send a
//! test event, recover failed deliveries.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use webhooks_domain::{
    Attempt, Conflict, Delivery, DeliveryStatus, DomainError, EventType, Resource, UnixMillis,
    TEST_EVENT_TYPE,
};

use super::api_doc::{
    error_responses, DeliveryIdParam, GroupIdParam, OneWebhookErrors, WebhookIdParam, FAULT,
};
use super::auth::Caller;
use super::body::read_body;
use super::error::{ApiError, RequestError};
use super::requests::deliveries::{ListQuery, RecoverBody};
use super::requests::path::{DeliveryPath, WebhookPath};
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![
            Operation::documented(__path_list, web::to(list)),
            Operation::documented(__path_get_one, web::to(get_one)),
            Operation::documented(__path_retry, web::to(retry)),
            Operation::documented(__path_send_test, web::to(send_test)),
            Operation::documented(__path_recover, web::to(recover)),
        ],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-30T10:00:00.000Z`.
pub(super) fn rfc3339(at: UnixMillis) -> String {
    chrono::DateTime::from_timestamp_millis(at.as_millis())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One event on its way to one webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Delivery)]
struct DeliveryView<'a> {
    /// `dlv_` and 26 characters of `[0-9a-z]`.
    id: &'a str,
    /// Always `delivery`.
    #[schema(schema_with = delivery_object_schema)]
    object: &'static str,
    /// The event's id, also its `webhook-id` header: the same on every attempt.
    event_id: &'a str,
    #[schema(schema_with = event_type_schema)]
    event_type: &'a str,
    #[serde(rename = "webhookID")]
    webhook_id: &'a str,
    #[schema(schema_with = delivery_status_schema)]
    status: &'static str,
    attempt_count: u32,
    /// When the next attempt is due; `null` once the delivery has succeeded or failed.
    #[schema(format = DateTime, required = true)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl<'a> From<&'a Delivery> for DeliveryView<'a> {
    fn from(d: &'a Delivery) -> Self {
        Self {
            id: d.id.as_str(),
            object: "delivery",
            event_id: d.event_id.as_str(),
            event_type: &d.event_type,
            webhook_id: d.webhook_id.as_str(),
            status: d.status.as_str(),
            attempt_count: d.attempt_count,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// One delivery with the event body it sends and its attempts so far.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeliveryDetail)]
struct DeliveryDetailView<'a> {
    #[serde(flatten)]
    delivery: DeliveryView<'a>,
    /// The body the receiver gets, byte for byte as signed:
    /// `{ id, object, type, created, groupID, data }`.
    #[schema(value_type = Object)]
    payload: Option<&'a RawValue>,
    attempts: Vec<AttemptView<'a>>,
}

/// One try at sending a delivery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Attempt)]
struct AttemptView<'a> {
    /// 1 for the first attempt.
    number: u32,
    #[schema(format = DateTime)]
    attempted_at: String,
    duration_ms: i64,
    /// The receiver's HTTP status, when it answered.
    #[schema(required = true)]
    response_status: Option<u16>,
    /// The first 4 KiB of its answer.
    #[schema(required = true)]
    response_body: Option<&'a str>,
    /// Why the attempt failed without an HTTP answer (timeout, refused, blocked).
    #[schema(required = true)]
    error: Option<&'a str>,
}

impl<'a> From<&'a Attempt> for AttemptView<'a> {
    fn from(a: &'a Attempt) -> Self {
        Self {
            number: a.number,
            attempted_at: rfc3339(a.attempted_at),
            duration_ms: a.duration_ms,
            response_status: a.response_status,
            response_body: a.response_body.as_deref(),
            error: a.error.as_deref(),
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DeliveryPage)]
struct DeliveryPageView<'a> {
    data: Vec<DeliveryView<'a>>,
    /// The `cursor` of the next (older) page; `null` on the last one.
    #[schema(required = true)]
    next_cursor: Option<&'a str>,
}

/// A delivery queued again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RetriedDelivery)]
struct RetryView<'a> {
    id: &'a str,
    /// Always `pending`.
    status: &'static str,
}

/// A test event queued for the webhook alone.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TestSend)]
struct TestSendView<'a> {
    event_id: &'a str,
    delivery_id: &'a str,
}

/// How many failed deliveries are due again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Recovered)]
struct RecoveredView {
    requeued: u64,
}

/// List a webhook's deliveries
///
/// Newest first, a page at a time.
#[utoipa::path(
    get, path = "/webhooks/{groupID}/{webhookID}/deliveries", operation_id = "listDeliveries", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam, ListQuery), security(("apiKey" = [])),
    responses((status = 200, description = "A page of deliveries", body = DeliveryPageView), ListErrors),
)]
async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    // Read here rather than by an extractor, so that a malformed query
    // (e.g. a repeated parameter) answers our JSON error after the API key.
    // The query is read before the path.
    let query = ListQuery::read(req.query_string())?;
    let path = WebhookPath::read(&req)?;
    let webhook = path.webhook(&caller.0, &state.webhooks).await?;
    let page = state
        .deliveries
        .list(&caller.0, path.group, webhook, query)
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryPageView {
        data: page.deliveries.iter().map(DeliveryView::from).collect(),
        next_cursor: page.next_cursor.as_ref().map(|c| c.as_str()),
    }))
}

/// Get a delivery with its attempts
#[utoipa::path(
    get, path = "/webhooks/{groupID}/{webhookID}/deliveries/{deliveryID}", operation_id = "getDelivery", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam, DeliveryIdParam), security(("apiKey" = [])),
    responses((status = 200, description = "The delivery", body = DeliveryDetailView), DeliveryErrors),
)]
async fn get_one(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = DeliveryPath::read(&req)?;
    let (webhook, delivery) = path.ids(&caller.0, &state.webhooks).await?;
    let detail = state
        .deliveries
        .get(&caller.0, path.webhook.group, webhook, delivery)
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryDetailView {
        delivery: DeliveryView::from(&detail.delivery),
        payload: serde_json::from_str(&detail.payload).ok(),
        attempts: detail.attempts.iter().map(AttemptView::from).collect(),
    }))
}

/// Retry a delivery now
///
/// Makes the delivery pending and due now, whatever its status. While a
/// worker is sending it (claimed, its attempt not yet recorded) the answer is
/// 409 `Delivery is already in progress` and nothing changes: retry once the
/// attempt shows in the delivery's log.
#[utoipa::path(
    post, path = "/webhooks/{groupID}/{webhookID}/deliveries/{deliveryID}/retry", operation_id = "retryDelivery", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam, DeliveryIdParam), security(("apiKey" = [])),
    responses((status = 202, description = "Queued again", body = RetryView), RetryErrors),
)]
async fn retry(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = DeliveryPath::read(&req)?;
    let (webhook, delivery) = path.ids(&caller.0, &state.webhooks).await?;
    let id = state
        .deliveries
        .retry(&caller.0, path.webhook.group, webhook, delivery)
        .await?;
    Ok(HttpResponse::Accepted().json(RetryView {
        id: id.as_str(),
        status: "pending",
    }))
}

/// Send a test event
///
/// A signed `webhook.test` event to this webhook alone.
#[utoipa::path(
    post, path = "/webhooks/{groupID}/{webhookID}/test", operation_id = "sendTestEvent", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    responses((status = 202, description = "Queued", body = TestSendView), OneWebhookErrors),
)]
async fn send_test(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = WebhookPath::read(&req)?;
    let webhook = path.webhook(&caller.0, &state.webhooks).await?;
    let sent = state
        .deliveries
        .send_test(&caller.0, path.group, webhook)
        .await?;
    Ok(HttpResponse::Accepted().json(TestSendView {
        event_id: sent.event_id.as_str(),
        delivery_id: sent.delivery_id.as_str(),
    }))
}

/// Retry every failed delivery since a time
#[utoipa::path(
    post, path = "/webhooks/{groupID}/{webhookID}/recover", operation_id = "recoverDeliveries", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    request_body(content = RecoverBody, content_type = "application/json"),
    responses((status = 202, description = "Failed deliveries due again", body = RecoveredView), RecoverErrors),
)]
async fn recover(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body = read_body(payload, state.body_timeout).await?;
    // The body is read before the path.
    let since = RecoverBody::read(&body)?;
    let path = WebhookPath::read(&req)?;
    let webhook = path.webhook(&caller.0, &state.webhooks).await?;
    let requeued = state
        .deliveries
        .recover(&caller.0, path.group, webhook, since)
        .await?;
    Ok(HttpResponse::Accepted().json(RecoveredView { requeued }))
}

// OpenAPI: the error answers the annotations above name; the request body
// and the query are described where they are read (`requests::deliveries`).

error_responses!(ListErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    DomainError::NotFound(Resource::Webhook),
    RequestError::InvalidStatusFilter,
    RequestError::InvalidCursor,
    RequestError::InvalidLimit,
    ApiError::InvalidQuery,
    FAULT,
);

error_responses!(DeliveryErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    DomainError::NotFound(Resource::Webhook),
    DomainError::NotFound(Resource::Delivery),
    FAULT,
);

error_responses!(RetryErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    DomainError::NotFound(Resource::Webhook),
    DomainError::NotFound(Resource::Delivery),
    DomainError::Conflict(Conflict::DeliveryInProgress),
    FAULT,
);

error_responses!(RecoverErrors:
    DomainError::NotAllowed,
    RequestError::InvalidJsonBody,
    RequestError::MissingSince,
    RequestError::InvalidSince,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    DomainError::NotFound(Resource::Webhook),
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

fn delivery_object_schema() -> utoipa::openapi::schema::Object {
    super::api_doc::one_of_strings(["delivery"])
}

fn delivery_status_schema() -> utoipa::openapi::schema::Object {
    let statuses = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
    ];
    super::api_doc::one_of_strings(statuses.map(DeliveryStatus::as_str))
}

pub(crate) fn status_filter_schema() -> utoipa::openapi::schema::Object {
    let mut schema = delivery_status_schema();
    schema.description = Some("Only deliveries in this status.".to_owned());
    schema
}

/// The event types (an operator endpoint's are operational), and the test
/// event's.
fn event_type_schema() -> utoipa::openapi::schema::Object {
    super::api_doc::one_of_strings(
        EventType::EVERY
            .map(EventType::as_str)
            .into_iter()
            .chain([TEST_EVENT_TYPE]),
    )
}
