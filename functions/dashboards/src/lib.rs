//! The dashboards API: service × environment version matrices, compare,
//! history, the web page. Handlers are plain functions over the ports in
//! `shared`; the Lambda `main` and the local server both serve [`router`].

mod assemble;
pub mod cache;
pub mod compare;
pub mod csv;
pub mod handlers;
pub mod history;
pub mod load;
pub mod matrix;
pub mod page;
pub mod policies;
pub mod timeline;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use shared::config::ConfigError;
use shared::context::{ApiContext, ApiState};
use shared::settings::{FleetSettings, Lookup, history_ttl, process_env};

/// What this function reads from its environment, once, at cold start:
/// dashboards are part of the fleet configuration, and history goes back
/// as far as the snapshot function keeps it.
#[derive(Debug)]
pub struct Settings {
    pub fleet: FleetSettings,
    pub history_retention: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        Ok(Self { fleet: FleetSettings::from_vars(vars)?, history_retention: history_ttl(vars)? })
    }
}

/// The schemas of what the dashboards routes answer (`shared::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    handlers::DashboardView,
    handlers::MatrixPage,
    handlers::ComparePage,
    handlers::DiffPage,
    handlers::PolicyPage,
    handlers::ServiceView,
)))]
pub struct Schemas;

/// The handlers' state: the read-side context, and this function's cache
/// of computed matrices.
pub type Deps = ApiState<cache::MatrixCache>;

pub fn router(context: ApiContext) -> Router {
    use handlers::*;
    Router::new()
        .route("/dashboards", get(list_dashboards))
        .route("/dashboards/{name}", get(get_dashboard))
        .route("/dashboards/{name}/compare", get(compare))
        .route("/dashboards/{name}/diff", get(diff))
        .route("/dashboards/{name}/policies", get(get_policies))
        .route("/dashboards/{name}/services/{service}", get(get_service))
        .route("/history", get(list_history))
        .route("/openapi.json", get(openapi))
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .with_state(Arc::new(Deps { context, own: cache::MatrixCache::default() }))
}
