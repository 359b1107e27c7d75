//! History repair: what a failed run recorded but never stored, read back
//! by the next run so that each workload's history stays whole.

use std::collections::HashMap;
use std::pin::pin;

use futures::StreamExt;
use jiff::Timestamp;

use shared::model::{Change, HistoryEvent};
use shared::records::history_event::{self, Stream};
use shared::records::{self, workload};
use shared::store::{Store, StoreError};

use super::lease::LeaseHeld;

/// The latest event per workload of this cluster written since its last
/// good snapshot: only a failed run leaves any, and what it says may be
/// newer than the stored items (events are written before items). Read
/// from the environment's history, from the last success (or from the
/// beginning, when every earlier attempt failed; nothing, on a first
/// attempt).
pub(super) async fn unfinished_events(
    store: &dyn Store,
    lease: &LeaseHeld,
) -> Result<HashMap<String, HistoryEvent>, StoreError> {
    let since = match (lease.status.last_success, lease.previous_attempt) {
        (Some(success), _) => success,
        (None, Some(_)) => Timestamp::UNIX_EPOCH,
        (None, None) => return Ok(HashMap::new()),
    };
    // After the last success: that run's own events are at its start,
    // never later than its end.
    let history = Stream::Environment(lease.environment.as_str());
    let query = history_event::after_until(history, since, lease.started);
    let mut recorded = HashMap::new();
    let mut pages = pin!(records::pages(store, query));
    while let Some(page) = pages.next().await {
        for stored in page? {
            let Ok(event) = records::decode::<HistoryEvent>(&stored) else { continue };
            if event.cluster == lease.cluster {
                let cluster = event.cluster.as_str();
                let key = workload::key(cluster, &event.namespace, event.kind, &event.name);
                // Oldest first: the last one per workload stays.
                recorded.insert(key.sk, event);
            }
        }
    }
    Ok(recorded)
}

/// The events that end the history of a workload gone from the cluster
/// whose last event a failed run wrote: that event again (same keys, in
/// case only one of its copies was written), then a removal after what it
/// recorded, unless it was a removal itself.
pub(super) fn closing(last: HistoryEvent, now: Timestamp) -> Vec<HistoryEvent> {
    if last.change == Change::Removed {
        return vec![last];
    }
    let removal = HistoryEvent {
        at: now,
        change: Change::Removed,
        from_version: last.to_version.clone(),
        to_version: None,
        from_images: last.to_images.clone(),
        to_images: Vec::new(),
        from_changed_at: Some(last.at),
        ..last.clone()
    };
    vec![last, removal]
}

#[cfg(test)]
mod tests {
    use shared::model::WorkloadKind;

    use super::*;

    fn changed_by_a_failed_run() -> HistoryEvent {
        HistoryEvent {
            at: "2026-12-01T10:00:00Z".parse().unwrap(),
            change: Change::Changed,
            service: "api".into(),
            environment: "stg".parse().unwrap(),
            cluster: "eks-stg".parse().unwrap(),
            namespace: "dab".into(),
            kind: WorkloadKind::Deployment,
            name: "api".into(),
            from_version: Some("1.0".into()),
            to_version: Some("1.1".into()),
            from_images: vec!["api:1.0".into()],
            to_images: vec!["api:1.1".into()],
            from_changed_at: Some("2026-11-20T10:00:00Z".parse().unwrap()),
            labels: Default::default(),
        }
    }

    #[test]
    fn a_change_a_failed_run_recorded_is_written_again_then_closed_by_a_removal() {
        let now: Timestamp = "2026-12-01T10:05:00Z".parse().unwrap();
        let last = changed_by_a_failed_run();
        let events = closing(last.clone(), now);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], last);
        let removal = &events[1];
        assert_eq!((removal.at, removal.change), (now, Change::Removed));
        assert_eq!(removal.from_version.as_deref(), Some("1.1"), "what the failed run saw");
        assert_eq!(removal.from_images, ["api:1.1"]);
        assert_eq!(removal.from_changed_at, Some(last.at), "deployed when the failed run saw it");
        assert!(removal.to_version.is_none() && removal.to_images.is_empty());
        assert_eq!((&removal.cluster, &removal.name), (&last.cluster, &last.name));
    }

    #[test]
    fn a_removal_a_failed_run_recorded_is_only_written_again() {
        let removed = HistoryEvent { change: Change::Removed, ..changed_by_a_failed_run() };
        assert_eq!(closing(removed.clone(), removed.at), vec![removed]);
    }
}
