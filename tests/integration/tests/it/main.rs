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

use std::sync::{Arc, Mutex, OnceLock};

/// The EMF records every test of this binary has written so far (tests
/// share one sink: each looks for its own records).
pub fn metrics() -> &'static shared::metrics::Memory {
    static SINK: OnceLock<Arc<shared::metrics::Memory>> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Arc::new(shared::metrics::Memory::default());
        shared::metrics::set_sink(sink.clone());
        sink
    })
}

/// How many records carry the metric `name`.
pub fn metric_count(name: &str) -> usize {
    metrics().records().iter().filter(|r| r.get(name).is_some()).count()
}

/// Everything this test binary logs, through one global subscriber with the
/// functions' own filter at its most verbose, installed before any test that reads it logs.
pub fn captured_log() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(shared::telemetry::filter("trace"))
            .with_writer(captured.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

/// Collects what is logged.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
