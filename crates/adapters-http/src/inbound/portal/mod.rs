//! The portal: a link for a platform's customer
//! (`POST /webhooks/{groupID}/portal-sessions`), the session API its pages
//! sign in and out with (`/portal/api/session`), and the pages themselves
//! (`pages`). With a session cookie, the public API's own routes answer the
//! portal (see `auth::Caller`), so no handler is written twice.

pub(crate) mod cookie;
mod pages;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use webhooks_domain::{ApiKeySecret, DomainError, GroupId, IssuedPass, PortalToken, Resource};

use super::api_doc::{error_responses, GroupIdParam, FAULT};
use super::auth::Caller;
use super::body::read_body;
use super::deliveries::rfc3339;
use super::error::{ApiError, RequestError};
use super::requests::path;
use super::routes::{Operation, RouteTable, TrailingSlash};
use super::state::ApiState;
use cookie::PresentedSession;

type Result<T> = std::result::Result<T, ApiError>;

pub(crate) fn routes() -> RouteTable {
    let mut operations = vec![
        // `/webhooks/{groupID}/{webhookID}` also matches this path: its GET,
        // PUT and DELETE answer as they did before the link call existed.
        Operation::documented(__path_create_link, web::to(create_link)).yielding_other_methods(),
        // The portal's own calls, made by its pages with the session cookie,
        // not a public API.
        Operation::undocumented(
            &[actix_web::http::Method::POST],
            "/portal/api/session",
            web::to(open),
        ),
        Operation::undocumented(
            &[actix_web::http::Method::GET],
            "/portal/api/session",
            web::to(current),
        ),
        Operation::undocumented(
            &[actix_web::http::Method::DELETE],
            "/portal/api/session",
            web::to(close),
        ),
    ];
    operations.extend(pages::operations());
    RouteTable {
        operations,
        trailing_slash: TrailingSlash::Strict,
    }
}

/// A link to the portal, for one customer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PortalLink, example = json!({
    "url": "https://webhooks.example/portal/#/open?token=Vb3k…",
    "expiresAt": "2026-12-03T10:00:00.000Z"
}))]
struct LinkView {
    /// Opens the portal of the group, once. Its token is in the fragment, so
    /// it reaches no server log.
    #[schema(format = "uri")]
    url: String,
    /// When the link stops working if unused (`portal.link_ttl` after it was made).
    #[serde(rename = "expiresAt")]
    #[schema(format = "date-time")]
    expires_at: String,
}

error_responses!(
    /// The errors of making a portal link.
    LinkErrors:
    DomainError::NotAllowed,
    RequestError::GroupIdNotANumber,
    DomainError::NotFound(Resource::Group),
    FAULT,
);

/// Make a portal link
///
/// A single-use link to the portal of the group, to hand to the customer who
/// owns its webhooks: opening it signs them in, for this group only, with
/// the rights of the API key that made it. Unused, it expires after
/// `portal.link_ttl` (1 hour by default); revoking the key ends it and the
/// sessions it opened.
#[utoipa::path(
    post, path = "/webhooks/{groupID}/portal-sessions", operation_id = "createPortalSession", tag = "webhooks",
    params(GroupIdParam), security(("apiKey" = [])),
    responses((status = 201, description = "The link", body = LinkView), LinkErrors),
)]
async fn create_link(
    caller: Caller,
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse> {
    let group = path::group_id(&req)?;
    let link = state.portal.create_link(&caller.0, group).await?;
    Ok(HttpResponse::Created().json(LinkView {
        url: format!(
            "{}#/open?token={}",
            cookie::portal_base(&req),
            link.token.expose()
        ),
        expires_at: rfc3339(link.expires_at),
    }))
}

/// How the portal signs in: a link's token, or an API key and a group.
#[derive(Debug, Deserialize)]
struct SignIn {
    token: Option<String>,
    #[serde(rename = "apiKey")]
    api_key: Option<String>,
    #[serde(rename = "groupID")]
    group_id: Option<Value>,
}

impl SignIn {
    fn read(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|_| RequestError::InvalidJsonBody.into())
    }

    /// The group an API key signs in to: a number, or digits in a string.
    fn group(&self) -> Result<GroupId> {
        let raw = match &self.group_id {
            None | Some(Value::Null) => return Err(RequestError::MissingBodyGroupId.into()),
            Some(Value::String(raw)) => raw.clone(),
            Some(other) => other.to_string(),
        };
        GroupId::parse(&raw).map_err(|_| RequestError::GroupIdNotANumber.into())
    }
}

/// The session the pages work with; the secret itself is only in the cookie.
#[derive(Debug, Serialize)]
struct SessionView {
    #[serde(rename = "groupID")]
    group_id: i64,
    /// Sent back in `x-csrf-token` with every request that changes something.
    #[serde(rename = "csrfToken")]
    csrf_token: String,
    #[serde(rename = "expiresAt")]
    expires_at: String,
}

impl SessionView {
    fn of(secret: &PortalToken, group: GroupId, expires_at: webhooks_domain::UnixMillis) -> Self {
        Self {
            group_id: group.get(),
            csrf_token: secret.csrf_token(),
            expires_at: rfc3339(expires_at),
        }
    }
}

/// `POST /portal/api/session`: opens a session with a link's token or an API
/// key; from a page of this service only.
async fn open(
    req: HttpRequest,
    state: web::Data<ApiState>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    cookie::check_same_origin(&req)?;
    let body = read_body(payload, state.body_timeout).await?;
    let sign_in = SignIn::read(&body)?;
    let session = match (&sign_in.token, &sign_in.api_key) {
        (Some(token), _) => {
            state
                .portal
                .open_with_link(&PortalToken::from_presented(token))
                .await?
        }
        (None, Some(key)) => {
            let group = sign_in.group()?;
            state
                .portal
                .open_with_key(&ApiKeySecret::from_header(key), group)
                .await?
        }
        (None, None) => return Err(ApiError::Unauthorized),
    };
    Ok(session_answer(&req, &session))
}

fn session_answer(req: &HttpRequest, session: &IssuedPass) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::SET_COOKIE, cookie::set_session(req, session)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionView::of(
            &session.token,
            session.grant.group_id,
            session.expires_at,
        ))
}

/// `GET /portal/api/session`: the session of the cookie, for a page loaded anew.
async fn current(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse> {
    let presented = PresentedSession::read(&req).ok_or(ApiError::Unauthorized)?;
    let session = state.portal.session(&presented.secret).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SessionView::of(
            &presented.secret,
            session.grant.group_id,
            session.expires_at,
        )))
}

/// `DELETE /portal/api/session`: signs out; the session ends on the server.
async fn close(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse> {
    let presented = PresentedSession::read(&req).ok_or(ApiError::Unauthorized)?;
    presented.check_csrf()?;
    state.portal.close(&presented.secret).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, cookie::clear_session(&req)))
        .finish())
}
