//! The records layer: each kind of item the table holds, as a typed record
//! with its key, encoding and decoding in one place. Callers speak records;
//! only this layer (and the key scheme in `model::keys`) knows partition
//! and sort keys.

use serde::de::DeserializeOwned;

use crate::store::{StoreError, StoreResult, Stored};

pub mod account;
pub mod cluster_status;
pub mod fleet_config;
pub mod keys;
pub mod limit_window;
pub mod readiness;
pub mod refresh_claim;
pub mod session;

/// The record `stored` holds, or [`StoreError::Corrupt`] naming the item:
/// an item this code cannot read is the store's fault to report, never a
/// value to guess.
pub fn decode<T: DeserializeOwned>(stored: &Stored) -> StoreResult<T> {
    T::deserialize(&stored.item.body).map_err(|e| StoreError::corrupt(&stored.item.key, e))
}
