//! The delivery log of a webhook and its actions, plus the signing secret.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webhooks_domain::{Attempt, Delivery, DeliveryQuery, UnixMillis};

use crate::auth::Caller;
use crate::body::read_body;
use crate::error::ApiError;
use crate::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

const BASE: &str = "/webhooks/{groupID}/{webhookID}";

pub fn routes(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| {
        web::resource(format!("{BASE}{path}")).default_service(web::to(crate::method_not_allowed))
    };
    cfg.service(resource("/secret").route(web::get().to(secret)))
        .service(resource("/secret/rotate").route(web::post().to(rotate_secret)))
        .service(resource("/deliveries").route(web::get().to(list)))
        .service(resource("/deliveries/{deliveryID}").route(web::get().to(get_one)))
        .service(resource("/deliveries/{deliveryID}/retry").route(web::post().to(retry)))
        .service(resource("/test").route(web::post().to(send_test)))
        .service(resource("/recover").route(web::post().to(recover)));
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-30T10:00:00.000Z`.
fn rfc3339(at: UnixMillis) -> String {
    chrono::DateTime::from_timestamp_millis(at.as_millis())
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryView<'a> {
    id: &'a str,
    object: &'static str,
    event_id: &'a str,
    event_type: &'a str,
    #[serde(rename = "webhookID")]
    webhook_id: &'a str,
    status: &'static str,
    attempt_count: u32,
    next_attempt_at: Option<String>,
    created_at: String,
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptView<'a> {
    number: u32,
    attempted_at: String,
    duration_ms: i64,
    response_status: Option<u16>,
    response_body: Option<&'a str>,
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

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn path<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.match_info().get(name)
}

async fn secret(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let secret = state
        .webhooks
        .secret(&caller.0, path(&req, "groupID"), path(&req, "webhookID"))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "secret": secret.expose() })))
}

async fn rotate_secret(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let secret = state
        .webhooks
        .rotate_secret(&caller.0, path(&req, "groupID"), path(&req, "webhookID"))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "secret": secret.expose() })))
}

async fn list(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let query = DeliveryQuery {
        status: query.status.as_deref(),
        cursor: query.cursor.as_deref(),
        limit: query.limit.as_deref(),
    };
    let page = state
        .deliveries
        .list(
            &caller.0,
            path(&req, "groupID"),
            path(&req, "webhookID"),
            query,
        )
        .await?;
    let data: Vec<DeliveryView<'_>> = page.deliveries.iter().map(DeliveryView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "data": data,
        "nextCursor": page.next_cursor.as_ref().map(|c| c.as_str()),
    })))
}

async fn get_one(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let detail = state
        .deliveries
        .get(
            &caller.0,
            path(&req, "groupID"),
            path(&req, "webhookID"),
            path(&req, "deliveryID"),
        )
        .await?;
    let mut view = serde_json::to_value(DeliveryView::from(&detail.delivery))
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let payload: Value = serde_json::from_str(&detail.payload).unwrap_or(Value::Null);
    let attempts: Vec<AttemptView<'_>> = detail.attempts.iter().map(AttemptView::from).collect();
    if let Some(fields) = view.as_object_mut() {
        fields.insert("payload".into(), payload);
        fields.insert(
            "attempts".into(),
            serde_json::to_value(attempts).map_err(|err| ApiError::Unavailable(err.to_string()))?,
        );
    }
    Ok(HttpResponse::Ok().json(view))
}

async fn retry(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let id = state
        .deliveries
        .retry(
            &caller.0,
            path(&req, "groupID"),
            path(&req, "webhookID"),
            path(&req, "deliveryID"),
        )
        .await?;
    Ok(
        HttpResponse::Accepted()
            .json(serde_json::json!({ "id": id.as_str(), "status": "pending" })),
    )
}

async fn send_test(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let sent = state
        .deliveries
        .send_test(&caller.0, path(&req, "groupID"), path(&req, "webhookID"))
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "eventId": sent.event_id.as_str(),
        "deliveryId": sent.delivery_id.as_str(),
    })))
}

async fn recover(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let body = read_body(payload).await?;
    let requeued = state
        .deliveries
        .recover(
            &caller.0,
            path(&req, "groupID"),
            path(&req, "webhookID"),
            &body,
        )
        .await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "requeued": requeued })))
}
