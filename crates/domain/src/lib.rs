//! The domain of the Okaya webhooks service: entities, value objects, ports
//! and use cases. It knows no web framework and no database, so other services
//! can link it (with a storage adapter such as `webhooks-adapters-diesel`) and
//! call the same use cases the HTTP API calls.
//!
//! - [`WebhookService`]: the public webhook API (list, get, create, update,
//!   delete) with the seed document's checks in its order.
//! - [`TenancyService`]: organizations, groups and API keys.
//! - [`EventPublisher`]: events in; each is stored with one delivery per
//!   matching webhook in one transaction.
//! - [`Dispatcher`]: the delivery loop (claim, sign, send, record, retry).
//! - [`DeliveryService`]: the delivery log, retries, test sends, recovery.
//! - The ports in [`ports`] are what an adapter implements; with the `mocks`
//!   feature each has a `mockall` mock (`MockWebhookRepository`, …).

pub mod admin;
pub mod circuit;
pub mod deliveries;
pub mod delivery;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod ids;
pub mod ports;
pub mod publishing;
pub mod secret;
pub mod tenancy;
pub mod tenancy_cache;
pub mod text;
pub mod time;
pub mod wakeup;
pub mod webhook;
pub mod webhooks;

pub use admin::{AdminError, DemoTenant, IssuedApiKey, TenancyService, DEMO_GROUP_ID};
pub use circuit::{Circuit, CircuitSettings};
pub use deliveries::{DeliveryPage, DeliveryQuery, DeliveryService, TestSend};
pub use delivery::{
    Attempt, AttemptRecord, Delivery, DeliveryDetail, DeliveryJob, DeliveryStatus, EndpointHealth,
    NextStep, RetryPolicy, SendOutcome, SignedRequest, MAX_RESPONSE_BODY_BYTES, TEST_EVENT_TYPE,
};
pub use dispatch::{DispatchSettings, Dispatcher};
pub use error::{RepositoryError, WebhookError};
pub use event::{Event, IdempotencyKey, PublishError, PublishOutcome, PublishRequest};
pub use ids::{ApiKeyId, DeliveryId, EventId, GroupId, OrganizationId, WebhookId};
pub use ports::{
    Clock, DeliveryQueue, EventStore, IdSource, OutboundSender, QueueDepth, RandomIds, Requeue,
    SystemClock, TenancyRepository, WebhookRepository,
};
pub use publishing::EventPublisher;
pub use secret::{SealedSecret, SecretCipher, SecretError, SigningSecret};
pub use tenancy::{ApiKey, ApiKeyHash, ApiKeySecret, Group, Organization, Principal};
pub use tenancy_cache::{CachedTenancy, DEFAULT_API_KEY_TTL};
pub use text::TextKind;
pub use time::UnixMillis;
pub use wakeup::Wakeup;
pub use webhook::{
    Description, EnabledEvents, EventType, NewWebhookRequest, RateLimit, Webhook, WebhookStatus,
    WebhookUpdateRequest, WebhookUrl,
};
pub use webhooks::{CreatedWebhook, WebhookService, DEFAULT_ROTATION_GRACE};
