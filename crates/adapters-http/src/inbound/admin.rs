//! `/admin`: organizations, groups and API keys, behind the admin bearer token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_domain::{Conflict, DomainError, OperatorEndpoint, Resource};

use super::api_doc::{error_responses, ApiKeyIdParam, OrganizationIdParam, FAULT};
use super::auth::check_bearer;
use super::body::read_body;
use super::error::{ApiError, RequestError};
use super::requests::admin::{
    api_key_id, operational_events_schema, organization_id, GroupBody, NameBody,
    OperatorEndpointBody,
};
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

/// An organization: it owns groups and API keys.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Organization)]
struct OrganizationView<'a> {
    /// `org_` and 26 characters of `[0-9a-z]`.
    id: &'a str,
    name: &'a str,
}

/// A group of webhooks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Group)]
struct GroupView<'a> {
    /// The groupID of the public API.
    id: i64,
    name: &'a str,
}

/// A new API key. The key itself is shown here only; the service keeps its hash.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IssuedApiKey)]
struct ApiKeyView<'a> {
    /// `key_` and 26 characters of `[0-9a-z]`: what revocation takes.
    id: &'a str,
    /// What clients send as `x-api-key`.
    key: &'a str,
}

/// An organization's operator endpoint: the webhook of its operations group
/// that receives the operational events about its other webhooks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OperatorEndpoint)]
pub struct OperatorEndpointView<'a> {
    /// The organization's operations group.
    #[serde(rename = "groupID")]
    pub group_id: i64,
    /// The webhook that receives the events, in that group.
    #[serde(rename = "webhookID")]
    #[schema(pattern = "^we_[0-9a-z]{26}$")]
    pub webhook_id: &'a str,
    #[schema(format = "uri")]
    pub url: &'a str,
    /// The operational event types it receives.
    #[schema(schema_with = operational_events_schema)]
    pub events: Vec<&'static str>,
    /// Its signing secret, `whsec_` and base64; only in the answer to `PUT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
}

impl<'a> From<&'a OperatorEndpoint> for OperatorEndpointView<'a> {
    fn from(endpoint: &'a OperatorEndpoint) -> Self {
        let webhook = &endpoint.webhook;
        Self {
            group_id: endpoint.group.id.get(),
            webhook_id: webhook.id.as_str(),
            url: webhook.url.as_str(),
            events: webhook.enabled_events.iter().map(|e| e.as_str()).collect(),
            secret: None,
        }
    }
}

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![
            Operation::documented(__path_create_organization, web::to(create_organization)),
            Operation::documented(__path_create_group, web::to(create_group)),
            Operation::documented(__path_create_api_key, web::to(create_api_key)),
            Operation::documented(__path_revoke_api_key, web::to(revoke_api_key)),
            Operation::documented(__path_set_operator_endpoint, web::to(set_operator_endpoint)),
            Operation::documented(__path_get_operator_endpoint, web::to(get_operator_endpoint)),
            Operation::documented(
                __path_remove_operator_endpoint,
                web::to(remove_operator_endpoint),
            ),
        ],
        trailing_slash: TrailingSlash::Strict,
    }
}

fn authorize(req: &HttpRequest, state: &ApiState) -> Result<()> {
    check_bearer(req, state.admin_token.as_deref())
}

fn param<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.match_info().get(name).unwrap_or_default()
}

/// Create an organization
#[utoipa::path(
    post, path = "/admin/organizations", operation_id = "createOrganization", tag = "admin",
    security(("adminToken" = [])),
    request_body(content = NameBody, content_type = "application/json"),
    responses((status = 201, description = "Created", body = OrganizationView), OrganizationErrors),
)]
async fn create_organization(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let body = read_body(payload, state.body_timeout).await?;
    let name = NameBody::read(&body)?;
    let organization = state.tenancy.create_organization(name).await?;
    Ok(HttpResponse::Created().json(OrganizationView {
        id: organization.id.as_str(),
        name: &organization.name,
    }))
}

/// Create a group
#[utoipa::path(
    post, path = "/admin/organizations/{orgID}/groups", operation_id = "createGroup", tag = "admin",
    params(OrganizationIdParam), security(("adminToken" = [])),
    request_body(content = GroupBody, content_type = "application/json"),
    responses((status = 201, description = "Created", body = GroupView), GroupErrors),
)]
async fn create_group(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let body = read_body(payload, state.body_timeout).await?;
    let (name, id) = GroupBody::read(&body)?;
    let organization = organization_id(param(&req, "orgID"))?;
    let group = state.tenancy.create_group(&organization, name, id).await?;
    Ok(HttpResponse::Created().json(GroupView {
        id: group.id.get(),
        name: &group.name,
    }))
}

/// Issue an API key
#[utoipa::path(
    post, path = "/admin/organizations/{orgID}/api-keys", operation_id = "createApiKey", tag = "admin",
    params(OrganizationIdParam), security(("adminToken" = [])),
    responses((status = 201, description = "Created", body = ApiKeyView), ApiKeyErrors),
)]
async fn create_api_key(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let organization = organization_id(param(&req, "orgID"))?;
    let issued = state.tenancy.create_api_key(&organization).await?;
    Ok(HttpResponse::Created().json(ApiKeyView {
        id: issued.key.id.as_str(),
        key: issued.secret.expose(),
    }))
}

/// Revoke an API key
///
/// The key stops working at once.
#[utoipa::path(
    delete, path = "/admin/api-keys/{keyID}", operation_id = "revokeApiKey", tag = "admin",
    params(ApiKeyIdParam), security(("adminToken" = [])),
    responses((status = 204, description = "Revoked"), RevokeErrors),
)]
async fn revoke_api_key(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let key = api_key_id(param(&req, "keyID"))?;
    state.tenancy.revoke_api_key(&key).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set an organization's operator endpoint
///
/// Makes the organization's operations group and its webhook on the first
/// call (201), changes the URL and events after (200). The events are signed
/// with the answer's secret, retried and logged like any delivery; the
/// organization's API keys reach the webhook through the public API.
#[utoipa::path(
    put, path = "/admin/organizations/{orgID}/operator-endpoint",
    operation_id = "setOperatorEndpoint", tag = "admin",
    params(OrganizationIdParam), security(("adminToken" = [])),
    request_body(content = OperatorEndpointBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Changed", body = OperatorEndpointView),
        (status = 201, description = "Created", body = OperatorEndpointView),
        SetOperatorEndpointErrors,
    ),
)]
async fn set_operator_endpoint(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let body = read_body(payload, state.body_timeout).await?;
    let (url, events) = OperatorEndpointBody::read(&body)?;
    let organization = organization_id(param(&req, "orgID"))?;
    let set = state.operators.set(&organization, url, events).await?;
    let mut view = OperatorEndpointView::from(&set.endpoint);
    view.secret = Some(set.secret.expose());
    let mut answer = if set.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(view))
}

/// Get an organization's operator endpoint
#[utoipa::path(
    get, path = "/admin/organizations/{orgID}/operator-endpoint",
    operation_id = "getOperatorEndpoint", tag = "admin",
    params(OrganizationIdParam), security(("adminToken" = [])),
    responses(
        (status = 200, description = "The operator endpoint", body = OperatorEndpointView),
        OperatorEndpointErrors,
    ),
)]
async fn get_operator_endpoint(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let organization = organization_id(param(&req, "orgID"))?;
    let endpoint = state.operators.find(&organization).await?;
    Ok(HttpResponse::Ok().json(OperatorEndpointView::from(&endpoint)))
}

/// Remove an organization's operator endpoint
///
/// Deletes its webhook; the operations group stays.
#[utoipa::path(
    delete, path = "/admin/organizations/{orgID}/operator-endpoint",
    operation_id = "removeOperatorEndpoint", tag = "admin",
    params(OrganizationIdParam), security(("adminToken" = [])),
    responses((status = 204, description = "Removed"), OperatorEndpointErrors),
)]
async fn remove_operator_endpoint(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let organization = organization_id(param(&req, "orgID"))?;
    state.operators.remove(&organization).await?;
    Ok(HttpResponse::NoContent().finish())
}

// OpenAPI: the error answers the annotations above name. `ApiError::NotFound`
// is the answer of every admin route while no admin token is configured.

error_responses!(OrganizationErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    RequestError::InvalidJsonBody,
    RequestError::InvalidName,
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

error_responses!(GroupErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    RequestError::InvalidJsonBody,
    RequestError::InvalidName,
    RequestError::InvalidGroupId,
    DomainError::NotFound(Resource::Organization),
    DomainError::Conflict(Conflict::GroupIdTaken),
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

error_responses!(ApiKeyErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    DomainError::NotFound(Resource::Organization),
    FAULT,
);

error_responses!(SetOperatorEndpointErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    RequestError::InvalidJsonBody,
    RequestError::InvalidUrl,
    RequestError::InvalidEvents,
    DomainError::NotFound(Resource::Organization),
    ApiError::PayloadTooLarge,
    ApiError::BodyTimeout,
    FAULT,
);

error_responses!(OperatorEndpointErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    DomainError::NotFound(Resource::Organization),
    DomainError::NotFound(Resource::OperatorEndpoint),
    FAULT,
);

error_responses!(RevokeErrors:
    ApiError::Unauthorized,
    ApiError::NotFound,
    DomainError::NotFound(Resource::ApiKey),
    FAULT,
);
