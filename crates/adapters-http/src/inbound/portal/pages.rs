//! The portal's pages: plain HTML, CSS and JavaScript modules compiled into
//! the binary, so the portal works offline and needs no build step. Every
//! answer carries a content security policy that runs no inline script and
//! lets only the configured `frame-ancestors` embed it.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::inbound::routes::Operation;
use crate::inbound::state::ApiState;

/// One file of the portal: where it is served, its type, its bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $content_type:literal, $file:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/portal/", $file)),
        }
    };
}

const INDEX: Asset = asset!("/portal/", "text/html; charset=utf-8", "index.html");

const ASSETS: &[Asset] = &[
    asset!(
        "/portal/portal.css",
        "text/css; charset=utf-8",
        "portal.css"
    ),
    asset!(
        "/portal/js/app.js",
        "text/javascript; charset=utf-8",
        "js/app.js"
    ),
    asset!(
        "/portal/js/api.js",
        "text/javascript; charset=utf-8",
        "js/api.js"
    ),
    asset!(
        "/portal/js/dom.js",
        "text/javascript; charset=utf-8",
        "js/dom.js"
    ),
    asset!(
        "/portal/js/webhooks.js",
        "text/javascript; charset=utf-8",
        "js/webhooks.js"
    ),
    asset!(
        "/portal/js/deliveries.js",
        "text/javascript; charset=utf-8",
        "js/deliveries.js"
    ),
    asset!(
        "/portal/js/headers.js",
        "text/javascript; charset=utf-8",
        "js/headers.js"
    ),
    asset!(
        "/portal/js/chart.js",
        "text/javascript; charset=utf-8",
        "js/chart.js"
    ),
];

/// The pages' routes: `/portal` and `/portal/` answer the page, each other
/// file its own path. None is in the OpenAPI document: they are pages, not API.
pub(super) fn operations() -> Vec<Operation> {
    let mut operations = vec![
        Operation::undocumented(&[Method::GET], "/portal", web::to(index)),
        Operation::undocumented(&[Method::GET], INDEX.path, web::to(index)),
    ];
    operations.extend(
        ASSETS
            .iter()
            .map(|asset| Operation::undocumented(&[Method::GET], asset.path, web::to(file))),
    );
    operations
}

async fn index(state: web::Data<ApiState>) -> HttpResponse {
    serve(&INDEX, &state.portal_frame_ancestors)
}

async fn file(req: HttpRequest, state: web::Data<ApiState>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.path == req.path()) {
        Some(asset) => serve(asset, &state.portal_frame_ancestors),
        None => HttpResponse::NotFound().finish(),
    }
}

/// The policy of every portal answer: its own scripts, styles and API only.
pub(crate) fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {frame_ancestors}"
    )
}

fn serve(asset: &Asset, frame_ancestors: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(frame_ancestors),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.body)
}
