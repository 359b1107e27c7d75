//! The README's first command: the local server starts, says where it
//! listens, and answers there.
// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_local_server_starts_and_answers_on_the_url_it_prints() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_release-dashboard-local"))
        .args(["--port", "0", "--services", "12"])
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
    let started = Instant::now();
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("the server printed its URL");
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    assert!(started.elapsed() < Duration::from_secs(10), "started within 10 s");
    let authority = url.trim_start_matches("http://").to_owned();
    assert!(authority.starts_with("127.0.0.1:"), "{authority}");

    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stream
        .write_all(
            format!("GET /health HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"status\":\"ok\""), "{reply}");
}
