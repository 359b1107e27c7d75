//! The dashboards API: service × environment version matrices, compare, history, the web page.
//! Handlers are plain functions over the ports in `shared`; the Lambda
//! `main` and the local server both serve [`router`].

use std::sync::Arc;

use axum::Router;
use shared::config::FleetConfig;
use shared::store::Store;

/// What this function reads from its environment, once, at cold start:
/// dashboards are part of the fleet configuration.
pub type Settings = shared::settings::FleetSettings;

/// The ports the handlers use.
pub struct Deps {
    pub fleet: Arc<FleetConfig>,
    pub store: Arc<dyn Store>,
}

/// No routes yet: the inventory/dashboards issue fills this router.
pub fn router(deps: Deps) -> Router {
    Router::new().with_state(Arc::new(deps))
}
