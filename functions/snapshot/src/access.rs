//! Reaching a cluster's API server: for EKS, our own credentials or an
//! assumed role in the cluster's account, DescribeCluster for endpoint and
//! CA, and an IAM token; for any other cluster, the endpoint, CA and token
//! source from the configuration: a Secrets Manager secret that names the
//! endpoint its token is for, or (deployed configuration only) a variable
//! or file of the function's own. Clients are reused while their token is
//! younger than 14 minutes (EKS honours a token for 15, and the kube client
//! never refreshes a static token by itself).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use secrecy::SecretString;

use crate::error::{CollectError, FailureKind};
use crate::token::eks_token;
use shared::config::{AssumeRole, Cluster, ClusterAccess, TokenSource};
use shared::pem::certificates_from_ca_data;

/// How long a minted token (and the client holding it) is reused.
pub const TOKEN_REUSE: Duration = Duration::from_secs(14 * 60);

/// Timeouts of the kube client: the library sets none by default.
#[derive(Debug, Clone, Copy)]
pub struct KubeTimeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for KubeTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), read: Duration::from_secs(20) }
    }
}

/// The port: a ready kube client for a configured cluster.
#[async_trait]
pub trait ClusterConnector: Send + Sync {
    async fn connect(&self, cluster: &Cluster) -> Result<kube::Client, CollectError>;
    /// Forget any cached client of this cluster (after a 401, say).
    fn invalidate(&self, cluster: &str);
}

struct Cached {
    client: kube::Client,
    minted: Instant,
}

/// The production connector: AWS for EKS clusters, configuration for the rest.
pub struct AwsConnector {
    sdk: SdkConfig,
    timeouts: KubeTimeouts,
    /// Assumed-role credential providers (they cache and refresh themselves).
    roles: tokio::sync::Mutex<HashMap<String, SharedCredentialsProvider>>,
    clients: Mutex<HashMap<String, Cached>>,
    /// The clusters that may be reached with a local token source: those of
    /// the deployed configuration ([`shared::fleet::FleetSource::deployed_local_clusters`]).
    /// A stored configuration cannot add one (the fleet source refuses such
    /// a change); this refuses one that got there anyway.
    deployed_local: Vec<Cluster>,
    secrets: aws_sdk_secretsmanager::Client,
}

impl std::fmt::Debug for AwsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConnector").finish_non_exhaustive()
    }
}

impl AwsConnector {
    /// A connector that reaches EKS clusters only; see [`Self::with_deployed_local`].
    pub fn new(sdk: SdkConfig, timeouts: KubeTimeouts) -> Self {
        Self {
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
            timeouts,
            roles: Default::default(),
            clients: Mutex::default(),
            deployed_local: Vec::new(),
        }
    }

    /// Also reaches these clusters (exactly as given) with their local
    /// token sources.
    pub fn with_deployed_local(mut self, clusters: Vec<Cluster>) -> Self {
        self.deployed_local = clusters;
        self
    }

    fn cached(&self, cluster: &str) -> Option<kube::Client> {
        let clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients.get(cluster).filter(|c| c.minted.elapsed() < TOKEN_REUSE).map(|c| c.client.clone())
    }

    fn remember(&self, cluster: &str, client: &kube::Client, minted: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients.insert(cluster.to_owned(), Cached { client: client.clone(), minted });
    }

    async fn credentials_for(
        &self,
        region: &str,
        role: Option<&AssumeRole>,
    ) -> Result<SharedCredentialsProvider, CollectError> {
        let Some(role) = role else {
            return self.sdk.credentials_provider().ok_or_else(|| {
                CollectError::new(FailureKind::Aws, "no AWS credentials are configured")
            });
        };
        let key = format!("{}|{}", role.role_arn, region);
        let mut roles = self.roles.lock().await;
        if let Some(provider) = roles.get(&key) {
            return Ok(provider.clone());
        }
        let mut builder = AssumeRoleProvider::builder(role.role_arn.as_str())
            .session_name("release-dashboard-snapshot")
            .region(aws_config::Region::new(region.to_owned()))
            .configure(&self.sdk);
        if let Some(external_id) = &role.external_id {
            builder = builder.external_id(external_id.as_str());
        }
        let provider = SharedCredentialsProvider::new(builder.build().await);
        roles.insert(key, provider.clone());
        Ok(provider)
    }

    async fn connect_eks(
        &self,
        cluster: &Cluster,
        region: &str,
        role: Option<&AssumeRole>,
    ) -> Result<kube::Client, CollectError> {
        let provider = self.credentials_for(region, role).await?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            let what = if role.is_some() {
                "assuming the reader role failed"
            } else {
                "no usable AWS credentials"
            };
            CollectError::new(FailureKind::Aws, what).with_source(e)
        })?;
        let eks_config = aws_sdk_eks::config::Builder::from(&self.sdk)
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(provider)
            .build();
        let eks = aws_sdk_eks::Client::from_conf(eks_config);
        let described =
            eks.describe_cluster().name(cluster.name.as_str()).send().await.map_err(|e| {
                let message = match e.as_service_error() {
                    Some(s) if s.is_resource_not_found_exception() => {
                        "EKS has no cluster of that name in this account and region"
                    }
                    _ => "EKS DescribeCluster failed",
                };
                CollectError::new(FailureKind::Aws, message).with_source(e)
            })?;
        let info = described.cluster.ok_or_else(|| {
            CollectError::new(FailureKind::Aws, "DescribeCluster returned no cluster")
        })?;
        let endpoint = info.endpoint.ok_or_else(|| {
            CollectError::new(FailureKind::Aws, "the cluster has no endpoint yet")
        })?;
        let ca_data = info
            .certificate_authority
            .and_then(|ca| ca.data)
            .ok_or_else(|| CollectError::new(FailureKind::Aws, "the cluster has no CA data"))?;
        let token = eks_token(&credentials, region, cluster.name.as_str(), SystemTime::now())
            .map_err(|e| {
                CollectError::new(FailureKind::Aws, "could not sign the EKS token").with_source(e)
            })?;
        self.client(&endpoint, &ca_data, token)
    }

    fn client(
        &self,
        endpoint: &str,
        ca_data: &str,
        token: SecretString,
    ) -> Result<kube::Client, CollectError> {
        let url = endpoint.parse().map_err(|e| {
            CollectError::new(FailureKind::Config, "the cluster endpoint is not a URL")
                .with_source(e)
        })?;
        let roots = certificates_from_ca_data(ca_data).map_err(|e| {
            CollectError::new(FailureKind::Config, "the cluster CA is not a PEM bundle")
                .with_source(e)
        })?;
        self.timeouts.client(bearer_config(url, roots, token))
    }
}

/// A cluster reached by endpoint with a bearer token, trusting only the CA
/// it was given (EKS's from DescribeCluster, or the fleet file's): the
/// configuration [`KubeTimeouts::client`] makes the snapshot's client of.
pub fn bearer_config(url: http::Uri, roots: Vec<Vec<u8>>, token: SecretString) -> kube::Config {
    let mut config = kube::Config::new(url);
    config.root_cert = Some(roots);
    config.auth_info.token = Some(token);
    config
}

impl KubeTimeouts {
    /// A kube client of `config` with these timeouts and without kube's
    /// own retry.
    pub fn client(&self, mut config: kube::Config) -> Result<kube::Client, CollectError> {
        config.connect_timeout = Some(self.connect);
        config.read_timeout = Some(self.read);
        config.write_timeout = Some(self.read);
        // NB: kube's own retry waits out Retry-After up to 15 times with
        // delays up to 1000 s; the collector retries within its budget instead.
        config.default_retry = false;
        kube::Client::try_from(config).map_err(|e| {
            CollectError::new(FailureKind::Config, "could not build the kube client").with_source(e)
        })
    }
}

/// What a cluster's secret holds.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSecret {
    endpoint: String,
    token: SecretString,
}

impl AwsConnector {
    /// The token of a secret, if the secret names `endpoint` as where it
    /// goes. Errors name no secret, variable, path or value: they reach the
    /// cluster's status, which API readers see.
    async fn secret_token(&self, name: &str, endpoint: &str) -> Result<SecretString, CollectError> {
        let config = |message: &'static str| CollectError::new(FailureKind::Config, message);
        let answer = self.secrets.get_secret_value().secret_id(name).send().await.map_err(|e| {
            CollectError::new(FailureKind::Aws, "the cluster's secret cannot be read")
                .with_source(e)
        })?;
        let text =
            answer.secret_string().ok_or_else(|| config("the cluster's secret holds no text"))?;
        let secret: ClusterSecret = serde_json::from_str(text)
            .map_err(|_| config("the cluster's secret is not {\"endpoint\", \"token\"}"))?;
        if secret.endpoint.trim_end_matches('/') != endpoint.trim_end_matches('/') {
            return Err(config("the cluster's secret is for another endpoint"));
        }
        Ok(secret.token)
    }
}

/// The token of a cluster of the deployed configuration from the
/// function's own variable or file. Errors name no variable, path or
/// value: they reach the cluster's status, which API readers see.
fn read_token(source: &TokenSource) -> Result<SecretString, CollectError> {
    let token = match source {
        TokenSource::Env(var) => std::env::var(var).map_err(|_| {
            CollectError::new(FailureKind::Config, "the cluster's token variable is not set")
        })?,
        TokenSource::File(path) => std::fs::read_to_string(path).map_err(|_| {
            CollectError::new(FailureKind::Config, "the cluster's token file cannot be read")
        })?,
        TokenSource::Secret(_) => {
            return Err(CollectError::new(FailureKind::Config, "a secret is read from AWS"));
        }
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(CollectError::new(FailureKind::Config, "the cluster token is empty"));
    }
    Ok(SecretString::from(token.to_owned()))
}

#[async_trait]
impl ClusterConnector for AwsConnector {
    #[tracing::instrument(level = "debug", skip_all, fields(cluster = %cluster.name))]
    async fn connect(&self, cluster: &Cluster) -> Result<kube::Client, CollectError> {
        if let Some(client) = self.cached(cluster.name.as_str()) {
            return Ok(client);
        }
        let minted = Instant::now();
        let client = match &cluster.access {
            ClusterAccess::Eks { region, assume_role } => {
                self.connect_eks(cluster, region.as_str(), assume_role.as_ref()).await?
            }
            ClusterAccess::Direct { endpoint, ca_data, token_from: TokenSource::Secret(name) } => {
                // Read every time: secrets rotate.
                let token = self.secret_token(name, endpoint.as_str()).await?;
                return self.client(endpoint.as_str(), ca_data, token);
            }
            ClusterAccess::Direct { .. } if !self.deployed_local.contains(cluster) => {
                return Err(CollectError::new(
                    FailureKind::Config,
                    "a cluster reached with a local token must be in the deployed configuration",
                ));
            }
            ClusterAccess::Direct { endpoint, ca_data, token_from } => {
                // Read every time: projected tokens rotate underneath us.
                return self.client(endpoint.as_str(), ca_data, read_token(token_from)?);
            }
            ClusterAccess::Kubeconfig { .. } => {
                return Err(CollectError::new(
                    FailureKind::Config,
                    "kubeconfig contexts are reached by the local server only",
                ));
            }
        };
        self.remember(cluster.name.as_str(), &client, minted);
        Ok(client)
    }

    fn invalidate(&self, cluster: &str) {
        self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(cluster);
    }
}
