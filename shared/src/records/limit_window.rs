//! Fixed-window limits in the table: the one limiter every bound uses
//! (mail per address and kind, mail per installation, password guesses).
//!
//! Each window of each limit is one counter ([`ItemCounter`]), taken in one
//! atomic step before the work it guards: however many requests race, no
//! more than `max` of them go ahead. Counters are keyed by address whether
//! or not an account exists, so a limit reveals nothing about accounts.

use std::time::Duration;

use jiff::Timestamp;

use crate::domain::Email;
use crate::store::{ItemCounter, ItemKey, StoreError};

/// A counter: at most `max` events per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub max: u64,
    pub window: Duration,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy)]
pub enum Counted<'a> {
    Address(&'a Email),
    /// An address, from one client (its source address).
    AddressFrom(&'a Email, &'a str),
    /// Every address together.
    Installation,
}

/// Whether an event fits in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; the window now holds `count` events.
    Admitted { count: u64 },
    /// The window is full; nothing was counted.
    Refused { retry_after: Duration },
}

fn window(limit: Limit, now: Timestamp) -> (i64, Timestamp) {
    let size = limit.window.as_secs().max(1) as i64;
    let start = now.as_second().div_euclid(size) * size;
    let end = Timestamp::from_second(start + size).unwrap_or(now);
    (start, end)
}

fn key(limit: Limit, counted: Counted<'_>, start: i64) -> ItemKey {
    match counted {
        Counted::Address(email) => {
            ItemKey::new(super::keys::user_pk(email), format!("LIMIT#{}#{start}", limit.name))
        }
        Counted::AddressFrom(email, client) => ItemKey::new(
            super::keys::user_pk(email),
            format!("LIMIT#{}#{start}#{}", limit.name, bounded(client)),
        ),
        Counted::Installation => ItemKey::new("LIMITS", format!("LIMIT#{}#{start}", limit.name)),
    }
}

/// A client's source address is short, but nothing from outside goes into
/// a key unbounded.
fn bounded(client: &str) -> &str {
    let mut end = client.len().min(64);
    while !client.is_char_boundary(end) {
        end -= 1;
    }
    &client[..end]
}

/// Counts one event, if the window has room.
pub async fn take<S: ItemCounter + ?Sized>(
    store: &S,
    limit: Limit,
    counted: Counted<'_>,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    let (start, end) = window(limit, now);
    match store.add_within(&key(limit, counted, start), 1, limit.max, end).await? {
        Some(count) => Ok(Admission::Admitted { count }),
        None => {
            let wait = end.duration_since(now).as_secs().max(1) as u64;
            Ok(Admission::Refused { retry_after: Duration::from_secs(wait) })
        }
    }
}

/// Counts one event in each of `limits`, stopping at the first that is
/// full (the ones before it keep their count: the attempt was made).
pub async fn take_all<S: ItemCounter + ?Sized>(
    store: &S,
    limits: &[Limit],
    counted: Counted<'_>,
    now: Timestamp,
) -> Result<Admission, StoreError> {
    let mut admitted = Admission::Admitted { count: 0 };
    for &limit in limits {
        admitted = take(store, limit, counted, now).await?;
        if matches!(admitted, Admission::Refused { .. }) {
            break;
        }
    }
    Ok(admitted)
}

/// Gives back an event counted by [`take`] in the same window: a guess
/// that turned out right is no failure.
pub async fn give_back<S: ItemCounter + ?Sized>(
    store: &S,
    limit: Limit,
    counted: Counted<'_>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (start, end) = window(limit, now);
    store.add_within(&key(limit, counted, start), -1, limit.max, end).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::clock::{Clock, ManualClock};
    use crate::store::memory::MemoryStore;

    use super::*;

    const ONE_A_MINUTE: Limit = Limit { name: "t", max: 1, window: Duration::from_secs(60) };

    #[tokio::test]
    async fn a_window_holds_at_most_max_events_then_says_when_to_retry() {
        let clock = Arc::new(ManualClock::new("2026-11-23T08:00:10Z".parse().unwrap()));
        let store = MemoryStore::new(clock.clone());
        let email = Email::parse("jane@example.com").unwrap();
        let jane = Counted::Address(&email);
        let take = |counted| take(&store, ONE_A_MINUTE, counted, clock.now());
        assert_eq!(take(jane).await.unwrap(), Admission::Admitted { count: 1 });
        assert_eq!(
            take(jane).await.unwrap(),
            Admission::Refused { retry_after: Duration::from_secs(50) }
        );
        let other = Email::parse("bob@example.com").unwrap();
        assert_eq!(take(Counted::Address(&other)).await.unwrap(), Admission::Admitted { count: 1 });
        assert_eq!(
            take(Counted::AddressFrom(&email, "192.0.2.1")).await.unwrap(),
            Admission::Admitted { count: 1 },
            "per client, apart from the address's own"
        );
        assert_eq!(take(Counted::Installation).await.unwrap(), Admission::Admitted { count: 1 });
        clock.advance(Duration::from_secs(50));
        assert_eq!(
            super::take(&store, ONE_A_MINUTE, jane, clock.now()).await.unwrap(),
            Admission::Admitted { count: 1 },
            "a new window"
        );
    }

    #[tokio::test]
    async fn a_given_back_event_frees_its_place() {
        let clock = Arc::new(ManualClock::new("2026-11-23T08:00:10Z".parse().unwrap()));
        let store = MemoryStore::new(clock.clone());
        let email = Email::parse("jane@example.com").unwrap();
        let jane = Counted::Address(&email);
        take(&store, ONE_A_MINUTE, jane, clock.now()).await.unwrap();
        give_back(&store, ONE_A_MINUTE, jane, clock.now()).await.unwrap();
        assert_eq!(
            take(&store, ONE_A_MINUTE, jane, clock.now()).await.unwrap(),
            Admission::Admitted { count: 1 }
        );
    }

    #[test]
    fn a_client_s_part_of_a_key_is_bounded() {
        let email = Email::parse("jane@example.com").unwrap();
        let long = "é".repeat(100);
        let key = key(ONE_A_MINUTE, Counted::AddressFrom(&email, &long), 0);
        assert!(key.sk.len() < 100, "{}", key.sk);
    }
}
