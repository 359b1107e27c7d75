//! How an EKS API server's authenticator sees an IAM token: `k8s-aws-v1.` +
//! base64url of a presigned STS GetCallerIdentity URL. The real
//! authenticator sends that request to STS (which checks the signature) and
//! maps the caller to Kubernetes groups. The fake cannot ask STS, so it
//! checks everything else: the prefix, the encoding, the STS host, the
//! action, that `host` and `x-k8s-aws-id` are signed, and the token's age
//! (EKS refuses a token 15 minutes after it was signed).

use std::collections::HashMap;

use base64::Engine as _;
use jiff::Timestamp;
use jiff::civil::DateTime;

const PREFIX: &str = "k8s-aws-v1.";
const VALID_FOR_SECS: i64 = 15 * 60;

/// Why a token was refused (for the fake's log and tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub &'static str);

pub fn check_token(token: &str, now: Timestamp) -> Result<(), Refused> {
    let encoded = token.strip_prefix(PREFIX).ok_or(Refused("not an EKS token"))?;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(Refused("not base64url without padding"))?;
    let uri: http::Uri = url.parse().map_err(|_| Refused("not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let regional =
        host.strip_prefix("sts.").and_then(|h| h.strip_suffix(".amazonaws.com")).is_some();
    if uri.scheme_str() != Some("https") || !regional || uri.path() != "/" {
        return Err(Refused("not an STS URL"));
    }
    let params: HashMap<String, String> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |name: &'static str| params.get(name).map(String::as_str).ok_or(Refused(name));
    if param("Action")? != "GetCallerIdentity" {
        return Err(Refused("not GetCallerIdentity"));
    }
    if param("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(Refused("not SigV4"));
    }
    let signed: Vec<&str> = param("X-Amz-SignedHeaders")?.split(';').collect();
    if !signed.contains(&"host") || !signed.contains(&"x-k8s-aws-id") {
        return Err(Refused("host and x-k8s-aws-id must be signed"));
    }
    let signature = param("X-Amz-Signature")?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refused("malformed signature"));
    }
    param("X-Amz-Credential")?;
    let signed_at = DateTime::strptime("%Y%m%dT%H%M%SZ", param("X-Amz-Date")?)
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or(Refused("malformed X-Amz-Date"))?;
    let age = now.as_second() - signed_at.as_second();
    if age > VALID_FOR_SECS {
        return Err(Refused("token expired"));
    }
    if age < -60 {
        return Err(Refused("token signed in the future"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(query: &str) -> String {
        let url = format!("https://sts.eu-west-1.amazonaws.com/?{query}");
        format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
    }

    const GOOD: &str = "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261123%2Feu-west-1%2Fsts%2Faws4_request&X-Amz-Date=20261123T070000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_well_formed_fresh_token_passes() {
        assert_eq!(check_token(&token(GOOD), at("2026-11-23T07:05:00Z")), Ok(()));
    }

    #[test]
    fn tokens_expire_after_fifteen_minutes() {
        assert_eq!(
            check_token(&token(GOOD), at("2026-11-23T07:15:01Z")),
            Err(Refused("token expired"))
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let now = at("2026-11-23T07:05:00Z");
        assert!(check_token("Bearer nope", now).is_err());
        assert!(check_token(&format!("{PREFIX}%%%"), now).is_err());
        assert!(check_token(&token(&GOOD.replace("host%3Bx-k8s-aws-id", "host")), now).is_err());
        assert!(
            check_token(&token(&GOOD.replace("GetCallerIdentity", "AssumeRole")), now).is_err()
        );
        let other_host = token(GOOD).replace(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("https://sts.eu-west-1"),
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("https://evil.example"),
        );
        assert!(check_token(&other_host, now).is_err());
    }
}
