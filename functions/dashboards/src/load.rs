//! Reading a dashboard's data: its visible columns, each column's clusters
//! (one status read each, and one partition query only when the cluster
//! has a newer snapshot than this process last read), the workloads the
//! dashboard selects, and which versions each column ever ran.

use std::sync::Arc;

use futures::future::try_join_all;
use jiff::Timestamp;
use shared::auth::Principal;
use shared::config::{Dashboard, Environment, FleetConfig};
use shared::context::ApiContext;
use shared::freshness::Freshness;
use shared::http::ApiError;
use shared::model::Workload;
use shared::reader::ClusterRead;

use crate::matrix::{ClusterData, ColumnData, Sightings};

/// A dashboard as one principal may see it: hidden environments are not
/// columns, and a dashboard with no column left does not exist for them.
pub struct Visible<'a> {
    pub dashboard: &'a Dashboard,
    pub columns: Vec<&'a Environment>,
}

pub fn dashboard<'a>(
    fleet: &'a FleetConfig,
    principal: &Principal,
    name: &str,
) -> Result<Visible<'a>, ApiError> {
    fleet
        .dashboards
        .iter()
        .find(|d| d.name.as_str() == name)
        .map(|d| visible(fleet, principal, d))
        .filter(|v| !v.columns.is_empty())
        .ok_or_else(|| ApiError::not_found("dashboard"))
}

pub fn visible<'a>(
    fleet: &'a FleetConfig,
    principal: &Principal,
    dashboard: &'a Dashboard,
) -> Visible<'a> {
    let columns = dashboard
        .columns
        .iter()
        .filter_map(|name| fleet.environment(name.as_str()))
        .filter(|e| principal.can_see(e))
        .collect();
    Visible { dashboard, columns }
}

impl Visible<'_> {
    /// The index of the column named `name`, or a 400 naming `parameter`.
    pub fn column(&self, parameter: &str, name: &str) -> Result<usize, ApiError> {
        self.columns.iter().position(|e| e.name.as_str() == name).ok_or_else(|| {
            ApiError::invalid_parameter(parameter, "not an environment of this dashboard")
        })
    }
}

/// Every cluster of every visible column, read at once.
pub async fn read(
    context: &ApiContext,
    visible: &Visible<'_>,
) -> Result<Vec<Vec<ClusterRead>>, ApiError> {
    let reads =
        visible.columns.iter().map(|environment| {
            try_join_all(environment.clusters.iter().map(|cluster| {
                context.snapshots.read(context.store.as_ref(), cluster.name.as_str())
            }))
        });
    Ok(try_join_all(reads).await?)
}

/// Which versions each column ran, as first seen no later than `until`.
pub fn sightings(visible: &Visible<'_>, reads: &[Vec<ClusterRead>], until: Timestamp) -> Sightings {
    let mut sightings = Sightings::default();
    for (environment, clusters) in visible.columns.iter().zip(reads) {
        for read in clusters {
            let seen = read
                .data
                .seen
                .iter()
                .filter(|seen| seen.first_seen <= until)
                .map(|seen| (seen.service.as_str(), seen.version.as_str(), seen.first_seen));
            sightings.record_cluster(environment.name.as_str(), seen);
        }
    }
    sightings
}

/// The matrix's input: per column and cluster, its freshness and the
/// workloads `workloads(column, cluster)` gives (the current ones or a
/// rebuilt past, filtered by the dashboard's selector and the request).
pub fn columns(
    context: &ApiContext,
    visible: &Visible<'_>,
    reads: &[Vec<ClusterRead>],
    workloads: impl Fn(usize, usize) -> Vec<Arc<Workload>>,
) -> Vec<ColumnData> {
    let now = context.now();
    visible
        .columns
        .iter()
        .zip(reads)
        .enumerate()
        .map(|(c, (environment, clusters))| ColumnData {
            environment: environment.name.as_str().to_owned(),
            clusters: environment
                .clusters
                .iter()
                .zip(clusters)
                .enumerate()
                .map(|(k, (cluster, read))| ClusterData {
                    name: cluster.name.as_str().to_owned(),
                    freshness: Freshness::of(
                        read.status.as_ref(),
                        environment.refresh_interval,
                        now,
                    ),
                    workloads: workloads(c, k),
                })
                .collect(),
        })
        .collect()
}
