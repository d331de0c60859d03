//! One error type for every handler: each domain error becomes the seed's JSON
//! `{ "error": "<message>" }` with its status code. Faults of ours answer 503
//! and are logged; their text never reaches the client.

use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_domain::{AdminError, PublishError, WebhookError};

/// The log target this module has always had, kept when it moved to its folder,
/// so log filters and log lines stay the same.
const LOG_TARGET: &str = "webhooks_adapters_http::error";

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({ "error": "Group not found" }))]
pub(crate) struct ErrorBody<'a> {
    /// What went wrong.
    error: &'a str,
}

/// Builds the JSON error answer every part of the API uses.
pub fn error_response(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody { error: message })
}

/// What a handler answers when it does not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("Payload too large")]
    PayloadTooLarge,
    /// The body did not all arrive within `server.body_timeout`. The answer
    /// closes the connection: what is left of the body is never read.
    #[error("Request body not received in time")]
    BodyTimeout,
    /// The request body could not be read (client went away, bad chunking).
    #[error("Invalid request body")]
    BadPayload,
    #[error("Unauthorized")]
    Unauthorized,
    /// A query string that does not parse (a repeated parameter, bad encoding).
    #[error("Invalid query string")]
    InvalidQuery,
    #[error("Not found")]
    NotFound,
    /// A fault of ours; the detail is logged, the client sees a generic text.
    #[error("unexpected: {0}")]
    Unavailable(String),
}

impl ApiError {
    /// The text the client sees; a fault of ours never shows its detail.
    pub(crate) fn client_message(&self) -> String {
        match self {
            ApiError::Webhook(WebhookError::Unexpected(_))
            | ApiError::Admin(AdminError::Unexpected(_))
            | ApiError::Publish(PublishError::Unexpected(_))
            | ApiError::Unavailable(_) => "Service unavailable".to_owned(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Webhook(err) => match err {
                WebhookError::Unauthorized => StatusCode::UNAUTHORIZED,
                WebhookError::DeliveryInProgress => StatusCode::CONFLICT,
                WebhookError::Unexpected(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::Admin(err) => match err {
                AdminError::OrganizationNotFound | AdminError::ApiKeyNotFound => {
                    StatusCode::NOT_FOUND
                }
                AdminError::GroupIdTaken => StatusCode::CONFLICT,
                AdminError::Unexpected(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::Publish(PublishError::Unexpected(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Publish(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadPayload | ApiError::InvalidQuery => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(target: LOG_TARGET, error = %self, "request failed on our side");
        }
        let mut response = error_response(status, &self.client_message());
        if matches!(self, ApiError::BodyTimeout) {
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response
    }
}
