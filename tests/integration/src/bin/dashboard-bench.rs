//! The dashboard benchmark: the `GET /dashboards/{name}` handler (through
//! the router, with authentication and JSON encoding) over the in-memory
//! store, for `--services` services × `--environments` environments of
//! `--clusters` clusters each, every service running in every cluster.
//! Prints the first (cold) request and p50/p99 over `--requests` warm ones
//! of the default page (`--limit` asks for another size).
//!
//!   cargo run --release -p integration-tests --bin dashboard-bench
//!
//! Exits non-zero when p99 is over 10 ms.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::to_bytes;
use integration_tests::numeric_arg;
use shared::clock::{Clock, SystemClock};
use shared::context::ApiContext;
use shared::fleet::FleetSource;
use shared::model::{
    ClusterStatus, ContainerImage, Counts, ImageRef, PodSummary, Replicas, RunningImage,
    VersionSeen, VersionSource, Workload, WorkloadKind,
};
use shared::records;
use shared::records::account::Role;
use shared::store::memory::MemoryStore;
use shared::store::{Item, ItemBatchWrite, Store, WriteOp};
use tower::ServiceExt;

const MAX_P99: Duration = Duration::from_millis(10);

/// What service `s` runs in environment `e`: most are promoted in order
/// (later environments one release behind for a fifth of them), some run
/// two versions in the last environment, some are re-pushed tags.
fn version(s: usize, e: usize, environments: usize) -> String {
    let behind = s.is_multiple_of(5) && e + 1 == environments;
    format!("1.{}.{}", s % 7, if behind { 0 } else { 1 })
}

fn workload(
    s: usize,
    e: usize,
    cluster: &str,
    environments: usize,
    at: jiff::Timestamp,
) -> Workload {
    let service = format!("service-{s:04}");
    let version = version(s, e, environments);
    let image = ImageRef::parse(&format!(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/fleet/{service}:{version}"
    ));
    let digest = format!("sha256:{:064x}", s * 31 + usize::from(s.is_multiple_of(11) && e > 5));
    Workload {
        cluster: cluster.parse().unwrap_or_else(|_| unreachable!()),
        environment: format!("env-{e}").parse().unwrap_or_else(|_| unreachable!()),
        namespace: "apps".into(),
        kind: WorkloadKind::Deployment,
        name: service.clone(),
        service: service.clone(),
        version: version.clone(),
        version_source: VersionSource::Label,
        version_from: String::new(),
        labels: BTreeMap::from([
            ("app.kubernetes.io/name".into(), service.clone()),
            ("app.kubernetes.io/part-of".into(), "fleet".into()),
            ("app.kubernetes.io/version".into(), version),
        ]),
        images: vec![ContainerImage {
            container: "app".into(),
            role: Default::default(),
            image: image.clone(),
        }],
        replicas: Replicas { desired: 3, ready: 3, available: Some(3), updated: 3 },
        pods: PodSummary {
            total: 3,
            running: 3,
            nodes: vec!["ip-10-0-1-10".into(), "ip-10-0-2-20".into()],
            images: vec![RunningImage {
                container: "app".into(),
                image: image.name_and_tag(),
                digest: Some(digest),
            }],
            ..PodSummary::default()
        },
        rolling: false,
        created_at: Some(at),
        changed_at: at,
        omitted: Default::default(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let services = numeric_arg("--services", 500)?;
    let environments = numeric_arg("--environments", 10)?;
    let per_environment = numeric_arg("--clusters", 4)?;
    let requests = numeric_arg("--requests", 1000)?;
    let limit = numeric_arg("--limit", dashboards::handlers::MATRIX_PAGE as usize)?;
    let path = format!("/dashboards/fleet?limit={limit}");

    let clock = Arc::new(SystemClock);
    let now = clock.now();
    let memory = Arc::new(MemoryStore::new(clock.clone()));
    let store: Arc<dyn Store> = memory.clone();
    let mut yaml =
        String::from("defaults: {region: eu-west-1, refreshInterval: 5m}\nenvironments:\n");
    let mut columns = Vec::new();
    for e in 0..environments {
        yaml.push_str(&format!("  - name: env-{e}\n    clusters:\n"));
        columns.push(format!("env-{e}"));
        for c in 0..per_environment {
            let cluster = format!("env-{e}-c{c}");
            yaml.push_str(&format!("      - name: {cluster}\n"));
            let mut ops = Vec::with_capacity(services * 2 + 1);
            for s in 0..services {
                let w = workload(s, e, &cluster, environments, now);
                let seen = VersionSeen {
                    service: w.service.clone(),
                    version: w.version.clone(),
                    first_seen: now,
                };
                ops.push(WriteOp::Put(Item::new(
                    records::cluster_snapshot::SnapshotKeys::of(&cluster)
                        .seen(&w.service, &w.version),
                    serde_json::to_value(&seen)?,
                )));
                ops.push(WriteOp::Put(Item::new(
                    records::workload::key(&cluster, &w.namespace, w.kind, &w.name),
                    serde_json::to_value(&w)?,
                )));
            }
            let mut status = ClusterStatus::new(cluster.parse()?, format!("env-{e}").parse()?);
            status.last_attempt = Some(now);
            status.last_success = Some(now);
            status.generation = 1;
            status.counts = Counts {
                workloads: services as u32,
                pods: 3 * services as u32,
                running: 3 * services as u32,
                ..Counts::default()
            };
            ops.push(WriteOp::Put(Item::new(
                records::cluster_status::key(&cluster),
                serde_json::to_value(&status)?,
            )));
            memory.batch_write(ops).await?;
        }
    }
    yaml.push_str(&format!(
        "dashboards:\n  - name: fleet\n    title: Fleet\n    columns: [{}]\n    selector: app.kubernetes.io/part-of=fleet\n",
        columns.join(", ")
    ));
    let fleet = Arc::new(FleetSource::from_text(store.clone(), &yaml)?);
    let app = shared::http::with_api_defaults(
        dashboards::router(ApiContext::new(fleet, store.clone(), clock.clone())),
        store.clone(),
    );

    let token = "bench-token-not-a-secret";
    shared::testing::signed_in(
        store.as_ref(),
        "bench@example.com",
        Role::Admin,
        Vec::new(),
        token,
        now,
    )
    .await
    .map_err(|e| -> Box<dyn std::error::Error> { e })?;

    let mut bytes = 0;
    let once = || {
        let app = app.clone();
        let path = path.clone();
        async move {
            let request = shared::testing::api_request("GET", &path, None, Some(token));
            let started = Instant::now();
            let response = app.oneshot(request).await?;
            let status = response.status();
            let body = to_bytes(response.into_body(), 64 << 20).await?;
            let took = started.elapsed();
            if !status.is_success() {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&body)).into());
            }
            Ok::<_, Box<dyn std::error::Error>>((took, body.len()))
        }
    };
    let (cold, _) = once().await?;
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let (took, size) = once().await?;
        bytes = size;
        times.push(took);
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let (p50, p99) = (at(0.50), at(0.99));
    println!(
        "dashboard: {services} services x {environments} environments ({} clusters, {} workloads); page of {limit} rows, {} KB",
        environments * per_environment,
        services * environments * per_environment,
        bytes / 1024
    );
    println!("  first request (cold cache): {:.2} ms", cold.as_secs_f64() * 1e3);
    println!(
        "  {requests} requests: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 <= {} ms)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        times.last().map_or(0.0, |t| t.as_secs_f64() * 1e3),
        MAX_P99.as_millis()
    );
    Ok(if p99 <= MAX_P99 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
