//! Storing a cluster's snapshot: a lease on the cluster's status item so
//! two snapshots of one cluster never interleave ([`lease`]); only what
//! changed since the last one, a history event per change, TTLs renewed
//! only when half spent ([`writer`]); and the history a failed run left
//! behind, picked up by the next ([`repair`]).

pub mod lease;
mod repair;
pub mod writer;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;
use shared::store::StoreError;

use crate::error::{CollectError, FailureKind};

fn store_failure(err: StoreError) -> CollectError {
    CollectError::new(FailureKind::Store, "the snapshot store failed").with_source(err)
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    now.saturating_add(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX)).unwrap_or(now)
}

fn to_body<T: Serialize>(value: &T) -> Result<Value, CollectError> {
    serde_json::to_value(value).map_err(|e| {
        CollectError::new(FailureKind::Store, "could not encode an item").with_source(e)
    })
}
