//! One fake Kubernetes API server: HTTPS on 127.0.0.1, bearer tokens,
//! list endpoints for the resources the snapshot reads, `limit`/`continue`
//! pagination with `410 Gone` for expired continue tokens, label selectors,
//! and injectable faults. It serves real Kubernetes object JSON.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::labels::LabelSelector;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::objects::ClusterObjects;
use crate::tls::TestCa;

/// How long a continue token stays valid on a real API server (etcd
/// compaction runs every 5 minutes by default).
pub const DEFAULT_CONTINUE_TTL: Duration = Duration::from_secs(300);

/// The resources this server lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
}

impl Kind {
    fn from_plural(group: &str, plural: &str) -> Option<Self> {
        match (group, plural) {
            ("", "namespaces") => Some(Self::Namespace),
            ("", "pods") => Some(Self::Pod),
            ("apps", "deployments") => Some(Self::Deployment),
            ("apps", "statefulsets") => Some(Self::StatefulSet),
            ("apps", "daemonsets") => Some(Self::DaemonSet),
            ("apps", "replicasets") => Some(Self::ReplicaSet),
            _ => None,
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Self::Namespace | Self::Pod => "v1",
            _ => "apps/v1",
        }
    }

    fn list_kind(self) -> &'static str {
        match self {
            Self::Namespace => "NamespaceList",
            Self::Pod => "PodList",
            Self::Deployment => "DeploymentList",
            Self::StatefulSet => "StatefulSetList",
            Self::DaemonSet => "DaemonSetList",
            Self::ReplicaSet => "ReplicaSetList",
        }
    }
}

/// A failure to inject.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Wait this long, then answer normally.
    Latency(Duration),
    /// Answer with this status and a Kubernetes `Status` body.
    Status(u16),
    /// 429 with `Retry-After`.
    TooManyRequests { retry_after_secs: u64 },
    /// Drop the connection without an answer.
    ResetConnection,
    /// Revoke every token (as if the IAM role lost access); this and later
    /// requests get 401.
    RevokeTokens,
    /// Expire every continue token issued so far (as an etcd compaction does).
    ExpireContinueTokens,
    /// Answer with this status and body, whatever was asked: a proxy's HTML
    /// error page, a truncated or garbled list.
    Body { status: u16, body: String },
}

/// When a fault applies: requests whose path contains `path_contains`, after
/// `skip` of them have passed, for `times` requests.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    pub path_contains: String,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
}

impl FaultRule {
    /// A fault on every request whose path contains `path_contains`.
    pub fn on(path_contains: impl Into<String>, fault: Fault) -> Self {
        Self { path_contains: path_contains.into(), skip: 0, times: usize::MAX, fault }
    }

    pub fn after(mut self, skip: usize) -> Self {
        self.skip = skip;
        self
    }

    pub fn times(mut self, times: usize) -> Self {
        self.times = times;
        self
    }
}

/// What the server saw, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// Asked for metadata only (`as=PartialObjectMetadataList`).
    pub metadata_only: bool,
    pub status: u16,
}

/// One stored object, indexed for listing.
#[derive(Debug, Clone)]
struct Entry {
    namespace: String,
    /// `namespace/name`: the list order and what continue tokens name.
    key: String,
    labels: BTreeMap<String, String>,
    /// The object's JSON, serialised once: pages are assembled from these.
    json: Bytes,
    /// The object as a `PartialObjectMetadata`: its metadata only.
    metadata_json: Bytes,
}

#[derive(Debug, Default)]
struct Resources {
    by_kind: BTreeMap<Kind, Vec<Entry>>,
    minor_version: String,
}

impl Resources {
    fn from_objects(objects: &ClusterObjects) -> Self {
        let mut by_kind = BTreeMap::new();
        let mut add = |kind: Kind, values: Vec<Value>| {
            let mut entries: Vec<Entry> = values.into_iter().map(entry).collect();
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            by_kind.insert(kind, entries);
        };
        add(Kind::Namespace, to_values(&objects.namespaces));
        add(Kind::Pod, to_values(&objects.pods));
        add(Kind::Deployment, to_values(&objects.deployments));
        add(Kind::StatefulSet, to_values(&objects.stateful_sets));
        add(Kind::DaemonSet, to_values(&objects.daemon_sets));
        add(Kind::ReplicaSet, to_values(&objects.replica_sets));
        Self { by_kind, minor_version: objects.kubernetes_minor.to_string() }
    }
}

fn to_values<T: Serialize>(objects: &[T]) -> Vec<Value> {
    objects.iter().filter_map(|o| serde_json::to_value(o).ok()).collect()
}

fn entry(mut json: Value) -> Entry {
    // NB: items of a typed list carry no kind/apiVersion on a real server.
    if let Some(object) = json.as_object_mut() {
        object.remove("kind");
        object.remove("apiVersion");
    }
    let meta = &json["metadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let labels = meta["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
        .unwrap_or_default();
    let namespace = text(&meta["namespace"]);
    let key = format!("{namespace}/{}", text(&meta["name"]));
    let partial =
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta});
    let metadata_json = Bytes::from(serde_json::to_vec(&partial).unwrap_or_default());
    let json = Bytes::from(serde_json::to_vec(&json).unwrap_or_default());
    Entry { namespace, key, labels, json, metadata_json }
}

#[derive(Debug, Serialize, Deserialize)]
struct ContinueToken {
    /// The resource version the list started at.
    rv: u64,
    /// Compaction generation it was issued in.
    epoch: u64,
    /// Key (`namespace/name`) of the last item already returned.
    after: String,
    /// Milliseconds since the Unix epoch.
    issued: u64,
}

struct State {
    resources: RwLock<Resources>,
    resource_version: AtomicU64,
    continue_epoch: AtomicU64,
    continue_ttl: Mutex<Duration>,
    tokens: Mutex<HashSet<String>>,
    /// Accept well-formed, fresh EKS IAM tokens too.
    eks_tokens: std::sync::atomic::AtomicBool,
    /// Every token refused (the role lost access).
    revoked: std::sync::atomic::AtomicBool,
    faults: Mutex<Vec<FaultRule>>,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl State {
    fn accepts(&self, token: &str) -> bool {
        if self.revoked.load(Ordering::SeqCst) {
            return false;
        }
        lock(&self.tokens).contains(token)
            || (self.eks_tokens.load(Ordering::SeqCst)
                && crate::eks::check_token(token, jiff::Timestamp::now()).is_ok())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake API server. Dropping it stops the server.
pub struct FakeCluster {
    name: String,
    addr: SocketAddr,
    state: Arc<State>,
    ca_data: String,
    ca_der: Vec<u8>,
    ca_pem: String,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for FakeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeCluster")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCluster {
    /// Starts a server on a free 127.0.0.1 port that accepts `token`.
    pub async fn start(
        name: &str,
        ca: &TestCa,
        objects: &ClusterObjects,
        token: &str,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            resources: RwLock::new(Resources::from_objects(objects)),
            resource_version: AtomicU64::new(1000),
            continue_epoch: AtomicU64::new(0),
            continue_ttl: Mutex::new(DEFAULT_CONTINUE_TTL),
            tokens: Mutex::new(HashSet::from([token.to_owned()])),
            eks_tokens: std::sync::atomic::AtomicBool::new(false),
            revoked: std::sync::atomic::AtomicBool::new(false),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let acceptor = TlsAcceptor::from(ca.server_config());
        let task = tokio::spawn(accept_loop(listener, acceptor, state.clone()));
        Ok(Self {
            name: name.to_owned(),
            addr,
            state,
            ca_data: ca.ca_data(),
            ca_der: ca.ca_der(),
            ca_pem: ca.ca_pem().to_owned(),
            task,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `https://127.0.0.1:<port>`, as EKS's `endpoint`.
    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Base64 of the CA's PEM, as EKS's `certificateAuthority.data`.
    pub fn ca_data(&self) -> &str {
        &self.ca_data
    }

    pub fn ca_der(&self) -> Vec<u8> {
        self.ca_der.clone()
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Replaces every object (a new resource version), as a wave of deploys would.
    pub fn set_objects(&self, objects: &ClusterObjects) {
        let resources = Resources::from_objects(objects);
        *self.state.resources.write().unwrap_or_else(PoisonError::into_inner) = resources;
        self.state.resource_version.fetch_add(1, Ordering::SeqCst);
    }

    pub fn add_token(&self, token: &str) {
        lock(&self.state.tokens).insert(token.to_owned());
    }

    pub fn revoke_token(&self, token: &str) {
        lock(&self.state.tokens).remove(token);
    }

    /// Also accept EKS IAM tokens (`k8s-aws-v1.…`) that are well formed and
    /// fresh, as a cluster whose access entry maps our role would.
    pub fn accept_eks_tokens(&self) {
        self.state.eks_tokens.store(true, Ordering::SeqCst);
    }

    /// Ends a [`Fault::RevokeTokens`]: tokens are accepted again.
    pub fn restore_access(&self) {
        self.state.revoked.store(false, Ordering::SeqCst);
    }

    pub fn inject(&self, rule: FaultRule) {
        lock(&self.state.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    pub fn set_continue_ttl(&self, ttl: Duration) {
        *lock(&self.state.continue_ttl) = ttl;
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    // Connections live in this set, so that stopping the server (aborting
    // this task) closes them too, as a real server going down would.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // As the API server does (Go sets TCP_NODELAY on every TCP
        // connection): with Nagle's algorithm on, the last segment of each
        // response waits for the client's delayed ACK, which doubled the time
        // a snapshot's pages took to arrive.
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { handle(&state, request).await }
            });
            // A service error (the reset fault) makes hyper drop the connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The error that resets a connection.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by fault injection")]
struct Reset;

type Reply = Response<Full<Bytes>>;

async fn handle(state: &State, request: Request<Incoming>) -> Result<Reply, Reset> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let metadata_only = request
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(asks_for_metadata_only);
    let record = |status: u16| {
        lock(&state.requests).push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            metadata_only,
            status,
        });
    };

    for fault in due_faults(state, &path) {
        match fault {
            Fault::Latency(delay) => tokio::time::sleep(delay).await,
            Fault::ResetConnection => {
                record(0);
                return Err(Reset);
            }
            Fault::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                record(status.as_u16());
                return Ok(status_reply(status, "InternalError", "injected fault"));
            }
            Fault::Body { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                record(status.as_u16());
                let mut reply = Response::new(Full::new(Bytes::from(body)));
                *reply.status_mut() = status;
                return Ok(reply);
            }
            Fault::TooManyRequests { retry_after_secs } => {
                record(429);
                let mut reply = status_reply(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "too many requests, please try again later",
                );
                reply.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
                return Ok(reply);
            }
            Fault::RevokeTokens => state.revoked.store(true, Ordering::SeqCst),
            Fault::ExpireContinueTokens => {
                state.continue_epoch.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| state.accepts(token));
    let reply = if !authorized {
        status_reply(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    } else if method != Method::GET {
        status_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the fake API server is read-only",
        )
    } else {
        route(state, &path, &query, metadata_only)
    };
    record(reply.status().as_u16());
    Ok(reply)
}

fn due_faults(state: &State, path: &str) -> Vec<Fault> {
    let mut due = Vec::new();
    for rule in lock(&state.faults).iter_mut() {
        if !path.contains(rule.path_contains.as_str()) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
        } else if rule.times > 0 {
            rule.times -= 1;
            due.push(rule.fault.clone());
        }
    }
    due
}

/// Whether an `Accept` header asks for `PartialObjectMetadataList`: one of
/// its media ranges is JSON with `as`, `g` and `v` naming it.
fn asks_for_metadata_only(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let json = parts.next() == Some("application/json");
        let params: Vec<&str> = parts.collect();
        json && ["as=PartialObjectMetadataList", "g=meta.k8s.io"].iter().all(|p| params.contains(p))
            && params.iter().any(|p| *p == "v=v1" || *p == "v=v1beta1")
    })
}

fn route(
    state: &State,
    path: &str,
    query: &BTreeMap<String, String>,
    metadata_only: bool,
) -> Reply {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let target = match segments.as_slice() {
        ["version"] => {
            let minor = state
                .resources
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .minor_version
                .clone();
            return json_reply(StatusCode::OK, &version_info(&minor));
        }
        ["api", "v1", plural] => Kind::from_plural("", plural).map(|k| (k, None)),
        ["api", "v1", "namespaces", ns, plural] => {
            Kind::from_plural("", plural).map(|k| (k, Some(*ns)))
        }
        ["apis", group, "v1", plural] => Kind::from_plural(group, plural).map(|k| (k, None)),
        ["apis", group, "v1", "namespaces", ns, plural] => {
            Kind::from_plural(group, plural).map(|k| (k, Some(*ns)))
        }
        _ => None,
    };
    match target {
        Some((Kind::Namespace, Some(_))) | None => status_reply(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
        Some((kind, namespace)) => list(state, kind, namespace, query, metadata_only),
    }
}

fn list(
    state: &State,
    kind: Kind,
    namespace: Option<&str>,
    query: &BTreeMap<String, String>,
    metadata_only: bool,
) -> Reply {
    let selector = match LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
    {
        Ok(selector) => selector,
        Err(err) => {
            return status_reply(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("unable to parse requirement: {}", err.rule),
            );
        }
    };
    if query.get("fieldSelector").is_some_and(|f| !f.is_empty()) {
        return status_reply(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "field selectors are not supported by the fake API server",
        );
    }
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 0,
        Some(Ok(limit)) => limit,
        Some(Err(_)) => {
            return status_reply(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "limit must be a non-negative integer",
            );
        }
    };
    let current_rv = state.resource_version.load(Ordering::SeqCst);
    let (list_rv, after) = match query.get("continue").filter(|c| !c.is_empty()) {
        None => (current_rv, None),
        Some(text) => match decode_continue(text) {
            None => {
                return status_reply(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "continue key is not valid",
                );
            }
            Some(token) => {
                let ttl = *lock(&state.continue_ttl);
                let age = Duration::from_millis(now_millis().saturating_sub(token.issued));
                if token.epoch != state.continue_epoch.load(Ordering::SeqCst) || age > ttl {
                    return status_reply(
                        StatusCode::GONE,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    );
                }
                (token.rv, Some(token.after))
            }
        },
    };

    let resources = state.resources.read().unwrap_or_else(PoisonError::into_inner);
    let entries = resources.by_kind.get(&kind).map(Vec::as_slice).unwrap_or_default();
    // Entries are sorted by key: resume right after the token's key.
    let start =
        after.as_ref().map_or(0, |a| entries.partition_point(|e| e.key.as_str() <= a.as_str()));
    let mut matching = entries[start..]
        .iter()
        .filter(|e| namespace.is_none_or(|ns| e.namespace == ns) && selector.matches(&e.labels));
    let items: Vec<&Entry> = if limit == 0 {
        matching.by_ref().collect()
    } else {
        matching.by_ref().take(limit).collect()
    };
    let remaining = matching.count();
    let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
    if remaining > 0
        && let Some(last) = items.last()
    {
        let token = ContinueToken {
            rv: list_rv,
            epoch: state.continue_epoch.load(Ordering::SeqCst),
            after: last.key.clone(),
            issued: now_millis(),
        };
        metadata["continue"] = json!(encode_continue(&token));
        metadata["remainingItemCount"] = json!(remaining);
    }
    // The envelope is serialised, the items spliced in as they are stored.
    let envelope = match metadata_only {
        true => {
            json!({ "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata })
        }
        false => {
            json!({ "kind": kind.list_kind(), "apiVersion": kind.api_version(), "metadata": metadata })
        }
    };
    let item_json = |entry: &Entry| -> Bytes {
        match metadata_only {
            true => entry.metadata_json.clone(),
            false => entry.json.clone(),
        }
    };
    let envelope = serde_json::to_vec(&envelope).unwrap_or_default();
    // Sized once: growing a page of megabytes by doubling costs the server
    // more than sending it.
    let size = envelope.len() + 16 + items.iter().map(|e| item_json(e).len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(&envelope[..envelope.len().saturating_sub(1)]); // less the closing brace
    body.extend_from_slice(b",\"items\":[");
    for (i, entry) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&item_json(entry));
    }
    body.extend_from_slice(b"]}");
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    reply
}

fn encode_continue(token: &ContinueToken) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(token).unwrap_or_default())
}

fn decode_continue(text: &str) -> Option<ContinueToken> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn version_info(minor: &str) -> Value {
    json!({
        "major": "1",
        "minor": minor,
        "gitVersion": format!("v1.{minor}.5-eks-3025e55"),
        "gitCommit": "3025e55e2ad0e5c8b3e0e5b1e6b9d5b7c8a2f1d4",
        "gitTreeState": "clean",
        "buildDate": "2025-09-19T19:18:03Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A Kubernetes `Status` object, as the API server sends with every error.
fn status_reply(status: StatusCode, reason: &str, message: &str) -> Reply {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": status.as_u16(),
    });
    json_reply(status, &body)
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut reply = Response::new(Full::new(Bytes::from(bytes)));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    reply
}
