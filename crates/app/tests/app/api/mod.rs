//! The HTTP API, against the application started in-process on a loopback
//! port ([`TestApp`](crate::support::TestApp)), each test on SQLite and on
//! PostgreSQL.

mod admin;
mod custom_headers;
mod delivery;
mod errors;
mod isolation;
mod malformed_requests;
mod observability;
mod operational_events;
mod ordering;
mod portal;
mod protocol;
mod retention;
mod self_healing;
mod slow_bodies;
mod stats;
mod validation;
mod webhooks;
