//! The inventory API: environments (and their configuration at run time),
//! clusters and their status, workloads, pods, stats, images, refresh and
//! clear cache. Handlers are plain functions over the ports in `shared`;
//! the Lambda `main` and the local server both serve [`router`].

pub mod handlers;
pub mod images;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};
use shared::config::ConfigError;
use shared::context::{ApiContext, ApiState};
use shared::refresh::SnapshotTrigger;
use shared::settings::{FleetSettings, Lookup, process_env, required};

/// The snapshot function that refresh invokes (name or ARN).
pub const SNAPSHOT_FUNCTION_VAR: &str = "SNAPSHOT_FUNCTION";

/// What this function reads from its environment, once, at cold start.
#[derive(Debug)]
pub struct Settings {
    pub fleet: FleetSettings,
    pub snapshot_function: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            fleet: FleetSettings::from_vars(vars)?,
            snapshot_function: required(vars, SNAPSHOT_FUNCTION_VAR)?,
        })
    }
}

/// The schemas of what the inventory routes take and answer (`shared::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    views::EnvironmentView,
    views::ClusterView,
    views::StatsView,
    views::RefreshView,
    views::CacheCleared,
    images::ImagePlacement,
    shared::model::PodEvent,
)))]
pub struct Schemas;

/// The handlers' state: the read-side context, and the trigger that
/// starts a snapshot on demand (refresh).
pub type Deps = ApiState<Arc<dyn SnapshotTrigger>>;

/// The inventory routes over `context`, refreshing through `trigger`.
pub fn router(context: ApiContext, trigger: Arc<dyn SnapshotTrigger>) -> Router {
    use handlers::*;
    Router::new()
        .route("/environments", get(list_environments))
        .route(
            "/environments/{env}",
            get(get_environment).put(put_environment).delete(delete_environment),
        )
        .route("/environments/{env}/refresh", post(refresh_environment))
        .route("/environments/{env}/cache", delete(clear_cache))
        .route("/clusters", get(list_clusters))
        .route("/clusters/{cluster}", get(get_cluster))
        .route("/clusters/{cluster}/refresh", post(refresh_cluster))
        .route("/clusters/{cluster}/workloads", get(list_workloads))
        .route("/clusters/{cluster}/pods", get(list_pods))
        .route("/clusters/{cluster}/pods/history", get(pod_history))
        .route("/clusters/{cluster}/stats", get(cluster_stats))
        .route("/images", get(images::find_images))
        .with_state(Arc::new(Deps { context, own: trigger }))
}
