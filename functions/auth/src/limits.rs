//! Fixed-window counters in the table: resends per address per minute and
//! per hour, failed logins per account per hour. Keyed by address, whether
//! or not an account exists, so a limit reveals nothing about accounts.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use shared::domain::Email;
use shared::store::{Condition, Item, ItemGet, ItemKey, ItemPut, StoreError};

/// A counter: at most `max` events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub max: u64,
    pub window: Duration,
}

pub const RESEND_PER_MINUTE: Limit =
    Limit { name: "resend-minute", max: 1, window: Duration::from_secs(60) };
pub const RESEND_PER_HOUR: Limit =
    Limit { name: "resend-hour", max: 5, window: Duration::from_secs(3600) };
pub const RESET_PER_MINUTE: Limit =
    Limit { name: "reset-minute", max: 1, window: Duration::from_secs(60) };
pub const RESET_PER_HOUR: Limit =
    Limit { name: "reset-hour", max: 5, window: Duration::from_secs(3600) };
/// Sign-in codes mailed (the second step); only a right password asks.
pub const SIGNIN_CODES_PER_HOUR: Limit =
    Limit { name: "signin-codes", max: 10, window: Duration::from_secs(3600) };
pub const LOGIN_FAILURES_PER_HOUR: Limit =
    Limit { name: "login-failures", max: 100, window: Duration::from_secs(3600) };

fn window(limit: Limit, now: Timestamp) -> (i64, Timestamp) {
    let size = limit.window.as_secs().max(1) as i64;
    let start = now.as_second().div_euclid(size) * size;
    let end = Timestamp::from_second(start + size).unwrap_or(now);
    (start, end)
}

fn key(limit: Limit, email: &Email, start: i64) -> ItemKey {
    ItemKey::new(format!("USER#{email}"), format!("LIMIT#{}#{start}", limit.name))
}

/// How many events the current window holds.
pub async fn count<S: ItemGet + ?Sized>(
    store: &S,
    limit: Limit,
    email: &Email,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let (start, _) = window(limit, now);
    let stored = store.get(&key(limit, email, start)).await?;
    Ok(stored.and_then(|s| s.item.body["count"].as_u64()).unwrap_or(0))
}

/// Records one event. `Err(retry_after)` when the window is already full
/// (nothing is recorded then).
pub async fn take<S>(
    store: &S,
    limit: Limit,
    email: &Email,
    now: Timestamp,
) -> Result<Result<u64, Duration>, StoreError>
where
    S: ItemGet + ItemPut + ?Sized,
{
    let (start, end) = window(limit, now);
    let key = key(limit, email, start);
    // Optimistic concurrency: a lost race reads again (bounded).
    for _ in 0..5 {
        let stored = store.get(&key).await?;
        let (count, condition) = match &stored {
            Some(s) => {
                (s.item.body["count"].as_u64().unwrap_or(0), Condition::IfVersion(s.version))
            }
            None => (0, Condition::IfAbsent),
        };
        if count >= limit.max {
            let wait = end.duration_since(now).as_secs().max(1) as u64;
            return Ok(Err(Duration::from_secs(wait)));
        }
        let item = Item::new(key.clone(), json!({ "count": count + 1 })).expiring_at(end);
        match store.put(item, condition).await {
            Ok(_) => return Ok(Ok(count + 1)),
            Err(StoreError::ConditionFailed) => continue,
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::ConditionFailed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shared::clock::{Clock, ManualClock};
    use shared::store::memory::MemoryStore;

    use super::*;

    #[tokio::test]
    async fn a_window_holds_at_most_max_events_then_says_when_to_retry() {
        let clock = Arc::new(ManualClock::new("2026-11-23T08:00:10Z".parse().unwrap()));
        let store = MemoryStore::new(clock.clone());
        let email = Email::parse("jane@example.com").unwrap();
        assert_eq!(take(&store, RESEND_PER_MINUTE, &email, clock.now()).await.unwrap(), Ok(1));
        assert_eq!(
            take(&store, RESEND_PER_MINUTE, &email, clock.now()).await.unwrap(),
            Err(Duration::from_secs(50))
        );
        clock.advance(Duration::from_secs(50));
        assert_eq!(
            take(&store, RESEND_PER_MINUTE, &email, clock.now()).await.unwrap(),
            Ok(1),
            "a new window"
        );
        let other = Email::parse("bob@example.com").unwrap();
        assert_eq!(
            take(&store, RESEND_PER_MINUTE, &other, clock.now()).await.unwrap(),
            Ok(1),
            "per address"
        );
        assert_eq!(count(&store, RESEND_PER_MINUTE, &email, clock.now()).await.unwrap(), 1);
    }
}
