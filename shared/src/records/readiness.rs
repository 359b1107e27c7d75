//! The readiness probe's item (`PROBE` / `READY`): never written; reading
//! it, found or not, proves the table answers with the function's
//! permissions.

use crate::store::{ItemGet, ItemKey, StoreResult};

fn key() -> ItemKey {
    ItemKey::new("PROBE", "READY")
}

/// One read of the probe item.
pub async fn probe<S: ItemGet + ?Sized>(store: &S) -> StoreResult<()> {
    store.get(&key()).await.map(|_| ())
}
