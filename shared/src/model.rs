//! What a snapshot stores and the API reads: normalised workloads, pods,
//! per-cluster status and history events, and where each lives in the table.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{ClusterName, EnvironmentName};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container image reference split into its parts, as a registry sees it.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// `sha256:<hex>`: from the reference itself, or resolved from the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `[registry/]repository[:tag][@digest]` with the distribution
    /// reference grammar's defaults: the first path part is a registry only
    /// if it has a `.` or `:` or is `localhost`; otherwise the registry is
    /// Docker Hub (`docker.io`, with `library/` for single-part names); a
    /// reference with neither tag nor digest means `latest`. So `nginx`,
    /// `nginx:latest` and `docker.io/library/nginx:latest` are one image.
    pub fn parse(reference: &str) -> Self {
        let reference = reference.trim();
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_owned())),
            None => (reference, None),
        };
        // A tag is after the last ':' of the last path part (a ':' before the
        // last '/' belongs to a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(name[last_slash + i + 1..].to_owned())),
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_owned(), rest.to_owned())
            }
            Some(_) => ("docker.io".to_owned(), path.to_owned()),
            None => ("docker.io".to_owned(), format!("library/{path}")),
        };
        let digest = digest.filter(|d| !d.is_empty());
        let tag = tag.filter(|t| !t.is_empty());
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        Self { registry, repository, tag, digest }
    }

    /// `registry/repository[:tag]`, without the digest.
    pub fn name_and_tag(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}/{}:{tag}", self.registry, self.repository),
            None => format!("{}/{}", self.registry, self.repository),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name_and_tag())?;
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The repository digest in a kubelet `imageID` (`…@sha256:…`,
/// `docker-pullable://…@sha256:…`). A bare `sha256:…` is the image's config
/// id, not a registry digest, and is not returned.
pub fn digest_from_image_id(image_id: &str) -> Option<String> {
    let (_, digest) = image_id.rsplit_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_owned())
}

/// One container of a workload's pod template and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerImage {
    pub container: String,
    #[serde(default, skip_serializing_if = "ContainerRole::is_app")]
    pub role: ContainerRole,
    #[serde(flatten)]
    pub image: ImageRef,
}

/// What a container of a pod template is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ContainerRole {
    /// One of the pod's containers.
    #[default]
    App,
    /// An init container with `restartPolicy: Always`: runs for the pod's
    /// life beside the app (Kubernetes 1.28+).
    Sidecar,
    /// An init container that runs to completion before the app; it never
    /// sets the version.
    Init,
}

impl ContainerRole {
    pub fn is_app(&self) -> bool {
        *self == Self::App
    }
}

/// An image a pod runs: its container, the image its own spec names for it
/// (normalised), and the repository digest the kubelet reports.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct RunningImage {
    pub container: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replicas {
    pub desired: u32,
    pub ready: u32,
    /// Absent where the API server does not report it (StatefulSets before
    /// Kubernetes 1.22): unknown, not zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<u32>,
    pub updated: u32,
}

/// A workload's pods, summarised.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSummary {
    pub total: u32,
    pub running: u32,
    pub pending: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub unknown: u32,
    pub restarts: u32,
    pub nodes: Vec<String>,
    /// Distinct images the pods run (per container), sorted.
    pub images: Vec<RunningImage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum VersionSource {
    /// A label: `app.kubernetes.io/version`, or the one `versionFrom` names.
    Label,
    /// The main container's image tag.
    ImageTag,
    /// The annotation `versionFrom` names.
    Annotation,
    /// Neither: the version is unknown.
    None,
}

/// A workload as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub cluster: ClusterName,
    pub environment: EnvironmentName,
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    /// `app.kubernetes.io/name`, else the workload's name.
    pub service: String,
    pub version: String,
    pub version_source: VersionSource,
    /// Where the version came from, in words (`label app.kubernetes.io/version`,
    /// `tag of container server`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version_from: String,
    pub labels: BTreeMap<String, String>,
    pub images: Vec<ContainerImage>,
    pub replicas: Replicas,
    pub pods: PodSummary,
    /// Its pods run more than one image for some container.
    pub rolling: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When its version or images last changed (as far as we have seen).
    pub changed_at: Timestamp,
    /// What was left out to keep the item within the store's limits.
    #[serde(default, skip_serializing_if = "Omitted::is_none")]
    pub omitted: Omitted,
}

/// What a record left out of a huge object, so that readers know it is
/// not whole: containers past [`MAX_CONTAINERS`], labels past
/// [`MAX_LABEL_BYTES`], nodes past [`MAX_NODES`], pod images past
/// [`MAX_CONTAINERS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Omitted {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub containers: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub labels: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nodes: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pod_images: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Omitted {
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// Containers a record keeps (Kubernetes sets no limit; real pods have a
/// handful).
pub const MAX_CONTAINERS: usize = 64;
/// Label bytes a record keeps (`app.kubernetes.io/` labels first).
pub const MAX_LABEL_BYTES: usize = 16 * 1024;
/// Nodes a workload's summary keeps.
pub const MAX_NODES: usize = 256;

impl Workload {
    /// Trims what an object may hold without bound, marking what was left
    /// out: the container list, the labels (the recommended
    /// `app.kubernetes.io/` ones are kept first), the pods' nodes and images.
    pub fn bounded(mut self) -> Self {
        let over =
            |len: usize, max: usize| u32::try_from(len.saturating_sub(max)).unwrap_or(u32::MAX);
        self.omitted.containers = over(self.images.len(), MAX_CONTAINERS);
        self.images.truncate(MAX_CONTAINERS);
        self.omitted.nodes = over(self.pods.nodes.len(), MAX_NODES);
        self.pods.nodes.truncate(MAX_NODES);
        self.omitted.pod_images = over(self.pods.images.len(), MAX_CONTAINERS);
        self.pods.images.truncate(MAX_CONTAINERS);
        let size = |(k, v): (&String, &String)| k.len() + v.len();
        if self.labels.iter().map(size).sum::<usize>() > MAX_LABEL_BYTES {
            let (mut kept, mut used, mut dropped) = (BTreeMap::new(), 0, 0u32);
            let recommended = |k: &String| k.starts_with("app.kubernetes.io/");
            let ordered = self
                .labels
                .iter()
                .filter(|(k, _)| recommended(k))
                .chain(self.labels.iter().filter(|(k, _)| !recommended(k)));
            for (k, v) in ordered {
                if used + k.len() + v.len() <= MAX_LABEL_BYTES {
                    used += k.len() + v.len();
                    kept.insert(k.clone(), v.clone());
                } else {
                    dropped += 1;
                }
            }
            self.labels = kept;
            self.omitted.labels = dropped;
        }
        self
    }

    /// The images of the pod template, as strings with digests where known.
    pub fn image_list(&self) -> Vec<String> {
        self.images.iter().map(|c| c.image.to_string()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRef {
    pub kind: String,
    pub name: String,
}

/// One pod, for the inventory's pod list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    pub namespace: String,
    pub name: String,
    pub phase: String,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    pub restarts: u32,
    pub images: Vec<RunningImage>,
    /// The workload that owns it (a Deployment for pods of its ReplicaSets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerRef>,
    /// When its history last recorded restarts (one event per burst).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts_noted_at: Option<Timestamp>,
}

/// What changed about a pod between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PodChange {
    Created,
    Phase,
    Node,
    Restarts,
    Deleted,
}

impl PodChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Phase => "phase",
            Self::Node => "node",
            Self::Restarts => "restarts",
            Self::Deleted => "deleted",
        }
    }
}

/// One change of one pod, as a snapshot saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodEvent {
    pub at: Timestamp,
    pub change: PodChange,
    pub cluster: ClusterName,
    pub namespace: String,
    pub pod: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A pod no workload owns (bare, static, a Job's): what it runs, beside
/// the workloads, so that `/images` finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoosePod {
    pub namespace: String,
    pub name: String,
    pub images: Vec<RunningImage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub workloads: u32,
    pub pods: u32,
    pub running: u32,
    pub pending: u32,
    pub failed: u32,
}

/// Why the last attempt at a cluster failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterError {
    pub kind: String,
    pub message: String,
    pub at: Timestamp,
}

/// Who is snapshotting a cluster right now, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    pub owner: String,
    pub until: Timestamp,
}

/// The freshness record of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub cluster: ClusterName,
    pub environment: EnvironmentName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ClusterError>,
    #[serde(default)]
    pub counts: Counts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Bumped by every successful snapshot.
    #[serde(default)]
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    /// Objects the last good snapshot could not store (too large even
    /// trimmed); the rest of the cluster was stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedObject>,
}

/// An object a snapshot left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

impl ClusterStatus {
    pub fn new(cluster: ClusterName, environment: EnvironmentName) -> Self {
        Self {
            cluster,
            environment,
            last_attempt: None,
            last_success: None,
            last_error: None,
            counts: Counts::default(),
            kubernetes_version: None,
            duration_ms: None,
            generation: 0,
            lease: None,
            skipped: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    Added,
    Changed,
    Removed,
}

/// One change of what runs somewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    pub at: Timestamp,
    pub change: Change,
    pub service: String,
    pub environment: EnvironmentName,
    pub cluster: ClusterName,
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<String>,
    #[serde(default)]
    pub from_images: Vec<String>,
    #[serde(default)]
    pub to_images: Vec<String>,
    /// When the version this event replaced or removed was deployed: what a
    /// matrix rebuilt for a time before this event shows as its last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_changed_at: Option<Timestamp>,
    /// The workload's labels (before a removal, after any other change), so
    /// that a dashboard rebuilt for a past time selects it like the live one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The first time a cluster ran a version of a service. Kept as long as
/// history, and renewed while the version runs, so that promotion order
/// ("did staging ever run this?") needs no history read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionSeen {
    pub service: String,
    pub version: String,
    pub first_seen: Timestamp,
}

/// What to snapshot: the schedule's input (`{"environment": "…"}`) or one
/// cluster (`{"cluster": "…"}`, the API's refresh), or every cluster that
/// is due (`{"due": true}`, the schedule's sweep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterName>,
    /// Every cluster whose environment's refresh interval has passed since
    /// its last attempt: what the one schedule sends every minute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub due: bool,
}

impl SnapshotRequest {
    pub fn environment(name: EnvironmentName) -> Self {
        Self { environment: Some(name), cluster: None, due: false }
    }

    pub fn cluster(name: ClusterName) -> Self {
        Self { environment: None, cluster: Some(name), due: false }
    }

    pub fn due() -> Self {
        Self { environment: None, cluster: None, due: true }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_like_docker_does() {
        let ecr =
            ImageRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/dab/payments-api:1.4.2");
        assert_eq!(ecr.registry, "123456789012.dkr.ecr.eu-west-1.amazonaws.com");
        assert_eq!(ecr.repository, "dab/payments-api");
        assert_eq!(ecr.tag.as_deref(), Some("1.4.2"));
        assert_eq!(ecr.digest, None);

        let hub = ImageRef::parse("nginx");
        assert_eq!(
            (hub.registry.as_str(), hub.repository.as_str(), hub.tag.as_deref()),
            ("docker.io", "library/nginx", Some("latest")),
            "no tag and no digest means latest"
        );
        for spelling in
            ["nginx:latest", "docker.io/library/nginx:latest", "docker.io/library/nginx"]
        {
            assert_eq!(ImageRef::parse(spelling), hub, "{spelling}");
        }
        let org = ImageRef::parse("bitnami/redis:7.2");
        assert_eq!(
            (org.registry.as_str(), org.repository.as_str()),
            ("docker.io", "bitnami/redis")
        );

        let port = ImageRef::parse("localhost:5000/team/app");
        assert_eq!(
            (port.registry.as_str(), port.repository.as_str(), port.tag.as_deref()),
            ("localhost:5000", "team/app", Some("latest"))
        );
        let digest_only = ImageRef::parse(&format!("quay.io/team/app@sha256:{}", "b".repeat(64)));
        assert_eq!(digest_only.tag, None, "a digest alone names the image: no implicit tag");

        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = ImageRef::parse(&format!("registry.k8s.io/coredns/coredns:v1.11.4@{digest}"));
        assert_eq!(pinned.tag.as_deref(), Some("v1.11.4"));
        assert_eq!(pinned.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(pinned.to_string(), format!("registry.k8s.io/coredns/coredns:v1.11.4@{digest}"));
    }

    #[test]
    fn digests_come_only_from_repository_image_ids() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(
            digest_from_image_id(&format!("repo/app@sha256:{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_from_image_id(&format!("docker-pullable://repo/app@sha256:{hex}")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(
            digest_from_image_id(&format!("sha256:{hex}")),
            None,
            "a config id is not a repo digest"
        );
        assert_eq!(digest_from_image_id("repo/app@sha256:short"), None);
        assert_eq!(digest_from_image_id(""), None);
    }
}
