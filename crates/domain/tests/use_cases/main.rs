//! The use cases of the domain crate against `mockall` mocks of every port,
//! one module per service. They take typed values, so these tests are about
//! business rules; how the HTTP API reads a request (and in which order) is
//! tested in `webhooks-adapters-http`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod delivery_log;
mod dispatcher;
mod hand_off;
mod operations;
mod portal;
mod probes;
mod publishing;
mod retention;
mod secrets;
mod stats;
mod tenancy;
mod webhooks;
