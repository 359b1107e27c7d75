//! The inventory API: environments, clusters, workloads, pods, images,
//! refresh. Handlers are plain functions over the ports in `shared`; the
//! Lambda `main` and the local server both serve [`router`].

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::config::FleetConfig;
use shared::store::Store;

/// What this function reads from its environment, once, at cold start.
pub type Settings = shared::settings::FleetSettings;

/// The ports the handlers use.
pub struct Deps {
    pub fleet: Arc<FleetConfig>,
    pub store: Arc<dyn Store>,
}

pub fn router(deps: Deps) -> Router {
    Router::new().route("/health", get(health)).with_state(Arc::new(deps))
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct Health {
    status: &'static str,
    version: &'static str,
}

/// Liveness: answers without touching any dependency.
async fn health() -> Json<Health> {
    Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use http::{Request, StatusCode};
    use shared::store::memory::MemoryStore;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        let fleet = FleetConfig::parse(
            "environments: [{name: dab-platform-stg, clusters: [{name: eks-a, region: eu-west-1}]}]",
            "test",
        )
        .unwrap();
        shared::http::with_api_defaults(router(Deps {
            fleet: Arc::new(fleet),
            store: Arc::new(MemoryStore::default()),
        }))
    }

    async fn call(uri: &str) -> (StatusCode, serde_json::Value) {
        let response = app().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn health_answers_without_dependencies() {
        let (status, body) = call("/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn unknown_routes_get_a_json_404() {
        let (status, body) = call("/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
    }
}
