//! The inventory and dashboards APIs end to end on their production
//! adapters: fake clusters registered with EKS on moto, reached through
//! DescribeCluster and IAM tokens, snapshotted into DynamoDB on moto. Every
//! other API behaviour runs over the memory store in the function crates'
//! own tests (`functions/{inventory,dashboards}/tests/api.rs`), on the
//! same bed (`tests/api-bed`).

use std::sync::Arc;

use api_bed::{ACCOUNT, ApiBed, ClusterAccess, Routes};
use http::StatusCode;
use integration_tests::{aws, fresh_table, http_json, register_eks_cluster};
use jiff::Timestamp;
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::model::SnapshotRequest;
use shared::refresh::{LambdaTrigger, SnapshotTrigger};
use shared::store::dynamodb::DynamoStore;

/// Both API routers, as the two functions serve them.
pub const BOTH: Routes = |ports| {
    axum::Router::new()
        .merge(inventory::router(ports.context(), ports.trigger.clone()))
        .merge(dashboards::router(ports.context()))
};

/// The bed on DynamoDB and EKS (moto).
pub async fn moto_bed(routes: Routes) -> ApiBed<DynamoStore> {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let store = fresh_table(clock.clone()).await;
    let register: api_bed::Registrar =
        Box::new(|fake| Box::pin(register_eks_cluster(ACCOUNT, "eu-west-1", fake)));
    let access = ClusterAccess::Eks { sdk: Box::new(aws().await), register };
    ApiBed::new(clock, store, access, routes).await
}

#[tokio::test]
async fn inventory_reads_snapshots_taken_through_eks_from_dynamodb() {
    let bed = moto_bed(BOTH).await;
    bed.snapshot_all().await;
    let environments = bed.all("/environments", &bed.admin).await;
    let names: Vec<&str> = environments.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["dev", "prod", "stg"]);
    let stg = bed.get(&format!("/clusters/{}", bed.cluster("stg-a")), &bed.platform).await;
    assert_eq!(stg.status, StatusCode::OK, "{}", stg.text);
    assert_eq!(stg.body["access"], json!({"kind": "eks", "region": "eu-west-1"}));
    assert_eq!(stg.body["counts"]["workloads"], 8, "{}", stg.text);
    let workloads = bed
        .all(&format!("/clusters/{}/workloads?limit=3", bed.cluster("prod-a")), &bed.admin)
        .await;
    assert_eq!(workloads.len(), 8, "paged through DynamoDB");
    let hidden = bed.get(&format!("/clusters/{}", bed.cluster("prod-a")), &bed.dev).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.text);
}

#[tokio::test]
async fn the_dashboard_matrix_is_read_from_dynamodb() {
    let bed = moto_bed(BOTH).await;
    bed.snapshot_all().await;
    let reply = bed.get("/dashboards/shop", &bed.platform).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let rows = reply.body["items"].as_array().unwrap();
    let row = |service: &str| -> &Value {
        rows.iter().find(|r| r["service"] == service).unwrap_or_else(|| panic!("{service}"))
    };
    assert_eq!(rows.len(), 7, "metrics runs in ops, which the selector leaves out");
    assert_eq!(row("cart")["flags"]["drift"], true, "{}", row("cart"));
    assert_eq!(row("checkout")["flags"]["consistent"], true);
    assert_eq!(row("billing")["flags"]["digestDrift"], true);
}

#[tokio::test]
async fn the_lambda_trigger_invokes_the_snapshot_function_asynchronously() {
    let client = aws_sdk_lambda::Client::new(&aws().await);
    let function = integration_tests::unique("snapshot");
    let trigger = LambdaTrigger::new(client, function.clone());
    trigger.start(SnapshotRequest::cluster("prod-a".parse().unwrap())).await.unwrap();
    let (status, invocations) = http_json("GET", "/_testbed/lambda-invocations", None).await;
    assert_eq!(status, 200);
    let mine: Vec<&Value> = invocations
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["function"] == function.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{invocations}");
    assert_eq!(mine[0]["payload"], json!({"cluster": "prod-a"}));
}
