//! `/admin`: organizations, groups and API keys, behind the admin bearer token.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use webhooks_domain::AdminError;

use crate::auth::check_bearer;
use crate::body::read_body;
use crate::error::ApiError;
use crate::state::ApiState;

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Debug, Deserialize)]
struct NameBody {
    name: String,
}

#[derive(Debug, Deserialize)]
struct GroupBody {
    name: String,
    id: Option<i64>,
}

#[derive(Debug, Serialize)]
struct OrganizationView<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct GroupView<'a> {
    id: i64,
    name: &'a str,
}

#[derive(Debug, Serialize)]
struct ApiKeyView<'a> {
    id: &'a str,
    key: &'a str,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/organizations")
            .route(web::post().to(create_organization))
            .default_service(web::to(crate::method_not_allowed)),
    )
    .service(
        web::resource("/admin/organizations/{orgID}/groups")
            .route(web::post().to(create_group))
            .default_service(web::to(crate::method_not_allowed)),
    )
    .service(
        web::resource("/admin/organizations/{orgID}/api-keys")
            .route(web::post().to(create_api_key))
            .default_service(web::to(crate::method_not_allowed)),
    )
    .service(
        web::resource("/admin/api-keys/{keyID}")
            .route(web::delete().to(revoke_api_key))
            .default_service(web::to(crate::method_not_allowed)),
    );
}

fn authorize(req: &HttpRequest, state: &ApiState) -> Result<()> {
    check_bearer(req, state.admin_token.as_deref())
}

async fn json_body<T: for<'de> Deserialize<'de>>(payload: web::Payload) -> Result<T> {
    let bytes = read_body(payload).await?;
    serde_json::from_slice(&bytes).map_err(|_| AdminError::InvalidJsonBody.into())
}

fn param<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.match_info().get(name).unwrap_or_default()
}

async fn create_organization(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let body: NameBody = json_body(payload).await?;
    let organization = state.tenancy.create_organization(&body.name).await?;
    Ok(HttpResponse::Created().json(OrganizationView {
        id: organization.id.as_str(),
        name: &organization.name,
    }))
}

async fn create_group(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let body: GroupBody = json_body(payload).await?;
    let group = state
        .tenancy
        .create_group(param(&req, "orgID"), &body.name, body.id)
        .await?;
    Ok(HttpResponse::Created().json(GroupView {
        id: group.id.get(),
        name: &group.name,
    }))
}

async fn create_api_key(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    let issued = state.tenancy.create_api_key(param(&req, "orgID")).await?;
    Ok(HttpResponse::Created().json(ApiKeyView {
        id: issued.key.id.as_str(),
        key: issued.secret.expose(),
    }))
}

async fn revoke_api_key(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse> {
    authorize(&req, &state)?;
    state.tenancy.revoke_api_key(param(&req, "keyID")).await?;
    Ok(HttpResponse::NoContent().finish())
}
