//! A cluster's pod history (`model::PodEvent`): one item per change,
//! keyed by time then pod, so that a time window is one range of keys.

use jiff::Timestamp;

use crate::model::PodEvent;
use crate::records::keys;
use crate::store::{ItemKey, Query, SortKeyRange};

/// Where `event` is kept.
pub fn key(event: &PodEvent) -> ItemKey {
    let sk = keys::pod_history_sk(event.at, &event.namespace, &event.pod, event.change.as_str());
    ItemKey::new(keys::pod_history_pk(event.cluster.as_str()), sk)
}

/// A cluster's pod events from `since` to `until` (both included, either
/// open), newest first.
pub fn between(cluster: &str, since: Option<Timestamp>, until: Option<Timestamp>) -> Query {
    // Keys start with the time: `0` and `~` bound every one, and `#~`
    // after a time bounds every event at that time.
    let lower = since.map_or_else(|| "0".to_owned(), keys::time_key);
    let upper = until.map_or_else(|| "~".to_owned(), |t| format!("{}#~", keys::time_key(t)));
    Query::partition(keys::pod_history_pk(cluster))
        .range(SortKeyRange::Between(lower, upper))
        .descending()
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;
    use serde_json::json;

    use super::*;
    use crate::records;
    use crate::store::memory::MemoryStore;
    use crate::store::{Item, ItemBatchWrite, ItemKey, WriteOp};

    #[tokio::test]
    async fn a_window_holds_every_event_at_its_ends_newest_first() {
        let store = MemoryStore::default();
        let at = |t: &str| -> Timestamp { t.parse().unwrap() };
        let times = ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"];
        let ops = times
            .iter()
            .map(|t| {
                let sk = keys::pod_history_sk(at(t), "ns", "p", "phase");
                let key = ItemKey::new(keys::pod_history_pk("c"), sk);
                WriteOp::Put(Item::new(key, json!({"at": t})))
            })
            .collect();
        store.batch_write(ops).await.unwrap();
        let read = |since: Option<&str>, until: Option<&str>| {
            let query = between("c", since.map(at), until.map(at));
            let store = &store;
            async move {
                let items: Vec<_> = records::pages(store, query).try_concat().await.unwrap();
                items
                    .into_iter()
                    .map(|s| s.item.body["at"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(read(None, None).await, [times[2], times[1], times[0]]);
        assert_eq!(read(Some(times[1]), Some(times[1])).await, [times[1]], "both ends included");
        assert_eq!(read(Some(times[1]), None).await, [times[2], times[1]]);
        assert!(read(None, Some("2025-12-31T00:00:00Z")).await.is_empty());
    }
}
