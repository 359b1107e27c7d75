//! Who is asking, as far as the network says: the client's source address,
//! which per-client limits count. API Gateway's `sourceIp` on Lambda (the
//! address that opened the connection to API Gateway), the socket's peer
//! locally. Never a header: `X-Forwarded-For` is whatever a client writes.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use lambda_http::request::RequestContext;

/// The client's source address, or `unknown` where nothing says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let from_gateway = parts.extensions.get::<RequestContext>().and_then(|context| {
            #[allow(unreachable_patterns)]
            match context {
                RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
                _ => None,
            }
        });
        let from_socket = || {
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string())
        };
        Ok(Self(from_gateway.or_else(from_socket).unwrap_or_else(|| "unknown".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn client_of(request: http::Request<()>) -> String {
        let (mut parts, ()) = request.into_parts();
        ClientAddr::from_request_parts(&mut parts, &()).await.unwrap().0
    }

    #[tokio::test]
    async fn the_address_comes_from_the_gateway_or_the_socket_never_a_header() {
        let mut context =
            lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
        context.http.source_ip = Some("198.51.100.7".into());
        let request = http::Request::builder()
            .header("x-forwarded-for", "203.0.113.9")
            .extension(RequestContext::ApiGatewayV2(context))
            .body(())
            .unwrap();
        assert_eq!(client_of(request).await, "198.51.100.7");
        let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let request = http::Request::builder()
            .header("x-forwarded-for", "203.0.113.9")
            .extension(ConnectInfo(peer))
            .body(())
            .unwrap();
        assert_eq!(client_of(request).await, "127.0.0.1");
        let request =
            http::Request::builder().header("x-forwarded-for", "203.0.113.9").body(()).unwrap();
        assert_eq!(client_of(request).await, "unknown");
    }
}
