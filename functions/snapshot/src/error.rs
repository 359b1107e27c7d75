//! Why a cluster's snapshot failed: the kinds its status records, and the
//! error every step of a snapshot returns.

use kube::core::Status;

/// Why reading a cluster failed, in the terms the status item records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 401: the token was refused (expired, revoked, unknown).
    Unauthorized,
    /// 403: authenticated but not allowed (RBAC, access entry).
    Forbidden,
    /// 429 (or 503/504) after our retries.
    Throttled,
    /// A call or the whole cluster took longer than allowed.
    Timeout,
    /// Connection refused, reset, TLS failure, DNS.
    Unreachable,
    /// 410 Gone kept coming back after restarts.
    Expired,
    /// Any other API answer, or an answer we could not read.
    ApiError,
    /// STS, EKS or Secrets Manager refused or failed (role, cluster lookup, secret).
    Aws,
    /// The cluster's configuration cannot be used (bad CA, missing token).
    Config,
    /// Writing the snapshot failed.
    Store,
    /// Another snapshot of this cluster holds the lease.
    Busy,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::Throttled => "Throttled",
            Self::Timeout => "Timeout",
            Self::Unreachable => "Unreachable",
            Self::Expired => "Expired",
            Self::ApiError => "ApiError",
            Self::Aws => "Aws",
            Self::Config => "Config",
            Self::Store => "Store",
            Self::Busy => "Busy",
        }
    }
}

/// A failure with its kind and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct CollectError {
    pub kind: FailureKind,
    pub message: String,
    #[source]
    pub source: Option<shared::store::BoxError>,
}

impl CollectError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), source: None }
    }

    pub fn with_source(mut self, source: impl Into<shared::store::BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Classifies a kube error. The message names the status and reason,
    /// never a token.
    pub fn from_kube(what: &str, err: kube::Error) -> Self {
        let (kind, message) = match &err {
            kube::Error::Api(status) => {
                (kind_of_status(status), format!("{what}: {} {}", status.code, status.reason))
            }
            other => {
                let timed_out = chain_mentions(other, &["timed out", "timeout", "deadline"]);
                let kind = if timed_out { FailureKind::Timeout } else { FailureKind::Unreachable };
                (kind, format!("{what}: {}", shared::telemetry::error_chain(other)))
            }
        };
        Self::new(kind, message).with_source(err)
    }
}

fn kind_of_status(status: &Status) -> FailureKind {
    match status.code {
        401 => FailureKind::Unauthorized,
        403 => FailureKind::Forbidden,
        410 => FailureKind::Expired,
        429 | 503 | 504 => FailureKind::Throttled,
        _ => FailureKind::ApiError,
    }
}

fn chain_mentions(err: &(dyn std::error::Error + 'static), words: &[&str]) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        let text = e.to_string().to_lowercase();
        if words.iter().any(|w| text.contains(w)) {
            return true;
        }
        current = e.source();
    }
    false
}
