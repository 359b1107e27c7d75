//! Cold start of each function binary, as Lambda runs it: a minimal Lambda
//! runtime API on 127.0.0.1 hands the process one event, and the time from
//! spawning the process to its answer (a response, or an error the
//! function reports) is its cold start. Prints, per function, the binary's
//! size and the median, fastest and slowest of `--runs` starts.
//!
//!   cargo build --release -p auth -p inventory -p dashboards -p snapshot \
//!     -p integration-tests --bin cold-start && target/release/cold-start
//!
//! The API functions get `GET /health` through an HTTP API (payload 2.0)
//! event. The snapshot function gets an environment the configuration
//! lacks: it reads the stored configuration (the stub answers DynamoDB's
//! GetItem with no item, as on a new stack) and answers with an error.
//! Targets: 30 ms and 10 MB per function; the command exits non-zero above
//! them.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use integration_tests::numeric_arg;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

const TARGET: Duration = Duration::from_millis(30);
const MAX_SIZE: u64 = 10 * 1024 * 1024;
const FLEET: &str = "environments:\n  - name: dev\n    clusters:\n      - name: eks-dev\n        region: eu-west-1\n";

/// How the process answered its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Response,
    Error,
    InitError,
}

struct Stub {
    event: String,
    served: AtomicBool,
    answers: mpsc::UnboundedSender<Answer>,
}

async fn next(State(stub): State<Arc<Stub>>) -> impl IntoResponse {
    if stub.served.swap(true, Ordering::SeqCst) {
        // One event per process: the next poll waits until it is killed.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    let deadline = jiff::Timestamp::now().as_millisecond() + 30_000;
    for (name, value) in [
        ("lambda-runtime-aws-request-id", "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:eu-west-1:123456789012:function:bench".to_owned(),
        ),
        ("lambda-runtime-trace-id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700".to_owned()),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    (headers, stub.event.clone())
}

fn answered(stub: &Stub, answer: Answer) -> &'static str {
    let _ = stub.answers.send(answer);
    r#"{"status":"OK"}"#
}

fn health_event() -> String {
    serde_json::json!({
        "version": "2.0", "routeKey": "GET /health", "rawPath": "/health", "rawQueryString": "",
        "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com", "accept": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc", "requestId": "bench", "routeKey": "GET /health", "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000", "timeEpoch": 1_795_000_000_000_u64,
            "http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cold-start"}
        },
        "isBase64Encoded": false
    })
    .to_string()
}

/// One start of `binary`: spawn → its answer.
async fn start_once(binary: &Path, event: &str) -> Result<(Duration, Answer), String> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stub =
        Arc::new(Stub { event: event.to_owned(), served: AtomicBool::new(false), answers: tx });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(|State(s): State<Arc<Stub>>| async move { answered(&s, Answer::Response) }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(|State(s): State<Arc<Stub>>| async move { answered(&s, Answer::Error) }),
        )
        .route(
            "/2018-06-01/runtime/init/error",
            post(|State(s): State<Arc<Stub>>| async move { answered(&s, Answer::InitError) }),
        )
        // DynamoDB as the snapshot's first read finds it on a new stack:
        // no stored configuration yet (GetItem answers no item).
        .route("/", post(|| async { ([("content-type", "application/x-amz-json-1.0")], "{}") }))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = std::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ENDPOINT_URL_DYNAMODB", format!("http://{address}"))
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("TABLE_NAME", "release-dashboard-bench")
        .env("FLEET_CONFIG", FLEET)
        .env("SNAPSHOT_FUNCTION", "release-dashboard-snapshot")
        .env("MAIL_SENDER", "noreply@example.com")
        .env("CODE_KEY", "q83vEjv8gLKoXDdEJ2Zs4HaGuw4NVrSZJYd1z3B9R0o=")
        .env("HISTORY_TTL", "90d")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    match answer {
        Ok(Some(answer)) => Ok((elapsed, answer)),
        _ => Err(format!("{} answered nothing within 10 s", binary.display())),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let runs = match numeric_arg("--runs", 20) {
        Ok(n) => n.max(1),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"));
    let health = health_event();
    let functions = [
        ("auth", health.as_str(), Answer::Response),
        ("inventory", health.as_str(), Answer::Response),
        ("dashboards", health.as_str(), Answer::Response),
        ("snapshot", r#"{"environment":"not-configured"}"#, Answer::Error),
    ];
    let mut ok = true;
    println!("function     size      p50      min      max   (n={runs}, spawn → answer)");
    for (name, event, expected) in functions {
        let binary = dir.join(name);
        let size = match std::fs::metadata(&binary) {
            Ok(meta) => meta.len(),
            Err(_) => {
                eprintln!(
                    "{} is missing: build it with cargo build --release -p {name}",
                    binary.display()
                );
                return ExitCode::FAILURE;
            }
        };
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            match start_once(&binary, event).await {
                Ok((time, answer)) if answer == expected => times.push(time),
                Ok((_, answer)) => {
                    eprintln!("{name} answered {answer:?}, expected {expected:?}");
                    return ExitCode::FAILURE;
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p50 = times[times.len() / 2];
        println!(
            "{name:<10} {:>5.1} MB {:>6.1} ms {:>6.1} ms {:>6.1} ms",
            size as f64 / (1024.0 * 1024.0),
            ms(p50),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
        ok &= p50 <= TARGET && size <= MAX_SIZE;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("above target: p50 ≤ {} ms and ≤ 10 MB per function", TARGET.as_millis());
        ExitCode::FAILURE
    }
}
