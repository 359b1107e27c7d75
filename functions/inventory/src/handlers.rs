//! The inventory routes. Every route is scoped to the environments the
//! caller's teams may see: anything else is a 404, as if it did not exist.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures::future::try_join_all;
use serde::Deserialize;
use serde_json::Value;
use shared::auth::{Admin, Authenticated};
use shared::config::Environment;
use shared::context::visible;
use shared::fleet::{put_environment as put_env_doc, remove_environment};
use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use shared::labels::LabelSelector;
use shared::model::{Counts, PodEvent, PodRecord, SnapshotRequest, Workload, WorkloadKind};
use shared::paging::{Paged, Paging, page};
use shared::params;
use shared::records::limit_window::Admission;
use shared::records::refresh_claim;
use shared::records::{self, cluster_snapshot, cluster_status, pod, pod_event, workload};
use shared::refresh::REFRESH_WINDOW;
use shared::store::{Cursor, Query, Stored};

use crate::Deps;
use crate::views::{CacheCleared, ClusterView, EnvironmentView, RefreshView, StatsView, Throttled};

type AppState = State<Arc<Deps>>;

async fn cluster_views(
    deps: &Deps,
    environment: &Environment,
) -> Result<Vec<ClusterView>, ApiError> {
    let now = deps.now();
    let statuses = try_join_all(
        environment
            .clusters
            .iter()
            .map(|c| cluster_status::read(deps.store.as_ref(), c.name.as_str())),
    )
    .await?;
    Ok(environment
        .clusters
        .iter()
        .zip(statuses)
        .map(|(cluster, status)| {
            ClusterView::new(environment, cluster, status.map(|(s, _)| s), now)
        })
        .collect())
}

async fn environment_view(
    deps: &Deps,
    environment: &Environment,
) -> Result<EnvironmentView, ApiError> {
    let clusters = cluster_views(deps, environment).await?;
    Ok(EnvironmentView::new(environment, clusters, deps.now()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list_environments(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Paged<EnvironmentView>>, ApiError> {
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = deps.fleet().await?;
    let mut environments: Vec<&Environment> = visible(&fleet, &principal).collect();
    environments.sort_by(|a, b| a.name.cmp(&b.name));
    let chosen = page(environments, |e| e.name.to_string(), &paging)?;
    let items = try_join_all(chosen.items.into_iter().map(|e| environment_view(&deps, e))).await?;
    Ok(Json(Paged { items, next: chosen.next }))
}

pub async fn get_environment(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<EnvironmentView>, ApiError> {
    let (fleet, i) = deps.environment(&principal, &name).await?;
    Ok(Json(environment_view(&deps, &fleet.environments[i]).await?))
}

/// Admins: adds or replaces an environment. The body is an environment as
/// the configuration file writes it; the whole configuration is validated
/// as the file is, and nothing is stored if it does not pass.
pub async fn put_environment(
    State(deps): AppState,
    Admin(admin): Admin,
    ApiPath(name): ApiPath<String>,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
    };
    match object.get("name") {
        None => {
            object.insert("name".into(), Value::String(name.clone()));
        }
        Some(given) if given.as_str() == Some(name.as_str()) => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "name: must be the environment named in the path",
            ));
        }
    }
    let existed = deps.fleet().await?.environment(&name).is_some();
    let fleet = deps.fleet.update(|doc| put_env_doc(doc, body.clone())).await?;
    let environment = fleet
        .environment(&name)
        .ok_or_else(|| ApiError::internal("stored environment vanished"))?;
    tracing::info!(admin = %admin.email.masked(), environment = %name, "environment stored");
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(environment_view(&deps, environment).await?)))
}

/// Admins: removes an environment from the configuration (its snapshot data
/// ages out by TTL, or goes at once with the cache route). Refused while a
/// dashboard names it as a column.
pub async fn delete_environment(
    State(deps): AppState,
    Admin(admin): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if deps.fleet().await?.environment(&name).is_none() {
        return Err(ApiError::not_found("environment"));
    }
    deps.fleet.update(|doc| remove_environment(doc, &name).map(drop)).await?;
    tracing::info!(admin = %admin.email.masked(), environment = %name, "environment removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClustersQuery {
    environment: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn list_clusters(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ClustersQuery>,
) -> Result<Json<Paged<ClusterView>>, ApiError> {
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = deps.fleet().await?;
    let mut clusters: Vec<_> = visible(&fleet, &principal)
        .filter(|e| query.environment.as_deref().is_none_or(|name| e.name.as_str() == name))
        .flat_map(|e| e.clusters.iter().map(move |c| (e, c)))
        .collect();
    clusters.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let chosen = page(clusters, |(_, c)| c.name.to_string(), &paging)?;
    let now = deps.now();
    let statuses = try_join_all(
        chosen
            .items
            .iter()
            .map(|(_, c)| cluster_status::read(deps.store.as_ref(), c.name.as_str())),
    )
    .await?;
    let items = chosen
        .items
        .iter()
        .zip(statuses)
        .map(|((e, c), status)| ClusterView::new(e, c, status.map(|(s, _)| s), now))
        .collect();
    Ok(Json(Paged { items, next: chosen.next }))
}

pub async fn get_cluster(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ClusterView>, ApiError> {
    let located = deps.cluster(&principal, &name).await?;
    let status = cluster_status::read(deps.store.as_ref(), &name).await?.map(|(s, _)| s);
    Ok(Json(ClusterView::new(located.environment(), located.cluster(), status, deps.now())))
}

/// Reads a partition's items in order from the request's cursor, keeping
/// those `keep` accepts, until a page is full: filters never shorten a page
/// (unless the list ends), and the next cursor points after the last item
/// returned.
async fn filtered_page<T>(
    deps: &Deps,
    base: Query,
    paging: &Paging,
    mut keep: impl FnMut(&Stored) -> Result<Option<T>, ApiError>,
) -> Result<Paged<T>, ApiError> {
    let mut items = Vec::new();
    let mut cursor = paging.cursor.clone().map(Cursor::from_client);
    let limit = paging.limit as usize;
    loop {
        let query = base.clone().limit(250).after(cursor);
        let found = deps.store.query(query).await?;
        let count = found.items.len();
        for (i, stored) in found.items.iter().enumerate() {
            if let Some(item) = keep(stored)? {
                items.push(item);
                if items.len() == limit {
                    let more = i + 1 < count || found.next.is_some();
                    let next = more.then(|| Cursor::after(&stored.item.key).as_str().to_owned());
                    return Ok(Paged { items, next });
                }
            }
        }
        match found.next {
            Some(next) => cursor = Some(next),
            None => return Ok(Paged { items, next: None }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadsQuery {
    namespace: Option<String>,
    kind: Option<String>,
    label: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn kind_param(kind: Option<String>) -> Result<Option<WorkloadKind>, ApiError> {
    let Some(kind) = kind.filter(|k| !k.is_empty()) else { return Ok(None) };
    [WorkloadKind::Deployment, WorkloadKind::StatefulSet, WorkloadKind::DaemonSet]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(&kind))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_parameter("kind", "must be Deployment, StatefulSet or DaemonSet")
        })
}

/// Whether the workload's name, service, version or an image contains `q`.
fn workload_matches(workload: &Workload, q: &str) -> bool {
    workload.name.to_lowercase().contains(q)
        || workload.service.to_lowercase().contains(q)
        || workload.version.to_lowercase().contains(q)
        || workload.images.iter().any(|c| c.image.to_string().to_lowercase().contains(q))
}

pub async fn list_workloads(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(cluster): ApiPath<String>,
    ApiQuery(query): ApiQuery<WorkloadsQuery>,
) -> Result<Json<Paged<Workload>>, ApiError> {
    let namespace = params::namespace(query.namespace)?;
    let kind = kind_param(query.kind)?;
    let label = query
        .label
        .filter(|l| !l.is_empty())
        .map(|l| LabelSelector::parse(&l).map_err(|e| ApiError::invalid_parameter("label", e.rule)))
        .transpose()?;
    let q = params::search(query.q)?;
    let paging = Paging::new(query.limit, query.cursor)?;
    deps.cluster(&principal, &cluster).await?;
    let page =
        filtered_page(&deps, workload::query(&cluster, namespace.as_ref()), &paging, |stored| {
            let workload: Workload = records::decode(stored)?;
            let keep = kind.is_none_or(|k| workload.kind == k)
                && label.as_ref().is_none_or(|l| l.matches(&workload.labels))
                && q.as_deref().is_none_or(|q| workload_matches(&workload, q));
            Ok(keep.then_some(workload))
        })
        .await?;
    Ok(Json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodsQuery {
    namespace: Option<String>,
    phase: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

const PHASES: [&str; 5] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

pub async fn list_pods(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(cluster): ApiPath<String>,
    ApiQuery(query): ApiQuery<PodsQuery>,
) -> Result<Json<Paged<PodRecord>>, ApiError> {
    let namespace = params::namespace(query.namespace)?;
    let phase = match query.phase.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(
            PHASES.into_iter().find(|known| known.eq_ignore_ascii_case(&p)).ok_or_else(|| {
                ApiError::invalid_parameter(
                    "phase",
                    "must be Pending, Running, Succeeded, Failed or Unknown",
                )
            })?,
        ),
    };
    let paging = Paging::new(query.limit, query.cursor)?;
    deps.cluster(&principal, &cluster).await?;
    let base = pod::query(&cluster, namespace.as_ref());
    let page = filtered_page(&deps, base, &paging, |stored| {
        let pod: PodRecord = records::decode(stored)?;
        Ok(phase.is_none_or(|p| pod.phase == p).then_some(pod))
    })
    .await?;
    Ok(Json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodHistoryQuery {
    namespace: Option<String>,
    pod: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A cluster's pod changes (created, phase, node, restarts, deleted),
/// newest first, to those who may see the cluster.
pub async fn pod_history(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(cluster): ApiPath<String>,
    ApiQuery(query): ApiQuery<PodHistoryQuery>,
) -> Result<Json<Paged<PodEvent>>, ApiError> {
    let namespace = params::namespace(query.namespace)?;
    let pod = match query.pod.filter(|p| !p.is_empty()) {
        Some(p) if p.len() > 253 => {
            return Err(ApiError::invalid_parameter("pod", "must be at most 253 characters"));
        }
        other => other,
    };
    let time = |name: &str, value: Option<String>| -> Result<Option<jiff::Timestamp>, ApiError> {
        value
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse().map_err(|_| ApiError::invalid_parameter(name, "must be an RFC 3339 time"))
            })
            .transpose()
    };
    let since = time("since", query.since)?;
    let until = time("until", query.until)?;
    let paging = Paging::new(query.limit, query.cursor)?;
    deps.cluster(&principal, &cluster).await?;
    let base = pod_event::between(&cluster, since, until);
    let page = filtered_page(&deps, base, &paging, |stored| {
        let event: PodEvent = records::decode(stored)?;
        let keep = namespace.as_ref().is_none_or(|ns| event.namespace == ns.as_str())
            && pod.as_ref().is_none_or(|p| event.pod == *p);
        Ok(keep.then_some(event))
    })
    .await?;
    Ok(Json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    namespace: Option<String>,
}

/// Workloads and pods by phase: the last snapshot's counts, or counted
/// over one namespace.
pub async fn cluster_stats(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(cluster): ApiPath<String>,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<Json<StatsView>, ApiError> {
    let namespace = params::namespace(query.namespace)?;
    deps.cluster(&principal, &cluster).await?;
    let counts = match &namespace {
        None => cluster_status::read(deps.store.as_ref(), &cluster)
            .await?
            .map(|(s, _)| s.counts)
            .unwrap_or_default(),
        Some(ns) => {
            let mut counts = Counts::default();
            let all = Paging::new(Some(shared::paging::MAX_LIMIT), None)?;
            let mut paging = all.clone();
            loop {
                let wl = filtered_page(&deps, workload::query(&cluster, Some(ns)), &paging, |_| {
                    Ok(Some(()))
                })
                .await?;
                counts.workloads += wl.items.len() as u32;
                match wl.next {
                    Some(next) => paging.cursor = Some(next),
                    None => break,
                }
            }
            let mut paging = all;
            loop {
                let pods =
                    filtered_page(&deps, pod::query(&cluster, Some(ns)), &paging, |stored| {
                        Ok(Some(records::decode::<PodRecord>(stored)?))
                    })
                    .await?;
                for pod in &pods.items {
                    counts.pods += 1;
                    match pod.phase.as_str() {
                        "Running" => counts.running += 1,
                        "Pending" => counts.pending += 1,
                        "Failed" => counts.failed += 1,
                        _ => {}
                    }
                }
                match pods.next {
                    Some(next) => paging.cursor = Some(next),
                    None => break,
                }
            }
            counts
        }
    };
    Ok(Json(StatsView {
        cluster,
        namespace: namespace.map(|n| n.to_string()),
        workloads: counts.workloads,
        pods: counts.pods,
        running: counts.running,
        pending: counts.pending,
        failed: counts.failed,
    }))
}

/// Starts a snapshot of each cluster whose refresh window is free.
async fn refresh(
    deps: &Deps,
    clusters: Vec<String>,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let now = deps.now();
    let mut started = Vec::new();
    let mut throttled = Vec::new();
    for cluster in clusters {
        match refresh_claim::claim(deps.store.as_ref(), &cluster, REFRESH_WINDOW, now).await? {
            Admission::Refused { retry_after } => {
                throttled.push(Throttled { cluster, retry_after_seconds: retry_after.as_secs() })
            }
            Admission::Admitted { .. } => {
                let request =
                    SnapshotRequest::cluster(cluster.parse().map_err(ApiError::internal)?);
                if let Err(err) = deps.own.start(request).await {
                    // Free the window again: nothing was started.
                    let _ = refresh_claim::release(deps.store.as_ref(), &cluster).await;
                    return Err(ApiError::Unavailable(err));
                }
                started.push(cluster);
            }
        }
    }
    if started.is_empty() {
        let wait = throttled.iter().map(|t| t.retry_after_seconds).min().unwrap_or(30);
        return Err(ApiError::TooManyRequests {
            retry_after: std::time::Duration::from_secs(wait),
        });
    }
    Ok((StatusCode::ACCEPTED, Json(RefreshView { started, throttled })))
}

pub async fn refresh_cluster(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(cluster): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    deps.cluster(&principal, &cluster).await?;
    refresh(&deps, vec![cluster]).await
}

pub async fn refresh_environment(
    State(deps): AppState,
    Authenticated(principal): Authenticated,
    ApiPath(name): ApiPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let (fleet, i) = deps.environment(&principal, &name).await?;
    let clusters = fleet.environments[i].clusters.iter().map(|c| c.name.to_string()).collect();
    refresh(&deps, clusters).await
}

/// Admins: deletes an environment's snapshot data (workloads, pods, status)
/// so that the next snapshot starts clean. History stays.
pub async fn clear_cache(
    State(deps): AppState,
    Admin(admin): Admin,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<CacheCleared>, ApiError> {
    let (fleet, i) = deps.environment(&admin, &name).await?;
    let mut deleted = 0usize;
    for cluster in &fleet.environments[i].clusters {
        deleted += cluster_snapshot::clear(deps.store.as_ref(), cluster.name.as_str()).await?;
    }
    tracing::info!(admin = %admin.email.masked(), environment = %name, deleted, "cache cleared");
    Ok(Json(CacheCleared { environment: name, deleted_items: deleted }))
}
