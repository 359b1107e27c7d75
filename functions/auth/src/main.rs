//! The auth Lambda: wiring only.

use std::sync::Arc;

use auth::mail_jobs::LambdaQueue;
use shared::clock::SystemClock;
use shared::fleet::FleetSource;
use shared::store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let settings = auth::Settings::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let store = Arc::new(DynamoStore::from_sdk_config(&aws, settings.fleet.store.table_name));
    let fleet = FleetSource::new(store.clone(), settings.fleet.seed, settings.fleet.fleet);
    let mail_jobs = LambdaQueue::new(aws_sdk_lambda::Client::new(&aws), settings.mailer_function);
    let deps = auth::Deps {
        store: store.clone(),
        fleet: Arc::new(fleet),
        mail_jobs: Arc::new(mail_jobs),
        clock: Arc::new(SystemClock),
        hasher: auth::password::Hasher::new()?,
        codes: Arc::new(auth::secrets::CodeHasher::new(&settings.code_key)?),
        policy: settings.policy,
    };
    lambda_http::run(shared::http::with_api_defaults(auth::router(deps), store)).await
}
