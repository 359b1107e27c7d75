//! The auth Lambda: wiring only.

use std::sync::Arc;

use shared::clock::SystemClock;
use shared::mail::ses::SesMailer;
use shared::store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let settings = auth::Settings::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let store = Arc::new(DynamoStore::from_sdk_config(&aws, settings.store.table_name));
    let deps = auth::Deps {
        store: store.clone(),
        mailer: Arc::new(SesMailer::from_sdk_config(&aws, settings.sender)),
        clock: Arc::new(SystemClock),
        hasher: auth::password::Hasher::new()?,
        codes: auth::secrets::CodeHasher::new(&settings.code_key)?,
        policy: settings.policy,
    };
    lambda_http::run(shared::http::with_api_defaults(auth::router(deps), store)).await
}
