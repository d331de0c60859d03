//! Domain errors. Each variant that a client can cause carries the exact text
//! the public API document prescribes; `Unexpected` is the opaque fault of ours.

use thiserror::Error;

/// Everything a use case of the public webhook API can answer besides success.
///
/// `Display` is the exact client-facing message of the seed document, so the
/// HTTP adapter only picks a status code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WebhookError {
    /// The API key is missing, unknown or revoked.
    #[error("Unauthorized")]
    Unauthorized,
    #[error("You are missing the path parameter groupID")]
    MissingGroupId,
    #[error("groupID must be a number")]
    GroupIdNotANumber,
    #[error("You are missing the path parameter webhookID")]
    MissingWebhookId,
    /// The body is not a JSON object.
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
    /// The group does not exist or belongs to another organization.
    #[error("Group not found")]
    GroupNotFound,
    #[error("Webhook not found")]
    WebhookNotFound,
    #[error("Delivery not found")]
    DeliveryNotFound,
    /// A manual retry of a delivery a worker is sending right now: a second
    /// attempt beside it would send the event twice at once.
    #[error("Delivery is already in progress")]
    DeliveryInProgress,
    /// A test send to a disabled webhook, which would never be delivered.
    #[error("Webhook is disabled")]
    WebhookDisabled,
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
    /// A fault of ours (storage unreachable, corrupt row). The text is for logs only.
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl From<RepositoryError> for WebhookError {
    fn from(err: RepositoryError) -> Self {
        WebhookError::Unexpected(err.to_string())
    }
}

/// What a storage adapter may answer besides success. Adapters translate their
/// own errors (Diesel's, the pool's) into these; database text never reaches a client.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RepositoryError {
    /// A row with the same unique key exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The storage cannot be reached or failed; retrying later may succeed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back into a domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}
