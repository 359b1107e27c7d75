//! Real clusters from a kubeconfig: each context becomes a cluster (and an
//! environment of its own, so the dashboard shows one column per context),
//! reached with the kube crate's own kubeconfig support — exec plugins such
//! as `aws eks get-token`, tokens, client certificates — rather than the
//! EKS path the Lambda takes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use kube::config::{KubeConfigOptions, Kubeconfig};
use shared::config::{Cluster, ClusterAccess};
use snapshot::access::{ClusterConnector, KubeTimeouts};
use snapshot::error::{CollectError, FailureKind};

/// A context of the file and the cluster name it is shown under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub context: String,
    pub name: String,
}

/// The file's contexts, named for the dashboard.
pub fn read(path: &Path) -> Result<(Kubeconfig, Vec<Context>), String> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| format!("cannot read the kubeconfig {}: {e}", path.display()))?;
    let mut used = BTreeSet::new();
    let contexts: Vec<Context> = kubeconfig
        .contexts
        .iter()
        .map(|named| {
            let mut name = cluster_name(&named.name);
            let base = name.clone();
            for n in 2.. {
                if used.insert(name.clone()) {
                    break;
                }
                name = format!("{base}-{n}");
            }
            Context { context: named.name.clone(), name }
        })
        .collect();
    if contexts.is_empty() {
        return Err(format!("the kubeconfig {} has no contexts", path.display()));
    }
    Ok((kubeconfig, contexts))
}

/// A context name as a cluster name: the part after the last `/` (EKS
/// context names are ARNs), anything but letters, digits, `-` and `_`
/// turned into `-`, at most 100 characters.
fn cluster_name(context: &str) -> String {
    let tail = context.rsplit('/').next().unwrap_or(context);
    let mapped: String =
        tail.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '-' }).collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name: String = trimmed.chars().take(100).collect();
    if name.is_empty() { "cluster".to_owned() } else { name }
}

/// The fleet configuration: one environment per context, one dashboard
/// with every environment as a column, no label selector (every workload).
pub fn fleet_text(contexts: &[Context]) -> String {
    let mut yaml =
        String::from("defaults:\n  refreshInterval: 60s\n  snapshotTtl: 15m\nenvironments:\n");
    for c in contexts {
        yaml.push_str(&format!(
            "  - name: {0}\n    clusters:\n      - name: {0}\n        kubeconfigContext: {1}\n",
            c.name,
            serde_json::to_string(&c.context).unwrap_or_default(),
        ));
    }
    let columns: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
    yaml.push_str(&format!(
        "dashboards:\n  - name: kubeconfig\n    title: Every context of the kubeconfig\n    columns: [{}]\n",
        columns.join(", ")
    ));
    yaml
}

/// Reaches kubeconfig contexts itself and hands every other cluster (an
/// EKS cluster an admin adds at run time, say) to `others`.
pub struct KubeconfigConnector {
    kubeconfig: Kubeconfig,
    timeouts: KubeTimeouts,
    others: Box<dyn ClusterConnector>,
    /// The kube client refreshes exec and file tokens itself, so a client
    /// is kept until a 401 says otherwise.
    clients: Mutex<HashMap<String, kube::Client>>,
}

impl KubeconfigConnector {
    pub fn new(
        kubeconfig: Kubeconfig,
        timeouts: KubeTimeouts,
        others: Box<dyn ClusterConnector>,
    ) -> Self {
        Self { kubeconfig, timeouts, others, clients: Mutex::default() }
    }

    async fn client(&self, context: &str) -> Result<kube::Client, CollectError> {
        let options = KubeConfigOptions { context: Some(context.to_owned()), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(self.kubeconfig.clone(), &options)
            .await
            .map_err(|e| {
                CollectError::new(FailureKind::Config, "cannot use the kubeconfig context")
                    .with_source(e)
            })?;
        self.timeouts.client(config)
    }
}

#[async_trait]
impl ClusterConnector for KubeconfigConnector {
    async fn connect(&self, cluster: &Cluster) -> Result<kube::Client, CollectError> {
        let ClusterAccess::Kubeconfig { context } = &cluster.access else {
            return self.others.connect(cluster).await;
        };
        let cached = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(cluster.name.as_str())
            .cloned();
        if let Some(client) = cached {
            return Ok(client);
        }
        let client = self.client(context).await?;
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(cluster.name.to_string(), client.clone());
        Ok(client)
    }

    fn invalidate(&self, cluster: &str) {
        self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(cluster);
        self.others.invalidate(cluster);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fake_kube::fleet::FleetEnvironment;
    use fake_kube::{FakeFleet, FleetBuilder};
    use shared::clock::SystemClock;
    use shared::config::FleetConfig;
    use shared::model::SnapshotRequest;
    use shared::store::memory::MemoryStore;
    use snapshot::snapshotter::{OutcomeStatus, SnapshotError, SnapshotOptions, Snapshotter};

    use super::*;

    /// Two fake clusters behind one kubeconfig: one user with a static
    /// token, one with an exec plugin printing an ExecCredential; a third
    /// context whose token is wrong fails alone.
    #[tokio::test]
    async fn every_context_is_snapshotted_with_its_own_auth() {
        let environment = FleetEnvironment {
            name: "dev".into(),
            clusters: vec!["one".into(), "two".into(), "three".into()],
            stage: 0,
            custsol: false,
        };
        let fleet = FakeFleet::start(FleetBuilder::custom(vec![environment], 6).build(), "t0ken")
            .await
            .unwrap();
        let credential = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"t0ken"}}"#;
        let mut yaml = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        for c in &fleet.clusters {
            yaml.push_str(&format!(
                "- name: {0}\n  cluster:\n    server: {1}\n    certificate-authority-data: {2}\n",
                c.name(),
                c.endpoint(),
                c.ca_data()
            ));
        }
        yaml.push_str(&format!(
            "users:\n- name: static\n  user:\n    token: t0ken\n- name: wrong\n  user:\n    token: nope\n\
             - name: plugin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: sh\n      args: [\"-c\", {}]\n      interactiveMode: Never\n\
             contexts:\n\
             - name: arn:aws:eks:eu-west-1:123456789012:cluster/one\n  context: {{cluster: one, user: static}}\n\
             - name: two\n  context: {{cluster: two, user: plugin}}\n\
             - name: three\n  context: {{cluster: three, user: wrong}}\n",
            serde_json::to_string(&format!("printf '%s' '{credential}'")).unwrap()
        ));
        let path = std::env::temp_dir().join(format!("kubeconfig-test-{}", std::process::id()));
        std::fs::write(&path, yaml).unwrap();

        let (file, contexts) = read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let names: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["one", "two", "three"]);
        let config = FleetConfig::parse(&fleet_text(&contexts), "kubeconfig").unwrap();
        assert_eq!(config.dashboard("kubeconfig").unwrap().columns.len(), 3);

        let fallback = snapshot::access::AwsConnector::new(
            aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
            KubeTimeouts::default(),
        );
        let connector = KubeconfigConnector::new(file, KubeTimeouts::default(), Box::new(fallback));
        let store = Arc::new(MemoryStore::default());
        let snapshotter = Snapshotter::new(
            store,
            Arc::new(connector),
            Arc::new(SystemClock),
            SnapshotOptions::default(),
        );
        let mut results = HashMap::new();
        for environment in &config.environments {
            let request = SnapshotRequest::environment(environment.name.clone());
            results.insert(environment.name.to_string(), snapshotter.run(&config, &request).await);
        }
        for name in ["one", "two"] {
            let objects = fleet.fleet.cluster_objects(name, 0);
            let workloads = objects.deployments.len() + objects.daemon_sets.len();
            let outcome = &results[name].as_ref().unwrap().outcomes[0];
            assert_eq!(outcome.status, OutcomeStatus::Ok, "{outcome:?}");
            assert_eq!(outcome.workloads, Some(workloads as u32));
        }
        let Err(SnapshotError::AllFailed(report)) = &results["three"] else {
            panic!("{:?}", results["three"]);
        };
        assert_eq!(report.outcomes[0].error_kind, Some("Unauthorized"), "{report:?}");
    }

    #[test]
    fn context_names_become_cluster_names() {
        assert_eq!(cluster_name("arn:aws:eks:eu-west-1:123456789012:cluster/dab-prod"), "dab-prod");
        assert_eq!(cluster_name("kind-kind"), "kind-kind");
        assert_eq!(cluster_name("admin@k3s.local"), "admin-k3s-local");
        assert_eq!(cluster_name("--"), "cluster");
    }
}
