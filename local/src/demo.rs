//! The demo fleet: the brief's environments and clusters served by fake
//! Kubernetes API servers on 127.0.0.1, and the fleet configuration that
//! points at them.

use std::path::PathBuf;

use fake_kube::{FakeFleet, FleetBuilder};

use shared::store::dynamodb::{DynamoStore, create_table};

const LOCAL_TABLE: &str = "release-dashboard-local";

pub struct Demo {
    fleet: FakeFleet,
    token_file: PathBuf,
}

impl Demo {
    pub async fn start(services: usize) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let fleet =
            FakeFleet::start_with_random_token(FleetBuilder::brief(services).build()).await?;
        // The clusters' bearer token reaches the snapshot the way a real
        // non-EKS cluster's would: from a file named in the configuration.
        let token_file = std::env::temp_dir()
            .join(format!("release-dashboard-demo-{}.token", std::process::id()));
        std::fs::write(&token_file, fleet.token())?;
        Ok(Self { fleet, token_file })
    }

    /// The fleet configuration of the demo, validated like any other.
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
             \x20 - name: custsol\n    title: DAB customer solutions\n    columns: [dab-custsol-loe, dab-custsol-staging, dab-custsol-prod]\n    selector: app.kubernetes.io/part-of=dab-custsol\n",
        );
        yaml
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.token_file);
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
        let demo = Demo::start(12).await.unwrap();
        let fleet = shared::config::FleetConfig::parse(&demo.fleet_text(), "demo").unwrap();
        assert_eq!(fleet.environments.len(), 6);
        assert!(fleet.cluster("eks-corda-dab-prod").is_some());
        assert_eq!(fleet.dashboard("platform").unwrap().columns.len(), 3);
        assert_eq!(std::fs::read_to_string(&demo.token_file).unwrap(), demo.fleet.token());
    }
}
