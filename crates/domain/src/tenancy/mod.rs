//! Tenancy: organizations, groups and API keys, who may call what, the
//! administration use cases and the API-key cache.

mod cache;
mod demo;
mod model;
mod name;
mod service;

pub use cache::*;
pub use demo::*;
pub use model::*;
pub use name::*;
pub use service::*;
