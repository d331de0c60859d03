//! HTTP integration tests: the real application on a loopback port, over a
//! fresh SQLite file and a fresh PostgreSQL database, each test on both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
#[path = "../support/receiver.rs"]
mod receiver;

mod admin;
mod delivery;
mod errors;
mod isolation;
mod observability;
mod protocol;
mod validation;
mod webhooks;
