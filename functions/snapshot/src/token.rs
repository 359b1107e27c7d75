//! The EKS IAM bearer token, as `aws eks get-token` makes it:
//! `k8s-aws-v1.` + base64url (no padding) of a presigned STS
//! `GetCallerIdentity` URL whose signed headers include `host` and
//! `x-k8s-aws-id: <cluster name>`. The cluster's authenticator calls that URL
//! to learn who we are. `aws-sdk-sts` cannot presign this call, so it is
//! signed here with `aws-sigv4` (query-string signing, service `sts`).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use secrecy::SecretString;

pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// The presigned URL's own expiry, as `aws eks get-token` sets it. EKS
/// accepts a token for 15 minutes regardless.
const PRESIGN_EXPIRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("could not sign the EKS token: {0}")]
pub struct TokenError(String);

/// The bearer token for `cluster` in `region`, signed with `credentials`
/// at `now`. Returned as a secret: it authenticates as our role.
pub fn eks_token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<SecretString, TokenError> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRY);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError(e.to_string()))?
        .into();
    let url =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let host = format!("sts.{region}.amazonaws.com");
    let headers = [("host", host.as_str()), (CLUSTER_ID_HEADER, cluster)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| TokenError(e.to_string()))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| TokenError(e.to_string()))?.into_parts();
    let mut request = http::Request::get(&url).body(()).map_err(|e| TokenError(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(presigned);
    Ok(SecretString::from(format!("{TOKEN_PREFIX}{encoded}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn decode(token: &str) -> (String, BTreeMap<String, String>) {
        let encoded = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert!(!encoded.contains('='), "no padding");
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).unwrap(),
        )
        .unwrap();
        let uri: http::Uri = url.parse().unwrap();
        let query = uri.query().unwrap_or_default();
        let params = form_decode(query);
        (uri.host().unwrap().to_owned(), params)
    }

    fn form_decode(query: &str) -> BTreeMap<String, String> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace("%3B", ";").replace("%2F", "/")))
            .collect()
    }

    #[test]
    fn the_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("session-token-value".into()),
            None,
            "test",
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_880_000);
        let token =
            eks_token(&credentials, "eu-west-1", "eks-microservices-dab-prod", now).unwrap();
        let (host, params) = decode(token.expose_secret());
        assert_eq!(host, "sts.eu-west-1.amazonaws.com");
        assert_eq!(params["Action"], "GetCallerIdentity");
        assert_eq!(params["Version"], "2011-06-15");
        assert_eq!(params["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert_eq!(params["X-Amz-SignedHeaders"], "host;x-k8s-aws-id");
        assert_eq!(params["X-Amz-Expires"], "60");
        assert!(
            params["X-Amz-Credential"]
                .starts_with("AKIDEXAMPLE/20251123/eu-west-1/sts/aws4_request"),
            "{params:?}"
        );
        assert_eq!(params["X-Amz-Security-Token"], "session-token-value");
        assert_eq!(params["X-Amz-Signature"].len(), 64);
    }

    #[test]
    fn the_signature_depends_on_the_cluster() {
        let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_880_000);
        let a = eks_token(&credentials, "eu-west-1", "a", now).unwrap();
        let b = eks_token(&credentials, "eu-west-1", "b", now).unwrap();
        assert_ne!(
            decode(a.expose_secret()).1["X-Amz-Signature"],
            decode(b.expose_secret()).1["X-Amz-Signature"]
        );
        assert!(
            !decode(a.expose_secret()).1.contains_key("X-Amz-Security-Token"),
            "no session, no token"
        );
    }
}
