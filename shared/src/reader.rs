//! Reading what the snapshots stored, for the request path: one `GetItem`
//! of a cluster's status, and one query of its partition (workloads and the
//! versions it has run) only when a newer snapshot succeeded since this
//! process last read it. A warm function answers a dashboard of forty
//! clusters with forty small reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use jiff::Timestamp;

use crate::model::{ClusterStatus, LoosePod, VersionSeen, Workload};
use crate::records::cluster_snapshot::{self, ClusterItem};
use crate::records::{self, cluster_status};
use crate::store::{ItemGet, ItemQuery, StoreResult};

/// What one cluster's last good snapshot holds.
#[derive(Debug, Default)]
pub struct SnapshotData {
    /// Sorted by namespace, kind and name (the table's order).
    pub workloads: Vec<Arc<Workload>>,
    /// Every version this cluster ran within the history retention.
    pub seen: Vec<VersionSeen>,
    /// Pods no workload owns, with their images.
    pub loose: Vec<LoosePod>,
}

/// A cluster as the read side sees it now: its newest status (attempts and
/// errors included) and the data of its last successful snapshot.
#[derive(Debug, Clone)]
pub struct ClusterRead {
    pub status: Option<ClusterStatus>,
    pub data: Arc<SnapshotData>,
}

/// Which successful snapshot some data came from. The generation restarts
/// when a cache clear deletes the status item, the time does not.
type DataKey = (u64, Option<Timestamp>);

fn data_key(status: &ClusterStatus) -> DataKey {
    (status.generation, status.last_success)
}

/// The per-process cache of cluster data, keyed by cluster name.
#[derive(Debug, Default)]
pub struct SnapshotReader {
    cache: Mutex<HashMap<String, (DataKey, Arc<SnapshotData>)>>,
}

impl SnapshotReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one cluster: at most one get and one (paged) query.
    pub async fn read<S: ItemGet + ItemQuery + ?Sized>(
        &self,
        store: &S,
        cluster: &str,
    ) -> StoreResult<ClusterRead> {
        let Some((status, _)) = cluster_status::read(store, cluster).await? else {
            self.forget(cluster);
            return Ok(ClusterRead { status: None, data: Arc::default() });
        };
        let key = data_key(&status);
        if let Some(data) = self.cached(cluster, key) {
            return Ok(ClusterRead { status: Some(status), data });
        }
        let (data, status_in_query) = query_partition(store, cluster).await?;
        let data = Arc::new(data);
        // A snapshot that finished between the get and the query may have
        // left a mix of old and new items: serve it, but do not keep it.
        if status_in_query.as_ref().map(data_key) == Some(key) {
            self.remember(cluster, key, data.clone());
        }
        Ok(ClusterRead { status: Some(status), data })
    }

    fn cached(&self, cluster: &str, key: DataKey) -> Option<Arc<SnapshotData>> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.get(cluster).filter(|(k, _)| *k == key).map(|(_, data)| data.clone())
    }

    fn remember(&self, cluster: &str, key: DataKey, data: Arc<SnapshotData>) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.insert(cluster.to_owned(), (key, data));
    }

    fn forget(&self, cluster: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.remove(cluster);
    }
}

/// The whole cluster partition in one paged query.
async fn query_partition<S: ItemQuery + ?Sized>(
    store: &S,
    cluster: &str,
) -> StoreResult<(SnapshotData, Option<ClusterStatus>)> {
    let mut data = SnapshotData::default();
    let mut status = None;
    let mut pages = std::pin::pin!(records::pages(store, cluster_snapshot::query(cluster)));
    while let Some(page) = pages.next().await {
        for stored in page? {
            match cluster_snapshot::decode(&stored)? {
                Some(ClusterItem::Workload(workload)) => data.workloads.push(Arc::new(workload)),
                Some(ClusterItem::Loose(pod)) => data.loose.push(pod),
                Some(ClusterItem::Seen(seen)) => data.seen.push(seen),
                Some(ClusterItem::Status(found)) => status = Some(found),
                None => {}
            }
        }
    }
    Ok((data, status))
}
