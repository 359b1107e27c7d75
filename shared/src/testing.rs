//! Helpers for other crates' tests (feature `test-support`; never in a
//! function binary).

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
