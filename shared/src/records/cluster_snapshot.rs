//! What a snapshot keeps of a cluster in the cluster's partition — its
//! workloads, the pods no workload owns, the versions seen there and its
//! status — read in one query, and cleared together with its pods.

use std::pin::pin;

use futures::StreamExt;

use crate::model::{ClusterStatus, LoosePod, VersionSeen, Workload, WorkloadKind};
use crate::records::{self, keys};
use crate::store::{
    ItemBatchWrite, ItemKey, ItemQuery, Query, SortKeyRange, StoreResult, Stored, WriteOp,
};

/// One item of a cluster's partition.
pub enum ClusterItem {
    Workload(Workload),
    Loose(LoosePod),
    Seen(VersionSeen),
    Status(ClusterStatus),
}

/// The whole partition: `LOOSE#…`, `SEEN#…`, `STATUS`, `WL#…` sort in
/// that order.
pub fn query(cluster: &str) -> Query {
    Query::partition(keys::cluster_pk(cluster)).limit(1000)
}

/// The keys of one cluster's snapshot items, for the writer that compares
/// a snapshot with the previous one item by item. Items are told apart by
/// their sort key within their partition ([`ItemKey::sk`]); a sort key read
/// back from the store becomes a key again with [`SnapshotKeys::in_cluster`]
/// or [`SnapshotKeys::in_pods`].
#[derive(Debug, Clone)]
pub struct SnapshotKeys {
    cluster_pk: String,
    pods_pk: String,
}

impl SnapshotKeys {
    pub fn of(cluster: &str) -> Self {
        Self { cluster_pk: keys::cluster_pk(cluster), pods_pk: keys::pods_pk(cluster) }
    }

    fn in_cluster_with(&self, prefix: &str) -> Query {
        Query::partition(self.cluster_pk.clone()).range(SortKeyRange::Prefix(prefix.into()))
    }

    /// Every workload of the cluster.
    pub fn workloads(&self) -> Query {
        self.in_cluster_with(keys::WORKLOAD_PREFIX)
    }

    /// Every pod no workload owns.
    pub fn loose_pods(&self) -> Query {
        self.in_cluster_with(keys::LOOSE_PREFIX)
    }

    /// Every version seen in the cluster.
    pub fn seen_versions(&self) -> Query {
        self.in_cluster_with(keys::SEEN_PREFIX)
    }

    /// Every pod of the cluster.
    pub fn pods(&self) -> Query {
        Query::partition(self.pods_pk.clone())
    }

    pub fn workload(&self, namespace: &str, kind: WorkloadKind, name: &str) -> ItemKey {
        self.in_cluster(keys::workload_sk(namespace, kind, name))
    }

    pub fn loose_pod(&self, namespace: &str, name: &str) -> ItemKey {
        self.in_cluster(keys::loose_sk(namespace, name))
    }

    pub fn seen(&self, service: &str, version: &str) -> ItemKey {
        self.in_cluster(keys::seen_sk(service, version))
    }

    pub fn pod(&self, namespace: &str, name: &str) -> ItemKey {
        self.in_pods(keys::pod_sk(namespace, name))
    }

    /// The item of the cluster's partition (a workload, loose pod or seen
    /// version) whose sort key was read.
    pub fn in_cluster(&self, sk: String) -> ItemKey {
        ItemKey::new(self.cluster_pk.clone(), sk)
    }

    /// The pod whose sort key was read.
    pub fn in_pods(&self, sk: String) -> ItemKey {
        ItemKey::new(self.pods_pk.clone(), sk)
    }
}

/// What `stored` (from [`query`]) holds; `None` for an item of a kind this
/// code does not know (a newer writer's), which readers skip.
pub fn decode(stored: &Stored) -> StoreResult<Option<ClusterItem>> {
    let sk = stored.item.key.sk.as_str();
    Ok(Some(if sk.starts_with(keys::WORKLOAD_PREFIX) {
        ClusterItem::Workload(records::decode(stored)?)
    } else if sk.starts_with(keys::LOOSE_PREFIX) {
        ClusterItem::Loose(records::decode(stored)?)
    } else if sk.starts_with(keys::SEEN_PREFIX) {
        ClusterItem::Seen(records::decode(stored)?)
    } else if sk == keys::STATUS_SK {
        ClusterItem::Status(records::decode(stored)?)
    } else {
        return Ok(None);
    }))
}

/// Deletes a cluster's snapshot data — workloads, loose pods, status and
/// pods — so that the next snapshot starts clean, and returns how many
/// items went. Which versions ran there is history, not snapshot data:
/// promotion order still needs it, so seen versions stay.
pub async fn clear<S: ItemQuery + ItemBatchWrite + ?Sized>(
    store: &S,
    cluster: &str,
) -> StoreResult<usize> {
    let mut deleted = 0;
    for pk in [keys::cluster_pk(cluster), keys::pods_pk(cluster)] {
        let mut pages = pin!(records::pages(store, Query::partition(pk).limit(1000)));
        while let Some(page) = pages.next().await {
            let ops: Vec<WriteOp> = page?
                .into_iter()
                .filter(|s| !s.item.key.sk.starts_with(keys::SEEN_PREFIX))
                .map(|s| WriteOp::Delete(s.item.key))
                .collect();
            deleted += ops.len();
            store.batch_write(ops).await?;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use serde_json::json;

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Item, ItemKey};

    async fn put(store: &MemoryStore, pk: String, sk: String, body: serde_json::Value) {
        store.batch_write(vec![WriteOp::Put(Item::new(ItemKey::new(pk, sk), body))]).await.unwrap();
    }

    #[tokio::test]
    async fn clearing_a_cluster_keeps_the_versions_seen_there_and_other_clusters() {
        let store = MemoryStore::default();
        let seen =
            json!({"service": "api", "version": "1.2.0", "firstSeen": "2026-01-01T00:00:00Z"});
        let loose = json!({"namespace": "ns", "name": "p", "images": []});
        put(&store, keys::cluster_pk("a"), keys::seen_sk("api", "1.2.0"), seen.clone()).await;
        put(&store, keys::cluster_pk("a"), keys::loose_sk("ns", "p"), loose.clone()).await;
        put(&store, keys::cluster_pk("a"), keys::STATUS_SK.into(), json!({})).await;
        put(&store, keys::pods_pk("a"), keys::pod_sk("ns", "p"), json!({})).await;
        put(&store, keys::cluster_pk("b"), keys::loose_sk("ns", "p"), loose).await;

        assert_eq!(clear(&store, "a").await.unwrap(), 3, "loose pod, status and pod");
        let left: Vec<Stored> = records::pages(&store, query("a")).try_concat().await.unwrap();
        assert_eq!(left.len(), 1);
        match decode(&left[0]).unwrap() {
            Some(ClusterItem::Seen(found)) => assert_eq!(found.version, "1.2.0"),
            _ => panic!("the version seen stays"),
        }
        let pods = records::pages(&store, records::pod::query("a", None)).try_concat().await;
        assert!(pods.unwrap().is_empty());
        let other: Vec<Stored> = records::pages(&store, query("b")).try_concat().await.unwrap();
        assert_eq!(other.len(), 1, "another cluster is untouched");
    }

    #[tokio::test]
    async fn an_item_of_an_unknown_kind_is_skipped_and_a_broken_one_is_an_error() {
        let store = MemoryStore::default();
        put(&store, keys::cluster_pk("a"), "ZZZ#later".into(), json!({"x": 1})).await;
        put(&store, keys::cluster_pk("a"), keys::loose_sk("ns", "p"), json!({"name": 3})).await;
        let items: Vec<Stored> = records::pages(&store, query("a")).try_concat().await.unwrap();
        let decoded: Vec<_> = items.iter().map(decode).collect();
        assert!(matches!(decoded[0], Err(crate::store::StoreError::Corrupt { .. })));
        assert!(matches!(decoded[1], Ok(None)));
    }
}
