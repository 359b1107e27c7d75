//! The inventory API over real snapshots of fake clusters: environments,
//! clusters, workloads, pods, stats, configuration at run time, refresh and
//! clear cache, each scoped to the caller's teams. Over the memory store,
//! clusters reached by endpoint and CA: `cargo test -p inventory` needs
//! nothing outside the process (one journey on DynamoDB and EKS on moto is
//! in the integration tests).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use api_bed::{ApiBed, User};
use http::StatusCode;
use serde_json::{Value, json};
use shared::model::SnapshotRequest;
use shared::store::memory::MemoryStore;

/// The bed over the memory store, serving the inventory routes.
async fn bed() -> ApiBed<MemoryStore> {
    ApiBed::in_memory(|ports| inventory::router(ports.context(), ports.trigger.clone())).await
}

fn names(items: &[Value], field: &str) -> Vec<String> {
    items.iter().map(|i| i[field].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn environments_and_clusters_show_status_and_freshness() {
    let bed = bed().await;
    let before = bed.get("/environments/prod", &bed.platform).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.text);
    assert_eq!(before.body["freshness"]["stale"], true, "never snapshotted");

    bed.snapshot_all().await;
    let environments = bed.all("/environments", &bed.admin).await;
    assert_eq!(names(&environments, "name"), ["dev", "prod", "stg"]);
    let prod = bed.get("/environments/prod", &bed.platform).await.body;
    assert_eq!(prod["refreshIntervalSeconds"], 60);
    assert_eq!(prod["teams"], json!(["platform"]));
    assert_eq!(prod["freshness"]["stale"], false);
    assert_eq!(prod["clusters"].as_array().unwrap().len(), 2);

    let cluster = bed.get(&format!("/clusters/{}", bed.cluster("stg-a")), &bed.platform).await;
    assert_eq!(cluster.status, StatusCode::OK, "{}", cluster.text);
    let c = &cluster.body;
    assert_eq!(c["environment"], "stg");
    let endpoint = bed.fake("stg-a").endpoint();
    assert_eq!(c["access"], json!({"kind": "direct", "endpoint": endpoint}), "no token, no CA");
    assert_eq!(c["kubernetesVersion"], "1.33");
    assert_eq!(c["counts"]["workloads"], 8, "{c}");
    assert_eq!(c["counts"]["pending"], 1, "{c}");
    assert!(c["lastSuccess"].is_string() && c["lastAttempt"].is_string());
    assert_eq!(
        (c["freshness"]["ageSeconds"].as_i64(), c["freshness"]["stale"].as_bool()),
        (Some(0), Some(false))
    );

    // A failed refresh: the last good data stays, marked stale.
    bed.fake("stg-a").inject(fake_kube::FaultRule::on("/", fake_kube::Fault::Status(500)));
    bed.clock.advance(Duration::from_secs(90));
    let config = bed.fleet.current().await.unwrap();
    let request = SnapshotRequest::environment("stg".parse().unwrap());
    let _ = bed.snapshotter.run(&config, &request).await;
    let c = bed.get(&format!("/clusters/{}", bed.cluster("stg-a")), &bed.platform).await.body;
    assert_eq!(c["freshness"]["lastAttemptFailed"], true, "{c}");
    assert_eq!(c["freshness"]["stale"], true);
    assert_eq!(c["freshness"]["ageSeconds"], 90);
    assert_eq!(c["counts"]["workloads"], 8, "the last good counts");
    assert!(c["lastError"]["kind"].is_string(), "{c}");

    let clusters = bed.all("/clusters?environment=prod&limit=1", &bed.platform).await;
    assert_eq!(names(&clusters, "name"), [bed.cluster("prod-a"), bed.cluster("prod-b")]);
}

#[tokio::test]
async fn a_dev_team_user_never_sees_prod_in_any_inventory_route() {
    let bed = bed().await;
    bed.snapshot_all().await;
    let prod = bed.cluster("prod-a");
    let dev = bed.cluster("dev-a");
    assert_eq!(names(&bed.all("/environments", &bed.dev).await, "name"), ["dev"]);
    assert_eq!(names(&bed.all("/clusters", &bed.dev).await, "name"), std::slice::from_ref(&dev));
    for path in [
        "/environments/prod".to_owned(),
        format!("/clusters/{prod}"),
        format!("/clusters/{prod}/workloads"),
        format!("/clusters/{prod}/pods"),
        format!("/clusters/{prod}/stats"),
    ] {
        let reply = bed.get(&path, &bed.dev).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    for path in ["/environments/prod/refresh".to_owned(), format!("/clusters/{prod}/refresh")] {
        let reply = bed.call("POST", &path, None, &bed.dev).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let none = bed.get("/clusters?environment=prod", &bed.dev).await;
    assert_eq!(none.body["items"], json!([]));
    let own = bed.get(&format!("/clusters/{dev}/workloads"), &bed.dev).await;
    assert_eq!(own.status, StatusCode::OK);

    let anonymous = User { token: "not-a-session".into() };
    assert_eq!(bed.get("/environments", &anonymous).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn workloads_and_pods_filter_and_paginate() {
    let bed = bed().await;
    bed.snapshot_all().await;
    let stg = bed.cluster("stg-a");
    bed.store.take_writes();
    let all = bed.all(&format!("/clusters/{stg}/workloads?limit=3"), &bed.platform).await;
    assert_eq!(all.len(), 8);
    let mut seen = names(&all, "name");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 8, "each workload once across pages");

    let shop =
        bed.all(&format!("/clusters/{stg}/workloads?namespace=shop&limit=2"), &bed.platform).await;
    assert_eq!(shop.len(), 7);
    let stateful =
        bed.all(&format!("/clusters/{stg}/workloads?kind=statefulset"), &bed.platform).await;
    assert_eq!(names(&stateful, "name"), ["orders"]);
    let ops = bed
        .all(
            &format!("/clusters/{stg}/workloads?label=app.kubernetes.io/part-of%3Dops"),
            &bed.platform,
        )
        .await;
    assert_eq!(names(&ops, "name"), ["metrics"]);
    let search =
        bed.all(&format!("/clusters/{stg}/workloads?q=LEDGER&limit=1"), &bed.platform).await;
    assert_eq!(names(&search, "name"), ["ledger"]);
    let by_image =
        bed.all(&format!("/clusters/{stg}/workloads?q=shop/cart:1.2.0"), &bed.platform).await;
    assert_eq!(names(&by_image, "name"), ["cart"]);
    let catalog = all.iter().find(|w| w["name"] == "catalog").unwrap();
    assert_eq!(catalog["rolling"], true, "{catalog}");
    assert!(catalog.get("fp").is_none(), "no storage fields");

    let pending = bed.all(&format!("/clusters/{stg}/pods?phase=pending"), &bed.platform).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["phase"], "Pending");
    let ops_pods = bed.all(&format!("/clusters/{stg}/pods?namespace=ops"), &bed.platform).await;
    assert!(!ops_pods.is_empty() && ops_pods.iter().all(|p| p["namespace"] == "ops"));

    let stats = bed.get(&format!("/clusters/{stg}/stats"), &bed.platform).await.body;
    assert_eq!(
        (stats["workloads"].as_u64(), stats["pending"].as_u64()),
        (Some(8), Some(1)),
        "{stats}"
    );
    let ops_stats =
        bed.get(&format!("/clusters/{stg}/stats?namespace=ops"), &bed.platform).await.body;
    assert_eq!(ops_stats["workloads"], 1);
    assert_eq!(ops_stats["pods"].as_u64(), Some(ops_pods.len() as u64));

    for (query, parameter) in [
        ("namespace=Not_A_Namespace", "namespace"),
        ("kind=CronJob", "kind"),
        ("label=a%20in%20(", "label"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("cursor=garbage", "cursor"),
    ] {
        let reply = bed.get(&format!("/clusters/{stg}/workloads?{query}"), &bed.platform).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {}", reply.text);
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(parameter), "{query}: {message}");
    }
    let foreign = bed.get(&format!("/clusters/{stg}/workloads?limit=1"), &bed.platform).await.body
        ["next"]
        .clone();
    let other = bed
        .get(&format!("/clusters/{}/pods?cursor={}", stg, foreign.as_str().unwrap()), &bed.platform)
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "a cursor of another list");
    let unknown = bed.get(&format!("/clusters/{stg}/workloads?colour=red"), &bed.platform).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(bed.store.take_writes(), 0, "reading never writes");
}

#[tokio::test]
async fn admins_change_the_fleet_at_run_time_validated_like_the_file() {
    let bed = bed().await;
    let qa =
        json!({"clusters": [{"name": "qa-a"}], "refreshInterval": "5m", "teams": ["platform"]});
    let denied = bed.call("PUT", "/environments/qa", Some(qa.clone()), &bed.platform).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let created = bed.call("PUT", "/environments/qa", Some(qa.clone()), &bed.admin).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.body["refreshIntervalSeconds"], 300);
    assert_eq!(created.body["clusters"][0]["access"]["region"], "eu-west-1", "defaults apply");
    let replaced = bed
        .call("PUT", "/environments/qa", Some(json!({"clusters": [{"name": "qa-b"}]})), &bed.admin)
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.body["clusters"][0]["name"], "qa-b");
    assert_eq!(
        names(&bed.all("/environments", &bed.platform).await, "name"),
        ["dev", "prod", "qa", "stg"]
    );

    for (body, key) in [
        (json!({"clusters": [{"name": "qa-c", "refreshInterval": "5m"}]}), "refreshInterval"),
        (json!({"clusters": []}), "clusters"),
        (json!({"clusters": [{"name": bed.cluster("prod-a")}]}), "cluster name already used"),
        (json!({"name": "other", "clusters": [{"name": "qa-d"}]}), "name"),
        (json!(["not", "an", "object"]), "object"),
    ] {
        let reply = bed.call("PUT", "/environments/qa", Some(body.clone()), &bed.admin).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.text);
        assert!(
            reply.body["error"]["message"].as_str().unwrap().contains(key),
            "{body}: {}",
            reply.text
        );
    }
    let unchanged = bed.get("/environments/qa", &bed.admin).await;
    assert_eq!(unchanged.body["clusters"][0]["name"], "qa-b", "refused changes change nothing");

    let referenced = bed.call("DELETE", "/environments/stg", None, &bed.admin).await;
    assert_eq!(
        referenced.status,
        StatusCode::BAD_REQUEST,
        "a dashboard column: {}",
        referenced.text
    );
    assert!(referenced.text.contains("dashboards[0].columns"), "{}", referenced.text);
    assert_eq!(
        bed.call("DELETE", "/environments/qa", None, &bed.platform).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bed.call("DELETE", "/environments/qa", None, &bed.admin).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(bed.get("/environments/qa", &bed.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        bed.call("DELETE", "/environments/qa", None, &bed.admin).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn refresh_starts_a_snapshot_at_most_once_per_cluster_per_30_seconds() {
    let bed = bed().await;
    let prod_a = bed.cluster("prod-a");
    let started =
        bed.call("POST", &format!("/clusters/{prod_a}/refresh"), None, &bed.platform).await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
    assert_eq!(started.body["started"], json!([prod_a]));
    let again = bed.call("POST", &format!("/clusters/{prod_a}/refresh"), None, &bed.platform).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(again.headers["retry-after"], "30");
    bed.trigger.settle().await;
    let cluster = bed.get(&format!("/clusters/{prod_a}"), &bed.platform).await.body;
    assert_eq!(cluster["counts"]["workloads"], 8, "the refresh ran: {cluster}");

    let environment = bed.call("POST", "/environments/prod/refresh", None, &bed.platform).await;
    assert_eq!(environment.status, StatusCode::ACCEPTED, "{}", environment.text);
    assert_eq!(environment.body["started"], json!([bed.cluster("prod-b")]));
    assert_eq!(environment.body["throttled"][0]["cluster"], prod_a);
    bed.trigger.settle().await;
    bed.clock.advance(Duration::from_secs(31));
    let later = bed.call("POST", &format!("/clusters/{prod_a}/refresh"), None, &bed.platform).await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    bed.trigger.settle().await;
}

#[tokio::test]
async fn clearing_an_environment_s_cache_deletes_its_snapshot_data_only() {
    let bed = bed().await;
    bed.snapshot_all().await;
    let stg = bed.cluster("stg-a");
    let denied = bed.call("DELETE", "/environments/stg/cache", None, &bed.platform).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let cleared = bed.call("DELETE", "/environments/stg/cache", None, &bed.admin).await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert!(cleared.body["deletedItems"].as_u64().unwrap() > 8);
    assert!(bed.all(&format!("/clusters/{stg}/workloads"), &bed.admin).await.is_empty());
    assert!(bed.all(&format!("/clusters/{stg}/pods"), &bed.admin).await.is_empty());
    let cluster = bed.get(&format!("/clusters/{stg}"), &bed.admin).await.body;
    assert!(cluster.get("lastSuccess").is_none(), "status gone: {cluster}");
    let prod = bed.all(&format!("/clusters/{}/workloads", bed.cluster("prod-a")), &bed.admin).await;
    assert_eq!(prod.len(), 8, "other environments keep theirs");
    bed.snapshot_all().await;
    assert_eq!(
        bed.all(&format!("/clusters/{stg}/workloads"), &bed.admin).await.len(),
        8,
        "the next snapshot starts clean"
    );
}

#[tokio::test]
async fn health_answers_without_dependencies_and_ready_checks_the_table() {
    let bed = bed().await;
    let nobody = User { token: String::new() };
    let health = bed.get("/health", &nobody).await;
    assert_eq!((health.status, health.body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let ready = bed.get("/ready", &nobody).await;
    assert_eq!((ready.status, ready.body["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn images_are_found_by_repository_tag_or_digest_within_the_callers_environments() {
    let bed = bed().await;
    bed.snapshot_all().await;
    let billing = bed.all("/images?q=shop/billing:1.0.0&limit=2", &bed.platform).await;
    let places: Vec<(String, String)> = billing
        .iter()
        .map(|p| {
            (
                p["environment"].as_str().unwrap().to_owned(),
                p["cluster"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(places.len(), 4, "one container in each of 4 clusters: {billing:?}");
    let digests: std::collections::BTreeSet<&str> =
        billing.iter().map(|p| p["digest"].as_str().unwrap()).collect();
    assert_eq!(digests.len(), 2, "prod runs the re-pushed tag");
    let prod_digest = billing.iter().find(|p| p["environment"] == "prod").unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_digest = bed.all(&format!("/images?q={prod_digest}"), &bed.platform).await;
    assert_eq!(by_digest.len(), 2, "prod-a and prod-b");
    assert!(by_digest.iter().all(|p| p["environment"] == "prod" && p["service"] == "billing"));
    assert_eq!(bed.all("/images?q=billing", &bed.platform).await.len(), 4);
    assert!(bed.all("/images?q=shop/billing:9.9.9", &bed.platform).await.is_empty());

    let dev = bed.all("/images?q=billing", &bed.dev).await;
    assert_eq!(names(&dev, "environment"), ["dev"], "dev sees only dev");
    assert!(bed.all(&format!("/images?q={prod_digest}"), &bed.dev).await.is_empty());
    for bad in ["/images", "/images?q=sha256:123", "/images?q=a%20b"] {
        let reply = bed.get(bad, &bed.platform).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(reply.body["error"]["message"].as_str().unwrap().starts_with("q:"));
    }
}
