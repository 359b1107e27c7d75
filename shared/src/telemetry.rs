//! Logging set-up shared by every binary.

use tracing_subscriber::EnvFilter;

/// Lambda's log settings (`LoggingConfig` in the template): the format from
/// `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`; JSON by default on Lambda,
/// text elsewhere) and the level from `RUST_LOG`, else
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`. JSON lines put the event's fields
/// at the top level and carry the runtime's span, whose `requestId` ties
/// each line to its invocation.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(&level));
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = json_format(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref(), on_lambda);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}

/// Whether logs are JSON lines, per Lambda's `AWS_LAMBDA_LOG_FORMAT`.
fn json_format(format: Option<&str>, on_lambda: bool) -> bool {
    match format {
        Some(f) if f.eq_ignore_ascii_case("json") => true,
        Some(f) if f.eq_ignore_ascii_case("text") => false,
        _ => on_lambda,
    }
}

/// Libraries whose debug and trace output would describe requests on the
/// wire (an SES request carries a one-time code): kept at `info` whatever
/// the function's level. `RUST_LOG` can still ask for them explicitly.
const WIRE_LEVEL_CRATES: &[&str] = &[
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sdk_dynamodb",
    "aws_sdk_eks",
    "aws_sdk_ses",
    "aws_sdk_sts",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "kube_client",
    "tower",
];

/// The filter for `level` (`error` … `trace`): the project's own crates at
/// that level, wire-level libraries at most at `info`.
pub fn filter(level: &str) -> EnvFilter {
    let level = match level {
        "error" | "warn" | "info" | "debug" | "trace" => level,
        // Lambda's advanced logging controls also offer FATAL.
        "fatal" => "error",
        _ => "info",
    };
    let mut directives = level.to_owned();
    if matches!(level, "debug" | "trace") {
        for krate in WIRE_LEVEL_CRATES {
            directives.push_str(&format!(",{krate}=info"));
        }
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// `err` and all its sources, on one line, for logs.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    use std::fmt::Write as _;
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let _ = write!(out, ": {cause}");
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_level_crates_stay_at_info_and_quieter_levels_stay_quiet() {
        let trace = filter("trace").to_string();
        assert!(trace.contains("aws_sdk_ses=info") && trace.ends_with(",trace"), "{trace}");
        let warn = filter("warn").to_string();
        assert_eq!(warn, "warn", "no library is raised above the level asked for");
        assert_eq!(filter("loud").to_string(), "info", "an unknown level falls back to info");
    }

    #[test]
    fn the_format_follows_lambdas_setting() {
        assert!(json_format(Some("JSON"), false));
        assert!(!json_format(Some("Text"), true));
        assert!(json_format(None, true), "JSON on Lambda by default");
        assert!(!json_format(None, false), "text on a terminal");
        assert!(json_format(Some("bogus"), true));
    }
}
