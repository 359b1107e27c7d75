//! Storing a cluster's snapshot: only what changed since the last one, a
//! history event per change, TTLs renewed only when half spent, and a lease
//! on the cluster's status item so two snapshots of one cluster never
//! interleave.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use super::collect::{ClusterSnapshot, CollectError, FailureKind};
use crate::domain::{ClusterName, EnvironmentName};
use crate::model::{
    Change, ClusterError, ClusterStatus, Counts, HistoryEvent, Lease, Workload, keys,
};
use crate::store::{Condition, Item, ItemKey, Query, SortKeyRange, Store, StoreError, WriteOp};

/// How long history events are kept.
pub const DEFAULT_HISTORY_TTL: Duration = Duration::from_secs(90 * 86_400);
/// Status items of clusters no longer refreshed age out after this.
const STATUS_TTL: Duration = Duration::from_secs(30 * 86_400);
/// The fingerprint field added to stored bodies.
const FINGERPRINT: &str = "fp";
/// Status messages are for people; keep them short.
const MAX_MESSAGE: usize = 500;

/// What one stored snapshot cost and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteStats {
    pub workloads_written: u32,
    pub pods_written: u32,
    pub ttl_renewed: u32,
    pub deleted: u32,
    pub history_events: u32,
    /// Every item put or deleted, status included.
    pub item_writes: u32,
}

/// The cluster's lease, held while its snapshot runs.
#[derive(Debug)]
pub struct LeaseHeld {
    cluster: ClusterName,
    environment: EnvironmentName,
    status: ClusterStatus,
    version: u64,
    started: Timestamp,
}

impl LeaseHeld {
    pub fn status(&self) -> &ClusterStatus {
        &self.status
    }
}

fn store_failure(err: StoreError) -> CollectError {
    CollectError::new(FailureKind::Store, "the snapshot store failed").with_source(err)
}

fn status_key(cluster: &str) -> ItemKey {
    ItemKey::new(keys::cluster_pk(cluster), keys::STATUS_SK)
}

fn later(now: Timestamp, by: Duration) -> Timestamp {
    now.saturating_add(SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX)).unwrap_or(now)
}

fn to_body<T: Serialize>(value: &T) -> Result<Value, CollectError> {
    serde_json::to_value(value).map_err(|e| {
        CollectError::new(FailureKind::Store, "could not encode an item").with_source(e)
    })
}

/// Writes in batches as ops come, so that a large cluster's items are never
/// all held at once.
struct Batch<'a> {
    store: &'a dyn Store,
    pending: Vec<WriteOp>,
    written: u32,
}

impl<'a> Batch<'a> {
    const FLUSH_AT: usize = 500;

    fn new(store: &'a dyn Store) -> Self {
        Self { store, pending: Vec::with_capacity(Self::FLUSH_AT), written: 0 }
    }

    async fn push(&mut self, op: WriteOp) -> Result<(), CollectError> {
        self.pending.push(op);
        if self.pending.len() >= Self::FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), CollectError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let ops = std::mem::replace(&mut self.pending, Vec::with_capacity(Self::FLUSH_AT));
        self.written += ops.len() as u32;
        self.store.batch_write(ops).await.map_err(store_failure)
    }

    /// Flushes what is left and returns how many items were written.
    async fn finish(mut self) -> Result<u32, CollectError> {
        self.flush().await?;
        Ok(self.written)
    }
}

/// Reads a cluster's status, if any.
pub async fn read_status(
    store: &dyn Store,
    cluster: &str,
) -> Result<Option<(ClusterStatus, u64)>, CollectError> {
    let Some(stored) = store.get(&status_key(cluster)).await.map_err(store_failure)? else {
        return Ok(None);
    };
    let status: ClusterStatus = serde_json::from_value(stored.item.body).map_err(|e| {
        CollectError::new(FailureKind::Store, "the cluster's status item is corrupt").with_source(e)
    })?;
    Ok(Some((status, stored.version)))
}

async fn write_status(
    store: &dyn Store,
    status: &ClusterStatus,
    condition: Condition,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let body = serde_json::to_value(status).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    let item =
        Item::new(status_key(status.cluster.as_str()), body).expiring_at(later(now, STATUS_TTL));
    store.put(item, condition).await
}

/// Takes the cluster's lease until `until`, recording the attempt. Fails
/// with [`FailureKind::Busy`] while another run holds an unexpired lease,
/// or when another run takes it first.
pub async fn acquire_lease(
    store: &dyn Store,
    cluster: &ClusterName,
    environment: &EnvironmentName,
    owner: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<LeaseHeld, CollectError> {
    let (mut status, condition) = match read_status(store, cluster.as_str()).await? {
        Some((status, version)) => (status, Condition::IfVersion(version)),
        None => (ClusterStatus::new(cluster.clone(), environment.clone()), Condition::IfAbsent),
    };
    if let Some(lease) = &status.lease
        && lease.until > now
        && lease.owner != owner
    {
        return Err(CollectError::new(
            FailureKind::Busy,
            "another snapshot of this cluster is running",
        ));
    }
    status.environment = environment.clone();
    status.last_attempt = Some(now);
    status.lease = Some(Lease { owner: owner.to_owned(), until });
    match write_status(store, &status, condition, now).await {
        Ok(version) => Ok(LeaseHeld {
            cluster: cluster.clone(),
            environment: environment.clone(),
            status,
            version,
            started: now,
        }),
        Err(StoreError::ConditionFailed) => Err(CollectError::new(
            FailureKind::Busy,
            "another snapshot of this cluster started first",
        )),
        Err(err) => Err(store_failure(err)),
    }
}

/// Releases the lease after a failure, recording it. The last good
/// snapshot is left untouched.
pub async fn record_failure(
    store: &dyn Store,
    lease: LeaseHeld,
    error: &CollectError,
    now: Timestamp,
) -> Result<(), CollectError> {
    let mut status = lease.status;
    let mut message = error.message.clone();
    message.truncate(message.char_indices().nth(MAX_MESSAGE).map_or(message.len(), |(i, _)| i));
    status.last_error =
        Some(ClusterError { kind: error.kind.as_str().to_owned(), message, at: now });
    status.duration_ms = Some(elapsed_ms(lease.started, now));
    status.lease = None;
    write_status(store, &status, Condition::IfVersion(lease.version), now)
        .await
        .map_err(lease_lost)?;
    Ok(())
}

fn lease_lost(err: StoreError) -> CollectError {
    match err {
        StoreError::ConditionFailed => {
            CollectError::new(FailureKind::Busy, "the lease expired and another snapshot took over")
        }
        other => store_failure(other),
    }
}

fn elapsed_ms(from: Timestamp, to: Timestamp) -> u64 {
    to.duration_since(from).as_millis().max(0) as u64
}

/// What the previous snapshot stored for one key.
struct Previous {
    fingerprint: String,
    expires_at: Option<Timestamp>,
    /// Workloads only: what a history event needs.
    workload: Option<PreviousWorkload>,
}

struct PreviousWorkload {
    service: String,
    namespace: String,
    kind: crate::model::WorkloadKind,
    name: String,
    version: String,
    images: Vec<String>,
    changed_at: Timestamp,
}

/// Reads a partition's fingerprints (and, for workloads, what history needs).
async fn previous(
    store: &dyn Store,
    pk: String,
    range: SortKeyRange,
    workloads: bool,
) -> Result<HashMap<String, Previous>, StoreError> {
    let mut found = HashMap::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(Query::partition(pk.clone()).range(range.clone()).limit(1000).after(cursor))
            .await?;
        for stored in page.items {
            let body = stored.item.body;
            let fingerprint =
                body.get(FINGERPRINT).and_then(Value::as_str).unwrap_or_default().to_owned();
            let workload = if workloads {
                match serde_json::from_value::<Workload>(body) {
                    Ok(w) => Some(PreviousWorkload {
                        images: w.image_list(),
                        service: w.service,
                        namespace: w.namespace,
                        kind: w.kind,
                        name: w.name,
                        version: w.version,
                        changed_at: w.changed_at,
                    }),
                    // A body this code cannot read is rewritten, not trusted.
                    Err(_) => None,
                }
            } else {
                None
            };
            found.insert(
                stored.item.key.sk,
                Previous { fingerprint, expires_at: stored.item.expires_at, workload },
            );
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// FNV-1a over the item's JSON: stable across runs and processes, and all
/// change detection needs (it is not a security boundary).
fn fingerprint(body: &Value) -> String {
    fingerprint_bytes(&serde_json::to_vec(body).unwrap_or_default())
}

pub(crate) fn fingerprint_bytes(bytes: &[u8]) -> String {
    let hash = bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// Whether an unchanged item's TTL is less than half left.
fn needs_renewal(expires_at: Option<Timestamp>, now: Timestamp, ttl: Duration) -> bool {
    match expires_at {
        None => true,
        Some(at) => at.duration_since(now).as_secs_f64() < ttl.as_secs_f64() / 2.0,
    }
}

/// Stores what changed in `snapshot` for the lease's cluster, then records
/// the success and releases the lease. `now` is when the cluster was read.
/// On error the lease is still held: pass it to [`record_failure`].
pub async fn write_snapshot(
    store: &dyn Store,
    lease: &LeaseHeld,
    snapshot: &mut ClusterSnapshot,
    snapshot_ttl: Duration,
    history_ttl: Duration,
    now: Timestamp,
) -> Result<(WriteStats, Counts), CollectError> {
    let cluster = lease.cluster.as_str();
    let expires_at = later(now, snapshot_ttl);
    let history_expires = later(now, history_ttl);
    let mut stats = WriteStats::default();
    let mut ops = Batch::new(store);
    let mut events: Vec<HistoryEvent> = Vec::new();

    // Workloads.
    let workload_pk = keys::cluster_pk(cluster);
    let mut before = previous(
        store,
        workload_pk.clone(),
        SortKeyRange::Prefix(keys::WORKLOAD_PREFIX.into()),
        true,
    )
    .await
    .map_err(store_failure)?;
    let mut counts = Counts { workloads: snapshot.workloads.len() as u32, ..Counts::default() };
    // Drained, so that memory goes down as the store's goes up.
    for mut workload in snapshot.workloads.drain(..) {
        let sk = keys::workload_sk(&workload.namespace, workload.kind, &workload.name);
        let prev = before.remove(&sk);
        let prev_workload = prev.as_ref().and_then(|p| p.workload.as_ref());
        let images = workload.image_list();
        let change = match prev_workload {
            None if prev.is_none() => Some(Change::Added),
            None => None,
            Some(p) if p.version != workload.version || p.images != images => Some(Change::Changed),
            Some(p) => {
                workload.changed_at = p.changed_at;
                None
            }
        };
        if let (Some(Change::Changed), Some(p)) = (change, prev_workload)
            && workload.changed_at <= p.changed_at
        {
            // No rollout time from Kubernetes (StatefulSet, DaemonSet): we saw it now.
            workload.changed_at = now;
        }
        let mut body = to_body(&workload)?;
        let fp = fingerprint(&body);
        body[FINGERPRINT] = Value::String(fp.clone());
        let write = match &prev {
            None => true,
            Some(p) if p.fingerprint != fp => true,
            Some(p) => {
                let renew = needs_renewal(p.expires_at, now, snapshot_ttl);
                stats.ttl_renewed += u32::from(renew);
                renew
            }
        };
        if write {
            stats.workloads_written += 1;
            ops.push(WriteOp::Put(
                Item::new(ItemKey::new(workload_pk.clone(), sk), body).expiring_at(expires_at),
            ))
            .await?;
        }
        if let Some(change) = change {
            events.push(HistoryEvent {
                at: now,
                change,
                service: workload.service.clone(),
                environment: lease.environment.clone(),
                cluster: lease.cluster.clone(),
                namespace: workload.namespace.clone(),
                kind: workload.kind,
                name: workload.name.clone(),
                from_version: prev_workload.map(|p| p.version.clone()),
                to_version: Some(workload.version.clone()),
                from_images: prev_workload.map(|p| p.images.clone()).unwrap_or_default(),
                to_images: images,
            });
        }
    }
    for (sk, gone) in before {
        stats.deleted += 1;
        ops.push(WriteOp::Delete(ItemKey::new(workload_pk.clone(), sk))).await?;
        if let Some(p) = gone.workload {
            events.push(HistoryEvent {
                at: now,
                change: Change::Removed,
                service: p.service,
                environment: lease.environment.clone(),
                cluster: lease.cluster.clone(),
                namespace: p.namespace,
                kind: p.kind,
                name: p.name,
                from_version: Some(p.version),
                to_version: None,
                from_images: p.images,
                to_images: Vec::new(),
            });
        }
    }

    // Pods.
    let pods_pk = keys::pods_pk(cluster);
    let mut before =
        previous(store, pods_pk.clone(), SortKeyRange::All, false).await.map_err(store_failure)?;
    counts.pods = snapshot.pods.len() as u32;
    counts.running = snapshot.pod_phases.running;
    counts.pending = snapshot.pod_phases.pending;
    counts.failed = snapshot.pod_phases.failed;
    for pod in snapshot.pods.drain(..) {
        let sk = pod.sk;
        let write = match before.remove(&sk) {
            None => true,
            Some(p) if p.fingerprint != pod.fingerprint => true,
            Some(p) => {
                let renew = needs_renewal(p.expires_at, now, snapshot_ttl);
                stats.ttl_renewed += u32::from(renew);
                renew
            }
        };
        if write {
            stats.pods_written += 1;
            let mut body: Value = serde_json::from_str(&pod.body).map_err(|e| {
                CollectError::new(FailureKind::Store, "could not encode a pod").with_source(e)
            })?;
            body[FINGERPRINT] = Value::String(pod.fingerprint);
            ops.push(WriteOp::Put(
                Item::new(ItemKey::new(pods_pk.clone(), sk), body).expiring_at(expires_at),
            ))
            .await?;
        }
    }
    for sk in before.into_keys() {
        stats.deleted += 1;
        ops.push(WriteOp::Delete(ItemKey::new(pods_pk.clone(), sk))).await?;
    }

    // History: one copy per service and one per environment, for the two
    // ways it is read.
    for event in &events {
        let body = to_body(event)?;
        let sk = keys::history_sk(event.at, cluster, &event.namespace, event.kind, &event.name);
        for pk in [
            keys::service_history_pk(&event.service),
            keys::environment_history_pk(event.environment.as_str()),
        ] {
            ops.push(WriteOp::Put(
                Item::new(ItemKey::new(pk, sk.clone()), body.clone()).expiring_at(history_expires),
            ))
            .await?;
        }
    }
    stats.history_events = events.len() as u32;
    // The status item is the one more write every run makes.
    stats.item_writes = ops.finish().await? + 1;
    Ok((stats, counts))
}

/// Records a successful snapshot on the status item and releases the lease.
pub async fn record_success(
    store: &dyn Store,
    lease: LeaseHeld,
    counts: Counts,
    kubernetes_version: Option<String>,
    now: Timestamp,
) -> Result<ClusterStatus, CollectError> {
    let mut status = lease.status;
    status.last_success = Some(now);
    status.counts = counts;
    status.kubernetes_version = kubernetes_version;
    status.duration_ms = Some(elapsed_ms(lease.started, now));
    status.generation += 1;
    status.lease = None;
    write_status(store, &status, Condition::IfVersion(lease.version), now)
        .await
        .map_err(lease_lost)?;
    Ok(status)
}
