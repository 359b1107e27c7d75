//! Reading one cluster: lists in pages (500 by default) following
//! `continue`, starting a list over on 410 Gone, waiting out 429s a bounded
//! number of times, and folding each page into the model before asking for
//! the next, so memory grows with the normalised cluster, never with raw
//! objects.

use std::time::Duration;

use kube::api::ListParams;
use kube::core::Status;
use serde::de::DeserializeOwned;

use super::normalise::{self, Place, PodTally, ReplicaSetIndex};
use super::objects::{DaemonSet, List, Listing, Meta, Pod, ReplicaSet, ReplicatedWorkload};
use crate::config::Environment;
use crate::model::{PodRecord, Workload, keys};

/// Kubernetes' recommended page size for large lists.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

#[derive(Debug, Clone, Copy)]
pub struct ListPolicy {
    pub page_size: u32,
    /// Fresh starts after a 410 Gone, per list.
    pub max_restarts: u32,
    /// Waits after 429/503/504, per page.
    pub max_throttle_retries: u32,
    /// Longest wait on a server's `Retry-After` we accept.
    pub max_retry_wait: Duration,
}

impl Default for ListPolicy {
    fn default() -> Self {
        Self {
            page_size: DEFAULT_PAGE_SIZE,
            max_restarts: 3,
            max_throttle_retries: 3,
            max_retry_wait: Duration::from_secs(5),
        }
    }
}

/// Why reading a cluster failed, in the terms the status item records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 401: the token was refused (expired, revoked, unknown).
    Unauthorized,
    /// 403: authenticated but not allowed (RBAC, access entry).
    Forbidden,
    /// 429 (or 503/504) after our retries.
    Throttled,
    /// A call or the whole cluster took longer than allowed.
    Timeout,
    /// Connection refused, reset, TLS failure, DNS.
    Unreachable,
    /// 410 Gone kept coming back after restarts.
    Expired,
    /// Any other API answer, or an answer we could not read.
    ApiError,
    /// STS or EKS refused or failed (role, cluster lookup).
    Aws,
    /// The cluster's configuration cannot be used (bad CA, missing token).
    Config,
    /// Writing the snapshot failed.
    Store,
    /// Another snapshot of this cluster holds the lease.
    Busy,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::Throttled => "Throttled",
            Self::Timeout => "Timeout",
            Self::Unreachable => "Unreachable",
            Self::Expired => "Expired",
            Self::ApiError => "ApiError",
            Self::Aws => "Aws",
            Self::Config => "Config",
            Self::Store => "Store",
            Self::Busy => "Busy",
        }
    }
}

/// A failure with its kind and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct CollectError {
    pub kind: FailureKind,
    pub message: String,
    #[source]
    pub source: Option<crate::store::BoxError>,
}

impl CollectError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    pub fn with_source(mut self, source: impl Into<crate::store::BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Classifies a kube error. The message names the status and reason,
    /// never a token.
    pub fn from_kube(what: &str, err: kube::Error) -> Self {
        let (kind, message) = match &err {
            kube::Error::Api(status) => {
                (kind_of_status(status), format!("{what}: {} {}", status.code, status.reason))
            }
            other => {
                let timed_out = chain_mentions(other, &["timed out", "timeout", "deadline"]);
                let kind = if timed_out { FailureKind::Timeout } else { FailureKind::Unreachable };
                (kind, format!("{what}: {}", crate::http::error_chain(other)))
            }
        };
        Self::new(kind, message).with_source(err)
    }
}

fn kind_of_status(status: &Status) -> FailureKind {
    match status.code {
        401 => FailureKind::Unauthorized,
        403 => FailureKind::Forbidden,
        410 => FailureKind::Expired,
        429 | 503 | 504 => FailureKind::Throttled,
        _ => FailureKind::ApiError,
    }
}

fn chain_mentions(err: &(dyn std::error::Error + 'static), words: &[&str]) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        let text = e.to_string().to_lowercase();
        if words.iter().any(|w| text.contains(w)) {
            return true;
        }
        current = e.source();
    }
    false
}

/// What a list hands its consumer.
pub enum Listed<K> {
    Item(K),
    /// The list starts over after a 410 Gone: forget what this list
    /// delivered so far.
    Restart,
}

/// Lists every object at `path` matching `selector`, page by page, passing
/// each to `sink`. On 410 Gone the list starts over, as the API documents
/// (a continue token lives about five minutes).
pub async fn list_all<K, F>(
    client: &kube::Client,
    path: &str,
    selector: &str,
    policy: ListPolicy,
    mut sink: F,
) -> Result<(), CollectError>
where
    K: DeserializeOwned,
    F: FnMut(Listed<K>),
{
    let mut restarts = 0;
    'pass: loop {
        let mut continue_token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(policy.page_size);
            if !selector.is_empty() {
                params = params.labels(selector);
            }
            params.continue_token = continue_token.take();
            let page: List<K> = match list_page(client, path, &params, policy).await {
                Ok(page) => page,
                Err(err) if err.kind == FailureKind::Expired && restarts < policy.max_restarts => {
                    restarts += 1;
                    tracing::info!(
                        path,
                        restarts,
                        "continue token expired; listing again from the start"
                    );
                    sink(Listed::Restart);
                    continue 'pass;
                }
                Err(err) => return Err(err),
            };
            let next = page.metadata.continue_token.filter(|c| !c.is_empty());
            for item in page.items {
                sink(Listed::Item(item));
            }
            match next {
                Some(token) => continue_token = Some(token),
                None => return Ok(()),
            }
        }
    }
}

/// One page, waiting out throttling a bounded number of times.
async fn list_page<K>(
    client: &kube::Client,
    path: &str,
    params: &ListParams,
    policy: ListPolicy,
) -> Result<List<K>, CollectError>
where
    K: DeserializeOwned,
{
    let mut attempt = 0;
    loop {
        let request = kube::core::Request::new(path).list(params).map_err(|e| {
            CollectError::new(FailureKind::Config, "could not build a list request").with_source(e)
        })?;
        match client.request::<List<K>>(request).await {
            Ok(page) => return Ok(page),
            Err(err) => {
                let err = CollectError::from_kube(path, err);
                if err.kind != FailureKind::Throttled || attempt >= policy.max_throttle_retries {
                    return Err(err);
                }
                attempt += 1;
                // kube does not surface Retry-After on errors; back off
                // exponentially within the bound instead.
                let wait = Duration::from_millis(250 * (1 << attempt)).min(policy.max_retry_wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Everything one cluster holds, normalised.
#[derive(Debug, Default)]
pub struct ClusterSnapshot {
    pub workloads: Vec<Workload>,
    /// Pods are many and final once read: kept encoded (a few hundred bytes
    /// each) rather than as structs.
    pub pods: Vec<EncodedPod>,
    pub pod_phases: PhaseCounts,
    pub kubernetes_version: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseCounts {
    pub running: u32,
    pub pending: u32,
    pub failed: u32,
}

/// A pod record as stored: its sort key, JSON body and the body's fingerprint.
#[derive(Debug, Clone)]
pub struct EncodedPod {
    pub sk: String,
    pub fingerprint: String,
    pub body: Box<str>,
    pub phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Running,
    Pending,
    Failed,
    Other,
}

impl EncodedPod {
    fn new(pod: &PodRecord) -> Result<Self, CollectError> {
        let body = serde_json::to_string(pod).map_err(|e| {
            CollectError::new(FailureKind::Store, "could not encode a pod").with_source(e)
        })?;
        Ok(Self {
            sk: keys::pod_sk(&pod.namespace, &pod.name),
            fingerprint: super::persist::fingerprint_bytes(body.as_bytes()),
            body: body.into_boxed_str(),
            phase: match pod.phase.as_str() {
                "Running" => Phase::Running,
                "Pending" => Phase::Pending,
                "Failed" => Phase::Failed,
                _ => Phase::Other,
            },
        })
    }

    pub fn record(&self) -> Result<PodRecord, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// Reads one cluster as `environment` selects it.
pub async fn collect_cluster(
    client: kube::Client,
    environment: &Environment,
    place: &Place,
    policy: ListPolicy,
) -> Result<ClusterSnapshot, CollectError> {
    let version =
        client.apiserver_version().await.map_err(|e| CollectError::from_kube("/version", e))?;
    let selector = environment.label_selector.as_str();
    let namespaces = &environment.namespaces;
    // With an include list, ask per namespace; otherwise cluster-wide and
    // drop excluded namespaces here.
    let scopes: Vec<Option<String>> = if namespaces.include.is_empty() {
        vec![None]
    } else {
        namespaces.include.iter().map(|n| Some(n.to_string())).collect()
    };
    let allowed = |meta: &Meta| namespaces.allows(&meta.namespace);

    let mut snapshot = ClusterSnapshot {
        kubernetes_version: Some(format!(
            "{}.{}",
            version.major,
            version.minor.trim_end_matches('+')
        )),
        ..ClusterSnapshot::default()
    };
    let mut replica_sets = ReplicaSetIndex::default();
    let mut tally = PodTally::default();
    for scope in &scopes {
        // Adding a ReplicaSet twice is harmless, so a restart needs no undo.
        let path = Listing::ReplicaSets.path(scope.as_deref());
        list_all(&client, &path, selector, policy, |event: Listed<ReplicaSet>| {
            if let Listed::Item(rs) = event
                && allowed(&rs.metadata)
            {
                replica_sets.add(&rs);
            }
        })
        .await?;
    }
    for scope in &scopes {
        let pods = &mut snapshot.pods;
        let start = pods.len();
        let mut encoding: Result<(), CollectError> = Ok(());
        let path = Listing::Pods.path(scope.as_deref());
        list_all(&client, &path, selector, policy, |event: Listed<Pod>| match event {
            Listed::Item(pod) => {
                if allowed(&pod.metadata)
                    && let Some(record) = tally.add(&pod, &replica_sets)
                {
                    match EncodedPod::new(&record) {
                        Ok(encoded) => pods.push(encoded),
                        Err(err) => encoding = Err(err),
                    }
                }
            }
            Listed::Restart => {
                pods.truncate(start);
                tally.forget(scope.as_deref());
            }
        })
        .await?;
        encoding?;
    }
    // Counted from what was kept, so that a restarted list counts once.
    for pod in &snapshot.pods {
        match pod.phase {
            Phase::Running => snapshot.pod_phases.running += 1,
            Phase::Pending => snapshot.pod_phases.pending += 1,
            Phase::Failed => snapshot.pod_phases.failed += 1,
            Phase::Other => {}
        }
    }
    for scope in &scopes {
        let workloads = &mut snapshot.workloads;
        let start = workloads.len();
        let path = Listing::Deployments.path(scope.as_deref());
        list_all(
            &client,
            &path,
            selector,
            policy,
            |event: Listed<ReplicatedWorkload>| match event {
                Listed::Item(d) if allowed(&d.metadata) => {
                    workloads.extend(normalise::deployment(&d, place, &tally, &replica_sets));
                }
                Listed::Item(_) => {}
                Listed::Restart => workloads.truncate(start),
            },
        )
        .await?;
        let start = workloads.len();
        let path = Listing::StatefulSets.path(scope.as_deref());
        list_all(
            &client,
            &path,
            selector,
            policy,
            |event: Listed<ReplicatedWorkload>| match event {
                Listed::Item(s) if allowed(&s.metadata) => {
                    workloads.extend(normalise::stateful_set(&s, place, &tally))
                }
                Listed::Item(_) => {}
                Listed::Restart => workloads.truncate(start),
            },
        )
        .await?;
        let start = workloads.len();
        let path = Listing::DaemonSets.path(scope.as_deref());
        list_all(&client, &path, selector, policy, |event: Listed<DaemonSet>| match event {
            Listed::Item(d) if allowed(&d.metadata) => {
                workloads.extend(normalise::daemon_set(&d, place, &tally))
            }
            Listed::Item(_) => {}
            Listed::Restart => workloads.truncate(start),
        })
        .await?;
    }
    Ok(snapshot)
}
