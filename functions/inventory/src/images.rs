//! `GET /images?q=`: where an image runs, searched by repository,
//! `repository:tag` or digest. Reads the same cached cluster data as the
//! dashboards (one status read per visible cluster, a partition query only
//! for clusters with a newer snapshot): no index to keep in step, no scan.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use shared::auth::Authenticated;
use shared::context::visible;
use shared::http::{ApiError, ApiQuery};
use shared::model::{ImageRef, Workload};
use shared::paging::{Paged, Paging, page};

use crate::Deps;

/// What `q` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// `sha256:<hex>`, alone or after `name@`.
    Digest { name: Option<String>, digest: String },
    /// `[registry/]repository[:tag]`, matched by whole path parts from the end.
    Reference { name: String, tag: Option<String> },
}

fn wanted(q: Option<String>) -> Result<Wanted, ApiError> {
    let q = q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    let Some(q) = q else { return Err(ApiError::invalid_parameter("q", "is required")) };
    if q.len() > 500 || q.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid_parameter(
            "q",
            "an image reference of at most 500 characters",
        ));
    }
    let lower = q.to_lowercase();
    let (name, digest) = match lower.split_once('@') {
        Some((name, digest)) => {
            (Some(name.to_owned()).filter(|n| !n.is_empty()), Some(digest.to_owned()))
        }
        None if lower.starts_with("sha256:") => (None, Some(lower.clone())),
        None => (Some(lower.clone()), None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid_parameter("q", "a digest is sha256: and 64 hex digits"));
        }
        let name = name.map(|n| split_tag(&n).0);
        return Ok(Wanted::Digest { name, digest });
    }
    let (name, tag) = split_tag(&name.unwrap_or_default());
    Ok(Wanted::Reference { name, tag })
}

/// `name[:tag]`: a `:` in the last path part is a tag (an earlier one is a
/// registry's port).
fn split_tag(reference: &str) -> (String, Option<String>) {
    let last = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last..].rfind(':') {
        Some(i) => (reference[..last + i].to_owned(), Some(reference[last + i + 1..].to_owned())),
        None => (reference.to_owned(), None),
    }
}

/// Whether `name` is the image's `registry/repository` or ends it at a
/// path boundary (`cart` finds `shop/cart`, not `shop/webcart`).
fn name_matches(image: &ImageRef, name: &str) -> bool {
    let full = format!("{}/{}", image.registry, image.repository).to_lowercase();
    full == name || full.ends_with(&format!("/{name}"))
}

impl Wanted {
    fn matches(&self, image: &ImageRef) -> bool {
        match self {
            Self::Digest { name, digest } => {
                image.digest.as_deref().is_some_and(|d| d.eq_ignore_ascii_case(digest))
                    && name.as_deref().is_none_or(|n| name_matches(image, n))
            }
            Self::Reference { name, tag } => {
                name_matches(image, name)
                    && tag.as_deref().is_none_or(|t| {
                        image.tag.as_deref().is_some_and(|it| it.eq_ignore_ascii_case(t))
                    })
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesQuery {
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// One container of one workload running a matching image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePlacement {
    /// `registry/repository:tag`.
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub environment: String,
    pub cluster: String,
    pub namespace: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, or `Pod` for a pod no
    /// workload owns (bare, static, a Job's).
    pub kind: String,
    /// The workload's name, or the pod's.
    pub workload: String,
    pub container: String,
    /// Empty for a pod no workload owns.
    pub service: String,
    pub version: String,
}

impl ImagePlacement {
    fn key(&self) -> String {
        format!(
            "{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}\u{1}{}",
            self.image,
            self.digest.as_deref().unwrap_or(""),
            self.environment,
            self.cluster,
            self.namespace,
            self.kind,
            self.workload,
            self.container
        )
    }
}

/// The images a workload's pods run (with the digests the kubelet
/// resolved) and its template's, each with its container.
fn images(workload: &Workload) -> BTreeSet<(String, ImageRef)> {
    let running = workload.pods.images.iter().map(|i| {
        let mut image = ImageRef::parse(&i.image);
        image.digest = i.digest.clone().or(image.digest);
        (i.container.clone(), image)
    });
    let template = workload.images.iter().map(|c| (c.container.clone(), c.image.clone()));
    running.chain(template).collect()
}

pub async fn find_images(
    State(deps): State<Arc<Deps>>,
    Authenticated(principal): Authenticated,
    ApiQuery(query): ApiQuery<ImagesQuery>,
) -> Result<Json<Paged<ImagePlacement>>, ApiError> {
    let wanted = wanted(query.q)?;
    let paging = Paging::new(query.limit, query.cursor)?;
    let fleet = deps.fleet().await?;
    let clusters: Vec<(&str, &str)> = visible(&fleet, &principal)
        .flat_map(|e| e.clusters.iter().map(move |c| (e.name.as_str(), c.name.as_str())))
        .collect();
    let reads = try_join_all(
        clusters.iter().map(|(_, cluster)| deps.snapshots.read(deps.store.as_ref(), cluster)),
    )
    .await?;
    let mut found = BTreeSet::new();
    for ((environment, cluster), read) in clusters.iter().zip(&reads) {
        let placed =
            |namespace: &str, kind: &str, name: &str, container: String, image: &ImageRef| {
                ImagePlacement {
                    image: image.name_and_tag(),
                    digest: image.digest.clone(),
                    environment: (*environment).to_owned(),
                    cluster: (*cluster).to_owned(),
                    namespace: namespace.to_owned(),
                    kind: kind.to_owned(),
                    workload: name.to_owned(),
                    container,
                    service: String::new(),
                    version: String::new(),
                }
            };
        for workload in &read.data.workloads {
            for (container, image) in images(workload) {
                if wanted.matches(&image) {
                    let kind = workload.kind.as_str();
                    found.insert(ImagePlacement {
                        service: workload.service.clone(),
                        version: workload.version.clone(),
                        ..placed(&workload.namespace, kind, &workload.name, container, &image)
                    });
                }
            }
        }
        for pod in &read.data.loose {
            for running in &pod.images {
                let image =
                    ImageRef { digest: running.digest.clone(), ..ImageRef::parse(&running.image) };
                if wanted.matches(&image) {
                    let container = running.container.clone();
                    found.insert(ImagePlacement {
                        version: image.tag.clone().unwrap_or_default(),
                        ..placed(&pod.namespace, "Pod", &pod.name, container, &image)
                    });
                }
            }
        }
    }
    Ok(Json(page(found, ImagePlacement::key, &paging)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_by_repository_tag_or_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let image = ImageRef {
            digest: Some(digest.clone()),
            ..ImageRef::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/cart:1.2.0")
        };
        let matches = |q: &str| wanted(Some(q.into())).unwrap().matches(&image);
        assert!(matches("shop/cart") && matches("cart") && matches("Cart"));
        assert!(matches("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/cart:1.2.0"));
        assert!(matches("shop/cart:1.2.0") && !matches("shop/cart:1.3.0"));
        assert!(!matches("art") && !matches("webcart"), "whole path parts only");
        assert!(matches(&digest) && matches(&format!("shop/cart@{digest}")));
        assert!(!matches(&format!("shop/search@{digest}")));
        assert!(!matches(&format!("sha256:{}", "cd".repeat(32))));
        let hub = ImageRef::parse("nginx:1.27");
        assert!(wanted(Some("nginx:1.27".into())).unwrap().matches(&hub));
        assert!(wanted(Some("localhost:5000/team/app".into())).is_ok_and(
            |w| w == Wanted::Reference { name: "localhost:5000/team/app".into(), tag: None }
        ));
        for bad in ["", "sha256:abc", "a b", "x@sha256:zz"] {
            let err = wanted(Some(bad.into())).unwrap_err();
            assert!(err.to_string().starts_with("q:"), "{bad}: {err}");
        }
    }
}
