//! The release dashboard's shared library: domain types, fleet
//! configuration, the storage port and its adapters, and the HTTP error
//! mapping. Function crates are thin wiring around this.

pub mod auth;
pub mod aws;
pub mod clock;
pub mod config;
pub mod context;
pub mod domain;
pub mod fleet;
pub mod freshness;
pub mod http;
pub mod labels;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod paging;
pub mod params;
pub mod pem;
pub mod policy;
pub mod reader;
pub mod records;
pub mod refresh;
pub mod settings;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
