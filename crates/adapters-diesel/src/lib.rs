//! Diesel implementations of the webhooks domain's storage ports, for
//! PostgreSQL and SQLite with one code path.
//!
//! - [`Database`]: the connection pool (`sqlite://PATH` or `postgres://…`),
//!   the embedded migrations, and the readiness [`Database::ping`].
//! - [`DieselWebhookRepository`] and [`DieselTenancyRepository`]: the domain's
//!   [`WebhookRepository`](webhooks_domain::WebhookRepository) and
//!   [`TenancyRepository`](webhooks_domain::TenancyRepository).
//! - [`DieselEventStore`] and [`DieselDeliveryQueue`]: the domain's
//!   [`EventStore`](webhooks_domain::EventStore) (events and their fan-out,
//!   in one transaction) and [`DeliveryQueue`](webhooks_domain::DeliveryQueue)
//!   (claims, attempts, rate slots and the delivery log).
//! - [`DieselPortalStore`]: the domain's
//!   [`PortalStore`](webhooks_domain::PortalStore), the portal's links and
//!   sessions.
//! - With the `testing` feature, [`TestDatabase`]: a fresh, migrated database
//!   per test on either backend; [`TestCluster`]: a PostgreSQL server of the
//!   tests' own (TLS, stopped and restarted by fault tests).
//!
//! Every query is written once against [`DbConnection`], Diesel's
//! `MultiConnection` over both backends. Diesel is synchronous: the
//! repositories run their queries on Tokio's blocking pool, so callers only
//! see `async` methods. The few statements that must differ per backend
//! (the claim's `SKIP LOCKED`, `NOTIFY`, advisory locks, `ON CONFLICT`, the
//! SQLite write transaction) each sit in one function with both arms side by
//! side. Storage errors become the domain's `RepositoryError`; the database's
//! own text stays in the error string for logs.
//!
//! Where things are: one module per resource (`webhooks`, `tenancy`, `portal`,
//! `events/`, `deliveries/`); `batching/` for the writes that share a
//! transaction (group commit of publishes, batches of attempts);
//! `database/` for the pool, migrations and transactions; `statements` for
//! what SQL written as text shares; `listener/` and `health` for the
//! connections outside the pool; `testing/` behind the `testing` feature.

mod batching;
mod database;
mod deliveries;
mod events;
mod health;
mod listener;
mod operations;
mod portal;
mod probes;
mod retention;
mod schema;
mod statements;
mod tenancy;
#[cfg(feature = "testing")]
mod testing;
mod webhooks;

pub use database::{Backend, Database, DatabaseError, DbConnection};
pub use deliveries::{DieselDeliveryQueue, DELIVERIES_CHANNEL};
pub use events::DieselEventStore;
pub use listener::{Listener, ListenerHooks};
pub use portal::DieselPortalStore;
pub use probes::DieselProbeStore;
pub use retention::DieselRetention;
pub use tenancy::{DieselTenancyRepository, API_KEYS_CHANNEL};
#[cfg(feature = "testing")]
pub use testing::{
    probe_listener_connection, test_server_url, RowCounts, TestCluster, TestDatabase,
    DEFAULT_TEST_DATABASE_URL,
};
pub use webhooks::DieselWebhookRepository;
