//! Helpers for tests that need the local AWS test bed (moto) or fake
//! Kubernetes clusters. Test code: it panics with a message saying what to
//! do when the bed is missing, so such a test can never pass silently.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use fake_kube::FakeCluster;
use serde_json::Value;
use shared::clock::Clock;
use shared::store::dynamodb::{DynamoStore, create_table};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const HOW_TO_RUN: &str = "this test needs the local AWS test bed (moto on 127.0.0.1). \
     Run every check with `scripts/test.sh`, or one test with \
     `scripts/testbed.sh cargo test -p integration-tests -- <name>`";

/// The moto endpoint the test script started; panics with instructions if none.
pub fn moto_endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if url.starts_with("http://127.0.0.1:") => url,
        Ok(url) => panic!("AWS_ENDPOINT_URL={url} is not a local test bed; {HOW_TO_RUN}"),
        Err(_) => panic!("AWS_ENDPOINT_URL is not set: {HOW_TO_RUN}"),
    }
}

/// The SDK configuration every function uses, pointed at moto.
pub async fn aws() -> SdkConfig {
    moto_endpoint();
    shared::aws::sdk_config().await
}

/// The number after `name` on the command line (benchmarks and servers).
pub fn numeric_arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} takes a number")),
    }
}

pub use shared::testing::unique;

/// A new, empty table of the production layout, on moto.
pub async fn fresh_table(clock: Arc<dyn Clock>) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&aws().await);
    let table = unique("test");
    create_table(&client, &table).await.unwrap_or_else(|e| {
        panic!("creating table {table}: {}", shared::telemetry::error_chain(&e))
    });
    DynamoStore::new(client, table).with_clock(clock)
}

/// Makes moto's EKS answer DescribeCluster for `name` (in `account`,
/// `region`) with the fake server's endpoint and CA.
pub async fn register_eks_cluster(account: &str, region: &str, fake: &FakeCluster) {
    let body = serde_json::json!({
        "account": account, "region": region, "name": fake.name(),
        "endpoint": fake.endpoint(), "caData": fake.ca_data(), "version": "1.33",
    });
    let (status, reply) = http_json("POST", "/_testbed/eks-clusters", Some(&body)).await;
    assert_eq!(status, 200, "registering {} with moto: {reply}", fake.name());
}

/// A plain HTTP/1.1 request to the moto server (control routes and
/// `/moto-api/*`), returning status and JSON body.
pub async fn http_json(method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let endpoint = moto_endpoint();
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let exchange = async {
        let mut stream = TcpStream::connect(&authority).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: moto did not answer in 30 s"))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}; {HOW_TO_RUN}"));
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

/// Every message moto recorded as sent to `to`, oldest first: (subject,
/// body — moto keeps the HTML part when there is one).
pub async fn mails_to(to: &str) -> Vec<(String, String)> {
    let (status, data) = http_json("GET", "/moto-api/data.json", None).await;
    assert_eq!(status, 200, "{data}");
    let mut found = Vec::new();
    for message in data["ses"]["Message"].as_array().cloned().unwrap_or_default() {
        let to_addresses =
            message["destinations"]["ToAddresses"].as_array().cloned().unwrap_or_default();
        if to_addresses.iter().any(|a| a.as_str() == Some(to)) {
            let subject = message["subject"].as_str().unwrap_or_default().to_owned();
            found.push((subject, message["body"].as_str().unwrap_or_default().to_owned()));
        }
    }
    found
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// A `kube` configuration as the snapshot function makes one
/// (`snapshot::access::bearer_config`): the cluster's CA as the only root
/// and a bearer token. Build its client with the production constructor
/// (`KubeTimeouts::client`: timeouts, no retries of kube's own), as
/// [`kube_client`] does.
pub fn kube_config(endpoint: &str, roots: Vec<Vec<u8>>, token: &str) -> kube::Config {
    let url = endpoint.parse().expect("endpoint is a URI");
    snapshot::access::bearer_config(url, roots, secrecy::SecretString::from(token.to_owned()))
}

/// A `kube` client from [`kube_config`], made as the snapshot function makes one.
pub fn kube_client(endpoint: &str, ca_der: Vec<u8>, token: &str) -> kube::Client {
    snapshot::access::KubeTimeouts::default()
        .client(kube_config(endpoint, vec![ca_der], token))
        .expect("kube client")
}

/// Every item of `query`, following its pages, decoded.
pub async fn query_all<T, S>(store: &S, query: shared::store::Query) -> Vec<T>
where
    T: serde::de::DeserializeOwned,
    S: shared::store::ItemQuery + ?Sized,
{
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.query(query.clone().limit(500).after(cursor)).await.unwrap();
        out.extend(page.items.into_iter().map(|s| serde_json::from_value(s.item.body).unwrap()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return out,
        }
    }
}
