//! All integration tests in one binary (one link, shared helpers).
// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_e2e;
mod auth_e2e;
mod chaos;
mod eks;
mod kube_fake;
mod mail;
mod openapi;
mod real_clusters;
mod snapshot;
mod store_contract;
mod template;
mod token_sources;

pub use shared::testing::{captured_log, metric_count, metrics};
