//! The seed's public API: `/webhooks/{groupID}[/{webhookID}]`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use webhooks_domain::{GroupId, Webhook, WebhookError};

use crate::auth::Caller;
use crate::body::read_body;
use crate::error::ApiError;
use crate::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

/// A webhook as the API shows it, keys in the seed's order.
#[derive(Debug, Serialize)]
pub struct WebhookView<'a> {
    pub id: &'a str,
    pub description: &'a str,
    pub object: &'static str,
    pub status: &'static str,
    pub url: &'a str,
    #[serde(rename = "enabledEvents")]
    pub enabled_events: Vec<&'static str>,
    #[serde(rename = "rateLimit", skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
    /// Only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

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
        }
    }
}

/// Mounts the routes. Paths with a trailing slash answer like those without;
/// a path that lacks a parameter answers the seed's "missing" error for the
/// methods that would need it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/webhooks", "/webhooks/", "/webhooks//{webhookID}"])
            .route(web::route().guard(seed_methods()).to(missing_group_id))
            .default_service(web::to(crate::method_not_allowed)),
    )
    .service(
        web::resource(["/webhooks/{groupID}", "/webhooks/{groupID}/"])
            .route(web::get().to(list))
            .route(web::post().to(create))
            .route(web::put().to(missing_webhook_id))
            .route(web::delete().to(missing_webhook_id))
            .default_service(web::to(crate::method_not_allowed)),
    )
    .service(
        web::resource([
            "/webhooks/{groupID}/{webhookID}",
            "/webhooks/{groupID}/{webhookID}/",
        ])
        .route(web::get().to(get_one))
        .route(web::put().to(update))
        .route(web::delete().to(delete))
        .default_service(web::to(crate::method_not_allowed)),
    );
}

fn seed_methods() -> impl actix_web::guard::Guard {
    actix_web::guard::Any(actix_web::guard::Get())
        .or(actix_web::guard::Post())
        .or(actix_web::guard::Put())
        .or(actix_web::guard::Delete())
}

fn group_param(req: &HttpRequest) -> Option<&str> {
    req.match_info().get("groupID")
}

fn webhook_param(req: &HttpRequest) -> Option<&str> {
    req.match_info().get("webhookID")
}

async fn missing_group_id(_caller: Caller) -> Result<HttpResponse> {
    Err(WebhookError::MissingGroupId.into())
}

/// `PUT`/`DELETE /webhooks/{groupID}`: groupID is checked first; when it is
/// valid, what is wrong is the missing webhookID.
async fn missing_webhook_id(_caller: Caller, req: HttpRequest) -> Result<HttpResponse> {
    GroupId::parse(group_param(&req))?;
    Err(WebhookError::MissingWebhookId.into())
}

async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let webhooks = state.webhooks.list(&caller.0, group_param(&req)).await?;
    let views: Vec<WebhookView<'_>> = webhooks.iter().map(WebhookView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn get_one(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let webhook = state
        .webhooks
        .get(&caller.0, group_param(&req), webhook_param(&req))
        .await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&webhook)))
}

async fn create(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body = read_body(payload).await?;
    let created = state
        .webhooks
        .create(&caller.0, group_param(&req), &body)
        .await?;
    let mut view = WebhookView::from(&created.webhook);
    view.secret = Some(created.secret.expose());
    Ok(HttpResponse::Ok().json(view))
}

async fn update(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body = read_body(payload).await?;
    let webhook = state
        .webhooks
        .update(&caller.0, group_param(&req), webhook_param(&req), &body)
        .await?;
    Ok(HttpResponse::Ok().json(WebhookView::from(&webhook)))
}

async fn delete(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    state
        .webhooks
        .delete(&caller.0, group_param(&req), webhook_param(&req))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "message": "success" })))
}
