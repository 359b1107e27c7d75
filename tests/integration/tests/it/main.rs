//! All integration tests in one binary (one link, shared helpers).
// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_bed;
mod auth_journey;
mod chaos;
mod dashboards;
mod eks;
mod inventory;
mod kube_fake;
mod mail;
mod openapi;
mod real_clusters;
mod snapshot;
mod store_contract;
mod template;
mod token_sources;

/// The EMF records every test of this binary has written so far (tests
/// share one sink: each looks for its own records).
pub fn metrics() -> &'static shared::metrics::Memory {
    static SINK: std::sync::OnceLock<std::sync::Arc<shared::metrics::Memory>> =
        std::sync::OnceLock::new();
    SINK.get_or_init(|| {
        let sink = std::sync::Arc::new(shared::metrics::Memory::default());
        shared::metrics::set_sink(sink.clone());
        sink
    })
}

/// How many records carry the metric `name`.
pub fn metric_count(name: &str) -> usize {
    metrics().records().iter().filter(|r| r.get(name).is_some()).count()
}
