//! CloudWatch metrics in Embedded Metric Format: one JSON line per record
//! on standard output, which CloudWatch Logs turns into metrics without an
//! API call (and without the latency or IAM permission one would need).
//! Records go to a sink, so tests read what would have been written.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::{Map, Value, json};

/// Every metric of the project lives in this namespace.
pub const NAMESPACE: &str = "ReleaseDashboard";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Seconds,
    Count,
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
            Self::Count => "Count",
            Self::None => "None",
        }
    }
}

/// One EMF record: a dimension set and the metrics measured under it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    dimensions: Vec<(&'static str, String)>,
    values: Vec<(&'static str, f64, Unit)>,
    /// Also publish the values without dimensions (one series for all).
    rollup: bool,
}

impl Record {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    /// Publishes the values under no dimension too, so one alarm can
    /// watch every cluster or route.
    pub fn rollup(mut self) -> Self {
        self.rollup = true;
        self
    }

    pub fn value(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.values.push((name, value, unit));
        self
    }

    /// The EMF document at `timestamp_ms`.
    pub fn to_json(&self, timestamp_ms: i64) -> Value {
        let mut root = Map::new();
        let names: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        let sets = if self.rollup { json!([names, []]) } else { json!([names]) };
        let metrics: Vec<Value> = self
            .values
            .iter()
            .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": metrics}],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), Value::String(value.clone()));
        }
        for (name, value, _) in &self.values {
            root.insert((*name).into(), json!(value));
        }
        Value::Object(root)
    }

    /// Writes the record to the process's sink.
    pub fn emit(self) {
        sink().write(&self);
    }
}

/// Where records go: standard output, or memory in tests.
pub trait Sink: Send + Sync {
    fn write(&self, record: &Record);
}

/// One line per record on standard output.
#[derive(Debug, Default)]
pub struct Stdout;

impl Sink for Stdout {
    fn write(&self, record: &Record) {
        let now = jiff::Timestamp::now().as_millisecond();
        let mut line = record.to_json(now).to_string();
        line.push('\n');
        // One write per line, so lines of concurrent requests never mix.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
}

/// Keeps records for tests.
#[derive(Debug, Default)]
pub struct Memory {
    records: Mutex<Vec<Value>>,
}

impl Memory {
    /// Every record written so far, as EMF documents. Tests running at the
    /// same time share the sink, so none of them clears it.
    pub fn records(&self) -> Vec<Value> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl Sink for Memory {
    fn write(&self, record: &Record) {
        let document = record.to_json(0);
        self.records.lock().unwrap_or_else(PoisonError::into_inner).push(document);
    }
}

static SINK: RwLock<Option<Arc<dyn Sink>>> = RwLock::new(None);

/// Standard output on Lambda, where CloudWatch reads it; nowhere otherwise
/// (the local server and tests), unless a sink was set.
fn sink() -> Arc<dyn Sink> {
    let current = SINK.read().unwrap_or_else(PoisonError::into_inner).clone();
    current.unwrap_or_else(|| {
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            Arc::new(Stdout)
        } else {
            Arc::new(Discard)
        }
    })
}

/// Drops every record.
#[derive(Debug, Default)]
pub struct Discard;

impl Sink for Discard {
    fn write(&self, _: &Record) {}
}

/// Sends this process's records to `sink` from now on (tests: records of
/// tests running alongside arrive there too, so a test looks for its own).
pub fn set_sink(sink: Arc<dyn Sink>) {
    *SINK.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rolled_up_record_is_also_published_without_dimensions() {
        let document = Record::new()
            .dimension("Cluster", "eks-a")
            .rollup()
            .value("SnapshotFailures", 1.0, Unit::Count)
            .to_json(0);
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Cluster"], []])
        );
    }

    #[test]
    fn a_record_is_an_emf_document_whose_declared_metrics_are_present() {
        let document = Record::new()
            .dimension("Route", "GET /clusters/{cluster}")
            .value("Latency", 12.5, Unit::Milliseconds)
            .value("Errors", 0.0, Unit::Count)
            .to_json(1_700_000_000_000);
        let aws = &document["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000_i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Route"]]));
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(document[name].is_number(), "{name} is declared and present");
        }
        assert_eq!(document["Route"], "GET /clusters/{cluster}");
        assert_eq!(document["Latency"], 12.5);
        assert_eq!(directive["Metrics"][0]["Unit"], "Milliseconds");
    }
}
