//! The mailer Lambda (`auth-mailer`): does the mail work the auth API left
//! for it, one asynchronous invoke per job. Wiring only.

use std::sync::Arc;

use auth::mail_jobs::{MailJob, MailWorker};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::clock::SystemClock;
use shared::mail::ses::SesMailer;
use shared::store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let settings = auth::MailerSettings::from_env()?;
    let aws = shared::aws::sdk_config().await;
    let worker = MailWorker {
        store: Arc::new(DynamoStore::from_sdk_config(&aws, settings.store.table_name)),
        mailer: Arc::new(SesMailer::from_sdk_config(&aws, settings.sender)),
        clock: Arc::new(SystemClock),
        codes: Arc::new(auth::secrets::CodeHasher::new(&settings.code_key)?),
        product: auth::Policy::default().product,
        mail_per_hour: settings.mail_per_hour,
    };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<MailJob>| async move {
        // An error makes Lambda retry the job, then send it to the
        // dead-letter queue.
        worker.run(event.payload).await
    }))
    .await
}
