//! The snapshot Lambda: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use snapshot::{Settings, SnapshotRequest};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = Settings::from_env()?;
    let fleet = &settings.fleet;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnapshotRequest>| async move {
        snapshot::handle(fleet, event.payload).await
    }))
    .await
}
