//! Batch writing with retry of what the backend left unprocessed.
//!
//! DynamoDB's BatchWriteItem takes at most 25 requests and may succeed while
//! leaving some of them in `UnprocessedItems` (throttling, partition limits);
//! dropping those would lose data silently. The loop is generic over the
//! sender so that its retry behaviour is tested on its own.

use std::future::Future;
use std::time::Duration;

use super::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Sends per chunk, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            base_delay: Duration::from_millis(25),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with "full jitter" (AWS Architecture Blog), so that
    /// many writers throttled together do not retry together.
    fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << retry.min(16)).min(self.max_delay);
        let entropy = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let fraction = f64::from(entropy % 1000) / 1000.0;
        ceiling.mul_f64(0.5 + fraction / 2.0)
    }
}

/// Sends `items` in chunks of `chunk_size`. `send` returns the items the
/// backend did not process; they are sent again after a backoff. Throttling
/// errors are retried the same way; any other error stops the batch.
pub async fn write_all<T, F, Fut>(
    items: Vec<T>,
    chunk_size: usize,
    policy: RetryPolicy,
    mut send: F,
) -> StoreResult<()>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
    T: Clone,
{
    for chunk in items.chunks(chunk_size.max(1)) {
        let mut pending = chunk.to_vec();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match send(pending.clone()).await {
                Ok(unprocessed) if unprocessed.is_empty() => break,
                Ok(unprocessed) => pending = unprocessed,
                Err(StoreError::Throttled(source)) if attempt >= policy.attempts => {
                    return Err(StoreError::Throttled(source));
                }
                Err(StoreError::Throttled(_)) => {}
                Err(other) => return Err(other),
            }
            if attempt >= policy.attempts {
                return Err(StoreError::Unavailable(
                    format!(
                        "{} batch items still unprocessed after {attempt} attempts",
                        pending.len()
                    )
                    .into(),
                ));
            }
            tokio::time::sleep(policy.delay(attempt - 1)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn unprocessed_items_are_sent_again_until_done() {
        let written = Mutex::new(Vec::new());
        let calls = Mutex::new(Vec::new());
        let patient = RetryPolicy { attempts: 8, ..fast() };
        write_all((0..60).collect::<Vec<u32>>(), 25, patient, |batch: Vec<u32>| {
            calls.lock().unwrap().push(batch.len());
            // The backend processes only the first half of each request.
            let keep = batch.len().div_ceil(2);
            written.lock().unwrap().extend_from_slice(&batch[..keep]);
            let rest = batch[keep..].to_vec();
            async move { Ok(rest) }
        })
        .await
        .unwrap();
        let mut written = written.into_inner().unwrap();
        written.sort_unstable();
        assert_eq!(written, (0..60).collect::<Vec<_>>());
        let calls = calls.into_inner().unwrap();
        assert!(calls.iter().all(|&n| n <= 25), "{calls:?}");
        assert!(calls.len() > 3, "retries happened: {calls:?}");
    }

    #[tokio::test]
    async fn gives_up_after_the_attempt_budget_with_an_error() {
        let calls = Mutex::new(0);
        let result = write_all(vec![1, 2, 3], 25, fast(), |batch: Vec<i32>| {
            *calls.lock().unwrap() += 1;
            async move { Ok(batch) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
        assert_eq!(*calls.lock().unwrap(), 4);
    }

    #[tokio::test]
    async fn throttling_is_retried_and_other_errors_stop_the_batch() {
        let calls = Mutex::new(0);
        write_all(vec![1], 25, fast(), |_batch: Vec<i32>| {
            let mut n = calls.lock().unwrap();
            *n += 1;
            let first = *n == 1;
            async move {
                if first { Err(StoreError::Throttled("slow down".into())) } else { Ok(vec![]) }
            }
        })
        .await
        .unwrap();
        assert_eq!(*calls.lock().unwrap(), 2);

        let result = write_all(vec![1, 2], 1, fast(), |_b: Vec<i32>| async {
            Err(StoreError::ConditionFailed)
        })
        .await;
        assert!(matches!(result, Err(StoreError::ConditionFailed)));
    }
}
