//! The bed the inventory and dashboards API tests share: a small fleet of
//! fake clusters, snapshotted by the real `Snapshotter` into a store, the
//! API routers over it, and three signed-in users: an admin, a
//! platform-team viewer and a dev-team viewer. What runs where is chosen so
//! that every dashboard flag shows.
//!
//! The function crates' tests run it over the memory store with clusters
//! reached by endpoint and CA ([`ApiBed::in_memory`]); the integration
//! tests run one journey per function over DynamoDB and EKS on moto
//! ([`ApiBed::new`] with [`ClusterAccess::Eks`]).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::to_bytes;
use fake_kube::{ClusterObjects, FakeCluster, Image, PodPhase, TestCa, WorkloadKind, WorkloadSpec};
use futures::future::BoxFuture;
use http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use serde_json::Value;
use shared::clock::{Clock, ManualClock};
use shared::context::ApiContext;
use shared::fleet::FleetSource;
use shared::model::SnapshotRequest;
use shared::records::account::Role;
use shared::store::Store;
use shared::store::counting::CountingStore;
use shared::store::memory::MemoryStore;
use shared::testing::unique;
use snapshot::access::{AwsConnector, KubeTimeouts};
use snapshot::snapshotter::{InProcessTrigger, OutcomeStatus, SnapshotOptions, Snapshotter};
use tower::ServiceExt;

pub const ACCOUNT: &str = "123456789012";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

/// The environments, in promotion order, and their clusters' suffixes.
pub const ENVIRONMENTS: [(&str, &[&str]); 3] =
    [("dev", &["a"]), ("stg", &["a"]), ("prod", &["a", "b"])];

/// One service's version in one cluster, and how it runs there.
#[derive(Clone, Copy)]
pub struct Placement {
    pub service: &'static str,
    pub namespace: &'static str,
    pub version: &'static str,
    /// The tag was pushed again with different content (another digest).
    pub retagged: bool,
    /// Half its pods still run this older version.
    pub rolling_from: Option<&'static str>,
    pub stateful: bool,
    pub phases: &'static [PodPhase],
}

const fn run(service: &'static str, version: &'static str) -> Placement {
    Placement {
        service,
        namespace: "shop",
        version,
        retagged: false,
        rolling_from: None,
        stateful: false,
        phases: &[],
    }
}

/// What each cluster runs (cluster suffix `<env>-<x>`).
///
/// - `checkout` 2.0.0 everywhere: consistent.
/// - `cart` 1.3.0 in dev, 1.2.0 in stg and prod: drift.
/// - `search` 3.1.0 but 3.0.0 on prod-b: mixed (and drift).
/// - `billing` 1.0.0 everywhere, re-tagged in prod: digest drift.
/// - `ledger` 5.0.0 in prod, 4.9.0 in dev and stg: promotion order broken.
/// - `catalog` rolling from 0.9.0 to 1.0.0 in stg.
/// - `orders` a StatefulSet in stg and prod only, one pod pending in stg.
/// - `metrics` in the `ops` namespace, not part of the shop dashboard.
pub fn plan(cluster: &str) -> Vec<Placement> {
    let env = cluster.split('-').next().unwrap_or_default();
    let mut placements = vec![run("checkout", "2.0.0")];
    placements.push(run("cart", if env == "dev" { "1.3.0" } else { "1.2.0" }));
    placements.push(run("search", if cluster == "prod-b" { "3.0.0" } else { "3.1.0" }));
    placements.push(Placement { retagged: env == "prod", ..run("billing", "1.0.0") });
    placements.push(run("ledger", if env == "prod" { "5.0.0" } else { "4.9.0" }));
    placements.push(Placement {
        rolling_from: (env == "stg").then_some("0.9.0"),
        ..run("catalog", "1.0.0")
    });
    if env != "dev" {
        let phases: &[PodPhase] =
            if env == "stg" { &[PodPhase::Running, PodPhase::Pending] } else { &[] };
        placements.push(Placement { stateful: true, phases, ..run("orders", "7.1.0") });
    }
    placements.push(Placement { namespace: "ops", ..run("metrics", "0.4.0") });
    placements
}

pub fn objects(placements: &[Placement]) -> ClusterObjects {
    let nodes = ["ip-10-0-1-10".to_owned(), "ip-10-0-2-20".to_owned()];
    let mut objects = ClusterObjects::new(33);
    for p in placements {
        let salt = p.retagged.then_some("pushed again");
        let image = Image::new(REGISTRY, &format!("shop/{}", p.service), p.version, salt);
        let part_of = if p.namespace == "shop" { "shop" } else { "ops" };
        let mut spec = WorkloadSpec::deployment(p.namespace, p.service, image)
            .label("app.kubernetes.io/part-of", part_of)
            .label("app.kubernetes.io/version", p.version)
            .replicas(2);
        if p.stateful {
            spec = spec.kind(WorkloadKind::StatefulSet);
        }
        if let Some(previous) = p.rolling_from {
            let old = Image::new(REGISTRY, &format!("shop/{}", p.service), previous, None);
            spec = spec.rolling_from(old, 1);
        }
        if !p.phases.is_empty() {
            spec = spec.phases(p.phases.to_vec());
        }
        objects.add_workload(&spec, &nodes);
    }
    objects
}

pub struct User {
    pub token: String,
}

/// How the snapshotter reaches the fake clusters.
pub enum ClusterAccess {
    /// By endpoint, CA and bearer token in the fleet file, as the local
    /// server's `--kubeconfig` mode and a deployed `endpoint:` cluster are.
    Direct,
    /// Through EKS: `register` makes EKS (moto) describe each cluster, and
    /// the snapshotter signs IAM tokens with `sdk`'s credentials.
    Eks { sdk: Box<aws_config::SdkConfig>, register: Registrar },
}

/// Registers a fake cluster with EKS.
pub type Registrar = Box<dyn Fn(&FakeCluster) -> BoxFuture<'_, ()> + Send + Sync>;

/// The routes under test, over the bed's ports.
pub type Routes = fn(&Ports) -> Router;

/// What the routers are built over: each router takes a context of its
/// own, as each function has one.
pub struct Ports {
    pub fleet: Arc<FleetSource>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub trigger: Arc<InProcessTrigger>,
}

impl Ports {
    pub fn context(&self) -> ApiContext {
        ApiContext::new(self.fleet.clone(), self.store.clone(), self.clock.clone())
    }
}

/// The bearer token the fake clusters accept from a [`ClusterAccess::Direct`] bed.
const CLUSTER_TOKEN: &str = "bed-cluster-token";

pub struct ApiBed<S> {
    pub app: Router,
    pub store: Arc<CountingStore<S>>,
    pub clock: Arc<ManualClock>,
    pub fleet: Arc<FleetSource>,
    pub snapshotter: Arc<Snapshotter>,
    pub trigger: Arc<InProcessTrigger>,
    /// Fake clusters by short name (`prod-a`); their real names are unique.
    pub clusters: Vec<(String, FakeCluster)>,
    pub admin: User,
    pub platform: User,
    pub dev: User,
    /// Holds the clusters' token file of a direct bed.
    _token_file: Option<TokenFile>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// A file holding the fake clusters' token, removed with the bed.
struct TokenFile(std::path::PathBuf);

impl Drop for TokenFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl ApiBed<MemoryStore> {
    /// The bed over the memory store, clusters reached directly: needs
    /// nothing outside the process.
    pub async fn in_memory(routes: Routes) -> Self {
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        let store = MemoryStore::new(clock.clone());
        Self::new(clock, store, ClusterAccess::Direct, routes).await
    }
}

impl<S: Store + 'static> ApiBed<S> {
    /// The bed over `store` (whose clock is `clock`), its clusters reached
    /// by `access`, serving `routes`.
    pub async fn new(
        clock: Arc<ManualClock>,
        store: S,
        access: ClusterAccess,
        routes: Routes,
    ) -> Self {
        let ca = TestCa::generate().unwrap();
        let suffix = unique("x");
        let token_file = match access {
            ClusterAccess::Direct => {
                let path = std::env::temp_dir().join(format!("{suffix}.token"));
                std::fs::write(&path, CLUSTER_TOKEN).unwrap();
                Some(TokenFile(path))
            }
            ClusterAccess::Eks { .. } => None,
        };
        let mut yaml = String::from(
            "defaults: {region: eu-west-1, refreshInterval: 60s, snapshotTtl: 1h}\nenvironments:\n",
        );
        let mut clusters = Vec::new();
        for (env, letters) in ENVIRONMENTS {
            let teams = if env == "dev" { "[dev, platform]" } else { "[platform]" };
            yaml.push_str(&format!("  - name: {env}\n    teams: {teams}\n    clusters:\n"));
            for letter in letters {
                let short = format!("{env}-{letter}");
                let name = format!("{short}-{suffix}");
                let fake = FakeCluster::start(&name, &ca, &objects(&plan(&short)), CLUSTER_TOKEN)
                    .await
                    .unwrap();
                yaml.push_str(&format!("      - name: {name}\n"));
                match (&access, &token_file) {
                    (ClusterAccess::Eks { register, .. }, _) => {
                        fake.accept_eks_tokens();
                        register(&fake).await;
                    }
                    (ClusterAccess::Direct, Some(TokenFile(path))) => yaml.push_str(&format!(
                        "        endpoint: {}\n        caData: {}\n        tokenFrom: {{ file: {:?} }}\n",
                        fake.endpoint(),
                        fake.ca_data(),
                        path.display().to_string(),
                    )),
                    (ClusterAccess::Direct, None) => unreachable!("a direct bed has a token file"),
                }
                clusters.push((short, fake));
            }
        }
        yaml.push_str(
            "dashboards:\n  - name: shop\n    title: Shop\n    columns: [dev, stg, prod]\n    selector: app.kubernetes.io/part-of=shop\n    policies: {maxLagReleases: 0, promotionPath: strict, noDigestDrift: true}\n",
        );
        let store = Arc::new(CountingStore::new(store));
        let dyn_store: Arc<dyn Store> = store.clone();
        let fleet = Arc::new(FleetSource::from_text(dyn_store.clone(), &yaml).unwrap());
        let sdk = match access {
            ClusterAccess::Eks { sdk, .. } => *sdk,
            ClusterAccess::Direct => aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
        };
        let connector = AwsConnector::new(
            sdk,
            KubeTimeouts { connect: Duration::from_secs(5), read: Duration::from_secs(5) },
        )
        .with_deployed_local(fleet.deployed_local_clusters());
        let snapshotter = Arc::new(Snapshotter::new(
            dyn_store.clone(),
            Arc::new(connector),
            clock.clone(),
            SnapshotOptions::default(),
        ));
        let trigger = Arc::new(InProcessTrigger::new(snapshotter.clone(), fleet.clone()));
        let ports = Ports {
            fleet: fleet.clone(),
            store: dyn_store.clone(),
            clock: clock.clone(),
            trigger: trigger.clone(),
        };
        let app = shared::http::with_api_defaults(routes(&ports), dyn_store.clone());
        let user = |local: &str, role: Role, teams: &[&str]| {
            let store = dyn_store.clone();
            let clock = clock.clone();
            let email = format!("{}@example.com", unique(local));
            let teams: Vec<_> = teams.iter().map(|t| t.parse().unwrap()).collect();
            async move {
                let token = unique("token");
                shared::testing::signed_in(
                    store.as_ref(),
                    &email,
                    role,
                    teams,
                    &token,
                    clock.now(),
                )
                .await
                .unwrap();
                User { token }
            }
        };
        let admin = user("admin", Role::Admin, &[]).await;
        let platform = user("platform", Role::Viewer, &["platform"]).await;
        let dev = user("dev", Role::Viewer, &["dev"]).await;
        Self {
            app,
            store,
            clock,
            fleet,
            snapshotter,
            trigger,
            clusters,
            admin,
            platform,
            dev,
            _token_file: token_file,
        }
    }

    /// The real name of a cluster by its short name.
    pub fn cluster(&self, short: &str) -> String {
        self.clusters.iter().find(|(s, _)| s == short).unwrap().1.name().to_owned()
    }

    pub fn fake(&self, short: &str) -> &FakeCluster {
        &self.clusters.iter().find(|(s, _)| s == short).unwrap().1
    }

    /// Snapshots every environment, as the schedules would.
    pub async fn snapshot_all(&self) {
        for (env, _) in ENVIRONMENTS {
            self.snapshot(env).await;
        }
    }

    /// Snapshots one environment; every cluster must succeed.
    pub async fn snapshot(&self, env: &str) {
        let config = self.fleet.current().await.unwrap();
        let request = SnapshotRequest::environment(env.parse().unwrap());
        let report = self.snapshotter.run(&config, &request).await.unwrap();
        let ok = report.count(OutcomeStatus::Ok);
        assert_eq!(ok, report.outcomes.len(), "{env}: {}", report.summary());
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, user: &User) -> Reply {
        self.send(shared::testing::api_request(method, path, body, Some(&user.token))).await
    }

    /// A GET that asks for CSV by its `Accept` header.
    pub async fn get_csv(&self, path: &str, user: &User) -> Reply {
        let mut request = shared::testing::api_request("GET", path, None, Some(&user.token));
        request.headers_mut().insert(http::header::ACCEPT, "text/csv".parse().unwrap());
        self.send(request).await
    }

    pub async fn send(&self, request: http::Request<axum::body::Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 64 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    pub async fn get(&self, path: &str, user: &User) -> Reply {
        self.call("GET", path, None, user).await
    }

    /// Every item of a paginated list, following `next`.
    pub async fn all(&self, path: &str, user: &User) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &next {
                Some(cursor) => format!("{path}{sep}cursor={cursor}"),
                None => path.to_owned(),
            };
            let reply = self.get(&url, user).await;
            assert_eq!(reply.status, StatusCode::OK, "{url}: {}", reply.text);
            items.extend(reply.body["items"].as_array().unwrap().iter().cloned());
            match reply.body["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => return items,
            }
        }
    }
}
