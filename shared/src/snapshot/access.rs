//! Reaching a cluster's API server: for EKS, our own credentials or an
//! assumed role in the cluster's account, DescribeCluster for endpoint and
//! CA, and an IAM token; for any other cluster, the endpoint, CA and token
//! source from the configuration. Clients are reused while their token is
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

use super::collect::{CollectError, FailureKind};
use super::token::eks_token;
use crate::config::{AssumeRole, Cluster, ClusterAccess, TokenSource};
use crate::pem::certificates_from_ca_data;

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
}

impl std::fmt::Debug for AwsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsConnector").finish_non_exhaustive()
    }
}

impl AwsConnector {
    pub fn new(sdk: SdkConfig, timeouts: KubeTimeouts) -> Self {
        Self { sdk, timeouts, roles: Default::default(), clients: Mutex::default() }
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
        let mut config = kube::Config::new(url);
        config.root_cert = Some(roots);
        config.auth_info.token = Some(token);
        self.timeouts.client(config)
    }
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

fn read_token(source: &TokenSource) -> Result<SecretString, CollectError> {
    let token = match source {
        TokenSource::Env(var) => std::env::var(var).map_err(|_| {
            CollectError::new(FailureKind::Config, format!("the token variable {var} is not set"))
        })?,
        TokenSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
            CollectError::new(
                FailureKind::Config,
                format!("cannot read the token file {}", path.display()),
            )
            .with_source(e)
        })?,
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
