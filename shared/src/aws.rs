//! AWS SDK configuration shared by every function: explicit timeouts on every
//! call, well inside the functions' own timeouts, and the standard retry
//! policy. `AWS_ENDPOINT_URL` (the test bed's moto server) is honoured by the
//! SDK's own loader.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One HTTP attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// All attempts of one operation together.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);

pub async fn sdk_config() -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

/// An asynchronous invoke (`InvocationType: Event`) of one function:
/// Lambda queues the payload — with its own retries and on-failure
/// destination — and answers at once. What the refresh API and the auth
/// API's mail work leave for another function.
#[cfg(feature = "lambda-invoke")]
pub struct AsyncInvoke {
    client: aws_sdk_lambda::Client,
    function: String,
}

#[cfg(feature = "lambda-invoke")]
impl AsyncInvoke {
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self { client, function: function.into() }
    }

    pub async fn send<T: serde::Serialize>(
        &self,
        payload: &T,
    ) -> Result<(), crate::store::BoxError> {
        let payload = serde_json::to_vec(payload)?;
        self.client
            .invoke()
            .function_name(&self.function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await?;
        Ok(())
    }
}
