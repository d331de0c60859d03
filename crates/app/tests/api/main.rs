//! HTTP integration tests: the real application on a loopback port, over a
//! fresh SQLite file and a fresh PostgreSQL database, each test on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
#[path = "../support/proxy.rs"]
mod proxy;
mod raw_http;
#[path = "../support/receiver.rs"]
mod receiver;

mod admin;
mod delivery;
mod errors;
mod isolation;
mod malformed_requests;
mod observability;
mod protocol;
mod slow_bodies;
mod validation;
mod webhooks;
