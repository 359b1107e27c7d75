//! How old a cluster's data is and whether to trust it, as every read
//! answer says.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use crate::model::ClusterStatus;

/// Data older than this many refresh intervals is stale.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// How old a cluster's data is and whether to trust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Freshness {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// Seconds since the last good snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
    /// The newest attempt failed: what is shown is the last good data.
    pub last_attempt_failed: bool,
    /// Never snapshotted, the newest attempt failed, or the data is older
    /// than three refresh intervals.
    pub stale: bool,
}

impl Freshness {
    pub fn of(status: Option<&ClusterStatus>, refresh_interval: Duration, now: Timestamp) -> Self {
        let last_success = status.and_then(|s| s.last_success);
        let last_attempt_failed = status
            .and_then(|s| s.last_error.as_ref().map(|e| (e.at, s.last_success)))
            .is_some_and(|(failed_at, success)| success.is_none_or(|ok| failed_at >= ok));
        let age_seconds = last_success.map(|at| now.duration_since(at).as_secs().max(0));
        let limit = (refresh_interval * STALE_AFTER_INTERVALS).as_secs() as i64;
        let stale = last_attempt_failed || age_seconds.is_none_or(|age| age > limit);
        Self { last_success, age_seconds, last_attempt_failed, stale }
    }

    /// The worse of two: for a column or an environment of several clusters.
    pub fn worst(self, other: Self) -> Self {
        let older = match (self.age_seconds, other.age_seconds) {
            (Some(a), Some(b)) if b > a => other.clone(),
            (Some(_), None) => other.clone(),
            _ => self.clone(),
        };
        Self {
            last_success: older.last_success,
            age_seconds: older.age_seconds,
            last_attempt_failed: self.last_attempt_failed || other.last_attempt_failed,
            stale: self.stale || other.stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClusterError;

    fn status(success: Option<&str>, error_at: Option<&str>) -> ClusterStatus {
        let mut status = ClusterStatus::new("a".parse().unwrap(), "stg".parse().unwrap());
        status.last_success = success.map(|s| s.parse().unwrap());
        status.last_error = error_at.map(|at| ClusterError {
            kind: "Timeout".into(),
            message: "timed out".into(),
            at: at.parse().unwrap(),
        });
        status
    }

    #[test]
    fn freshness_says_how_old_and_whether_to_trust_it() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let minute = Duration::from_secs(60);
        let fresh = Freshness::of(Some(&status(Some("2026-11-23T09:59:00Z"), None)), minute, now);
        assert_eq!((fresh.age_seconds, fresh.stale), (Some(60), false));
        let old = Freshness::of(Some(&status(Some("2026-11-23T09:56:00Z"), None)), minute, now);
        assert!(old.stale, "four minutes at a one-minute interval");
        let failing = Freshness::of(
            Some(&status(Some("2026-11-23T09:59:00Z"), Some("2026-11-23T09:59:30Z"))),
            minute,
            now,
        );
        assert!(failing.last_attempt_failed && failing.stale);
        let recovered = Freshness::of(
            Some(&status(Some("2026-11-23T09:59:30Z"), Some("2026-11-23T09:59:00Z"))),
            minute,
            now,
        );
        assert!(!recovered.last_attempt_failed && !recovered.stale);
        let never = Freshness::of(None, minute, now);
        assert!(never.stale && never.age_seconds.is_none());
        assert_eq!(fresh.clone().worst(old.clone()), old);
        assert!(fresh.worst(never).stale);
    }
}
