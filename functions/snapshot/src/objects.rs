//! The parts of Kubernetes objects a snapshot reads, and nothing else.
//!
//! Real objects carry far more (`managedFields` alone is often most of a
//! pod's JSON); deserialising into the full k8s-openapi types would allocate
//! all of it for every object of every page. These shapes let serde skip
//! what we never look at, which keeps a snapshot fast and its memory small.
//! Field names follow the Kubernetes API exactly.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

/// A list response: one page and where the next one starts.
#[derive(Debug, Deserialize)]
pub struct List<T> {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
}

impl ListMeta {
    /// The list's metadata if it comes before its items, as API servers
    /// write it (`kind`, `apiVersion`, `metadata`, `items`), read without
    /// reading the items: where the next page starts is known before this
    /// one is decoded. `None` if the items come first or the front does not
    /// read; decoding the whole page then says what it holds.
    pub fn at_front(page: &[u8]) -> Option<ListMeta> {
        use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};

        /// Reads keys up to `metadata`, then stops: serde_json only lets a
        /// map visitor stop early with an error, so the metadata is kept
        /// aside and the (expected) error ignored.
        struct Front<'s>(&'s mut Option<ListMeta>);
        impl<'de> Visitor<'de> for Front<'_> {
            type Value = ();

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "metadata" => {
                            *self.0 = Some(map.next_value()?);
                            break;
                        }
                        "items" => break,
                        _ => _ = map.next_value::<IgnoredAny>()?,
                    }
                }
                Err(A::Error::custom("stopped at the list's metadata"))
            }
        }

        let mut meta = None;
        let mut reader = serde_json::Deserializer::from_slice(page);
        let _stopped = serde::Deserializer::deserialize_map(&mut reader, Front(&mut meta));
        meta
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only short ones: a version is short, and annotations such as
    /// `kubectl.kubernetes.io/last-applied-configuration` are most of some
    /// objects' bytes.
    #[serde(default, deserialize_with = "short_annotations")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub creation_timestamp: Option<Timestamp>,
    #[serde(default)]
    pub owner_references: Vec<OwnerReference>,
}

/// Annotation values kept: longer ones are dropped while decoding.
pub const MAX_ANNOTATION_BYTES: usize = 256;

fn short_annotations<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Short;
    impl<'de> serde::de::Visitor<'de> for Short {
        type Value = BTreeMap<String, String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of annotations")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                let value: std::borrow::Cow<'de, str> = map.next_value()?;
                if value.len() <= MAX_ANNOTATION_BYTES {
                    kept.insert(key, value.into_owned());
                }
            }
            Ok(kept)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
    }
    deserializer.deserialize_any(Short)
}

impl Meta {
    /// The owner that manages this object.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.owner_references.iter().find(|o| o.controller == Some(true))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct OwnerReference {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    /// `Always` on an init container makes it a native sidecar (1.28+): it
    /// runs for the pod's whole life.
    #[serde(default)]
    pub restart_policy: Option<String>,
}

impl Container {
    /// An init container that runs beside the app containers.
    pub fn is_native_sidecar(&self) -> bool {
        self.restart_policy.as_deref() == Some("Always")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub init_containers: Vec<Container>,
    #[serde(default)]
    pub containers: Vec<Container>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PodTemplate {
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Deserialize)]
pub struct Pod {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: PodSpec,
    #[serde(default)]
    pub status: PodStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub start_time: Option<Timestamp>,
    /// Whether the `Ready` condition is `True`: the only condition read,
    /// so the others are never allocated.
    #[serde(default, rename = "conditions", deserialize_with = "ready_condition")]
    pub ready: bool,
    #[serde(default)]
    pub init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    pub container_statuses: Vec<ContainerStatus>,
}

/// Reads a pod's conditions for `Ready` alone, borrowing each condition's
/// strings from the page where it can.
fn ready_condition<'de, D>(deserializer: D) -> Result<bool, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Condition<'a> {
        #[serde(borrow, rename = "type")]
        kind: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        status: std::borrow::Cow<'a, str>,
    }
    struct Ready;
    impl<'de> serde::de::Visitor<'de> for Ready {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of pod conditions")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let mut ready = false;
            while let Some(c) = seq.next_element::<Condition<'de>>()? {
                ready |= c.kind == "Ready" && c.status == "True";
            }
            Ok(ready)
        }

        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    deserializer.deserialize_any(Ready)
}

/// The status of one container: the image it runs is read from the spec
/// (matched by name), so the runtime's spelling of it is not read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    #[serde(default, rename = "imageID")]
    pub image_id: String,
    #[serde(default)]
    pub restart_count: i32,
}

/// A ReplicaSet matters only for its metadata (its owner, revision and
/// creation): it is listed as metadata only.
pub type ReplicaSet = Named;

/// Deployments and StatefulSets share the fields we read.
#[derive(Debug, Deserialize)]
pub struct ReplicatedWorkload {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: ReplicatedSpec,
    #[serde(default)]
    pub status: ReplicatedStatus,
}

#[derive(Debug, Default, Deserialize)]
pub struct ReplicatedSpec {
    #[serde(default)]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub template: PodTemplate,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicatedStatus {
    #[serde(default)]
    pub ready_replicas: Option<i32>,
    #[serde(default)]
    pub available_replicas: Option<i32>,
    #[serde(default)]
    pub updated_replicas: Option<i32>,
}

#[derive(Debug, Deserialize)]
pub struct DaemonSet {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: DaemonSetSpec,
    #[serde(default)]
    pub status: DaemonSetStatus,
}

#[derive(Debug, Default, Deserialize)]
pub struct DaemonSetSpec {
    #[serde(default)]
    pub template: PodTemplate,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DaemonSetStatus {
    #[serde(default)]
    pub desired_number_scheduled: i32,
    #[serde(default)]
    pub number_ready: i32,
    #[serde(default)]
    pub number_available: Option<i32>,
    #[serde(default)]
    pub updated_number_scheduled: Option<i32>,
}

/// What asks the API server for a list's metadata only
/// (`PartialObjectMetadataList`, Kubernetes 1.15+): each item is then its
/// `metadata` and nothing else.
pub const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// `request` asking for metadata only.
pub fn metadata_only<B>(mut request: http::Request<B>) -> http::Request<B> {
    request
        .headers_mut()
        .insert(http::header::ACCEPT, http::HeaderValue::from_static(METADATA_ONLY));
    request
}

/// Any object, read for its metadata only.
#[derive(Debug, Deserialize)]
pub struct Named {
    #[serde(default)]
    pub metadata: Meta,
}

/// Every object we list has metadata.
pub trait HasMeta {
    fn meta(&self) -> &Meta;
}

macro_rules! has_meta {
    ($($kind:ty),+) => {
        $(impl HasMeta for $kind {
            fn meta(&self) -> &Meta {
                &self.metadata
            }
        })+
    };
}

has_meta!(Pod, ReplicatedWorkload, DaemonSet, Named);

/// Where each kind is listed: API group path and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Pods,
    ReplicaSets,
    Deployments,
    StatefulSets,
    DaemonSets,
}

impl Listing {
    /// What a snapshot lists, in its order: ReplicaSets first (the owners of
    /// pods), then pods, then the workloads their pods are summed into.
    pub const SNAPSHOT_ORDER: [Self; 5] =
        [Self::ReplicaSets, Self::Pods, Self::Deployments, Self::StatefulSets, Self::DaemonSets];

    /// Whether a snapshot reads this listing's objects for their metadata
    /// only: the API server then sends nothing else.
    pub fn metadata_only(self) -> bool {
        self == Self::ReplicaSets
    }

    /// `request` asking for this listing in the form a snapshot reads.
    pub fn accepting<B>(self, request: http::Request<B>) -> http::Request<B> {
        if self.metadata_only() { metadata_only(request) } else { request }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Self::Pods => "pods",
            Self::ReplicaSets => "replicasets",
            Self::Deployments => "deployments",
            Self::StatefulSets => "statefulsets",
            Self::DaemonSets => "daemonsets",
        }
    }

    /// `/api/v1/pods`, `/apis/apps/v1/namespaces/dab/deployments`, …
    pub fn path(self, namespace: Option<&str>) -> String {
        let base = if self == Self::Pods { "/api/v1" } else { "/apis/apps/v1" };
        match namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.plural()),
            None => format!("{base}/{}", self.plural()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_skipped_and_missing_ones_default() {
        let json = r#"{
            "metadata": {"name": "p", "namespace": "dab", "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "a:1", "env": [{"name": "X", "value": "y"}]}], "volumes": []},
            "status": {"phase": "Running", "containerStatuses": [{"name": "app", "image": "a:1", "imageID": "a@sha256:00", "restartCount": 2, "ready": true}]}
        }"#;
        let pod: Pod = serde_json::from_str(json).unwrap();
        assert_eq!(pod.metadata.controller().map(|o| o.name.as_str()), Some("rs"));
        assert_eq!(pod.spec.containers[0].image.as_deref(), Some("a:1"));
        assert_eq!(pod.status.container_statuses[0].restart_count, 2);
        let bare: Pod = serde_json::from_str(r#"{"metadata": {"name": "x"}}"#).unwrap();
        assert!(bare.status.phase.is_none());
    }

    #[test]
    fn a_pod_is_ready_when_its_ready_condition_is_true() {
        let ready = |conditions: &str| {
            let json =
                format!(r#"{{"status": {{"phase": "Running", "conditions": {conditions}}}}}"#);
            serde_json::from_str::<Pod>(&json).unwrap().status.ready
        };
        let condition = |kind: &str, status: &str| {
            format!(r#"{{"type": "{kind}", "status": "{status}", "lastTransitionTime": null}}"#)
        };
        let all = [
            condition("Initialized", "True"),
            condition("Ready", "True"),
            condition("ContainersReady", "True"),
        ];
        assert!(ready(&format!("[{}]", all.join(","))));
        assert!(!ready(&format!("[{}]", condition("Ready", "False"))));
        assert!(!ready(&format!("[{}]", condition("ContainersReady", "True"))));
        // Escaped strings are read too (they cannot be borrowed).
        assert!(ready(r#"[{"type": "Re\u0061dy", "status": "True"}]"#));
        assert!(!ready("[]"));
        assert!(!ready("null"));
        let none: Pod = serde_json::from_str(r#"{"status": {"phase": "Pending"}}"#).unwrap();
        assert!(!none.status.ready);
    }

    #[test]
    fn a_pages_continue_token_is_read_from_its_front_when_it_is_there() {
        let token = |json: &str| ListMeta::at_front(json.as_bytes()).map(|m| m.continue_token);
        let page = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9","continue":"eyJ2"},"items":[{"metadata":{"name":"p"}}]}"#;
        assert_eq!(token(page), Some(Some("eyJ2".into())));
        let last =
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"9"},"items":[]}"#;
        assert_eq!(token(last), Some(None), "the last page says so at its front");
        // Items first (no API server writes it so, a peer might): unknown
        // until the whole page is read, and the page still decodes.
        let items_first = r#"{"items":[{"metadata":{"name":"p"}}],"metadata":{"continue":"x"}}"#;
        assert_eq!(token(items_first), None);
        let whole: List<Named> = serde_json::from_str(items_first).unwrap();
        assert_eq!(whole.metadata.continue_token.as_deref(), Some("x"));
        assert_eq!(token(r#"{"kind":"PodList","metadata":{"continue":7}"#), None);
        assert_eq!(token("not json"), None);
        assert_eq!(token("[]"), None);
    }

    #[test]
    fn paths_follow_the_api_layout() {
        assert_eq!(Listing::Pods.path(None), "/api/v1/pods");
        assert_eq!(
            Listing::Deployments.path(Some("dab")),
            "/apis/apps/v1/namespaces/dab/deployments"
        );
    }
}
