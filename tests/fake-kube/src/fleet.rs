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
    /// Releases between promotions differ per service, so lags differ.
    cadence: u64,
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
                Service {
                    name: format!("{word}-{suffix}"),
                    flavour: flavours[i % flavours.len()],
                    custsol: i % 3 == 0,
                    cadence: 2 + rng.below(5),
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

/// Well-known situations at tick 0, for tests and the demo's first screen.
pub mod scenario {
    /// Index of the service caught mid-rollout in the stg environments.
    pub const ROLLING_SERVICE: usize = 3;
    /// Index of the service whose prod image was re-pushed under the same tag.
    pub const RETAGGED_SERVICE: usize = 6;
}

impl Fleet {
    pub fn cluster_names(&self) -> impl Iterator<Item = (&FleetEnvironment, &str)> {
        self.environments.iter().flat_map(|e| e.clusters.iter().map(move |c| (e, c.as_str())))
    }

    /// The release of `service` that runs at `stage` at `tick`: the first
    /// stage gets each release first, later stages lag by a service-specific
    /// number of releases.
    pub fn release(&self, service: usize, stage: u32, tick: u64) -> String {
        let s = &self.services[service];
        let mut rng = Rng::new(self.seed ^ (service as u64) << 8);
        let lag = (0..stage).map(|_| rng.below(3)).sum::<u64>();
        let index = (tick / s.cadence + 10).saturating_sub(lag);
        format!("{}.{}.{}", 1 + index / 20, s.base_minor + (index % 20) / 5, index % 5)
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
            let version = self.release(i, env.stage, tick);
            let retag = i == scenario::RETAGGED_SERVICE && env.stage == 2;
            let kind = if flavour == Flavour::Corda {
                WorkloadKind::StatefulSet
            } else {
                WorkloadKind::Deployment
            };
            let replicas = 1 + rng.below(3) as u32 + u32::from(env.stage == 2);
            let phases = (0..replicas)
                .map(|_| match rng.below(60) {
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
            if i == scenario::ROLLING_SERVICE && env.stage == 1 && spec.replicas >= 2 {
                let previous = self.release(i, 2, tick);
                if previous != version {
                    spec = spec.rolling_from(self.image(i, &previous, false), 1);
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
        assert!(differing > 10, "prod lags loe for many services: {differing}");
        assert!(differing < 60, "but not for all");
        assert_ne!(fleet.release(0, 0, 0), fleet.release(0, 0, 1000), "releases move with time");
    }

    #[test]
    fn the_retagged_service_has_another_digest_in_prod() {
        let fleet = FleetBuilder::brief(60).build();
        let i = scenario::RETAGGED_SERVICE;
        let prod = fleet.image(i, "1.0.0", true);
        let stg = fleet.image(i, "1.0.0", false);
        assert_eq!(prod.tag, stg.tag);
        assert_ne!(prod.digest, stg.digest);
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
