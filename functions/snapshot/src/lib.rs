//! The snapshot function: reads every configured cluster of an environment
//! (or one cluster) and stores what changed. Triggered by an EventBridge
//! schedule per environment and by the API's refresh. The work is
//! `shared::snapshot`; this crate adapts it to the Lambda runtime.

use shared::config::FleetConfig;
use shared::snapshot::{SnapshotError, SnapshotReport, SnapshotRequest, Snapshotter};

/// What this function reads from its environment, once, at cold start.
pub type Settings = shared::settings::FleetSettings;

/// The invocation's error, as the Lambda runtime reports it (and the
/// schedule's retry policy and dead-letter queue see it).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct InvocationError(#[from] pub SnapshotError);

impl From<InvocationError> for lambda_runtime::Diagnostic {
    fn from(err: InvocationError) -> Self {
        Self { error_type: err.0.kind().to_owned(), error_message: shared::http::error_chain(&err) }
    }
}

/// Handles one invocation: per-cluster outcomes in the report; an error
/// only for a bad request or when every cluster failed.
pub async fn handle(
    snapshotter: &Snapshotter,
    fleet: &FleetConfig,
    request: SnapshotRequest,
) -> Result<SnapshotReport, InvocationError> {
    let report = snapshotter.run(fleet, &request).await?;
    tracing::info!(summary = %report.summary(), "snapshot finished");
    Ok(report)
}
