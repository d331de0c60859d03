//! Request bodies are read as raw bytes, whatever the `Content-Type` says: the
//! seed's own JavaScript example sends JSON as `text/plain`.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{self, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{Error, HttpMessage};
use futures_util::{Stream, StreamExt};

use super::error::ApiError;

/// The largest body accepted: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] without
/// buffering the excess, and giving up when it has not all arrived within
/// `deadline` (`server.body_timeout`). actix times out idle connections and
/// slow heads, but nothing else bounds a body trickled a byte at a time.
pub async fn read_body(payload: Payload, deadline: Duration) -> Result<Bytes, ApiError> {
    actix_web::rt::time::timeout(deadline, read_all(payload))
        .await
        .map_err(|_| ApiError::BodyTimeout)?
}

async fn read_all(mut payload: Payload) -> Result<Bytes, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| match err {
            PayloadError::Overflow => ApiError::PayloadTooLarge,
            _ => ApiError::BadPayload,
        })?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Middleware: a request body the handler has not read to its end closes the
/// connection once the answer is written. For a body with a `Content-Length`
/// actix does that by itself; a chunked one it would drain to its end instead,
/// however slowly it comes, so a client could trickle chunks after any answer
/// (a 401, a 408) and keep the connection for as long as it likes.
///
/// actix closes rather than drains when the body is still held by someone as
/// the answer goes out, so this keeps a share of it inside the answer's body,
/// dropped once that is sent.
pub async fn close_on_unread_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let held = match req.take_payload() {
        dev::Payload::None => None,
        payload => {
            let shared = Rc::new(RefCell::new(payload));
            req.set_payload(dev::Payload::Stream {
                payload: Box::pin(SharedBody(shared.clone())),
            });
            Some(shared)
        }
    };
    let response = next.call(req).await?;
    Ok(response.map_body(|_, body| HoldingBody {
        body: body.boxed(),
        _request_body: held,
    }))
}

/// The request body, read by the handler through one share of it.
struct SharedBody(Rc<RefCell<dev::Payload>>);

impl Stream for SharedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

/// An answer's body that keeps the request body alive until it is sent.
struct HoldingBody {
    body: BoxBody,
    _request_body: Option<Rc<RefCell<dev::Payload>>>,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
