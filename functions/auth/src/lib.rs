//! The auth API: signup, email verification, login, sessions, password reset.
//! Handlers are plain functions over the ports in `shared`; the Lambda
//! `main` and the local server both serve [`router`].

pub mod codes;
pub mod limits;
pub mod password;
pub mod secrets;

use std::sync::Arc;

use axum::Router;
use shared::store::Store;

/// What this function reads from its environment, once, at cold start.
pub type Settings = shared::settings::StoreSettings;

/// The ports the handlers use.
pub struct Deps {
    pub store: Arc<dyn Store>,
}

/// No routes yet: the auth issue fills this router.
pub fn router(deps: Deps) -> Router {
    Router::new().with_state(Arc::new(deps))
}
