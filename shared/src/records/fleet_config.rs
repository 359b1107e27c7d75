//! The fleet configuration as changed at run time (`CONFIG` / `FLEET`): the
//! document in the configuration file's form, versioned so that concurrent
//! changes never overwrite each other. Validation is `FleetSource`'s.

use serde_json::Value;

use crate::store::{Condition, Item, ItemGet, ItemKey, ItemPut, StoreResult};

/// Where the configuration is kept.
pub fn key() -> ItemKey {
    ItemKey::new("CONFIG", "FLEET")
}

/// The stored document and its version, if the configuration was ever
/// changed at run time.
pub async fn read<S: ItemGet + ?Sized>(store: &S) -> StoreResult<Option<(Value, u64)>> {
    Ok(store.get(&key()).await?.map(|stored| (stored.item.body, stored.version)))
}

/// Stores `document` if `condition` holds; returns its new version.
pub async fn write<S: ItemPut + ?Sized>(
    store: &S,
    document: Value,
    condition: Condition,
) -> StoreResult<u64> {
    store.put(Item::new(key(), document), condition).await
}
