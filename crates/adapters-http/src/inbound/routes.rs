//! The route tables. Each resource module lists its operations once; that list
//! is what [`mount`] puts on the actix router and what
//! [`crate::mounted_routes`] reports. A documented operation takes its method
//! and path from its handler's own `#[utoipa::path]`, so a route and its
//! description are written once, in the same place; `tests/openapi.rs` checks
//! that the document lists exactly the documented operations.

use actix_web::guard::{Guard, GuardContext};
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpResponse, Route};
use utoipa::openapi::path::HttpMethod;

use super::error::error_response;

/// One or more methods on one path, and the handler that answers them.
pub(crate) struct Operation {
    methods: Vec<Method>,
    path: String,
    documented: bool,
    /// Whether other methods on this path go on to the routes mounted after
    /// it, rather than answering 405 here.
    yields_other_methods: bool,
    route: Route,
}

impl Operation {
    /// A handler described by `#[utoipa::path]`, mounted where that attribute
    /// says. `doc` is the unit struct the attribute generates for the handler,
    /// `__path_<handler>`: `Operation::documented(__path_list, web::to(list))`.
    pub(crate) fn documented<Doc: utoipa::Path>(_doc: Doc, route: Route) -> Self {
        Self {
            methods: Doc::methods().iter().map(actix_method).collect(),
            path: Doc::path(),
            documented: true,
            yields_other_methods: false,
            route,
        }
    }

    /// A route the OpenAPI document leaves out on purpose: an alias that only
    /// answers the seed's "missing path parameter" errors, or the Swagger UI's
    /// own files. Say why at the call site.
    pub(crate) fn undocumented(methods: &[Method], path: &str, route: Route) -> Self {
        Self {
            methods: methods.to_vec(),
            path: path.to_owned(),
            documented: false,
            yields_other_methods: false,
            route,
        }
    }

    /// Leaves every other method on this path to the routes mounted after it:
    /// for a path that a broader pattern mounted later also matches, so that
    /// pattern's answers to those methods stay as they were.
    pub(crate) fn yielding_other_methods(mut self) -> Self {
        self.yields_other_methods = true;
        self
    }
}

/// Whether a module's paths also answer with a trailing slash (`/x/` like `/x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrailingSlash {
    Alias,
    Strict,
}

/// A module's operations and its trailing-slash rule.
pub(crate) struct RouteTable {
    pub(crate) operations: Vec<Operation>,
    pub(crate) trailing_slash: TrailingSlash,
}

/// A (method, path pattern) the router answers; see [`crate::mounted_routes`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MountedRoute {
    pub method: Method,
    /// The actix pattern, `{name}` for a path parameter, as in OpenAPI.
    pub path: String,
    /// Whether the OpenAPI document must describe it (aliases are left out).
    pub documented: bool,
    /// Whether other methods on this path go on to a broader pattern rather
    /// than answering 405 (see `Operation::yielding_other_methods`).
    pub yields_other_methods: bool,
}

impl RouteTable {
    /// Every (method, pattern) this table mounts, trailing-slash aliases included.
    pub(crate) fn mounted(&self) -> Vec<MountedRoute> {
        let mut routes = Vec::new();
        for operation in &self.operations {
            for (pattern, is_alias) in patterns(&operation.path, self.trailing_slash) {
                for method in &operation.methods {
                    routes.push(MountedRoute {
                        method: method.clone(),
                        path: pattern.clone(),
                        documented: operation.documented && !is_alias,
                        yields_other_methods: operation.yields_other_methods,
                    });
                }
            }
        }
        routes
    }
}

/// The path itself, then its trailing-slash alias where the table has one;
/// `true` marks the alias.
fn patterns(path: &str, trailing_slash: TrailingSlash) -> Vec<(String, bool)> {
    let mut patterns = vec![(path.to_owned(), false)];
    if trailing_slash == TrailingSlash::Alias && !path.ends_with('/') {
        patterns.push((format!("{path}/"), true));
    }
    patterns
}

/// Mounts a table: one actix resource per path, in the order the table first
/// names it. Any other method on that path answers the JSON 405 with `Allow`,
/// unless an operation of the path yields other methods (see
/// [`Operation::yielding_other_methods`]).
pub(crate) fn mount(cfg: &mut web::ServiceConfig, table: RouteTable) {
    let mut by_path: Vec<(String, Vec<Operation>)> = Vec::new();
    for operation in table.operations {
        match by_path.iter_mut().find(|(path, _)| *path == operation.path) {
            Some((_, operations)) => operations.push(operation),
            None => by_path.push((operation.path.clone(), vec![operation])),
        }
    }
    for (path, operations) in by_path {
        let allow = allow_header(&operations);
        let patterns: Vec<String> = patterns(&path, table.trailing_slash)
            .into_iter()
            .map(|(pattern, _)| pattern)
            .collect();
        let mut resource = web::resource(patterns);
        if operations
            .iter()
            .any(|operation| operation.yields_other_methods)
        {
            let methods = operations.iter().flat_map(|op| op.methods.clone());
            resource = resource.guard(Methods(methods.collect()));
        }
        for operation in operations {
            resource = resource.route(operation.route.guard(Methods(operation.methods)));
        }
        cfg.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed(&allow) }
        })));
    }
}

/// 405 for a method no route of the path takes, naming those that are taken.
fn method_not_allowed(allow: &str) -> HttpResponse {
    let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
    if let Ok(value) = header::HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

fn allow_header(operations: &[Operation]) -> String {
    let mut methods: Vec<&str> = Vec::new();
    for method in operations.iter().flat_map(|op| &op.methods) {
        if !methods.contains(&method.as_str()) {
            methods.push(method.as_str());
        }
    }
    methods.join(", ")
}

/// Matches any of the given methods.
struct Methods(Vec<Method>);

impl Guard for Methods {
    fn check(&self, ctx: &GuardContext<'_>) -> bool {
        self.0.contains(&ctx.head().method)
    }
}

fn actix_method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}
