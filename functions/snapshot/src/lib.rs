//! The snapshot function: reads the clusters a request names (those due, an
//! environment's, or one) and stores what changed. Triggered every minute
//! by one EventBridge schedule (`{"due": true}`) and by the API's refresh.
//!
//! The engine: [`snapshotter`] runs a request (targets, concurrency, the
//! lease, outcomes); [`access`] connects to a cluster (STS, EKS, the IAM
//! token in [`token`]); [`collect`] lists its objects ([`objects`]) page by
//! page; [`normalise`] turns them into the dashboard's model; [`persist`]
//! stores what changed; [`error`] says why a cluster failed. The local
//! server runs the same engine.

pub mod access;
pub mod collect;
pub mod error;
pub mod normalise;
pub mod objects;
pub mod persist;
pub mod snapshotter;
pub mod token;

use std::time::Duration;

use shared::config::ConfigError;
use shared::fleet::{FleetError, FleetSource};
use shared::model::SnapshotRequest;
use shared::settings::{FleetSettings, Lookup, history_ttl, process_env};

use crate::snapshotter::{SnapshotError, SnapshotReport, Snapshotter};

/// glibc's malloc arenas the function is deployed with (`template.yaml`
/// sets `MALLOC_ARENA_MAX`, which glibc reads at start): left unbounded,
/// each thread that allocates may get an arena of its own, and memory
/// freed in one is not reused by another. One arena keeps a snapshot of a
/// large cluster about 5 MB smaller (`snapshot-bench`); the two runtime
/// threads rarely allocate at once.
pub const MALLOC_ARENA_MAX: &str = "1";

/// What this function reads from its environment, once, at cold start.
#[derive(Debug)]
pub struct Settings {
    pub fleet: FleetSettings,
    pub history_ttl: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self { fleet: FleetSettings::from_vars(vars)?, history_ttl: history_ttl(vars)? })
    }
}

/// The invocation's error, as the Lambda runtime reports it (and the
/// schedule's retry policy and dead-letter queue see it).
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot read the fleet configuration")]
    Fleet(#[from] FleetError),
}

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(err: InvocationError) -> Self {
        let error_type = match &err {
            InvocationError::Snapshot(err) => err.kind(),
            InvocationError::Fleet(_) => "FleetConfiguration",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: shared::telemetry::error_chain(&err),
        }
    }
}

/// Handles one invocation with the configuration in force: per-cluster
/// outcomes in the report; an error only for a bad request, an unreadable
/// configuration, or when every cluster failed.
pub async fn handle(
    snapshotter: &Snapshotter,
    fleet: &FleetSource,
    request: SnapshotRequest,
) -> Result<SnapshotReport, InvocationError> {
    let fleet = fleet.current().await?;
    let report = snapshotter.run(&fleet, &request).await?;
    tracing::info!(summary = %report.summary(), "snapshot finished");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::access::{AwsConnector, KubeTimeouts};
    use crate::snapshotter::SnapshotOptions;
    use shared::clock::SystemClock;
    use shared::store::memory::MemoryStore;

    use super::*;

    const CA: &str =
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn fleet(text: &str) -> FleetSource {
        FleetSource::from_text(Arc::new(MemoryStore::default()), text).unwrap()
    }

    fn snapshotter(fleet: &FleetSource) -> Snapshotter {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let connector = AwsConnector::new(sdk, KubeTimeouts::default())
            .with_deployed_local(fleet.deployed_local_clusters());
        Snapshotter::new(
            Arc::new(MemoryStore::default()),
            Arc::new(connector),
            Arc::new(SystemClock),
            SnapshotOptions::default(),
        )
    }

    #[tokio::test]
    async fn when_every_cluster_fails_the_invocation_fails_with_its_kind() {
        // A token variable that is not set: the cluster fails before any network.
        let fleet = fleet(&format!(
            "environments:\n  - name: stg\n    clusters:\n      - {{ name: a, endpoint: https://127.0.0.1:1, caData: {CA}, tokenFrom: {{ env: RELEASE_DASHBOARD_TEST_UNSET_TOKEN }} }}\n"
        ));
        let request = SnapshotRequest::environment("stg".parse().unwrap());
        let err = handle(&snapshotter(&fleet), &fleet, request).await.unwrap_err();
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "AllClustersFailed");
        assert!(
            diagnostic.error_message.contains("0 ok, 1 failed"),
            "{}",
            diagnostic.error_message
        );
    }

    #[test]
    fn the_history_ttl_defaults_to_ninety_days_and_is_checked() {
        let fleet = "environments: [{name: stg, clusters: [{name: a, region: eu-west-1}]}]";
        let vars = |extra: Option<&'static str>| {
            move |name: &str| match name {
                "TABLE_NAME" => Some("t-1".to_owned()),
                "FLEET_CONFIG" => Some(fleet.to_owned()),
                "HISTORY_TTL" => extra.map(str::to_owned),
                _ => None,
            }
        };
        assert_eq!(
            Settings::from_vars(&vars(None)).unwrap().history_ttl,
            shared::settings::DEFAULT_HISTORY_TTL
        );
        assert_eq!(
            Settings::from_vars(&vars(Some("30d"))).unwrap().history_ttl,
            Duration::from_secs(30 * 86_400)
        );
        let err = Settings::from_vars(&vars(Some("a while"))).unwrap_err();
        assert!(err.to_string().starts_with("environment variable HISTORY_TTL:"), "{err}");
    }

    #[tokio::test]
    async fn an_unknown_environment_is_reported_as_such() {
        let fleet = fleet("environments: [{name: stg, clusters: [{name: a, region: eu-west-1}]}]");
        let request = SnapshotRequest::environment("prod".parse().unwrap());
        let diagnostic = lambda_runtime::Diagnostic::from(
            handle(&snapshotter(&fleet), &fleet, request).await.unwrap_err(),
        );
        assert_eq!(diagnostic.error_type, "UnknownEnvironment");
    }
}
