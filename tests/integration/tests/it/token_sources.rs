//! Clusters reached with a token from the function's own environment or
//! files: only the deployed configuration may name one. An API admin who
//! points such a cluster at their own server gets a 400 at the key, and a
//! configuration stored some other way gets the cluster refused: the
//! server is never sent anything.

use std::sync::Arc;

use fake_kube::{ClusterObjects, FakeCluster, TestCa};
use http::StatusCode;
use serde_json::json;
use shared::config::FleetConfig;
use shared::fleet::FleetSource;

use crate::api_e2e::{BOTH, moto_bed};

#[tokio::test]
async fn an_admin_cannot_send_the_function_s_variables_or_files_to_their_own_server() {
    let bed = moto_bed(BOTH).await;
    let ca = TestCa::generate().unwrap();
    let attacker =
        FakeCluster::start("attacker", &ca, &ClusterObjects::new(33), "whatever-arrives")
            .await
            .unwrap();
    let canary = std::env::temp_dir().join(integration_tests::unique("canary-token"));
    std::fs::write(&canary, "canary-file-secret").unwrap();
    let canary = canary.display().to_string();
    // The test bed's own AWS secret stands for the function's credentials.
    assert!(std::env::var("AWS_SECRET_ACCESS_KEY").is_ok(), "the bed sets it");
    let sources = [
        json!({"env": "AWS_SECRET_ACCESS_KEY"}),
        json!({"file": canary}),
        json!({"file": "/no/such/file"}),
    ];
    for token_from in &sources {
        let cluster = json!({
            "name": "evil-a",
            "endpoint": attacker.endpoint(),
            "caData": attacker.ca_data(),
            "tokenFrom": token_from,
        });
        let body = json!({"clusters": [cluster]});
        let reply = bed.call("PUT", "/environments/evil", Some(body), &bed.admin).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_configuration")),
            "{token_from}: {}",
            reply.text
        );
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("clusters[0].tokenFrom: "), "{message}");
    }
    let environments = bed.get("/environments", &bed.admin).await;
    assert!(!environments.text.contains("evil"), "nothing was stored: {}", environments.text);

    // A configuration that holds such a cluster anyway (say, written by an
    // older version): the snapshot refuses the cluster.
    for token_from in &sources {
        let yaml = format!(
            "environments:\n  - name: evil\n    clusters:\n      - {{name: evil-a, endpoint: {}, caData: {}, tokenFrom: {token_from}}}\n",
            attacker.endpoint(),
            attacker.ca_data(),
        );
        let (document, _) = FleetConfig::document(&yaml, "older version").unwrap();
        let writer = FleetSource::from_text(Arc::new(bed.store.inner().clone()), &yaml).unwrap();
        let replace = |stored: &mut serde_json::Value| {
            stored.clone_from(&document);
            Ok(())
        };
        writer.update(replace).await.unwrap();
        let refresh = bed.call("POST", "/clusters/evil-a/refresh", None, &bed.admin).await;
        assert_eq!(refresh.status, StatusCode::ACCEPTED, "{}", refresh.text);
        bed.trigger.settle().await;
        let status = bed.get("/clusters/evil-a", &bed.admin).await;
        let error = status.body["lastError"].to_string();
        assert!(error.contains("deployed configuration"), "{}", status.text);
        for leak in ["AWS_SECRET", "canary", "/no/such", "tmp"] {
            assert!(!status.text.contains(leak), "the status echoes {leak}: {}", status.text);
        }
        bed.clock.advance(std::time::Duration::from_secs(31));
    }
    assert!(attacker.requests().is_empty(), "the admin's server got {:?}", attacker.requests());
}

#[tokio::test]
async fn a_secret_s_token_goes_only_to_the_endpoint_the_secret_names() {
    let bed = moto_bed(BOTH).await;
    let ca = TestCa::generate().unwrap();
    let token = integration_tests::unique("onprem-token");
    let objects = api_bed::objects(&api_bed::plan("stg-a"));
    let onprem = FakeCluster::start("onprem", &ca, &objects, &token).await.unwrap();
    let attacker =
        FakeCluster::start("attacker", &ca, &ClusterObjects::new(33), "whatever-arrives")
            .await
            .unwrap();
    let name =
        format!("{}{}", shared::config::CLUSTER_SECRET_PREFIX, integration_tests::unique("op"));
    let secrets = aws_sdk_secretsmanager::Client::new(&integration_tests::aws().await);
    let value = json!({"endpoint": onprem.endpoint(), "token": token}).to_string();
    secrets.create_secret().name(&name).secret_string(value).send().await.unwrap();

    let cluster = |cluster: &str, server: &FakeCluster| json!({"name": cluster, "endpoint": server.endpoint(), "caData": server.ca_data(), "tokenFrom": {"secret": name}});
    let body = json!({"clusters": [cluster("op-a", &onprem), cluster("op-evil", &attacker)]});
    let reply = bed.call("PUT", "/environments/onprem", Some(body), &bed.admin).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "an API admin may add such clusters: {}",
        reply.text
    );

    let refresh = bed.call("POST", "/environments/onprem/refresh", None, &bed.admin).await;
    assert_eq!(refresh.status, StatusCode::ACCEPTED, "{}", refresh.text);
    bed.trigger.settle().await;
    let good = bed.get("/clusters/op-a", &bed.admin).await;
    assert!(good.body["lastSuccess"].is_string(), "{}", good.text);
    assert!(good.body["counts"]["workloads"].as_u64().unwrap() > 0, "{}", good.text);
    let evil = bed.get("/clusters/op-evil", &bed.admin).await;
    assert!(evil.body["lastSuccess"].is_null(), "{}", evil.text);
    assert!(evil.text.contains("another endpoint"), "{}", evil.text);
    assert!(!evil.text.contains(&token), "no token in a status");
    assert!(attacker.requests().is_empty(), "the attacker's server got {:?}", attacker.requests());
    assert!(!onprem.requests().is_empty());

    let outside = json!({"clusters": [{"name": "op-b", "endpoint": onprem.endpoint(), "caData": onprem.ca_data(), "tokenFrom": {"secret": "prod/database-password"}}]});
    let reply = bed.call("PUT", "/environments/onprem2", Some(outside), &bed.admin).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert!(reply.text.contains("release-dashboard/clusters/"), "{}", reply.text);
}
