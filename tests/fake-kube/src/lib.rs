//! A faithful fake of the Kubernetes API for tests and the local demo.
//!
//! Real Kubernetes cannot run on the test machines, so the snapshot path is
//! tested against this: the real `kube` client, over TLS with a CA it was
//! given, against servers that paginate, filter by label, expire continue
//! tokens, check bearer tokens and fail on demand. It is never a dependency
//! of a function crate.

pub mod eks;
pub mod fleet;
pub mod objects;
pub mod server;
pub mod tls;

pub use fleet::{Fleet, FleetBuilder};
pub use objects::{ClusterObjects, Image, PodPhase, WorkloadKind, WorkloadSpec};
pub use server::{FakeCluster, Fault, FaultRule, RecordedRequest};
pub use tls::TestCa;

/// One fake API server per cluster of a fleet, all trusting one CA.
#[derive(Debug)]
pub struct FakeFleet {
    pub fleet: Fleet,
    pub ca: TestCa,
    pub clusters: Vec<FakeCluster>,
    token: String,
}

impl FakeFleet {
    /// Starts a server for every cluster of `fleet`, serving tick 0.
    pub async fn start(fleet: Fleet, token: &str) -> Result<Self, StartError> {
        let ca = TestCa::generate()?;
        let mut clusters = Vec::new();
        for (_, name) in fleet.cluster_names() {
            let objects = fleet.cluster_objects(name, 0);
            clusters.push(FakeCluster::start(name, &ca, &objects, token).await?);
        }
        Ok(Self { fleet, ca, clusters, token: token.to_owned() })
    }

    /// Starts the fleet with a fresh random bearer token.
    pub async fn start_with_random_token(fleet: Fleet) -> Result<Self, StartError> {
        let mut bytes = [0u8; 24];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| StartError::Random)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::start(fleet, &token).await
    }

    pub fn cluster(&self, name: &str) -> Option<&FakeCluster> {
        self.clusters.iter().find(|c| c.name() == name)
    }

    /// The bearer token every server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Moves every cluster to `tick` (new releases, promotions), and makes
    /// the scenario's cluster unreachable while its window lasts.
    pub fn advance_to(&self, tick: u64) {
        for cluster in &self.clusters {
            cluster.set_objects(&self.fleet.cluster_objects(cluster.name(), tick));
            if cluster.name() == fleet::scenario::UNREACHABLE_CLUSTER {
                cluster.clear_faults();
                if fleet::scenario::UNREACHABLE.contains(&tick) {
                    cluster.inject(FaultRule::on("/", Fault::ResetConnection));
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not make the test CA")]
    Tls(#[from] tls::TlsError),
    #[error("could not start a fake API server")]
    Io(#[from] std::io::Error),
    #[error("the system random generator failed")]
    Random,
}
