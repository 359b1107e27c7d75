//! The change writer: stores a cluster's snapshot as it streams in,
//! writing only what changed, recording each change as history.

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::error::{CollectError, FailureKind};
use shared::domain::MAX_NAME_BYTES;
use shared::model::{
    Change, Counts, HistoryEvent, LoosePod, PodChange, PodEvent, PodRecord, SkippedObject,
    VersionSeen, Workload,
};
use shared::records::cluster_snapshot::SnapshotKeys;
use shared::records::{self, history_event};
use shared::store::{Item, ItemKey, MAX_ITEM_BYTES, Query, Store, StoreError, WriteOp};

use super::lease::{LeaseHeld, Written};
use super::repair;
use super::{later, store_failure, to_body};

/// The fingerprint field added to stored bodies.
const FINGERPRINT: &str = "fp";

/// What one stored snapshot cost and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteStats {
    pub workloads_written: u32,
    pub pods_written: u32,
    pub ttl_renewed: u32,
    pub deleted: u32,
    pub history_events: u32,
    /// Pod changes recorded (created, phase, node, restarts, deleted).
    pub pod_events: u32,
    /// Versions this cluster ran for the first time (or whose record was renewed).
    pub versions_recorded: u32,
    /// Every item put or deleted, status included.
    pub item_writes: u32,
}

/// Writes in batches as ops come, so that a large cluster's items are never
/// all held at once. A full batch is written by a task of its own while
/// the next one fills: the store's latency and its encoding of the items
/// overlap the reading of the cluster. One batch is in flight at a time,
/// so batches reach the store in the order their ops came (a history
/// event before its item).
struct Batch {
    store: Arc<dyn Store>,
    pending: Vec<WriteOp>,
    in_flight: Option<Flush>,
    written: u32,
}

impl Batch {
    const FLUSH_AT: usize = 500;

    fn new(store: Arc<dyn Store>) -> Self {
        Self { store, pending: Vec::with_capacity(Self::FLUSH_AT), in_flight: None, written: 0 }
    }

    async fn push(&mut self, op: WriteOp) -> Result<(), CollectError> {
        self.pending.push(op);
        if self.pending.len() >= Self::FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    /// Waits for the batch in flight, then sends what is pending.
    async fn flush(&mut self) -> Result<(), CollectError> {
        self.settle().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let ops = std::mem::replace(&mut self.pending, Vec::with_capacity(Self::FLUSH_AT));
        self.written += ops.len() as u32;
        let store = self.store.clone();
        let write = async move { store.batch_write(ops).await };
        self.in_flight = Some(Flush(tokio::spawn(write.instrument(tracing::Span::current()))));
        Ok(())
    }

    /// Waits for the batch in flight, if any: its failure is the run's.
    async fn settle(&mut self) -> Result<(), CollectError> {
        match self.in_flight.take() {
            Some(flush) => flush.wait().await,
            None => Ok(()),
        }
    }

    /// Flushes what is left, waits for it, and returns how many items were
    /// written.
    async fn finish(mut self) -> Result<u32, CollectError> {
        self.flush().await?;
        self.settle().await?;
        Ok(self.written)
    }
}

/// A batch being written. Dropping it (the snapshot timed out or failed)
/// stops the write, as dropping a write that is awaited would.
struct Flush(tokio::task::JoinHandle<Result<(), StoreError>>);

impl Flush {
    async fn wait(mut self) -> Result<(), CollectError> {
        match (&mut self.0).await {
            Ok(result) => result.map_err(store_failure),
            Err(err) => {
                Err(CollectError::new(FailureKind::Store, "a batch write failed").with_source(err))
            }
        }
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the previous snapshot stored for one key.
/// Kept small: a large cluster has tens of thousands of these.
struct Previous {
    fingerprint: u64,
    expires_at: Option<Timestamp>,
    /// Workloads only: what a history event needs.
    workload: Option<Box<PreviousWorkload>>,
    /// Pods only: what pod history compares.
    pod: Option<Box<PreviousPod>>,
}

/// A pod as the previous snapshot stored it, for its history. Phases and
/// nodes are shared by many pods: each is held once. What a deletion
/// needs besides is read back when it happens.
struct PreviousPod {
    phase: Arc<str>,
    node: Option<Arc<str>>,
    restarts: u32,
    restarts_noted_at: Option<Timestamp>,
}

/// The stored pod fields [`PreviousPod`] keeps.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPod {
    phase: String,
    #[serde(default)]
    node: Option<String>,
    restarts: u32,
    #[serde(default)]
    restarts_noted_at: Option<Timestamp>,
}

/// Holds each distinct string once.
#[derive(Default)]
struct Interned(HashSet<Arc<str>>);

impl Interned {
    fn get(&mut self, text: String) -> Arc<str> {
        if let Some(known) = self.0.get(text.as_str()) {
            return known.clone();
        }
        let text: Arc<str> = text.into();
        self.0.insert(text.clone());
        text
    }
}

/// Which records a partition holds, for what [`previous`] keeps of them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    Workloads,
    Pods,
    Other,
}

/// What a change of a workload is compared with. What a removal needs
/// besides is read back when it happens.
struct PreviousWorkload {
    version: String,
    images: Vec<String>,
    changed_at: Timestamp,
}

/// Reads a partition's fingerprints (and, for workloads, what history needs).
async fn previous(
    store: &dyn Store,
    query: Query,
    held: Held,
) -> Result<HashMap<String, Previous>, StoreError> {
    let mut found = HashMap::new();
    let mut interned = Interned::default();
    let mut pages = pin!(records::pages(store, query.limit(250)));
    while let Some(page) = pages.next().await {
        for stored in page? {
            let body = stored.item.body;
            // A missing or unreadable fingerprint (0) never matches: rewritten.
            let fingerprint = body
                .get(FINGERPRINT)
                .and_then(Value::as_str)
                .and_then(|f| u64::from_str_radix(f, 16).ok())
                .unwrap_or(0);
            let pod = match held {
                Held::Pods => StoredPod::deserialize(&body).ok().map(|p| {
                    Box::new(PreviousPod {
                        phase: interned.get(p.phase),
                        node: p.node.map(|n| interned.get(n)),
                        restarts: p.restarts,
                        restarts_noted_at: p.restarts_noted_at,
                    })
                }),
                _ => None,
            };
            let workload = if held == Held::Workloads {
                match serde_json::from_value::<Workload>(body) {
                    Ok(w) => Some(Box::new(PreviousWorkload {
                        images: w.image_list(),
                        version: w.version,
                        changed_at: w.changed_at,
                    })),
                    // A body this code cannot read is rewritten, not trusted.
                    Err(_) => None,
                }
            } else {
                None
            };
            found.insert(
                stored.item.key.sk,
                Previous { fingerprint, expires_at: stored.item.expires_at, workload, pod },
            );
        }
    }
    Ok(found)
}

/// The versions this cluster has run: sort key → when the record expires
/// and when the version was first seen.
async fn previous_seen(
    store: &dyn Store,
    query: Query,
) -> Result<HashMap<String, (Option<Timestamp>, Timestamp)>, StoreError> {
    let mut found = HashMap::new();
    let mut pages = pin!(records::pages(store, query.limit(1000)));
    while let Some(page) = pages.next().await {
        for stored in page? {
            // An unreadable record is rewritten as first seen now.
            if let Ok(seen) = records::decode::<VersionSeen>(&stored) {
                found.insert(stored.item.key.sk, (stored.item.expires_at, seen.first_seen));
            }
        }
    }
    Ok(found)
}

/// FNV-1a over the item's JSON: stable across runs and processes, and all
/// change detection needs (it is not a security boundary).
/// Hashes the record's JSON as the struct serialises it, as it is written:
/// neither a `Value` tree nor the JSON is built for items that turn out
/// unchanged.
fn fingerprint<T: Serialize>(record: &T) -> Result<u64, CollectError> {
    let mut hash = Fnv1a(0xcbf2_9ce4_8422_2325);
    serde_json::to_writer(&mut hash, record).map_err(|e| {
        CollectError::new(FailureKind::Store, "could not encode an item").with_source(e)
    })?;
    Ok(hash.0)
}

/// FNV-1a over the bytes written to it.
struct Fnv1a(u64);

impl std::io::Write for Fnv1a {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 =
            bytes.iter().fold(self.0, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether an unchanged item's TTL is less than half left.
fn needs_renewal(expires_at: Option<Timestamp>, now: Timestamp, ttl: Duration) -> bool {
    match expires_at {
        None => true,
        Some(at) => at.duration_since(now).as_secs_f64() < ttl.as_secs_f64() / 2.0,
    }
}

/// Stores a cluster's snapshot as it streams in: each pod and workload is
/// compared with the previous snapshot's fingerprint and written only if it
/// changed (or its TTL is half spent); changes become history events.
/// Removals are only known, and only applied, by [`SnapshotWriter::finish`],
/// after every list completed — a failed run never deletes anything.
pub struct SnapshotWriter<'a> {
    store: Arc<dyn Store>,
    lease: &'a LeaseHeld,
    now: Timestamp,
    snapshot_ttl: Duration,
    expires_at: Timestamp,
    history_expires: Timestamp,
    batch: Batch,
    keys: SnapshotKeys,
    previous_workloads: HashMap<String, Previous>,
    previous_pods: HashMap<String, Previous>,
    previous_loose: HashMap<String, Previous>,
    previous_seen: HashMap<String, (Option<Timestamp>, Timestamp)>,
    /// By workload key, the latest event failed runs wrote since the last
    /// good one: the workload's last recorded state.
    unfinished: HashMap<String, HistoryEvent>,
    history_ttl: Duration,
    /// Keys handed in so far (a list that starts over hands them in again),
    /// as keyed 64-bit hashes: a cluster's keys, held twice as strings,
    /// would be megabytes.
    seen_workloads: HashSet<u64>,
    seen_pods: HashSet<u64>,
    seen_keys: std::hash::RandomState,
    seen_versions: HashSet<String>,
    stats: WriteStats,
    counts: Counts,
    skipped: Vec<SkippedObject>,
}

/// A crash-looping pod's restarts are recorded at most once in this long.
pub const RESTART_BURST: Duration = Duration::from_secs(3600);

/// A status names at most this many skipped objects.
const MAX_SKIPPED_NAMED: usize = 50;

impl<'a> SnapshotWriter<'a> {
    /// Reads the previous snapshot's fingerprints. Call with the lease held.
    pub async fn start(
        store: Arc<dyn Store>,
        lease: &'a LeaseHeld,
        snapshot_ttl: Duration,
        history_ttl: Duration,
        now: Timestamp,
    ) -> Result<Self, CollectError> {
        let cluster = lease.cluster.as_str();
        let reads = store.as_ref();
        let keys = SnapshotKeys::of(cluster);
        let previous_workloads =
            previous(reads, keys.workloads(), Held::Workloads).await.map_err(store_failure)?;
        let previous_pods =
            previous(reads, keys.pods(), Held::Pods).await.map_err(store_failure)?;
        let previous_loose =
            previous(reads, keys.loose_pods(), Held::Other).await.map_err(store_failure)?;
        let previous_seen =
            previous_seen(reads, keys.seen_versions()).await.map_err(store_failure)?;
        let unfinished = repair::unfinished_events(reads, lease).await.map_err(store_failure)?;
        Ok(Self {
            batch: Batch::new(store.clone()),
            store,
            lease,
            now,
            snapshot_ttl,
            expires_at: later(now, snapshot_ttl),
            history_expires: later(now, history_ttl),
            keys,
            previous_workloads,
            previous_pods,
            previous_loose,
            previous_seen,
            unfinished,
            history_ttl,
            seen_workloads: HashSet::new(),
            seen_pods: HashSet::new(),
            seen_keys: std::hash::RandomState::new(),
            seen_versions: HashSet::new(),
            stats: WriteStats::default(),
            counts: Counts::default(),
            skipped: Vec::new(),
        })
    }

    /// The item stored under `key`, as a `T`: what a removal records, read
    /// back when it happens. `None` when it is gone or does not decode
    /// (nothing to record then).
    async fn stored<T: serde::de::DeserializeOwned>(
        &self,
        key: &ItemKey,
    ) -> Result<Option<T>, CollectError> {
        let found = self.store.get(key).await.map_err(store_failure)?;
        Ok(found.and_then(|stored| serde_json::from_value(stored.item.body).ok()))
    }

    /// Whether an unchanged item must be rewritten to renew its TTL.
    fn renew(&mut self, previous: &Previous) -> bool {
        let renew = needs_renewal(previous.expires_at, self.now, self.snapshot_ttl);
        self.stats.ttl_renewed += u32::from(renew);
        renew
    }

    pub async fn pod(&mut self, pod: &PodRecord) -> Result<(), CollectError> {
        let key = self.keys.pod(&pod.namespace, &pod.name);
        if !self.seen_pods.insert(std::hash::BuildHasher::hash_one(&self.seen_keys, &key.sk)) {
            return Ok(());
        }
        let before = self.previous_pods.get(&key.sk).and_then(|p| p.pod.as_deref());
        let (events, restarts_noted_at) = self.pod_changes(pod, before);
        let mut pod = std::borrow::Cow::Borrowed(pod);
        if restarts_noted_at.is_some() {
            pod.to_mut().restarts_noted_at = restarts_noted_at;
        }
        let pod = pod.as_ref();
        for event in events {
            self.pod_event(event).await?;
        }
        self.counts.pods += 1;
        match pod.phase.as_str() {
            "Running" => self.counts.running += 1,
            "Pending" => self.counts.pending += 1,
            "Failed" => self.counts.failed += 1,
            _ => {}
        }
        let fp = fingerprint(pod)?;
        let write = match self.previous_pods.remove(&key.sk) {
            None => true,
            Some(p) if p.fingerprint != fp => true,
            Some(p) => self.renew(&p),
        };
        if write {
            let mut body = to_body(pod)?;
            body[FINGERPRINT] = Value::String(format!("{fp:016x}"));
            let item = Item::new(key, body).expiring_at(self.expires_at);
            if item.size() > MAX_ITEM_BYTES {
                self.skip("Pod", &pod.namespace, &pod.name, item.size());
                return Ok(());
            }
            self.stats.pods_written += 1;
            self.batch.push(WriteOp::Put(item)).await?;
        }
        Ok(())
    }

    /// What changed about `pod` since the previous snapshot, and when its
    /// restarts were last recorded. A cluster's first good snapshot records
    /// nothing (its pod history begins there); a crash-looping pod records
    /// its restarts once per [`RESTART_BURST`].
    fn pod_changes(
        &self,
        pod: &PodRecord,
        before: Option<&PreviousPod>,
    ) -> (Vec<PodEvent>, Option<Timestamp>) {
        let event = |change, from: Option<String>, to: Option<String>| PodEvent {
            at: self.now,
            change,
            cluster: self.lease.cluster.clone(),
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            from,
            to,
        };
        let Some(before) = before else {
            let recorded = self.lease.status.last_success.is_some();
            let events =
                if recorded { vec![event(PodChange::Created, None, None)] } else { vec![] };
            return (events, None);
        };
        let mut events = Vec::new();
        if *before.phase != *pod.phase {
            events.push(event(
                PodChange::Phase,
                Some(before.phase.to_string()),
                Some(pod.phase.clone()),
            ));
        }
        if before.node.as_deref() != pod.node.as_deref() && pod.node.is_some() {
            let from = before.node.as_deref().map(str::to_owned);
            events.push(event(PodChange::Node, from, pod.node.clone()));
        }
        let mut noted = before.restarts_noted_at;
        if pod.restarts > before.restarts {
            let burst = SignedDuration::try_from(RESTART_BURST).unwrap_or_default();
            let quiet = noted.is_none_or(|at| self.now.duration_since(at) >= burst);
            if quiet {
                let (from, to) = (before.restarts.to_string(), pod.restarts.to_string());
                events.push(event(PodChange::Restarts, Some(from), Some(to)));
                noted = Some(self.now);
            }
        }
        (events, noted)
    }

    async fn pod_event(&mut self, event: PodEvent) -> Result<(), CollectError> {
        let item = Item::new(records::pod_event::key(&event), to_body(&event)?)
            .expiring_at(self.history_expires);
        self.stats.pod_events += 1;
        self.batch.push(WriteOp::Put(item)).await
    }

    /// Keeps what a pod no workload owns runs, beside the workloads (only
    /// when it changed, or to renew its TTL).
    pub async fn loose_pod(&mut self, pod: &PodRecord) -> Result<(), CollectError> {
        let loose = LoosePod {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            images: pod.images.clone(),
        };
        let key = self.keys.loose_pod(&loose.namespace, &loose.name);
        let fp = fingerprint(&loose)?;
        let write = match self.previous_loose.remove(&key.sk) {
            None => true,
            Some(p) if p.fingerprint != fp => true,
            Some(p) => self.renew(&p),
        };
        if write {
            let mut body = to_body(&loose)?;
            body[FINGERPRINT] = Value::String(format!("{fp:016x}"));
            let item = Item::new(key, body).expiring_at(self.expires_at);
            if item.size() <= MAX_ITEM_BYTES {
                self.batch.push(WriteOp::Put(item)).await?;
            }
        }
        Ok(())
    }

    /// Names an object that cannot be stored even trimmed; the rest of the
    /// snapshot goes on (a stored older copy, if any, stays).
    fn skip(&mut self, kind: &str, namespace: &str, name: &str, size: usize) {
        tracing::warn!(kind, size, "an object too large to store was skipped");
        if self.skipped.len() < MAX_SKIPPED_NAMED {
            let cut = |text: &str| text.chars().take(MAX_NAME_BYTES).collect::<String>();
            self.skipped.push(SkippedObject {
                kind: kind.to_owned(),
                namespace: cut(namespace),
                name: cut(name),
                reason: format!(
                    "{size} bytes even trimmed, over the store's {MAX_ITEM_BYTES}-byte item limit"
                ),
            });
        }
    }

    pub async fn workload(&mut self, mut workload: Workload) -> Result<(), CollectError> {
        let key = self.keys.workload(&workload.namespace, workload.kind, &workload.name);
        if !self.seen_workloads.insert(std::hash::BuildHasher::hash_one(&self.seen_keys, &key.sk)) {
            return Ok(());
        }
        self.counts.workloads += 1;
        let prev = self.previous_workloads.remove(&key.sk);
        let prev_workload = prev.as_ref().and_then(|p| p.workload.as_ref());
        let unfinished = self.unfinished.remove(&key.sk);
        let images = workload.image_list();
        // The workload's last recorded state: an event a failed run wrote
        // is newer than the stored item it did not get to.
        let last: Option<(String, Vec<String>, Timestamp)> = match &unfinished {
            Some(e) if e.change == Change::Removed => None,
            Some(e) => Some((e.to_version.clone().unwrap_or_default(), e.to_images.clone(), e.at)),
            None => prev_workload.map(|p| (p.version.clone(), p.images.clone(), p.changed_at)),
        };
        let change = match &last {
            None if unfinished.is_some() || prev.is_none() => Some(Change::Added),
            None => None,
            Some((version, last_images, _))
                if *version != workload.version || *last_images != images =>
            {
                Some(Change::Changed)
            }
            Some((_, _, changed_at)) => {
                workload.changed_at = *changed_at;
                None
            }
        };
        if let (Some(Change::Changed), Some((_, _, changed_at))) = (change, &last)
            && workload.changed_at <= *changed_at
        {
            // No rollout time from Kubernetes (StatefulSet, DaemonSet): we saw it now.
            workload.changed_at = self.now;
        }
        let fp = fingerprint(&workload)?;
        let write = match &prev {
            None => true,
            Some(p) if p.fingerprint != fp => true,
            Some(p) => self.renew(p),
        };
        let item = if write {
            let mut body = to_body(&workload)?;
            body[FINGERPRINT] = Value::String(format!("{fp:016x}"));
            Some(Item::new(key, body).expiring_at(self.expires_at))
        } else {
            None
        };
        let event = change.map(|change| HistoryEvent {
            at: self.now,
            change,
            service: workload.service.clone(),
            environment: self.lease.environment.clone(),
            cluster: self.lease.cluster.clone(),
            namespace: workload.namespace.clone(),
            kind: workload.kind,
            name: workload.name.clone(),
            from_version: last.as_ref().map(|(version, _, _)| version.clone()),
            to_version: Some(workload.version.clone()),
            from_images: last.as_ref().map(|(_, images, _)| images.clone()).unwrap_or_default(),
            to_images: images,
            from_changed_at: last.as_ref().map(|(_, _, at)| *at),
            labels: workload.labels.clone(),
        });
        // The item and its event must each fit the store, or neither is
        // written (nor the version it runs): one object never stalls its
        // cluster.
        let event_size = match &event {
            Some(event) => {
                let [_, service_copy] = history_event::keys(event);
                Item::new(service_copy, to_body(event)?).size()
            }
            None => 0,
        };
        let largest = item.as_ref().map_or(0, Item::size).max(event_size);
        if largest > MAX_ITEM_BYTES {
            let kind = workload.kind.to_string();
            self.skip(&kind, &workload.namespace, &workload.name, largest);
            return Ok(());
        }
        if workload.version_source != shared::model::VersionSource::None {
            self.version_seen(&workload.service, &workload.version).await?;
        }
        if let Some(event) = unfinished {
            // Written again with the same keys, in case only one copy made it.
            self.history(event).await?;
        }
        if let Some(event) = event {
            self.history(event).await?;
        }
        // After its event: batches are written in order and a failed one
        // ends the run, so a stored change always has its event (and the
        // event of a change whose item was not stored is found next time).
        if let Some(item) = item {
            self.stats.workloads_written += 1;
            self.batch.push(WriteOp::Put(item)).await?;
        }
        Ok(())
    }

    /// Records that this cluster runs `version` of `service`: once, then
    /// again only when the record's TTL is half spent.
    async fn version_seen(&mut self, service: &str, version: &str) -> Result<(), CollectError> {
        let key = self.keys.seen(service, version);
        if !self.seen_versions.insert(key.sk.clone()) {
            return Ok(());
        }
        let first_seen = match self.previous_seen.get(&key.sk) {
            None => self.now,
            Some(&(expires_at, first_seen)) => {
                if !needs_renewal(expires_at, self.now, self.history_ttl) {
                    return Ok(());
                }
                first_seen
            }
        };
        let seen =
            VersionSeen { service: service.to_owned(), version: version.to_owned(), first_seen };
        let item = Item::new(key, to_body(&seen)?).expiring_at(self.history_expires);
        self.stats.versions_recorded += 1;
        self.batch.push(WriteOp::Put(item)).await
    }

    /// One copy per service and one per environment, for the two ways
    /// history is read.
    async fn history(&mut self, event: HistoryEvent) -> Result<(), CollectError> {
        let body = to_body(&event)?;
        // The environment's copy first: it is the one a later run reads to
        // find what a failed run recorded.
        for key in history_event::keys(&event) {
            let item = Item::new(key, body.clone()).expiring_at(self.history_expires);
            self.batch.push(WriteOp::Put(item)).await?;
        }
        self.stats.history_events += 1;
        Ok(())
    }

    /// Deletes what the previous snapshot had and this one did not, and
    /// flushes. Call only when every list completed.
    pub async fn finish(mut self) -> Result<(WriteStats, Written), CollectError> {
        for (sk, gone) in std::mem::take(&mut self.previous_pods) {
            self.stats.deleted += 1;
            let key = self.keys.in_pods(sk);
            if gone.pod.is_some()
                && let Some(pod) = self.stored::<PodRecord>(&key).await?
            {
                let event = PodEvent {
                    at: self.now,
                    change: PodChange::Deleted,
                    cluster: self.lease.cluster.clone(),
                    namespace: pod.namespace,
                    pod: pod.name,
                    from: Some(pod.phase),
                    to: None,
                };
                self.pod_event(event).await?;
            }
            self.batch.push(WriteOp::Delete(key)).await?;
        }
        for sk in std::mem::take(&mut self.previous_loose).into_keys() {
            self.stats.deleted += 1;
            self.batch.push(WriteOp::Delete(self.keys.in_cluster(sk))).await?;
        }
        for (sk, gone) in std::mem::take(&mut self.previous_workloads) {
            self.stats.deleted += 1;
            let unfinished = self.unfinished.remove(&sk);
            let key = self.keys.in_cluster(sk);
            if gone.workload.is_some()
                && let Some(stored) = self.stored::<Workload>(&key).await?
            {
                self.removed(&stored, unfinished).await?;
            }
            // After its event, as with changes.
            self.batch.push(WriteOp::Delete(key)).await?;
        }
        // A failed run recorded these, but their items were never stored,
        // and the cluster no longer runs them: close their history.
        for (_, event) in std::mem::take(&mut self.unfinished) {
            self.closed(event).await?;
        }
        // The status item is the one more write every run makes.
        self.stats.item_writes = self.batch.finish().await? + 1;
        Ok((self.stats, Written { counts: self.counts, skipped: self.skipped }))
    }
}

impl SnapshotWriter<'_> {
    /// The history of a stored workload the cluster no longer runs.
    async fn removed(
        &mut self,
        stored: &Workload,
        unfinished: Option<HistoryEvent>,
    ) -> Result<(), CollectError> {
        let last = match unfinished {
            Some(event) => return self.closed(event).await,
            None => stored,
        };
        let event = HistoryEvent {
            at: self.now,
            change: Change::Removed,
            service: last.service.clone(),
            environment: self.lease.environment.clone(),
            cluster: self.lease.cluster.clone(),
            namespace: last.namespace.clone(),
            kind: last.kind,
            name: last.name.clone(),
            from_version: Some(last.version.clone()),
            to_version: None,
            from_images: last.image_list(),
            to_images: Vec::new(),
            from_changed_at: Some(last.changed_at),
            labels: last.labels.clone(),
        };
        self.history(event).await
    }

    /// Ends the history of a workload gone from the cluster whose last
    /// event a failed run wrote ([`repair::closing`]).
    async fn closed(&mut self, last: HistoryEvent) -> Result<(), CollectError> {
        for event in repair::closing(last, self.now) {
            self.history(event).await?;
        }
        Ok(())
    }
}

impl crate::collect::SnapshotSink for SnapshotWriter<'_> {
    async fn pod(&mut self, pod: &PodRecord) -> Result<(), CollectError> {
        SnapshotWriter::pod(self, pod).await
    }

    async fn loose_pod(&mut self, pod: &PodRecord) -> Result<(), CollectError> {
        SnapshotWriter::loose_pod(self, pod).await
    }

    async fn workload(&mut self, workload: Workload) -> Result<(), CollectError> {
        SnapshotWriter::workload(self, workload).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored fingerprints were FNV-1a over the serialised record: hashing
    /// as it is written must give the same, or every item of every
    /// cluster would be rewritten once.
    #[test]
    fn a_fingerprint_is_fnv_1a_over_the_record_s_json() {
        let record =
            serde_json::json!({"name": "caf\u{e9}", "images": ["a:1", "b@sha256:00"], "n": 3});
        let json = serde_json::to_vec(&record).unwrap();
        let expected = json.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!(fingerprint(&record).unwrap(), expected);
        assert_ne!(fingerprint(&serde_json::json!({"n": 4})).unwrap(), expected);
    }
}
