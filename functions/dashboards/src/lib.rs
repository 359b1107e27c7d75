//! The dashboards API: service × environment version matrices, compare,
//! history, the web page. Handlers are plain functions over the ports in
//! `shared`; the Lambda `main` and the local server both serve [`router`].

pub mod matrix;

use std::sync::Arc;

use axum::Router;
use shared::auth::{Authenticator, HasAuthenticator};
use shared::view::ApiContext;

/// What this function reads from its environment, once, at cold start:
/// dashboards are part of the fleet configuration.
pub type Settings = shared::settings::FleetSettings;

/// The ports the handlers use.
pub struct Deps {
    pub context: ApiContext,
}

impl std::ops::Deref for Deps {
    type Target = ApiContext;

    fn deref(&self) -> &ApiContext {
        &self.context
    }
}

impl HasAuthenticator for Deps {
    fn authenticator(&self) -> &Authenticator {
        self.context.authenticator()
    }
}

pub fn router(deps: Deps) -> Router {
    Router::new().with_state(Arc::new(deps))
}
