//! Kubernetes objects as a cluster holds them: a workload and the objects it
//! owns (ReplicaSets, Pods), with the labels, owner references, images and
//! digests that real controllers write. Each object is written as the JSON a
//! real API server returns and parsed into its k8s-openapi type, so a typo in
//! a field fails here rather than producing an object no server would send.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Everything one cluster serves.
#[derive(Debug, Clone, Default)]
pub struct ClusterObjects {
    /// The `minor` of `/version` (e.g. 33 for Kubernetes 1.33).
    pub kubernetes_minor: u32,
    pub namespaces: Vec<Namespace>,
    pub deployments: Vec<Deployment>,
    pub replica_sets: Vec<ReplicaSet>,
    pub stateful_sets: Vec<StatefulSet>,
    pub daemon_sets: Vec<DaemonSet>,
    pub pods: Vec<Pod>,
}

/// A container image reference with the digest the registry resolved it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    /// `sha256:<64 hex>`.
    pub digest: String,
}

impl Image {
    /// An image whose digest is derived from its name and tag, so the same
    /// tag has the same digest everywhere, unless `retag_salt` is given
    /// (the tag was pushed again with different content).
    pub fn new(registry: &str, repository: &str, tag: &str, retag_salt: Option<&str>) -> Self {
        let seed = format!("{registry}/{repository}:{tag}{}", retag_salt.unwrap_or_default());
        Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag: tag.to_owned(),
            digest: format!("sha256:{}", hex(digest(&SHA256, seed.as_bytes()).as_ref())),
        }
    }

    /// What a pod spec names: `registry/repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }

    /// What the kubelet reports as `imageID`: `registry/repository@sha256:…`.
    pub fn image_id(&self) -> String {
        format!("{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Running,
    Pending,
    Failed,
}

/// One workload as a test or the demo describes it.
#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    /// Labels of the workload and its pods (`app.kubernetes.io/*`, …).
    pub labels: BTreeMap<String, String>,
    /// Annotations of the workload and its pods, besides the fake's own.
    pub annotations: BTreeMap<String, String>,
    /// The main container's image, then sidecars.
    pub images: Vec<Image>,
    /// Desired replicas (ignored for DaemonSets: one pod per node).
    pub replicas: u32,
    /// During a rollout: the previous main image and how many pods still run it.
    pub previous: Option<(Image, u32)>,
    /// Phase of each new pod, by index; missing entries are Running.
    pub pod_phases: Vec<PodPhase>,
    pub restarts: u32,
    pub created: Timestamp,
    /// When the current template was rolled out.
    pub updated: Timestamp,
}

impl WorkloadSpec {
    pub fn deployment(namespace: &str, name: &str, image: Image) -> Self {
        let created = Timestamp::from_second(1_735_689_600).unwrap_or(Timestamp::UNIX_EPOCH);
        Self {
            kind: WorkloadKind::Deployment,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            labels: BTreeMap::from([("app.kubernetes.io/name".to_owned(), name.to_owned())]),
            annotations: BTreeMap::new(),
            images: vec![image],
            replicas: 2,
            previous: None,
            pod_phases: Vec::new(),
            restarts: 0,
            created,
            updated: created,
        }
    }

    pub fn kind(mut self, kind: WorkloadKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn sidecar(mut self, image: Image) -> Self {
        self.images.push(image);
        self
    }

    pub fn rolling_from(mut self, previous: Image, old_pods: u32) -> Self {
        self.previous = Some((previous, old_pods));
        self
    }

    pub fn phases(mut self, phases: Vec<PodPhase>) -> Self {
        self.pod_phases = phases;
        self
    }

    pub fn times(mut self, created: Timestamp, updated: Timestamp) -> Self {
        self.created = created;
        self.updated = updated;
        self
    }
}

impl ClusterObjects {
    pub fn new(kubernetes_minor: u32) -> Self {
        Self { kubernetes_minor, ..Self::default() }
    }

    /// A cluster as a real API server returned it: the lists recorded in
    /// `data/real/<folder>/` (see `data/real/PROVENANCE.md`), unedited, with
    /// its namespaces derived from the objects.
    pub fn recorded(folder: &str) -> std::io::Result<Self> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/real").join(folder);
        fn items<T: DeserializeOwned>(
            dir: &std::path::Path,
            file: &str,
        ) -> std::io::Result<Vec<T>> {
            let text = std::fs::read_to_string(dir.join(file))?;
            let list: Value = serde_json::from_str(&text)?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            items.into_iter().map(|item| serde_json::from_value(item).map_err(Into::into)).collect()
        }
        let version: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("version.json"))?)?;
        let minor = version["minor"].as_str().unwrap_or_default();
        let minor = minor.trim_end_matches('+').parse().unwrap_or(0);
        let mut objects = Self {
            kubernetes_minor: minor,
            namespaces: Vec::new(),
            deployments: items(&dir, "deployments.json")?,
            replica_sets: items(&dir, "replicasets.json")?,
            stateful_sets: items(&dir, "statefulsets.json")?,
            daemon_sets: items(&dir, "daemonsets.json")?,
            pods: items(&dir, "pods.json")?,
        };
        let mut namespaces: Vec<String> = Vec::new();
        let metas = objects
            .deployments
            .iter()
            .map(|o| &o.metadata)
            .chain(objects.replica_sets.iter().map(|o| &o.metadata))
            .chain(objects.stateful_sets.iter().map(|o| &o.metadata))
            .chain(objects.daemon_sets.iter().map(|o| &o.metadata))
            .chain(objects.pods.iter().map(|o| &o.metadata));
        for meta in metas {
            if let Some(ns) = &meta.namespace
                && !namespaces.contains(ns)
            {
                namespaces.push(ns.clone());
            }
        }
        for ns in namespaces {
            objects.add_namespace(&ns);
        }
        Ok(objects)
    }

    pub fn add_namespace(&mut self, name: &str) {
        if self.namespaces.iter().any(|n| n.metadata.name.as_deref() == Some(name)) {
            return;
        }
        self.namespaces.push(typed(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": name, "uid": uid(&["ns", name]), "resourceVersion": "1",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        })));
    }

    /// Adds a workload and everything it owns, with pods spread over `nodes`.
    pub fn add_workload(&mut self, spec: &WorkloadSpec, nodes: &[String]) {
        self.add_namespace(&spec.namespace);
        match spec.kind {
            WorkloadKind::Deployment => self.add_deployment(spec, nodes),
            WorkloadKind::StatefulSet => self.add_stateful_set(spec, nodes),
            WorkloadKind::DaemonSet => self.add_daemon_set(spec, nodes),
        }
    }

    fn add_deployment(&mut self, spec: &WorkloadSpec, nodes: &[String]) {
        let uid_ = uid(&["deploy", &spec.namespace, &spec.name]);
        let old_pods = spec.previous.as_ref().map_or(0, |(_, n)| *n);
        let new_pods = spec.replicas.saturating_sub(old_pods);
        let ready = self.ready_count(spec, new_pods) + old_pods;
        let generation = 1 + u64::from(spec.previous.is_some());
        self.deployments.push(typed(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": meta(spec, "Deployment", &uid_, None, spec.created) ,
            "spec": {
                "replicas": spec.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": spec.labels.get("app.kubernetes.io/name")}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": template(spec, &spec.images),
            },
            "status": {
                "observedGeneration": generation,
                "replicas": spec.replicas,
                "updatedReplicas": new_pods,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [{
                    "type": "Progressing", "status": "True",
                    "reason": if spec.previous.is_some() { "ReplicaSetUpdated" } else { "NewReplicaSetAvailable" },
                    "lastUpdateTime": spec.updated.to_string(), "lastTransitionTime": spec.updated.to_string(),
                }],
            },
        })));
        let owner = owner_ref("Deployment", "apps/v1", &spec.name, &uid_);
        let mut pod_index = 0;
        if let Some((old_image, old_count)) = &spec.previous {
            let mut old_images = spec.images.clone();
            old_images[0] = old_image.clone();
            self.add_replica_set(
                spec,
                &old_images,
                *old_count,
                spec.created,
                &owner,
                nodes,
                &mut pod_index,
                true,
            );
        }
        self.add_replica_set(
            spec,
            &spec.images,
            new_pods,
            spec.updated,
            &owner,
            nodes,
            &mut pod_index,
            false,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn add_replica_set(
        &mut self,
        spec: &WorkloadSpec,
        images: &[Image],
        replicas: u32,
        created: Timestamp,
        owner: &Value,
        nodes: &[String],
        pod_index: &mut usize,
        old: bool,
    ) {
        let hash = pod_template_hash(images);
        let name = format!("{}-{hash}", spec.name);
        let uid_ = uid(&["rs", &spec.namespace, &name]);
        let ready = if old { replicas } else { self.ready_count(spec, replicas) };
        let mut rs_meta = meta(spec, "ReplicaSet", &uid_, Some(owner), created);
        rs_meta["name"] = json!(name);
        rs_meta["labels"]["pod-template-hash"] = json!(hash);
        self.replica_sets.push(typed(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": rs_meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": spec.labels.get("app.kubernetes.io/name"), "pod-template-hash": hash}},
                "template": template(spec, images),
            },
            "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": ready, "fullyLabeledReplicas": replicas},
        })));
        let rs_owner = owner_ref("ReplicaSet", "apps/v1", &name, &uid_);
        for i in 0..replicas as usize {
            let phase = if old {
                PodPhase::Running
            } else {
                spec.pod_phases.get(i).copied().unwrap_or(PodPhase::Running)
            };
            let pod_name =
                format!("{name}-{}", &uid(&["pod", &spec.namespace, &name, &i.to_string()])[..5]);
            let node = &nodes[*pod_index % nodes.len().max(1)];
            *pod_index += 1;
            self.add_pod(spec, &pod_name, images, phase, node, &rs_owner, created, Some(&hash));
        }
    }

    fn add_stateful_set(&mut self, spec: &WorkloadSpec, nodes: &[String]) {
        let uid_ = uid(&["sts", &spec.namespace, &spec.name]);
        let ready = self.ready_count(spec, spec.replicas);
        self.stateful_sets.push(typed(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": meta(spec, "StatefulSet", &uid_, None, spec.created),
            "spec": {
                "replicas": spec.replicas,
                "serviceName": spec.name,
                "selector": {"matchLabels": {"app.kubernetes.io/name": spec.labels.get("app.kubernetes.io/name")}},
                "template": template(spec, &spec.images),
            },
            "status": {
                "replicas": spec.replicas, "readyReplicas": ready, "availableReplicas": ready,
                "currentReplicas": spec.replicas, "updatedReplicas": spec.replicas,
                "currentRevision": format!("{}-{}", spec.name, pod_template_hash(&spec.images)),
                "updateRevision": format!("{}-{}", spec.name, pod_template_hash(&spec.images)),
            },
        })));
        let owner = owner_ref("StatefulSet", "apps/v1", &spec.name, &uid_);
        for i in 0..spec.replicas as usize {
            let phase = spec.pod_phases.get(i).copied().unwrap_or(PodPhase::Running);
            let node = &nodes[i % nodes.len().max(1)];
            self.add_pod(
                spec,
                &format!("{}-{i}", spec.name),
                &spec.images,
                phase,
                node,
                &owner,
                spec.updated,
                None,
            );
        }
    }

    fn add_daemon_set(&mut self, spec: &WorkloadSpec, nodes: &[String]) {
        let uid_ = uid(&["ds", &spec.namespace, &spec.name]);
        let count = nodes.len() as u32;
        let ready = self.ready_count(spec, count);
        self.daemon_sets.push(typed(json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta(spec, "DaemonSet", &uid_, None, spec.created),
            "spec": {
                "selector": {"matchLabels": {"app.kubernetes.io/name": spec.labels.get("app.kubernetes.io/name")}},
                "template": template(spec, &spec.images),
            },
            "status": {
                "currentNumberScheduled": count, "desiredNumberScheduled": count, "numberMisscheduled": 0,
                "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": count,
            },
        })));
        let owner = owner_ref("DaemonSet", "apps/v1", &spec.name, &uid_);
        for (i, node) in nodes.iter().enumerate() {
            let phase = spec.pod_phases.get(i).copied().unwrap_or(PodPhase::Running);
            let pod_name = format!("{}-{}", spec.name, &uid(&["ds-pod", &spec.name, node])[..5]);
            self.add_pod(spec, &pod_name, &spec.images, phase, node, &owner, spec.updated, None);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_pod(
        &mut self,
        spec: &WorkloadSpec,
        name: &str,
        images: &[Image],
        phase: PodPhase,
        node: &str,
        owner: &Value,
        started: Timestamp,
        template_hash: Option<&str>,
    ) {
        let started = started.to_string();
        let running = phase == PodPhase::Running;
        let statuses: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let state = match phase {
                    PodPhase::Running => json!({"running": {"startedAt": started}}),
                    PodPhase::Pending => json!({"waiting": {"reason": "ContainerCreating"}}),
                    PodPhase::Failed => json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started}}),
                };
                let mut status = json!({
                    "name": container_name(spec, i),
                    "image": image.reference(),
                    "imageID": if phase == PodPhase::Pending { String::new() } else { image.image_id() },
                    "ready": running,
                    "started": running,
                    "restartCount": if i == 0 { spec.restarts } else { 0 },
                    "state": state,
                });
                if phase != PodPhase::Pending {
                    status["containerID"] = json!(format!("containerd://{}", uid(&["c", name, &i.to_string()]).replace('-', "")));
                }
                status
            })
            .collect();
        let mut labels = json!(spec.labels);
        if let Some(hash) = template_hash {
            labels["pod-template-hash"] = json!(hash);
        }
        let phase_text = match phase {
            PodPhase::Running => "Running",
            PodPhase::Pending => "Pending",
            PodPhase::Failed => "Failed",
        };
        let mut status = json!({
            "phase": phase_text,
            "conditions": [
                {"type": "Ready", "status": if running { "True" } else { "False" }, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
            ],
            "qosClass": "Burstable",
            "startTime": started,
            "containerStatuses": statuses,
        });
        if phase != PodPhase::Pending {
            status["hostIP"] = json!("10.0.1.10");
            status["podIP"] =
                json!(format!("10.0.{}.{}", name.len() % 250, (name.as_bytes()[0] as usize) % 250));
        }
        self.pods.push(typed(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": spec.namespace,
                "uid": uid(&["pod", &spec.namespace, name]),
                "resourceVersion": "1",
                "creationTimestamp": started,
                "labels": labels,
                "ownerReferences": [owner],
            },
            "spec": {
                "nodeName": node,
                "containers": containers(spec, images),
                "restartPolicy": "Always",
                "serviceAccountName": "default",
            },
            "status": status,
        })));
    }

    fn ready_count(&self, spec: &WorkloadSpec, pods: u32) -> u32 {
        let not_running =
            spec.pod_phases.iter().take(pods as usize).filter(|p| **p != PodPhase::Running).count();
        pods.saturating_sub(not_running as u32)
    }
}

fn container_name(spec: &WorkloadSpec, index: usize) -> String {
    if index == 0 { spec.name.clone() } else { format!("sidecar-{index}") }
}

fn containers(spec: &WorkloadSpec, images: &[Image]) -> Vec<Value> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            json!({
                "name": container_name(spec, i),
                "image": image.reference(),
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            })
        })
        .collect()
}

fn template(spec: &WorkloadSpec, images: &[Image]) -> Value {
    json!({
        "metadata": {"labels": spec.labels},
        "spec": {"containers": containers(spec, images)},
    })
}

fn meta(
    spec: &WorkloadSpec,
    kind: &str,
    uid_: &str,
    owner: Option<&Value>,
    created: Timestamp,
) -> Value {
    let mut meta = json!({
        "name": spec.name,
        "namespace": spec.namespace,
        "uid": uid_,
        "resourceVersion": "1",
        "generation": 1,
        "creationTimestamp": created.to_string(),
        "labels": spec.labels,
        "annotations": {"fake-kube/kind": kind},
    });
    for (key, value) in &spec.annotations {
        meta["annotations"][key] = json!(value);
    }
    if let Some(owner) = owner {
        meta["ownerReferences"] = json!([owner]);
    }
    meta
}

fn owner_ref(kind: &str, api_version: &str, name: &str, uid_: &str) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind, "name": name, "uid": uid_,
        "controller": true, "blockOwnerDeletion": true,
    })
}

/// The ten-character hash a Deployment puts on its ReplicaSets, from the pod template.
fn pod_template_hash(images: &[Image]) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let joined: Vec<String> = images.iter().map(Image::reference).collect();
    let hash = digest(&SHA256, joined.join(",").as_bytes());
    hash.as_ref().iter().take(10).map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

/// A stable UUID-shaped id from its parts.
fn uid(parts: &[&str]) -> String {
    let h = hex(digest(&SHA256, parts.join("/").as_bytes()).as_ref());
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses object JSON into its k8s-openapi type. The JSON is written in this
/// file, so a failure is a bug here: fail loudly.
fn typed<T: DeserializeOwned>(value: Value) -> T {
    match serde_json::from_value(value) {
        Ok(object) => object,
        #[allow(clippy::panic)]
        Err(err) => panic!("fake-kube wrote an object its k8s-openapi type rejects: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tag: &str) -> Image {
        Image::new("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "dab/payments", tag, None)
    }

    #[test]
    fn a_deployment_owns_replica_sets_that_own_pods() {
        let mut objects = ClusterObjects::new(33);
        let spec = WorkloadSpec::deployment("dab", "payments", image("1.4.2")).replicas(3);
        objects.add_workload(&spec, &["node-a".to_owned(), "node-b".to_owned()]);
        assert_eq!(objects.deployments.len(), 1);
        assert_eq!(objects.replica_sets.len(), 1);
        assert_eq!(objects.pods.len(), 3);
        let rs = &objects.replica_sets[0];
        assert_eq!(
            rs.metadata.owner_references.as_ref().unwrap()[0].uid,
            objects.deployments[0].metadata.uid.clone().unwrap()
        );
        let pod = &objects.pods[0];
        assert_eq!(
            pod.metadata.owner_references.as_ref().unwrap()[0].name,
            rs.metadata.name.clone().unwrap()
        );
        let status = &pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
        assert_eq!(status.image, image("1.4.2").reference());
        assert!(status.image_id.ends_with(&image("1.4.2").digest));
    }

    #[test]
    fn a_rollout_leaves_pods_on_two_images() {
        let mut objects = ClusterObjects::new(33);
        let spec = WorkloadSpec::deployment("dab", "payments", image("1.5.0"))
            .replicas(4)
            .rolling_from(image("1.4.2"), 2);
        objects.add_workload(&spec, &["n".to_owned()]);
        assert_eq!(objects.replica_sets.len(), 2);
        let mut running: Vec<String> = objects
            .pods
            .iter()
            .map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap())
            .collect();
        running.sort();
        running.dedup();
        assert_eq!(running.len(), 2);
        assert_eq!(objects.deployments[0].status.as_ref().unwrap().updated_replicas, Some(2));
    }

    #[test]
    fn retagged_images_keep_the_tag_but_change_the_digest() {
        let a = image("1.4.2");
        let b = Image::new(&a.registry, &a.repository, &a.tag, Some("rebuilt"));
        assert_eq!(a.reference(), b.reference());
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.digest.len(), "sha256:".len() + 64);
    }

    #[test]
    fn daemon_sets_run_one_pod_per_node() {
        let mut objects = ClusterObjects::new(33);
        let spec = WorkloadSpec::deployment("kube-system", "kube-proxy", image("1.33.0"))
            .kind(WorkloadKind::DaemonSet);
        objects.add_workload(&spec, &["a".into(), "b".into(), "c".into()]);
        assert_eq!(objects.pods.len(), 3);
        assert_eq!(objects.daemon_sets[0].status.as_ref().unwrap().number_ready, 3);
    }
}
