//! What ran at a past time, rebuilt from the current snapshot by undoing,
//! newest first, every change event recorded since. Pure: the handler reads
//! the events, this applies them.
//!
//! History keeps versions, images (with the digests the pod template pins),
//! labels and deployment times, not replica counts or pod state, so a
//! rebuilt workload shows what history knows and nothing else: no replicas,
//! no pods, not rolling. The current state is reduced the same way, so
//! that a matrix for a past time and one for now compare like with like.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use shared::model::{
    Change, ContainerImage, HistoryEvent, ImageRef, PodSummary, Replicas, VersionSource, Workload,
    WorkloadKind,
};

type Place = (String, WorkloadKind, String);

fn place(namespace: &str, kind: WorkloadKind, name: &str) -> Place {
    (namespace.to_owned(), kind, name.to_owned())
}

/// A workload reduced to what history records.
fn as_history_knows(workload: &Workload) -> Workload {
    Workload {
        replicas: Replicas::default(),
        pods: PodSummary::default(),
        rolling: false,
        ..workload.clone()
    }
}

/// The workload as it was before `event` (which must have a `from` side).
fn before(event: &HistoryEvent, version: &str) -> Workload {
    Workload {
        cluster: event.cluster.clone(),
        environment: event.environment.clone(),
        namespace: event.namespace.clone(),
        kind: event.kind,
        name: event.name.clone(),
        service: event.service.clone(),
        version: version.to_owned(),
        version_source: if version.is_empty() { VersionSource::None } else { VersionSource::Label },
        version_from: String::new(),
        labels: event.labels.clone(),
        images: event
            .from_images
            .iter()
            .map(|image| ContainerImage {
                container: String::new(),
                role: Default::default(),
                image: ImageRef::parse(image),
            })
            .collect(),
        replicas: Replicas::default(),
        pods: PodSummary::default(),
        rolling: false,
        created_at: None,
        // Events written before deployment times were recorded: the best
        // known bound is when this version was replaced.
        changed_at: event.from_changed_at.unwrap_or(event.at),
        omitted: Default::default(),
    }
}

/// One cluster's workloads, keyed by place.
#[derive(Debug, Clone, Default)]
pub struct ClusterState {
    workloads: BTreeMap<Place, Arc<Workload>>,
}

impl ClusterState {
    pub fn now(workloads: &[Arc<Workload>]) -> Self {
        Self {
            workloads: workloads
                .iter()
                .map(|w| (place(&w.namespace, w.kind, &w.name), Arc::new(as_history_knows(w))))
                .collect(),
        }
    }

    pub fn workloads(&self) -> impl Iterator<Item = &Arc<Workload>> {
        self.workloads.values()
    }

    /// Undoes one event of this cluster.
    fn undo(&mut self, event: &HistoryEvent) {
        let key = place(&event.namespace, event.kind, &event.name);
        match (event.change, event.from_version.as_deref()) {
            (Change::Added, _) => {
                self.workloads.remove(&key);
            }
            (Change::Changed | Change::Removed, Some(version)) => {
                self.workloads.insert(key, Arc::new(before(event, version)));
            }
            // A change without its `from` side cannot be undone: leave it.
            (Change::Changed | Change::Removed, None) => {}
        }
    }
}

/// One column's clusters, rewound together through their environment's
/// events.
#[derive(Debug, Clone)]
pub struct ColumnTimeline {
    clusters: Vec<(String, ClusterState)>,
    /// Newest first.
    events: Vec<HistoryEvent>,
    undone: usize,
}

impl ColumnTimeline {
    /// `events`: the column's environment's events after the earliest time
    /// that will be asked for, in any order.
    pub fn new(clusters: Vec<(String, ClusterState)>, mut events: Vec<HistoryEvent>) -> Self {
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        Self { clusters, events, undone: 0 }
    }

    /// Undoes every event after `at`. Times must not increase from one
    /// call to the next.
    pub fn rewind_to(&mut self, at: Timestamp) {
        while let Some(event) = self.events.get(self.undone).filter(|e| e.at > at) {
            if let Some((_, state)) =
                self.clusters.iter_mut().find(|(name, _)| name == event.cluster.as_str())
            {
                state.undo(event);
            }
            self.undone += 1;
        }
    }

    pub fn cluster(&self, index: usize) -> Option<&ClusterState> {
        self.clusters.get(index).map(|(_, state)| state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn workload(name: &str, version: &str, changed_at: &str) -> Arc<Workload> {
        Arc::new(Workload {
            cluster: "prod-a".parse().unwrap(),
            environment: "prod".parse().unwrap(),
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: name.into(),
            service: name.into(),
            version: version.into(),
            version_source: VersionSource::Label,
            version_from: String::new(),
            labels: BTreeMap::from([("team".into(), "shop".into())]),
            images: vec![ContainerImage {
                role: Default::default(),
                container: "app".into(),
                image: ImageRef::parse(&format!("registry.example/{name}:{version}")),
            }],
            replicas: Replicas { desired: 3, ready: 3, available: Some(3), updated: 3 },
            pods: PodSummary::default(),
            rolling: true,
            created_at: None,
            changed_at: at(changed_at),
            omitted: Default::default(),
        })
    }

    fn event(
        when: &str,
        change: Change,
        name: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> HistoryEvent {
        HistoryEvent {
            at: at(when),
            change,
            service: name.into(),
            environment: "prod".parse().unwrap(),
            cluster: "prod-a".parse().unwrap(),
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: name.into(),
            from_version: from.map(str::to_owned),
            to_version: to.map(str::to_owned),
            from_images: from
                .map(|v| vec![format!("registry.example/{name}:{v}")])
                .unwrap_or_default(),
            to_images: to.map(|v| vec![format!("registry.example/{name}:{v}")]).unwrap_or_default(),
            from_changed_at: from.map(|_| at("2026-11-01T00:00:00Z")),
            labels: BTreeMap::from([("team".into(), "shop".into())]),
        }
    }

    fn versions(timeline: &ColumnTimeline) -> Vec<(String, String)> {
        timeline
            .cluster(0)
            .unwrap()
            .workloads()
            .map(|w| (w.name.clone(), w.version.clone()))
            .collect()
    }

    #[test]
    fn undoing_events_newest_first_gives_each_earlier_state() {
        // Now: cart 1.3.0 (changed at 12:00), search added at 11:00; ledger
        // was removed at 10:30.
        let now = ClusterState::now(&[
            workload("cart", "1.3.0", "2026-11-20T12:00:00Z"),
            workload("search", "3.0.0", "2026-11-20T11:00:00Z"),
        ]);
        let events = vec![
            event("2026-11-20T10:30:00Z", Change::Removed, "ledger", Some("4.9.0"), None),
            event("2026-11-20T12:00:00Z", Change::Changed, "cart", Some("1.2.0"), Some("1.3.0")),
            event("2026-11-20T11:00:00Z", Change::Added, "search", None, Some("3.0.0")),
        ];
        let mut timeline = ColumnTimeline::new(vec![("prod-a".into(), now)], events);

        timeline.rewind_to(at("2026-11-20T12:00:00Z"));
        assert_eq!(
            versions(&timeline),
            [("cart".into(), "1.3.0".into()), ("search".into(), "3.0.0".into())]
        );
        let cart = timeline.cluster(0).unwrap().workloads().next().unwrap().clone();
        assert_eq!((cart.replicas.desired, cart.rolling), (0, false), "history keeps no replicas");

        timeline.rewind_to(at("2026-11-20T11:59:59Z"));
        assert_eq!(
            versions(&timeline),
            [("cart".into(), "1.2.0".into()), ("search".into(), "3.0.0".into())]
        );
        let cart = timeline.cluster(0).unwrap().workloads().next().unwrap().clone();
        assert_eq!(cart.changed_at, at("2026-11-01T00:00:00Z"), "when 1.2.0 was deployed");
        assert_eq!(cart.images[0].image.tag.as_deref(), Some("1.2.0"));
        assert_eq!(cart.labels["team"], "shop", "labels come back, so selectors still match");

        timeline.rewind_to(at("2026-11-20T10:00:00Z"));
        assert_eq!(
            versions(&timeline),
            [("cart".into(), "1.2.0".into()), ("ledger".into(), "4.9.0".into())]
        );
    }

    #[test]
    fn events_of_other_clusters_change_nothing_here() {
        let now = ClusterState::now(&[workload("cart", "1.3.0", "2026-11-20T12:00:00Z")]);
        let mut other = event("2026-11-20T12:00:00Z", Change::Added, "cart", None, Some("1.3.0"));
        other.cluster = "prod-b".parse().unwrap();
        let mut timeline = ColumnTimeline::new(vec![("prod-a".into(), now)], vec![other]);
        timeline.rewind_to(at("2026-11-20T00:00:00Z"));
        assert_eq!(versions(&timeline), [("cart".into(), "1.3.0".into())]);
    }
}
