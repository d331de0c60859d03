//! The portal's session cookie and the CSRF token that must come with it on
//! every request that changes something.

use actix_web::http::{header, Method};
use actix_web::HttpRequest;
use webhooks_domain::{IssuedPass, PortalService, PortalToken, Principal};

use crate::inbound::error::ApiError;

/// The cookie that carries a portal session's secret.
pub(crate) const SESSION_COOKIE: &str = "okaya_portal";
/// The header that carries a session's CSRF token.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// A session cookie as a request presents it, with what CSRF needs.
pub(crate) struct PresentedSession {
    pub(crate) secret: PortalToken,
    csrf: Option<String>,
    changes_state: bool,
}

impl PresentedSession {
    /// The session cookie of `req`, if it has one.
    pub(crate) fn read(req: &HttpRequest) -> Option<Self> {
        let secret = cookie_value(req, SESSION_COOKIE)?;
        Some(Self {
            secret: PortalToken::from_presented(&secret),
            csrf: req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            changes_state: !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS),
        })
    }

    /// The caller the session stands for. A request that changes state must
    /// carry the session's CSRF token, checked before any lookup; then the
    /// session must be live.
    pub(crate) async fn authenticate(&self, portal: &PortalService) -> Result<Principal, ApiError> {
        self.check_csrf()?;
        Ok(portal.authenticate(&self.secret).await?)
    }

    /// Refuses a state-changing request without the session's CSRF token.
    pub(crate) fn check_csrf(&self) -> Result<(), ApiError> {
        let presented = self.csrf.as_deref().unwrap_or_default();
        if self.changes_state && !self.secret.csrf_matches(presented) {
            return Err(ApiError::CsrfRejected);
        }
        Ok(())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// Refuses a sign-in that a page of another site made (login CSRF, which
/// would put the victim in the attacker's session): browsers send `Origin`
/// with every POST, and it must be this service's own. A client that is no
/// browser sends none and is not concerned.
pub(crate) fn check_same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    if origin.as_bytes() == own_origin(req).as_bytes() {
        Ok(())
    } else {
        Err(ApiError::CsrfRejected)
    }
}

/// Whether the request came over https: to the listener itself, or through a
/// proxy that says so (`Forwarded: proto=https`, `X-Forwarded-Proto: https`).
fn over_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// `Set-Cookie` for a session just opened: HttpOnly so no
/// script reads it, SameSite=Strict so no other site's page sends it, Secure
/// when served over https.
pub(crate) fn set_session(req: &HttpRequest, session: &IssuedPass) -> String {
    let lasts = session.expires_at.as_millis() - session.issued_at.as_millis();
    cookie(req, session.token.expose(), lasts.max(0) / 1000)
}

/// `Set-Cookie` that makes the browser forget the session.
pub(crate) fn clear_session(req: &HttpRequest) -> String {
    cookie(req, "", 0)
}

fn cookie(req: &HttpRequest, value: &str, max_age: i64) -> String {
    let secure = if over_https(req) { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// Where the portal of this service is, as the request reached it.
pub(crate) fn portal_base(req: &HttpRequest) -> String {
    format!("{}/portal/", own_origin(req))
}

/// This service's origin (`scheme://host[:port]`) as the request reached it,
/// through any proxy that says so.
fn own_origin(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}
