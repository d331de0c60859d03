//! Request bodies are read as raw bytes, whatever the `Content-Type` says: the
//! seed's own JavaScript example sends JSON as `text/plain`.

use actix_web::web::{Bytes, BytesMut, Payload};
use futures_util::StreamExt;

use crate::error::ApiError;

/// The largest body accepted: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] without
/// buffering the excess.
pub async fn read_body(mut payload: Payload) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| match err {
            actix_web::error::PayloadError::Overflow => ApiError::PayloadTooLarge,
            _ => ApiError::BadPayload,
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
