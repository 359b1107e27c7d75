//! Typed configuration of the fleet: environments, their clusters, and
//! dashboards. Read once at cold start from YAML or JSON (a file or an
//! environment variable) and refused with a message naming the bad key, so a
//! typo fails the deploy instead of silently hiding a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::parse_duration;
use crate::domain::{
    AwsRegion, ClusterName, DashboardName, EnvironmentName, ExternalId, HttpsUrl, Namespace,
    RoleArn, TeamName,
};
use crate::labels::LabelSelector;
use crate::policy::{Policies, RawPolicies};

/// Inline configuration (YAML or JSON).
pub const FLEET_CONFIG_VAR: &str = "FLEET_CONFIG";
/// Path of a configuration file (YAML or JSON).
pub const FLEET_CONFIG_FILE_VAR: &str = "FLEET_CONFIG_FILE";

const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(120);
const DEFAULT_SNAPSHOT_TTL: Duration = Duration::from_secs(3600);
/// The schedule's sweep runs once a minute, EventBridge's finest rate.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
const MAX_REFRESH_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no fleet configuration: set {FLEET_CONFIG_VAR} (YAML or JSON) or {FLEET_CONFIG_FILE_VAR} (a path)"
    )]
    Missing,
    #[error("cannot read the fleet configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {key}: {message}")]
    Parse { origin: String, key: String, message: String },
    #[error("{origin}: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid { origin: String, problems: Vec<Problem> },
    #[error("environment variable {name} is not set")]
    MissingVar { name: &'static str },
    #[error("environment variable {name}: {message}")]
    BadVar { name: &'static str, message: String },
}

/// One thing wrong with the configuration, at one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetConfig {
    pub environments: Vec<Environment>,
    pub dashboards: Vec<Dashboard>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub name: EnvironmentName,
    pub clusters: Vec<Cluster>,
    #[serde(with = "seconds")]
    pub refresh_interval: Duration,
    #[serde(with = "seconds")]
    pub snapshot_ttl: Duration,
    pub label_selector: LabelSelector,
    pub namespaces: NamespaceFilter,
    /// Teams that may see this environment; empty means everyone.
    pub teams: Vec<TeamName>,
    /// Where a workload's version comes from, when not by the default rule.
    pub version_from: Option<VersionFrom>,
}

/// Where a workload's version comes from, overriding the default rule
/// (the `app.kubernetes.io/version` label, else the main container's tag).
/// Written `{label: KEY}`, `{annotation: KEY}` or `{container: NAME}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", try_from = "RawVersionFrom")]
pub enum VersionFrom {
    /// This label of the workload.
    Label(String),
    /// This annotation of the workload (values of 256 bytes at most are read).
    Annotation(String),
    /// The image tag of the container of this name.
    Container(String),
}

/// `versionFrom` as written: exactly one of its keys (a map in YAML too,
/// where an enum would need a tag).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVersionFrom {
    label: Option<String>,
    annotation: Option<String>,
    container: Option<String>,
}

impl VersionFrom {
    const INVALID: &str = "must name a label, annotation or container of 1 to 317 characters";

    /// A qualified key: a 253-byte prefix, `/` and a 63-byte name.
    fn is_valid(&self) -> bool {
        let (Self::Label(key) | Self::Annotation(key) | Self::Container(key)) = self;
        !key.trim().is_empty() && key.len() <= 317
    }
}

impl TryFrom<RawVersionFrom> for VersionFrom {
    type Error = &'static str;
    fn try_from(raw: RawVersionFrom) -> Result<Self, Self::Error> {
        match (raw.label, raw.annotation, raw.container) {
            (Some(key), None, None) => Ok(Self::Label(key)),
            (None, Some(key), None) => Ok(Self::Annotation(key)),
            (None, None, Some(name)) => Ok(Self::Container(name)),
            _ => Err("give exactly one of label, annotation or container"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceFilter {
    /// Only these namespaces; empty means all.
    #[serde(default)]
    pub include: Vec<Namespace>,
    #[serde(default)]
    pub exclude: Vec<Namespace>,
}

impl NamespaceFilter {
    pub fn allows(&self, namespace: &str) -> bool {
        let included =
            self.include.is_empty() || self.include.iter().any(|n| n.as_str() == namespace);
        included && !self.exclude.iter().any(|n| n.as_str() == namespace)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: ClusterName,
    pub access: ClusterAccess,
}

/// How the snapshot function reaches a cluster's API server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ClusterAccess {
    /// EKS: DescribeCluster gives endpoint and CA, an IAM token authenticates.
    Eks { region: AwsRegion, assume_role: Option<AssumeRole> },
    /// Any other cluster: endpoint, CA and a bearer token given here.
    Direct {
        endpoint: HttpsUrl,
        /// Base64 of the PEM CA bundle, as in a kubeconfig's `certificate-authority-data`.
        ca_data: String,
        token_from: TokenSource,
    },
    /// A context of the kubeconfig the local server was given
    /// (`release-dashboard-local --kubeconfig`), with its own auth (exec
    /// plugins, tokens, client certificates). Not reachable from Lambda.
    Kubeconfig { context: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssumeRole {
    pub role_arn: RoleArn,
    pub external_id: Option<ExternalId>,
}

/// Where the bearer token of a non-EKS cluster comes from. The token itself
/// never appears in configuration. Written `{env: NAME}`, `{file: PATH}` or
/// `{secret: NAME}`.
///
/// `env` and `file` read the function's own environment and files, so only
/// the deployed configuration may use them (see `crate::fleet`). `secret`
/// names an AWS Secrets Manager secret under [`CLUSTER_SECRET_PREFIX`]
/// (the only ones the snapshot role may read) whose value is
/// `{"endpoint": URL, "token": TOKEN}`: the token goes to that endpoint
/// only, so whoever may write such secrets decides where a token may go,
/// and an API admin can add an on-premises cluster without a redeploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawTokenSource")]
pub enum TokenSource {
    /// The name of an environment variable holding the token.
    Env(String),
    /// A file holding the token (e.g. a projected service account token).
    File(PathBuf),
    /// A Secrets Manager secret's name.
    Secret(String),
}

/// The names `tokenFrom: {secret}` may give.
pub const CLUSTER_SECRET_PREFIX: &str = "release-dashboard/clusters/";

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TokenSourceConfig)]
pub(crate) struct RawTokenSource {
    /// The name of a variable of the function's own (deployed configuration only).
    env: Option<String>,
    /// A file of the function's own (deployed configuration only).
    #[schema(value_type = Option<String>)]
    file: Option<PathBuf>,
    /// A Secrets Manager secret under `release-dashboard/clusters/`, whose
    /// value is `{"endpoint", "token"}`.
    secret: Option<String>,
}

impl TryFrom<RawTokenSource> for TokenSource {
    type Error = String;
    fn try_from(raw: RawTokenSource) -> Result<Self, Self::Error> {
        match (raw.env, raw.file, raw.secret) {
            (Some(env), None, None) if !env.is_empty() => Ok(Self::Env(env)),
            (None, Some(file), None) if !file.as_os_str().is_empty() => Ok(Self::File(file)),
            (None, None, Some(secret)) => {
                let rest = secret.strip_prefix(CLUSTER_SECRET_PREFIX).unwrap_or_default();
                // Secrets Manager's own name rule: 1-512 of these characters.
                let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
                if rest.is_empty() || secret.len() > 512 || !secret.chars().all(allowed) {
                    return Err(format!(
                        "secret: must be a Secrets Manager secret name under {CLUSTER_SECRET_PREFIX} (letters, digits and /_+=.@-, at most 512)"
                    ));
                }
                Ok(Self::Secret(secret))
            }
            _ => Err("give exactly one of env (a variable name), file (a path) or secret (a Secrets Manager secret name)".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    pub name: DashboardName,
    pub title: String,
    /// Environment columns, in promotion order (e.g. loe → stg → prod).
    pub columns: Vec<EnvironmentName>,
    /// Which workloads are rows of this dashboard.
    pub selector: LabelSelector,
    /// Where the version of its rows' workloads comes from, when not by
    /// their environment's rule.
    pub version_from: Option<VersionFrom>,
    /// The rules its consecutive columns are judged by.
    #[serde(skip)]
    pub policies: Policies,
}

/// The `versionFrom` rules that may apply to the workloads of one
/// environment: the dashboards' that show it (in configuration order, each
/// for the workloads its selector chooses), then the environment's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionRules {
    pub dashboards: Vec<(LabelSelector, VersionFrom)>,
    pub environment: Option<VersionFrom>,
}

impl VersionRules {
    /// The rule for a workload with these labels: the first dashboard that
    /// shows it and sets one, else the environment's; `None` is the
    /// default rule.
    pub fn for_labels(&self, labels: &BTreeMap<String, String>) -> Option<&VersionFrom> {
        self.dashboards
            .iter()
            .find(|(selector, _)| selector.matches(labels))
            .map(|(_, from)| from)
            .or(self.environment.as_ref())
    }
}

impl FleetConfig {
    pub fn from_path(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses YAML or JSON (told apart by the first character) and validates.
    /// `origin` names the source in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawFleet = if text.trim_start().starts_with('{') {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| parse_error(origin, e))?
        } else {
            let de = serde_norway::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| parse_error(origin, e))?
        };
        raw.validate()
            .map_err(|problems| ConfigError::Invalid { origin: origin.to_owned(), problems })
    }

    /// The configuration text as a document in the file format (what is
    /// stored, and edited one environment at a time), validated.
    pub fn document(text: &str, origin: &str) -> Result<(serde_json::Value, Self), ConfigError> {
        let config = Self::parse(text, origin)?;
        let document = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
        } else {
            serde_norway::from_str(text).map_err(serde::de::Error::custom)
        };
        let document = document.map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            key: "(top level)".into(),
            message: e.to_string(),
        })?;
        Ok((document, config))
    }

    /// Validates a document in the file format.
    pub fn from_document(document: &serde_json::Value, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawFleet =
            serde_path_to_error::deserialize(document).map_err(|e| parse_error(origin, e))?;
        raw.validate()
            .map_err(|problems| ConfigError::Invalid { origin: origin.to_owned(), problems })
    }

    /// One line per environment: its clusters and how often they refresh.
    pub fn summary(&self) -> String {
        self.environments
            .iter()
            .map(|e| {
                let clusters: Vec<&str> = e.clusters.iter().map(|c| c.name.as_str()).collect();
                format!(
                    "{}: every {} s: {}",
                    e.name,
                    e.refresh_interval.as_secs(),
                    clusters.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name.as_str() == name)
    }

    pub fn dashboard(&self, name: &str) -> Option<&Dashboard> {
        self.dashboards.iter().find(|d| d.name.as_str() == name)
    }

    /// The `versionFrom` rules for the workloads of `environment`.
    pub fn version_rules(&self, environment: &Environment) -> VersionRules {
        let dashboards = self
            .dashboards
            .iter()
            .filter(|d| d.columns.contains(&environment.name))
            .filter_map(|d| Some((d.selector.clone(), d.version_from.clone()?)))
            .collect();
        VersionRules { dashboards, environment: environment.version_from.clone() }
    }

    /// The cluster of that name and the environment it belongs to.
    pub fn cluster(&self, name: &str) -> Option<(&Environment, &Cluster)> {
        self.environments
            .iter()
            .flat_map(|e| e.clusters.iter().map(move |c| (e, c)))
            .find(|(_, c)| c.name.as_str() == name)
    }
}

fn parse_error<E: fmt::Display>(origin: &str, err: serde_path_to_error::Error<E>) -> ConfigError {
    let key = err.path().to_string();
    let key = if key == "." { "(top level)".to_owned() } else { key };
    // NB: the YAML parser prefixes its message with (part of) the path,
    // which we already report in full.
    let message = err.inner().to_string();
    let message = match message.split_once(": ") {
        Some((head, rest)) if key.starts_with(head) => rest.to_owned(),
        _ => message,
    };
    ConfigError::Parse { origin: origin.to_owned(), key, message }
}

// ---------------------------------------------------------------------------
// The file format. Kept apart from the validated types so that cross-field
// rules run once, in `validate`, with every problem reported at once.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFleet {
    #[serde(default)]
    defaults: RawDefaults,
    environments: Vec<RawEnvironment>,
    #[serde(default)]
    dashboards: Vec<RawDashboard>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDefaults {
    region: Option<AwsRegion>,
    #[serde(default, deserialize_with = "duration_opt")]
    refresh_interval: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    snapshot_ttl: Option<Duration>,
    label_selector: Option<LabelSelector>,
    role_arn: Option<RoleArn>,
    external_id: Option<ExternalId>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = EnvironmentConfig)]
pub(crate) struct RawEnvironment {
    /// The environment's name; in a PUT, the one in the path.
    #[schema(required = false)]
    name: EnvironmentName,
    clusters: Vec<RawCluster>,
    /// `60s` … `24h`.
    #[serde(default, deserialize_with = "duration_opt")]
    #[schema(value_type = Option<String>, example = "2m")]
    refresh_interval: Option<Duration>,
    /// At least twice the refresh interval.
    #[serde(default, deserialize_with = "duration_opt")]
    #[schema(value_type = Option<String>, example = "1h")]
    snapshot_ttl: Option<Duration>,
    /// A Kubernetes label selector (`app.kubernetes.io/component=dab`).
    #[schema(value_type = Option<String>)]
    label_selector: Option<LabelSelector>,
    #[serde(default)]
    namespaces: NamespaceFilter,
    #[serde(default)]
    teams: Vec<TeamName>,
    /// Where a workload's version comes from, when not by the default rule.
    version_from: Option<VersionFrom>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ClusterConfig)]
pub(crate) struct RawCluster {
    name: ClusterName,
    region: Option<AwsRegion>,
    role_arn: Option<RoleArn>,
    external_id: Option<ExternalId>,
    endpoint: Option<HttpsUrl>,
    ca_data: Option<String>,
    #[schema(value_type = Option<RawTokenSource>)]
    token_from: Option<TokenSource>,
    kubeconfig_context: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDashboard {
    name: DashboardName,
    title: Option<String>,
    columns: Vec<EnvironmentName>,
    #[serde(default = "LabelSelector::everything")]
    selector: LabelSelector,
    version_from: Option<VersionFrom>,
    policies: Option<RawPolicies>,
}

impl RawFleet {
    fn validate(self) -> Result<FleetConfig, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut problem = |key: String, message: &str| {
            problems.push(Problem { key, message: message.to_owned() });
        };
        let defaults = &self.defaults;
        if self.environments.is_empty() {
            problem("environments".into(), "at least one environment is required");
        }

        let mut environment_names = BTreeSet::new();
        let mut cluster_names: BTreeMap<String, String> = BTreeMap::new();
        let mut environments = Vec::with_capacity(self.environments.len());
        for (i, env) in self.environments.into_iter().enumerate() {
            let at = format!("environments[{i}]");
            if !environment_names.insert(env.name.clone()) {
                problem(format!("{at}.name"), "duplicate environment name");
            }
            let refresh_interval = env
                .refresh_interval
                .or(defaults.refresh_interval)
                .unwrap_or(DEFAULT_REFRESH_INTERVAL);
            if !(MIN_REFRESH_INTERVAL..=MAX_REFRESH_INTERVAL).contains(&refresh_interval) {
                problem(format!("{at}.refreshInterval"), "must be between 60s and 24h");
            }
            let snapshot_ttl =
                env.snapshot_ttl.or(defaults.snapshot_ttl).unwrap_or(DEFAULT_SNAPSHOT_TTL);
            // NB: a TTL shorter than two refreshes would let data expire
            // between two good snapshots and show an empty environment.
            if snapshot_ttl < refresh_interval * 2 {
                problem(format!("{at}.snapshotTtl"), "must be at least twice the refresh interval");
            }
            if env.clusters.is_empty() {
                problem(format!("{at}.clusters"), "at least one cluster is required");
            }
            for namespace in &env.namespaces.include {
                if env.namespaces.exclude.contains(namespace) {
                    problem(
                        format!("{at}.namespaces"),
                        "a namespace is both included and excluded",
                    );
                }
            }
            if env.version_from.as_ref().is_some_and(|from| !from.is_valid()) {
                problem(format!("{at}.versionFrom"), VersionFrom::INVALID);
            }
            let mut clusters = Vec::with_capacity(env.clusters.len());
            for (j, raw) in env.clusters.into_iter().enumerate() {
                let at = format!("{at}.clusters[{j}]");
                if let Some(other) = cluster_names.insert(raw.name.to_string(), at.clone()) {
                    problem(format!("{at}.name"), &format!("cluster name already used at {other}"));
                }
                match raw.into_access(defaults) {
                    Ok(cluster) => clusters.push(cluster),
                    Err((key, message)) => problem(format!("{at}.{key}"), message),
                }
            }
            environments.push(Environment {
                name: env.name,
                clusters,
                refresh_interval,
                snapshot_ttl,
                label_selector: env
                    .label_selector
                    .or_else(|| defaults.label_selector.clone())
                    .unwrap_or_else(LabelSelector::everything),
                namespaces: env.namespaces,
                teams: env.teams,
                version_from: env.version_from,
            });
        }

        let mut dashboard_names = BTreeSet::new();
        let mut dashboards = Vec::with_capacity(self.dashboards.len());
        for (i, raw) in self.dashboards.into_iter().enumerate() {
            let at = format!("dashboards[{i}]");
            if !dashboard_names.insert(raw.name.clone()) {
                problem(format!("{at}.name"), "duplicate dashboard name");
            }
            if raw.columns.is_empty() {
                problem(format!("{at}.columns"), "at least one environment column is required");
            }
            let mut seen = BTreeSet::new();
            for (j, column) in raw.columns.iter().enumerate() {
                if !environment_names.contains(column) {
                    problem(format!("{at}.columns[{j}]"), "no environment of that name");
                }
                if !seen.insert(column) {
                    problem(format!("{at}.columns[{j}]"), "environment listed twice");
                }
            }
            if let Some(title) = &raw.title
                && (title.trim().is_empty() || title.chars().count() > 200)
            {
                problem(format!("{at}.title"), "must be 1 to 200 characters");
            }
            if raw.version_from.as_ref().is_some_and(|from| !from.is_valid()) {
                problem(format!("{at}.versionFrom"), VersionFrom::INVALID);
            }
            let mut policy_problems = Vec::new();
            let policies = raw.policies.map_or_else(Policies::none, |p| {
                Policies::from_raw(p, &format!("{at}.policies"), &mut policy_problems)
            });
            for (key, message) in policy_problems {
                problem(key, &message);
            }
            dashboards.push(Dashboard {
                title: raw.title.unwrap_or_else(|| raw.name.to_string()),
                name: raw.name,
                columns: raw.columns,
                selector: raw.selector,
                version_from: raw.version_from,
                policies,
            });
        }

        if problems.is_empty() {
            Ok(FleetConfig { environments, dashboards })
        } else {
            Err(problems)
        }
    }
}

impl RawCluster {
    /// Either EKS (region, optional role) or direct (endpoint + CA + token
    /// source); the error names the key at fault.
    fn into_access(self, defaults: &RawDefaults) -> Result<Cluster, (&'static str, &'static str)> {
        if let Some(context) = self.kubeconfig_context {
            if self.endpoint.is_some()
                || self.region.is_some()
                || self.role_arn.is_some()
                || self.external_id.is_some()
                || self.ca_data.is_some()
                || self.token_from.is_some()
            {
                return Err(("kubeconfigContext", "takes no other access keys"));
            }
            if context.is_empty() || context.len() > 253 || context.chars().any(char::is_control) {
                return Err(("kubeconfigContext", "must be 1-253 printable characters"));
            }
            return Ok(Cluster { name: self.name, access: ClusterAccess::Kubeconfig { context } });
        }
        let access = match self.endpoint {
            Some(endpoint) => {
                if self.region.is_some() || self.role_arn.is_some() || self.external_id.is_some() {
                    return Err((
                        "endpoint",
                        "give either endpoint + caData + tokenFrom (any cluster) or region/roleArn (EKS), not both",
                    ));
                }
                let ca_data = self.ca_data.ok_or(("caData", "required with endpoint"))?;
                if !is_base64_pem(&ca_data) {
                    return Err(("caData", "must be base64 of a PEM certificate bundle"));
                }
                let token_from = self.token_from.ok_or(("tokenFrom", "required with endpoint"))?;
                ClusterAccess::Direct { endpoint, ca_data, token_from }
            }
            None => {
                if self.ca_data.is_some() || self.token_from.is_some() {
                    return Err(("endpoint", "caData and tokenFrom need an endpoint"));
                }
                let region = self
                    .region
                    .or_else(|| defaults.region.clone())
                    .ok_or(("region", "required for an EKS cluster (or set defaults.region)"))?;
                let role_arn = self.role_arn.or_else(|| defaults.role_arn.clone());
                let external_id = self.external_id.or_else(|| defaults.external_id.clone());
                let assume_role = match (role_arn, external_id) {
                    (Some(role_arn), external_id) => Some(AssumeRole { role_arn, external_id }),
                    (None, Some(_)) => return Err(("externalId", "needs a roleArn")),
                    (None, None) => None,
                };
                ClusterAccess::Eks { region, assume_role }
            }
        };
        Ok(Cluster { name: self.name, access })
    }
}

fn is_base64_pem(data: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|pem| pem.contains("-----BEGIN CERTIFICATE-----"))
}

fn duration_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(u64),
        Text(String),
    }
    match Option::<Text>::deserialize(de)? {
        None => Ok(None),
        Some(Text::Seconds(s)) => Ok(Some(Duration::from_secs(s))),
        Some(Text::Text(t)) => parse_duration(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Durations are shown as whole seconds in API output.
mod seconds {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM_B64: &str =
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";

    fn example() -> String {
        format!(
            r#"
defaults:
  region: eu-west-1
  labelSelector: app.kubernetes.io/component=dab
environments:
  - name: dab-platform-stg
    refreshInterval: 2m
    teams: [platform]
    namespaces: {{ exclude: [kube-system] }}
    clusters:
      - name: eks-microservices-dab-stg
        roleArn: arn:aws:iam::111122223333:role/release-dashboard-reader
        externalId: release-dashboard
      - name: eks-corda-dab-stg
        region: eu-central-1
  - name: dab-platform-prod
    snapshotTtl: 2h
    clusters:
      - name: eks-microservices-dab-prod
      - name: onprem-prod
        endpoint: https://10.0.0.1:6443
        caData: {PEM_B64}
        tokenFrom: {{ env: ONPREM_PROD_TOKEN }}
dashboards:
  - name: platform
    title: Platform
    columns: [dab-platform-stg, dab-platform-prod]
"#
        )
    }

    fn problems(text: &str) -> Vec<String> {
        match FleetConfig::parse(text, "test") {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_full_example_parses_with_defaults_applied() {
        let fleet = FleetConfig::parse(&example(), "test").unwrap();
        let stg = fleet.environment("dab-platform-stg").unwrap();
        assert_eq!(stg.refresh_interval, Duration::from_secs(120));
        assert_eq!(stg.snapshot_ttl, DEFAULT_SNAPSHOT_TTL);
        assert_eq!(stg.label_selector.as_str(), "app.kubernetes.io/component=dab");
        assert!(!stg.namespaces.allows("kube-system"));
        assert!(stg.namespaces.allows("dab"));
        match &stg.clusters[0].access {
            ClusterAccess::Eks { region, assume_role: Some(role) } => {
                assert_eq!(region.as_str(), "eu-west-1");
                assert_eq!(role.role_arn.account_id(), "111122223333");
                assert_eq!(role.external_id.as_ref().unwrap().as_str(), "release-dashboard");
            }
            other => panic!("{other:?}"),
        }
        match &stg.clusters[1].access {
            ClusterAccess::Eks { region, assume_role: None } => {
                assert_eq!(region.as_str(), "eu-central-1")
            }
            other => panic!("{other:?}"),
        }
        let (env, onprem) = fleet.cluster("onprem-prod").unwrap();
        assert_eq!(env.name.as_str(), "dab-platform-prod");
        assert_eq!(env.snapshot_ttl, Duration::from_secs(7200));
        assert!(
            matches!(&onprem.access, ClusterAccess::Direct { token_from: TokenSource::Env(v), .. } if v == "ONPREM_PROD_TOKEN")
        );
        assert_eq!(fleet.dashboard("platform").unwrap().columns.len(), 2);
    }

    #[test]
    fn json_is_accepted_too() {
        let json =
            r#"{"environments":[{"name":"dev","clusters":[{"name":"c1","region":"eu-west-1"}]}]}"#;
        let fleet = FleetConfig::parse(json, "json").unwrap();
        assert_eq!(fleet.environments[0].clusters[0].name.as_str(), "c1");
    }

    #[test]
    fn a_kubeconfig_context_is_a_cluster_of_its_own_kind() {
        let json = r#"{"environments":[{"name":"kind","clusters":[
            {"name":"kind-dev","kubeconfigContext":"arn:aws:eks:eu-west-1:1:cluster/dev"}]}]}"#;
        let fleet = FleetConfig::parse(json, "json").unwrap();
        assert_eq!(
            fleet.environments[0].clusters[0].access,
            ClusterAccess::Kubeconfig { context: "arn:aws:eks:eu-west-1:1:cluster/dev".into() }
        );
        for cluster in [
            r#"{"name":"c","kubeconfigContext":"x","region":"eu-west-1"}"#,
            r#"{"name":"c","kubeconfigContext":""}"#,
        ] {
            let json = format!(r#"{{"environments":[{{"name":"kind","clusters":[{cluster}]}}]}}"#);
            let err = FleetConfig::parse(&json, "json").unwrap_err().to_string();
            assert!(err.contains("clusters[0].kubeconfigContext"), "{err}");
        }
    }

    #[test]
    fn a_bad_value_is_reported_at_its_key() {
        let text = example().replace("region: eu-central-1", "region: moon-1");
        let err = FleetConfig::parse(&text, "fleet.yaml").unwrap_err().to_string();
        assert!(err.starts_with("fleet.yaml: environments[0].clusters[1].region:"), "{err}");
        assert!(err.contains("AWS region"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let text =
            example().replace("teams: [platform]", "teams: [platform]\n    refreshIntervall: 5m");
        let err = FleetConfig::parse(&text, "fleet.yaml").unwrap_err().to_string();
        assert!(err.contains("environments[0]"), "{err}");
        assert!(err.contains("refreshIntervall"), "{err}");
    }

    #[test]
    fn bad_durations_and_selectors_name_their_key() {
        let text = example().replace("refreshInterval: 2m", "refreshInterval: 2 weeks");
        let err = FleetConfig::parse(&text, "f").unwrap_err().to_string();
        assert!(err.contains("environments[0].refreshInterval"), "{err}");
        let text = example().replace("component=dab", "component in dab");
        let err = FleetConfig::parse(&text, "f").unwrap_err().to_string();
        assert!(err.contains("defaults.labelSelector"), "{err}");
    }

    #[test]
    fn version_from_names_one_label_annotation_or_container() {
        let with = |from: &str| {
            example().replace(
                "    teams: [platform]",
                &format!("    teams: [platform]\n    versionFrom: {from}"),
            )
        };
        let config = FleetConfig::parse(&with("{ container: server }"), "t").unwrap();
        assert!(
            config
                .environments
                .iter()
                .any(|e| e.version_from == Some(VersionFrom::Container("server".into())))
        );
        for bad in ["{ label: a, container: b }", "{ label: \"\" }", "{ image: x }", "{}"] {
            let err = FleetConfig::parse(&with(bad), "t").unwrap_err().to_string();
            assert!(err.contains(".versionFrom"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_dashboard_s_version_rule_applies_to_its_rows_before_the_environment_s() {
        let text = example().replace(
            "    teams: [platform]",
            "    teams: [platform]\n    versionFrom: { label: release }",
        ) + "    versionFrom: { annotation: example.com/version }\n    selector: tier=web\n  - name: all\n    columns: [dab-platform-prod]\n    versionFrom: { container: app }\n";
        let fleet = FleetConfig::parse(&text, "t").unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let (web, other) = (labels(&[("tier", "web")]), labels(&[("tier", "db")]));
        let stg = fleet.version_rules(fleet.environment("dab-platform-stg").unwrap());
        assert_eq!(
            stg.for_labels(&web),
            Some(&VersionFrom::Annotation("example.com/version".into())),
            "the dashboard's rule for the rows it shows"
        );
        assert_eq!(stg.for_labels(&other), Some(&VersionFrom::Label("release".into())));
        let prod = fleet.version_rules(fleet.environment("dab-platform-prod").unwrap());
        assert_eq!(
            prod.for_labels(&web),
            Some(&VersionFrom::Annotation("example.com/version".into())),
            "the first dashboard in the configuration wins"
        );
        assert_eq!(prod.for_labels(&other), Some(&VersionFrom::Container("app".into())));

        let bad = example() + "    versionFrom: { label: \"\" }\n";
        assert!(problems(&bad).iter().any(|p| p.starts_with("dashboards[0].versionFrom:")));
    }

    #[test]
    fn a_token_secret_must_be_named_under_the_cluster_prefix() {
        let with = |source: &str| example().replace("{ env: ONPREM_PROD_TOKEN }", source);
        let config =
            FleetConfig::parse(&with("{ secret: release-dashboard/clusters/op-prod }"), "t")
                .unwrap();
        let onprem = &config.environments[1].clusters[1];
        assert!(matches!(
            &onprem.access,
            ClusterAccess::Direct { token_from: TokenSource::Secret(n), .. } if n == "release-dashboard/clusters/op-prod"
        ));
        for bad in [
            "{ secret: prod/database }",
            "{ secret: release-dashboard/clusters/ }",
            "{ secret: \"release-dashboard/clusters/a b\" }",
            "{ secret: release-dashboard/clusters/x, env: X }",
        ] {
            let err = FleetConfig::parse(&with(bad), "t").unwrap_err().to_string();
            assert!(err.contains("environments[1].clusters[1].tokenFrom"), "{bad}: {err}");
        }
    }

    #[test]
    fn cross_field_rules_are_all_reported() {
        let text = example()
            .replace("refreshInterval: 2m", "refreshInterval: 10s")
            .replace(
                "columns: [dab-platform-stg, dab-platform-prod]",
                "columns: [dab-platform-stg, nowhere, dab-platform-stg]",
            )
            .replace("name: eks-corda-dab-stg", "name: eks-microservices-dab-prod");
        let found = problems(&text);
        let expect = [
            "environments[0].refreshInterval: must be between 60s and 24h",
            "environments[1].clusters[0].name: cluster name already used at environments[0].clusters[1]",
            "dashboards[0].columns[1]: no environment of that name",
            "dashboards[0].columns[2]: environment listed twice",
        ];
        for e in expect {
            assert!(found.iter().any(|p| p == e), "missing {e:?} in {found:#?}");
        }
    }

    #[test]
    fn cluster_access_must_be_one_kind() {
        let text = example().replace(
            "endpoint: https://10.0.0.1:6443",
            "endpoint: https://10.0.0.1:6443\n        region: eu-west-1",
        );
        assert!(problems(&text)[0].starts_with("environments[1].clusters[1].endpoint:"));
        let text = example().replace("tokenFrom: { env: ONPREM_PROD_TOKEN }", "");
        assert_eq!(
            problems(&text),
            ["environments[1].clusters[1].tokenFrom: required with endpoint"]
        );
        let text = example().replace(PEM_B64, "bm90IGEgY2VydA==");
        assert_eq!(
            problems(&text),
            ["environments[1].clusters[1].caData: must be base64 of a PEM certificate bundle"]
        );
        let text = example().replace("region: eu-west-1\n", "");
        assert!(
            problems(&text)
                .iter()
                .any(|p| p.starts_with("environments[0].clusters[0].region: required"))
        );
    }

    #[test]
    fn snapshot_ttl_must_outlive_two_refreshes() {
        let text = example().replace("snapshotTtl: 2h", "snapshotTtl: 3m");
        assert_eq!(
            problems(&text),
            ["environments[1].snapshotTtl: must be at least twice the refresh interval"]
        );
    }

    #[test]
    fn the_summary_names_every_environment_its_interval_and_clusters() {
        let fleet = FleetConfig::parse(&example(), "test").unwrap();
        let summary = fleet.summary();
        assert!(summary.starts_with("dab-platform-stg: every 120 s: "), "{summary}");
        assert_eq!(summary.lines().count(), 2);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn the_environment_names_inline_text_or_a_file() {
        let json =
            r#"{"environments":[{"name":"dev","clusters":[{"name":"c1","region":"eu-west-1"}]}]}"#;
        let inline =
            FleetConfig::from_vars(&|name| (name == FLEET_CONFIG_VAR).then(|| json.to_owned()))
                .unwrap();
        assert_eq!(inline.environments[0].name.as_str(), "dev");

        let path =
            std::env::temp_dir().join(format!("fleet-config-test-{}.yaml", std::process::id()));
        std::fs::write(&path, example()).unwrap();
        let file_var =
            |name: &str| (name == FLEET_CONFIG_FILE_VAR).then(|| path.display().to_string());
        let from_file = FleetConfig::from_vars(&file_var).unwrap();
        assert_eq!(from_file.environments.len(), 2);
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(FleetConfig::from_vars(&file_var), Err(ConfigError::Read { .. })));
        assert!(matches!(FleetConfig::from_vars(&|_| None), Err(ConfigError::Missing)));
    }

    #[test]
    fn a_dashboard_s_policies_are_read_and_checked_at_their_key() {
        let with = |policies: &str| example() + &format!("    policies: {policies}\n");
        let config = FleetConfig::parse(
            &with("{ minSoak: 24h, overrides: [{ service: ledger-*, minSoak: off }] }"),
            "t",
        )
        .unwrap();
        let policies = &config.dashboards[0].policies;
        let none = BTreeMap::new();
        assert_eq!(policies.for_service("cart", &none).min_soak, Some(Duration::from_secs(86_400)));
        assert_eq!(policies.for_service("ledger-api", &none).min_soak, None);
        assert!(FleetConfig::parse(&example(), "t").unwrap().dashboards[0].policies.is_empty());

        let bad = problems(&with("{ minSoak: 0, overrides: [{ minSoak: 1h }] }"));
        assert_eq!(
            bad,
            [
                "dashboards[0].policies.minSoak: must be more than 0 and at most 365d (or off)",
                "dashboards[0].policies.overrides[0]: needs exactly one of service (a name pattern) or selector",
            ]
        );
        match FleetConfig::parse(&with("{ minSoke: 1h }"), "t") {
            Err(ConfigError::Parse { key, message, .. }) => {
                assert!(key.starts_with("dashboards[0].policies"), "{key}");
                assert!(message.contains("unknown field `minSoke`"), "{message}");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_documents_fail_cleanly() {
        assert!(matches!(
            FleetConfig::parse("environments: [", "f"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            FleetConfig::parse("{\"environments\": 3}", "f"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            FleetConfig::parse("environments: []", "f"),
            Err(ConfigError::Invalid { .. })
        ));
    }
}
