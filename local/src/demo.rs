//! The demo fleet: the brief's environments and clusters served by fake
//! Kubernetes API servers on 127.0.0.1, the fleet configuration that points
//! at them, and the clock that moves them on: every tick new releases reach
//! the first stage and earlier ones are promoted, and the scenarios of
//! `fake_kube::fleet::scenario` play out (a stuck rollout, a re-pushed tag,
//! a hotfix that skips stg, a cluster that goes unreachable for a while).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fake_kube::fleet::scenario;
use fake_kube::{FakeFleet, FleetBuilder};

use shared::store::dynamodb::{DynamoStore, create_table};

const LOCAL_TABLE: &str = "release-dashboard-local";

pub struct Demo {
    fleet: Arc<FakeFleet>,
    token_file: PathBuf,
    clock: Option<tokio::task::JoinHandle<()>>,
    /// Signalled each time the fleet moves on, so the server can refresh
    /// at once, as a deployment pipeline calling the refresh API would.
    pub moved: Arc<tokio::sync::Notify>,
}

impl Demo {
    /// Starts the fake clusters at tick 0 and moves them on every `tick`
    /// (never, when `tick` is zero).
    pub async fn start(
        services: usize,
        tick: Duration,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let fleet = Arc::new(
            FakeFleet::start_with_random_token(FleetBuilder::brief(services).build()).await?,
        );
        // The clusters' bearer token reaches the snapshot the way a real
        // non-EKS cluster's would: from a file named in the configuration.
        let token_file = std::env::temp_dir()
            .join(format!("release-dashboard-demo-{}.token", std::process::id()));
        std::fs::write(&token_file, fleet.token())?;
        let moved = Arc::new(tokio::sync::Notify::new());
        let clock =
            (!tick.is_zero()).then(|| tokio::spawn(advance(fleet.clone(), tick, moved.clone())));
        Ok(Self { fleet, token_file, clock, moved })
    }

    /// The demo fleet's configuration, as a file would hold it.
    pub fn fleet_text(&self) -> String {
        let mut yaml = String::from(
            "defaults:\n  refreshInterval: 60s\n  snapshotTtl: 15m\n  labelSelector: app.kubernetes.io/component=dab\nenvironments:\n",
        );
        for env in &self.fleet.fleet.environments {
            let team = if env.custsol { "custsol" } else { "platform" };
            yaml.push_str(&format!("  - name: {}\n    teams: [{team}]\n    clusters:\n", env.name));
            for name in &env.clusters {
                let Some(cluster) = self.fleet.cluster(name) else {
                    continue;
                };
                yaml.push_str(&format!(
                    "      - name: {name}\n        endpoint: {}\n        caData: {}\n        tokenFrom: {{ file: {:?} }}\n",
                    cluster.endpoint(),
                    cluster.ca_data(),
                    self.token_file.display().to_string(),
                ));
            }
        }
        yaml.push_str(
            "dashboards:\n\
             \x20 - name: platform\n    title: DAB platform\n    columns: [dab-platform-loe, dab-platform-stg, dab-platform-prod]\n    selector: app.kubernetes.io/part-of=dab-platform\n\
             \x20   policies: {maxLagReleases: 2, maxLagAge: 3d, minSoak: 1h, promotionPath: strict, noDigestDrift: true, maxRolloutDuration: 30m, maxStaleness: 10m}\n\
             \x20 - name: custsol\n    title: DAB customer solutions\n    columns: [dab-custsol-loe, dab-custsol-staging, dab-custsol-prod]\n    selector: app.kubernetes.io/part-of=dab-custsol\n\
             \x20   policies: {maxLagReleases: 1, promotionPath: strict, noDigestDrift: true, maxStaleness: 10m}\n",
        );
        yaml
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(clock) = self.clock.take() {
            clock.abort();
        }
        let _ = std::fs::remove_file(&self.token_file);
    }
}

/// Moves the fleet one tick on every `period`, logging what changes.
async fn advance(fleet: Arc<FakeFleet>, period: Duration, moved: Arc<tokio::sync::Notify>) {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    for tick in 1.. {
        timer.tick().await;
        fleet.advance_to(tick);
        moved.notify_one();
        let changed = fleet
            .fleet
            .services
            .iter()
            .enumerate()
            .filter(|&(i, _)| {
                fleet.fleet.release(i, 0, tick) != fleet.fleet.release(i, 0, tick - 1)
            })
            .count();
        tracing::info!(tick, new_releases = changed, "demo fleet moved on");
        for (name, window) in [
            ("a stuck rollout in stg", scenario::STUCK),
            (scenario::UNREACHABLE_CLUSTER, scenario::UNREACHABLE),
        ] {
            if tick == window.start {
                tracing::info!(scenario = name, until_tick = window.end, "demo scenario begins");
            } else if tick == window.end {
                tracing::info!(scenario = name, "demo scenario ends");
            }
        }
        for (name, at) in [
            ("a tag re-pushed with new content, redeployed in prod", scenario::RETAG_FROM),
            ("a hotfix straight into prod", scenario::HOTFIX_FROM),
        ] {
            if tick == at {
                tracing::info!(scenario = name, "demo scenario happens");
            }
        }
    }
}

/// A store on a DynamoDB-compatible endpoint (DynamoDB Local, moto, …),
/// creating the table on first use.
pub async fn dynamodb_store(
    endpoint: &str,
) -> Result<DynamoStore, Box<dyn std::error::Error + Send + Sync>> {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "eu-west-1".to_owned());
    // Local endpoints accept any credentials; never pick up real ones here.
    let credentials =
        aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "local");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region))
        .credentials_provider(credentials)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let exists = client.describe_table().table_name(LOCAL_TABLE).send().await.is_ok();
    if !exists {
        create_table(&client, LOCAL_TABLE).await?;
    }
    Ok(DynamoStore::new(client, LOCAL_TABLE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_configuration_is_valid_and_names_the_brief() {
        let demo = Demo::start(12, Duration::ZERO).await.unwrap();
        let fleet = shared::config::FleetConfig::parse(&demo.fleet_text(), "demo").unwrap();
        assert_eq!(fleet.environments.len(), 6);
        assert!(fleet.cluster("eks-corda-dab-prod").is_some());
        assert_eq!(fleet.dashboard("platform").unwrap().columns.len(), 3);
        assert_eq!(std::fs::read_to_string(&demo.token_file).unwrap(), demo.fleet.token());
    }
}
