//! Logging set-up shared by every binary.

use tracing_subscriber::EnvFilter;

/// JSON lines on Lambda (CloudWatch parses them), human-readable text
/// elsewhere. The level comes from `RUST_LOG`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if on_lambda {
        // Lambda adds its own timestamps and request ids.
        builder.json().without_time().with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
}
