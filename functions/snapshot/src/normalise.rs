//! Kubernetes objects → the dashboard's model. Pods are folded into
//! per-workload summaries as they stream in (through their ReplicaSet for
//! Deployments), so raw objects never outlive their page.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use jiff::Timestamp;

use crate::objects::{Container, DaemonSet, Meta, Pod, PodSpec, ReplicaSet, ReplicatedWorkload};

use shared::config::{VersionFrom, VersionRules};
use shared::domain::{ClusterName, EnvironmentName};
use shared::labels::LabelSelector;
use shared::model::{
    ContainerImage, ContainerRole, ImageRef, Omitted, OwnerRef, PodRecord, PodSummary, Replicas,
    RunningImage, VersionSource, Workload, WorkloadKind, digest_from_image_id,
};

pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// A workload's identity within a cluster.
pub type WorkloadId = (String, WorkloadKind, String);

/// The annotation a Deployment and each of its ReplicaSets carry: the
/// template revision they stand for.
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// What a ReplicaSet tells us, from its metadata alone: the Deployment it
/// belongs to, and when the revision it stands for was first rolled out
/// (its creation: a template change makes a new ReplicaSet).
#[derive(Debug, Default)]
pub struct ReplicaSetIndex {
    /// namespace → ReplicaSet → its Deployment: looked up per pod, by
    /// borrowed names.
    owners: HashMap<String, HashMap<String, String>>,
    /// `(namespace, deployment, revision)` → when its ReplicaSet was created.
    revisions: HashMap<(String, String, String), Timestamp>,
    /// `(namespace, deployment)` → its newest ReplicaSet's creation, for a
    /// Deployment without a revision annotation.
    newest: HashMap<(String, String), Timestamp>,
}

impl ReplicaSetIndex {
    pub fn add(&mut self, rs: &ReplicaSet) {
        let meta = &rs.metadata;
        let Some(owner) = meta.controller().filter(|o| o.kind == "Deployment") else { return };
        match self.owners.get_mut(&meta.namespace) {
            Some(in_namespace) => in_namespace,
            None => self.owners.entry(meta.namespace.clone()).or_default(),
        }
        .insert(meta.name.clone(), owner.name.clone());
        let Some(created) = meta.creation_timestamp else { return };
        if let Some(revision) = meta.annotations.get(REVISION_ANNOTATION) {
            let key = (meta.namespace.clone(), owner.name.clone(), revision.clone());
            self.revisions.insert(key, created);
        }
        let newest =
            self.newest.entry((meta.namespace.clone(), owner.name.clone())).or_insert(created);
        *newest = (*newest).max(created);
    }

    fn deployment_of(&self, namespace: &str, replica_set: &str) -> Option<&String> {
        self.owners.get(namespace)?.get(replica_set)
    }

    /// When the Deployment's current revision was rolled out: its
    /// ReplicaSet's creation (a rollback reuses an old ReplicaSet, which
    /// keeps its first creation), else the newest ReplicaSet's.
    fn rolled_out_at(&self, deployment: &Meta) -> Option<Timestamp> {
        let (namespace, name) = (deployment.namespace.clone(), deployment.name.clone());
        deployment
            .annotations
            .get(REVISION_ANNOTATION)
            .and_then(|r| self.revisions.get(&(namespace.clone(), name.clone(), r.clone())))
            .or_else(|| self.newest.get(&(namespace, name)))
            .copied()
    }
}

/// Which pods a snapshot keeps. A label selector chooses workloads (Helm,
/// for one, labels a Deployment but not its pod template); their pods
/// follow by owner reference whatever their labels, and a pod no workload
/// owns (bare, static, a Job's) is kept when the selector chooses its own
/// labels.
#[derive(Debug)]
pub enum Chosen<'a> {
    /// No selector: every workload and pod.
    All,
    Only {
        workloads: HashSet<WorkloadId>,
        selector: &'a LabelSelector,
    },
}

impl Chosen<'_> {
    fn keeps(&self, owner: Option<&WorkloadId>, labels: &BTreeMap<String, String>) -> bool {
        match (self, owner) {
            (Self::All, _) => true,
            (Self::Only { workloads, .. }, Some(owner)) => workloads.contains(owner),
            (Self::Only { selector, .. }, None) => selector.matches(labels),
        }
    }
}

/// Per-workload pod tallies, built page by page.
#[derive(Debug, Default)]
pub struct PodTally {
    by_workload: HashMap<WorkloadId, Tally>,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    summary: PodSummary,
    nodes: BTreeSet<String>,
    /// (container, image, digest) → pods running it.
    images: BTreeMap<RunningImage, u32>,
}

/// A pod as read from its page: its record, the kind of workload that owns
/// it, and its labels only when no workload does (the selector then judges
/// the pod itself). Made on the worker that decoded the page, from the
/// pod's own strings, so that the thread that tallies and writes only adds
/// it up and frees nothing of the raw pod.
#[derive(Debug)]
pub struct ReadPod {
    record: PodRecord,
    owner_kind: Option<WorkloadKind>,
    labels: BTreeMap<String, String>,
}

impl ReadPod {
    pub fn namespace(&self) -> &str {
        &self.record.namespace
    }
}

/// Reads a pod for [`PodTally::add`]; `None` for one without a name.
pub fn read_pod(pod: Pod, replica_sets: &ReplicaSetIndex) -> Option<ReadPod> {
    let Pod { metadata, spec, status } = pod;
    if metadata.name.is_empty() {
        return None;
    }
    let owner = owner_workload(&metadata, replica_sets);
    let phase = status.phase.unwrap_or_else(|| "Unknown".to_owned());
    // A pod runs the image its own spec names; its status says which
    // digest that resolved to. They are matched by container name: the
    // status's image string is the runtime's spelling (another registry
    // for a mirror, a local id on some runtimes). Native sidecars run for
    // the pod's life: their images and restarts count.
    let sidecars = spec.init_containers.iter().filter(|c| c.is_native_sidecar());
    let running: Vec<&Container> = spec.containers.iter().chain(sidecars).collect();
    let status_of = |name: &str| {
        status
            .container_statuses
            .iter()
            .chain(&status.init_container_statuses)
            .find(|s| s.name == name)
    };
    let images: Vec<RunningImage> = running
        .iter()
        .map(|c| RunningImage {
            container: c.name.clone(),
            image: ImageRef::parse(c.image.as_deref().unwrap_or_default()).name_and_tag(),
            digest: status_of(&c.name).and_then(|s| digest_from_image_id(&s.image_id)),
        })
        .collect();
    let restarts = running
        .iter()
        .filter_map(|c| status_of(&c.name))
        .map(|s| s.restart_count.max(0) as u32)
        .sum();
    let owner_kind = owner.as_ref().map(|(kind, _)| *kind);
    let labels = if owner.is_none() { metadata.labels } else { BTreeMap::new() };
    let record = PodRecord {
        namespace: metadata.namespace,
        name: metadata.name,
        phase,
        ready: status.ready,
        node: spec.node_name,
        started_at: status.start_time,
        restarts,
        images,
        owner: owner.map(|(kind, name)| OwnerRef { kind: kind.as_str().to_owned(), name }),
        restarts_noted_at: None,
    };
    Some(ReadPod { record, owner_kind, labels })
}

impl PodTally {
    /// Records a pod under its workload and returns its record for the pod
    /// list, or `None` when `chosen` does not keep it.
    pub fn add(&mut self, pod: ReadPod, chosen: &Chosen<'_>) -> Option<PodRecord> {
        let ReadPod { record, owner_kind, labels } = pod;
        let owner_id = owner_kind
            .zip(record.owner.as_ref())
            .map(|(kind, owner)| (record.namespace.clone(), kind, owner.name.clone()));
        if !chosen.keeps(owner_id.as_ref(), &labels) {
            return None;
        }
        if let Some(id) = owner_id {
            let tally = self.by_workload.entry(id).or_default();
            let summary = &mut tally.summary;
            summary.total += 1;
            match record.phase.as_str() {
                "Running" => summary.running += 1,
                "Pending" => summary.pending += 1,
                "Succeeded" => summary.succeeded += 1,
                "Failed" => summary.failed += 1,
                _ => summary.unknown += 1,
            }
            summary.restarts = summary.restarts.saturating_add(record.restarts);
            // Most pods add nothing new: a workload's pods share nodes and images.
            if let Some(node) = record.node.as_ref().filter(|n| !tally.nodes.contains(*n)) {
                tally.nodes.insert(node.clone());
            }
            for image in &record.images {
                match tally.images.get_mut(image) {
                    Some(pods) => *pods += 1,
                    None => {
                        tally.images.insert(image.clone(), 1);
                    }
                }
            }
        }
        Some(record)
    }

    /// Forgets the pods of one namespace (or all), when their list starts over.
    pub fn forget(&mut self, namespace: Option<&str>) {
        match namespace {
            Some(ns) => self.by_workload.retain(|(n, _, _), _| n != ns),
            None => self.by_workload.clear(),
        }
    }

    fn get(&self, id: &WorkloadId) -> Option<&Tally> {
        self.by_workload.get(id)
    }
}

/// The workload a pod belongs to: its controller, or for a ReplicaSet's pod
/// the ReplicaSet's Deployment. Pods of Jobs and bare pods belong to none.
fn owner_workload(meta: &Meta, replica_sets: &ReplicaSetIndex) -> Option<(WorkloadKind, String)> {
    let owner = meta.controller()?;
    match owner.kind.as_str() {
        "ReplicaSet" => replica_sets
            .deployment_of(&meta.namespace, &owner.name)
            .map(|d| (WorkloadKind::Deployment, d.clone())),
        "StatefulSet" => Some((WorkloadKind::StatefulSet, owner.name.clone())),
        "DaemonSet" => Some((WorkloadKind::DaemonSet, owner.name.clone())),
        _ => None,
    }
}

/// The cluster and environment every workload of one snapshot belongs to.
#[derive(Debug, Clone)]
pub struct Place {
    pub cluster: ClusterName,
    pub environment: EnvironmentName,
    pub now: Timestamp,
    /// The `versionFrom` rules of the environment and its dashboards.
    pub version_rules: VersionRules,
    /// The API server's minor version, once known: what fields it reports.
    pub kubernetes_minor: Option<u32>,
}

fn count(value: Option<i32>) -> u32 {
    value.unwrap_or(0).max(0) as u32
}

/// A workload's replica counts. The API server leaves zero counts out of
/// its answers, so an absent count is 0, except where the server may not
/// have the field at all: a StatefulSet's `available` (new in 1.22) is
/// unknown when the server is older, or when it is absent while some
/// replicas are ready (a server that has the field reports them available
/// after `minReadySeconds`, 0 by default).
fn replicas_of(w: &ReplicatedWorkload, kind: WorkloadKind, place: &Place) -> Replicas {
    let old_server = place.kubernetes_minor.is_some_and(|minor| minor < 22);
    let unreported = w.status.available_replicas.is_none()
        && (old_server || w.status.ready_replicas.is_some_and(|ready| ready > 0));
    let reports_available = kind != WorkloadKind::StatefulSet || !unreported;
    Replicas {
        desired: count(w.spec.replicas.or(Some(1))),
        ready: count(w.status.ready_replicas),
        available: reports_available.then(|| count(w.status.available_replicas)),
        updated: count(w.status.updated_replicas),
    }
}

pub fn deployment(
    d: &ReplicatedWorkload,
    place: &Place,
    pods: &PodTally,
    replica_sets: &ReplicaSetIndex,
) -> Option<Workload> {
    let rolled_out = replica_sets.rolled_out_at(&d.metadata);
    replicated(d, WorkloadKind::Deployment, rolled_out, place, pods)
}

pub fn stateful_set(s: &ReplicatedWorkload, place: &Place, pods: &PodTally) -> Option<Workload> {
    replicated(s, WorkloadKind::StatefulSet, None, place, pods)
}

/// A Deployment or StatefulSet: they differ in their kind and in whether a
/// rollout's end is known (a Deployment's newest ReplicaSet says it).
fn replicated(
    w: &ReplicatedWorkload,
    kind: WorkloadKind,
    rolled_out: Option<Timestamp>,
    place: &Place,
    pods: &PodTally,
) -> Option<Workload> {
    let replicas = replicas_of(w, kind, place);
    workload(&w.metadata, kind, &w.spec.template.spec, replicas, rolled_out, place, pods)
}

pub fn daemon_set(d: &DaemonSet, place: &Place, pods: &PodTally) -> Option<Workload> {
    let status = &d.status;
    let replicas = Replicas {
        desired: status.desired_number_scheduled.max(0) as u32,
        ready: status.number_ready.max(0) as u32,
        available: Some(count(status.number_available)),
        updated: count(status.updated_number_scheduled),
    };
    workload(
        &d.metadata,
        WorkloadKind::DaemonSet,
        &d.spec.template.spec,
        replicas,
        None,
        place,
        pods,
    )
}

fn workload(
    meta: &Meta,
    kind: WorkloadKind,
    spec: &PodSpec,
    replicas: Replicas,
    rolled_out: Option<Timestamp>,
    place: &Place,
    pods: &PodTally,
) -> Option<Workload> {
    if meta.name.is_empty() {
        return None;
    }
    let namespace = meta.namespace.clone();
    let name = meta.name.clone();
    let labels = meta.labels.clone();
    let service =
        labels.get(NAME_LABEL).filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| name.clone());
    // NB: read, not taken: a workload list that starts over needs it again.
    let tally = pods.get(&(namespace.clone(), kind, name.clone())).cloned().unwrap_or_default();

    let init = spec.init_containers.iter().map(|c| {
        let role = if c.is_native_sidecar() { ContainerRole::Sidecar } else { ContainerRole::Init };
        (c, role)
    });
    let images: Vec<ContainerImage> = spec
        .containers
        .iter()
        .map(|c| (c, ContainerRole::App))
        .chain(init)
        .map(|(c, role)| {
            let mut image = ImageRef::parse(c.image.as_deref().unwrap_or_default());
            if image.digest.is_none() {
                image.digest = digest_run_by_pods(&tally, &c.name, &image);
            }
            ContainerImage { container: c.name.clone(), role, image }
        })
        .collect();

    let version_rule = place.version_rules.for_labels(&labels);
    let main = main_container(&images, &name, &service, version_rule);
    let tag_of = |c: &ContainerImage| {
        c.image.tag.clone().map(|tag| (tag, format!("tag of container {}", c.container)))
    };
    let (found, version_source) = match version_rule {
        Some(VersionFrom::Label(key)) => {
            let label = labels.get(key).filter(|v| !v.is_empty());
            (label.map(|v| (v.clone(), format!("label {key}"))), VersionSource::Label)
        }
        Some(VersionFrom::Annotation(key)) => {
            let annotation = meta.annotations.get(key).filter(|v| !v.is_empty());
            (
                annotation.map(|v| (v.clone(), format!("annotation {key}"))),
                VersionSource::Annotation,
            )
        }
        Some(VersionFrom::Container(_)) => (main.and_then(tag_of), VersionSource::ImageTag),
        None => match labels.get(VERSION_LABEL).filter(|v| !v.is_empty()) {
            Some(label) => {
                (Some((label.clone(), format!("label {VERSION_LABEL}"))), VersionSource::Label)
            }
            None => (main.and_then(tag_of), VersionSource::ImageTag),
        },
    };
    let (version, version_source, version_from) = match found {
        Some((version, from)) => (version, version_source, from),
        None => (String::new(), VersionSource::None, String::new()),
    };

    let rolling = is_rolling(&tally);
    let mut summary = tally.summary;
    summary.nodes = tally.nodes.into_iter().collect();
    summary.images = tally.images.into_keys().collect();
    let created_at = meta.creation_timestamp;

    Some(
        Workload {
            cluster: place.cluster.clone(),
            environment: place.environment.clone(),
            namespace,
            kind,
            name,
            service,
            version,
            version_source,
            version_from,
            labels,
            images,
            replicas,
            pods: summary,
            rolling,
            created_at,
            // The writer keeps the previous value while version and images stay.
            changed_at: rolled_out.or(created_at).unwrap_or(place.now),
            omitted: Omitted::default(),
        }
        .bounded(),
    )
}

/// Containers that run beside an application, never as it: service-mesh
/// proxies, config reloaders, auth and database proxies, log shippers and
/// agents. Matched by container name or by the image's last path part.
const KNOWN_SIDECARS: &[&str] = &[
    "istio-proxy",
    "proxyv2",
    "linkerd-proxy",
    "envoy",
    "envoyproxy",
    "cloudsql-proxy",
    "cloud-sql-proxy",
    "gce-proxy",
    "configmap-reload",
    "config-reloader",
    "prometheus-config-reloader",
    "vault-agent",
    "oauth2-proxy",
    "fluent-bit",
    "fluentd",
    "aws-otel-collector",
    "otel-collector",
    "jaeger-agent",
    "datadog-agent",
    "kube-rbac-proxy",
];

fn is_known_sidecar(container: &ContainerImage) -> bool {
    let image = container.image.repository.rsplit('/').next().unwrap_or_default();
    KNOWN_SIDECARS.iter().any(|s| container.container == *s || image == *s)
}

/// The container whose image is the workload's: the one `versionFrom`
/// names (not an init container); else, of the app containers, the one
/// named like the workload or its service, else the first that is not a
/// known sidecar, else the first.
fn main_container<'a>(
    images: &'a [ContainerImage],
    name: &str,
    service: &str,
    version_from: Option<&VersionFrom>,
) -> Option<&'a ContainerImage> {
    // An init container runs to completion before the app: never the version.
    let mut candidates = images.iter().filter(|c| c.role != ContainerRole::Init);
    if let Some(VersionFrom::Container(wanted)) = version_from {
        return candidates.find(|c| c.container == *wanted);
    }
    let apps: Vec<&ContainerImage> =
        images.iter().filter(|c| c.role == ContainerRole::App).collect();
    apps.iter()
        .find(|c| c.container == name || c.container == service)
        .or_else(|| apps.iter().find(|c| !is_known_sidecar(c)))
        .or_else(|| apps.first())
        .copied()
}

/// The digest most pods report for this container and image.
fn digest_run_by_pods(tally: &Tally, container: &str, image: &ImageRef) -> Option<String> {
    let wanted = image.name_and_tag();
    let mut votes: BTreeMap<&str, u32> = BTreeMap::new();
    for (running, pods) in &tally.images {
        if running.container != container {
            continue;
        }
        let Some(digest) = running.digest.as_deref() else { continue };
        if running.image == wanted {
            *votes.entry(digest).or_default() += pods;
        }
    }
    votes
        .into_iter()
        .max_by_key(|(digest, n)| (*n, std::cmp::Reverse(*digest)))
        .map(|(d, _)| d.to_owned())
}

/// Pods of one workload run more than one image (or digest) for a container.
fn is_rolling(tally: &Tally) -> bool {
    let mut images: BTreeMap<&str, (BTreeSet<String>, BTreeSet<&str>)> = BTreeMap::new();
    for running in tally.images.keys() {
        let entry = images.entry(running.container.as_str()).or_default();
        entry.0.insert(running.image.clone());
        if let Some(digest) = running.digest.as_deref() {
            entry.1.insert(digest);
        }
    }
    images.values().any(|(names, digests)| names.len() > 1 || digests.len() > 1)
}
