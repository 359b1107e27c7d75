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
    /// Init containers' images (run to completion before the app).
    pub init_images: Vec<Image>,
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
            init_images: Vec::new(),
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

    pub fn init_container(mut self, image: Image) -> Self {
        self.init_images.push(image);
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

    /// A large cluster of `workloads` Deployments of `pods` pods each, over
    /// 20 namespaces and 50 nodes, shaped like a platform's services: a
    /// third run a proxy sidecar, a quarter an init container.
    pub fn large(workloads: usize, pods: u32) -> Self {
        const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
        let nodes: Vec<String> = (0..50)
            .map(|i| format!("ip-10-0-{}-{}.eu-west-1.compute.internal", i / 10, i))
            .collect();
        let proxy = Image::new("docker.io", "envoyproxy/envoy", "v1.31.2", None);
        let wait = Image::new("docker.io", "library/busybox", "1.36", None);
        let mut objects = Self::new(33);
        for i in 0..workloads {
            let name = format!("service-{i:05}");
            let image = Image::new(REGISTRY, &format!("dab/{name}"), "1.0.0", None);
            let mut spec = WorkloadSpec::deployment(&format!("team-{:02}", i % 20), &name, image)
                .label("app.kubernetes.io/component", "dab")
                .label("app.kubernetes.io/version", "1.0.0")
                .replicas(pods);
            if i % 8 == 0 {
                spec = spec.sidecar(proxy.clone());
            }
            if i % 10 == 0 {
                spec = spec.init_container(wait.clone());
            }
            objects.add_workload(&spec, &nodes);
        }
        objects
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
        // Two revisions, as a Deployment keeps its history: the template
        // before (the previous image, or the same one before a restart),
        // then the current one, restarted at `updated`.
        let old_images = match &spec.previous {
            Some((image, _)) => {
                let mut images = spec.images.clone();
                images[0] = image.clone();
                images
            }
            None => spec.images.clone(),
        };
        let old = Revision {
            number: 1,
            images: &old_images,
            replicas: old_pods,
            created: spec.created,
            restarted: None,
        };
        let new = Revision {
            number: 2,
            images: &spec.images,
            replicas: new_pods,
            created: spec.updated,
            restarted: Some(spec.updated),
        };
        let new_rs = format!("{}-{}", spec.name, new.template_hash());
        let mut metadata = meta(spec, &uid_, None, spec.created);
        metadata["generation"] = json!(new.number);
        metadata["annotations"]["deployment.kubernetes.io/revision"] =
            json!(new.number.to_string());
        let updated = spec.updated.to_string();
        let rolling = spec.previous.is_some();
        let object = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": metadata,
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": spec.replicas,
                "revisionHistoryLimit": 10,
                "selector": selector(spec),
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": template(spec, &new),
            },
            "status": {
                "observedGeneration": new.number,
                "replicas": spec.replicas,
                "updatedReplicas": new_pods,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "conditions": [
                    {
                        "type": "Available", "status": if ready > 0 { "True" } else { "False" },
                        "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.",
                        "lastUpdateTime": updated, "lastTransitionTime": updated,
                    },
                    {
                        "type": "Progressing", "status": "True",
                        "reason": if rolling { "ReplicaSetUpdated" } else { "NewReplicaSetAvailable" },
                        "message": if rolling {
                            format!("ReplicaSet \"{new_rs}\" is progressing.")
                        } else {
                            format!("ReplicaSet \"{new_rs}\" has successfully progressed.")
                        },
                        "lastUpdateTime": updated, "lastTransitionTime": spec.created.to_string(),
                    },
                ],
            },
        });
        self.deployments.push(typed(managed(
            object,
            "helm",
            "kube-controller-manager",
            spec.updated,
        )));
        let owner = owner_ref("Deployment", "apps/v1", &spec.name, &uid_);
        let mut pod_index = 0;
        for revision in [old, new] {
            self.add_replica_set(spec, &revision, &owner, nodes, &mut pod_index);
        }
    }

    fn add_replica_set(
        &mut self,
        spec: &WorkloadSpec,
        revision: &Revision<'_>,
        owner: &Value,
        nodes: &[String],
        pod_index: &mut usize,
    ) {
        let hash = revision.template_hash();
        let name = format!("{}-{hash}", spec.name);
        let uid_ = uid(&["rs", &spec.namespace, &name]);
        let current = revision.restarted.is_some();
        let replicas = revision.replicas;
        let ready = if current { self.ready_count(spec, replicas) } else { replicas };
        let mut rs_meta = meta(spec, &uid_, Some(owner), revision.created);
        rs_meta["name"] = json!(name);
        rs_meta["generation"] = json!(if current { 1 } else { 2 });
        rs_meta["labels"]["pod-template-hash"] = json!(hash);
        let annotations = &mut rs_meta["annotations"];
        annotations["deployment.kubernetes.io/desired-replicas"] = json!(spec.replicas.to_string());
        annotations["deployment.kubernetes.io/max-replicas"] =
            json!((spec.replicas + spec.replicas.div_ceil(4)).to_string());
        annotations["deployment.kubernetes.io/revision"] = json!(revision.number.to_string());
        let mut template = template(spec, revision);
        template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
        let mut selector = selector(spec);
        selector["matchLabels"]["pod-template-hash"] = json!(hash);
        // The API server leaves zero counts out.
        let mut status = json!({"observedGeneration": rs_meta["generation"], "replicas": replicas});
        if replicas > 0 {
            status["fullyLabeledReplicas"] = json!(replicas);
        }
        if ready > 0 {
            status["readyReplicas"] = json!(ready);
            status["availableReplicas"] = json!(ready);
        }
        let object = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": rs_meta,
            "spec": {"replicas": replicas, "selector": selector, "template": template},
            "status": status,
        });
        let at = spec.updated;
        self.replica_sets.push(typed(managed(
            object,
            "kube-controller-manager",
            "kube-controller-manager",
            at,
        )));
        let rs_owner = owner_ref("ReplicaSet", "apps/v1", &name, &uid_);
        for i in 0..replicas as usize {
            let phase = if current {
                spec.pod_phases.get(i).copied().unwrap_or(PodPhase::Running)
            } else {
                PodPhase::Running
            };
            let pod_name =
                format!("{name}-{}", &uid(&["pod", &spec.namespace, &name, &i.to_string()])[..5]);
            let node = &nodes[*pod_index % nodes.len().max(1)];
            *pod_index += 1;
            let pod =
                PodPlace { name: &pod_name, node, owner: &rs_owner, template_hash: Some(&hash) };
            self.add_pod(spec, revision, &pod, phase);
        }
    }

    fn add_stateful_set(&mut self, spec: &WorkloadSpec, nodes: &[String]) {
        let uid_ = uid(&["sts", &spec.namespace, &spec.name]);
        let ready = self.ready_count(spec, spec.replicas);
        let current = Revision::current(spec);
        let revision_name = format!("{}-{}", spec.name, current.template_hash());
        let object = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": meta(spec, &uid_, None, spec.created),
            "spec": {
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "podManagementPolicy": "OrderedReady",
                "replicas": spec.replicas,
                "revisionHistoryLimit": 10,
                "serviceName": spec.name,
                "selector": selector(spec),
                "template": template(spec, &current),
                "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"},
                "volumeClaimTemplates": [{
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "20Gi"}},
                        "storageClassName": "gp3", "volumeMode": "Filesystem",
                    },
                    "status": {"phase": "Pending"},
                }],
            },
            "status": {
                "observedGeneration": 1, "collisionCount": 0,
                "replicas": spec.replicas, "readyReplicas": ready, "availableReplicas": ready,
                "currentReplicas": spec.replicas, "updatedReplicas": spec.replicas,
                "currentRevision": revision_name, "updateRevision": revision_name,
            },
        });
        self.stateful_sets.push(typed(managed(
            object,
            "helm",
            "kube-controller-manager",
            spec.updated,
        )));
        let owner = owner_ref("StatefulSet", "apps/v1", &spec.name, &uid_);
        for i in 0..spec.replicas as usize {
            let phase = spec.pod_phases.get(i).copied().unwrap_or(PodPhase::Running);
            let name = format!("{}-{i}", spec.name);
            let node = &nodes[i % nodes.len().max(1)];
            let pod = PodPlace { name: &name, node, owner: &owner, template_hash: None };
            self.add_pod(spec, &current, &pod, phase);
        }
    }

    fn add_daemon_set(&mut self, spec: &WorkloadSpec, nodes: &[String]) {
        let uid_ = uid(&["ds", &spec.namespace, &spec.name]);
        let count = nodes.len() as u32;
        let ready = self.ready_count(spec, count);
        let current = Revision::current(spec);
        let object = json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta(spec, &uid_, None, spec.created),
            "spec": {
                "revisionHistoryLimit": 10,
                "selector": selector(spec),
                "template": template(spec, &current),
                "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"},
            },
            "status": {
                "observedGeneration": 1,
                "currentNumberScheduled": count, "desiredNumberScheduled": count, "numberMisscheduled": 0,
                "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": count,
            },
        });
        self.daemon_sets.push(typed(managed(
            object,
            "helm",
            "kube-controller-manager",
            spec.updated,
        )));
        let owner = owner_ref("DaemonSet", "apps/v1", &spec.name, &uid_);
        for (i, node) in nodes.iter().enumerate() {
            let phase = spec.pod_phases.get(i).copied().unwrap_or(PodPhase::Running);
            let name = format!("{}-{}", spec.name, &uid(&["ds-pod", &spec.name, node])[..5]);
            let pod = PodPlace { name: &name, node, owner: &owner, template_hash: None };
            self.add_pod(spec, &current, &pod, phase);
        }
    }

    fn add_pod(
        &mut self,
        spec: &WorkloadSpec,
        revision: &Revision<'_>,
        pod: &PodPlace<'_>,
        phase: PodPhase,
    ) {
        let name = pod.name;
        let started = revision.created.to_string();
        let running = phase == PodPhase::Running;
        let container_id =
            |i: &str| format!("containerd://{}", uid(&["c", name, i]).replace('-', ""));
        let statuses: Vec<Value> = revision
            .images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let state = match phase {
                    PodPhase::Running => json!({"running": {"startedAt": started}}),
                    PodPhase::Pending => json!({"waiting": {"reason": "ContainerCreating"}}),
                    PodPhase::Failed => json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": started, "containerID": container_id(&i.to_string())}}),
                };
                let restarts = if i == 0 { spec.restarts } else { 0 };
                let last_state = if restarts > 0 {
                    json!({"terminated": {
                        "containerID": container_id(&format!("{i}-previous")),
                        "exitCode": 137, "reason": "OOMKilled", "startedAt": started, "finishedAt": started,
                    }})
                } else {
                    json!({})
                };
                let mut status = json!({
                    "name": container_name(spec, i),
                    "image": image.reference(),
                    "imageID": if phase == PodPhase::Pending { String::new() } else { image.image_id() },
                    "lastState": last_state,
                    "ready": running,
                    "started": running,
                    "restartCount": restarts,
                    "state": state,
                });
                if phase != PodPhase::Pending {
                    status["containerID"] = json!(container_id(&i.to_string()));
                }
                status
            })
            .collect();
        let init_statuses: Vec<Value> = spec
            .init_images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let id = container_id(&format!("init-{i}"));
                json!({
                    "name": init_container_name(i),
                    "image": image.reference(),
                    "imageID": image.image_id(),
                    "containerID": id,
                    "lastState": {},
                    "ready": true,
                    "started": false,
                    "restartCount": 0,
                    "state": {"terminated": {"containerID": id, "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started}},
                })
            })
            .collect();
        let mut labels = json!(spec.labels);
        if let Some(hash) = pod.template_hash {
            labels["pod-template-hash"] = json!(hash);
        }
        let phase_text = match phase {
            PodPhase::Running => "Running",
            PodPhase::Pending => "Pending",
            PodPhase::Failed => "Failed",
        };
        let condition = |kind: &str, ok: bool| json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": started});
        let scheduled = condition("PodScheduled", true);
        let mut status = json!({
            "phase": phase_text,
            "conditions": [
                condition("PodReadyToStartContainers", phase != PodPhase::Pending),
                condition("Initialized", true),
                condition("Ready", running),
                condition("ContainersReady", running),
                scheduled,
            ],
            "qosClass": "Burstable",
            "startTime": started,
            "containerStatuses": statuses,
        });
        if !init_statuses.is_empty() {
            status["initContainerStatuses"] = json!(init_statuses);
        }
        let host_ip =
            format!("10.0.{}.{}", pod.node.len() % 250, (pod.node.as_bytes()[0] as usize) % 250);
        status["hostIP"] = json!(host_ip);
        status["hostIPs"] = json!([{"ip": host_ip}]);
        if phase != PodPhase::Pending {
            let pod_ip =
                format!("10.1.{}.{}", name.len() % 250, (name.as_bytes()[0] as usize) % 250);
            status["podIP"] = json!(pod_ip);
            status["podIPs"] = json!([{"ip": pod_ip}]);
        }
        let generate_name = match pod.template_hash {
            Some(_) => name.rsplit_once('-').map_or(name, |(prefix, _)| prefix),
            None => &spec.name,
        };
        let object = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": name, "namespace": spec.namespace,
                "generateName": format!("{generate_name}-"),
                "uid": uid(&["pod", &spec.namespace, name]),
                "resourceVersion": "1",
                "creationTimestamp": started,
                "labels": labels,
                "annotations": template_annotations(revision),
                "ownerReferences": [pod.owner],
            },
            "spec": pod_spec(spec, revision, Some(pod)),
            "status": status,
        });
        // The ReplicaSet's controller wrote the template's spec.
        let written = pod_spec(spec, revision, None);
        let mut object = managed_as_written(
            object,
            &written,
            "kube-controller-manager",
            "kubelet",
            revision.created,
        );
        // The scheduler owns the condition it set.
        let scheduler = managed_entry(
            "kube-scheduler",
            &json!({"status": {"conditions": [scheduled]}}),
            Some("status"),
            revision.created,
        );
        if let Some(entries) = object["metadata"]["managedFields"].as_array_mut() {
            entries.insert(0, scheduler);
        }
        self.pods.push(typed(object));
    }

    fn ready_count(&self, spec: &WorkloadSpec, pods: u32) -> u32 {
        let not_running =
            spec.pod_phases.iter().take(pods as usize).filter(|p| **p != PodPhase::Running).count();
        pods.saturating_sub(not_running as u32)
    }
}

/// One pod template of a workload: what its pods run, since when.
struct Revision<'a> {
    /// `deployment.kubernetes.io/revision`.
    number: u32,
    images: &'a [Image],
    replicas: u32,
    created: Timestamp,
    /// `kubectl.kubernetes.io/restartedAt` of the template, if restarted.
    restarted: Option<Timestamp>,
}

impl<'a> Revision<'a> {
    /// The only template of a StatefulSet or DaemonSet.
    fn current(spec: &'a WorkloadSpec) -> Self {
        Self {
            number: 1,
            images: &spec.images,
            replicas: spec.replicas,
            created: spec.updated,
            restarted: None,
        }
    }

    /// The ten-character hash a Deployment puts on its ReplicaSets, from the pod template.
    fn template_hash(&self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut joined: Vec<String> = self.images.iter().map(Image::reference).collect();
        if let Some(at) = self.restarted {
            joined.push(at.to_string());
        }
        let hash = digest(&SHA256, joined.join(",").as_bytes());
        hash.as_ref()
            .iter()
            .take(10)
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect()
    }
}

/// Where one pod runs and who owns it.
struct PodPlace<'a> {
    name: &'a str,
    node: &'a str,
    owner: &'a Value,
    template_hash: Option<&'a str>,
}

fn container_name(spec: &WorkloadSpec, index: usize) -> String {
    if index == 0 { spec.name.clone() } else { format!("sidecar-{index}") }
}

fn init_container_name(index: usize) -> String {
    if index == 0 { "wait-for-dependencies".to_owned() } else { format!("init-{index}") }
}

/// The volume of the service-account token the API server adds to a pod.
const API_ACCESS_VOLUME: &str = "kube-api-access";

/// Containers as a Helm chart of a service writes them: the app with its
/// configuration, probes, limits and mounts; sidecars and init containers
/// with less. In a pod, each mounts the service-account token too.
fn containers(spec: &WorkloadSpec, images: &[Image], in_pod: bool) -> Vec<Value> {
    let name = &spec.name;
    let mounts = |mut mounts: Vec<Value>| {
        if in_pod {
            mounts.push(json!({"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": API_ACCESS_VOLUME, "readOnly": true}));
        }
        mounts
    };
    let security = json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true});
    let field = |path: &str| json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}});
    images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let container = container_name(spec, i);
            if i > 0 {
                return json!({
                    "name": container, "image": image.reference(), "imagePullPolicy": "IfNotPresent",
                    "args": ["--listen=:15090", format!("--upstream=http://127.0.0.1:8080"), "--log-level=info"],
                    "ports": [{"containerPort": 15090, "name": format!("side-{i}"), "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
                    "securityContext": security,
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    "volumeMounts": mounts(Vec::new()),
                });
            }
            let probe = |path: &str, delay: u32| json!({
                "failureThreshold": 3, "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
                "initialDelaySeconds": delay, "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 2,
            });
            json!({
                "name": container, "image": image.reference(), "imagePullPolicy": "IfNotPresent",
                "args": [format!("--config=/etc/{name}/config.yaml")],
                "env": [
                    {"name": "SERVICE_NAME", "value": name},
                    {"name": "POD_NAME", "valueFrom": field("metadata.name")},
                    {"name": "POD_NAMESPACE", "valueFrom": field("metadata.namespace")},
                ],
                "ports": [
                    {"containerPort": 8080, "name": "http", "protocol": "TCP"},
                ],
                "livenessProbe": probe("/healthz", 10),
                "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
                "securityContext": security,
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "volumeMounts": mounts(vec![
                    json!({"mountPath": format!("/etc/{name}"), "name": "config", "readOnly": true}),
                ]),
            })
        })
        .collect()
}

fn init_containers(spec: &WorkloadSpec, in_pod: bool) -> Vec<Value> {
    spec.init_images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let mut mounts = Vec::new();
            if in_pod {
                mounts.push(json!({"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": API_ACCESS_VOLUME, "readOnly": true}));
            }
            json!({
                "name": init_container_name(i), "image": image.reference(), "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", format!("until nc -z {}-db 5432; do echo waiting; sleep 2; done", spec.name)],
                "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "16Mi"}},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "volumeMounts": mounts,
            })
        })
        .collect()
}

/// A pod spec as a workload's template holds it, or (with `pod`) as the
/// API server stores a pod made from it: scheduled on a node, with the
/// service-account token volume and the default tolerations added.
fn pod_spec(spec: &WorkloadSpec, revision: &Revision<'_>, pod: Option<&PodPlace<'_>>) -> Value {
    let in_pod = pod.is_some();
    let name = &spec.name;
    let match_labels = json!({"app.kubernetes.io/name": spec.labels.get("app.kubernetes.io/name")});
    let mut tolerations = Vec::new();
    let mut volumes = vec![
        json!({"configMap": {"defaultMode": 420, "name": format!("{name}-config")}, "name": "config"}),
    ];
    let mut out = json!({
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "podAffinityTerm": {"labelSelector": {"matchLabels": match_labels}, "topologyKey": "kubernetes.io/hostname"},
            "weight": 100,
        }]}},
        "containers": containers(spec, revision.images, in_pod),
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {"fsGroup": 10001},
        "serviceAccountName": name,
        "terminationGracePeriodSeconds": 30,
    });
    if !spec.init_images.is_empty() {
        out["initContainers"] = json!(init_containers(spec, in_pod));
    }
    if let Some(pod) = pod {
        out["nodeName"] = json!(pod.node);
        out["enableServiceLinks"] = json!(true);
        out["preemptionPolicy"] = json!("PreemptLowerPriority");
        out["priority"] = json!(0);
        out["serviceAccount"] = json!(name);
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            tolerations.push(json!({"effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300}));
        }
        volumes.push(json!({"name": API_ACCESS_VOLUME, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
        ]}}));
    }
    out["tolerations"] = json!(tolerations);
    out["volumes"] = json!(volumes);
    out
}

fn template_annotations(revision: &Revision<'_>) -> Value {
    let mut annotations = json!({"prometheus.io/scrape": "true"});
    if let Some(at) = revision.restarted {
        annotations["kubectl.kubernetes.io/restartedAt"] = json!(at.to_string());
    }
    annotations
}

fn template(spec: &WorkloadSpec, revision: &Revision<'_>) -> Value {
    json!({
        "metadata": {"labels": spec.labels, "annotations": template_annotations(revision)},
        "spec": pod_spec(spec, revision, None),
    })
}

fn selector(spec: &WorkloadSpec) -> Value {
    json!({"matchLabels": {"app.kubernetes.io/name": spec.labels.get("app.kubernetes.io/name")}})
}

fn meta(spec: &WorkloadSpec, uid_: &str, owner: Option<&Value>, created: Timestamp) -> Value {
    let mut meta = json!({
        "name": spec.name,
        "namespace": spec.namespace,
        "uid": uid_,
        "resourceVersion": "1",
        "generation": 1,
        "creationTimestamp": created.to_string(),
        "labels": spec.labels,
        "annotations": {
            "meta.helm.sh/release-name": spec.name,
            "meta.helm.sh/release-namespace": spec.namespace,
        },
    });
    for (key, value) in &spec.annotations {
        meta["annotations"][key] = json!(value);
    }
    if let Some(owner) = owner {
        meta["ownerReferences"] = json!([owner]);
    }
    meta
}

/// `object` with the `managedFields` the API server keeps: one manager
/// owns what it wrote of the metadata and the spec, another the status.
fn managed(object: Value, writer: &str, status_writer: &str, at: Timestamp) -> Value {
    let spec = object["spec"].clone();
    managed_as_written(object, &spec, writer, status_writer, at)
}

/// `managed`, where the writer wrote `spec` and the API server added the
/// rest (a pod's node, token volume, default tolerations).
fn managed_as_written(
    mut object: Value,
    spec: &Value,
    writer: &str,
    status_writer: &str,
    at: Timestamp,
) -> Value {
    let meta = &object["metadata"];
    let mut written =
        json!({"metadata": {"labels": meta["labels"], "annotations": meta["annotations"]}});
    if !meta["ownerReferences"].is_null() {
        written["metadata"]["ownerReferences"] = meta["ownerReferences"].clone();
    }
    written["spec"] = without_defaults(spec);
    let status = json!({"status": object["status"]});
    let entries = json!([
        managed_entry(writer, &written, None, at),
        managed_entry(status_writer, &status, Some("status"), at),
    ]);
    object["metadata"]["managedFields"] = entries;
    object
}

fn managed_entry(
    manager: &str,
    written: &Value,
    subresource: Option<&str>,
    at: Timestamp,
) -> Value {
    let mut entry = json!({
        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": fields_v1(written, 0),
        "manager": manager, "operation": "Update", "time": at.to_string(),
    });
    if let Some(subresource) = subresource {
        entry["subresource"] = json!(subresource);
    }
    entry
}

/// Fields the API server fills in with defaults when a client leaves them
/// out: no manager owns them, so they are not in `managedFields`.
const DEFAULTED: &[&str] = &[
    "dnsPolicy",
    "enableServiceLinks",
    "failureThreshold",
    "imagePullPolicy",
    "periodSeconds",
    "preemptionPolicy",
    "priority",
    "progressDeadlineSeconds",
    "restartPolicy",
    "revisionHistoryLimit",
    "scheme",
    "schedulerName",
    "strategy",
    "successThreshold",
    "terminationGracePeriodSeconds",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "timeoutSeconds",
];

fn without_defaults(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !DEFAULTED.contains(&key.as_str()))
                .map(|(key, child)| (key.clone(), without_defaults(child)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_defaults).collect()),
        other => other.clone(),
    }
}

/// Lists the API's schema marks atomic though their items have names.
const ATOMIC_LISTS: &[&str] = &["containerStatuses", "initContainerStatuses"];

/// The field set of `value` in the API server's FieldsV1 form: `f:<name>`
/// per field, `k:<key>` per item of a list merged by key, `.` for a map or
/// list owned as a whole.
fn fields_v1(value: &Value, depth: usize) -> Value {
    let mut out = serde_json::Map::new();
    match value {
        Value::Object(map) => {
            if depth > 1 {
                out.insert(".".into(), json!({}));
            }
            for (key, child) in map {
                // The kubelet replaces its container statuses whole.
                let atomic = ATOMIC_LISTS.contains(&key.as_str());
                let fields = if atomic { json!({}) } else { fields_v1(child, depth + 1) };
                out.insert(format!("f:{key}"), fields);
            }
        }
        Value::Array(items) => {
            for item in items {
                // A list without a merge key is atomic: owned whole.
                let Some(key) = merge_key(item) else { return json!({}) };
                out.insert(format!("k:{key}"), fields_v1(item, depth + 1));
            }
            if !out.is_empty() {
                out.insert(".".into(), json!({}));
            }
        }
        _ => {}
    }
    Value::Object(out)
}

/// The merge key of a list item, as the API's schema declares it.
fn merge_key(item: &Value) -> Option<String> {
    if let Some(port) = item.get("containerPort") {
        return Some(json!({"containerPort": port, "protocol": item["protocol"]}).to_string());
    }
    ["mountPath", "uid", "type", "ip", "name"]
        .into_iter()
        .find_map(|key| item.get(key).map(|v| json!({ key: v }).to_string()))
}

fn owner_ref(kind: &str, api_version: &str, name: &str, uid_: &str) -> Value {
    json!({
        "apiVersion": api_version, "kind": kind, "name": name, "uid": uid_,
        "controller": true, "blockOwnerDeletion": true,
    })
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
        assert_eq!(objects.replica_sets.len(), 2, "the current revision and the one before");
        assert_eq!(objects.pods.len(), 3);
        assert_eq!(objects.replica_sets[0].spec.as_ref().unwrap().replicas, Some(0));
        let rs = &objects.replica_sets[1];
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

    /// Mean compact JSON bytes of each kind's objects as a list serves them.
    fn mean_sizes(objects: &ClusterObjects) -> [(&'static str, usize); 3] {
        fn mean<T: serde::Serialize>(items: &[T]) -> usize {
            let bytes: usize = items.iter().map(|o| serde_json::to_vec(o).unwrap().len()).sum();
            bytes / items.len().max(1)
        }
        [
            ("Pod", mean(&objects.pods)),
            ("Deployment", mean(&objects.deployments)),
            ("ReplicaSet", mean(&objects.replica_sets)),
        ]
    }

    #[test]
    fn objects_weigh_what_real_ones_do() {
        // Real API servers' objects (compact JSON, managedFields included):
        // pods 5.8–7.3 KB, Deployments 5.6–6.5 KB, ReplicaSets 4.5–5.3 KB.
        let objects = ClusterObjects::large(120, 3);
        assert_eq!(objects.replica_sets.len(), 240, "two ReplicaSets per Deployment");
        let sizes = mean_sizes(&objects);
        println!("mean compact sizes: {sizes:?}");
        let bounds = [("Pod", 5000..8000), ("Deployment", 5000..7000), ("ReplicaSet", 4000..6000)];
        for ((kind, size), (_, bound)) in sizes.iter().zip(bounds) {
            assert!(bound.contains(size), "{kind}: {size} bytes, real ones weigh {bound:?}");
        }
        let pod = serde_json::to_value(&objects.pods[0]).unwrap();
        let managed = pod["metadata"]["managedFields"].to_string().len();
        let share = managed as f64 / pod.to_string().len() as f64;
        assert!((0.25..0.55).contains(&share), "managedFields are {share:.2} of a pod");
    }

    #[test]
    fn managed_fields_name_each_field_and_list_items_by_key() {
        let fields = fields_v1(
            &json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "TCP"}], "args": ["-v"]}]}}),
            0,
        );
        let container = &fields["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
        assert_eq!(container["."], json!({}));
        assert_eq!(container["f:args"], json!({}), "a list without a key is atomic");
        assert!(container["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object());
        assert!(fields["f:spec"].get(".").is_none(), "top-level fields have no dot");
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
