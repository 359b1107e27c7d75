//! Domain types parsed at the edge: once a value has one of these types it is
//! known to be valid, so the core never re-checks (or trips over) raw strings.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Kubernetes' longest object name (a DNS subdomain), in bytes.
pub const MAX_NAME_BYTES: usize = 253;

/// Why a value was refused. The message names the rule, never more than the
/// offending value itself (which is never a secret for these types).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct InvalidValue {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

impl InvalidValue {
    fn new(kind: &'static str, value: &str, rule: &'static str) -> Self {
        // NB: cap what we echo back so that a megabyte of input does not
        // become a megabyte of error message.
        let value: String = value.chars().take(80).collect();
        Self { kind, value, rule }
    }
}

/// Declares a string newtype whose only constructor is `parse`, so that an
/// invalid value cannot exist. Serde goes through `parse` too.
macro_rules! validated_string {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, InvalidValue> {
                let value = value.into();
                let check: fn(&str) -> Result<(), &'static str> = $check;
                match check(&value) {
                    Ok(()) => Ok(Self(value)),
                    Err(rule) => Err(InvalidValue::new($kind, &value, rule)),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidValue;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }
    };
}

/// Names we mint ourselves (environments, dashboards, teams) and EKS cluster
/// names share EKS's rule: 1–100 characters, letters, digits, `-` and `_`,
/// starting with a letter or digit.
fn check_resource_name(value: &str) -> Result<(), &'static str> {
    let mut chars = value.chars();
    match chars.next() {
        None => return Err("must not be empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err("must start with a letter or a digit");
        }
        Some(_) => {}
    }
    if value.len() > 100 {
        return Err("must be at most 100 characters");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("may contain only letters, digits, '-' and '_'");
    }
    Ok(())
}

/// RFC 1123 label, as Kubernetes requires of namespace names.
fn check_dns_label(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.len() > 63 {
        return Err("must be 1 to 63 characters");
    }
    let bytes = value.as_bytes();
    let ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !ok(&bytes[0]) || !ok(&bytes[bytes.len() - 1]) {
        return Err("must start and end with a lower-case letter or a digit");
    }
    if !bytes.iter().all(|b| ok(b) || *b == b'-') {
        return Err("may contain only lower-case letters, digits and '-'");
    }
    Ok(())
}

fn check_region(value: &str) -> Result<(), &'static str> {
    const RULE: &str = "must look like an AWS region, e.g. eu-west-1";
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() < 3 || value.len() > 30 {
        return Err(RULE);
    }
    let (last, rest) = parts.split_last().ok_or(RULE)?;
    let words_ok = rest.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()));
    let number_ok = !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit());
    if words_ok && number_ok { Ok(()) } else { Err(RULE) }
}

fn check_role_arn(value: &str) -> Result<(), &'static str> {
    const RULE: &str =
        "must be an IAM role ARN, arn:<partition>:iam::<12-digit account>:role/<name>";
    let mut parts = value.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(RULE);
    };
    let partition_ok = partition.starts_with("aws");
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let resource_ok =
        resource.strip_prefix("role/").is_some_and(|name| !name.is_empty() && name.len() <= 512);
    if partition_ok && account_ok && resource_ok { Ok(()) } else { Err(RULE) }
}

/// AWS's rule for `sts:ExternalId`: 2–1224 characters of `[\w+=,.@:/-]`.
fn check_external_id(value: &str) -> Result<(), &'static str> {
    if value.len() < 2 || value.len() > 1224 {
        return Err("must be 2 to 1224 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
    if value.chars().all(allowed) {
        Ok(())
    } else {
        Err("may contain only letters, digits and _+=,.@:/-")
    }
}

fn check_https_url(value: &str) -> Result<(), &'static str> {
    match value.parse::<http::Uri>() {
        Ok(uri) if uri.scheme_str() == Some("https") && uri.host().is_some() => Ok(()),
        _ => Err("must be an https:// URL with a host"),
    }
}

validated_string!(
    /// A group of clusters that runs one stage of a release (e.g. `dab-platform-stg`).
    EnvironmentName,
    "environment name",
    check_resource_name
);
validated_string!(
    /// An EKS cluster name, or the name given to a non-EKS cluster.
    ClusterName,
    "cluster name",
    check_resource_name
);
validated_string!(
    /// The short name of a dashboard, used in URLs.
    DashboardName,
    "dashboard name",
    check_resource_name
);
validated_string!(
    /// A team that may see some environments.
    TeamName,
    "team name",
    check_resource_name
);
validated_string!(
    /// A Kubernetes namespace.
    Namespace,
    "namespace",
    check_dns_label
);
validated_string!(
    /// An AWS region code.
    AwsRegion,
    "region",
    check_region
);
validated_string!(
    /// The IAM role the snapshot function assumes to read a cluster in another account.
    RoleArn,
    "role ARN",
    check_role_arn
);
validated_string!(
    /// The `sts:ExternalId` the reader role's trust policy demands.
    ExternalId,
    "external id",
    check_external_id
);
validated_string!(
    /// A cluster API server address given explicitly (non-EKS clusters).
    HttpsUrl,
    "URL",
    check_https_url
);

/// An email address, normalised (trimmed, lower-cased) so that one mailbox
/// is one account, and checked for the shape mail systems accept: one `@`,
/// a local part of 1–64 characters, a domain of dot-separated labels.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = "email")]
pub struct Email(String);

impl Email {
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidValue> {
        let raw: String = value.into();
        let email = raw.trim().to_lowercase();
        let fail = |rule| Err(InvalidValue::new("email", &email, rule));
        if email.len() > 254 {
            return fail("must be at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return fail("must contain one @");
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return fail("must be local-part@domain with a local part of 1 to 64 characters");
        }
        let local_ok =
            local.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
                && !local.starts_with('.')
                && !local.ends_with('.')
                && !local.contains("..");
        if !local_ok {
            return fail("the part before @ has characters mail systems do not accept");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return fail("the domain must be a name like example.com");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }

    /// For logs: enough to tell addresses apart, not enough to harvest them.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl RoleArn {
    /// The 12-digit account the role lives in.
    pub fn account_id(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }
}

/// Parses `90`, `90s`, `15m`, `2h`, `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number with s, m, h or d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!("invalid duration {text:?}: the unit must be s, m, h or d"));
        }
    };
    number
        .checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("invalid duration {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_the_eks_rule() {
        assert!(ClusterName::parse("eks-microservices-dab-stg").is_ok());
        assert!(ClusterName::parse("a").is_ok());
        assert!(ClusterName::parse("").is_err());
        assert!(ClusterName::parse("-leading-dash").is_err());
        assert!(ClusterName::parse("has space").is_err());
        assert!(ClusterName::parse("x".repeat(101)).is_err());
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(Namespace::parse("kube-system").is_ok());
        assert!(Namespace::parse("Upper").is_err());
        assert!(Namespace::parse("ends-").is_err());
        assert!(Namespace::parse("a".repeat(64)).is_err());
    }

    #[test]
    fn regions_and_arns_are_checked() {
        assert!(AwsRegion::parse("eu-west-1").is_ok());
        assert!(AwsRegion::parse("us-gov-west-1").is_ok());
        assert!(AwsRegion::parse("eu-west").is_err());
        assert!(AwsRegion::parse("EU-WEST-1").is_err());
        let arn =
            RoleArn::parse("arn:aws:iam::111122223333:role/release-dashboard-reader").unwrap();
        assert_eq!(arn.account_id(), "111122223333");
        assert!(RoleArn::parse("arn:aws:iam::1111:role/x").is_err());
        assert!(RoleArn::parse("arn:aws:s3:::bucket").is_err());
        assert!(RoleArn::parse("arn:aws:iam::111122223333:user/x").is_err());
    }

    #[test]
    fn external_ids_and_urls_are_checked() {
        assert!(ExternalId::parse("release-dashboard-7f3a").is_ok());
        assert!(ExternalId::parse("x").is_err());
        assert!(ExternalId::parse("no spaces").is_err());
        assert!(HttpsUrl::parse("https://10.0.0.1:6443").is_ok());
        assert!(HttpsUrl::parse("http://plain").is_err());
    }

    #[test]
    fn serde_goes_through_parse() {
        let ok: ClusterName = serde_json::from_str("\"eks-a\"").unwrap();
        assert_eq!(ok.as_str(), "eks-a");
        let err = serde_json::from_str::<ClusterName>("\"bad name\"").unwrap_err();
        assert!(err.to_string().contains("cluster name"), "{err}");
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        let email = Email::parse("  Jane.Doe+ops@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "jane.doe+ops@example.com");
        assert_eq!(email.domain(), "example.com");
        assert_eq!(email.masked(), "j***@example.com");
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a@@example.com",
            "a b@example.com",
            ".a@example.com",
            "a..b@example.com",
            "a@-x.com",
            "a@x..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn long_values_are_truncated_in_errors() {
        let err = ClusterName::parse("!".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 200);
    }
}
