//! The cluster's lease: taken on its status item before a snapshot runs,
//! released with the outcome (success, or the failure and why).

use jiff::Timestamp;

use crate::error::{CollectError, FailureKind};
use shared::domain::{ClusterName, EnvironmentName};
use shared::model::{ClusterError, ClusterStatus, Counts, Lease, SkippedObject};
use shared::records::cluster_status;
use shared::store::{Condition, Store, StoreError};

use super::store_failure;

/// Status messages are for people; keep them short.
const MAX_MESSAGE: usize = 500;

/// The cluster's lease, held while its snapshot runs.
#[derive(Debug)]
pub struct LeaseHeld {
    pub(super) cluster: ClusterName,
    pub(super) environment: EnvironmentName,
    pub(super) status: ClusterStatus,
    version: u64,
    pub(super) started: Timestamp,
    /// The attempt before this one, if any: it may have failed half-way.
    pub(super) previous_attempt: Option<Timestamp>,
}

impl LeaseHeld {
    pub fn status(&self) -> &ClusterStatus {
        &self.status
    }
}

/// Reads a cluster's status, if any.
pub async fn read_status(
    store: &dyn Store,
    cluster: &str,
) -> Result<Option<(ClusterStatus, u64)>, CollectError> {
    cluster_status::read(store, cluster).await.map_err(|err| match err {
        StoreError::Corrupt { .. } => {
            CollectError::new(FailureKind::Store, "the cluster's status item is corrupt")
                .with_source(err)
        }
        err => store_failure(err),
    })
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
    let previous_attempt = status.last_attempt;
    status.last_attempt = Some(now);
    status.lease = Some(Lease { owner: owner.to_owned(), until });
    match cluster_status::write(store, &status, condition, now).await {
        Ok(version) => Ok(LeaseHeld {
            cluster: cluster.clone(),
            environment: environment.clone(),
            status,
            version,
            started: now,
            previous_attempt,
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
    cluster_status::write(store, &status, Condition::IfVersion(lease.version), now)
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

/// What a finished snapshot stored: its counts and what it left out.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub counts: Counts,
    pub skipped: Vec<SkippedObject>,
}

/// Records a successful snapshot on the status item and releases the lease.
pub async fn record_success(
    store: &dyn Store,
    lease: LeaseHeld,
    written: Written,
    kubernetes_version: Option<String>,
    now: Timestamp,
) -> Result<ClusterStatus, CollectError> {
    let mut status = lease.status;
    status.last_success = Some(now);
    status.counts = written.counts;
    status.skipped = written.skipped;
    status.kubernetes_version = kubernetes_version;
    status.duration_ms = Some(elapsed_ms(lease.started, now));
    status.generation += 1;
    status.lease = None;
    cluster_status::write(store, &status, Condition::IfVersion(lease.version), now)
        .await
        .map_err(lease_lost)?;
    Ok(status)
}
