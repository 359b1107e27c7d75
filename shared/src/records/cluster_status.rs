//! A cluster's status item: its last attempt and success, counts, errors
//! and the snapshot lease. Written by the snapshot, read by every reader.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::model::ClusterStatus;
use crate::records::keys;
use crate::store::{Condition, Item, ItemGet, ItemKey, ItemPut, StoreError, StoreResult};

/// Status items of clusters no longer refreshed age out after this.
pub const TTL: Duration = Duration::from_secs(30 * 86_400);

/// Where a cluster's status is kept.
pub fn key(cluster: &str) -> ItemKey {
    ItemKey::new(keys::cluster_pk(cluster), keys::STATUS_SK)
}

/// A cluster's status and its stored version, if it was ever snapshotted.
/// A status that does not decode is [`StoreError::Corrupt`].
pub async fn read<S: ItemGet + ?Sized>(
    store: &S,
    cluster: &str,
) -> StoreResult<Option<(ClusterStatus, u64)>> {
    let key = key(cluster);
    let Some(stored) = store.get(&key).await? else { return Ok(None) };
    let status =
        serde_json::from_value(stored.item.body).map_err(|e| StoreError::corrupt(&key, e))?;
    Ok(Some((status, stored.version)))
}

/// Writes `status` if `condition` holds, renewing its TTL from `now`, and
/// returns its new version.
pub async fn write<S: ItemPut + ?Sized>(
    store: &S,
    status: &ClusterStatus,
    condition: Condition,
    now: Timestamp,
) -> StoreResult<u64> {
    let body = serde_json::to_value(status).map_err(StoreError::Encoding)?;
    let ttl = SignedDuration::try_from(TTL).unwrap_or(SignedDuration::MAX);
    let expires_at = now.saturating_add(ttl).unwrap_or(now);
    let item = Item::new(key(status.cluster.as_str()), body).expiring_at(expires_at);
    store.put(item, condition).await
}
