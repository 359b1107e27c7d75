//! EKS on moto answers with a fake cluster's endpoint and CA, so the real
//! path DescribeCluster → CA → kube list runs in tests, across accounts too.

use fake_kube::{FakeCluster, FleetBuilder, TestCa};
use integration_tests::{aws, kube_client, kube_config, register_eks_cluster, unique};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use shared::pem::certificates_from_ca_data;

const TOKEN: &str = "eks-test-token";

async fn fake_cluster(name: &str) -> FakeCluster {
    let fleet = FleetBuilder::brief(12).build();
    let objects = fleet.cluster_objects("eks-microservices-dab-stg", 0);
    FakeCluster::start(name, &TestCa::generate().unwrap(), &objects, TOKEN).await.unwrap()
}

async fn list_pods_through_describe_cluster(eks: &aws_sdk_eks::Client, name: &str) -> usize {
    let cluster = eks.describe_cluster().name(name).send().await.unwrap().cluster.unwrap();
    let endpoint = cluster.endpoint.unwrap();
    let ca_data = cluster.certificate_authority.unwrap().data.unwrap();
    let roots = certificates_from_ca_data(&ca_data).unwrap();
    let config = kube_config(&endpoint, roots, TOKEN);
    let client = snapshot::access::KubeTimeouts::default().client(config).unwrap();
    let pods: Api<Pod> = Api::all(client);
    pods.list(&ListParams::default().labels("app.kubernetes.io/component=dab"))
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn describe_cluster_returns_the_fake_servers_endpoint_and_ca() {
    let fake = fake_cluster(&unique("eks-microservices-dab-stg")).await;
    register_eks_cluster("123456789012", "eu-west-1", &fake).await;
    let eks = aws_sdk_eks::Client::new(&aws().await);

    let cluster = eks.describe_cluster().name(fake.name()).send().await.unwrap().cluster.unwrap();
    assert_eq!(cluster.endpoint.as_deref(), Some(fake.endpoint().as_str()));
    assert_eq!(cluster.certificate_authority.unwrap().data.as_deref(), Some(fake.ca_data()));
    assert!(list_pods_through_describe_cluster(&eks, fake.name()).await > 5);

    // And the CA from EKS is the one that signed the server: a client built
    // from it works where one with a stranger's CA does not (see kube_fake).
    let direct = kube_client(&fake.endpoint(), fake.ca_der(), TOKEN);
    assert!(direct.apiserver_version().await.is_ok());
}

#[tokio::test]
async fn an_unknown_cluster_is_a_typed_not_found() {
    let eks = aws_sdk_eks::Client::new(&aws().await);
    let err = eks.describe_cluster().name(unique("nowhere")).send().await.unwrap_err();
    let service = err.into_service_error();
    assert!(service.is_resource_not_found_exception(), "{service:?}");
}

#[tokio::test]
async fn a_cluster_in_another_account_is_reached_through_assume_role() {
    let account = "111122223333";
    let fake = fake_cluster(&unique("eks-microservices-dab-prod")).await;
    register_eks_cluster(account, "eu-west-1", &fake).await;
    let config = aws().await;

    // Our own account does not have it...
    let home = aws_sdk_eks::Client::new(&config);
    assert!(home.describe_cluster().name(fake.name()).send().await.is_err());

    // ...the reader role's account does.
    let sts = aws_sdk_sts::Client::new(&config);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/release-dashboard-reader"))
        .role_session_name("release-dashboard-snapshot")
        .external_id("release-dashboard")
        .send()
        .await
        .unwrap();
    let creds = assumed.credentials.unwrap();
    let provider = aws_sdk_eks::config::Credentials::new(
        creds.access_key_id,
        creds.secret_access_key,
        Some(creds.session_token),
        None,
        "assume-role",
    );
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&config).credentials_provider(provider).build(),
    );
    assert!(list_pods_through_describe_cluster(&eks, fake.name()).await > 5);
}
