//! Computed matrices, kept per process for as long as their input is
//! current. A matrix depends on the dashboard (selector, visible columns),
//! the request's namespace and the data of each of its clusters; the key
//! names all of them, so a newer snapshot of any cluster, a configuration
//! change or another caller's team scope is a different entry. Freshness
//! changes with the clock, so it is not part of a cached matrix: handlers
//! apply the current freshness to the rows they return.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shared::reader::ClusterRead;

use crate::load::Visible;
use crate::matrix::Row;

/// Entries beyond this are dropped all at once: keys of old snapshots
/// are never asked for again, so there is nothing worth ranking.
const MAX_ENTRIES: usize = 64;

#[derive(Debug, Default)]
pub struct MatrixCache {
    entries: Mutex<HashMap<String, Arc<Vec<Row>>>>,
}

/// What a current matrix was computed from.
pub fn key(visible: &Visible<'_>, namespace: Option<&str>, reads: &[Vec<ClusterRead>]) -> String {
    let mut key = format!(
        "{}\n{}\n{}\n",
        visible.dashboard.name.as_str(),
        visible.dashboard.selector.as_str(),
        namespace.unwrap_or("")
    );
    for (environment, clusters) in visible.columns.iter().zip(reads) {
        key.push_str(environment.name.as_str());
        for (cluster, read) in environment.clusters.iter().zip(clusters) {
            let (generation, success) = read
                .status
                .as_ref()
                .map(|s| (s.generation, s.last_success.map(|t| t.as_nanosecond())))
                .unwrap_or_default();
            key.push_str(&format!(" {}:{generation}:{success:?}", cluster.name.as_str()));
        }
        key.push('\n');
    }
    key
}

impl MatrixCache {
    pub fn get_or_compute(&self, key: String, compute: impl FnOnce() -> Vec<Row>) -> Arc<Vec<Row>> {
        if let Some(rows) = self.lock().get(&key) {
            return rows.clone();
        }
        let rows = Arc::new(compute());
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, rows.clone());
        rows
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Vec<Row>>>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
