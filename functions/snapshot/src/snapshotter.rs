//! The snapshot: every cluster of an environment (or one cluster) read and
//! stored, concurrently with a bound, each cluster on its own — one failing
//! never stops the others nor erases its own last good snapshot.
//!
//! Per cluster: take the lease on its status item → connect (STS, EKS,
//! token; or the configured endpoint) → list and normalise → write what
//! changed → record success or failure and release the lease.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::access::ClusterConnector;
use crate::collect::{ListPolicy, collect_cluster};
use crate::error::{CollectError, FailureKind};
use crate::normalise::Place;
use crate::persist::lease::{self, LeaseHeld};
use crate::persist::writer::{SnapshotWriter, WriteStats};
use shared::clock::Clock;
use shared::config::{Cluster, Environment, FleetConfig};
use shared::domain::{ClusterName, EnvironmentName};
use shared::store::Store;

use shared::model::SnapshotRequest;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the request must name exactly one of environment or cluster")]
    AmbiguousTarget,
    #[error("no environment named {0} is configured")]
    UnknownEnvironment(EnvironmentName),
    #[error("no cluster named {0} is configured")]
    UnknownCluster(ClusterName),
    /// Every cluster failed: the invocation fails so that the schedule's
    /// retry and dead-letter queue see it.
    #[error("every cluster failed ({})", .0.summary())]
    AllFailed(SnapshotReport),
}

impl SnapshotError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AmbiguousTarget => "AmbiguousTarget",
            Self::UnknownEnvironment(_) => "UnknownEnvironment",
            Self::UnknownCluster(_) => "UnknownCluster",
            Self::AllFailed(_) => "AllClustersFailed",
        }
    }
}

/// The clusters a request names, with their environment.
pub fn resolve<'a>(
    fleet: &'a FleetConfig,
    request: &SnapshotRequest,
) -> Result<Vec<(&'a Environment, &'a Cluster)>, SnapshotError> {
    match (&request.environment, &request.cluster) {
        (None, None) if request.due => Ok(fleet
            .environments
            .iter()
            .flat_map(|environment| environment.clusters.iter().map(move |c| (environment, c)))
            .collect()),
        _ if request.due => Err(SnapshotError::AmbiguousTarget),
        (Some(name), None) => {
            let environment = fleet
                .environment(name.as_str())
                .ok_or_else(|| SnapshotError::UnknownEnvironment(name.clone()))?;
            Ok(environment.clusters.iter().map(|c| (environment, c)).collect())
        }
        (None, Some(name)) => {
            let found = fleet
                .cluster(name.as_str())
                .ok_or_else(|| SnapshotError::UnknownCluster(name.clone()))?;
            Ok(vec![found])
        }
        _ => Err(SnapshotError::AmbiguousTarget),
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SnapshotOptions {
    /// Clusters read at once.
    pub concurrency: usize,
    pub list: ListPolicy,
    /// Connecting and reading one cluster, all calls together.
    pub cluster_timeout: Duration,
    /// How long a run holds a cluster's lease: longer than any run can last
    /// (on Lambda, the function's timeout), so a crashed run's lease expires.
    pub lease_for: Duration,
    pub history_ttl: Duration,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            list: ListPolicy::default(),
            cluster_timeout: Duration::from_secs(60),
            lease_for: Duration::from_secs(300),
            history_ttl: shared::settings::DEFAULT_HISTORY_TTL,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OutcomeStatus {
    Ok,
    Failed,
    /// Another run holds the cluster's lease; nothing was done.
    Skipped,
}

/// How one cluster went.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterOutcome {
    pub cluster: ClusterName,
    pub environment: EnvironmentName,
    pub status: OutcomeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes: Option<WriteStats>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotReport {
    pub outcomes: Vec<ClusterOutcome>,
}

impl SnapshotReport {
    pub fn count(&self, status: OutcomeStatus) -> usize {
        self.outcomes.iter().filter(|o| o.status == status).count()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} ok, {} failed, {} skipped",
            self.count(OutcomeStatus::Ok),
            self.count(OutcomeStatus::Failed),
            self.count(OutcomeStatus::Skipped)
        )
    }
}

/// Runs snapshots; built once per process and reused across invocations.
pub struct Snapshotter {
    store: Arc<dyn Store>,
    connector: Arc<dyn ClusterConnector>,
    clock: Arc<dyn Clock>,
    options: SnapshotOptions,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Snapshotter {
    pub fn new(
        store: Arc<dyn Store>,
        connector: Arc<dyn ClusterConnector>,
        clock: Arc<dyn Clock>,
        options: SnapshotOptions,
    ) -> Self {
        Self { store, connector, clock, options }
    }

    /// Snapshots what `request` names. Fails only when the request is bad
    /// or every cluster failed; per-cluster outcomes are in the report.
    pub async fn run(
        &self,
        fleet: &FleetConfig,
        request: &SnapshotRequest,
    ) -> Result<SnapshotReport, SnapshotError> {
        let mut targets = resolve(fleet, request)?;
        if request.due {
            targets = self.due(targets).await;
        }
        let owner = run_id();
        // NB: a hand-rolled bounded pool rather than `buffer_unordered` over
        // a closure: with the closure rustc cannot prove the future Send for
        // every lifetime, and callers could not spawn `run`.
        let owner = owner.as_str();
        let mut targets = targets.into_iter();
        let mut running = futures::stream::FuturesUnordered::new();
        for (environment, cluster) in targets.by_ref().take(self.options.concurrency.max(1)) {
            running.push(self.snapshot_cluster(fleet, environment, cluster, owner));
        }
        let mut outcomes = Vec::new();
        while let Some(outcome) = running.next().await {
            outcomes.push(outcome);
            if let Some((environment, cluster)) = targets.next() {
                running.push(self.snapshot_cluster(fleet, environment, cluster, owner));
            }
        }
        outcomes.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        let report = SnapshotReport { outcomes };
        if !report.outcomes.is_empty()
            && report.count(OutcomeStatus::Failed) == report.outcomes.len()
        {
            return Err(SnapshotError::AllFailed(report));
        }
        Ok(report)
    }

    #[tracing::instrument(name = "snapshot", skip_all, fields(cluster = %cluster.name, environment = %environment.name))]
    async fn snapshot_cluster(
        &self,
        fleet: &FleetConfig,
        environment: &Environment,
        cluster: &Cluster,
        owner: &str,
    ) -> ClusterOutcome {
        let started = Instant::now();
        let store = self.store.as_ref();
        let now = self.clock.now();
        let lease_until = now
            .saturating_add(
                jiff::SignedDuration::try_from(self.options.lease_for)
                    .unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(now);
        let outcome = |status, error: Option<&CollectError>| ClusterOutcome {
            cluster: cluster.name.clone(),
            environment: environment.name.clone(),
            status,
            error_kind: error.map(|e| e.kind.as_str()),
            message: error.map(|e| e.message.clone()),
            workloads: None,
            pods: None,
            writes: None,
            duration_ms: started.elapsed().as_millis() as u64,
        };

        let lease = match lease::acquire_lease(
            store,
            &cluster.name,
            &environment.name,
            owner,
            now,
            lease_until,
        )
        .await
        {
            Ok(lease) => lease,
            Err(err) if err.kind == FailureKind::Busy => {
                tracing::info!(reason = %err.message, "snapshot skipped");
                return outcome(OutcomeStatus::Skipped, Some(&err));
            }
            Err(err) => {
                tracing::error!(error = %shared::telemetry::error_chain(&err), "snapshot failed before reading the cluster");
                return outcome(OutcomeStatus::Failed, Some(&err));
            }
        };

        let place = Place {
            cluster: cluster.name.clone(),
            environment: environment.name.clone(),
            now,
            version_rules: fleet.version_rules(environment),
            kubernetes_minor: None,
        };
        let read_and_write = async {
            let client = self.connector.connect(cluster).await?;
            let ttl = environment.snapshot_ttl;
            let mut writer = SnapshotWriter::start(
                self.store.clone(),
                &lease,
                ttl,
                self.options.history_ttl,
                now,
            )
            .await?;
            let version =
                collect_cluster(client, environment, &place, self.options.list, &mut writer)
                    .await?;
            let (stats, written) = writer.finish().await?;
            Ok::<_, CollectError>((stats, written, version))
        };
        let result = match tokio::time::timeout(self.options.cluster_timeout, read_and_write).await
        {
            Ok(result) => result,
            Err(_) => Err(CollectError::new(
                FailureKind::Timeout,
                format!(
                    "the snapshot took longer than {} s",
                    self.options.cluster_timeout.as_secs()
                ),
            )),
        };
        let finished = self.clock.now();
        let last_success = lease.status().last_success;
        let result = match result {
            Ok((stats, written, version)) => {
                let counts = written.counts;
                lease::record_success(store, lease, written, Some(version), finished)
                    .await
                    .map(|_| (stats, counts))
            }
            Err(err) => {
                if err.kind == FailureKind::Unauthorized {
                    // The next attempt mints a fresh token.
                    self.connector.invalidate(cluster.name.as_str());
                }
                Err(self.fail(lease, err, finished).await)
            }
        };
        let data_age = match &result {
            Ok(_) => Some(Duration::ZERO),
            Err(_) => last_success
                .map(|at| Duration::try_from(finished.duration_since(at)).unwrap_or_default()),
        };
        let measured = ClusterMeasure {
            cluster: cluster.name.as_str(),
            duration: started.elapsed(),
            workloads: result.as_ref().ok().map(|(_, counts)| counts.workloads),
            changes: result.as_ref().ok().map(|(stats, _)| stats.history_events),
            failure: result.as_ref().err().map(|e| e.kind.as_str()),
            data_age,
            refresh_interval: environment.refresh_interval,
        };
        measured.emit();
        match result {
            Ok((stats, counts)) => {
                tracing::info!(
                    workloads = counts.workloads,
                    pods = counts.pods,
                    writes = stats.item_writes,
                    changes = stats.history_events,
                    ms = started.elapsed().as_millis() as u64,
                    "snapshot stored"
                );
                ClusterOutcome {
                    workloads: Some(counts.workloads),
                    pods: Some(counts.pods),
                    writes: Some(stats),
                    ..outcome(OutcomeStatus::Ok, None)
                }
            }
            Err(err) => {
                tracing::warn!(kind = err.kind.as_str(), error = %shared::telemetry::error_chain(&err), "snapshot failed");
                outcome(OutcomeStatus::Failed, Some(&err))
            }
        }
    }

    /// Records the failure on the status item (keeping the last good
    /// snapshot) and returns the error to report.
    async fn fail(
        &self,
        lease: LeaseHeld,
        err: CollectError,
        now: jiff::Timestamp,
    ) -> CollectError {
        if let Err(status_err) = lease::record_failure(self.store.as_ref(), lease, &err, now).await
        {
            tracing::error!(error = %shared::telemetry::error_chain(&status_err), "could not record the failure");
        }
        err
    }
}

impl Snapshotter {
    /// The targets whose last attempt is at least their environment's
    /// refresh interval ago (less half a minute, the schedule's own
    /// jitter), or that were never attempted. A status that cannot be read
    /// counts as due: the run itself then records what is wrong.
    async fn due<'a>(
        &self,
        targets: Vec<(&'a Environment, &'a Cluster)>,
    ) -> Vec<(&'a Environment, &'a Cluster)> {
        let now = self.clock.now();
        let statuses = futures::future::join_all(
            targets.iter().map(|(_, c)| lease::read_status(self.store.as_ref(), c.name.as_str())),
        )
        .await;
        targets
            .into_iter()
            .zip(statuses)
            .filter(|((environment, _), status)| {
                let Ok(Some((status, _))) = status else {
                    return true;
                };
                let Some(last) = status.last_attempt else {
                    return true;
                };
                let interval = environment.refresh_interval.saturating_sub(SWEEP_JITTER);
                let elapsed = now.duration_since(last);
                elapsed >= jiff::SignedDuration::try_from(interval).unwrap_or_default()
            })
            .map(|(target, _)| target)
            .collect()
    }
}

/// How early a due sweep may take a cluster: EventBridge fires a minute
/// schedule within seconds of the minute, not on it.
const SWEEP_JITTER: Duration = Duration::from_secs(30);

/// What one cluster's snapshot reports to CloudWatch (EMF): per cluster,
/// and rolled up without dimensions so that one alarm covers the fleet.
struct ClusterMeasure<'a> {
    cluster: &'a str,
    duration: Duration,
    workloads: Option<u32>,
    changes: Option<u32>,
    failure: Option<&'static str>,
    /// How old the cluster's last good data is now; `None`: never had any.
    data_age: Option<Duration>,
    refresh_interval: Duration,
}

impl ClusterMeasure<'_> {
    fn emit(&self) {
        use shared::metrics::{Record, Unit};
        // Never-succeeded clusters count as very old data: the alarm on
        // data older than three intervals must fire for them too.
        let intervals = match self.data_age {
            Some(age) => age.as_secs_f64() / self.refresh_interval.as_secs_f64().max(1.0),
            None => f64::from(u32::MAX),
        };
        let mut record = Record::new()
            .dimension("Cluster", self.cluster)
            .rollup()
            .value("SnapshotDuration", self.duration.as_secs_f64() * 1000.0, Unit::Milliseconds)
            .value("SnapshotFailures", f64::from(u8::from(self.failure.is_some())), Unit::Count)
            .value("DataAgeIntervals", intervals, Unit::None);
        if let Some(age) = self.data_age {
            record = record.value("DataAge", age.as_secs_f64(), Unit::Seconds);
        }
        if let (Some(workloads), Some(changes)) = (self.workloads, self.changes) {
            record = record.value("WorkloadsSeen", f64::from(workloads), Unit::Count).value(
                "ChangesWritten",
                f64::from(changes),
                Unit::Count,
            );
        }
        record.emit();
        if let Some(kind) = self.failure {
            Record::new()
                .dimension("FailureKind", kind)
                .value("SnapshotFailures", 1.0, Unit::Count)
                .emit();
        }
    }
}

/// A random id for one run, to own leases with. Uniqueness, not secrecy:
/// std's per-process random hasher keys are enough.
fn run_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("run-{:016x}", hasher.finish())
}

/// The local server's (and tests') [`SnapshotTrigger`]: runs the snapshot
/// in a task of this process, with the configuration in force.
pub struct InProcessTrigger {
    snapshotter: Arc<Snapshotter>,
    fleet: Arc<shared::fleet::FleetSource>,
    running: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl InProcessTrigger {
    pub fn new(snapshotter: Arc<Snapshotter>, fleet: Arc<shared::fleet::FleetSource>) -> Self {
        Self { snapshotter, fleet, running: std::sync::Mutex::default() }
    }

    /// Waits for every snapshot started so far.
    pub async fn settle(&self) {
        let running = std::mem::take(
            &mut *self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in running {
            let _ = task.await;
        }
    }
}

#[async_trait::async_trait]
impl shared::refresh::SnapshotTrigger for InProcessTrigger {
    async fn start(&self, request: SnapshotRequest) -> Result<(), shared::store::BoxError> {
        let fleet = self.fleet.current().await?;
        let snapshotter = self.snapshotter.clone();
        let task = tokio::spawn(async move {
            match snapshotter.run(&fleet, &request).await {
                Ok(report) => tracing::info!(summary = %report.summary(), "refresh finished"),
                Err(err) => tracing::warn!(error = %err, "refresh failed"),
            }
        });
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> FleetConfig {
        FleetConfig::parse(
            r#"
defaults: { region: eu-west-1 }
environments:
  - name: dab-platform-stg
    clusters: [{ name: eks-microservices-dab-stg }, { name: eks-corda-dab-stg }]
  - name: dab-platform-prod
    clusters: [{ name: eks-microservices-dab-prod }]
"#,
            "test",
        )
        .unwrap()
    }

    fn request(json: &str) -> SnapshotRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_environment_names_all_its_clusters() {
        let fleet = fleet();
        let targets = resolve(&fleet, &request(r#"{"environment": "dab-platform-stg"}"#)).unwrap();
        let names: Vec<&str> = targets.iter().map(|(_, c)| c.name.as_str()).collect();
        assert_eq!(names, ["eks-microservices-dab-stg", "eks-corda-dab-stg"]);
    }

    #[test]
    fn a_cluster_names_itself_and_its_environment() {
        let fleet = fleet();
        let targets =
            resolve(&fleet, &request(r#"{"cluster": "eks-microservices-dab-prod"}"#)).unwrap();
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].0.name.as_str(), "dab-platform-prod");
    }

    #[test]
    fn unknown_or_ambiguous_targets_are_errors() {
        let fleet = fleet();
        assert!(matches!(
            resolve(&fleet, &request(r#"{"environment": "nope"}"#)),
            Err(SnapshotError::UnknownEnvironment(_))
        ));
        assert!(matches!(
            resolve(&fleet, &request(r#"{"cluster": "nope"}"#)),
            Err(SnapshotError::UnknownCluster(_))
        ));
        assert!(matches!(resolve(&fleet, &request("{}")), Err(SnapshotError::AmbiguousTarget)));
        let both = r#"{"environment": "dab-platform-stg", "cluster": "eks-corda-dab-stg"}"#;
        assert!(matches!(resolve(&fleet, &request(both)), Err(SnapshotError::AmbiguousTarget)));
    }

    #[test]
    fn malformed_payloads_do_not_parse() {
        assert!(serde_json::from_str::<SnapshotRequest>(r#"{"environment": "bad name"}"#).is_err());
        assert!(serde_json::from_str::<SnapshotRequest>(r#"{"env": "dab-platform-stg"}"#).is_err());
    }
}
