//! A session (`SESSION#<token digest>` / `SESSION`): found by the SHA-256
//! of its token, expiring at the earlier of its absolute and idle expiry.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::domain::Email;
use crate::store::{
    Condition, Item, ItemDelete, ItemGet, ItemKey, ItemPut, StoreError, StoreResult,
};

/// A stored session: found by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub email: Email,
    pub created_at: Timestamp,
    pub absolute_expiry: Timestamp,
    pub idle_expiry: Timestamp,
}

impl Session {
    pub fn new(email: Email, now: Timestamp, lifetimes: SessionLifetimes) -> Self {
        Self {
            email,
            created_at: now,
            absolute_expiry: add(now, lifetimes.absolute),
            idle_expiry: add(now, lifetimes.idle).min(add(now, lifetimes.absolute)),
        }
    }

    /// The earlier of the two expiries: the item's TTL.
    pub fn expires_at(&self) -> Timestamp {
        self.absolute_expiry.min(self.idle_expiry)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    pub absolute: Duration,
    pub idle: Duration,
}

impl Default for SessionLifetimes {
    fn default() -> Self {
        Self { absolute: Duration::from_secs(12 * 3600), idle: Duration::from_secs(30 * 60) }
    }
}

pub(crate) fn add(at: Timestamp, by: Duration) -> Timestamp {
    at.saturating_add(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX)).unwrap_or(at)
}

/// Where a session is kept.
pub fn key(token_digest: &str) -> ItemKey {
    ItemKey::new(format!("SESSION#{token_digest}"), "SESSION")
}

/// A session and its stored version, if the digest has one.
pub async fn read<S: ItemGet + ?Sized>(
    store: &S,
    token_digest: &str,
) -> StoreResult<Option<(Session, u64)>> {
    let Some(stored) = store.get(&key(token_digest)).await? else { return Ok(None) };
    Ok(Some((super::decode(&stored)?, stored.version)))
}

/// Writes `session` again if it is still the stored `version` (a logout
/// that deleted it meanwhile wins): false when it was not.
pub async fn rewrite<S: ItemPut + ?Sized>(
    store: &S,
    token_digest: &str,
    session: &Session,
    version: u64,
) -> StoreResult<bool> {
    let body = serde_json::to_value(session).map_err(StoreError::Encoding)?;
    let item = Item::new(key(token_digest), body).expiring_at(session.expires_at());
    match store.put(item, Condition::IfVersion(version)).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Stores a new session under its token's digest.
pub async fn create(
    store: &dyn ItemPut,
    token_digest: &str,
    session: &Session,
) -> Result<(), StoreError> {
    let body = serde_json::to_value(session).map_err(StoreError::Encoding)?;
    let item = Item::new(key(token_digest), body).expiring_at(session.expires_at());
    store.put(item, Condition::IfAbsent).await?;
    Ok(())
}

/// Ends a session (logout).
pub async fn delete(store: &dyn ItemDelete, token_digest: &str) -> Result<(), StoreError> {
    store.delete(&key(token_digest), Condition::Always).await?;
    Ok(())
}
