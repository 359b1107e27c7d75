//! The one place where errors become HTTP responses.
//!
//! Every error a client can see has a stable `code` and a human message:
//! `{"error": {"code": "not_found", "message": "..."}}`. Client errors say
//! what was wrong with the request; server errors say only that something
//! failed — their full cause chain goes to the log, never to the client.

use std::time::Duration;

use axum::Json;
use axum::extract::path::ErrorKind as PathErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::fleet::FleetError;
use crate::store::{BoxError, StoreError};

/// The request bodies our API accepts are small JSON documents.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("this route does not take {method}")]
    MethodNotAllowed { method: String },
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    /// A dependency is down or throttling; the client may retry.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] BoxError),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    /// A query parameter that cannot be used; the message names it.
    pub fn invalid_parameter(name: &str, problem: impl std::fmt::Display) -> Self {
        Self::bad_request("invalid_parameter", format!("{name}: {problem}"))
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn internal(err: impl Into<BoxError>) -> Self {
        Self::Internal(err.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Conflict { .. } => "conflict",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

/// Every error answer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    /// Stable, for programs (`not_found`, `invalid_query`, …).
    code: &'a str,
    /// For people; a bad parameter's starts with its name.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // NB: the whole cause chain is logged here and only here; the
            // client gets the generic message of the variant.
            tracing::error!(code = self.code(), error = %crate::telemetry::error_chain(&self), "request failed");
        }
        let body =
            ErrorBody { error: ErrorDetail { code: self.code(), message: self.to_string() } };
        let mut response = (status, Json(body)).into_response();
        let retry_after = match &self {
            Self::TooManyRequests { retry_after } => Some(retry_after.as_secs().max(1)),
            Self::Unavailable(_) => Some(1),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::ConditionFailed => Self::Conflict {
                message: "the resource was changed by another request; retry".into(),
            },
            StoreError::InvalidCursor => {
                Self::invalid_parameter("cursor", "not a cursor this list gave out")
            }
            StoreError::Throttled(_) | StoreError::Unavailable(_) => {
                Self::Unavailable(Box::new(err))
            }
            StoreError::ItemTooLarge { .. }
            | StoreError::InvalidKey(_)
            | StoreError::Corrupt { .. }
            | StoreError::Encoding(_) => Self::Internal(Box::new(err)),
        }
    }
}

impl From<FleetError> for ApiError {
    fn from(err: FleetError) -> Self {
        match err {
            FleetError::Store(err) => err.into(),
            FleetError::Invalid(problems) => {
                ApiError::bad_request("invalid_configuration", problems.to_string())
            }
            FleetError::Contended => ApiError::Conflict { message: err.to_string() },
            FleetError::Corrupt(_) => ApiError::internal(err),
        }
    }
}

/// A JSON body extractor whose rejections are [`ApiError`]s: wrong content
/// type → 415, too large → 413, malformed or unknown fields → 400 saying where.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(rejection)) => {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::PayloadTooLarge)
                } else {
                    Err(ApiError::bad_request("invalid_body", "the request body could not be read"))
                }
            }
            Err(JsonRejection::JsonSyntaxError(_)) => {
                Err(ApiError::bad_request("invalid_json", "the request body is not valid JSON"))
            }
            // The data error's text names the field and the rule; it holds no
            // input values beyond the field name.
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::bad_request("invalid_body", e.body_text()))
            }
            Err(other) => Err(ApiError::bad_request("invalid_body", other.body_text())),
        }
    }
}

/// A query-string extractor whose rejections are [`ApiError`]s whose
/// message starts with the parameter at fault (`limit: is given more than
/// once`, `limit: invalid digit found in string`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Self).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner().to_string();
            ApiError::bad_request("invalid_query", query_problem(&path, &inner))
        })
    }
}

/// `name: problem`, whether serde names the parameter by path (a value
/// that does not parse) or in its message (a repeated, unknown or missing
/// one).
fn query_problem(path: &str, message: &str) -> String {
    if let Some(name) = message.split('`').nth(1) {
        if message.starts_with("duplicate field") {
            return format!("{name}: is given more than once");
        }
        if message.starts_with("unknown field") {
            let rest = message.split_once(", ").map_or("", |(_, rest)| rest);
            return format!("{name}: unknown parameter; {rest}");
        }
        if message.starts_with("missing field") {
            return format!("{name}: is required");
        }
    }
    if path == "." { message.to_owned() } else { format!("{path}: {message}") }
}

/// A path-parameter extractor whose rejections are [`ApiError`]s that name
/// the parameter (`cluster: is not valid UTF-8`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => {
                let message = match err.kind() {
                    PathErrorKind::InvalidUtf8InPathParam { key } => {
                        format!("{key}: is not valid UTF-8")
                    }
                    PathErrorKind::ParseErrorAtKey { key, expected_type, .. } => {
                        format!("{key}: must be a {expected_type}")
                    }
                    _ => "a path parameter cannot be read".to_owned(),
                };
                Err(ApiError::bad_request("invalid_path", message))
            }
            Err(_) => Err(ApiError::bad_request("invalid_path", "the path cannot be read")),
        }
    }
}

/// The JSON 404 for routes nobody serves.
pub async fn route_not_found() -> ApiError {
    ApiError::not_found("route")
}

/// What `/health` and `/ready` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Probe {
    status: &'static str,
    version: &'static str,
}

/// What every API router gets once, after the function's (or the local
/// server's merged) routes: `GET /health` (liveness: no dependency is
/// touched), `GET /ready` (the table answers), the JSON 404 and the body
/// size limit.
pub fn with_api_defaults(
    router: axum::Router,
    store: std::sync::Arc<dyn crate::store::ItemGet>,
) -> axum::Router {
    let version = env!("CARGO_PKG_VERSION");
    router
        .route(
            "/health",
            axum::routing::get(move || async move { Json(Probe { status: "ok", version }) }),
        )
        .route(
            "/ready",
            axum::routing::get(move || async move {
                crate::records::readiness::probe(store.as_ref()).await?;
                Ok::<_, ApiError>(Json(Probe { status: "ready", version }))
            }),
        )
        .route_layer(axum::middleware::from_fn(observe))
        .fallback(route_not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(answer_policy))
}

/// What every answer gets, whoever wrote it: the JSON error shape for any
/// error that is not JSON yet (axum's own 405 with its `Allow`, rejections
/// of extractors that are not ours), `X-Content-Type-Options: nosniff`,
/// `Cache-Control: no-store` unless the handler chose a policy (the page's
/// files), and HSTS when the request came over HTTPS (API Gateway always;
/// it says so in `X-Forwarded-Proto`).
async fn answer_policy(request: Request, next: axum::middleware::Next) -> Response {
    let method = request.method().to_string();
    let https = request.uri().scheme_str() == Some("https")
        || request
            .headers()
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let mut response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let error = match status {
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed { method },
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::NOT_FOUND => ApiError::not_found("route"),
            status if status.is_server_error() => {
                ApiError::internal(format!("a non-JSON {status} answer was replaced"))
            }
            _ => ApiError::bad_request("invalid_request", "the request cannot be read"),
        };
        let kept: Vec<_> = [header::ALLOW, header::RETRY_AFTER]
            .into_iter()
            .filter_map(|name| response.headers().get(&name).cloned().map(|v| (name, v)))
            .collect();
        let mut json = error.into_response();
        *json.status_mut() = status;
        for (name, value) in kept {
            json.headers_mut().insert(name, value);
        }
        response = json;
    }
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Whether this process has answered a request yet.
static COLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// One log line and one metric record per request: the route (its template,
/// so no address or name in a path reaches the log), status, duration and
/// whether it was the process's first. On Lambda the runtime's span adds
/// the request id to the line.
async fn observe(request: Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let route = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(path) => format!("{} {}", request.method(), path.as_str()),
        None => format!("{} (unmatched)", request.method()),
    };
    let cold_start = COLD.swap(false, std::sync::atomic::Ordering::Relaxed);
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(route = %route, status, duration_ms, cold_start, "request");
    crate::metrics::Record::new()
        .dimension("Route", route)
        .rollup()
        .value("Latency", duration_ms, crate::metrics::Unit::Milliseconds)
        .value("Requests", 1.0, crate::metrics::Unit::Count)
        .value(
            "ClientErrors",
            f64::from(u8::from((400..500).contains(&status))),
            crate::metrics::Unit::Count,
        )
        .value("ServerErrors", f64::from(u8::from(status >= 500)), crate::metrics::Unit::Count)
        .emit();
    response
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    #[tokio::test]
    async fn every_request_is_logged_and_measured_under_its_route_template() {
        use tower::ServiceExt;
        let sink = std::sync::Arc::new(crate::metrics::Memory::default());
        crate::metrics::set_sink(sink.clone());
        let store = std::sync::Arc::new(crate::store::memory::MemoryStore::default());
        let router = axum::Router::new().route(
            "/things/{name}",
            axum::routing::get(|| async { Err::<(), _>(ApiError::not_found("no such thing")) }),
        );
        let app = with_api_defaults(router, store);
        for uri in ["/things/jane@example.com", "/health"] {
            let request = http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let records = sink.records();
        let route = |r: &serde_json::Value| r["Route"].as_str().unwrap_or_default().to_owned();
        let things = records.iter().find(|r| route(r) == "GET /things/{name}").unwrap();
        assert_eq!(
            (things["Requests"].as_f64(), things["ClientErrors"].as_f64()),
            (Some(1.0), Some(1.0))
        );
        assert_eq!(things["ServerErrors"].as_f64(), Some(0.0));
        assert!(things["Latency"].as_f64().unwrap() >= 0.0);
        assert!(records.iter().any(|r| route(r) == "GET /health"));
        assert!(!records.iter().any(|r| r.to_string().contains("jane")), "no path values");
    }

    async fn body_of(err: ApiError) -> (StatusCode, serde_json::Value, Option<HeaderValue>) {
        let response = err.into_response();
        let status = response.status();
        let retry = response.headers().get(header::RETRY_AFTER).cloned();
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), retry)
    }

    #[tokio::test]
    async fn internal_errors_never_show_their_cause() {
        let err = ApiError::internal(std::io::Error::other("db password is hunter2"));
        let (status, body, _) = body_of(err).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "internal", "message": "internal error"}})
        );
    }

    #[tokio::test]
    async fn store_errors_map_to_client_and_server_statuses() {
        let (status, body, _) = body_of(StoreError::ConditionFailed.into()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("conflict"))
        );
        let (status, _, _) = body_of(StoreError::InvalidCursor.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body, retry) = body_of(StoreError::Throttled("slow".into()).into()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["message"], "service temporarily unavailable");
        assert_eq!(retry.unwrap(), "1");
        let corrupt = StoreError::Corrupt { pk: "p".into(), sk: "s".into(), reason: "r".into() };
        let (status, body, _) = body_of(corrupt.into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("p/s"));
        // A record that cannot be encoded is our bug: 500, and no retry.
        // (JSON object keys must be strings.)
        let unencodable = serde_json::to_value(std::collections::HashMap::from([((1, 2), 3)]));
        let (status, _, retry) =
            body_of(StoreError::Encoding(unencodable.unwrap_err()).into()).await;
        assert_eq!((status, retry), (StatusCode::INTERNAL_SERVER_ERROR, None));
    }

    #[tokio::test]
    async fn rate_limits_say_when_to_come_back() {
        let (status, _, retry) =
            body_of(ApiError::TooManyRequests { retry_after: Duration::from_secs(30) }).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.unwrap(), "30");
    }

    #[test]
    fn error_chains_include_every_source() {
        let err =
            ApiError::Unavailable(Box::new(StoreError::Unavailable("connection refused".into())));
        assert_eq!(
            crate::telemetry::error_chain(&err),
            "service temporarily unavailable: the store is unavailable: connection refused"
        );
    }
}
