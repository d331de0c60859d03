//! Who is calling: the `x-api-key` of the public API (or, without one, a
//! portal session's cookie), and the bearer tokens of `/admin` and `/internal`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;
use webhooks_domain::{ApiKeySecret, Principal};

use super::error::ApiError;
use super::portal::cookie::PresentedSession;
use super::state::ApiState;

/// The organization behind an accepted `x-api-key`. As the first extractor of
/// a handler it makes the key the first check, as the seed orders them.
///
/// A request without `x-api-key` that carries a portal session's cookie is
/// that session's caller, limited to its group; one that changes state must
/// also carry the session's CSRF token, or it is refused with 403.
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<ApiState>>().cloned();
        let key = req
            .headers()
            .get("x-api-key")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let session = key.is_none().then(|| PresentedSession::read(req)).flatten();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Unavailable("no API state".into()))?;
            if let Some(session) = session {
                return Ok(Caller(session.authenticate(&state.portal).await?));
            }
            // A missing header is an empty key, which the domain refuses unread.
            let key = ApiKeySecret::from_header(key.as_deref().unwrap_or_default());
            let principal = state.webhooks.authenticate(&key).await?;
            Ok(Caller(principal))
        })
    }
}

/// Checks `Authorization: Bearer <token>` against a configured token in
/// constant time. `None` configured means the API behind it is switched off,
/// which answers 404 as if it did not exist.
pub fn check_bearer(req: &HttpRequest, configured: Option<&str>) -> Result<(), ApiError> {
    let expected = configured.ok_or(ApiError::NotFound)?;
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}
