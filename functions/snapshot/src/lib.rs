//! The snapshot function: reads every configured cluster of an environment
//! (or one cluster) and stores what changed. Triggered by an EventBridge
//! schedule per environment and by the API's refresh.

use serde::Deserialize;
use shared::config::{Cluster, Environment, FleetConfig};
use shared::domain::{ClusterName, EnvironmentName};

/// What this function reads from its environment, once, at cold start.
pub type Settings = shared::settings::FleetSettings;

/// The invocation payload: the schedule's input (`{"environment": "…"}`) or
/// a refresh of one cluster (`{"cluster": "…"}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotRequest {
    pub environment: Option<EnvironmentName>,
    pub cluster: Option<ClusterName>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the request must name exactly one of environment or cluster")]
    AmbiguousTarget,
    #[error("no environment named {0} is configured")]
    UnknownEnvironment(EnvironmentName),
    #[error("no cluster named {0} is configured")]
    UnknownCluster(ClusterName),
    #[error("collecting clusters is not implemented yet")]
    NotImplemented,
}

impl SnapshotError {
    fn kind(&self) -> &'static str {
        match self {
            Self::AmbiguousTarget => "AmbiguousTarget",
            Self::UnknownEnvironment(_) => "UnknownEnvironment",
            Self::UnknownCluster(_) => "UnknownCluster",
            Self::NotImplemented => "NotImplemented",
        }
    }
}

/// What the Lambda runtime reports (and EventBridge's dead-letter queue keeps).
impl From<SnapshotError> for lambda_runtime::Diagnostic {
    fn from(err: SnapshotError) -> Self {
        Self { error_type: err.kind().to_owned(), error_message: shared::http::error_chain(&err) }
    }
}

/// The clusters a request names, with their environment.
pub fn resolve<'a>(
    fleet: &'a FleetConfig,
    request: &SnapshotRequest,
) -> Result<Vec<(&'a Environment, &'a Cluster)>, SnapshotError> {
    match (&request.environment, &request.cluster) {
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

/// Handles one invocation. Collection lands with the snapshot issue; until
/// then an invocation fails loudly rather than pretending to have run.
pub async fn handle(fleet: &FleetConfig, request: SnapshotRequest) -> Result<(), SnapshotError> {
    let targets = resolve(fleet, &request)?;
    tracing::info!(clusters = targets.len(), "snapshot requested");
    Err(SnapshotError::NotImplemented)
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
