//! A fake Kubernetes API server in its own process, for benchmarks: one
//! cluster of `--workloads` Deployments with `--pods` pods each, objects
//! of real size (`ClusterObjects::large`). Prints one
//! JSON line (`endpoint`, `caData`, `token`) when ready and serves until its
//! standard input closes.

use std::io::BufRead;

use fake_kube::{ClusterObjects, FakeCluster, TestCa};
use integration_tests::numeric_arg;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workloads = numeric_arg("--workloads", 5000)?;
    let pods = numeric_arg("--pods", 3)?;
    let objects = ClusterObjects::large(workloads, pods as u32);
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
