//! The real `kube` client, over TLS, against the fake API server: the
//! behaviours the snapshot relies on (pagination, 410 Gone, auth, label
//! selectors, faults) as a real API server shows them.

use snapshot::access::KubeTimeouts;
use std::collections::BTreeSet;
use std::time::Duration;

use fake_kube::{
    ClusterObjects, FakeCluster, Fault, FaultRule, Image, TestCa, WorkloadKind, WorkloadSpec,
};
use integration_tests::{kube_client, kube_config};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

const TOKEN: &str = "k8s-test-token";

/// 23 deployments over two namespaces; odd ones are `tier=web`, and all but
/// every fifth carry the dab component label.
fn objects() -> ClusterObjects {
    let mut objects = ClusterObjects::new(33);
    for i in 0..23 {
        let namespace = if i % 2 == 0 { "dab" } else { "corda" };
        let name = format!("svc-{i:02}");
        let image = Image::new("registry.example", &format!("dab/{name}"), "1.0.0", None);
        let mut spec = WorkloadSpec::deployment(namespace, &name, image)
            .replicas(1)
            .label("tier", if i % 2 == 1 { "web" } else { "batch" });
        if i % 5 != 0 {
            spec = spec.label("app.kubernetes.io/component", "dab");
        }
        objects.add_workload(&spec, &["node-1".to_owned()]);
    }
    let proxy = Image::new("registry.example", "eks/kube-proxy", "v1.33.0", None);
    objects.add_workload(
        &WorkloadSpec::deployment("kube-system", "kube-proxy", proxy).kind(WorkloadKind::DaemonSet),
        &["node-1".to_owned(), "node-2".to_owned()],
    );
    objects
}

async fn cluster() -> (FakeCluster, kube::Client) {
    let ca = TestCa::generate().unwrap();
    let fake =
        FakeCluster::start("eks-microservices-dab-stg", &ca, &objects(), TOKEN).await.unwrap();
    let client = kube_client(&fake.endpoint(), fake.ca_der(), TOKEN);
    (fake, client)
}

fn api_status(err: &kube::Error) -> Option<(u16, String)> {
    match err {
        kube::Error::Api(status) => Some((status.code, status.reason.clone())),
        _ => None,
    }
}

/// Lists every deployment in pages of `limit`, starting over on 410 Gone as
/// the API documents (a continue token is only good for about 5 minutes).
async fn list_all(
    api: &Api<Deployment>,
    params: ListParams,
) -> Result<(Vec<String>, usize, usize), kube::Error> {
    let mut restarts = 0;
    'restart: loop {
        let mut names = Vec::new();
        let mut pages = 0;
        let mut token: Option<String> = None;
        loop {
            let mut page_params = params.clone();
            page_params.continue_token = token.take();
            match api.list(&page_params).await {
                Ok(list) => {
                    pages += 1;
                    names.extend(list.items.into_iter().filter_map(|d| d.metadata.name));
                    match list.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(next) => token = Some(next),
                        None => return Ok((names, pages, restarts)),
                    }
                }
                Err(err)
                    if api_status(&err).is_some_and(|(code, _)| code == 410) && restarts < 3 =>
                {
                    restarts += 1;
                    continue 'restart;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

#[tokio::test]
async fn lists_follow_continue_tokens_over_at_least_three_pages() {
    let (fake, client) = cluster().await;
    let (names, pages, restarts) =
        list_all(&Api::all(client), ListParams::default().limit(5)).await.unwrap();
    let expected: BTreeSet<String> = (0..23).map(|i| format!("svc-{i:02}")).collect();
    assert_eq!(names.len(), 23, "every deployment exactly once: {names:?}");
    assert_eq!(names.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!((pages, restarts), (5, 0));
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.query.get("limit").map(String::as_str) == Some("5")));
    assert_eq!(requests.iter().filter(|r| r.query.contains_key("continue")).count(), 4);
}

#[tokio::test]
async fn an_expired_continue_token_gets_410_and_the_list_starts_over() {
    let (fake, client) = cluster().await;
    // The third request (second continue) finds its token compacted away.
    fake.inject(FaultRule::on("/deployments", Fault::ExpireContinueTokens).after(2).times(1));
    let (names, pages, restarts) =
        list_all(&Api::all(client), ListParams::default().limit(5)).await.unwrap();
    assert_eq!(restarts, 1);
    assert_eq!(names.len(), 23, "no duplicates or gaps after the restart");
    assert_eq!(pages, 5);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 410).count(), 1, "{statuses:?}");
}

#[tokio::test]
async fn continue_tokens_expire_with_time() {
    let (fake, client) = cluster().await;
    fake.set_continue_ttl(Duration::from_millis(50));
    let api: Api<Deployment> = Api::all(client);
    let first = api.list(&ListParams::default().limit(5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let token = first.metadata.continue_.as_deref().unwrap();
    let err = must_fail(api.list(&ListParams::default().limit(5).continue_token(token)).await);
    assert_eq!(api_status(&err), Some((410, "Expired".into())));
}

#[tokio::test]
async fn label_selectors_filter_on_the_server() {
    let (_fake, client) = cluster().await;
    let api: Api<Deployment> = Api::all(client.clone());
    let (dab, _, _) =
        list_all(&api, ListParams::default().labels("app.kubernetes.io/component=dab").limit(4))
            .await
            .unwrap();
    assert_eq!(dab.len(), 18, "23 minus every fifth: {dab:?}");
    let (web, _, _) = list_all(
        &api,
        ListParams::default().labels("tier in (web),app.kubernetes.io/component!=dab"),
    )
    .await
    .unwrap();
    assert_eq!(web, ["svc-05", "svc-15"]);
    let namespaced: Api<Deployment> = Api::namespaced(client.clone(), "corda");
    let list = namespaced.list(&ListParams::default().labels("tier=web")).await.unwrap();
    assert_eq!(list.items.len(), 11);
    let err = must_fail(api.list(&ListParams::default().labels("tier in web")).await);
    assert_eq!(api_status(&err).map(|s| s.0), Some(400));
    let daemon_sets: Api<DaemonSet> = Api::all(client);
    assert_eq!(daemon_sets.list(&ListParams::default()).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn metadata_only_lists_carry_each_object_s_metadata_and_nothing_else() {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let (fake, client) = cluster().await;
    let api: Api<ReplicaSet> = Api::all(client);
    // kube's own `list_metadata`, paged: the fake must answer it as a real
    // API server does (PartialObjectMetadataList, metadata only).
    let (mut names, mut token, mut pages) = (Vec::new(), None, 0);
    loop {
        let mut params = ListParams::default().limit(7);
        params.continue_token = token;
        let page = api.list_metadata(&params).await.unwrap();
        pages += 1;
        for item in &page.items {
            let meta = &item.metadata;
            assert!(meta.owner_references.as_ref().is_some_and(|o| o[0].kind == "Deployment"));
            assert!(
                meta.annotations
                    .as_ref()
                    .unwrap()
                    .contains_key("deployment.kubernetes.io/revision")
            );
            assert!(meta.managed_fields.is_some(), "metadata includes managedFields");
            names.push(meta.name.clone().unwrap());
        }
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names.len(), 46, "two ReplicaSets for each of 23 Deployments");
    assert!(pages >= 7);
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r.metadata_only), "{requests:?}");

    // The same request's bytes: the envelope and items are metadata only.
    let request = kube::core::Request::new("/apis/apps/v1/replicasets")
        .list(&ListParams::default().limit(1))
        .unwrap();
    let request = snapshot::objects::metadata_only(request);
    let client = api.into_client();
    let text = client.request_text(request).await.unwrap();
    let page: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["kind"], "PartialObjectMetadataList");
    assert_eq!(page["items"][0]["kind"], "PartialObjectMetadata");
    assert!(page["items"][0].get("spec").is_none() && page["items"][0].get("status").is_none());
}

#[tokio::test]
async fn pods_carry_owners_images_and_digests() {
    let (_fake, client) = cluster().await;
    let pods: Api<Pod> = Api::namespaced(client, "dab");
    let list =
        pods.list(&ListParams::default().labels("app.kubernetes.io/name=svc-04")).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let pod = &list.items[0];
    assert_eq!(pod.metadata.owner_references.as_ref().unwrap()[0].kind, "ReplicaSet");
    let status = &pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
    assert_eq!(status.image, "registry.example/dab/svc-04:1.0.0");
    assert!(
        status.image_id.starts_with("registry.example/dab/svc-04@sha256:"),
        "{}",
        status.image_id
    );
}

#[tokio::test]
async fn a_wrong_token_gets_401_with_a_status_body() {
    let (fake, _) = cluster().await;
    let stranger = kube_client(&fake.endpoint(), fake.ca_der(), "not-the-token");
    let err = must_fail(Api::<Deployment>::all(stranger).list(&ListParams::default()).await);
    assert_eq!(api_status(&err), Some((401, "Unauthorized".into())));
}

#[tokio::test]
async fn a_token_revoked_mid_list_fails_the_next_page() {
    let (fake, client) = cluster().await;
    fake.inject(FaultRule::on("/deployments", Fault::RevokeTokens).after(1).times(1));
    let err = list_all(&Api::all(client), ListParams::default().limit(5)).await.unwrap_err();
    assert_eq!(api_status(&err), Some((401, "Unauthorized".into())));
    assert_eq!(fake.requests().iter().map(|r| r.status).collect::<Vec<_>>(), [200, 401]);
}

#[tokio::test]
async fn the_client_trusts_only_the_ca_it_was_given() {
    let (fake, _) = cluster().await;
    let other_ca = TestCa::generate().unwrap();
    let wrong_root = kube_client(&fake.endpoint(), other_ca.ca_der(), TOKEN);
    let err = must_fail(Api::<Deployment>::all(wrong_root).list(&ListParams::default()).await);
    assert!(api_status(&err).is_none(), "a TLS failure, not an API answer: {err}");
    assert!(fake.requests().is_empty(), "no request got through");
}

/// The error of a list that must fail, without dumping a successful list.
fn must_fail<T>(result: Result<kube::core::ObjectList<T>, kube::Error>) -> kube::Error
where
    T: Clone,
{
    match result {
        Ok(list) => panic!("expected an error, got a list of {} items", list.items.len()),
        Err(err) => err,
    }
}

#[tokio::test]
async fn injected_faults_reach_a_client_without_retries() {
    let (fake, _) = cluster().await;
    // NB: kube retries 429/503/504 by itself unless told not to (see below);
    // the snapshot function's client turns that off and bounds retries itself.
    let api: Api<Deployment> = Api::all(kube_client(&fake.endpoint(), fake.ca_der(), TOKEN));
    fake.inject(FaultRule::on("/deployments", Fault::Status(500)).times(1));
    assert_eq!(
        api_status(&must_fail(api.list(&ListParams::default()).await)).map(|s| s.0),
        Some(500)
    );
    fake.inject(
        FaultRule::on("/deployments", Fault::TooManyRequests { retry_after_secs: 7 }).times(1),
    );
    assert_eq!(
        api_status(&must_fail(api.list(&ListParams::default()).await)).map(|s| s.0),
        Some(429)
    );
    fake.inject(FaultRule::on("/deployments", Fault::ResetConnection).times(1));
    let err = must_fail(api.list(&ListParams::default()).await);
    assert!(api_status(&err).is_none(), "a dropped connection is no API answer: {err}");
    // After the faults, the same client works again.
    assert_eq!(api.list(&ListParams::default()).await.unwrap().items.len(), 23);
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 0, 200]);
}

#[tokio::test]
async fn by_default_kube_retries_429_after_the_servers_retry_after() {
    let (fake, _) = cluster().await;
    // kube's own default client, not the snapshot function's (which turns
    // this retry off and bounds its own).
    let config = kube_config(&fake.endpoint(), vec![fake.ca_der()], TOKEN);
    let client = kube::Client::try_from(config).unwrap();
    fake.inject(
        FaultRule::on("/deployments", Fault::TooManyRequests { retry_after_secs: 1 }).times(1),
    );
    let started = std::time::Instant::now();
    let list = Api::<Deployment>::all(client).list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 23);
    assert!(started.elapsed() >= Duration::from_millis(900), "Retry-After was honoured");
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn latency_beyond_the_read_timeout_is_an_error() {
    let (fake, _) = cluster().await;
    let config = kube_config(&fake.endpoint(), vec![fake.ca_der()], TOKEN);
    let timeouts = KubeTimeouts { read: Duration::from_millis(200), ..KubeTimeouts::default() };
    let client = timeouts.client(config).unwrap();
    fake.inject(FaultRule::on("/deployments", Fault::Latency(Duration::from_secs(5))).times(1));
    let started = std::time::Instant::now();
    let err = must_fail(Api::<Deployment>::all(client).list(&ListParams::default()).await);
    assert!(api_status(&err).is_none(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "the timeout fired, not the server");
}

#[tokio::test]
async fn version_reports_the_kubernetes_release() {
    let (_fake, client) = cluster().await;
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
}
