//! The README's first command: the local server starts, says where it
//! listens and how to sign in, and serves a dashboard with data within 10
//! seconds of its start.
// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 request on a fresh connection: the status and the body.
async fn http(
    authority: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_local_server_serves_a_dashboard_with_data_within_ten_seconds() {
    let mail_dir = std::env::temp_dir().join(format!("starts-test-mail-{}", std::process::id()));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_release-dashboard-local"))
        .args(["--port", "0", "--demo-tick", "0", "--mail-dir"])
        .arg(&mail_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the local server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut url, mut login) = (None, None);
    while url.is_none() || login.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the server printed its URL");
        if let Some(found) = line.split("listening on ").nth(1) {
            url = Some(found.trim().to_owned());
        }
        if let Some(found) = line.split("demo login: ").nth(1) {
            let (email, rest) = found.split_once(" / ").unwrap();
            let password = rest.split_whitespace().next().unwrap();
            login = Some((email.to_owned(), password.to_owned()));
        }
    }
    let authority = url.unwrap().trim_start_matches("http://").to_owned();
    assert!(authority.starts_with("127.0.0.1:"), "{authority}");
    let (status, health) = http(&authority, "GET", "/health", None, "").await;
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");

    let (email, password) = login.unwrap();
    let credentials = serde_json::json!({"email": email, "password": password}).to_string();
    let (status, session) = http(&authority, "POST", "/auth/login", None, &credentials).await;
    assert_eq!(status, 200, "{session}");
    let session: serde_json::Value = serde_json::from_str(&session).unwrap();
    let token = session["token"].as_str().unwrap().to_owned();
    let rows = loop {
        let (status, body) =
            http(&authority, "GET", "/dashboards/platform", Some(&token), "").await;
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let rows = body["items"].as_array().map_or(0, Vec::len);
        if rows > 0 || started.elapsed() > Duration::from_secs(10) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let elapsed = started.elapsed();
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&mail_dir);
    assert!(rows > 0, "the platform dashboard had no rows 10 s after the start");
    assert!(elapsed < Duration::from_secs(10), "data after {elapsed:?}");
}
