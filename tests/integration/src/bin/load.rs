//! A bounded load test of the local server: it starts
//! `release-dashboard-local` (next to this binary) with the demo fleet,
//! signs in as its demo admin, and runs `--connections` keep-alive
//! connections flat out for `--seconds`, each sending a mix of dashboard,
//! inventory and auth requests. Prints requests per second, p50 and p99
//! per kind and overall, and the number of errors; exits non-zero on any.
//!
//!   cargo build --release -p local -p integration-tests --bin load \
//!     && target/release/load --seconds 60
//!
//! Everything stays on 127.0.0.1. The server and this client share the
//! machine's cores, so the figure is what one machine sustains for both.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use integration_tests::numeric_arg;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

/// What each connection sends, in turn: weights by repetition.
const MIX: &[(&str, &str, &str)] = &[
    ("dashboard", "GET", "/dashboards/platform"),
    ("dashboard", "GET", "/dashboards/platform?problems=true"),
    ("dashboard", "GET", "/dashboards/custsol"),
    ("compare", "GET", "/dashboards/platform/compare?from=dab-platform-stg&to=dab-platform-prod"),
    ("history", "GET", "/history?limit=50"),
    ("inventory", "GET", "/clusters"),
    ("inventory", "GET", "/environments"),
    ("inventory", "GET", "/clusters/eks-microservices-dab-stg/workloads?limit=100"),
    ("inventory", "GET", "/images?q=dab/ledger-api"),
    ("auth", "GET", "/auth/me"),
];

struct Connection {
    reader: AsyncBufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Connection {
    async fn open(authority: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(Self { reader: AsyncBufReader::new(read), writer })
    }

    /// One request on the kept-alive connection: its status.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut content = vec![0; length];
        self.reader.read_exact(&mut content).await?;
        Ok((status, content))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

struct Tally {
    kinds: std::collections::BTreeMap<&'static str, Vec<Duration>>,
    errors: Vec<String>,
}

async fn worker(authority: String, token: String, until: Instant, offset: usize) -> Tally {
    let mut tally = Tally { kinds: Default::default(), errors: Vec::new() };
    let mut connection = match Connection::open(&authority).await {
        Ok(c) => c,
        Err(e) => {
            tally.errors.push(format!("connect: {e}"));
            return tally;
        }
    };
    let mut i = offset;
    while Instant::now() < until {
        let (kind, method, path) = MIX[i % MIX.len()];
        i += 1;
        let started = Instant::now();
        match connection.send(method, path, &token, "").await {
            Ok((200, _)) => tally.kinds.entry(kind).or_default().push(started.elapsed()),
            Ok((status, body)) => {
                let body = String::from_utf8_lossy(&body).chars().take(200).collect::<String>();
                tally.errors.push(format!("{method} {path}: {status} {body}"));
            }
            Err(e) => {
                tally.errors.push(format!("{method} {path}: {e}"));
                match Connection::open(&authority).await {
                    Ok(c) => connection = c,
                    Err(_) => break,
                }
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() -> ExitCode {
    let (seconds, connections) =
        match (numeric_arg("--seconds", 60), numeric_arg("--connections", 8)) {
            (Ok(s), Ok(c)) if (1..=600).contains(&s) && (1..=256).contains(&c) => (s, c),
            _ => {
                eprintln!("usage: load [--seconds 1-600] [--connections 1-256]");
                return ExitCode::from(2);
            }
        };
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"));
    let mail = std::env::temp_dir().join(format!("load-mail-{}", std::process::id()));
    let mut server = match Command::new(dir.join("release-dashboard-local"))
        .args(["--port", "0", "--demo-tick", "0", "--mail-dir"])
        .arg(&mail)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot start release-dashboard-local in {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let Some(stdout) = server.stdout.take() else {
        return ExitCode::FAILURE;
    };
    let mut lines = BufReader::new(stdout).lines();
    let (mut authority, mut login) = (None, None);
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(url) = line.split("listening on http://").nth(1) {
            authority = Some(url.trim().to_owned());
        }
        if let Some(found) = line.split("demo login: ").nth(1)
            && let Some((email, rest)) = found.split_once(" / ")
        {
            login =
                Some((email.to_owned(), rest.split_whitespace().next().unwrap_or("").to_owned()));
        }
        if authority.is_some() && login.is_some() {
            break;
        }
    }
    // Keep draining its log so that a full pipe never stalls it.
    std::thread::spawn(move || for _ in lines {});
    let (Some(authority), Some((email, password))) = (authority, login) else {
        eprintln!("the server printed no URL or login");
        let _ = server.kill();
        return ExitCode::FAILURE;
    };

    let result = run(&authority, &email, &password, seconds, connections).await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&mail);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    authority: &str,
    email: &str,
    password: &str,
    seconds: usize,
    connections: usize,
) -> Result<bool, String> {
    let mut connection = Connection::open(authority).await.map_err(|e| e.to_string())?;
    let credentials = serde_json::json!({"email": email, "password": password}).to_string();
    let (status, body) = connection
        .send("POST", "/auth/login", "", &credentials)
        .await
        .map_err(|e| e.to_string())?;
    let session: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let Some(token) = session["token"].as_str().filter(|_| status == 200) else {
        return Err(format!("sign-in answered {status}"));
    };
    // The first snapshot of every cluster, so the dashboards have data.
    let ready = Instant::now();
    loop {
        let (_, body) = connection
            .send("GET", "/dashboards/platform", token, "")
            .await
            .map_err(|e| e.to_string())?;
        let rows: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if rows["items"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        if ready.elapsed() > Duration::from_secs(30) {
            return Err("the platform dashboard had no rows after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let started = Instant::now();
    let until = started + Duration::from_secs(seconds as u64);
    let workers: Vec<_> = (0..connections)
        .map(|i| tokio::spawn(worker(authority.to_owned(), token.to_owned(), until, i)))
        .collect();
    let mut all = Vec::new();
    let mut kinds: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    let mut errors = Vec::new();
    for worker in workers {
        let tally = worker.await.map_err(|e| e.to_string())?;
        for (kind, times) in tally.kinds {
            all.extend_from_slice(&times);
            kinds.entry(kind).or_default().extend(times);
        }
        errors.extend(tally.errors);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "{} requests in {elapsed:.1} s over {connections} connections: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        errors.len()
    );
    for (kind, mut times) in kinds {
        times.sort();
        println!(
            "  {kind:<10} {:>7} requests  p50 {:>7.2} ms  p99 {:>7.2} ms",
            times.len(),
            percentile(&times, 0.50),
            percentile(&times, 0.99)
        );
    }
    for error in errors.iter().take(5) {
        eprintln!("  error: {error}");
    }
    Ok(errors.is_empty())
}
