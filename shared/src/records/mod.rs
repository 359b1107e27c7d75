//! The records layer: each kind of item the table holds, as a typed record
//! with its key, encoding and decoding in one place, the key scheme
//! ([`keys`]) and the one way to walk a partition's pages ([`pages`]).

use futures::Stream;
use serde::de::DeserializeOwned;

use crate::store::{ItemQuery, Query, StoreError, StoreResult, Stored};

pub mod account;
pub mod cluster_snapshot;
pub mod cluster_status;
pub mod code;
pub mod fleet_config;
pub mod history_event;
pub mod keys;
pub mod limit_window;
pub mod pod;
pub mod pod_event;
pub mod readiness;
pub mod refresh_claim;
pub mod session;
pub mod workload;

/// The record `stored` holds, or [`StoreError::Corrupt`] naming the item:
/// an item this code cannot read is the store's fault to report, never a
/// value to guess.
pub fn decode<T: DeserializeOwned>(stored: &Stored) -> StoreResult<T> {
    T::deserialize(&stored.item.body).map_err(|e| StoreError::corrupt(&stored.item.key, e))
}

/// Every page `query` matches, in key order, one query at a time as the
/// stream is read: the one way to walk a partition (stop reading to stop
/// querying).
pub fn pages<S: ItemQuery + ?Sized>(
    store: &S,
    query: Query,
) -> impl Stream<Item = StoreResult<Vec<Stored>>> + Send + '_ {
    futures::stream::try_unfold(Some(query), move |query| async move {
        let Some(query) = query else { return Ok(None) };
        let page = store.query(query.clone()).await?;
        let next = page.next.map(|cursor| query.after(Some(cursor)));
        Ok(Some((page.items, next)))
    })
}
