//! The snapshot on objects recorded from real API servers
//! (`tests/fake-kube/data/real/`, see its PROVENANCE.md): each recorded
//! cluster is served over HTTPS by the fake API server and read by the
//! production connector and snapshotter, and what they store is checked
//! field by field. Edge cases are derived from the recorded objects in
//! code; the files are never edited.

use std::sync::Arc;

use fake_kube::{ClusterObjects, FakeCluster, TestCa};
use integration_tests::unique;
use shared::config::FleetConfig;
use shared::model::SnapshotRequest;
use shared::model::{PodRecord, Workload};
use shared::records::keys;
use shared::store::memory::MemoryStore;
use shared::store::{Query, SortKeyRange};
use snapshot::access::{AwsConnector, KubeTimeouts};
use snapshot::snapshotter::{OutcomeStatus, SnapshotOptions, Snapshotter};

/// What one snapshot of a recorded cluster stored.
struct Stored {
    workloads: Vec<Workload>,
    pods: Vec<PodRecord>,
    store: Arc<MemoryStore>,
    config: String,
}

impl Stored {
    fn workload(&self, namespace: &str, name: &str) -> &Workload {
        self.workloads
            .iter()
            .find(|w| w.namespace == namespace && w.name == name)
            .unwrap_or_else(|| panic!("no workload {namespace}/{name}"))
    }
}

/// Snapshots `objects` as the environment `settings` (extra YAML lines of
/// the environment, e.g. a label selector) would.
async fn snapshot(objects: &ClusterObjects, settings: &str) -> Stored {
    snapshot_shown_by(objects, settings, "").await
}

/// Snapshots `objects` as `snapshot` does, with `dashboards` (the YAML of
/// the configuration's `dashboards` list) showing the environment `real`.
async fn snapshot_shown_by(objects: &ClusterObjects, settings: &str, dashboards: &str) -> Stored {
    let replay = Replay::new(objects, settings, dashboards).await;
    replay.snapshot(objects, 0).await;
    let workloads = all(
        &replay.store,
        Query::partition(keys::cluster_pk(&replay.name))
            .range(SortKeyRange::Prefix(keys::WORKLOAD_PREFIX.into())),
    )
    .await;
    let pods = all(&replay.store, Query::partition(keys::pods_pk(&replay.name))).await;
    Stored { workloads, pods, store: replay.store.clone(), config: replay.yaml.clone() }
}

impl Stored {
    /// `GET /images?q=` over what was stored, as an admin.
    async fn images(&self, q: &str) -> Vec<serde_json::Value> {
        let body = inventory_get(self.store.clone(), &self.config, &format!("/images?q={q}")).await;
        body["items"].as_array().cloned().unwrap_or_else(|| panic!("{body}"))
    }
}

/// A GET of the inventory API over `store` and the fleet `config`, as an admin.
async fn inventory_get(store: Arc<MemoryStore>, config: &str, uri: &str) -> serde_json::Value {
    use tower::ServiceExt;
    // The store's own clock: sessions and items expire by it.
    let clock = store.clock();
    let store: Arc<dyn shared::store::Store> = store;
    let fleet = Arc::new(shared::fleet::FleetSource::from_text(store.clone(), config).unwrap());
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let connector = Arc::new(AwsConnector::new(sdk, KubeTimeouts::default()));
    let snapshotter = Arc::new(Snapshotter::new(
        store.clone(),
        connector,
        clock.clone(),
        SnapshotOptions::default(),
    ));
    let app = inventory::router(
        shared::context::ApiContext::new(fleet.clone(), store.clone(), clock.clone()),
        Arc::new(snapshot::snapshotter::InProcessTrigger::new(snapshotter, fleet)),
    );
    let token = unique("token");
    let email = format!("{}@example.com", unique("root"));
    let admin = shared::records::account::Role::Admin;
    let now = clock.now();
    shared::testing::signed_in(store.as_ref(), &email, admin, Vec::new(), &token, now)
        .await
        .unwrap();
    let request = shared::testing::api_request("GET", uri, None, Some(&token));
    let response = app.oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn all<T: serde::de::DeserializeOwned>(store: &MemoryStore, query: Query) -> Vec<T> {
    integration_tests::query_all(store, query).await
}

fn recorded(folder: &str) -> ClusterObjects {
    ClusterObjects::recorded(folder).unwrap()
}

#[tokio::test]
async fn every_spelling_of_one_image_is_one_image_with_its_digest_and_version() {
    // k3s: the spec says `nginx:latest`, containerd reports
    // `docker.io/library/nginx:latest` and a repository digest.
    let stored = snapshot(&recorded("k3s-troubleshoot"), "").await;
    let nginx = stored.workload("default", "nginx-deployment");
    let main = &nginx.images.iter().find(|c| c.container == "nginx").unwrap().image;
    assert_eq!(
        (main.registry.as_str(), main.repository.as_str(), main.tag.as_deref()),
        ("docker.io", "library/nginx", Some("latest"))
    );
    assert_eq!(
        main.digest.as_deref(),
        Some("sha256:75263be7e5846fc69cb6c42553ff9c93d653d769b94917dbda71d42d3f3c00d3"),
        "the digest the kubelet reports, though it spells the image otherwise"
    );
    assert!(!nginx.rolling, "one image, however it is spelled");
    let coredns = stored.workload("kube-system", "coredns");
    assert_eq!(coredns.version, "1.9.1");
    assert!(coredns.images[0].image.digest.is_some(), "{:?}", coredns.images);

    // The same pods with an untagged spec, and a mirror that reports
    // another registry: the digest comes from the pod's own container.
    let mut objects = recorded("k3s-troubleshoot");
    for deployment in &mut objects.deployments {
        if deployment.metadata.name.as_deref() == Some("nginx-deployment") {
            let spec = deployment.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
            spec.containers.iter_mut().find(|c| c.name == "nginx").unwrap().image =
                Some("nginx".into());
        }
    }
    for pod in &mut objects.pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if name.starts_with("nginx-deployment") {
            pod.spec.as_mut().unwrap().containers[0].image = Some("nginx".into());
        }
        if name.starts_with("coredns") {
            let status = pod.status.as_mut().unwrap();
            for container in status.container_statuses.as_mut().unwrap() {
                container.image =
                    "mirror.example.com:5000/rancher/mirrored-coredns-coredns:1.9.1".into();
            }
        }
    }
    let stored = snapshot(&objects, "").await;
    let nginx = stored.workload("default", "nginx-deployment");
    let main = &nginx.images.iter().find(|c| c.container == "nginx").unwrap().image;
    assert_eq!(main.tag.as_deref(), Some("latest"), "an untagged image is `latest`");
    assert!(main.digest.is_some());
    let coredns = stored.workload("kube-system", "coredns");
    assert!(coredns.images[0].image.digest.is_some(), "a mirror keeps the digest");
    assert!(!coredns.rolling);
}

#[tokio::test]
async fn a_local_image_id_is_no_digest_and_no_rollout() {
    // kind: preloaded images report a bare `sha256:` config id.
    let objects = recorded("kind-sonobuoy");
    let stored = snapshot(&objects, "").await;
    let coredns = stored.workload("kube-system", "coredns");
    assert_eq!(coredns.pods.total, 2, "{:?}", coredns.pods);
    assert!(coredns.images[0].image.digest.is_none(), "a local id is no registry digest");
    assert!(!coredns.rolling);
    // The same, with the runtime of one pod putting the local id where the
    // image goes (CRI-O, or containerd after a re-tag): the pods still run
    // one image.
    let mut objects = objects;
    let coredns_pod = objects
        .pods
        .iter_mut()
        .find(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with("coredns")))
        .unwrap();
    for c in coredns_pod.status.as_mut().unwrap().container_statuses.as_mut().unwrap() {
        let id = c.image_id.trim_start_matches("docker://").to_owned();
        c.image.clone_from(&id);
        c.image_id = format!("docker://{id}");
    }
    let stored = snapshot(&objects, "").await;
    let coredns = stored.workload("kube-system", "coredns");
    assert!(!coredns.rolling, "one image in the spec is no rollout: {:?}", coredns.pods.images);
    assert!(coredns.images[0].image.digest.is_none());
    let coredns_pods = stored.pods.iter().filter(|p| p.name.starts_with("coredns"));
    assert!(coredns_pods.flat_map(|p| &p.images).all(|i| i.digest.is_none()));
}

/// k3s's `nginx-deployment` (containers `nginx` and `hello`), with a config
/// reloader put first, `hello` on a tagged busybox, and a release
/// annotation beside the long `last-applied-configuration` one.
fn with_a_sidecar_first() -> ClusterObjects {
    use k8s_openapi::api::core::v1::Container;
    let mut objects = recorded("k3s-troubleshoot");
    let reloader = Container {
        name: "configmap-reload".into(),
        image: Some("jimmidyson/configmap-reload:v0.2.2".into()),
        ..Container::default()
    };
    let retag = |containers: &mut Vec<Container>| {
        containers.insert(0, reloader.clone());
        for c in containers.iter_mut().filter(|c| c.name == "hello") {
            c.image = Some("busybox:1.36".into());
        }
    };
    for deployment in &mut objects.deployments {
        if deployment.metadata.name.as_deref() == Some("nginx-deployment") {
            let annotations = deployment.metadata.annotations.get_or_insert_with(Default::default);
            annotations.insert("example.com/release".into(), "2024.06.1".into());
            annotations.insert("example.com/notes".into(), "n".repeat(4096));
            retag(
                &mut deployment.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers,
            );
        }
    }
    for pod in &mut objects.pods {
        if pod.metadata.name.as_deref().is_some_and(|n| n.starts_with("nginx-deployment")) {
            retag(&mut pod.spec.as_mut().unwrap().containers);
        }
    }
    objects
}

#[tokio::test]
async fn the_version_is_the_main_container_s_not_a_sidecar_s_and_says_where_it_came_from() {
    let stored = snapshot(&with_a_sidecar_first(), "").await;
    let nginx = stored.workload("default", "nginx-deployment");
    assert_eq!(nginx.version, "latest", "nginx's, not the reloader's v0.2.2");
    assert_eq!(nginx.version_from, "tag of container nginx");
    let coredns = stored.workload("kube-system", "coredns");
    assert_eq!(coredns.version_from, "tag of container coredns");

    for (setting, version, from) in [
        ("container: hello", "1.36", "tag of container hello"),
        ("annotation: example.com/release", "2024.06.1", "annotation example.com/release"),
        ("label: app", "nginx", "label app"),
    ] {
        let settings = format!("    versionFrom: {{ {setting} }}\n");
        let stored = snapshot(&with_a_sidecar_first(), &settings).await;
        let nginx = stored.workload("default", "nginx-deployment");
        assert_eq!(
            (nginx.version.as_str(), nginx.version_from.as_str()),
            (version, from),
            "{setting}"
        );
    }
    // An annotation too long to be a version is never read.
    let stored =
        snapshot(&with_a_sidecar_first(), "    versionFrom: { annotation: example.com/notes }\n")
            .await;
    assert_eq!(stored.workload("default", "nginx-deployment").version, "");
}

#[tokio::test]
async fn a_dashboard_s_version_rule_sets_the_version_of_the_workloads_it_shows() {
    // k3s's nginx Deployment (`app: nginx`) with a config reloader put
    // first; coredns (`k8s-app: kube-dns`) is on no dashboard with a rule.
    let dashboards = "  - name: web\n    columns: [real]\n    selector: app=nginx\n    versionFrom: { annotation: example.com/release }\n  - name: everything\n    columns: [real]\n    versionFrom: { container: hello }\n";
    let stored =
        snapshot_shown_by(&with_a_sidecar_first(), "    versionFrom: { label: app }\n", dashboards)
            .await;
    let nginx = stored.workload("default", "nginx-deployment");
    assert_eq!(
        (nginx.version.as_str(), nginx.version_from.as_str()),
        ("2024.06.1", "annotation example.com/release"),
        "the first dashboard that shows it, before the environment's rule"
    );
    let coredns = stored.workload("kube-system", "coredns");
    assert_eq!(
        (coredns.version.as_str(), coredns.version_from.as_str()),
        ("", ""),
        "the second dashboard names a container coredns does not have"
    );
    // Without the catch-all dashboard, the environment's rule applies.
    let stored = snapshot_shown_by(
        &with_a_sidecar_first(),
        "    versionFrom: { label: k8s-app }\n",
        dashboards.split("  - name: everything").next().unwrap(),
    )
    .await;
    let coredns = stored.workload("kube-system", "coredns");
    assert_eq!(
        (coredns.version.as_str(), coredns.version_from.as_str()),
        ("kube-dns", "label k8s-app")
    );
}

#[tokio::test]
async fn a_count_the_api_server_does_not_report_is_unknown_not_zero() {
    // k9s's StatefulSets were recorded from a server without
    // `status.availableReplicas` (before 1.22): 4 ready, none "available".
    let mut objects = recorded("single-fixtures");
    let stored = snapshot(&objects, "").await;
    let sts = stored.workload("default", "nginx-sts");
    assert_eq!((sts.replicas.ready, sts.replicas.available), (4, None), "{:?}", sts.replicas);
    // Served as the 1.21 server it came from, even one with no replica
    // ready has no available count.
    objects.kubernetes_minor = 21;
    for sts in &mut objects.stateful_sets {
        sts.status.as_mut().unwrap().ready_replicas = None;
    }
    let stored = snapshot(&objects, "").await;
    assert_eq!(stored.workload("default", "nginx-sts").replicas.available, None);
    // A Deployment's absent count is a zero the server left out.
    let stored = snapshot(&recorded("kubeadm-clusterinfo"), "").await;
    let coredns = stored.workload("kube-system", "coredns");
    assert_eq!(coredns.replicas.available, Some(0), "{:?}", coredns.replicas);
}

#[tokio::test]
async fn native_sidecars_count_and_init_containers_are_listed_but_never_the_version() {
    use k8s_openapi::api::core::v1::{Container, ContainerStatus};
    // k9s's `sleep` pod: an init container and a native sidecar (both
    // istio/base), as a 1.29 server reported them.
    let mut objects = recorded("single-fixtures");
    let sleep =
        objects.pods.iter_mut().find(|p| p.metadata.name.as_deref() == Some("sleep")).unwrap();
    for s in sleep.status.as_mut().unwrap().init_container_statuses.as_mut().unwrap() {
        if s.name == "sidecar" {
            s.restart_count = 5;
        }
    }
    let stored = snapshot(&objects, "").await;
    let sleep = stored.pods.iter().find(|p| p.name == "sleep").unwrap();
    let containers: Vec<&str> = sleep.images.iter().map(|i| i.container.as_str()).collect();
    assert_eq!(
        containers,
        ["sleep", "sidecar"],
        "the native sidecar runs, the init container does not"
    );
    assert_eq!(sleep.restarts, 5, "the sidecar's restarts count");
    assert!(sleep.images[1].digest.is_some());

    // The same on a workload: k3s's nginx-deployment with an init container
    // named like the workload and a native sidecar that restarted.
    let mut objects = recorded("k3s-troubleshoot");
    let init = Container {
        name: "nginx-deployment".into(),
        image: Some("busybox:1.36".into()),
        ..Container::default()
    };
    let sidecar = Container {
        name: "proxy".into(),
        image: Some("envoyproxy/envoy:v1.30.1".into()),
        restart_policy: Some("Always".into()),
        ..Container::default()
    };
    for deployment in &mut objects.deployments {
        if deployment.metadata.name.as_deref() == Some("nginx-deployment") {
            let spec = deployment.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
            spec.init_containers = Some(vec![init.clone(), sidecar.clone()]);
        }
    }
    for pod in &mut objects.pods {
        if pod.metadata.name.as_deref().is_some_and(|n| n.starts_with("nginx-deployment")) {
            pod.spec.as_mut().unwrap().init_containers = Some(vec![init.clone(), sidecar.clone()]);
            let status = ContainerStatus {
                name: "proxy".into(),
                image: "docker.io/envoyproxy/envoy:v1.30.1".into(),
                image_id: format!("docker.io/envoyproxy/envoy@sha256:{}", "e".repeat(64)),
                restart_count: 2,
                ..ContainerStatus::default()
            };
            pod.status.as_mut().unwrap().init_container_statuses = Some(vec![status]);
        }
    }
    let app_restarts: i32 = objects
        .pods
        .iter()
        .filter(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with("nginx-deployment")))
        .flat_map(|p| p.status.as_ref().unwrap().container_statuses.as_deref().unwrap_or_default())
        .map(|s| s.restart_count)
        .sum();
    let stored = snapshot(&objects, "").await;
    let nginx = stored.workload("default", "nginx-deployment");
    assert_eq!(nginx.version, "latest", "never the init container's 1.36");
    assert_eq!(nginx.version_from, "tag of container nginx");
    let roles: Vec<(&str, shared::model::ContainerRole)> =
        nginx.images.iter().map(|c| (c.container.as_str(), c.role)).collect();
    use shared::model::ContainerRole::{App, Init, Sidecar};
    assert_eq!(
        roles,
        [("nginx", App), ("hello", App), ("nginx-deployment", Init), ("proxy", Sidecar)]
    );
    let pods = nginx.pods.total;
    assert_eq!(
        nginx.pods.restarts,
        app_restarts as u32 + 2 * pods,
        "the app containers' restarts and each pod's sidecar's two"
    );
    let proxy = nginx.images.iter().find(|c| c.container == "proxy").unwrap();
    assert!(proxy.image.digest.is_some(), "the sidecar's digest from its pods");
    assert!(!nginx.rolling);
}

#[tokio::test]
async fn the_selector_chooses_workloads_and_their_pods_follow_by_owner_whatever_their_labels() {
    // k3s labels its own Deployments `objectset.rio.cattle.io/hash`, not
    // their pod templates (as Helm does with `heritage`).
    let stored = snapshot(
        &recorded("k3s-troubleshoot"),
        "    labelSelector: objectset.rio.cattle.io/hash\n",
    )
    .await;
    let mut chosen: Vec<&str> = stored.workloads.iter().map(|w| w.name.as_str()).collect();
    chosen.sort_unstable();
    assert_eq!(chosen, ["coredns", "local-path-provisioner", "metrics-server"]);
    for workload in &stored.workloads {
        assert_eq!(workload.pods.total, 1, "{}: its pod follows by owner", workload.name);
        assert!(
            workload.images[0].image.digest.is_some(),
            "{}: digest from its pod",
            workload.name
        );
    }
    let mut pods: Vec<&str> =
        stored.pods.iter().map(|p| p.name.split('-').next().unwrap()).collect();
    pods.sort_unstable();
    assert_eq!(pods, ["coredns", "local", "metrics"], "only the chosen workloads' pods");

    // A selector on pod labels still chooses pods no workload owns.
    let stored = snapshot(&recorded("k3s-troubleshoot"), "    labelSelector: job-name\n").await;
    assert!(stored.workloads.is_empty());
    assert_eq!(stored.pods.len(), 2, "the two Helm install Job pods");
}

#[tokio::test]
async fn images_of_pods_no_workload_owns_are_found_too() {
    // k3s's Helm install Jobs: two pods no workload owns.
    let stored = snapshot(&recorded("k3s-troubleshoot"), "").await;
    let found = stored.images("rancher/klipper-helm").await;
    let mut pods: Vec<(&str, &str)> = found
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["workload"].as_str().unwrap()))
        .collect();
    pods.sort_unstable();
    assert_eq!(
        pods,
        [("Pod", "helm-install-traefik-2fxbg"), ("Pod", "helm-install-traefik-crd-q2ndn")],
        "{found:?}"
    );
    assert!(found.iter().all(|p| p["digest"].as_str().is_some_and(|d| d.starts_with("sha256:"))));
    // A workload's container is one placement, however its image is spelled.
    for q in ["nginx", "nginx:latest", "docker.io/library/nginx"] {
        let nginx = stored.images(q).await;
        assert_eq!(nginx.len(), 1, "{q}: {nginx:?}");
        assert_eq!(nginx[0]["kind"], "Deployment");
    }
}

/// One recorded cluster on one fake server, snapshotted again and again
/// as its objects change, on a clock the test moves.
struct Replay {
    fake: FakeCluster,
    name: String,
    config: FleetConfig,
    yaml: String,
    snapshotter: Snapshotter,
    store: Arc<MemoryStore>,
    clock: Arc<shared::clock::ManualClock>,
    _token_file: tempfile_path::TokenFile,
}

mod tempfile_path {
    /// A token file removed when dropped.
    pub struct TokenFile(pub std::path::PathBuf);
    impl Drop for TokenFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Replay {
    async fn new(objects: &ClusterObjects, settings: &str, dashboards: &str) -> Self {
        let ca = TestCa::generate().unwrap();
        let token = unique("token");
        let name = unique("replay");
        let fake = FakeCluster::start(&name, &ca, objects, &token).await.unwrap();
        let token_file = std::env::temp_dir().join(unique("replay-token"));
        std::fs::write(&token_file, &token).unwrap();
        let mut yaml = format!(
            "environments:\n  - name: real\n{settings}    clusters:\n      - name: {name}\n        endpoint: {}\n        caData: {}\n        tokenFrom: {{ file: {:?} }}\n",
            fake.endpoint(),
            fake.ca_data(),
            token_file.display().to_string(),
        );
        if !dashboards.is_empty() {
            yaml = format!("{yaml}dashboards:\n{dashboards}");
        }
        let config = FleetConfig::parse(&yaml, "real").unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        let connector = AwsConnector::new(sdk, KubeTimeouts::default())
            .with_deployed_local(shared::fleet::local_secret_clusters(&config));
        let clock = Arc::new(shared::clock::ManualClock::new(jiff::Timestamp::now()));
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let snapshotter = Snapshotter::new(
            store.clone(),
            Arc::new(connector),
            clock.clone(),
            SnapshotOptions::default(),
        );
        Self {
            fake,
            name,
            config,
            yaml,
            snapshotter,
            store,
            clock,
            _token_file: tempfile_path::TokenFile(token_file),
        }
    }

    /// Serves `objects` and snapshots them `minutes` after the last time.
    async fn snapshot(&self, objects: &ClusterObjects, minutes: u64) {
        self.clock.advance(std::time::Duration::from_secs(minutes * 60));
        self.fake.set_objects(objects);
        let request = SnapshotRequest::environment("real".parse().unwrap());
        let report = self.snapshotter.run(&self.config, &request).await.unwrap();
        assert_eq!(report.count(OutcomeStatus::Ok), 1, "{}", report.summary());
    }

    async fn pod_events(&self) -> Vec<shared::model::PodEvent> {
        // Oldest first: keys start with the time.
        all(&self.store, Query::partition(keys::pod_history_pk(&self.name))).await
    }
}

#[tokio::test]
async fn replica_sets_are_read_as_metadata_only_and_still_date_the_rollout() {
    // k3s's nginx Deployment is at revision 2; the ReplicaSet of revision 1
    // (older, scaled to 0) is kept beside it.
    let objects = recorded("k3s-troubleshoot");
    let replay = Replay::new(&objects, "", "").await;
    replay.snapshot(&objects, 0).await;
    let requests = replay.fake.requests();
    let asked = |plural: &'static str| requests.iter().filter(move |r| r.path.ends_with(plural));
    assert!(asked("/replicasets").count() > 0);
    assert!(asked("/replicasets").all(|r| r.metadata_only), "{requests:?}");
    assert!(asked("/pods").all(|r| !r.metadata_only), "pods are read whole");
    let workloads: Vec<Workload> = all(
        &replay.store,
        Query::partition(keys::cluster_pk(&replay.name))
            .range(SortKeyRange::Prefix(keys::WORKLOAD_PREFIX.into())),
    )
    .await;
    let nginx = workloads.iter().find(|w| w.name == "nginx-deployment").unwrap();
    assert_eq!(
        nginx.changed_at.to_string(),
        "2022-12-01T14:01:21Z",
        "the creation of revision 2's ReplicaSet"
    );
}

#[tokio::test]
async fn pod_history_records_changes_once_each_and_a_crash_loop_once_per_burst() {
    use k8s_openapi::api::core::v1::Pod;
    // kubeadm's NotReady node: coredns Pending, kube-proxy running.
    let mut objects = recorded("kubeadm-clusterinfo");
    let replay = Replay::new(&objects, "", "").await;
    replay.snapshot(&objects, 0).await;
    assert!(replay.pod_events().await.is_empty(), "the record begins at the first snapshot");

    let named = |objects: &mut ClusterObjects, prefix: &str| -> usize {
        objects
            .pods
            .iter()
            .position(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with(prefix)))
            .unwrap()
    };
    // The node comes back: one coredns pod is scheduled and runs.
    let coredns = named(&mut objects, "coredns-5dd5756b68-2zrhr");
    objects.pods[coredns].spec.as_mut().unwrap().node_name = Some("k8s-controller-01".into());
    objects.pods[coredns].status.as_mut().unwrap().phase = Some("Running".into());
    replay.snapshot(&objects, 5).await;
    // kube-proxy crash-loops: a restart at each of six snapshots, 5 min apart.
    let proxy = named(&mut objects, "kube-proxy");
    let restart = |objects: &mut ClusterObjects| {
        let pod: &mut Pod = &mut objects.pods[proxy];
        for s in pod.status.as_mut().unwrap().container_statuses.as_mut().unwrap() {
            s.restart_count += 1;
        }
    };
    for _ in 0..6 {
        restart(&mut objects);
        replay.snapshot(&objects, 5).await;
    }
    // Quiet for an hour (a snapshot every 5 minutes), then at it again: a
    // second burst.
    for _ in 0..12 {
        replay.snapshot(&objects, 5).await;
    }
    restart(&mut objects);
    replay.snapshot(&objects, 5).await;
    // The other coredns pod goes, and a new one comes.
    let gone = named(&mut objects, "coredns-5dd5756b68-wcs5x");
    let mut new_pod = objects.pods.remove(gone);
    new_pod.metadata.name = Some("coredns-5dd5756b68-n3w9q".into());
    objects.pods.push(new_pod);
    replay.snapshot(&objects, 5).await;

    let events = replay.pod_events().await;
    let seen: Vec<(&str, &str, Option<&str>, Option<&str>)> = events
        .iter()
        .map(|e| (e.change.as_str(), e.pod.as_str(), e.from.as_deref(), e.to.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("node", "coredns-5dd5756b68-2zrhr", None, Some("k8s-controller-01")),
            ("phase", "coredns-5dd5756b68-2zrhr", Some("Pending"), Some("Running")),
            ("restarts", "kube-proxy-p4jmn", Some("1"), Some("2")),
            ("restarts", "kube-proxy-p4jmn", Some("7"), Some("8")),
            ("created", "coredns-5dd5756b68-n3w9q", None, None),
            ("deleted", "coredns-5dd5756b68-wcs5x", Some("Pending"), None),
        ],
        "oldest first: {events:#?}"
    );

    // The API: newest first, a page at a time, filtered by pod.
    let uri = format!("/clusters/{}/pods/history?limit=2", replay.name);
    let first = inventory_get(replay.store.clone(), &replay.yaml, &uri).await;
    let changes: Vec<&str> =
        first["items"].as_array().unwrap().iter().map(|e| e["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["deleted", "created"], "{first}");
    let next = first["next"].as_str().unwrap();
    let uri = format!("/clusters/{}/pods/history?limit=2&cursor={next}", replay.name);
    let second = inventory_get(replay.store.clone(), &replay.yaml, &uri).await;
    assert_eq!(second["items"][0]["to"], "8", "{second}");
    let uri = format!("/clusters/{}/pods/history?pod=kube-proxy-p4jmn", replay.name);
    let proxy = inventory_get(replay.store.clone(), &replay.yaml, &uri).await;
    assert_eq!(proxy["items"].as_array().unwrap().len(), 2, "{proxy}");
    let uri = format!("/clusters/{}/pods/history?since=yesterday", replay.name);
    let bad = inventory_get(replay.store.clone(), &replay.yaml, &uri).await;
    assert!(bad["error"]["message"].as_str().unwrap().starts_with("since:"), "{bad}");
}
