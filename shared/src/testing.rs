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
