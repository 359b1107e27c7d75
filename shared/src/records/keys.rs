//! Where things live in the single table. Keys embed names that are
//! validated (clusters, environments) or come from Kubernetes (namespaces,
//! workload names: DNS labels and subdomains, which never contain `#`).
//!
//! The records layer's key scheme.

use jiff::Timestamp;

use crate::model::WorkloadKind;

pub const STATUS_SK: &str = "STATUS";
pub const WORKLOAD_PREFIX: &str = "WL#";
/// [`crate::model::LoosePod`] items, in the cluster's partition so that the
/// one query that reads its workloads reads them too.
pub const LOOSE_PREFIX: &str = "LOOSE#";
/// [`crate::model::VersionSeen`] items, in the cluster's partition so that the
/// one query that reads its workloads reads them too.
pub const SEEN_PREFIX: &str = "SEEN#";

pub use crate::store::MAX_SORT_KEY;

/// The longest key part kept as it is: Kubernetes' longest name, so that
/// every valid name keys as itself.
pub const MAX_KEY_PART: usize = crate::domain::MAX_NAME_BYTES;

/// `value` as a key part: as it is up to [`MAX_KEY_PART`] bytes, else
/// its first 96 bytes and a hash of the whole. Values from clusters
/// (a 1,100-character tag, a 300-character namespace) then never push
/// a key past DynamoDB's limits (1,024 bytes of sort key); the item
/// keeps the whole value.
pub fn part(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= MAX_KEY_PART {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut end = 96;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    let hash: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    std::borrow::Cow::Owned(format!("{}~{hash}", &value[..end]))
}

/// A cluster's workloads and its status item.
/// An address's partition: its account, codes and limit counters (the
/// counters whether or not an account exists).
pub fn user_pk(email: &crate::domain::Email) -> String {
    format!("USER#{email}")
}

pub fn cluster_pk(cluster: &str) -> String {
    format!("CLUSTER#{cluster}")
}

pub fn workload_sk(namespace: &str, kind: WorkloadKind, name: &str) -> String {
    format!("{WORKLOAD_PREFIX}{}#{kind}#{}", part(namespace), part(name))
}

pub fn loose_sk(namespace: &str, name: &str) -> String {
    format!("{LOOSE_PREFIX}{}#{}", part(namespace), part(name))
}

pub fn seen_sk(service: &str, version: &str) -> String {
    format!("{SEEN_PREFIX}{}#{}", part(service), part(version))
}

/// A cluster's pods, sorted by namespace then name.
pub fn pods_pk(cluster: &str) -> String {
    format!("PODS#{cluster}")
}

pub fn pod_sk(namespace: &str, name: &str) -> String {
    format!("{}#{}", part(namespace), part(name))
}

/// History of one service in one environment: a reader reads only the
/// environments it may see, so what it may not see costs it nothing
/// (neither time nor reads).
pub fn service_history_pk(service: &str, environment: &str) -> String {
    format!("HIST#SVC#{}#ENV#{environment}", part(service))
}

/// A cluster's pod history, newest last.
pub fn pod_history_pk(cluster: &str) -> String {
    format!("PODHIST#{cluster}")
}

pub fn pod_history_sk(at: Timestamp, namespace: &str, pod: &str, change: &str) -> String {
    format!("{}#{}#{}#{change}", time_key(at), part(namespace), part(pod))
}

/// History of one environment, every service.
pub fn environment_history_pk(environment: &str) -> String {
    format!("HIST#ENV#{environment}")
}

/// Sorts by time (fixed-width UTC, microseconds), then by place.
pub fn history_sk(
    at: Timestamp,
    cluster: &str,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
) -> String {
    format!("{}#{cluster}#{}#{kind}#{}", time_key(at), part(namespace), part(name))
}

pub fn time_key(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_keep_every_kubernetes_name_and_bound_the_rest() {
        let name = "a".repeat(253);
        assert_eq!(part(&name), name.as_str(), "the longest valid name keys as itself");
        let tag = "v".repeat(1_100);
        let bounded = part(&tag);
        assert!(bounded.len() < 140 && bounded.starts_with(&"v".repeat(96)), "{bounded}");
        let other = format!("{}w", "v".repeat(1_099));
        assert_ne!(part(&other), bounded, "the hash tells long values apart");
        let wide = "é".repeat(200);
        assert!(part(&wide).is_char_boundary(96) || part(&wide).len() < 140);
        assert!(seen_sk("svc", &tag).len() <= MAX_SORT_KEY);
    }

    #[test]
    fn history_keys_sort_by_time() {
        let early: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let late: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        let a = history_sk(early, "c", "ns", WorkloadKind::Deployment, "x");
        let b = history_sk(late, "a", "ns", WorkloadKind::Deployment, "x");
        assert!(a < b, "{a} < {b}");
        assert!(a.starts_with("2026-01-01T00:00:00.000000Z#c#ns#Deployment#x"));
    }
}
