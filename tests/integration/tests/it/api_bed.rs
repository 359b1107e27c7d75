//! The bed the inventory and dashboards tests share: a small fleet of fake
//! EKS clusters (registered with moto's EKS, IAM tokens), snapshotted by the
//! real `Snapshotter` into DynamoDB on moto, the API routers over it, and
//! three signed-in users: an admin, a platform-team viewer and a dev-team
//! viewer. What runs where is chosen so that every dashboard flag shows.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::to_bytes;
use fake_kube::{ClusterObjects, FakeCluster, Image, PodPhase, TestCa, WorkloadKind, WorkloadSpec};
use http::{HeaderMap, StatusCode};
use integration_tests::{aws, fresh_table, register_eks_cluster, unique};
use jiff::Timestamp;
use serde_json::Value;
use shared::clock::{Clock, ManualClock};
use shared::context::ApiContext;
use shared::fleet::FleetSource;
use shared::model::SnapshotRequest;
use shared::records::account::Role;
use shared::store::Store;
use shared::store::counting::CountingStore;
use shared::store::dynamodb::DynamoStore;
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

pub struct ApiBed {
    pub app: Router,
    pub store: Arc<CountingStore<DynamoStore>>,
    pub clock: Arc<ManualClock>,
    pub fleet: Arc<FleetSource>,
    pub snapshotter: Arc<Snapshotter>,
    pub trigger: Arc<InProcessTrigger>,
    /// Fake clusters by short name (`prod-a`); their real names are unique.
    pub clusters: Vec<(String, FakeCluster)>,
    pub admin: User,
    pub platform: User,
    pub dev: User,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl ApiBed {
    pub async fn new() -> Self {
        let ca = TestCa::generate().unwrap();
        let suffix = unique("x");
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
                let fake = FakeCluster::start(&name, &ca, &objects(&plan(&short)), "unused")
                    .await
                    .unwrap();
                fake.accept_eks_tokens();
                register_eks_cluster(ACCOUNT, "eu-west-1", &fake).await;
                yaml.push_str(&format!("      - name: {name}\n"));
                clusters.push((short, fake));
            }
        }
        yaml.push_str(
            "dashboards:\n  - name: shop\n    title: Shop\n    columns: [dev, stg, prod]\n    selector: app.kubernetes.io/part-of=shop\n",
        );
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        let store = Arc::new(CountingStore::new(fresh_table(clock.clone()).await));
        let dyn_store: Arc<dyn Store> = store.clone();
        let fleet = Arc::new(FleetSource::from_text(dyn_store.clone(), &yaml).unwrap());
        let connector = AwsConnector::new(
            aws().await,
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
        let context = || ApiContext::new(fleet.clone(), dyn_store.clone(), clock.clone());
        let app = Router::new()
            .merge(inventory::router(context(), trigger.clone()))
            .merge(dashboards::router(context()));
        let app = shared::http::with_api_defaults(app, dyn_store.clone());
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
        Self { app, store, clock, fleet, snapshotter, trigger, clusters, admin, platform, dev }
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
