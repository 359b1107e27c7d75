//! Reading one cluster: lists in pages (500 by default) following
//! `continue`, starting a list over on 410 Gone, waiting out 429s a bounded
//! number of times, and folding each page into the model while the next
//! one is fetched (two pages at most), so memory grows with the normalised
//! cluster, never with raw objects.

use std::time::Duration;

use kube::api::ListParams;
use kube::core::Status;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::{CollectError, FailureKind};
use crate::normalise::{self, Chosen, Place, PodTally, ReplicaSetIndex};
use crate::objects::{
    DaemonSet, HasMeta, List, ListMeta, Listing, Meta, Named, Pod, ReplicaSet, ReplicatedWorkload,
};
use shared::config::{Environment, NamespaceFilter};
use shared::model::WorkloadKind;
use shared::model::{PodRecord, Workload};

/// Kubernetes' recommended page size for large lists.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// The largest list page read by default (a page of 500 real pods is
/// 3–4 MB).
pub const MAX_PAGE_BYTES: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct ListPolicy {
    pub page_size: u32,
    /// Fresh starts after a 410 Gone, per list.
    pub max_restarts: u32,
    /// Waits after 429/503/504, per page.
    pub max_throttle_retries: u32,
    /// Longest wait on a server's `Retry-After` we accept.
    pub max_retry_wait: Duration,
    /// The largest page read: a server that sends more fails the cluster's
    /// snapshot instead of the function's memory.
    pub max_page_bytes: usize,
}

impl Default for ListPolicy {
    fn default() -> Self {
        Self {
            page_size: DEFAULT_PAGE_SIZE,
            max_restarts: 3,
            max_throttle_retries: 3,
            max_retry_wait: Duration::from_secs(5),
            max_page_bytes: MAX_PAGE_BYTES,
        }
    }
}

/// What a list yields.
pub enum Listed<K> {
    Page(Vec<K>),
    /// The list starts over after a 410 Gone: what it yielded so far will
    /// be yielded again.
    Restarted,
}

/// Lists every object at `path` matching `selector`, a page at a time. On
/// 410 Gone the list starts over, as the API documents (a continue token
/// lives about five minutes).
///
/// The next page is fetched and decoded (on another worker, where the
/// runtime has one) while the caller works on the last, and asked for as
/// soon as the page before it has arrived (its front says where the next
/// starts), not once it is decoded: the API server's and the network's time
/// overlap ours, and at most two pages are held (one being decoded, one
/// arriving).
pub struct Lister<'a, K> {
    client: &'a kube::Client,
    path: String,
    selector: &'a str,
    policy: ListPolicy,
    /// Ask for metadata only (`PartialObjectMetadataList`).
    metadata_only: bool,
    next_page: Option<PageTask<K>>,
    restarts: u32,
    done: bool,
}

impl<'a, K: DeserializeOwned + Send + 'static> Lister<'a, K> {
    pub fn new(
        client: &'a kube::Client,
        path: String,
        selector: &'a str,
        policy: ListPolicy,
    ) -> Self {
        Self {
            client,
            path,
            selector,
            policy,
            metadata_only: false,
            next_page: None,
            restarts: 0,
            done: false,
        }
    }

    /// Lists metadata only: `K` must need nothing else.
    pub fn metadata_only(mut self) -> Self {
        self.metadata_only = true;
        self
    }

    /// The next page, `Restarted` after a 410, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Listed<K>>, CollectError> {
        if self.done {
            return Ok(None);
        }
        let mut pending = match self.next_page.take() {
            Some(pending) => pending,
            None => self.fetch(None),
        };
        // Where the page says where the next one starts before its items,
        // the next one is asked for while this one is decoded.
        let early = pending.continue_token().await;
        if let Some(token) = &early {
            self.follow(token.clone());
        }
        match pending.wait().await {
            Ok(page) => {
                if early.is_none() {
                    self.follow(page.metadata.continue_token);
                }
                Ok(Some(Listed::Page(page.items)))
            }
            Err(err)
                if err.kind == FailureKind::Expired && self.restarts < self.policy.max_restarts =>
            {
                self.restarts += 1;
                (self.next_page, self.done) = (None, false);
                tracing::info!(path = %self.path, restarts = self.restarts, "continue token expired; listing again from the start");
                Ok(Some(Listed::Restarted))
            }
            Err(err) => {
                (self.next_page, self.done) = (None, true);
                Err(err)
            }
        }
    }

    /// Starts fetching the page after the one that said `continue_token`,
    /// or ends the list.
    fn follow(&mut self, continue_token: Option<String>) {
        match continue_token.filter(|c| !c.is_empty()) {
            Some(token) => self.next_page = Some(self.fetch(Some(token))),
            None => self.done = true,
        }
    }

    /// Starts fetching the page `continue_token` names (the first if none).
    fn fetch(&self, continue_token: Option<String>) -> PageTask<K> {
        let mut params = ListParams::default().limit(self.policy.page_size);
        if !self.selector.is_empty() {
            params = params.labels(self.selector);
        }
        params.continue_token = continue_token;
        let (client, path, policy) = (self.client.clone(), self.path.clone(), self.policy);
        let metadata_only = self.metadata_only;
        let (front, continue_token) = tokio::sync::oneshot::channel();
        let task = async move {
            let body = list_page(&client, &path, &params, metadata_only, policy).await?;
            if let Some(meta) = ListMeta::at_front(&body) {
                _ = front.send(meta.continue_token);
            }
            let page = serde_json::from_slice::<List<K>>(&body).map_err(|err| {
                CollectError::new(
                    FailureKind::ApiError,
                    format!("{path}: the API server's list could not be read: {err}"),
                )
                .with_source(err)
            })?;
            Ok(page)
        };
        let task = tokio::spawn(task.instrument(tracing::Span::current()));
        PageTask { continue_token: Some(continue_token), task }
    }
}

/// A page being fetched. Dropping it (the snapshot timed out or failed)
/// stops the fetch.
struct PageTask<K> {
    /// Where the next page starts, sent as soon as the page's front is
    /// read; never sent if it could not be read there.
    continue_token: Option<tokio::sync::oneshot::Receiver<Option<String>>>,
    task: tokio::task::JoinHandle<Result<List<K>, CollectError>>,
}

impl<K> PageTask<K> {
    /// The page's continue token (`Some(None)` on the last page) if it was
    /// read before the items; `None` once the page is done without it.
    async fn continue_token(&mut self) -> Option<Option<String>> {
        self.continue_token.take()?.await.ok()
    }

    async fn wait(mut self) -> Result<List<K>, CollectError> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(err) => {
                Err(CollectError::new(FailureKind::ApiError, "fetching a list page failed")
                    .with_source(err))
            }
        }
    }
}

impl<K> Drop for PageTask<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One page, waiting out throttling a bounded number of times.
async fn list_page(
    client: &kube::Client,
    path: &str,
    params: &ListParams,
    metadata_only: bool,
    policy: ListPolicy,
) -> Result<Vec<u8>, CollectError> {
    let mut attempt = 0;
    loop {
        let mut request = kube::core::Request::new(path).list(params).map_err(|e| {
            CollectError::new(FailureKind::Config, "could not build a list request").with_source(e)
        })?;
        if metadata_only {
            request = crate::objects::metadata_only(request);
        }
        match fetch_list(client, request, policy.max_page_bytes).await {
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

/// Sends a list request and returns the page's bytes as they arrived, to
/// be decoded from there: no copy into a string on the way
/// (`Client::request` makes one), and a body that does not decode is never
/// logged (it is the cluster's data).
async fn fetch_list(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
    max_bytes: usize,
) -> Result<Vec<u8>, kube::Error> {
    use http_body_util::BodyExt;
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let status = response.status();
    let announced = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    // One buffer of the page's size, filled as its frames arrive: collecting
    // the frames first and joining them would hold the page twice.
    let mut body = Vec::with_capacity(announced.unwrap_or(0).min(max_bytes));
    let mut frames = response.into_body();
    while let Some(frame) = frames.frame().await {
        if let Ok(data) = frame?.into_data() {
            if body.len() + data.len() > max_bytes {
                return Err(kube::Error::Api(
                    Status::failure("", "PageTooLarge").with_code(413).boxed(),
                ));
            }
            body.extend_from_slice(&data);
        }
    }
    if status.is_client_error() || status.is_server_error() {
        let status = serde_json::from_slice::<Status>(&body).unwrap_or_else(|_| {
            Status::failure("", "the API server's error was not a Status")
                .with_code(status.as_u16())
        });
        return Err(kube::Error::Api(status.boxed()));
    }
    Ok(body)
}

/// Where a cluster's records go as they are read: the change writer when a
/// snapshot runs ([`crate::persist::writer::SnapshotWriter`]), anything
/// that keeps them in a test. Repeats are the sink's to ignore (a list that
/// starts over hands its objects in again).
pub trait SnapshotSink: Send {
    /// A pod of a chosen workload, or one no workload owns.
    fn pod(&mut self, pod: &PodRecord) -> impl Future<Output = Result<(), CollectError>> + Send;
    /// A pod no workload owns, for what it runs (after [`Self::pod`]).
    fn loose_pod(
        &mut self,
        pod: &PodRecord,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
    /// A workload, its pods summed in.
    fn workload(
        &mut self,
        workload: Workload,
    ) -> impl Future<Output = Result<(), CollectError>> + Send;
}

/// Reads one cluster as `environment` selects it, handing every pod and
/// workload to `writer` page by page: memory holds a page of raw objects,
/// the pod tallies and the writer's fingerprints, never the whole cluster.
/// Returns the Kubernetes version.
pub async fn collect_cluster(
    client: kube::Client,
    environment: &Environment,
    place: &Place,
    policy: ListPolicy,
    writer: &mut impl SnapshotSink,
) -> Result<String, CollectError> {
    let version =
        client.apiserver_version().await.map_err(|e| CollectError::from_kube("/version", e))?;
    let minor = version.minor.trim_end_matches('+').parse().ok();
    let place = &Place { kubernetes_minor: minor, ..place.clone() };
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

    // A selector chooses workloads; their ReplicaSets and pods are listed
    // whatever their labels and follow by owner (see `Chosen`).
    let chosen = match environment.label_selector.is_everything() {
        true => Chosen::All,
        false => Chosen::Only {
            workloads: chosen_workloads(&client, &scopes, selector, policy, &allowed).await?,
            selector: &environment.label_selector,
        },
    };
    let mut replica_sets = ReplicaSetIndex::default();
    for scope in &scopes {
        // Adding a ReplicaSet twice is harmless, so a restart needs no undo.
        let path = Listing::ReplicaSets.path(scope.as_deref());
        let mut list = Lister::<ReplicaSet>::new(&client, path, "", policy).metadata_only();
        while let Some(listed) = list.next().await? {
            if let Listed::Page(items) = listed {
                items.iter().filter(|rs| allowed(&rs.metadata)).for_each(|rs| replica_sets.add(rs));
            }
        }
    }
    let mut tally = PodTally::default();
    for scope in &scopes {
        let path = Listing::Pods.path(scope.as_deref());
        let mut list = Lister::<Pod>::new(&client, path, "", policy);
        while let Some(listed) = list.next().await? {
            match listed {
                Listed::Page(items) => {
                    let pods = items.into_iter().filter(|p| allowed(&p.metadata));
                    for pod in pods.filter_map(|p| normalise::read_pod(p, &replica_sets)) {
                        if let Some(record) = tally.add(pod, &chosen) {
                            writer.pod(&record).await?;
                            if record.owner.is_none() {
                                writer.loose_pod(&record).await?;
                            }
                        }
                    }
                }
                // The writer ignores pods it already has; the tally starts over.
                Listed::Restarted => tally.forget(scope.as_deref()),
            }
        }
    }
    for scope in &scopes {
        let scope = scope.as_deref();
        let deployments =
            |d: &ReplicatedWorkload| normalise::deployment(d, place, &tally, &replica_sets);
        let path = Listing::Deployments.path(scope);
        stream_workloads(&client, path, selector, policy, namespaces, writer, deployments).await?;
        let stateful_sets = |s: &ReplicatedWorkload| normalise::stateful_set(s, place, &tally);
        let path = Listing::StatefulSets.path(scope);
        stream_workloads(&client, path, selector, policy, namespaces, writer, stateful_sets)
            .await?;
        let daemon_sets = |d: &DaemonSet| normalise::daemon_set(d, place, &tally);
        let path = Listing::DaemonSets.path(scope);
        stream_workloads(&client, path, selector, policy, namespaces, writer, daemon_sets).await?;
    }
    Ok(format!("{}.{}", version.major, version.minor.trim_end_matches('+')))
}

/// The workloads `selector` chooses, by name: one pass over each kind that
/// reads metadata only.
async fn chosen_workloads(
    client: &kube::Client,
    scopes: &[Option<String>],
    selector: &str,
    policy: ListPolicy,
    allowed: &impl Fn(&Meta) -> bool,
) -> Result<std::collections::HashSet<normalise::WorkloadId>, CollectError> {
    let mut chosen = std::collections::HashSet::new();
    let kinds = [
        (Listing::Deployments, WorkloadKind::Deployment),
        (Listing::StatefulSets, WorkloadKind::StatefulSet),
        (Listing::DaemonSets, WorkloadKind::DaemonSet),
    ];
    for scope in scopes {
        for (listing, kind) in kinds {
            let path = listing.path(scope.as_deref());
            let mut list = Lister::<Named>::new(client, path, selector, policy).metadata_only();
            while let Some(listed) = list.next().await? {
                // A restart lists the same names again: a set needs no undo.
                if let Listed::Page(items) = listed {
                    for meta in items.iter().map(|n| &n.metadata).filter(|m| allowed(m)) {
                        chosen.insert((meta.namespace.clone(), kind, meta.name.clone()));
                    }
                }
            }
        }
    }
    Ok(chosen)
}

/// Lists one kind of workload and hands each one `normalise` makes to the
/// writer. A restarted list needs no undo: the writer ignores repeats.
async fn stream_workloads<K, N>(
    client: &kube::Client,
    path: String,
    selector: &str,
    policy: ListPolicy,
    namespaces: &NamespaceFilter,
    writer: &mut impl SnapshotSink,
    normalise: N,
) -> Result<(), CollectError>
where
    K: DeserializeOwned + HasMeta + Send + 'static,
    N: Fn(&K) -> Option<Workload>,
{
    let mut list = Lister::<K>::new(client, path, selector, policy);
    while let Some(listed) = list.next().await? {
        if let Listed::Page(items) = listed {
            for item in items.iter().filter(|i| namespaces.allows(&i.meta().namespace)) {
                if let Some(workload) = normalise(item) {
                    writer.workload(workload).await?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use fake_kube::{ClusterObjects, FakeCluster, TestCa};
    use shared::config::FleetConfig;

    use super::*;
    use crate::access::KubeTimeouts;

    /// Keeps what the collector hands in: no store needed.
    #[derive(Default)]
    struct Kept {
        pods: Vec<PodRecord>,
        loose: Vec<PodRecord>,
        workloads: Vec<Workload>,
    }

    impl SnapshotSink for Kept {
        async fn pod(&mut self, pod: &PodRecord) -> Result<(), CollectError> {
            self.pods.push(pod.clone());
            Ok(())
        }

        async fn loose_pod(&mut self, pod: &PodRecord) -> Result<(), CollectError> {
            self.loose.push(pod.clone());
            Ok(())
        }

        async fn workload(&mut self, workload: Workload) -> Result<(), CollectError> {
            self.workloads.push(workload);
            Ok(())
        }
    }

    async fn collect(objects: &ClusterObjects, page_size: u32) -> (Kept, Vec<String>) {
        let ca = TestCa::generate().unwrap();
        let server = FakeCluster::start("c", &ca, objects, "token").await.unwrap();
        let mut config = kube::Config::new(server.endpoint().parse().unwrap());
        config.root_cert = Some(vec![server.ca_der()]);
        config.auth_info.token = Some("token".to_owned().into());
        let client = KubeTimeouts::default().client(config).unwrap();
        let fleet = FleetConfig::parse(
            "defaults: { region: eu-west-1 }\nenvironments: [{ name: stg, clusters: [{ name: c }] }]",
            "test",
        )
        .unwrap();
        let environment = &fleet.environments[0];
        let place = Place {
            cluster: "c".parse().unwrap(),
            environment: environment.name.clone(),
            now: jiff::Timestamp::now(),
            version_rules: fleet.version_rules(environment),
            kubernetes_minor: None,
        };
        let policy = ListPolicy { page_size, ..ListPolicy::default() };
        let mut kept = Kept::default();
        collect_cluster(client, environment, &place, policy, &mut kept).await.unwrap();
        let paths = server.requests().into_iter().map(|r| r.path).collect();
        (kept, paths)
    }

    #[tokio::test]
    async fn a_cluster_is_read_into_a_sink_page_by_page_with_no_store() {
        let objects = ClusterObjects::large(7, 3);
        let (kept, paths) = collect(&objects, 4).await;
        assert_eq!(kept.pods.len(), 21);
        assert!(kept.loose.is_empty(), "every pod has a Deployment");
        assert_eq!(kept.workloads.len(), 7);
        for workload in &kept.workloads {
            assert_eq!(workload.pods.total, 3, "{}", workload.name);
            assert!(!workload.version.is_empty(), "{}", workload.name);
        }
        // Pages of 4: 14 ReplicaSets, 21 pods and 7 Deployments take 4, 6
        // and 2 pages, then one each for StatefulSets and DaemonSets.
        let lists = |plural: &str| paths.iter().filter(|p| p.ends_with(plural)).count();
        assert_eq!((lists("/replicasets"), lists("/pods"), lists("/deployments")), (4, 6, 2));
    }
}
