//! Webhooks: the entity and its value objects (URL, description, event
//! types, rate limit, custom headers), the use cases of the public webhook API,
//! and the cache of each group's list.

mod cache;
mod event_types;
mod headers;
mod model;
mod service;
mod url;

pub use cache::*;
pub use event_types::*;
pub use headers::*;
pub use model::*;
pub use service::*;
pub use url::*;
