//! The snapshot benchmark: one fake cluster (its API server in another
//! process) of `--workloads` Deployments × `--pods` pods, snapshotted twice
//! into the in-memory store — a first run and an unchanged second run —
//! printing wall time, this process's peak RSS and the item writes of each.
//!
//!   cargo run --release -p integration-tests --bin snapshot-bench
//!
//! Exits non-zero when a target is missed: ≤ 1.5 s per run, ≤ 64 MB peak
//! RSS, and the unchanged run writing ≤ 2 % of what the first run wrote.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::numeric_arg;
use shared::clock::SystemClock;
use shared::config::FleetConfig;
use shared::snapshot::access::{AwsConnector, KubeTimeouts};
use shared::snapshot::{OutcomeStatus, SnapshotOptions, SnapshotRequest, Snapshotter};
use shared::store::counting::CountingStore;
use shared::store::memory::MemoryStore;

const MAX_WALL: Duration = Duration::from_millis(1500);
const MAX_RSS_MB: f64 = 64.0;
const MAX_UNCHANGED_SHARE: f64 = 0.02;

/// Peak resident set size of this process so far (Linux `VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kb / 1024.0
}

/// Starts the peak over from the current RSS (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let workloads = numeric_arg("--workloads", 5000)?.to_string();
    let pods = numeric_arg("--pods", 3)?.to_string();
    let server_path = std::env::current_exe()?.with_file_name("fake-kube-server");
    let mut server = Command::new(&server_path)
        .args(["--workloads", &workloads, "--pods", &pods])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot start {} (build it with --bins): {e}", server_path.display())
        })?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let ready: serde_json::Value = serde_json::from_str(&line)?;

    let token_file =
        std::env::temp_dir().join(format!("snapshot-bench-{}.token", std::process::id()));
    std::fs::write(&token_file, ready["token"].as_str().unwrap_or_default())?;
    let yaml = format!(
        "environments:\n  - name: bench\n    clusters:\n      - name: bench\n        endpoint: {}\n        caData: {}\n        tokenFrom: {{ file: {:?} }}\n",
        ready["endpoint"].as_str().unwrap_or_default(),
        ready["caData"].as_str().unwrap_or_default(),
        token_file.display().to_string(),
    );
    let fleet = FleetConfig::parse(&yaml, "bench")?;

    let store = Arc::new(CountingStore::new(MemoryStore::default()));
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let connector = Arc::new(
        AwsConnector::new(sdk, KubeTimeouts::default())
            .with_deployed_local(shared::fleet::local_secret_clusters(&fleet)),
    );
    let snapshotter = Snapshotter::new(
        store.clone(),
        connector,
        Arc::new(SystemClock),
        SnapshotOptions::default(),
    );
    let request = SnapshotRequest::environment("bench".parse()?);

    println!(
        "snapshot benchmark: 1 cluster, {workloads} Deployments × {pods} pods, pages of 500, in-memory store"
    );
    println!("{:<10} {:>9} {:>13} {:>12}", "run", "wall", "peak RSS", "item writes");
    let mut results = Vec::new();
    for run in ["first", "unchanged"] {
        reset_peak_rss();
        let started = Instant::now();
        let report = snapshotter.run(&fleet, &request).await?;
        let wall = started.elapsed();
        let rss = peak_rss_mb();
        let writes = store.take_writes();
        let outcome = &report.outcomes[0];
        if outcome.status != OutcomeStatus::Ok {
            return Err(format!("the {run} run failed: {outcome:?}").into());
        }
        println!("{run:<10} {:>6} ms {:>10.1} MB {writes:>12}", wall.as_millis(), rss);
        results.push((wall, rss, writes));
    }
    let _ = std::fs::remove_file(&token_file);
    drop(server.stdin.take());
    let _ = server.wait();

    let share = results[1].2 as f64 / results[0].2.max(1) as f64;
    println!("unchanged run wrote {:.3} % of the first run's items", share * 100.0);
    let mut missed = Vec::new();
    for (run, (wall, rss, _)) in ["first", "unchanged"].iter().zip(&results) {
        if *wall > MAX_WALL {
            missed.push(format!(
                "{run} run took {} ms (target ≤ {} ms)",
                wall.as_millis(),
                MAX_WALL.as_millis()
            ));
        }
        if *rss > MAX_RSS_MB {
            missed.push(format!("{run} run peaked at {rss:.1} MB (target ≤ {MAX_RSS_MB} MB)"));
        }
    }
    if share > MAX_UNCHANGED_SHARE {
        missed.push(format!("unchanged run wrote {:.2} % (target ≤ 2 %)", share * 100.0));
    }
    if missed.is_empty() {
        println!("targets met: ≤ 1.5 s per run, ≤ 64 MB peak RSS, unchanged writes ≤ 2 %");
        Ok(ExitCode::SUCCESS)
    } else {
        for m in &missed {
            println!("MISSED: {m}");
        }
        Ok(ExitCode::FAILURE)
    }
}
