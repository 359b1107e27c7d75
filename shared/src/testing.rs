//! Helpers for other crates' tests (feature `test-support`; never in a
//! function binary).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use axum::body::Body;
use axum::http::{Request, header};
use serde_json::Value;

/// An API request as a browser or the CLI sends one: a JSON body (with its
/// content type) when given, and a bearer token when given.
pub fn api_request(
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    // NB: method and path come from the test itself; a bad one is a bug there.
    #[allow(clippy::expect_used)]
    request.body(body).expect("a well-formed test request")
}

/// An active account with a session whose bearer token is `token`, as a
/// user who signed in would have (no password: tests and benchmarks that
/// exercise other routes than sign-in).
pub async fn signed_in(
    store: &dyn crate::store::Store,
    email: &str,
    role: crate::records::account::Role,
    teams: Vec<crate::domain::TeamName>,
    token: &str,
    now: jiff::Timestamp,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use crate::auth::token_digest;
    use crate::records::account::{self, Account};
    use crate::records::session::{self, Session, SessionLifetimes};
    let email = crate::domain::Email::parse(email)?;
    let name = email.as_str().split('@').next().unwrap_or_default().to_owned();
    let account = Account::active(email.clone(), name, "no password".into(), role, teams, now);
    account::write(store, &account, crate::store::Condition::IfAbsent).await?;
    let session = Session::new(email, now, SessionLifetimes::default());
    let digest = token_digest(&secrecy::SecretString::from(token.to_owned()));
    session::create(store, &digest, &session).await?;
    Ok(())
}

/// A name no other test (or earlier run against the same table) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// The EMF records every test of this binary has written so far (tests
/// share one sink: each looks for its own records).
pub fn metrics() -> &'static crate::metrics::Memory {
    static SINK: OnceLock<Arc<crate::metrics::Memory>> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = Arc::new(crate::metrics::Memory::default());
        crate::metrics::set_sink(sink.clone());
        sink
    })
}

/// How many records carry the metric `name`.
pub fn metric_count(name: &str) -> usize {
    metrics().records().iter().filter(|r| r.get(name).is_some()).count()
}

/// Everything this test binary logs, through one global subscriber with the
/// functions' own filter at its most verbose, installed before any test
/// that reads it logs.
pub fn captured_log() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(crate::telemetry::filter("trace"))
            .with_writer(captured.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

/// Collects what is logged.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
