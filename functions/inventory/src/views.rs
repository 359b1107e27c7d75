//! What the inventory answers: environments and clusters as configured,
//! with their status and freshness. Nothing secret is in the configuration
//! (tokens are named, never given), and these views show even less.

use jiff::Timestamp;
use serde::Serialize;
use shared::config::{Cluster, ClusterAccess, Environment, NamespaceFilter};
use shared::freshness::Freshness;
use shared::model::{ClusterError, ClusterStatus, Counts, SkippedObject};

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum AccessView {
    #[serde(rename_all = "camelCase")]
    Eks {
        region: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        role_arn: Option<String>,
    },
    Direct {
        endpoint: String,
    },
    Kubeconfig {
        context: String,
    },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub name: String,
    pub environment: String,
    pub access: AccessView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ClusterError>,
    pub counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    pub freshness: Freshness,
    /// Objects the last good snapshot could not store.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedObject>,
}

impl ClusterView {
    pub fn new(
        environment: &Environment,
        cluster: &Cluster,
        status: Option<ClusterStatus>,
        now: Timestamp,
    ) -> Self {
        let freshness = Freshness::of(status.as_ref(), environment.refresh_interval, now);
        let access = match &cluster.access {
            ClusterAccess::Eks { region, assume_role } => AccessView::Eks {
                region: region.to_string(),
                role_arn: assume_role.as_ref().map(|r| r.role_arn.to_string()),
            },
            ClusterAccess::Direct { endpoint, .. } => {
                AccessView::Direct { endpoint: endpoint.to_string() }
            }
            ClusterAccess::Kubeconfig { context } => {
                AccessView::Kubeconfig { context: context.clone() }
            }
        };
        let status = status
            .unwrap_or_else(|| ClusterStatus::new(cluster.name.clone(), environment.name.clone()));
        Self {
            name: cluster.name.to_string(),
            environment: environment.name.to_string(),
            access,
            last_attempt: status.last_attempt,
            last_success: status.last_success,
            last_error: status.last_error,
            counts: status.counts,
            kubernetes_version: status.kubernetes_version,
            duration_ms: status.duration_ms,
            freshness,
            skipped: status.skipped,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    pub name: String,
    pub refresh_interval_seconds: u64,
    pub snapshot_ttl_seconds: u64,
    pub label_selector: String,
    pub namespaces: NamespaceFilter,
    pub teams: Vec<String>,
    /// The worst of its clusters'.
    pub freshness: Freshness,
    pub clusters: Vec<ClusterView>,
}

impl EnvironmentView {
    pub fn new(environment: &Environment, clusters: Vec<ClusterView>, now: Timestamp) -> Self {
        let freshness = clusters
            .iter()
            .map(|c| c.freshness.clone())
            .reduce(Freshness::worst)
            .unwrap_or_else(|| Freshness::of(None, environment.refresh_interval, now));
        Self {
            name: environment.name.to_string(),
            refresh_interval_seconds: environment.refresh_interval.as_secs(),
            snapshot_ttl_seconds: environment.snapshot_ttl.as_secs(),
            label_selector: environment.label_selector.to_string(),
            namespaces: environment.namespaces.clone(),
            teams: environment.teams.iter().map(ToString::to_string).collect(),
            freshness,
            clusters,
        }
    }
}

/// A cluster's workloads and pods by phase.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    pub cluster: String,
    /// The namespace counted; absent: the whole cluster (its last snapshot's counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub workloads: u32,
    pub pods: u32,
    pub running: u32,
    pub pending: u32,
    pub failed: u32,
}

/// What a refresh started, and what it could not start yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshView {
    pub started: Vec<String>,
    pub throttled: Vec<Throttled>,
}

/// A cluster refreshed too recently.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Throttled {
    pub cluster: String,
    pub retry_after_seconds: u64,
}

/// What clearing an environment's snapshot data deleted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheCleared {
    pub environment: String,
    pub deleted_items: usize,
}
