//! Reading change events: a page of history, newest first, from the
//! service partition or from the environment partitions (merged by time),
//! and every event of an environment after a time, for rebuilding the past.

use std::pin::pin;

use base64::Engine as _;
use futures::StreamExt;
use futures::future::try_join_all;
use jiff::Timestamp;
use shared::auth::Principal;
use shared::config::FleetConfig;
use shared::http::ApiError;
use shared::model::HistoryEvent;
use shared::paging::{Paged, Paging};
use shared::records;
use shared::records::history_event::{self, Position, Stream, Upper};
use shared::store::{ItemQuery, Query};

/// A rebuild of the past reads at most this many events per column.
pub const MAX_REWIND_EVENTS: usize = 20_000;

/// Which events a page holds.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub service: Option<String>,
    pub environment: Option<String>,
    pub cluster: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only these environments (a dashboard's columns); empty: any.
    pub within: Vec<String>,
}

fn cursor_for(position: &Position) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("before:{}", position.as_str()))
}

fn cursor_position(cursor: &str) -> Result<Position, ApiError> {
    let bad = || ApiError::invalid_parameter("cursor", "not a cursor this list gave out");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("before:").and_then(Position::parse).ok_or_else(bad)
}

/// Whether `principal` may see events of `environment`: as configured, and
/// only admins for environments no longer configured.
pub fn may_see(fleet: &FleetConfig, principal: &Principal, environment: &str) -> bool {
    match fleet.environment(environment) {
        Some(e) => principal.can_see(e),
        None => principal.is_admin(),
    }
}

/// The streams a filter reads: the service's in each environment the
/// caller may see, else those environments'. Names the caller may not see
/// are 404s.
fn streams<'a>(
    fleet: &'a FleetConfig,
    principal: &Principal,
    filter: &'a Filter,
) -> Result<Vec<Stream<'a>>, ApiError> {
    if let Some(environment) = &filter.environment
        && !fleet.environment(environment).is_some_and(|e| principal.can_see(e))
    {
        return Err(ApiError::not_found("environment"));
    }
    let cluster_environment = match &filter.cluster {
        Some(cluster) => match fleet.cluster(cluster) {
            Some((e, _)) if principal.can_see(e) => Some(e.name.as_str()),
            _ => return Err(ApiError::not_found("cluster")),
        },
        None => None,
    };
    let environments: Vec<&str> = match (filter.environment.as_deref(), cluster_environment) {
        (Some(e), _) | (None, Some(e)) => vec![e],
        (None, None) => fleet
            .environments
            .iter()
            .filter(|e| principal.can_see(e))
            .map(|e| e.name.as_str())
            .filter(|e| filter.within.is_empty() || filter.within.iter().any(|w| w == e))
            .collect(),
    };
    Ok(match &filter.service {
        // Only the environments the caller may see are read at all.
        Some(service) => environments
            .into_iter()
            .map(|environment| Stream::Service { service, environment })
            .collect(),
        None => environments.into_iter().map(Stream::Environment).collect(),
    })
}

/// One page of events, newest first. Each partition is read from the same
/// upper bound and the results merged by key, so one cursor (the key of the
/// last event given out) serves any number of partitions.
pub async fn page<S: ItemQuery + ?Sized>(
    store: &S,
    fleet: &FleetConfig,
    principal: &Principal,
    filter: &Filter,
    paging: &Paging,
) -> Result<Paged<HistoryEvent>, ApiError> {
    let streams = streams(fleet, principal, filter)?;
    let before = paging.cursor.as_deref().map(cursor_position).transpose()?;
    let upper = match (&before, filter.until) {
        (Some(position), _) => Upper::Before(position.clone()),
        (None, Some(until)) => Upper::Until(until),
        (None, None) => Upper::Open,
    };
    let want = paging.limit as usize + 1;
    let keep = |event: &HistoryEvent| {
        may_see(fleet, principal, event.environment.as_str())
            && filter.environment.as_deref().is_none_or(|e| event.environment.as_str() == e)
            && filter.cluster.as_deref().is_none_or(|c| event.cluster.as_str() == c)
            && (filter.within.is_empty()
                || filter.within.iter().any(|e| e == event.environment.as_str()))
    };
    let windows: Option<Vec<Query>> = streams
        .into_iter()
        .map(|stream| history_event::window(stream, filter.since, &upper))
        .collect();
    let Some(windows) = windows else {
        return Ok(Paged { items: Vec::new(), next: None });
    };
    let reads = windows.into_iter().map(|window| {
        let before = before.clone();
        async move {
            let mut found: Vec<(Position, HistoryEvent)> = Vec::new();
            let mut pages = pin!(records::pages(store, window.limit(250)));
            while let Some(page) = pages.next().await {
                for stored in page? {
                    let (position, event) = history_event::read(stored)?;
                    if before.as_ref() != Some(&position) && keep(&event) {
                        found.push((position, event));
                    }
                }
                if found.len() >= want {
                    break;
                }
            }
            Ok::<_, ApiError>(found)
        }
    });
    let mut events: Vec<(Position, HistoryEvent)> =
        try_join_all(reads).await?.into_iter().flatten().collect();
    events.sort_by(|a, b| b.0.cmp(&a.0));
    let more = events.len() > paging.limit as usize;
    events.truncate(paging.limit as usize);
    let next = more.then(|| events.last().map(|(position, _)| cursor_for(position))).flatten();
    Ok(Paged { items: events.into_iter().map(|(_, e)| e).collect(), next })
}

/// Every event of `environment` after `at`, newest first; a 400 naming
/// `parameter` when there are more than a rebuild reads.
pub async fn since<S: ItemQuery + ?Sized>(
    store: &S,
    environment: &str,
    at: Timestamp,
    parameter: &str,
) -> Result<Vec<HistoryEvent>, ApiError> {
    let mut events = Vec::new();
    let query = history_event::after(Stream::Environment(environment), at).limit(1000);
    let mut pages = pin!(records::pages(store, query));
    while let Some(page) = pages.next().await {
        for stored in page? {
            events.push(history_event::read(stored)?.1);
        }
        if events.len() > MAX_REWIND_EVENTS {
            return Err(ApiError::invalid_parameter(
                parameter,
                format!(
                    "more than {MAX_REWIND_EVENTS} changes since then in {environment}; pick a later time"
                ),
            ));
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_a_400() {
        let sk = "2026-11-23T10:00:00.000000Z#c#ns#Deployment#x";
        let position = Position::parse(sk).unwrap();
        assert_eq!(cursor_position(&cursor_for(&position)).unwrap(), position);
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        for bad in [
            "not base64!".to_owned(),
            encode("after:2026-11-23T10:00:00.000000Z#c"),
            encode("before:yesterday"),
            // A multi-byte character across the time's end must not panic.
            encode(&format!("before:{}", "é".repeat(20))),
        ] {
            let err = cursor_position(&bad).unwrap_err();
            assert!(err.to_string().starts_with("cursor:"), "{bad}: {err}");
        }
    }
}
