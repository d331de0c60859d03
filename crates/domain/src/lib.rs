//! The domain of the Okaya webhooks service: entities, value objects, ports
//! and use cases. It knows no web framework and no database, so other services
//! can link it (with a storage adapter such as `webhooks-adapters-diesel`) and
//! call the same use cases the HTTP API calls.
//!
//! - [`WebhookService`]: the public webhook API (authenticate, list, get,
//!   create, update, delete, signing secrets).
//! - [`TenancyService`]: organizations, groups and API keys.
//! - [`EventPublisher`]: events in; each is stored with one delivery per
//!   matching webhook in one transaction.
//! - [`Dispatcher`]: the delivery loop (claim, sign, send, record, retry).
//! - [`DeliveryService`]: the delivery log, retries, test sends, recovery,
//!   a webhook's stats.
//! - [`PortalService`]: the portal's links and sessions, which reach the
//!   public API's use cases for one group.
//! - The ports in [`ports`] are what an adapter implements; with the `mocks`
//!   feature each has a `mockall` mock (`MockWebhookRepository`, …).
//!
//! The use cases take typed values: value objects ([`GroupId`],
//! [`WebhookUrl`], [`Description`], [`EnabledEvents`], [`IdempotencyKey`],
//! [`DisplayName`], …) each check their rule once, in their constructor, and
//! the commands ([`NewWebhook`], [`WebhookUpdate`], [`NewEvent`],
//! [`DeliveryQuery`]) are built from them. Every use case answers a
//! [`DomainError`] in business terms; what a client is told, and in which
//! order a request's parts are read, is the inbound adapter's choice.
//!
//! The code is grouped by bounded context, one folder each: `webhooks`,
//! `tenancy`, `portal`, `events` (publishing), `delivery` (dispatcher, retry policy,
//! circuit breaker, delivery log, wake-ups) and `signing` (secrets and their
//! cipher); `ids`, `time`, `text` and `error` are shared by all. The folders
//! are private: every public item has one path, at the crate's root.

#![warn(missing_docs)]

mod delivery;
mod error;
mod events;
mod ids;
mod operations;
mod portal;
pub mod ports;
mod probes;
mod retention;
mod signing;
mod tenancy;
mod text;
mod time;
mod webhooks;

pub use delivery::*;
pub use error::{Conflict, DomainError, Field, InvalidValue, RepositoryError, Resource};
pub use events::*;
pub use ids::{ApiKeyId, DeliveryId, EventId, GroupId, OrganizationId, WebhookId};
pub use operations::*;
pub use portal::*;
pub use ports::{
    Clock, DeliveryQueue, EventStore, IdSource, LocalDispatch, OutboundSender, PortalStore,
    QueueDepth, RandomIds, Requeue, Reservation, SystemClock, TenancyRepository, WebhookRepository,
};
pub use ports::{ProbeStore, RetentionStore};
pub use probes::{ProbeNext, ProbePolicy, ProbeTarget, Prober};
pub use retention::{
    OldestKept, PruneReport, PrunedDeliveries, PrunedEvents, Pruner, RetentionPolicy,
};
pub use signing::*;
pub use tenancy::*;
pub use text::TextKind;
pub use time::UnixMillis;
pub use webhooks::*;
