//! The API description: the served document is the checked-in one, every
//! documented route is routed by the functions, and the template sends
//! every documented path to a function.

use std::sync::Arc;

use axum::Router;
use axum::body::to_bytes;
use http::StatusCode;
use shared::clock::SystemClock;
use shared::context::ApiContext;
use shared::fleet::FleetSource;
use shared::model::SnapshotRequest;
use shared::refresh::SnapshotTrigger;
use shared::store::memory::MemoryStore;
use shared::store::{BoxError, Store};
use tower::ServiceExt;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");

struct NoTrigger;

#[async_trait::async_trait]
impl SnapshotTrigger for NoTrigger {
    async fn start(&self, _: SnapshotRequest) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Every API function's router, merged as the local server merges them.
fn app() -> Router {
    app_and_store().0
}

fn app_and_store() -> (Router, Arc<dyn Store>) {
    let clock = Arc::new(SystemClock);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.clone()));
    let fleet = Arc::new(
        FleetSource::from_text(
            store.clone(),
            "environments: [{name: stg, clusters: [{name: a, region: eu-west-1}]}]",
        )
        .unwrap(),
    );
    let context = || ApiContext::new(fleet.clone(), store.clone(), clock.clone());
    let app = Router::new()
        .merge(auth::router(
            auth::Deps::in_process(
                store.clone(),
                fleet.clone(),
                Arc::new(shared::mail::MemoryMailer::default()),
                clock.clone(),
                auth::password::Hasher::new().unwrap(),
                auth::Policy::default(),
            )
            .unwrap()
            .0,
        ))
        .merge(inventory::router(context(), Arc::new(NoTrigger)))
        .merge(dashboards::router(context()));
    (shared::http::with_api_defaults(app, store.clone()), store)
}

/// The document from the route table and every crate's schemas.
fn built() -> String {
    use shared::openapi::components_of;
    use utoipa::OpenApi as _;
    let mut schemas = components_of(&shared::openapi::Schemas::openapi());
    for api in
        [auth::Schemas::openapi(), inventory::Schemas::openapi(), dashboards::Schemas::openapi()]
    {
        for (name, schema) in components_of(&api) {
            if let Some(other) = schemas.insert(name.clone(), schema.clone()) {
                assert_eq!(other, schema, "two different types are both named {name}");
            }
        }
    }
    shared::openapi::text(schemas)
}

#[test]
fn every_reference_resolves_and_every_answer_has_a_schema() {
    let document: serde_json::Value = serde_json::from_str(&built()).unwrap();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    let mut missing = Vec::new();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        if !schemas.contains_key(name) {
            missing.push(name.to_owned());
        }
    }
    assert!(missing.is_empty(), "references without a schema: {missing:?}");
    for route in shared::openapi::ROUTES {
        let described = route.answer.is_some() || route.ok == 204 || route.path == "/openapi.json";
        assert!(described, "{} {} names no answer schema", route.method, route.path);
        let body = route.method == "POST" || route.method == "PUT" || route.method == "PATCH";
        let takes_nothing =
            ["/auth/logout", "/environments/{env}/refresh", "/clusters/{cluster}/refresh"];
        assert!(
            !body || route.request.is_some() || takes_nothing.contains(&route.path),
            "{} {} names no body schema",
            route.method,
            route.path
        );
    }
    assert!(schemas.len() > 40, "{} schemas", schemas.len());
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let text = built();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &text).unwrap();
    }
    let file = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        file == text,
        "docs/openapi.json is not the document the code builds: run \
         `UPDATE_OPENAPI=1 scripts/testbed.sh cargo test -p integration-tests --test it openapi` and commit it"
    );
    let request = shared::testing::api_request("GET", "/openapi.json", None, None);
    let response = app().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert!(String::from_utf8_lossy(&served) == text, "the served document is not the built one");
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
}

#[tokio::test]
async fn every_documented_route_is_routed() {
    let app = app();
    for route in shared::openapi::ROUTES {
        let path = route.path.replace('{', "x").replace('}', "");
        let request = shared::testing::api_request(route.method, &path, None, None);
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{} {}", route.method, route.path);
        assert!(!text.contains("route not found"), "{} {} is not routed", route.method, route.path);
        if route.access != shared::openapi::Access::Public {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{} {} needs a session",
                route.method,
                route.path
            );
        }
    }
    // And the fallback is what the check above looks for.
    let request = shared::testing::api_request("GET", "/no/such/route", None, None);
    let body = to_bytes(app.oneshot(request).await.unwrap().into_body(), 1 << 16).await.unwrap();
    assert!(String::from_utf8_lossy(&body).contains("route not found"));
}

#[test]
fn the_template_sends_every_documented_path_to_a_function() {
    let template = std::fs::read_to_string(TEMPLATE).unwrap();
    let paths: Vec<&str> =
        template.lines().filter_map(|l| l.trim().strip_prefix("Path: ")).collect();
    for route in shared::openapi::ROUTES {
        let covered = paths.iter().any(|p| match p.strip_suffix("{proxy+}") {
            Some(prefix) => route.path.starts_with(prefix) && route.path.len() > prefix.len(),
            None => *p == route.path,
        });
        assert!(covered, "template.yaml routes no function for {}", route.path);
    }
}

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

#[tokio::test]
async fn every_route_answers_a_method_it_does_not_take_with_a_json_405() {
    let app = app();
    let mut paths: Vec<&str> = shared::openapi::ROUTES.iter().map(|r| r.path).collect();
    paths.dedup();
    let mut checked = 0;
    for path in paths {
        let taken: Vec<&str> =
            shared::openapi::ROUTES.iter().filter(|r| r.path == path).map(|r| r.method).collect();
        let concrete = path.replace('{', "x").replace('}', "");
        for method in METHODS.iter().filter(|m| !taken.contains(m)) {
            let request = shared::testing::api_request(method, &concrete, None, None);
            let response = app.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let allow = response.headers().get("allow").cloned();
            let content_type = response.headers().get("content-type").cloned();
            let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_eq!(content_type.unwrap(), "application/json", "{method} {path}");
            assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}: {body}");
            let allow = allow.unwrap_or_else(|| panic!("{method} {path}: no Allow header"));
            for method in &taken {
                assert!(allow.to_str().unwrap().contains(method), "{path}: {allow:?}");
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[tokio::test]
async fn bad_path_and_query_parameters_get_json_errors_that_name_them() {
    let (app, store) = app_and_store();
    let token = integration_tests::unique("token");
    let admin = shared::records::account::Role::Admin;
    let now = jiff::Timestamp::now();
    shared::testing::signed_in(store.as_ref(), "root@example.com", admin, Vec::new(), &token, now)
        .await
        .unwrap();
    let cases = [
        ("/clusters/%FF%FE/workloads", "invalid_path", "cluster: is not valid UTF-8"),
        ("/auth/users?limit=1&limit=2", "invalid_query", "limit: is given more than once"),
        ("/auth/users?limit=ten", "invalid_query", "limit: "),
        ("/auth/users?nonsense=1", "invalid_query", "nonsense: unknown parameter"),
    ];
    for (uri, code, message) in cases {
        let request = shared::testing::api_request("GET", uri, None, Some(&token));
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
        let text = body["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{uri}: {text}");
    }
}

#[tokio::test]
async fn every_answer_is_uncached_unsniffed_and_strict_over_https() {
    let app = app();
    for (uri, cache) in [
        ("/health", "no-store"),
        ("/auth/me", "no-store"),
        ("/no/such/route", "no-store"),
        ("/openapi.json", "no-store"),
        ("/", "no-cache"),
    ] {
        for https in [false, true] {
            let mut request = shared::testing::api_request("GET", uri, None, None);
            if https {
                request.headers_mut().insert("x-forwarded-proto", "https".parse().unwrap());
            }
            let response = app.clone().oneshot(request).await.unwrap();
            let headers = response.headers();
            assert_eq!(headers["x-content-type-options"], "nosniff", "{uri}");
            assert_eq!(headers["cache-control"], cache, "{uri}");
            assert_eq!(headers.contains_key("strict-transport-security"), https, "{uri} {https}");
        }
    }
}
