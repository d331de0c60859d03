//! The inbound side: the actix-web API. One module per resource (`webhooks`,
//! `secrets`, `deliveries`, `stats`, `events`, `admin`, `health`, `portal`), each listing its
//! routes once in a [`routes::RouteTable`]; the extractors (`auth`, `body`);
//! `requests`, which reads paths, queries and bodies into the domain's values
//! in the seed's order; the one mapping of errors to the seed's JSON (`error`), the OpenAPI
//! document (`openapi`, assembled from the handlers' annotations, whose shared
//! pieces live in `api_doc`) and its reference page (`docs`).

pub(crate) mod admin;
pub(crate) mod api_doc;
pub(crate) mod auth;
pub(crate) mod body;
pub(crate) mod deliveries;
pub(crate) mod docs;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod openapi;
pub(crate) mod portal;
pub(crate) mod requests;
pub(crate) mod routes;
pub(crate) mod secrets;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod telemetry;
pub(crate) mod webhooks;
