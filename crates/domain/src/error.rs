//! Errors in business terms. Every use case answers [`DomainError`]: not
//! allowed, not found, a conflict with the current state, an invalid value
//! (which field, and why), or a fault of ours. Value objects' constructors
//! answer [`InvalidValue`] naming their field. The words a client sees are
//! the inbound adapter's choice: `Display` here is for developers and logs.
//! Storage adapters answer [`RepositoryError`].

use std::fmt;

use thiserror::Error;

/// What a use case can answer besides success.
///
/// ```
/// use webhooks_domain::{DomainError, Field, GroupId, Resource};
///
/// let invalid = GroupId::new(0).unwrap_err();
/// assert_eq!(invalid.field(), Field::GroupId);
/// assert!(matches!(DomainError::from(invalid), DomainError::Invalid(_)));
/// assert_eq!(DomainError::NotFound(Resource::Group).to_string(), "group not found");
/// ```
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    /// The API key is missing, unknown or revoked.
    #[error("not allowed: the API key is missing, unknown or revoked")]
    NotAllowed,
    /// The resource does not exist, or belongs to another organization: the
    /// caller cannot tell the two apart.
    #[error("{0} not found")]
    NotFound(Resource),
    /// The request is well formed but the current state refuses it.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A value that breaks its field's rule.
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// A fault of ours (storage unreachable, corrupt row). The text is for logs only.
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl From<RepositoryError> for DomainError {
    fn from(err: RepositoryError) -> Self {
        DomainError::Unexpected(err.to_string())
    }
}

/// What [`DomainError::NotFound`] did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A group, or another organization's group.
    Group,
    /// A webhook of the group.
    Webhook,
    /// A delivery of the webhook.
    Delivery,
    /// An organization.
    Organization,
    /// An API key.
    ApiKey,
    /// An organization's operator endpoint.
    OperatorEndpoint,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Group => "group",
            Resource::Webhook => "webhook",
            Resource::Delivery => "delivery",
            Resource::Organization => "organization",
            Resource::ApiKey => "API key",
            Resource::OperatorEndpoint => "operator endpoint",
        })
    }
}

/// Why [`DomainError::Conflict`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Conflict {
    /// A manual retry of a delivery a worker is sending right now: a second
    /// attempt beside it would send the event twice at once.
    DeliveryInProgress,
    /// A test send to a disabled webhook, which would never be delivered.
    WebhookDisabled,
    /// The group id asked for is taken (or every generated one was).
    GroupIdTaken,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conflict::DeliveryInProgress => "the delivery is being sent right now",
            Conflict::WebhookDisabled => "the webhook is disabled",
            Conflict::GroupIdTaken => "the group id is taken",
        })
    }
}

/// A value its field's rule refuses: which field, and why (for developers).
///
/// ```
/// use webhooks_domain::{Field, WebhookUrl};
///
/// let err = WebhookUrl::new("ftp://integration.example/").unwrap_err();
/// assert_eq!(err.field(), Field::Url);
/// assert_eq!(err.to_string(), "invalid URL: not an absolute http or https URL with a host");
/// ```
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
#[error("invalid {field}: {reason}")]
pub struct InvalidValue {
    field: Field,
    reason: &'static str,
}

impl InvalidValue {
    pub(crate) fn new(field: Field, reason: &'static str) -> Self {
        Self { field, reason }
    }

    /// The field whose rule the value breaks.
    pub fn field(&self) -> Field {
        self.field
    }

    /// Which part of the rule, in a few words.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// The fields value objects validate, for [`InvalidValue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// [`crate::GroupId`].
    GroupId,
    /// [`crate::WebhookUrl`].
    Url,
    /// [`crate::Description`].
    Description,
    /// [`crate::EnabledEvents`].
    EnabledEvents,
    /// [`crate::EventType`] of a published event: an operational one.
    EventType,
    /// [`crate::RateLimit`].
    RateLimit,
    /// [`crate::IdempotencyKey`].
    IdempotencyKey,
    /// [`crate::DisplayName`] of an organization or a group.
    Name,
    /// [`crate::PageSize`] of the delivery log.
    PageSize,
    /// [`crate::StatsWindow`]: `since` is not before `until`.
    StatsWindow,
    /// [`crate::StatsWindow`]: longer than the longest window.
    StatsWindowLength,
    /// [`crate::CustomHeaders`]: too many, a name that is no token or is
    /// given twice, or a value that cannot be sent.
    Headers,
    /// [`crate::CustomHeaders`]: a name the service sets itself.
    ReservedHeader,
    /// [`crate::DeliveryOrdering`].
    Ordering,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::GroupId => "group id",
            Field::Url => "URL",
            Field::Description => "description",
            Field::EnabledEvents => "enabled events",
            Field::EventType => "event type",
            Field::RateLimit => "rate limit",
            Field::IdempotencyKey => "idempotency key",
            Field::Name => "name",
            Field::PageSize => "page size",
            Field::StatsWindow => "stats window",
            Field::StatsWindowLength => "stats window length",
            Field::Headers => "headers",
            Field::ReservedHeader => "header name",
            Field::Ordering => "ordering",
        })
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
