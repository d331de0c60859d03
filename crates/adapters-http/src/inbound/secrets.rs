//! A webhook's signing secret: read it, rotate it.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::api_doc::{GroupIdParam, OneWebhookErrors, WebhookIdParam};
use super::auth::Caller;
use super::error::ApiError;
use super::requests::path::WebhookPath;
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![
            Operation::documented(__path_secret, web::to(secret)),
            Operation::documented(__path_rotate_secret, web::to(rotate_secret)),
        ],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// A webhook's signing secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Secret)]
struct SecretView {
    /// `whsec_` and base64 of the key, as Standard Webhooks verifiers take it.
    secret: String,
}

/// Get a webhook's signing secret
#[utoipa::path(
    get, path = "/webhooks/{groupID}/{webhookID}/secret", operation_id = "getSecret", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    responses((status = 200, description = "The current secret", body = SecretView), OneWebhookErrors),
)]
async fn secret(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = WebhookPath::read(&req)?;
    let id = path.webhook(&caller.0, &state.webhooks).await?;
    let secret = state.webhooks.secret(&caller.0, path.group, id).await?;
    Ok(HttpResponse::Ok().json(SecretView {
        secret: secret.expose(),
    }))
}

/// Rotate a webhook's signing secret
///
/// The new secret signs from now on; the old one keeps signing too (a second
/// signature) for 24 hours, so receivers can switch without losing events.
#[utoipa::path(
    post, path = "/webhooks/{groupID}/{webhookID}/secret/rotate", operation_id = "rotateSecret", tag = "deliveries",
    params(GroupIdParam, WebhookIdParam), security(("apiKey" = [])),
    responses((status = 200, description = "The new secret", body = SecretView), OneWebhookErrors),
)]
async fn rotate_secret(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let path = WebhookPath::read(&req)?;
    let id = path.webhook(&caller.0, &state.webhooks).await?;
    let secret = state
        .webhooks
        .rotate_secret(&caller.0, path.group, id)
        .await?;
    Ok(HttpResponse::Ok().json(SecretView {
        secret: secret.expose(),
    }))
}
