//! Change events (`model::HistoryEvent`), each written twice: in its
//! environment's partition (every service) and in its service's partition
//! for that environment, keyed by time then place, so that a time window is
//! one range of keys and windows of several partitions merge by key.

use jiff::Timestamp;

use crate::model::HistoryEvent;
use crate::records::{self, keys};
use crate::store::{ItemKey, Query, SortKeyRange, StoreResult, Stored};

/// Above and below every event's key (they start with a year); DynamoDB
/// refuses an empty bound.
const AFTER_ALL: &str = "~";
const BEFORE_ALL: &str = "0";

/// A partition of events.
#[derive(Debug, Clone, Copy)]
pub enum Stream<'a> {
    /// Every service's events in one environment.
    Environment(&'a str),
    /// One service's events in one environment.
    Service { service: &'a str, environment: &'a str },
}

impl Stream<'_> {
    fn pk(self) -> String {
        match self {
            Self::Environment(environment) => keys::environment_history_pk(environment),
            Self::Service { service, environment } => {
                keys::service_history_pk(service, environment)
            }
        }
    }
}

/// An event's place in the order of every stream (newest last): what a
/// cursor holds, compared but never looked into outside this module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position(String);

impl Position {
    /// A position given out by [`Position::as_str`], or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        // No key is longer than a sort key may be, and every one starts
        // with its time.
        if text.len() > keys::MAX_SORT_KEY {
            return None;
        }
        let time = text.get(..27)?;
        time.parse::<Timestamp>().ok()?;
        Some(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The newer end of a window.
#[derive(Debug, Clone)]
pub enum Upper {
    /// Up to the newest event.
    Open,
    /// Every event at or before this time.
    Until(Timestamp),
    /// Events before this one, and this one (the reader skips it).
    Before(Position),
}

/// The sort-key bound just after every event at `at` (`~` sorts after
/// every place).
fn after_time(at: Timestamp) -> String {
    format!("{}#{AFTER_ALL}", keys::time_key(at))
}

/// The events of `stream` from `since` (included; open if `None`) up to
/// `upper`, newest first; `None` when the window is empty.
pub fn window(stream: Stream<'_>, since: Option<Timestamp>, upper: &Upper) -> Option<Query> {
    let lower = since.map_or_else(|| BEFORE_ALL.to_owned(), keys::time_key);
    let upper = match upper {
        Upper::Open => AFTER_ALL.to_owned(),
        Upper::Until(until) => after_time(*until),
        Upper::Before(position) => position.0.clone(),
    };
    (lower <= upper).then(|| {
        Query::partition(stream.pk()).range(SortKeyRange::Between(lower, upper)).descending()
    })
}

/// Every event of `stream` after `at` (excluded), newest first.
pub fn after(stream: Stream<'_>, at: Timestamp) -> Query {
    Query::partition(stream.pk())
        .range(SortKeyRange::Between(after_time(at), AFTER_ALL.to_owned()))
        .descending()
}

/// Where `event`'s two copies are kept: its environment's first (the one a
/// later run reads to find what a failed run recorded), then its service's.
pub fn keys(event: &HistoryEvent) -> [ItemKey; 2] {
    let sk = keys::history_sk(
        event.at,
        event.cluster.as_str(),
        &event.namespace,
        event.kind,
        &event.name,
    );
    let environment = event.environment.as_str();
    [
        ItemKey::new(keys::environment_history_pk(environment), sk.clone()),
        ItemKey::new(keys::service_history_pk(&event.service, environment), sk),
    ]
}

/// The events of `stream` after `after` up to `until` (included), oldest
/// first.
pub fn after_until(stream: Stream<'_>, after: Timestamp, until: Timestamp) -> Query {
    Query::partition(stream.pk()).range(SortKeyRange::Between(after_time(after), after_time(until)))
}

/// The event `stored` holds (from [`window`] or [`after`]) and its place.
pub fn read(stored: Stored) -> StoreResult<(Position, HistoryEvent)> {
    let event = records::decode(&stored)?;
    Ok((Position(stored.item.key.sk), event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WorkloadKind;

    #[test]
    fn positions_are_keys_that_start_with_a_time() {
        let at: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let key = keys::history_sk(at, "c", "ns", WorkloadKind::Deployment, "x");
        assert_eq!(Position::parse(&key).map(|p| p.0), Some(key.clone()));
        let too_long = format!("{key}{}", "x".repeat(keys::MAX_SORT_KEY));
        for bad in ["yesterday", "", &"é".repeat(20), "2026-11-23T10:00:00Z", &too_long] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_window_that_ends_before_it_starts_is_empty() {
        let (early, late): (Timestamp, Timestamp) =
            ("2026-01-01T00:00:00Z".parse().unwrap(), "2026-02-01T00:00:00Z".parse().unwrap());
        let stream = Stream::Environment("prod");
        assert!(window(stream, Some(late), &Upper::Until(early)).is_none());
        assert!(window(stream, Some(early), &Upper::Until(early)).is_some(), "one instant");
        assert!(window(stream, None, &Upper::Open).is_some());
    }
}
