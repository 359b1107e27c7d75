//! Does the time of a failed sign-in tell whether the account exists? Signs
//! `--accounts` accounts up over the in-memory adapters, then times failed
//! sign-ins of three kinds, interleaved: a wrong password for an existing
//! account, an unknown address, a malformed address. Prints the median and
//! 90th percentile of each, and exits non-zero when the medians of the
//! first two differ by more than 10 %.
//!
//!   cargo build --release -p integration-tests --bins && target/release/login-timing
//!
//! The growing delay after failures is switched off here: it is keyed by
//! address whether or not an account exists, and would only hide what this
//! measures.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::password::Hasher;
use auth::secrets::CodeHasher;
use auth::{Deps, Policy};
use axum::Router;
use http::StatusCode;
use integration_tests::numeric_arg;
use serde_json::json;
use shared::clock::SystemClock;
use shared::domain::Email;
use shared::mail::{MemoryMailer, code_in};
use shared::store::memory::MemoryStore;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
const MAX_MEDIAN_GAP: f64 = 0.10;

async fn post(app: &Router, path: &str, body: serde_json::Value) -> StatusCode {
    let request = shared::testing::api_request("POST", path, Some(body), None);
    match app.clone().oneshot(request).await {
        Ok(response) => response.status(),
        Err(never) => match never {},
    }
}

fn summary(name: &str, samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{name:<28} median {:>7.2} ms   p90 {:>7.2} ms", ms(at(0.5)), ms(at(0.9)));
    ms(at(0.5))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let accounts = numeric_arg("--accounts", 60)?;
    let mailer = Arc::new(MemoryMailer::default());
    let store = Arc::new(MemoryStore::new(Arc::new(SystemClock)));
    let deps = Deps {
        store: store.clone(),
        mailer: mailer.clone(),
        clock: Arc::new(SystemClock),
        hasher: Hasher::new()?,
        codes: CodeHasher::ephemeral()?,
        policy: Policy { failure_delay: Duration::ZERO, ..Policy::default() },
    };
    let app = shared::http::with_api_defaults(auth::router(deps), store);

    let addresses: Vec<String> = (0..accounts).map(|i| format!("user{i}@example.com")).collect();
    for address in &addresses {
        let body = json!({"email": address, "password": PASSWORD, "name": "Bench"});
        post(&app, "/auth/signup", body).await;
        let mail = mailer.last_to(&Email::parse(address)?).ok_or("no verification mail")?;
        let code = code_in(&mail.text).ok_or("no code in the mail")?;
        let verified = post(&app, "/auth/verify", json!({"email": address, "code": code})).await;
        if verified != StatusCode::OK {
            return Err(format!("verification answered {verified}").into());
        }
    }

    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    let mut malformed = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let attempts = [
            (address.clone(), &mut wrong),
            (format!("nobody{i}@example.com"), &mut unknown),
            (format!("not-an-address-{i}"), &mut malformed),
        ];
        for (email, samples) in attempts {
            let started = Instant::now();
            let body = json!({"email": email, "password": "not the password"});
            let status = post(&app, "/auth/login", body).await;
            samples.push(started.elapsed());
            if status != StatusCode::UNAUTHORIZED {
                return Err(format!("a failed sign-in answered {status}").into());
            }
        }
    }

    println!("failed sign-ins, {accounts} of each kind, in-memory store, argon2id 19 MiB t=2 p=1");
    let wrong = summary("wrong password (account)", &mut wrong);
    let unknown = summary("unknown address", &mut unknown);
    summary("malformed address", &mut malformed);
    let gap = (wrong - unknown).abs() / wrong.max(unknown);
    println!("median gap between an existing and an unknown account: {:.1} %", gap * 100.0);
    Ok(if gap <= MAX_MEDIAN_GAP { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
