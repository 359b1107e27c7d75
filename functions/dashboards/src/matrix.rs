//! The version matrix: services (rows) × environments (columns), built from
//! the workloads of each column's clusters. Pure: the handler reads, this
//! computes, so every flag is tested without a store.
//!
//! Row flags:
//! - `drift`: the versions differ across columns;
//! - `mixed`: one column runs several versions;
//! - `digestDrift`: one tag runs with different digests (re-pushed tags);
//! - `promotionOrderBroken`: a column runs a version that an earlier
//!   column running the service neither runs nor, per its sightings, ever ran,
//!   though that column was watched before the later one took it;
//! - `consistent`: none of the above;
//! - `rolling` and `stale` describe the cells (a rollout in progress, data
//!   from a cluster whose refresh failed or is old).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use shared::freshness::Freshness;
use shared::model::{ImageRef, Workload, WorkloadKind};

/// One column's input: its environment and what its clusters run.
pub struct ColumnData {
    pub environment: String,
    pub clusters: Vec<ClusterData>,
}

pub struct ClusterData {
    pub name: String,
    pub freshness: Freshness,
    /// The workloads the dashboard's selector chose.
    pub workloads: Vec<Arc<Workload>>,
}

/// Which versions ran where, and since when: the sightings (`SEEN#`
/// records) of each column's clusters. Not history events (`history.rs`)
/// nor a column's rewind (`timeline.rs`).
#[derive(Debug, Clone, Default)]
pub struct Sightings {
    /// `(environment, service)` → version → first seen in any of its
    /// clusters (by service, so that a service's versions in a column are
    /// one lookup).
    first_seen: HashMap<Key, HashMap<String, Timestamp>>,
    /// `(environment, service)` → version → first seen by a snapshot of a
    /// cluster whose record had already begun: a deployment seen happening,
    /// not one found by a cluster's first snapshot.
    deployed: HashMap<Key, HashMap<String, Timestamp>>,
    /// `(service, version)` found by some cluster's first snapshot: it may
    /// have gone anywhere before the record began.
    found_at_start: HashSet<(String, String)>,
    /// When each environment's record begins (its earliest first sighting).
    watched_since: HashMap<String, Timestamp>,
}

type Key = (String, String);

/// Whether a version ran in an earlier column before a later one took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It did (it runs there now, or was seen there, since when if recorded).
    Yes { since: Option<Timestamp> },
    /// It never did, though the earlier column was watched: the later
    /// column took it at `since`.
    Never { since: Timestamp },
    /// The record cannot say (it began after, or the version was already
    /// running when it began).
    Unknown,
}

impl Sightings {
    /// Adds one cluster's record of `(service, version, first seen)`.
    pub fn record_cluster<'a>(
        &mut self,
        environment: &str,
        seen: impl IntoIterator<Item = (&'a str, &'a str, Timestamp)> + Clone,
    ) {
        // The cluster's record begins with its first snapshot.
        let Some(since) = seen.clone().into_iter().map(|(_, _, at)| at).min() else {
            return;
        };
        let watched = self.watched_since.entry(environment.to_owned()).or_insert(since);
        *watched = (*watched).min(since);
        let earliest = |map: &mut HashMap<Key, HashMap<String, Timestamp>>,
                        service: &str,
                        version: &str,
                        at| {
            let versions = map.entry((environment.to_owned(), service.to_owned())).or_default();
            let first = versions.entry(version.to_owned()).or_insert(at);
            *first = (*first).min(at);
        };
        for (service, version, at) in seen {
            if at > since {
                earliest(&mut self.deployed, service, version, at);
            } else {
                self.found_at_start.insert((service.to_owned(), version.to_owned()));
            }
            earliest(&mut self.first_seen, service, version, at);
        }
    }

    /// Whether `service` ran `version` in the column `earlier` before the
    /// column `later` took it (`runs_now`: `earlier` runs it now). A later
    /// column was seen taking a version that an earlier column, watched
    /// since before then, never ran: `Never`. A version some cluster
    /// already ran at its first snapshot may have gone through the earlier
    /// columns before the record began, so it is not judged: a fleet's first
    /// snapshots and the promotions after them raise no false alarms.
    pub fn ran_before(
        &self,
        earlier: &str,
        runs_now: bool,
        later: &str,
        service: &str,
        version: &str,
    ) -> Ran {
        let seen = Self::get(&self.first_seen, earlier, service, version);
        if runs_now || seen.is_some() {
            return Ran::Yes { since: seen };
        }
        if self.found_at_start.contains(&(service.to_owned(), version.to_owned())) {
            return Ran::Unknown;
        }
        let deployed = Self::get(&self.deployed, later, service, version);
        match (self.watched_since.get(earlier), deployed) {
            (Some(watched), Some(deployed)) if *watched < deployed => {
                Ran::Never { since: deployed }
            }
            _ => Ran::Unknown,
        }
    }

    /// When `service` first ran `version` in the column `environment`.
    pub fn first_seen(&self, environment: &str, service: &str, version: &str) -> Option<Timestamp> {
        Self::get(&self.first_seen, environment, service, version)
    }

    /// Every version `service` ran in the column `environment`, with when
    /// it first did.
    pub fn versions(&self, environment: &str, service: &str) -> Vec<(&str, Timestamp)> {
        let key = (environment.to_owned(), service.to_owned());
        let versions = self.first_seen.get(&key).into_iter().flatten();
        versions.map(|(version, at)| (version.as_str(), *at)).collect()
    }

    /// When the record of the column `environment` begins.
    pub fn watched_since(&self, environment: &str) -> Option<Timestamp> {
        self.watched_since.get(environment).copied()
    }

    fn get(
        map: &HashMap<Key, HashMap<String, Timestamp>>,
        environment: &str,
        service: &str,
        version: &str,
    ) -> Option<Timestamp> {
        // The key is owned; a lookup per cell version is cheap next to the
        // matrix it guards.
        let key = (environment.to_owned(), service.to_owned());
        map.get(&key)?.get(version).copied()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    pub environment: String,
    /// The worst of its clusters'.
    pub freshness: Freshness,
    pub clusters: Vec<ClusterFreshness>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterFreshness {
    pub cluster: String,
    pub freshness: Freshness,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    /// `registry/repository:tag`.
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    pub cluster: String,
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
    pub version: String,
    /// Where the version came from (`tag of container server`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version_from: String,
    pub ready: u32,
    pub desired: u32,
    pub rolling: bool,
    pub changed_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub versions: Vec<String>,
    pub images: Vec<ImageView>,
    pub placements: Vec<Placement>,
    pub ready: u32,
    pub desired: u32,
    pub rolling: bool,
    pub last_change: Timestamp,
    pub freshness: Freshness,
    /// Which of its column's clusters the placements are on, so that a
    /// cached matrix gets current freshness without being rebuilt.
    #[serde(skip)]
    pub clusters: Vec<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flags {
    pub consistent: bool,
    pub drift: bool,
    pub mixed: bool,
    pub digest_drift: bool,
    pub promotion_order_broken: bool,
    pub rolling: bool,
    pub stale: bool,
}

impl Flags {
    /// Each flag's name, as the `flag` filter and CSV exports spell it.
    pub const NAMES: [&str; 7] =
        ["consistent", "drift", "mixed", "digestDrift", "promotionOrderBroken", "rolling", "stale"];

    /// Whether the flag `name` is set (an unknown name never is).
    pub fn has(&self, name: &str) -> bool {
        match name {
            "consistent" => self.consistent,
            "drift" => self.drift,
            "mixed" => self.mixed,
            "digestDrift" => self.digest_drift,
            "promotionOrderBroken" => self.promotion_order_broken,
            "rolling" => self.rolling,
            "stale" => self.stale,
            _ => false,
        }
    }

    /// The names of the flags set, space-separated.
    pub fn names(&self) -> String {
        Self::NAMES.iter().filter(|n| self.has(n)).copied().collect::<Vec<_>>().join(" ")
    }

    /// Anything a release team should look at.
    pub fn is_problem(&self) -> bool {
        self.drift || self.mixed || self.digest_drift || self.promotion_order_broken || self.stale
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub service: String,
    /// One per column, `null` where the service does not run.
    pub cells: Vec<Option<Cell>>,
    pub flags: Flags,
    /// The labels of the service's first workload (in column order): what
    /// a policy override's selector is matched against.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub services: u32,
    pub consistent: u32,
    pub drift: u32,
    pub mixed: u32,
    pub digest_drift: u32,
    pub promotion_order_broken: u32,
    pub rolling: u32,
    pub stale: u32,
}

impl Summary {
    pub fn of(flags: impl IntoIterator<Item = Flags>) -> Self {
        let mut summary = Self::default();
        for f in flags {
            summary.services += 1;
            summary.consistent += u32::from(f.consistent);
            summary.drift += u32::from(f.drift);
            summary.mixed += u32::from(f.mixed);
            summary.digest_drift += u32::from(f.digest_drift);
            summary.promotion_order_broken += u32::from(f.promotion_order_broken);
            summary.rolling += u32::from(f.rolling);
            summary.stale += u32::from(f.stale);
        }
        summary
    }
}

/// The columns' freshness, in column order.
pub fn columns(data: &[ColumnData]) -> Vec<Column> {
    data.iter()
        .map(|column| {
            let clusters: Vec<ClusterFreshness> = column
                .clusters
                .iter()
                .map(|c| ClusterFreshness {
                    cluster: c.name.clone(),
                    freshness: c.freshness.clone(),
                })
                .collect();
            let freshness =
                clusters.iter().map(|c| c.freshness.clone()).reduce(Freshness::worst).unwrap_or(
                    Freshness {
                        last_success: None,
                        age_seconds: None,
                        last_attempt_failed: false,
                        stale: true,
                    },
                );
            Column { environment: column.environment.clone(), freshness, clusters }
        })
        .collect()
}

/// The images a workload runs: what its pods report (with the digests the
/// kubelet resolved), else its pod template's.
fn running_images(workload: &Workload) -> Vec<ImageView> {
    if !workload.pods.images.is_empty() {
        return workload
            .pods
            .images
            .iter()
            .map(|i| {
                let parsed = ImageRef::parse(&i.image);
                ImageView {
                    image: parsed.name_and_tag(),
                    digest: i.digest.clone().or(parsed.digest),
                }
            })
            .collect();
    }
    workload
        .images
        .iter()
        .map(|c| ImageView { image: c.image.name_and_tag(), digest: c.image.digest.clone() })
        .collect()
}

fn cell(placed: &[(usize, &ClusterData, &Workload)]) -> Option<Cell> {
    let mut versions = BTreeSet::new();
    let mut images = BTreeSet::new();
    let mut placements = Vec::new();
    let mut freshness: Option<Freshness> = None;
    let mut clusters_seen = BTreeSet::new();
    for (index, cluster, workload) in placed {
        versions.insert(workload.version.clone());
        images.extend(running_images(workload));
        if clusters_seen.insert(*index) {
            freshness = Some(match freshness {
                None => cluster.freshness.clone(),
                Some(f) => f.worst(cluster.freshness.clone()),
            });
        }
        placements.push(Placement {
            cluster: cluster.name.clone(),
            namespace: workload.namespace.clone(),
            kind: workload.kind,
            name: workload.name.clone(),
            version: workload.version.clone(),
            version_from: workload.version_from.clone(),
            ready: workload.replicas.ready,
            desired: workload.replicas.desired,
            rolling: workload.rolling,
            changed_at: workload.changed_at,
        });
    }
    let last_change = placements.iter().map(|p| p.changed_at).max()?;
    Some(Cell {
        versions: versions.into_iter().collect(),
        images: images.into_iter().collect(),
        ready: placements.iter().map(|p| p.ready).sum(),
        desired: placements.iter().map(|p| p.desired).sum(),
        rolling: placements.iter().any(|p| p.rolling),
        placements,
        last_change,
        freshness: freshness?,
        clusters: clusters_seen.into_iter().collect(),
    })
}

/// Every service of every column, sorted by name, with its flags.
pub fn rows(data: &[ColumnData], sightings: &Sightings) -> Vec<Row> {
    // service -> column -> placements
    type Placed<'a> = Vec<Vec<(usize, &'a ClusterData, &'a Workload)>>;
    let mut by_service: BTreeMap<&str, Placed<'_>> = BTreeMap::new();
    for (i, column) in data.iter().enumerate() {
        for (k, cluster) in column.clusters.iter().enumerate() {
            for workload in &cluster.workloads {
                let slots = by_service
                    .entry(workload.service.as_str())
                    .or_insert_with(|| vec![Vec::new(); data.len()]);
                slots[i].push((k, cluster, workload.as_ref()));
            }
        }
    }
    by_service
        .into_iter()
        .map(|(service, slots)| {
            let cells: Vec<Option<Cell>> = slots.iter().map(|placed| cell(placed)).collect();
            let flags = flags(service, data, &cells, sightings);
            let labels =
                slots.iter().flatten().next().map(|(_, _, w)| w.labels.clone()).unwrap_or_default();
            Row { service: service.to_owned(), cells, flags, labels }
        })
        .collect()
}

/// Whether any cell's data is stale, per the current freshness of each
/// column's clusters (`freshness[column][cluster]`).
pub fn is_stale(row: &Row, freshness: &[Vec<Freshness>]) -> bool {
    row.cells.iter().zip(freshness).any(|(cell, clusters)| {
        cell.as_ref()
            .is_some_and(|c| c.clusters.iter().any(|&k| clusters.get(k).is_none_or(|f| f.stale)))
    })
}

/// A row as the API answers it: borrowed from a (possibly cached) row,
/// with each cell's freshness and the stale flag as of now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Row)]
pub struct RowView<'a> {
    pub service: &'a str,
    pub cells: Vec<Option<CellView<'a>>>,
    pub flags: Flags,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Cell)]
pub struct CellView<'a> {
    pub versions: &'a [String],
    pub images: &'a [ImageView],
    pub placements: &'a [Placement],
    pub ready: u32,
    pub desired: u32,
    pub rolling: bool,
    pub last_change: Timestamp,
    pub freshness: Freshness,
}

/// The row with freshness from `freshness[column][cluster]`.
pub fn view<'a>(row: &'a Row, freshness: &[Vec<Freshness>]) -> RowView<'a> {
    let cells = row
        .cells
        .iter()
        .zip(freshness)
        .map(|(cell, clusters)| {
            let cell = cell.as_ref()?;
            let worst = cell
                .clusters
                .iter()
                .filter_map(|&k| clusters.get(k).cloned())
                .reduce(Freshness::worst)
                .unwrap_or_else(|| cell.freshness.clone());
            Some(CellView {
                versions: &cell.versions,
                images: &cell.images,
                placements: &cell.placements,
                ready: cell.ready,
                desired: cell.desired,
                rolling: cell.rolling,
                last_change: cell.last_change,
                freshness: worst,
            })
        })
        .collect();
    RowView {
        service: &row.service,
        cells,
        flags: Flags { stale: is_stale(row, freshness), ..row.flags },
    }
}

fn flags(
    service: &str,
    data: &[ColumnData],
    cells: &[Option<Cell>],
    sightings: &Sightings,
) -> Flags {
    let present: Vec<(usize, &Cell)> =
        cells.iter().enumerate().filter_map(|(i, c)| c.as_ref().map(|c| (i, c))).collect();
    let mixed = present.iter().any(|(_, c)| c.versions.len() > 1);
    let all_versions: BTreeSet<&str> =
        present.iter().flat_map(|(_, c)| c.versions.iter().map(String::as_str)).collect();
    let drift = all_versions.len() > 1;
    let mut digests: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (_, c) in &present {
        for image in &c.images {
            if let Some(digest) = &image.digest {
                digests.entry(image.image.as_str()).or_default().insert(digest.as_str());
            }
        }
    }
    let digest_drift = digests.values().any(|d| d.len() > 1);
    let promotion_order_broken = present.iter().any(|(later, cell)| {
        cell.versions.iter().any(|version| {
            present.iter().filter(|(earlier, _)| earlier < later).any(|(earlier, earlier_cell)| {
                let runs = earlier_cell.versions.iter().any(|v| v == version);
                let (earlier, later) = (&data[*earlier].environment, &data[*later].environment);
                matches!(
                    sightings.ran_before(earlier, runs, later, service, version),
                    Ran::Never { .. }
                )
            })
        })
    });
    Flags {
        consistent: !(drift || mixed || digest_drift || promotion_order_broken),
        drift,
        mixed,
        digest_drift,
        promotion_order_broken,
        rolling: present.iter().any(|(_, c)| c.rolling),
        stale: present.iter().any(|(_, c)| c.freshness.stale),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shared::model::{
        ContainerImage, PodSummary, Replicas, RunningImage, VersionSource, Workload,
    };

    use super::*;

    fn fresh() -> Freshness {
        Freshness {
            last_success: None,
            age_seconds: Some(10),
            last_attempt_failed: false,
            stale: false,
        }
    }

    fn workload(cluster: &str, service: &str, version: &str, digest: &str) -> Arc<Workload> {
        let image = ImageRef::parse(&format!("registry.example/shop/{service}:{version}"));
        Arc::new(Workload {
            cluster: cluster.parse().unwrap(),
            environment: "env".parse().unwrap(),
            namespace: "shop".into(),
            kind: WorkloadKind::Deployment,
            name: service.into(),
            service: service.into(),
            version: version.into(),
            version_source: VersionSource::Label,
            version_from: String::new(),
            labels: BTreeMap::new(),
            images: vec![ContainerImage {
                container: "app".into(),
                role: Default::default(),
                image,
            }],
            replicas: Replicas { desired: 2, ready: 2, available: Some(2), updated: 2 },
            pods: PodSummary {
                total: 2,
                running: 2,
                images: vec![RunningImage {
                    container: "app".into(),
                    image: format!("registry.example/shop/{service}:{version}"),
                    digest: Some(format!("sha256:{digest}")),
                }],
                ..PodSummary::default()
            },
            rolling: false,
            created_at: None,
            changed_at: "2026-11-20T10:00:00Z".parse().unwrap(),
            omitted: Default::default(),
        })
    }

    fn column(environment: &str, clusters: Vec<(&str, Vec<Arc<Workload>>)>) -> ColumnData {
        ColumnData {
            environment: environment.into(),
            clusters: clusters
                .into_iter()
                .map(|(name, workloads)| ClusterData {
                    name: name.into(),
                    freshness: fresh(),
                    workloads,
                })
                .collect(),
        }
    }

    /// Columns of clusters of workloads.
    type Layout<'a> = Vec<(&'a str, Vec<(&'a str, Vec<Arc<Workload>>)>)>;

    fn at(hour: u32) -> Timestamp {
        format!("2026-11-20T{hour:02}:00:00Z").parse().unwrap()
    }

    /// One cluster's record: `(service, version, hour first seen)`.
    type Record<'a> = &'a [(&'a str, &'a str, u32)];

    /// Records of one cluster each, by environment.
    fn sightings(records: &[(&str, Record<'_>)]) -> Sightings {
        let mut sightings = Sightings::default();
        for (environment, seen) in records {
            sightings.record_cluster(environment, seen.iter().map(|&(s, v, h)| (s, v, at(h))));
        }
        sightings
    }

    /// Both columns watched since 08:00; cart 1.2.0 and search 3.0.0 went
    /// through stg before stg moved on; prod was seen taking what it runs at
    /// 09:00.
    fn matrix(columns: Layout<'_>) -> Vec<Row> {
        let data: Vec<ColumnData> = columns.into_iter().map(|(e, c)| column(e, c)).collect();
        let mut sightings = Sightings::default();
        for column in &data {
            let hour = if column.environment == "prod" { 9 } else { 8 };
            let mut seen: Vec<(&str, &str, Timestamp)> = column
                .clusters
                .iter()
                .flat_map(|c| &c.workloads)
                .map(|w| (w.service.as_str(), w.version.as_str(), at(hour)))
                .collect();
            if column.environment == "stg" {
                seen.extend([("cart", "1.2.0", at(8)), ("search", "3.0.0", at(8))]);
            } else {
                seen.push(("cart", "1.1.0", at(8)));
            }
            sightings.record_cluster(&column.environment, seen);
        }
        rows(&data, &sightings)
    }

    #[test]
    fn the_same_version_everywhere_is_consistent() {
        let rows = matrix(vec![
            ("stg", vec![("stg-a", vec![workload("stg-a", "checkout", "2.0.0", "aa")])]),
            ("prod", vec![("prod-a", vec![workload("prod-a", "checkout", "2.0.0", "aa")])]),
        ]);
        assert_eq!(rows.len(), 1);
        assert!(rows[0].flags.consistent, "{:?}", rows[0].flags);
        let cell = rows[0].cells[1].as_ref().unwrap();
        assert_eq!((cell.ready, cell.desired, cell.versions.len()), (2, 2, 1));
        assert_eq!(cell.images[0].digest.as_deref(), Some("sha256:aa"));
    }

    #[test]
    fn each_flag_shows_for_its_case() {
        let rows = matrix(vec![
            (
                "stg",
                vec![(
                    "stg-a",
                    vec![
                        workload("stg-a", "cart", "1.3.0", "c1"),
                        workload("stg-a", "billing", "1.0.0", "b1"),
                        workload("stg-a", "ledger", "4.9.0", "l1"),
                        workload("stg-a", "search", "3.1.0", "s1"),
                    ],
                )],
            ),
            (
                "prod",
                vec![
                    (
                        "prod-a",
                        vec![
                            workload("prod-a", "cart", "1.2.0", "c0"),
                            workload("prod-a", "billing", "1.0.0", "b2"),
                            workload("prod-a", "ledger", "5.0.0", "l2"),
                            workload("prod-a", "search", "3.1.0", "s1"),
                        ],
                    ),
                    ("prod-b", vec![workload("prod-b", "search", "3.0.0", "s0")]),
                ],
            ),
        ]);
        let flags: BTreeMap<&str, Flags> =
            rows.iter().map(|r| (r.service.as_str(), r.flags)).collect();
        assert!(flags["cart"].drift && !flags["cart"].mixed && !flags["cart"].consistent);
        assert!(
            !flags["cart"].promotion_order_broken,
            "prod runs the version stg ran before: behind, not out of order"
        );
        assert!(flags["billing"].digest_drift && !flags["billing"].drift);
        assert!(flags["ledger"].promotion_order_broken && flags["ledger"].drift);
        assert!(flags["search"].mixed && flags["search"].drift);
        let summary = Summary::of(rows.iter().map(|r| r.flags));
        assert_eq!(
            (
                summary.services,
                summary.drift,
                summary.mixed,
                summary.digest_drift,
                summary.promotion_order_broken,
                summary.consistent
            ),
            (4, 3, 1, 1, 1, 0)
        );
        let search = rows.iter().find(|r| r.service == "search").unwrap();
        let prod = search.cells[1].as_ref().unwrap();
        assert_eq!(prod.versions, ["3.0.0", "3.1.0"]);
        assert_eq!(prod.placements.len(), 2);
    }

    #[test]
    fn sightings_of_an_earlier_column_keep_the_promotion_order() {
        let data = vec![
            column("stg", vec![("stg-a", vec![workload("stg-a", "ledger", "5.1.0", "x")])]),
            column("prod", vec![("prod-a", vec![workload("prod-a", "ledger", "5.0.0", "y")])]),
        ];
        let broken = |sightings: &Sightings| rows(&data, sightings)[0].flags.promotion_order_broken;
        let found_at_start =
            sightings(&[("stg", &[("ledger", "5.1.0", 8)]), ("prod", &[("ledger", "5.0.0", 8)])]);
        assert!(!broken(&found_at_start), "both found by first snapshots: the past is unknown");
        let found_later =
            sightings(&[("stg", &[("ledger", "5.1.0", 8)]), ("prod", &[("ledger", "5.0.0", 9)])]);
        assert!(!broken(&found_later), "prod's first snapshot came later: still unknown");
        let deployed = sightings(&[
            ("stg", &[("ledger", "5.1.0", 8)]),
            ("prod", &[("ledger", "4.0.0", 8), ("ledger", "5.0.0", 9)]),
        ]);
        assert!(broken(&deployed), "prod was seen taking 5.0.0, which stg never ran");
        let through_stg = sightings(&[
            ("stg", &[("ledger", "5.0.0", 7), ("ledger", "5.1.0", 8)]),
            ("prod", &[("ledger", "4.0.0", 8), ("ledger", "5.0.0", 9)]),
        ]);
        assert!(!broken(&through_stg), "5.0.0 ran in stg before");
        let stg_watched_later = sightings(&[
            ("stg", &[("ledger", "5.1.0", 10)]),
            ("prod", &[("ledger", "4.0.0", 8), ("ledger", "5.0.0", 9)]),
        ]);
        assert!(!broken(&stg_watched_later), "stg's record began after prod took 5.0.0");
        let found_elsewhere_at_start = sightings(&[
            ("stg", &[("ledger", "5.1.0", 8)]),
            ("qa", &[("ledger", "5.0.0", 8)]),
            ("prod", &[("ledger", "4.0.0", 8), ("ledger", "5.0.0", 9)]),
        ]);
        assert!(
            !broken(&found_elsewhere_at_start),
            "5.0.0 was about when the record began: it may have gone through stg before"
        );
    }

    #[test]
    fn a_service_missing_from_a_column_is_an_empty_cell_and_stale_data_is_flagged() {
        let mut data = vec![
            column("dev", vec![("dev-a", vec![])]),
            column("prod", vec![("prod-a", vec![workload("prod-a", "orders", "7.1.0", "o")])]),
        ];
        data[1].clusters[0].freshness.stale = true;
        data[1].clusters[0].freshness.last_attempt_failed = true;
        let rows = rows(&data, &Sightings::default());
        assert!(rows[0].cells[0].is_none());
        assert!(rows[0].flags.stale && rows[0].flags.consistent);
        assert!(rows[0].cells[1].as_ref().unwrap().freshness.last_attempt_failed);
        let columns = columns(&data);
        assert!(columns[1].freshness.stale && !columns[0].freshness.stale);
    }
}
