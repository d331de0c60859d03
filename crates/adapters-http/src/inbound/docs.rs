//! `GET /docs`: Swagger UI on [`crate::openapi()`], served from files embedded
//! in the binary. `utoipa-swagger-ui` with its `vendored` feature takes the UI
//! from the `utoipa-swagger-ui-vendored` crate at build time (no download) and
//! embeds it, so the page needs no network, at build time or in the browser.

use std::sync::{Arc, LazyLock};

use actix_web::http::header::ContentType;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa_swagger_ui::Config;

use super::error::ApiError;
use super::routes::{Operation, RouteTable, TrailingSlash};

/// The UI reads the document the API serves; the online validator (a request
/// to swagger.io) is off.
static CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["/openapi.json"])
            .validator_url("none")
            .display_request_duration(true),
    )
});

/// The UI's `index.html` links its files relatively; this base makes them
/// resolve under `/docs/` when the page is opened as `/docs`.
const BASE: &str = "<head>\n    <base href=\"/docs/\">";
const TITLE: &str = "<title>Okaya webhooks API</title>";

/// `/docs` (and `/docs/`) is the page; `/docs/{file}` are the UI's own files,
/// which the OpenAPI document leaves out.
pub(crate) fn routes() -> RouteTable {
    RouteTable {
        operations: vec![
            Operation::documented(__path_page, web::to(page)),
            Operation::undocumented(&[Method::GET], "/docs/", web::to(page)),
            Operation::undocumented(&[Method::GET], "/docs/{file}", web::to(file)),
        ],
        trailing_slash: TrailingSlash::Strict,
    }
}

/// Interactive API reference
///
/// Swagger UI on this document, served entirely by the API itself.
#[utoipa::path(
    get, path = "/docs", operation_id = "getDocs", tag = "operations",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)),
)]
async fn page() -> Result<HttpResponse, ApiError> {
    let index = embedded("index.html")?.ok_or(ApiError::NotFound)?;
    let html = String::from_utf8_lossy(&index.bytes)
        .replacen("<head>", BASE, 1)
        .replacen("<title>Swagger UI</title>", TITLE, 1);
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(html))
}

async fn file(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().get("file").unwrap_or_default();
    let file = embedded(name)?.ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .body(file.bytes.into_owned()))
}

/// A file of the UI, its configuration filled in; `None` when there is none.
fn embedded(name: &str) -> Result<Option<utoipa_swagger_ui::SwaggerFile<'static>>, ApiError> {
    utoipa_swagger_ui::serve(name, Arc::clone(&CONFIG))
        .map_err(|err| ApiError::Unavailable(format!("Swagger UI: {err}")))
}
