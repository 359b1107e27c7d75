//! The snapshot end to end: the real `Snapshotter` with the production
//! connector (STS and EKS on moto, IAM tokens), the real `kube` client
//! against fake API servers over TLS, and DynamoDB on moto.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use fake_kube::{
    ClusterObjects, FakeCluster, Fault, FaultRule, Image, TestCa, WorkloadKind, WorkloadSpec,
};
use integration_tests::{aws, fresh_table, register_eks_cluster, unique};
use jiff::Timestamp;
use serde::Deserialize as _;
use shared::clock::ManualClock;
use shared::config::FleetConfig;
use shared::model::SnapshotRequest;
use shared::model::{Change, ClusterStatus, HistoryEvent, PodRecord, Workload};
use shared::records::keys;
use shared::store::counting::CountingStore;
use shared::store::dynamodb::DynamoStore;
use shared::store::{ItemGet, ItemKey, ItemQuery, Query, SortKeyRange};
use snapshot::access::{AwsConnector, KubeTimeouts};
use snapshot::collect::ListPolicy;
use snapshot::snapshotter::{
    OutcomeStatus, SnapshotError, SnapshotOptions, SnapshotReport, Snapshotter,
};

const ACCOUNT: &str = "123456789012";
const OTHER_ACCOUNT: &str = "111122223333";
const ENVIRONMENT: &str = "dab-platform-stg";
const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

/// What a test cluster runs; each test changes one thing.
#[derive(Clone)]
struct Shape {
    payments_version: &'static str,
    with_ledger: bool,
    rolling_accounts: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self { payments_version: "1.4.2", with_ledger: true, rolling_accounts: false }
    }
}

fn image(service: &str, tag: &str) -> Image {
    Image::new(REGISTRY, &format!("dab/{service}"), tag, None)
}

/// Nine dab services (Deployments, a StatefulSet), one Deployment of
/// another component, and a kube-system DaemonSet: the selector keeps nine.
fn objects(shape: &Shape) -> ClusterObjects {
    let nodes = ["ip-10-0-1-10".to_owned(), "ip-10-0-2-20".to_owned()];
    let mut objects = ClusterObjects::new(33);
    let dab = |spec: WorkloadSpec, version: &str| {
        spec.label("app.kubernetes.io/component", "dab").label("app.kubernetes.io/version", version)
    };
    let mut specs = vec![dab(
        WorkloadSpec::deployment(
            "dab",
            "payments-api",
            image("payments-api", shape.payments_version),
        )
        .replicas(3),
        shape.payments_version,
    )];
    let accounts =
        WorkloadSpec::deployment("dab", "accounts-api", image("accounts-api", "2.0.0")).replicas(4);
    let accounts = if shape.rolling_accounts {
        accounts.rolling_from(image("accounts-api", "1.9.0"), 2)
    } else {
        accounts
    };
    specs.push(dab(accounts, "2.0.0"));
    if shape.with_ledger {
        specs.push(dab(
            WorkloadSpec::deployment("dab", "ledger-worker", image("ledger-worker", "0.9.1")),
            "0.9.1",
        ));
    }
    for i in 0..5 {
        let name = format!("svc-{i}");
        specs.push(dab(
            WorkloadSpec::deployment("dab-edge", &name, image(&name, "3.1.0")).replicas(1),
            "3.1.0",
        ));
    }
    specs.push(dab(
        WorkloadSpec::deployment("corda", "corda-node", image("corda-node", "4.12"))
            .kind(WorkloadKind::StatefulSet)
            .replicas(2),
        "4.12",
    ));
    specs.push(
        WorkloadSpec::deployment("monitoring", "grafana", image("grafana", "11.0.0"))
            .label("app.kubernetes.io/component", "monitoring"),
    );
    specs.push(
        WorkloadSpec::deployment("kube-system", "kube-proxy", image("kube-proxy", "v1.33.0"))
            .kind(WorkloadKind::DaemonSet),
    );
    for spec in &specs {
        objects.add_workload(spec, &nodes);
    }
    objects
}

const DAB_WORKLOADS: usize = 9;

struct Bed {
    fakes: Vec<FakeCluster>,
    names: Vec<String>,
    fleet: FleetConfig,
    store: Arc<CountingStore<DynamoStore>>,
    clock: Arc<ManualClock>,
    snapshotter: Snapshotter,
}

impl Bed {
    /// `clusters` EKS clusters in one environment, registered with moto;
    /// the last one lives in another account behind the reader role when
    /// `cross_account`.
    async fn new(clusters: usize, cross_account: bool) -> Self {
        let ca = TestCa::generate().unwrap();
        let mut fakes = Vec::new();
        let mut names = Vec::new();
        let mut yaml = format!(
            "environments:\n  - name: {ENVIRONMENT}\n    labelSelector: app.kubernetes.io/component=dab\n    namespaces: {{ exclude: [kube-system] }}\n    clusters:\n"
        );
        for i in 0..clusters {
            let name = unique(&format!("eks-microservices-dab-stg-{i}"));
            let fake =
                FakeCluster::start(&name, &ca, &objects(&Shape::default()), "static-token-unused")
                    .await
                    .unwrap();
            fake.accept_eks_tokens();
            let other = cross_account && i == clusters - 1;
            register_eks_cluster(if other { OTHER_ACCOUNT } else { ACCOUNT }, "eu-west-1", &fake)
                .await;
            yaml.push_str(&format!("      - name: {name}\n        region: eu-west-1\n"));
            if other {
                yaml.push_str(&format!(
                    "        roleArn: arn:aws:iam::{OTHER_ACCOUNT}:role/release-dashboard-reader\n        externalId: release-dashboard\n"
                ));
            }
            names.push(name);
            fakes.push(fake);
        }
        let fleet = FleetConfig::parse(&yaml, "test").unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        let store = Arc::new(CountingStore::new(fresh_table(clock.clone()).await));
        let connector = AwsConnector::new(
            aws().await,
            // Generous for a loaded 2-core machine running every test at
            // once; the timeout test's latency is well above `read`.
            KubeTimeouts { connect: Duration::from_secs(5), read: Duration::from_secs(3) },
        );
        let options = SnapshotOptions {
            // Small pages so that every list follows `continue`.
            list: ListPolicy {
                page_size: 4,
                max_restarts: 3,
                max_throttle_retries: 1,
                max_retry_wait: Duration::from_millis(200),
                max_page_bytes: MAX_PAGE,
            },
            cluster_timeout: Duration::from_secs(20),
            ..SnapshotOptions::default()
        };
        let snapshotter =
            Snapshotter::new(store.clone(), Arc::new(connector), clock.clone(), options);
        Self { fakes, names, fleet, store, clock, snapshotter }
    }

    async fn run(&self) -> SnapshotReport {
        self.try_run().await.unwrap_or_else(|e| panic!("snapshot failed: {e}"))
    }

    async fn try_run(&self) -> Result<SnapshotReport, SnapshotError> {
        let request = SnapshotRequest::environment(ENVIRONMENT.parse().unwrap());
        self.snapshotter.run(&self.fleet, &request).await
    }

    fn later(&self, minutes: u64) {
        self.clock.advance(Duration::from_secs(minutes * 60));
    }

    async fn workloads(&self, cluster: usize) -> Vec<Workload> {
        let query = Query::partition(keys::cluster_pk(&self.names[cluster]))
            .range(SortKeyRange::Prefix(keys::WORKLOAD_PREFIX.into()));
        self.all(query).await
    }

    async fn pods(&self, cluster: usize) -> Vec<PodRecord> {
        self.all(Query::partition(keys::pods_pk(&self.names[cluster]))).await
    }

    async fn history(&self) -> Vec<HistoryEvent> {
        self.all(Query::partition(keys::environment_history_pk(ENVIRONMENT))).await
    }

    async fn status(&self, cluster: usize) -> ClusterStatus {
        let key = ItemKey::new(keys::cluster_pk(&self.names[cluster]), keys::STATUS_SK);
        let stored = self.store.get(&key).await.unwrap().expect("status item");
        serde_json::from_value(stored.item.body).unwrap()
    }

    async fn all<T: serde::de::DeserializeOwned>(&self, query: Query) -> Vec<T> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store.query(query.clone().limit(500).after(cursor)).await.unwrap();
            out.extend(
                page.items.into_iter().map(|s| serde_json::from_value(s.item.body).unwrap()),
            );
            match page.next {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    }
}

fn outcome<'a>(
    report: &'a SnapshotReport,
    cluster: &str,
) -> &'a snapshot::snapshotter::ClusterOutcome {
    report.outcomes.iter().find(|o| o.cluster.as_str() == cluster).expect("an outcome per cluster")
}

#[tokio::test]
async fn the_first_snapshot_stores_workloads_pods_status_and_history() {
    let bed = Bed::new(2, false).await;
    let report = bed.run().await;
    assert_eq!(report.count(OutcomeStatus::Ok), 2, "{report:?}");

    let workloads = bed.workloads(0).await;
    assert_eq!(workloads.len(), DAB_WORKLOADS, "the selector keeps the dab component only");
    let payments = workloads.iter().find(|w| w.name == "payments-api").unwrap();
    assert_eq!((payments.service.as_str(), payments.version.as_str()), ("payments-api", "1.4.2"));
    assert_eq!(payments.replicas.desired, 3);
    assert_eq!(payments.pods.total, 3);
    let digest = &payments.images[0].image.digest;
    assert_eq!(
        digest.as_deref(),
        Some(image("payments-api", "1.4.2").digest.as_str()),
        "digest resolved from the pods"
    );
    assert!(!payments.rolling);
    let corda = workloads.iter().find(|w| w.name == "corda-node").unwrap();
    assert_eq!(corda.kind, shared::model::WorkloadKind::StatefulSet);

    let pods = bed.pods(0).await;
    assert_eq!(pods.len(), 3 + 4 + 2 + 5 + 2, "pods of the selected workloads");
    let pod = pods.iter().find(|p| p.name.starts_with("payments-api-")).unwrap();
    assert_eq!(
        pod.owner.as_ref().map(|o| (o.kind.as_str(), o.name.as_str())),
        Some(("Deployment", "payments-api"))
    );

    let status = bed.status(0).await;
    assert_eq!(status.generation, 1);
    assert!(status.last_success.is_some() && status.last_error.is_none() && status.lease.is_none());
    assert_eq!((status.counts.workloads, status.counts.pods), (9, 16));
    assert_eq!(status.kubernetes_version.as_deref(), Some("1.33"));

    let history = bed.history().await;
    assert_eq!(history.len(), 2 * DAB_WORKLOADS, "one Added event per workload and cluster");
    assert!(history.iter().all(|e| e.change == Change::Added && e.from_version.is_none()));

    // Lists were paged (pages of 4) and authenticated with IAM tokens.
    let requests = bed.fakes[0].requests();
    assert!(requests.iter().any(|r| r.path.ends_with("/pods") && r.query.contains_key("continue")));
    assert!(requests.iter().all(|r| r.status == 200), "{requests:?}");
}

#[tokio::test]
async fn an_unchanged_second_run_rewrites_no_workload() {
    let bed = Bed::new(2, false).await;
    bed.run().await;
    let first = bed.store.take_writes();
    assert!(first as usize > 2 * (DAB_WORKLOADS + 16), "first run writes every item: {first}");
    bed.later(2);
    let report = bed.run().await;
    let second = bed.store.take_writes();
    // Per cluster: the lease taken on the status item, and released.
    assert_eq!(second, 2 * 2, "only status items were written; report: {report:?}");
    for cluster in [0, 1] {
        let writes = outcome(&report, &bed.names[cluster]).writes.unwrap();
        assert_eq!(
            (writes.workloads_written, writes.pods_written, writes.history_events),
            (0, 0, 0)
        );
    }
    assert_eq!(bed.status(0).await.generation, 2);
}

#[tokio::test]
async fn ttls_are_renewed_only_once_half_spent() {
    let bed = Bed::new(1, false).await;
    bed.run().await;
    bed.store.take_writes();
    // The default snapshot TTL is an hour: 31 minutes later, renew.
    bed.later(31);
    let report = bed.run().await;
    let writes = outcome(&report, &bed.names[0]).writes.unwrap();
    assert_eq!(writes.ttl_renewed as usize, DAB_WORKLOADS + 16);
    assert_eq!(writes.history_events, 0);
    bed.store.take_writes();
    bed.later(2);
    bed.run().await;
    assert_eq!(bed.store.take_writes(), 2, "renewed items are not rewritten again");
}

#[tokio::test]
async fn a_version_change_records_exactly_one_history_event() {
    let bed = Bed::new(2, false).await;
    bed.run().await;
    bed.later(2);
    bed.fakes[1].set_objects(&objects(&Shape { payments_version: "1.5.0", ..Shape::default() }));
    let report = bed.run().await;
    let writes = outcome(&report, &bed.names[1]).writes.unwrap();
    assert_eq!(writes.workloads_written, 1);
    assert_eq!(writes.history_events, 1);
    assert_eq!(outcome(&report, &bed.names[0]).writes.unwrap().history_events, 0);

    let changed: Vec<HistoryEvent> =
        bed.history().await.into_iter().filter(|e| e.change == Change::Changed).collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    let event = &changed[0];
    assert_eq!(
        (event.service.as_str(), event.cluster.as_str()),
        ("payments-api", bed.names[1].as_str())
    );
    assert_eq!(
        (event.from_version.as_deref(), event.to_version.as_deref()),
        (Some("1.4.2"), Some("1.5.0"))
    );
    assert!(event.to_images[0].contains(":1.5.0@sha256:"), "{:?}", event.to_images);
    let payments = bed.workloads(1).await.into_iter().find(|w| w.name == "payments-api").unwrap();
    assert_eq!(payments.version, "1.5.0");
}

#[tokio::test]
async fn a_removed_workload_is_deleted_with_its_pods_and_recorded() {
    let bed = Bed::new(1, false).await;
    bed.run().await;
    bed.later(2);
    bed.fakes[0].set_objects(&objects(&Shape { with_ledger: false, ..Shape::default() }));
    let report = bed.run().await;
    assert_eq!(
        outcome(&report, &bed.names[0]).writes.unwrap().deleted,
        3,
        "the workload and its two pods"
    );
    let workloads = bed.workloads(0).await;
    assert_eq!(workloads.len(), DAB_WORKLOADS - 1);
    assert!(bed.pods(0).await.iter().all(|p| !p.name.starts_with("ledger-worker")));
    let removed: Vec<HistoryEvent> =
        bed.history().await.into_iter().filter(|e| e.change == Change::Removed).collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(
        (
            removed[0].service.as_str(),
            removed[0].from_version.as_deref(),
            removed[0].to_version.as_deref()
        ),
        ("ledger-worker", Some("0.9.1"), None)
    );
}

#[tokio::test]
async fn a_rolling_deployment_is_flagged_with_both_images() {
    let bed = Bed::new(1, false).await;
    bed.fakes[0].set_objects(&objects(&Shape { rolling_accounts: true, ..Shape::default() }));
    bed.run().await;
    let accounts = bed.workloads(0).await.into_iter().find(|w| w.name == "accounts-api").unwrap();
    assert!(accounts.rolling);
    let running: Vec<&str> = accounts.pods.images.iter().map(|i| i.image.as_str()).collect();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(
        running.iter().any(|i| i.ends_with(":1.9.0"))
            && running.iter().any(|i| i.ends_with(":2.0.0"))
    );
    assert_eq!((accounts.replicas.desired, accounts.replicas.updated), (4, 2));
    let payments = bed.workloads(0).await.into_iter().find(|w| w.name == "payments-api").unwrap();
    assert!(!payments.rolling);
}

/// Cluster 1 of 3 fails with `fault`; the others succeed, and cluster 1
/// keeps its last good snapshot and records the failure. Each cluster's
/// metrics say so: failures, data age, workloads seen.
async fn one_cluster_fails(fault: impl FnOnce(&Bed), expected_kind: &str) {
    let sink = crate::metrics();
    let bed = Bed::new(3, false).await;
    bed.run().await;
    let first_success = bed.status(1).await.last_success;
    bed.later(2);
    fault(&bed);
    let report = bed.run().await;
    let failed = outcome(&report, &bed.names[1]);
    assert_eq!(failed.status, OutcomeStatus::Failed, "{report:?}");
    assert_eq!(failed.error_kind, Some(expected_kind), "{failed:?}");
    for ok in [0, 2] {
        assert_eq!(outcome(&report, &bed.names[ok]).status, OutcomeStatus::Ok, "{report:?}");
    }
    assert_eq!(bed.workloads(1).await.len(), DAB_WORKLOADS, "the last good snapshot stays");
    assert_eq!(bed.pods(1).await.len(), 16);
    let status = bed.status(1).await;
    assert_eq!(status.last_error.as_ref().map(|e| e.kind.as_str()), Some(expected_kind));
    assert_eq!(status.last_success, first_success);
    assert!(status.last_attempt > status.last_success);
    assert!(status.lease.is_none(), "the lease is released after a failure");

    // Records of other tests arrive here too: look for this bed's clusters.
    let records = sink.records();
    let of = |cluster: usize| -> Vec<&serde_json::Value> {
        records.iter().filter(|r| r["Cluster"] == bed.names[cluster].as_str()).collect()
    };
    let failed = of(1);
    assert_eq!(failed.len(), 2, "one record per run: {failed:?}");
    let last = failed[1];
    assert_eq!(last["SnapshotFailures"], 1.0);
    assert_eq!(last["DataAge"], 120.0, "two minutes since the last good data");
    assert!(last["DataAgeIntervals"].as_f64().unwrap() > 0.0);
    assert!(last.get("WorkloadsSeen").is_none());
    assert_eq!(failed[0]["SnapshotFailures"], 0.0);
    assert_eq!(failed[0]["WorkloadsSeen"].as_f64(), Some(DAB_WORKLOADS as f64));
    assert_eq!(of(0)[1]["DataAge"], 0.0);
    assert!(records.iter().any(|r| r["FailureKind"] == expected_kind));
}

#[tokio::test]
async fn a_cluster_answering_401_fails_alone() {
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/", Fault::RevokeTokens)),
        "Unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_answering_403_fails_alone() {
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/pods", Fault::Status(403))),
        "Forbidden",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_answering_429_fails_alone_after_bounded_retries() {
    one_cluster_fails(
        |bed| {
            bed.fakes[1].inject(FaultRule::on(
                "/deployments",
                Fault::TooManyRequests { retry_after_secs: 1 },
            ))
        },
        "Throttled",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_answering_500_fails_alone() {
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/replicasets", Fault::Status(500))),
        "ApiError",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_behind_a_proxy_answering_html_fails_alone() {
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>".to_owned();
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/pods", Fault::Body { status: 502, body: page })),
        "ApiError",
    )
    .await;
}

#[tokio::test]
async fn a_list_that_does_not_decode_fails_the_cluster_alone_and_is_never_logged() {
    let logs = crate::captured_log();
    // A list cut short: what a broken server or proxy sends.
    let body = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"secret-payments-pod"#;
    let garbled = Fault::Body { status: 200, body: body.to_owned() };
    one_cluster_fails(|bed| bed.fakes[1].inject(FaultRule::on("/pods", garbled)), "ApiError").await;
    let text = logs.text();
    assert!(text.contains("could not be read"), "the failure is logged: {text}");
    assert!(!text.contains("secret-payments-pod"), "the body never is");
}

/// The bed's largest page: its pages of 4 objects weigh tens of KB, a few MB
/// where the huge objects are.
const MAX_PAGE: usize = 16 * 1024 * 1024;

#[tokio::test]
async fn a_page_larger_than_the_limit_fails_the_cluster_alone() {
    let huge = format!("{{\"items\":[\"{}\"]}}", "x".repeat(MAX_PAGE));
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/pods", Fault::Body { status: 200, body: huge })),
        "ApiError",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_that_times_out_fails_alone() {
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/pods", Fault::Latency(Duration::from_secs(6)))),
        "Timeout",
    )
    .await;
}

#[tokio::test]
async fn a_cluster_that_resets_connections_fails_alone() {
    one_cluster_fails(
        |bed| bed.fakes[1].inject(FaultRule::on("/", Fault::ResetConnection)),
        "Unreachable",
    )
    .await;
}

#[tokio::test]
async fn an_expired_continue_token_restarts_the_list_and_the_snapshot_succeeds() {
    let bed = Bed::new(1, false).await;
    bed.fakes[0].inject(FaultRule::on("/pods", Fault::ExpireContinueTokens).after(2).times(1));
    let report = bed.run().await;
    assert_eq!(outcome(&report, &bed.names[0]).status, OutcomeStatus::Ok);
    assert_eq!(bed.pods(0).await.len(), 16, "no pod lost or doubled by the restart");
    let payments = bed.workloads(0).await.into_iter().find(|w| w.name == "payments-api").unwrap();
    assert_eq!(payments.pods.total, 3, "no pod counted twice");
    assert!(bed.fakes[0].requests().iter().any(|r| r.status == 410));
}

#[tokio::test]
async fn a_token_revoked_mid_run_fails_the_cluster_and_a_later_run_recovers() {
    let bed = Bed::new(2, false).await;
    // Revoked after the version call and the first ReplicaSet page.
    bed.fakes[0].inject(FaultRule::on("/", Fault::RevokeTokens).after(2).times(1));
    let report = bed.run().await;
    assert_eq!(outcome(&report, &bed.names[0]).error_kind, Some("Unauthorized"));
    assert_eq!(outcome(&report, &bed.names[1]).status, OutcomeStatus::Ok);
    assert!(bed.workloads(0).await.is_empty(), "nothing half-written");

    bed.fakes[0].restore_access();
    bed.later(2);
    let report = bed.run().await;
    assert_eq!(outcome(&report, &bed.names[0]).status, OutcomeStatus::Ok, "{report:?}");
    assert_eq!(bed.workloads(0).await.len(), DAB_WORKLOADS);
}

#[tokio::test]
async fn two_concurrent_runs_of_one_cluster_never_interleave() {
    let bed = Bed::new(1, false).await;
    // Slow enough that the second run starts while the first holds the lease.
    bed.fakes[0]
        .inject(FaultRule::on("/version", Fault::Latency(Duration::from_millis(500))).times(1));
    let request = SnapshotRequest::cluster(bed.names[0].parse().unwrap());
    let (a, b) = tokio::join!(
        bed.snapshotter.run(&bed.fleet, &request),
        bed.snapshotter.run(&bed.fleet, &request)
    );
    let statuses = [a.unwrap().outcomes[0].status, b.unwrap().outcomes[0].status];
    assert!(
        statuses.contains(&OutcomeStatus::Ok) && statuses.contains(&OutcomeStatus::Skipped),
        "{statuses:?}"
    );
    assert_eq!(bed.status(0).await.generation, 1, "exactly one run stored a snapshot");
    assert_eq!(bed.history().await.len(), DAB_WORKLOADS, "no event twice");
    bed.later(2);
    let report = bed.snapshotter.run(&bed.fleet, &request).await.unwrap();
    assert_eq!(report.outcomes[0].status, OutcomeStatus::Ok, "the lease was released");
}

#[tokio::test]
async fn a_cluster_in_another_account_is_read_through_the_reader_role() {
    let bed = Bed::new(2, true).await;
    let report = bed.run().await;
    assert_eq!(report.count(OutcomeStatus::Ok), 2, "{report:?}");
    assert_eq!(bed.workloads(1).await.len(), DAB_WORKLOADS);
}

#[tokio::test]
async fn a_cluster_unknown_to_eks_fails_as_an_aws_error() {
    let bed = Bed::new(2, false).await;
    let yaml = format!(
        "environments:\n  - name: {ENVIRONMENT}\n    clusters:\n      - {{ name: {}, region: eu-west-1 }}\n      - {{ name: {}, region: eu-west-1 }}\n",
        bed.names[0],
        unique("eks-nowhere")
    );
    let fleet = FleetConfig::parse(&yaml, "test").unwrap();
    let report = bed
        .snapshotter
        .run(&fleet, &SnapshotRequest::environment(ENVIRONMENT.parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(report.count(OutcomeStatus::Ok), 1);
    let failed = report.outcomes.iter().find(|o| o.status == OutcomeStatus::Failed).unwrap();
    assert_eq!(failed.error_kind, Some("Aws"));
}

#[tokio::test]
async fn the_invocation_fails_only_when_every_cluster_failed() {
    let bed = Bed::new(2, false).await;
    for fake in &bed.fakes {
        fake.inject(FaultRule::on("/", Fault::Status(500)));
    }
    match bed.try_run().await {
        Err(SnapshotError::AllFailed(report)) => assert_eq!(report.count(OutcomeStatus::Failed), 2),
        other => panic!("expected AllFailed, got {other:?}"),
    }
    bed.fakes[0].clear_faults();
    let report = bed.try_run().await.expect("one cluster ok is a successful invocation");
    assert_eq!((report.count(OutcomeStatus::Ok), report.count(OutcomeStatus::Failed)), (1, 1));
}

#[tokio::test]
async fn a_cluster_that_is_down_fails_alone_as_unreachable() {
    let mut bed = Bed::new(3, false).await;
    bed.run().await;
    bed.later(2);
    // The API server goes away: connections are refused.
    drop(bed.fakes.remove(1));
    let report = bed.run().await;
    let failed = outcome(&report, &bed.names[1]);
    assert_eq!(
        (failed.status, failed.error_kind),
        (OutcomeStatus::Failed, Some("Unreachable")),
        "{report:?}"
    );
    assert_eq!(report.count(OutcomeStatus::Ok), 2);
    assert_eq!(bed.workloads(1).await.len(), DAB_WORKLOADS, "the last good snapshot stays");
}

/// The ClusterRole of `infra/kubernetes/reader-rbac.yaml`: `(group,
/// resource)` → verbs.
fn reader_cluster_role() -> BTreeMap<(String, String), Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/kubernetes/reader-rbac.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut allowed = BTreeMap::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let document = serde_norway::Value::deserialize(document).unwrap();
        if document["kind"] != "ClusterRole" {
            continue;
        }
        for rule in document["rules"].as_sequence().unwrap() {
            let list = |key: &str| -> Vec<String> {
                rule[key]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    allowed.insert((group.clone(), resource), list("verbs"));
                }
            }
        }
    }
    allowed
}

/// `/api/v1/pods`, `/apis/apps/v1/namespaces/x/deployments` → `(group, resource)`.
fn resource_of(path: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => return None,
    };
    let resource = match rest {
        ["namespaces", _, resource, ..] => resource,
        [resource, ..] => resource,
        [] => return None,
    };
    Some((group, (*resource).to_owned()))
}

#[tokio::test]
async fn the_reader_cluster_role_allows_every_request_a_snapshot_makes_and_no_more() {
    let bed = Bed::new(1, false).await;
    bed.run().await;
    let allowed = reader_cluster_role();
    let mut used = BTreeSet::new();
    for request in bed.fakes[0].requests() {
        if request.path == "/version" {
            // Readable by every authenticated user (system:public-info-viewer).
            continue;
        }
        let resource = resource_of(&request.path).unwrap_or_else(|| panic!("{}", request.path));
        assert_eq!(request.method, "GET", "{request:?}");
        let verbs = allowed.get(&resource).unwrap_or_else(|| panic!("{resource:?} is not granted"));
        assert!(verbs.iter().any(|v| v == "list"), "{resource:?}: {verbs:?}");
        used.insert(resource);
    }
    let granted: BTreeSet<(String, String)> = allowed.keys().cloned().collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.iter().all(|(_, resource)| resource == "namespaces"),
        "granted but never used: {unused:?}"
    );
    assert!(!granted.iter().any(|(_, r)| r == "secrets" || r == "configmaps"));
}

#[tokio::test]
async fn the_sweep_takes_only_clusters_whose_refresh_interval_has_passed() {
    let bed = Bed::new(2, false).await;
    let due = SnapshotRequest::due();
    let interval = bed.fleet.environments[0].refresh_interval;
    let first = bed.snapshotter.run(&bed.fleet, &due).await.unwrap();
    assert_eq!(first.count(OutcomeStatus::Ok), 2, "never attempted: both due: {first:?}");
    bed.clock.advance(interval / 2);
    let early = bed.snapshotter.run(&bed.fleet, &due).await.unwrap();
    assert!(early.outcomes.is_empty(), "half an interval later: none due: {early:?}");
    // One cluster is refreshed on demand in between: it is not due with the other.
    let one = SnapshotRequest::cluster(bed.names[1].parse().unwrap());
    assert_eq!(bed.snapshotter.run(&bed.fleet, &one).await.unwrap().count(OutcomeStatus::Ok), 1);
    bed.clock.advance(interval / 2 - Duration::from_secs(10));
    let swept = bed.snapshotter.run(&bed.fleet, &due).await.unwrap();
    let names: Vec<&str> = swept.outcomes.iter().map(|o| o.cluster.as_str()).collect();
    assert_eq!(names, [bed.names[0].as_str()], "the interval less the schedule's jitter");
    let bad =
        SnapshotRequest { due: true, ..SnapshotRequest::cluster(bed.names[0].parse().unwrap()) };
    assert!(matches!(
        bed.snapshotter.run(&bed.fleet, &bad).await,
        Err(SnapshotError::AmbiguousTarget)
    ));
}

/// Objects a real API server accepts that stretch every limit of the
/// store: each is stored trimmed and keyed within DynamoDB's limits, and
/// the one that cannot be stored at all is named while the rest succeeds.
#[tokio::test]
async fn no_value_from_a_cluster_breaks_a_store_limit_and_what_cannot_be_stored_is_named() {
    let bed = Bed::new(1, false).await;
    let nodes = ["ip-10-0-1-10".to_owned()];
    let mut objects = objects(&Shape::default());
    let dab = |spec: WorkloadSpec| spec.label("app.kubernetes.io/component", "dab");
    let long_tag = "v".repeat(1_100);
    let long_namespace = "n".repeat(300);
    objects.add_namespace(&long_namespace);
    let hostile = [
        // A 1,100-character tag and no version label: the version is the tag.
        dab(WorkloadSpec::deployment("dab", "long-tag", image("long-tag", &long_tag))),
        dab(WorkloadSpec::deployment("dab", "annotated", image("annotated", "1.0.0")))
            .annotation("example.com/notes", &"a".repeat(70 * 1024))
            .label("example.com/blob", &"b".repeat(70 * 1024)),
        (1..500).fold(
            dab(WorkloadSpec::deployment("dab", "many-containers", image("many", "2.0.0"))),
            |spec, i| spec.sidecar(image(&format!("side-{i}"), "1.0.0")),
        ),
        dab(WorkloadSpec::deployment(&long_namespace, "far-away", image("far-away", "3.0.0"))),
        dab(WorkloadSpec::deployment("dab", "huge-image", image(&"h".repeat(450 * 1024), "1.0.0"))),
    ];
    for spec in &hostile {
        objects.add_workload(&spec.clone().replicas(1), &nodes);
    }
    bed.fakes[0].set_objects(&objects);

    let report = bed.run().await;
    assert_eq!(report.count(OutcomeStatus::Ok), 1, "{}", report.summary());
    let workloads = bed.workloads(0).await;
    let named = |name: &str| workloads.iter().find(|w| w.name == name);
    let long = named("long-tag").expect("stored");
    assert_eq!(long.version, long_tag, "the item keeps the whole value");
    let annotated = named("annotated").expect("stored");
    assert!(!annotated.labels.contains_key("example.com/blob"), "a 70 KB label is left out");
    assert_eq!(annotated.omitted.labels, 1);
    assert_eq!(annotated.labels["app.kubernetes.io/component"], "dab", "recommended labels kept");
    let many = named("many-containers").expect("stored");
    assert_eq!((many.images.len(), many.omitted.containers), (64, 436));
    assert_eq!(named("far-away").expect("stored").namespace, long_namespace);
    assert!(named("huge-image").is_none(), "too large even trimmed");
    assert_eq!(workloads.len(), DAB_WORKLOADS + 4, "the rest of the cluster is stored");

    let status = bed.status(0).await;
    assert!(status.last_error.is_none(), "{:?}", status.last_error);
    let skipped: Vec<(&str, &str, &str)> = status
        .skipped
        .iter()
        .map(|s| {
            (s.kind.as_str(), s.namespace.as_str(), s.name.split('-').take(2).collect::<Vec<_>>())
        })
        .map(|(kind, namespace, name)| {
            (kind, namespace, if name == ["huge", "image"] { "huge-image" } else { "other" })
        })
        .collect();
    assert_eq!(
        skipped,
        [("Pod", "dab", "huge-image"), ("Deployment", "dab", "huge-image")],
        "the workload and its pod, each named: {:?}",
        status.skipped
    );
    assert!(status.skipped.iter().all(|s| s.reason.contains("bytes")), "{:?}", status.skipped);

    // An unchanged second run stores nothing again and stays healthy.
    bed.later(5);
    let again = bed.run().await;
    assert_eq!(again.count(OutcomeStatus::Ok), 1, "{}", again.summary());
}
