//! What every read-side handler (inventory, dashboards) gets: the ports
//! (fleet, store, clock, the cached cluster reader, who is asking), and
//! team scoping (which environments a caller may see).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::auth::{Authenticator, HasAuthenticator, Principal};
use crate::clock::Clock;
use crate::config::{Cluster, Environment, FleetConfig};
use crate::fleet::FleetSource;
use crate::http::ApiError;
use crate::reader::SnapshotReader;
use crate::records::session::SessionLifetimes;
use crate::store::Store;

/// The ports every read-side handler uses.
pub struct ApiContext {
    pub fleet: Arc<FleetSource>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Cluster data cached across requests for as long as it is current.
    pub snapshots: SnapshotReader,
    /// How far back history goes (the snapshot function's `HISTORY_TTL`).
    pub history_retention: Duration,
    authenticator: Authenticator,
}

impl std::fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiContext").finish_non_exhaustive()
    }
}

impl HasAuthenticator for ApiContext {
    fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }
}

impl ApiContext {
    pub fn new(fleet: Arc<FleetSource>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        let authenticator =
            Authenticator::new(store.clone(), clock.clone(), SessionLifetimes::default());
        Self {
            fleet,
            store,
            clock,
            snapshots: SnapshotReader::new(),
            history_retention: crate::settings::DEFAULT_HISTORY_TTL,
            authenticator,
        }
    }

    pub fn with_history_retention(mut self, retention: Duration) -> Self {
        self.history_retention = retention;
        self
    }

    pub async fn fleet(&self) -> Result<Arc<FleetConfig>, ApiError> {
        Ok(self.fleet.current().await?)
    }

    /// The environment, if it exists and `principal` may see it; otherwise
    /// 404 either way, so that names of hidden environments do not leak.
    pub async fn environment(
        &self,
        principal: &Principal,
        name: &str,
    ) -> Result<(Arc<FleetConfig>, usize), ApiError> {
        let fleet = self.fleet().await?;
        match fleet.environments.iter().position(|e| e.name.as_str() == name) {
            Some(i) if principal.can_see(&fleet.environments[i]) => Ok((fleet, i)),
            _ => Err(ApiError::not_found("environment")),
        }
    }

    /// The cluster and its environment, under the same rule.
    pub async fn cluster(&self, principal: &Principal, name: &str) -> Result<Located, ApiError> {
        let fleet = self.fleet().await?;
        for (e, environment) in fleet.environments.iter().enumerate() {
            if let Some(c) = environment.clusters.iter().position(|c| c.name.as_str() == name)
                && principal.can_see(environment)
            {
                return Ok(Located { fleet, environment: e, cluster: c });
            }
        }
        Err(ApiError::not_found("cluster"))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// A cluster found in the configuration.
#[derive(Debug, Clone)]
pub struct Located {
    pub fleet: Arc<FleetConfig>,
    environment: usize,
    cluster: usize,
}

impl Located {
    pub fn environment(&self) -> &Environment {
        &self.fleet.environments[self.environment]
    }

    pub fn cluster(&self) -> &Cluster {
        &self.environment().clusters[self.cluster]
    }
}

/// The environments `principal` may see, in configuration order.
pub fn visible<'a>(
    fleet: &'a FleetConfig,
    principal: &'a Principal,
) -> impl Iterator<Item = &'a Environment> + 'a {
    fleet.environments.iter().filter(move |e| principal.can_see(e))
}

/// A read-side function's router state: the context every handler gets,
/// and what that function alone needs (`own`: inventory's refresh
/// trigger, dashboards' matrix cache).
pub struct ApiState<T> {
    pub context: ApiContext,
    pub own: T,
}

impl<T> std::ops::Deref for ApiState<T> {
    type Target = ApiContext;

    fn deref(&self) -> &ApiContext {
        &self.context
    }
}

impl<T: Send + Sync> HasAuthenticator for ApiState<T> {
    fn authenticator(&self) -> &Authenticator {
        self.context.authenticator()
    }
}
