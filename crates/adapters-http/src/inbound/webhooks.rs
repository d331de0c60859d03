//! The seed's public API: `/webhooks/{groupID}[/{webhookID}]`.

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::ToSchema;
use webhooks_domain::{
    DeliveryOrdering, DomainError, EventType, Resource, Webhook, WebhookStatus, MAX_CUSTOM_HEADERS,
    MAX_HEADER_VALUE_BYTES,
};

use super::api_doc::{error_responses, GroupIdParam, OneWebhookErrors, WebhookIdParam, FAULT};
use super::auth::Caller;
use super::body::read_body;
use super::error::{ApiError, RequestError};
use super::requests::path::{self, WebhookPath};
use super::requests::webhooks::{NewWebhookBody, WebhookUpdateBody};
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

/// A webhook endpoint of a group.
// Keys in the seed's order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook, example = json!(seed_webhook()))]
pub struct WebhookView<'a> {
    /// `we_` and 26 characters of `[0-9a-z]`.
    #[schema(pattern = "^we_[0-9a-z]{26}$")]
    pub id: &'a str,
    pub description: &'a str,
    /// Always `webhook_endpoint`.
    #[schema(schema_with = object_schema)]
    pub object: &'static str,
    /// Only `enabled` webhooks receive events.
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    #[schema(format = "uri")]
    pub url: &'a str,
    /// The event types this webhook receives.
    #[serde(rename = "enabledEvents")]
    #[schema(schema_with = event_types_schema)]
    pub enabled_events: Vec<&'static str>,
    /// Deliveries per second at most; the key is there only while a limit is set.
    #[serde(rename = "rateLimit", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1)]
    pub rate_limit: Option<u32>,
    /// The signing secret, `whsec_` and base64; only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
    /// The custom headers sent with every delivery, each value masked as
    /// `****`; the key is there only while some are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = masked_headers_schema)]
    pub headers: Option<BTreeMap<&'a str, &'static str>>,
    /// `fifo`: one delivery in flight at a time, in the order events were
    /// accepted; the key is there only while an ordering is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = ordering_schema)]
    pub ordering: Option<&'static str>,
}

/// What a custom header's value shows: it is never shown back.
const MASKED: &str = "****";

impl<'a> From<&'a Webhook> for WebhookView<'a> {
    fn from(webhook: &'a Webhook) -> Self {
        Self {
            id: webhook.id.as_str(),
            description: webhook.description.as_str(),
            object: "webhook_endpoint",
            status: webhook.status.as_str(),
            url: webhook.url.as_str(),
            enabled_events: webhook.enabled_events.iter().map(|e| e.as_str()).collect(),
            rate_limit: webhook.rate_limit.map(|limit| limit.per_second()),
            secret: None,
            headers: webhook
                .headers
                .as_ref()
                .map(|sealed| sealed.names().map(|name| (name, MASKED)).collect()),
            ordering: webhook.ordering.map(DeliveryOrdering::as_str),
        }
    }
}

/// The routes. Paths with a trailing slash answer like those without; a path
/// that lacks a parameter answers the seed's "missing" error for the methods
/// that would need it. Those aliases only answer errors, so the OpenAPI
/// document leaves them out.
pub(crate) fn routes() -> RouteTable {
    let seed_methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE];
    RouteTable {
        operations: vec![
            Operation::documented(__path_list, web::to(list)),
            Operation::documented(__path_create, web::to(create)),
            Operation::documented(__path_get_one, web::to(get_one)),
            Operation::documented(__path_update, web::to(update)),
            Operation::documented(__path_delete, web::to(delete)),
            Operation::undocumented(&seed_methods, "/webhooks", web::to(missing_group_id)),
            Operation::undocumented(
                &seed_methods,
                "/webhooks//{webhookID}",
                web::to(missing_group_id),
            ),
            Operation::undocumented(
                &[Method::PUT, Method::DELETE],
                "/webhooks/{groupID}",
                web::to(missing_webhook_id),
            ),
        ],
        trailing_slash: TrailingSlash::Alias,
    }
}

async fn missing_group_id(_caller: Caller) -> Result<HttpResponse> {
    Err(RequestError::MissingGroupId.into())
}

/// `PUT`/`DELETE /webhooks/{groupID}`: groupID is checked first; when it is
/// valid, what is wrong is the missing webhookID.
async fn missing_webhook_id(_caller: Caller, req: HttpRequest) -> Result<HttpResponse> {
    path::group_id(&req)?;
    Err(RequestError::MissingWebhookId.into())
}

/// List a group's webhooks
///
/// Every webhook of the group, oldest first.
#[utoipa::path(
    get, path = "/webhooks/{groupID}", operation_id = "listWebhooks", tag = "webhooks",
    params(GroupIdParam), security(("apiKey" = [])),
    responses(
        (status = 200, description = "The group's webhooks, oldest first",
            body = [WebhookView], example = json!([seed_webhook()])),
        ListErrors,
    ),
)]
async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let group = path::group_id(&req)?;
    let webhooks = state.webhooks.list(&caller.0, group).await?;
    let views: Vec<WebhookView<'_>> = webhooks.iter().map(WebhookView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Get a webhook
#[utoipa::path(
    get, path = "/webhooks/{groupID}/{webhookID}", operation_id = "getWebhook", tag = "webhooks",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    responses((status = 200, description = "The webhook", body = WebhookView), OneWebhookErrors),
)]
async fn get_one(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = WebhookPath::read(&req)?;
    let id = path.webhook(&caller.0, &state.webhooks).await?;
    let webhook = state.webhooks.get(&caller.0, path.group, id).await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&webhook)))
}

/// Create a webhook
///
/// Currently supported events are `user.created` and `user.session.result`;
/// a new webhook receives all of them unless `enabledEvents` says otherwise.
/// `headers` are sent with every delivery; with `ordering: "fifo"` each
/// event is delivered only after every earlier one was delivered or failed
/// for good, one at a time. The answer carries the signing secret, shown
/// only here.
#[utoipa::path(
    post, path = "/webhooks/{groupID}", operation_id = "createWebhook", tag = "webhooks",
    params(GroupIdParam), security(("apiKey" = [])),
    request_body(content = NewWebhookBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The new webhook, with its signing secret",
            body = WebhookView, example = json!(seed_webhook())),
        CreateErrors,
    ),
)]
async fn create(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body = read_body(payload, state.body_timeout).await?;
    let group = path::group_id(&req)?;
    let new = NewWebhookBody::read(&body)?;
    let created = state.webhooks.create(&caller.0, group, new).await?;
    let mut view = WebhookView::from(&created.webhook);
    view.secret = Some(created.secret.expose());
    Ok(HttpResponse::Ok().json(view))
}

/// Update a webhook
///
/// `url` and `description` are required as on create; `enabledEvents`,
/// `status`, `rateLimit`, `headers` and `ordering` change only when present
/// (`headers` `null` or `{}` removes every custom header, `ordering` `null`
/// the ordering).
#[utoipa::path(
    put, path = "/webhooks/{groupID}/{webhookID}", operation_id = "updateWebhook", tag = "webhooks",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    request_body(content = WebhookUpdateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The updated webhook",
            body = WebhookView, example = json!(seed_updated_webhook())),
        UpdateErrors,
    ),
)]
async fn update(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body = read_body(payload, state.body_timeout).await?;
    let path = WebhookPath::read(&req)?;
    let update = WebhookUpdateBody::read(&body)?;
    let id = path.webhook(&caller.0, &state.webhooks).await?;
    let webhook = state
        .webhooks
        .update(&caller.0, path.group, id, update)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&webhook)))
}

/// Delete a webhook
#[utoipa::path(
    delete, path = "/webhooks/{groupID}/{webhookID}", operation_id = "deleteWebhook", tag = "webhooks",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    responses(
        (status = 200, description = "Deleted", body = inline(Deleted),
            example = json!({ "message": "success" })),
        DeleteErrors,
    ),
)]
async fn delete(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = WebhookPath::read(&req)?;
    let id = path.webhook(&caller.0, &state.webhooks).await?;
    state.webhooks.delete(&caller.0, path.group, id).await?;
    Ok(HttpResponse::Ok().json(Deleted { message: "success" }))
}

/// The answer to delete.
#[derive(Debug, Serialize, ToSchema)]
struct Deleted {
    /// Always `success`.
    message: &'static str,
}

// OpenAPI: the error answers the annotations above name; the request
// bodies are described where they are read (`requests::webhooks`).

error_responses!(ListErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    FAULT,
);

error_responses!(CreateErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    RequestError::InvalidJsonBody,
    RequestError::MissingUrl,
    RequestError::UrlNotAString,
    RequestError::InvalidUrl,
    RequestError::MissingDescription,
    RequestError::DescriptionNotAString,
    RequestError::InvalidDescription,
    RequestError::InvalidEnabledEvents,
    RequestError::InvalidHeaders,
    RequestError::ReservedHeader,
    RequestError::InvalidOrdering,
    DomainError::NotFound(Resource::Group),
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

error_responses!(UpdateErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    RequestError::MissingWebhookId,
    RequestError::InvalidJsonBody,
    RequestError::MissingUrl,
    RequestError::UrlNotAString,
    RequestError::InvalidUrl,
    RequestError::MissingDescription,
    RequestError::DescriptionNotAString,
    RequestError::InvalidDescription,
    RequestError::InvalidEnabledEvents,
    RequestError::InvalidStatus,
    RequestError::InvalidRateLimit,
    RequestError::InvalidHeaders,
    RequestError::ReservedHeader,
    RequestError::InvalidOrdering,
    DomainError::NotFound(Resource::Webhook),
    DomainError::NotFound(Resource::Group),
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

error_responses!(DeleteErrors:
    DomainError::NotAllowed,
    RequestError::MissingGroupId,
    RequestError::GroupIdNotANumber,
    RequestError::MissingWebhookId,
    DomainError::NotFound(Resource::Webhook),
    DomainError::NotFound(Resource::Group),
    FAULT,
);

/// The webhook object of the seed document's examples.
fn seed_webhook() -> Value {
    json!({
        "id": "we_abcdefghijklmnopqrstuvwxyz",
        "description": "Webhook Description",
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": "https://integration.example/webhook",
        "enabledEvents": ["user.created", "user.session.result"]
    })
}

/// The seed's example answer to `PUT`.
fn seed_updated_webhook() -> Value {
    json!({
        "id": "we_abcdefghijklmnopqrstuvwxyz",
        "description": "New Webhook Description",
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": "https://integration.example/newWebhook",
        "enabledEvents": ["user.created", "user.session.result"]
    })
}

fn object_schema() -> utoipa::openapi::schema::Object {
    super::api_doc::one_of_strings(["webhook_endpoint"])
}

pub(crate) fn status_schema() -> utoipa::openapi::schema::Object {
    super::api_doc::one_of_strings(
        [WebhookStatus::Enabled, WebhookStatus::Disabled].map(WebhookStatus::as_str),
    )
}

/// The orderings a webhook may ask for.
pub(crate) fn ordering_schema() -> utoipa::openapi::schema::Object {
    super::api_doc::one_of_strings([DeliveryOrdering::Fifo.as_str()])
}

/// Every event type: an operations group's webhooks take the operational ones.
pub(crate) fn event_types_schema() -> utoipa::openapi::schema::Array {
    super::api_doc::array_of_strings(EventType::EVERY.map(EventType::as_str))
}

/// An object of header names to string values, at most 20; `value` is the
/// example's value.
pub(crate) fn headers_schema(value: &str) -> Object {
    let values = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_HEADER_VALUE_BYTES))
        .pattern(Some("^[!-~]([ \t!-~]*[!-~])?$"));
    let mut schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(values))
        .examples([json!({ "X-Api-Key": value })])
        .build();
    schema.max_properties = Some(MAX_CUSTOM_HEADERS);
    schema
}

/// The headers of a webhook as shown: every value is `****`.
fn masked_headers_schema() -> Object {
    let mut schema = headers_schema(MASKED);
    let masked = super::api_doc::one_of_strings([MASKED]);
    schema.additional_properties = Some(Box::new(Schema::Object(masked).into()));
    schema
}
