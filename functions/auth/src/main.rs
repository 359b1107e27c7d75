//! The auth Lambda: wiring only.

use std::sync::Arc;

use shared::store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let settings = auth::Settings::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let deps =
        auth::Deps { store: Arc::new(DynamoStore::from_sdk_config(&aws, settings.table_name)) };
    lambda_http::run(shared::http::with_api_defaults(auth::router(deps))).await
}
