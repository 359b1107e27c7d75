//! The snapshot Lambda: wiring only.

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use shared::clock::SystemClock;
use shared::fleet::FleetSource;
use shared::model::SnapshotRequest;
use shared::store::Store;
use shared::store::dynamodb::DynamoStore;
use snapshot::access::{AwsConnector, KubeTimeouts};
use snapshot::snapshotter::{SnapshotOptions, Snapshotter};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = snapshot::Settings::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let store: Arc<dyn Store> =
        Arc::new(DynamoStore::from_sdk_config(&aws, settings.fleet.store.table_name));
    let options =
        SnapshotOptions { history_ttl: settings.history_ttl, ..SnapshotOptions::default() };
    let fleet = FleetSource::new(store.clone(), settings.fleet.seed, settings.fleet.fleet);
    let connector = Arc::new(
        AwsConnector::new(aws, KubeTimeouts::default())
            .with_deployed_local(fleet.deployed_local_clusters()),
    );
    let snapshotter = Snapshotter::new(store, connector, Arc::new(SystemClock), options);
    let (snapshotter, fleet) = (&snapshotter, &fleet);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SnapshotRequest>| async move {
        snapshot::handle(snapshotter, fleet, event.payload).await
    }))
    .await
}
