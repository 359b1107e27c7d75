//! The fleet configuration at run time: stored in the table, seeded by the
//! deployed configuration until an admin first changes it, and validated
//! exactly like the file on every change. Every function reads it through
//! [`FleetSource`], which re-parses only when the stored version moves.
//!
//! A cluster reached by a local token source (`tokenFrom: {env}` or
//! `{file}`) or a local kubeconfig context names the function's own
//! environment or files: only the operator's deployed configuration may
//! give one. A change through the API may keep such a cluster exactly as
//! deployed, never add or alter one; otherwise an API admin could send the
//! function's own credentials to a server of their choosing.

use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use crate::config::{Cluster, ClusterAccess, ConfigError, FleetConfig, Problem, TokenSource};
use crate::records::fleet_config;
use crate::store::{Condition, Store, StoreError};

/// How often a change retries after losing a race with another change.
const UPDATE_ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A change would make the configuration invalid: nothing was stored.
    #[error("the change was refused: {0}")]
    Invalid(#[source] ConfigError),
    /// The stored configuration does not validate (written by something
    /// other than this code).
    #[error("the stored fleet configuration is invalid")]
    Corrupt(#[source] ConfigError),
    #[error("the configuration kept changing under this change; try again")]
    Contended,
}

/// What the current configuration is, and which stored version it came from
/// (0: the seed, nothing stored yet).
#[derive(Debug, Clone)]
struct Parsed {
    version: u64,
    document: Value,
    config: Arc<FleetConfig>,
}

pub struct FleetSource {
    store: Arc<dyn Store>,
    seed: Parsed,
    latest: Mutex<Parsed>,
}

impl std::fmt::Debug for FleetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSource").finish_non_exhaustive()
    }
}

impl FleetSource {
    /// `seed` is the deployed configuration's document; `config` the same,
    /// validated.
    pub fn new(store: Arc<dyn Store>, seed: Value, config: FleetConfig) -> Self {
        let seed = Parsed { version: 0, document: seed, config: Arc::new(config) };
        Self { store, latest: Mutex::new(seed.clone()), seed }
    }

    /// A source over a fixed configuration given as text (tests, tools).
    pub fn from_text(store: Arc<dyn Store>, text: &str) -> Result<Self, ConfigError> {
        let (document, config) = FleetConfig::document(text, "configuration")?;
        Ok(Self::new(store, document, config))
    }

    /// The clusters of the deployed configuration reached through local
    /// token sources or contexts: the only ones a connector may reach that
    /// way (see the module's doc).
    pub fn deployed_local_clusters(&self) -> Vec<Cluster> {
        local_secret_clusters(&self.seed.config)
    }

    /// The configuration now in force: one read of the stored item.
    pub async fn current(&self) -> Result<Arc<FleetConfig>, FleetError> {
        Ok(self.read().await?.config)
    }

    async fn read(&self) -> Result<Parsed, FleetError> {
        let Some((document, version)) = fleet_config::read(self.store.as_ref()).await? else {
            return Ok(self.seed.clone());
        };
        {
            let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            if latest.version == version {
                return Ok(latest.clone());
            }
        }
        let config = FleetConfig::from_document(&document, "stored configuration")
            .map_err(FleetError::Corrupt)?;
        let parsed = Parsed { version, document, config: Arc::new(config) };
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = parsed.clone();
        Ok(parsed)
    }

    /// Applies `change` to the configuration's document, validates the
    /// result like the file, and stores it only if no other change came in
    /// between (else starts over from the newer one).
    pub async fn update<F>(&self, change: F) -> Result<Arc<FleetConfig>, FleetError>
    where
        F: Fn(&mut Value) -> Result<(), FleetError>,
    {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.read().await?;
            let mut document = current.document;
            change(&mut document)?;
            let config = FleetConfig::from_document(&document, "configuration")
                .map_err(FleetError::Invalid)?;
            self.only_deployed_local_clusters(&config)?;
            let condition = match current.version {
                0 => Condition::IfAbsent,
                version => Condition::IfVersion(version),
            };
            match fleet_config::write(self.store.as_ref(), document.clone(), condition).await {
                Ok(version) => {
                    let config = Arc::new(config);
                    let parsed = Parsed { version, document, config: config.clone() };
                    *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = parsed;
                    return Ok(config);
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(FleetError::Contended)
    }
}

impl FleetSource {
    fn only_deployed_local_clusters(&self, config: &FleetConfig) -> Result<(), FleetError> {
        let deployed = self.deployed_local_clusters();
        let mut problems = Vec::new();
        for (i, environment) in config.environments.iter().enumerate() {
            for (j, cluster) in environment.clusters.iter().enumerate() {
                if uses_local_secrets(cluster) && !deployed.contains(cluster) {
                    let key = match cluster.access {
                        ClusterAccess::Kubeconfig { .. } => "kubeconfigContext",
                        _ => "tokenFrom",
                    };
                    problems.push(Problem {
                        key: format!("environments[{i}].clusters[{j}].{key}"),
                        message: "a token from the function's own variables or files is only \
                                  taken from the deployed configuration; a change through the \
                                  API may keep such a cluster as deployed but not add or alter \
                                  one: give {secret: release-dashboard/clusters/NAME} instead"
                            .into(),
                    });
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(FleetError::Invalid(ConfigError::Invalid { origin: "configuration".into(), problems }))
    }
}

/// The clusters of `config` whose access reads the function's own
/// environment or files.
pub fn local_secret_clusters(config: &FleetConfig) -> Vec<Cluster> {
    config
        .environments
        .iter()
        .flat_map(|e| e.clusters.iter())
        .filter(|c| uses_local_secrets(c))
        .cloned()
        .collect()
}

/// Whether reaching `cluster` reads the function's own environment or files.
pub fn uses_local_secrets(cluster: &Cluster) -> bool {
    match &cluster.access {
        ClusterAccess::Direct { token_from, .. } => !matches!(token_from, TokenSource::Secret(_)),
        ClusterAccess::Kubeconfig { .. } => true,
        ClusterAccess::Eks { .. } => false,
    }
}

/// Puts `environment` (a document in the file format) in place of the
/// environment of the same name, or appends it.
pub fn put_environment(document: &mut Value, environment: Value) -> Result<(), FleetError> {
    let name = environment.get("name").cloned();
    let list = environments(document)?;
    match list.iter_mut().find(|e| e.get("name") == name.as_ref()) {
        Some(slot) => *slot = environment,
        None => list.push(environment),
    }
    Ok(())
}

/// Removes the environment called `name`; whether it was there.
pub fn remove_environment(document: &mut Value, name: &str) -> Result<bool, FleetError> {
    let list = environments(document)?;
    let before = list.len();
    list.retain(|e| e.get("name").and_then(Value::as_str) != Some(name));
    Ok(list.len() != before)
}

fn environments(document: &mut Value) -> Result<&mut Vec<Value>, FleetError> {
    document.get_mut("environments").and_then(Value::as_array_mut).ok_or_else(|| {
        FleetError::Corrupt(ConfigError::Parse {
            origin: "stored configuration".into(),
            key: "environments".into(),
            message: "missing".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::memory::MemoryStore;

    const SEED: &str = "
defaults: {region: eu-west-1}
environments:
  - {name: stg, clusters: [{name: stg-a}]}
  - {name: prod, clusters: [{name: prod-a}]}
dashboards:
  - {name: platform, columns: [stg, prod]}
";

    #[tokio::test]
    async fn the_seed_serves_until_a_change_is_stored_then_the_stored_one_everywhere() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let source = FleetSource::from_text(store.clone(), SEED).unwrap();
        assert_eq!(source.current().await.unwrap().environments.len(), 2);

        let dev = json!({"name": "dev", "clusters": [{"name": "dev-a"}], "refreshInterval": "5m"});
        let updated = source.update(|doc| put_environment(doc, dev.clone())).await.unwrap();
        assert_eq!(updated.environments.len(), 3);
        let dev = updated.environment("dev").unwrap();
        assert_eq!(dev.refresh_interval.as_secs(), 300);
        assert!(
            matches!(&dev.clusters[0].access, ClusterAccess::Eks { region, .. } if region.as_str() == "eu-west-1"),
            "defaults apply to environments added later"
        );

        // Another instance (same table, same seed) sees the stored one.
        let other = FleetSource::from_text(store, SEED).unwrap();
        assert_eq!(other.current().await.unwrap().environments.len(), 3);
    }

    #[tokio::test]
    async fn an_invalid_change_is_refused_at_its_key_and_nothing_is_stored() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let source = FleetSource::from_text(store.clone(), SEED).unwrap();
        let err = source.update(|doc| remove_environment(doc, "stg").map(drop)).await.unwrap_err();
        let FleetError::Invalid(invalid) = err else { panic!("{err:?}") };
        assert!(
            invalid.to_string().contains("dashboards[0].columns[0]: no environment of that name"),
            "{invalid}"
        );
        let bad = json!({"name": "qa", "clusters": [{"name": "qa-a", "refreshInterval": "5m"}]});
        let err = source.update(|doc| put_environment(doc, bad.clone())).await.unwrap_err();
        assert!(err.to_string().contains("refreshInterval"), "{err}");
        assert!(store.get(&fleet_config::key()).await.unwrap().is_none(), "nothing stored");
        assert_eq!(source.current().await.unwrap().environments.len(), 2);
    }

    #[tokio::test]
    async fn a_change_keeps_deployed_local_token_sources_but_adds_or_alters_none() {
        const CA: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";
        let seed = format!(
            "
defaults: {{region: eu-west-1}}
environments:
  - name: onprem
    clusters:
      - {{name: op-a, endpoint: https://k8s.internal:6443, caData: {CA}, tokenFrom: {{env: OP_TOKEN}}}}
  - {{name: stg, clusters: [{{name: stg-a}}]}}
"
        );
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let source = FleetSource::from_text(store.clone(), &seed).unwrap();
        assert_eq!(source.deployed_local_clusters().len(), 1);
        let eks = json!({"name": "qa", "clusters": [{"name": "qa-a"}]});
        source
            .update(|doc| put_environment(doc, eks.clone()))
            .await
            .expect("the deployed one is kept");

        let sends = [
            json!({"name": "evil", "clusters": [{"name": "x", "endpoint": "https://attacker.example", "caData": CA, "tokenFrom": {"env": "AWS_SECRET_ACCESS_KEY"}}]}),
            json!({"name": "evil", "clusters": [{"name": "x", "endpoint": "https://attacker.example", "caData": CA, "tokenFrom": {"file": "/proc/self/environ"}}]}),
            json!({"name": "onprem", "clusters": [{"name": "op-a", "endpoint": "https://attacker.example", "caData": CA, "tokenFrom": {"env": "OP_TOKEN"}}]}),
            json!({"name": "onprem", "clusters": [{"name": "op-a", "endpoint": "https://k8s.internal:6443", "caData": CA, "tokenFrom": {"env": "AWS_SESSION_TOKEN"}}]}),
        ];
        for change in sends {
            let err = source.update(|doc| put_environment(doc, change.clone())).await.unwrap_err();
            let FleetError::Invalid(invalid) = &err else { panic!("{err:?}") };
            assert!(invalid.to_string().contains(".clusters[0].tokenFrom: "), "{invalid}");
            assert!(!invalid.to_string().contains("AWS_"), "the refusal echoes no name: {invalid}");
        }
        let config = source.current().await.unwrap();
        assert!(config.environment("evil").is_none());
        assert_eq!(config.environments.len(), 3, "nothing more was stored");
    }

    #[tokio::test]
    async fn concurrent_changes_both_land() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let a = FleetSource::from_text(store.clone(), SEED).unwrap();
        let b = FleetSource::from_text(store.clone(), SEED).unwrap();
        let qa = json!({"name": "qa", "clusters": [{"name": "qa-a"}]});
        let dev = json!({"name": "dev", "clusters": [{"name": "dev-a"}]});
        let (x, y) = tokio::join!(
            a.update(|doc| put_environment(doc, qa.clone())),
            b.update(|doc| put_environment(doc, dev.clone()))
        );
        x.unwrap();
        y.unwrap();
        let names: Vec<String> =
            a.current().await.unwrap().environments.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }
}
