//! Refresh on demand: the port through which the API starts a snapshot
//! without waiting for it (an asynchronous Lambda invoke in AWS, a task in
//! the local server), and the window in front of it (its record is
//! `records::refresh_claim`).

use std::time::Duration;

use async_trait::async_trait;

use crate::model::SnapshotRequest;
use crate::store::BoxError;

/// At most one refresh per cluster in this window.
pub const REFRESH_WINDOW: Duration = Duration::from_secs(30);

#[async_trait]
pub trait SnapshotTrigger: Send + Sync {
    /// Starts a snapshot of what `request` names and returns at once.
    async fn start(&self, request: SnapshotRequest) -> Result<(), BoxError>;
}

/// The Lambda adapter: an asynchronous invoke of the snapshot function,
/// which answers as soon as Lambda queued it.
#[cfg(feature = "lambda-invoke")]
pub struct LambdaTrigger(crate::aws::AsyncInvoke);

#[cfg(feature = "lambda-invoke")]
impl LambdaTrigger {
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self(crate::aws::AsyncInvoke::new(client, function))
    }
}

#[cfg(feature = "lambda-invoke")]
#[async_trait]
impl SnapshotTrigger for LambdaTrigger {
    async fn start(&self, request: SnapshotRequest) -> Result<(), BoxError> {
        self.0.send(&request).await
    }
}
