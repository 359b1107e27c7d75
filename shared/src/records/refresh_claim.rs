//! A cluster's refresh claim (`REFRESH#<cluster>` / `REFRESH`): at most
//! one refresh per window, the window starting at the claim.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::records::limit_window::Admission;
use crate::store::{Condition, Item, ItemDelete, ItemGet, ItemKey, ItemPut, StoreError};

fn key(cluster: &str) -> ItemKey {
    ItemKey::new(format!("REFRESH#{cluster}"), "REFRESH")
}

/// Claims the cluster's refresh window: refused, saying when to come back,
/// when a refresh was started within the last [`REFRESH_WINDOW`]. The
/// window starts at the claim (not at a fixed boundary, as the limiter's
/// do), so two refreshes of a cluster are always a window apart.
pub async fn claim<S: ItemGet + ItemPut + ?Sized>(
    store: &S,
    cluster: &str,
    window: Duration,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    let until =
        now.saturating_add(SignedDuration::try_from(window).unwrap_or_default()).unwrap_or(now);
    let item = Item::new(key(cluster), json!({ "at": now })).expiring_at(until);
    match store.put(item, Condition::IfAbsent).await {
        Ok(_) => Ok(Admission::Admitted { count: 1 }),
        Err(StoreError::ConditionFailed) => {
            let until = store.get(&key(cluster)).await?.and_then(|s| s.item.expires_at);
            let wait = until.map_or(window, |u| {
                // Rounded up: the stored expiry has whole seconds only.
                let left = u.duration_since(now);
                let secs = left.as_secs() + i64::from(left.subsec_nanos() > 0);
                Duration::from_secs(secs.max(1) as u64)
            });
            Ok(Admission::Refused { retry_after: wait })
        }
        Err(other) => Err(other),
    }
}

/// Frees the cluster's refresh window (the snapshot could not be started).
pub async fn release<S: ItemDelete + ?Sized>(store: &S, cluster: &str) -> Result<(), StoreError> {
    store.delete(&key(cluster), Condition::Always).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);
    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn one_refresh_per_cluster_per_window() {
        let clock = Arc::new(ManualClock::new("2026-11-23T10:00:00Z".parse().unwrap()));
        let store = MemoryStore::new(clock.clone());
        let admitted = Admission::Admitted { count: 1 };
        assert_eq!(claim(&store, "a", WINDOW, clock.now()).await.unwrap(), admitted);
        assert_eq!(claim(&store, "b", WINDOW, clock.now()).await.unwrap(), admitted, "per cluster");
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            claim(&store, "a", WINDOW, clock.now()).await.unwrap(),
            Admission::Refused { retry_after: Duration::from_secs(20) }
        );
        clock.advance(Duration::from_secs(20));
        assert_eq!(
            claim(&store, "a", WINDOW, clock.now()).await.unwrap(),
            admitted,
            "a new window"
        );
    }
}
