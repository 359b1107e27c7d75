//! The dashboards API: service × environment version matrices, compare,
//! history, the web page. Handlers are plain functions over the ports in
//! `shared`; the Lambda `main` and the local server both serve [`router`].

pub mod matrix;

use std::sync::Arc;

use axum::Router;
use shared::view::ApiContext;

/// What this function reads from its environment, once, at cold start:
/// dashboards are part of the fleet configuration.
pub type Settings = shared::settings::FleetSettings;

/// The handlers need only the read-side context every API function shares.
pub fn router(context: ApiContext) -> Router {
    Router::new().with_state(Arc::new(context))
}
