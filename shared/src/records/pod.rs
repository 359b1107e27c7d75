//! A cluster's pods (`model::PodRecord`), in a partition of their own
//! sorted by namespace then name: the pod list reads them without the
//! workloads, and a large cluster's pods never share a partition's
//! throughput with the items every dashboard reads.

use crate::domain::Namespace;
use crate::records::keys;
use crate::store::{Query, SortKeyRange};

/// A cluster's pods, or one namespace's, in namespace then name order.
pub fn query(cluster: &str, namespace: Option<&Namespace>) -> Query {
    let range = match namespace {
        Some(namespace) => SortKeyRange::Prefix(format!("{}#", keys::part(namespace.as_str()))),
        None => SortKeyRange::All,
    };
    Query::partition(keys::pods_pk(cluster)).range(range)
}
