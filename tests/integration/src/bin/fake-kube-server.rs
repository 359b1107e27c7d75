//! A fake Kubernetes API server in its own process, for benchmarks: one
//! cluster of `--workloads` Deployments with `--pods` pods each. Prints one
//! JSON line (`endpoint`, `caData`, `token`) when ready and serves until its
//! standard input closes.

use std::io::BufRead;

use fake_kube::{ClusterObjects, FakeCluster, Image, TestCa, WorkloadSpec};
use integration_tests::numeric_arg;

/// `workloads` Deployments over 20 namespaces, `pods` pods each.
pub fn big_cluster(workloads: usize, pods: usize) -> ClusterObjects {
    let nodes: Vec<String> =
        (0..50).map(|i| format!("ip-10-0-{}-{}.eu-west-1.compute.internal", i / 10, i)).collect();
    let mut objects = ClusterObjects::new(33);
    for i in 0..workloads {
        let name = format!("service-{i:05}");
        let image = Image::new(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            &format!("dab/{name}"),
            "1.0.0",
            None,
        );
        let spec = WorkloadSpec::deployment(&format!("team-{:02}", i % 20), &name, image)
            .label("app.kubernetes.io/component", "dab")
            .label("app.kubernetes.io/version", "1.0.0")
            .replicas(pods as u32);
        objects.add_workload(&spec, &nodes);
    }
    objects
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workloads = numeric_arg("--workloads", 5000)?;
    let pods = numeric_arg("--pods", 3)?;
    let objects = big_cluster(workloads, pods);
    let ca = TestCa::generate()?;
    let token = "bench-token";
    let cluster = FakeCluster::start("bench", &ca, &objects, token).await?;
    drop(objects);
    let ready = serde_json::json!({ "endpoint": cluster.endpoint(), "caData": cluster.ca_data(), "token": token });
    println!("{ready}");
    // Serve until the parent closes our stdin (or dies).
    tokio::task::spawn_blocking(|| {
        let stdin = std::io::stdin();
        for _ in stdin.lock().lines() {}
    })
    .await?;
    Ok(())
}
