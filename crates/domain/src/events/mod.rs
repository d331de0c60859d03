//! Events in: what an event is, and publishing one with a delivery per
//! matching webhook.

mod model;
mod publisher;

pub use model::*;
pub use publisher::*;
