//! One error type for every handler: each domain error and each mistake in
//! reading a request becomes the seed's JSON `{ "error": "<message>" }` with
//! its status code. This is the one place that picks those words. Faults of
//! ours answer 503 and are logged; their text never reaches the client.

use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use webhooks_domain::{Conflict, DomainError, Field, InvalidValue, Resource};

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
    /// What a use case answered.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The request, as read before any use case runs, breaks a rule.
    #[error(transparent)]
    Request(#[from] RequestError),
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
    /// A portal session's request that changes state came without the
    /// session's CSRF token (`x-csrf-token`).
    #[error("Missing or invalid CSRF token")]
    CsrfRejected,
    /// A query string that does not parse (a repeated parameter, bad encoding).
    #[error("Invalid query string")]
    InvalidQuery,
    #[error("Not found")]
    NotFound,
    /// A fault of ours; the detail is logged, the client sees a generic text.
    #[error("unexpected: {0}")]
    Unavailable(String),
}

/// A request whose path, query or body breaks one of the seed's rules, found
/// while reading it (`inbound/requests`). `Display` is the exact message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("You are missing the path parameter groupID")]
    MissingGroupId,
    /// `groupID` in a path or a body is not a positive integer.
    #[error("groupID must be a number")]
    GroupIdNotANumber,
    #[error("You are missing the path parameter webhookID")]
    MissingWebhookId,
    /// The body is not a JSON object (or, on `/admin`, not the one expected).
    #[error("Invalid JSON body")]
    InvalidJsonBody,
    #[error("You are missing the body parameter url")]
    MissingUrl,
    #[error("url must be a string")]
    UrlNotAString,
    #[error("Invalid URL")]
    InvalidUrl,
    #[error("You are missing the body parameter description")]
    MissingDescription,
    #[error("description must be a string")]
    DescriptionNotAString,
    #[error("Invalid description")]
    InvalidDescription,
    #[error("Invalid enabledEvents")]
    InvalidEnabledEvents,
    #[error("Invalid status")]
    InvalidStatus,
    #[error("Invalid rateLimit")]
    InvalidRateLimit,
    /// A `status` filter of the delivery log that is no delivery status.
    #[error("Invalid status filter")]
    InvalidStatusFilter,
    #[error("Invalid cursor")]
    InvalidCursor,
    #[error("Invalid limit")]
    InvalidLimit,
    #[error("You are missing the body parameter since")]
    MissingSince,
    #[error("since must be an RFC 3339 date-time")]
    InvalidSince,
    /// `POST /internal/events` without `groupID`.
    #[error("You are missing the body parameter groupID")]
    MissingBodyGroupId,
    #[error("You are missing the body parameter type")]
    MissingType,
    #[error("Unknown event type")]
    UnknownType,
    #[error("data must be an object")]
    DataNotAnObject,
    #[error("Invalid idempotencyKey")]
    InvalidIdempotencyKey,
    /// An organization's or a group's name.
    #[error("Invalid name")]
    InvalidName,
    /// The group id asked for on `/admin`.
    #[error("Invalid id")]
    InvalidGroupId,
    /// The `until` of a webhook's stats.
    #[error("until must be an RFC 3339 date-time")]
    InvalidUntil,
    /// A stats window that ends before it starts, or is empty.
    #[error("since must be before until")]
    SinceNotBeforeUntil,
    #[error("since and until must be at most 31 days apart")]
    StatsWindowTooLong,
    /// `headers` is not an object of strings, or breaks a rule of
    /// [`webhooks_domain::CustomHeaders`] other than a reserved name.
    #[error("Invalid headers")]
    InvalidHeaders,
    /// An operator endpoint's `events`: not a non-empty list of
    /// operational event types.
    #[error("Invalid events")]
    InvalidEvents,
    /// `headers` names one the service sets itself.
    #[error("Reserved header name")]
    ReservedHeader,
    /// `ordering` is neither `fifo` nor `null`.
    #[error("Invalid ordering")]
    InvalidOrdering,
}

impl From<InvalidValue> for RequestError {
    /// The message of the field where the public API has one; the handlers
    /// still name the message at each check, where the seed's order is seen.
    fn from(invalid: InvalidValue) -> Self {
        match invalid.field() {
            Field::GroupId => RequestError::GroupIdNotANumber,
            Field::Url => RequestError::InvalidUrl,
            Field::Description => RequestError::InvalidDescription,
            Field::EnabledEvents => RequestError::InvalidEnabledEvents,
            Field::EventType => RequestError::UnknownType,
            Field::RateLimit => RequestError::InvalidRateLimit,
            Field::IdempotencyKey => RequestError::InvalidIdempotencyKey,
            Field::Name => RequestError::InvalidName,
            Field::PageSize => RequestError::InvalidLimit,
            Field::StatsWindow => RequestError::SinceNotBeforeUntil,
            Field::StatsWindowLength => RequestError::StatsWindowTooLong,
            Field::Headers => RequestError::InvalidHeaders,
            Field::ReservedHeader => RequestError::ReservedHeader,
            Field::Ordering => RequestError::InvalidOrdering,
        }
    }
}

impl ApiError {
    /// The text the client sees; a fault of ours never shows its detail.
    pub fn client_message(&self) -> String {
        match self {
            ApiError::Domain(err) => domain_message(err),
            ApiError::Unavailable(_) => SERVICE_UNAVAILABLE.to_owned(),
            other => other.to_string(),
        }
    }
}

const SERVICE_UNAVAILABLE: &str = "Service unavailable";

/// The seed's words for each answer of a use case.
fn domain_message(err: &DomainError) -> String {
    let message = match err {
        DomainError::NotAllowed => "Unauthorized",
        DomainError::NotFound(resource) => match resource {
            Resource::Group => "Group not found",
            Resource::Webhook => "Webhook not found",
            Resource::Delivery => "Delivery not found",
            Resource::Organization => "Organization not found",
            Resource::ApiKey => "API key not found",
            Resource::OperatorEndpoint => "Operator endpoint not found",
        },
        DomainError::Conflict(conflict) => match conflict {
            Conflict::DeliveryInProgress => "Delivery is already in progress",
            Conflict::WebhookDisabled => "Webhook is disabled",
            Conflict::GroupIdTaken => "Group id already exists",
        },
        DomainError::Invalid(invalid) => return RequestError::from(*invalid).to_string(),
        DomainError::Unexpected(_) => SERVICE_UNAVAILABLE,
    };
    message.to_owned()
}

/// The seed's status for each answer of a use case: its "not found" of a
/// group, webhook or delivery is a 400, like its other client mistakes.
fn domain_status(err: &DomainError) -> StatusCode {
    match err {
        DomainError::NotAllowed => StatusCode::UNAUTHORIZED,
        DomainError::NotFound(
            Resource::Organization | Resource::ApiKey | Resource::OperatorEndpoint,
        ) => StatusCode::NOT_FOUND,
        DomainError::NotFound(_) => StatusCode::BAD_REQUEST,
        DomainError::Conflict(Conflict::DeliveryInProgress | Conflict::GroupIdTaken) => {
            StatusCode::CONFLICT
        }
        DomainError::Conflict(Conflict::WebhookDisabled) => StatusCode::BAD_REQUEST,
        DomainError::Invalid(_) => StatusCode::BAD_REQUEST,
        DomainError::Unexpected(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Domain(err) => domain_status(err),
            ApiError::Request(_) | ApiError::BadPayload | ApiError::InvalidQuery => {
                StatusCode::BAD_REQUEST
            }
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::CsrfRejected => StatusCode::FORBIDDEN,
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
