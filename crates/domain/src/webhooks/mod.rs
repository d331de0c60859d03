//! Webhooks: the entity and its value objects (URL, description, event
//! types, rate limit), and the use cases of the public webhook API.

mod model;
mod service;

pub use model::*;
pub use service::*;
