//! The inventory Lambda: wiring only.

use std::sync::Arc;

use shared::clock::SystemClock;
use shared::context::ApiContext;
use shared::fleet::FleetSource;
use shared::refresh::LambdaTrigger;
use shared::store::Store;
use shared::store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let settings = inventory::Settings::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let store: Arc<dyn Store> =
        Arc::new(DynamoStore::from_sdk_config(&aws, settings.fleet.store.table_name));
    let fleet =
        Arc::new(FleetSource::new(store.clone(), settings.fleet.seed, settings.fleet.fleet));
    let context = ApiContext::new(fleet, store.clone(), Arc::new(SystemClock));
    let trigger =
        Arc::new(LambdaTrigger::new(aws_sdk_lambda::Client::new(&aws), settings.snapshot_function));
    lambda_http::run(shared::http::with_api_defaults(inventory::router(context, trigger), store))
        .await
}
