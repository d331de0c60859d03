//! Operational events: what an organization's operator endpoint is told
//! about its webhooks (disabled, enabled, a delivery failed for good, a
//! secret rotated), and the use cases that configure that endpoint.
//!
//! The operator endpoint is an ordinary webhook of the organization's
//! operations group, so its events are signed, retried and logged like any
//! delivery. Storage writes each event in the transaction of the change
//! that causes it; this module builds what is written.

mod endpoint;
mod model;

pub use endpoint::*;
pub use model::*;
