//! A cluster's workloads (`model::Workload`), one item each in the
//! cluster's partition, keyed by namespace, kind and name. Written by the
//! snapshot, read by inventory and dashboards.

use crate::domain::Namespace;
use crate::model::WorkloadKind;
use crate::records::keys;
use crate::store::{ItemKey, Query, SortKeyRange};

/// Where one workload is kept.
pub fn key(cluster: &str, namespace: &str, kind: WorkloadKind, name: &str) -> ItemKey {
    ItemKey::new(keys::cluster_pk(cluster), keys::workload_sk(namespace, kind, name))
}

/// A cluster's workloads, or one namespace's, in namespace then kind and
/// name order.
pub fn query(cluster: &str, namespace: Option<&Namespace>) -> Query {
    let prefix = match namespace {
        Some(namespace) => format!("{}{}#", keys::WORKLOAD_PREFIX, keys::part(namespace.as_str())),
        None => keys::WORKLOAD_PREFIX.to_owned(),
    };
    Query::partition(keys::cluster_pk(cluster)).range(SortKeyRange::Prefix(prefix))
}
