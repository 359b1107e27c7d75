//! A fleet builder: the environments and clusters of the product brief,
//! N services with realistic names, labels, images and digests, and the
//! situations a release dashboard exists to show — versions that lag along
//! the promotion path, a rollout caught half-way, a tag pushed twice with
//! different content, pods that are pending or failed. Deterministic for a
//! given seed and tick, so tests can name what they expect; the tick moves
//! releases forward for the living demo.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::objects::{ClusterObjects, Image, PodPhase, WorkloadKind, WorkloadSpec};

pub const REGISTRY: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
/// The label the brief's services of interest carry.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
pub const COMPONENT: &str = "dab";

/// Which kind of cluster a service runs in, read from the cluster's name
/// (`eks-<flavour>-…`), as the brief's naming does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flavour {
    Microservices,
    Corda,
    Dmz,
    Shared,
}

impl Flavour {
    fn of_cluster(name: &str) -> Self {
        if name.contains("corda") {
            Self::Corda
        } else if name.contains("dmz") {
            Self::Dmz
        } else if name.starts_with("eks-sh-") {
            Self::Shared
        } else {
            Self::Microservices
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Self::Microservices => "dab",
            Self::Corda => "corda",
            Self::Dmz => "dmz",
            Self::Shared => "shared-services",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetEnvironment {
    pub name: String,
    pub clusters: Vec<String>,
    /// Position on the promotion path: 0 = first (loe), 2 = last (prod).
    pub stage: u32,
    /// Customer-solution environments run a subset of the services.
    pub custsol: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub flavour: Flavour,
    pub custsol: bool,
    /// Ticks between two releases of the service.
    cadence: u64,
    /// Ticks a release waits in each stage before the next stage takes it.
    delay: u64,
    /// Where in its cadence the service is at tick 0, so releases spread.
    phase: u64,
    base_minor: u64,
}

#[derive(Debug, Clone)]
pub struct FleetBuilder {
    environments: Vec<FleetEnvironment>,
    services: usize,
    seed: u64,
}

/// The brief's environment file.
const BRIEF: &[(&str, u32, bool, &[&str])] = &[
    (
        "dab-platform-loe",
        0,
        false,
        &[
            "eks-microservices-dab-dev",
            "eks-microservices-dab-lit",
            "eks-dmz-dab-shared",
            "eks-sh-dab-shared",
            "eks-corda-dab-dev",
        ],
    ),
    (
        "dab-platform-stg",
        1,
        false,
        &["eks-microservices-dab-stg", "eks-corda-dab-stg", "eks-dmz-dab-stg"],
    ),
    (
        "dab-platform-prod",
        2,
        false,
        &["eks-microservices-dab-prod", "eks-corda-dab-prod", "eks-dmz-dab-prod"],
    ),
    ("dab-custsol-loe", 0, true, &["eks-microservices-cs-dev", "eks-dmz-cs-dev"]),
    ("dab-custsol-staging", 1, true, &["eks-microservices-dab-csstg", "eks-dmz-dab-csstg"]),
    ("dab-custsol-prod", 2, true, &["eks-microservices-dab-csprod", "eks-dmz-dab-csprod"]),
];

const WORDS: &[&str] = &[
    "payments",
    "ledger",
    "accounts",
    "identity",
    "notifications",
    "onboarding",
    "pricing",
    "settlement",
    "clearing",
    "custody",
    "reporting",
    "audit",
    "risk",
    "limits",
    "fx",
    "statements",
    "cards",
    "transfers",
    "compliance",
    "kyc",
    "documents",
    "scheduler",
    "gateway",
    "search",
    "profiles",
    "wallets",
    "rates",
    "reconciliation",
    "billing",
    "consents",
];
const SUFFIXES: &[&str] = &["api", "worker", "service", "adapter"];

impl FleetBuilder {
    /// The brief's six environments and seventeen clusters, with `services` services.
    pub fn brief(services: usize) -> Self {
        let environments = BRIEF
            .iter()
            .map(|(name, stage, custsol, clusters)| FleetEnvironment {
                name: (*name).to_owned(),
                clusters: clusters.iter().map(|c| (*c).to_owned()).collect(),
                stage: *stage,
                custsol: *custsol,
            })
            .collect();
        Self { environments, services, seed: 7 }
    }

    /// A custom fleet: `(environment, stage, clusters)`.
    pub fn custom(environments: Vec<FleetEnvironment>, services: usize) -> Self {
        Self { environments, services, seed: 7 }
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    pub fn build(self) -> Fleet {
        let flavours = [
            Flavour::Microservices,
            Flavour::Microservices,
            Flavour::Microservices,
            Flavour::Dmz,
            Flavour::Corda,
            Flavour::Shared,
        ];
        let services = (0..self.services)
            .map(|i| {
                let word = WORDS[i % WORDS.len()];
                let suffix = SUFFIXES[(i / WORDS.len()) % SUFFIXES.len()];
                let mut rng = Rng::new(self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9));
                let cadence = match i {
                    scenario::RETAGGED_SERVICE => u64::MAX,
                    _ => 4 + rng.below(9),
                };
                // Most services move through the stages within a tick or
                // two; one in three waits up to a whole release per stage.
                let delay = match i {
                    scenario::DRIFTING_SERVICE | scenario::STUCK_SERVICE => cadence,
                    _ if rng.below(3) == 0 => rng.below(cadence.min(12) + 1),
                    _ => rng.below(2),
                };
                Service {
                    name: format!("{word}-{suffix}"),
                    flavour: flavours[i % flavours.len()],
                    custsol: i % 3 == 0,
                    cadence,
                    delay,
                    phase: rng.below(cadence.min(12)),
                    base_minor: 1 + rng.below(12),
                }
            })
            .collect();
        Fleet { environments: self.environments, services, seed: self.seed }
    }
}

#[derive(Debug, Clone)]
pub struct Fleet {
    pub environments: Vec<FleetEnvironment>,
    pub services: Vec<Service>,
    seed: u64,
}

/// The situations the living demo goes through, by tick. Services are
/// named by index; every one here is a platform service (index not a
/// multiple of 3) of the microservices flavour unless said otherwise.
pub mod scenario {
    use std::ops::Range;

    /// Runs a release ahead in each earlier stage at every tick: drift.
    pub const DRIFTING_SERVICE: usize = 1;
    /// Its stg rollout gets stuck: new pods stay pending, old ones serve.
    pub const STUCK_SERVICE: usize = 2;
    pub const STUCK: Range<u64> = 2..14;
    /// Never released again; its prod image is re-pushed under the same tag.
    pub const RETAGGED_SERVICE: usize = 7;
    pub const RETAG_FROM: u64 = 3;
    /// Gets a hotfix straight into prod, skipping stg: promotion order.
    pub const HOTFIX_SERVICE: usize = 8;
    pub const HOTFIX_FROM: u64 = 5;
    /// This cluster refuses connections for a while: its data goes stale.
    pub const UNREACHABLE_CLUSTER: &str = "eks-corda-dab-prod";
    pub const UNREACHABLE: Range<u64> = 4..8;
}

impl Fleet {
    pub fn cluster_names(&self) -> impl Iterator<Item = (&FleetEnvironment, &str)> {
        self.environments.iter().flat_map(|e| e.clusters.iter().map(move |c| (e, c.as_str())))
    }

    /// The release of `service` that runs at `stage` at `tick`: the first
    /// stage takes a release every `cadence` ticks and each later stage
    /// takes it `delay` ticks after the one before, so every version passes
    /// through every stage in order (at tick 0 a stage is at most one
    /// release behind the one before).
    pub fn release(&self, service: usize, stage: u32, tick: u64) -> String {
        let s = &self.services[service];
        // Tick 0 is some way into the service's life, so stages can lag.
        let at = (tick + 100 + s.phase).saturating_sub(u64::from(stage) * s.delay);
        let index = at.checked_div(s.cadence).unwrap_or(0).min(u64::from(u32::MAX));
        version(index, s.base_minor, 0)
    }

    /// What `service` runs at `stage` and `tick`, scenarios included.
    fn running(&self, service: usize, stage: u32, tick: u64) -> String {
        let normal = self.release(service, stage, tick);
        if service == scenario::HOTFIX_SERVICE && stage == 2 && tick >= scenario::HOTFIX_FROM {
            let patched = self.release(service, stage, scenario::HOTFIX_FROM);
            if normal == patched {
                // A hotfix build of the version prod ran, until the next
                // regular release reaches prod.
                let s = &self.services[service];
                let at = (scenario::HOTFIX_FROM + 100 + s.phase).saturating_sub(2 * s.delay);
                return version(at / s.cadence, s.base_minor, 5);
            }
        }
        if service == scenario::STUCK_SERVICE && stage == 1 && scenario::STUCK.contains(&tick) {
            // The rollout stuck at the start keeps running the new version's
            // label while the old pods serve.
            return self.release(service, 0, scenario::STUCK.start);
        }
        normal
    }

    pub fn image(&self, service: usize, version: &str, retag: bool) -> Image {
        let repository = format!("dab/{}", self.services[service].name);
        Image::new(REGISTRY, &repository, version, retag.then_some("rebuilt"))
    }

    /// Everything `cluster` serves at `tick`.
    pub fn cluster_objects(&self, cluster: &str, tick: u64) -> ClusterObjects {
        let mut objects = ClusterObjects::new(33 + (cluster.len() % 2) as u32);
        let Some(env) = self.environments.iter().find(|e| e.clusters.iter().any(|c| c == cluster))
        else {
            return objects;
        };
        let flavour = Flavour::of_cluster(cluster);
        let mut rng = Rng::new(self.seed ^ hash(cluster));
        let nodes: Vec<String> = (0..3 + rng.below(3))
            .map(|i| {
                format!("ip-10-0-{}-{}.eu-west-1.compute.internal", 10 + i, 20 + rng.below(200))
            })
            .collect();
        let epoch = Timestamp::from_second(1_760_000_000).unwrap_or(Timestamp::UNIX_EPOCH);

        for (i, service) in self.services.iter().enumerate() {
            if service.flavour != flavour || (env.custsol && !service.custsol) {
                continue;
            }
            let version = self.running(i, env.stage, tick);
            let retag =
                i == scenario::RETAGGED_SERVICE && env.stage == 2 && tick >= scenario::RETAG_FROM;
            let kind = if flavour == Flavour::Corda {
                WorkloadKind::StatefulSet
            } else {
                WorkloadKind::Deployment
            };
            let replicas = 2 + rng.below(2) as u32 + u32::from(env.stage == 2);
            let stuck =
                i == scenario::STUCK_SERVICE && env.stage == 1 && scenario::STUCK.contains(&tick);
            let phases = (0..replicas)
                .map(|_| match rng.below(60) {
                    _ if stuck => PodPhase::Pending,
                    0 => PodPhase::Pending,
                    1 => PodPhase::Failed,
                    _ => PodPhase::Running,
                })
                .collect();
            let updated =
                epoch + SignedDuration::from_secs((tick * 120 + rng.below(86_400)) as i64);
            let mut spec = WorkloadSpec::deployment(
                flavour.namespace(),
                &service.name,
                self.image(i, &version, retag),
            )
            .kind(kind)
            .label("app.kubernetes.io/version", &version)
            .label(COMPONENT_LABEL, COMPONENT)
            .label(
                "app.kubernetes.io/part-of",
                if service.custsol { "dab-custsol" } else { "dab-platform" },
            )
            .label("app.kubernetes.io/managed-by", "Helm")
            .replicas(replicas)
            .phases(phases)
            .times(epoch, updated);
            if i % 4 == 0 {
                spec = spec.sidecar(Image::new(
                    "public.ecr.aws",
                    "aws-observability/aws-otel-collector",
                    "v0.43.1",
                    None,
                ));
            }
            if stuck {
                let previous = self.release(i, 1, scenario::STUCK.start);
                if previous != version {
                    // One new pod never becomes ready; the old ones serve.
                    spec = spec.rolling_from(self.image(i, &previous, false), replicas - 1);
                }
            }
            spec.restarts = rng.below(4) as u32;
            objects.add_workload(&spec, &nodes);
        }

        // Platform add-ons every cluster runs: not of the dab component, so
        // label selectors have something to leave out.
        for (name, namespace, tag) in [
            ("aws-node", "kube-system", "v1.20.4"),
            ("kube-proxy", "kube-system", "v1.33.3-eksbuild.6"),
        ] {
            let image = Image::new(
                "602401143452.dkr.ecr.eu-west-1.amazonaws.com",
                &format!("eks/{name}"),
                tag,
                None,
            );
            let spec = WorkloadSpec::deployment(namespace, name, image)
                .kind(WorkloadKind::DaemonSet)
                .label(COMPONENT_LABEL, "platform")
                .label("app.kubernetes.io/version", tag);
            objects.add_workload(&spec, &nodes);
        }
        let image = Image::new("registry.k8s.io", "coredns/coredns", "v1.11.4", None);
        let spec = WorkloadSpec::deployment("kube-system", "coredns", image)
            .label(COMPONENT_LABEL, "platform");
        objects.add_workload(&spec, &nodes);
        objects
    }

    /// Every cluster's objects at `tick`, by cluster name.
    pub fn all_objects(&self, tick: u64) -> BTreeMap<String, ClusterObjects> {
        self.cluster_names().map(|(_, c)| (c.to_owned(), self.cluster_objects(c, tick))).collect()
    }
}

/// `major.minor.patch` of a release index; `hotfix` adds to the patch a
/// number no regular release uses.
fn version(index: u64, base_minor: u64, hotfix: u64) -> String {
    format!("{}.{}.{}", 1 + index / 20, base_minor + (index % 20) / 5, index % 5 + hotfix)
}

fn hash(text: &str) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    text.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64: a tiny deterministic generator, enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_brief_fleet_has_its_environments_and_clusters() {
        let fleet = FleetBuilder::brief(60).build();
        assert_eq!(fleet.environments.len(), 6);
        assert_eq!(fleet.cluster_names().count(), 17);
        let names: BTreeSet<&str> = fleet.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), 60, "service names are unique");
    }

    #[test]
    fn every_cluster_serves_its_flavour_of_services() {
        let fleet = FleetBuilder::brief(60).build();
        let objects = fleet.all_objects(0);
        let corda = &objects["eks-corda-dab-prod"];
        assert!(!corda.stateful_sets.is_empty());
        assert!(
            corda
                .deployments
                .iter()
                .all(|d| d.metadata.namespace.as_deref() == Some("kube-system"))
        );
        let micro = &objects["eks-microservices-dab-stg"];
        assert!(micro.deployments.len() > 10);
        assert!(micro.pods.len() > micro.deployments.len());
        assert!(objects.values().all(|o| o.daemon_sets.len() == 2));
    }

    #[test]
    fn versions_lag_along_the_promotion_path() {
        let fleet = FleetBuilder::brief(60).build();
        let differing =
            (0..60).filter(|&i| fleet.release(i, 0, 0) != fleet.release(i, 2, 0)).count();
        assert!(differing > 5, "prod lags loe for some services: {differing}");
        assert!(differing < 40, "but most are in step: {differing}");
        let drifting = scenario::DRIFTING_SERVICE;
        assert!((0..30).all(|t| fleet.release(drifting, 0, t) != fleet.release(drifting, 2, t)));
        assert_ne!(fleet.release(0, 0, 0), fleet.release(0, 0, 1000), "releases move with time");
    }

    /// Every version a stage takes after tick 0 went through the stage
    /// before it first (or was about at tick 0), except the hotfix: so the
    /// demo shows a broken promotion order for that one service only.
    #[test]
    fn versions_go_through_the_stages_in_order_except_the_hotfix() {
        let fleet = FleetBuilder::brief(60).build();
        for i in 0..60 {
            let at_start: BTreeSet<String> = (0..3).map(|s| fleet.running(i, s, 0)).collect();
            for stage in 1..3 {
                let mut earlier_ran = BTreeSet::new();
                for tick in 0..60 {
                    earlier_ran.insert(fleet.running(i, stage - 1, tick));
                    let version = fleet.running(i, stage, tick);
                    let in_order = earlier_ran.contains(&version) || at_start.contains(&version);
                    let hotfix = i == scenario::HOTFIX_SERVICE
                        && stage == 2
                        && tick >= scenario::HOTFIX_FROM;
                    assert!(in_order || hotfix, "{i} at stage {stage}, tick {tick}: {version}");
                }
            }
        }
        let i = scenario::HOTFIX_SERVICE;
        let hotfix = fleet.running(i, 2, scenario::HOTFIX_FROM);
        assert_ne!(hotfix, fleet.release(i, 2, scenario::HOTFIX_FROM));
        assert!((0..60).all(|t| fleet.running(i, 1, t) != hotfix), "stg never runs {hotfix}");
    }

    fn workload_images<'a>(objects: &'a ClusterObjects, name: &str) -> Vec<&'a str> {
        objects
            .pods
            .iter()
            .filter(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with(name)))
            .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref()?.first())
            .map(|c| c.image_id.as_str())
            .collect()
    }

    #[test]
    fn the_retagged_service_gets_another_digest_in_prod_under_the_same_tag() {
        let fleet = FleetBuilder::brief(60).build();
        let i = scenario::RETAGGED_SERVICE;
        let name = &fleet.services[i].name;
        assert_eq!(fleet.running(i, 1, 10), fleet.running(i, 2, 10), "stg and prod run one tag");
        let digests = |cluster: &str, tick: u64| {
            let objects = fleet.cluster_objects(cluster, tick);
            let images: BTreeSet<String> =
                workload_images(&objects, name).into_iter().map(str::to_owned).collect();
            assert_eq!(images.len(), 1, "{cluster} at {tick}: {images:?}");
            images
        };
        let (stg, prod) = ("eks-microservices-dab-stg", "eks-microservices-dab-prod");
        assert_eq!(digests(stg, 0), digests(prod, 0));
        assert_ne!(digests(stg, scenario::RETAG_FROM), digests(prod, scenario::RETAG_FROM));
    }

    #[test]
    fn the_stuck_rollout_keeps_old_pods_serving_until_it_is_unstuck() {
        let fleet = FleetBuilder::brief(60).build();
        let i = scenario::STUCK_SERVICE;
        let name = &fleet.services[i].name;
        let replica_sets = |tick: u64| {
            let objects = fleet.cluster_objects("eks-microservices-dab-stg", tick);
            objects
                .replica_sets
                .iter()
                .filter(|r| r.metadata.name.as_deref().is_some_and(|n| n.starts_with(name)))
                .filter(|r| r.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) > 0)
                .count()
        };
        assert_eq!(replica_sets(0), 1, "one ReplicaSet with pods; the one before at 0");
        assert_eq!(replica_sets(scenario::STUCK.start), 2, "old and new");
        assert_eq!(replica_sets(scenario::STUCK.end - 1), 2, "still stuck");
        assert_eq!(replica_sets(scenario::STUCK.end), 1);
        let objects = fleet.cluster_objects("eks-microservices-dab-stg", scenario::STUCK.start);
        let deployment = objects
            .deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name.as_str()))
            .unwrap();
        let status = deployment.status.as_ref().unwrap();
        assert_eq!(
            status.ready_replicas,
            deployment.spec.as_ref().unwrap().replicas.map(|r| r - 1)
        );
    }

    #[test]
    fn the_unreachable_cluster_runs_platform_services() {
        let fleet = FleetBuilder::brief(60).build();
        let objects = fleet.cluster_objects(scenario::UNREACHABLE_CLUSTER, 0);
        let platform = objects.stateful_sets.iter().filter(|s| {
            s.metadata.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/part-of"))
                == Some(&"dab-platform".to_owned())
        });
        assert!(platform.count() > 3, "so its staleness shows on the platform dashboard");
    }

    #[test]
    fn the_same_tick_builds_the_same_objects() {
        let a = FleetBuilder::brief(60).build().cluster_objects("eks-dmz-dab-stg", 5);
        let b = FleetBuilder::brief(60).build().cluster_objects("eks-dmz-dab-stg", 5);
        assert_eq!(
            serde_json::to_string(&a.pods).unwrap(),
            serde_json::to_string(&b.pods).unwrap()
        );
    }
}
