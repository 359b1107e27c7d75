//! Does the time of an auth answer tell whether an account exists? Signs
//! `--accounts` accounts up (200 by default) over the in-memory adapters,
//! then times, for each kind of request that names an address, the
//! existing accounts against as many unknown addresses, interleaved (each
//! side goes first half of the time): a failed sign-in, sign-up, resend,
//! forgot, sign-in by mail, a wrong-code verify and a wrong-code reset.
//! Prints each kind's medians and exits non-zero when any kind's medians
//! differ by more than 5 %.
//!
//!   cargo build --release -p integration-tests --bins && target/release/login-timing
//!
//! What the mail worker does after an answer is left on a queue during the
//! timed request and run between requests, as the deployed queue runs it
//! in another function. The growing delay after failures is switched off:
//! it is keyed by address and client whether or not an account exists, and
//! would only hide what this measures.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth::mail_jobs::{DEFAULT_MAIL_PER_HOUR, MailJob, MailQueue, MailWorker};
use auth::password::Hasher;
use auth::secrets::CodeHasher;
use auth::{Deps, Policy};
use axum::Router;
use http::StatusCode;
use integration_tests::numeric_arg;
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::domain::Email;
use shared::mail::{Mail, MailError, Mailer, MemoryMailer, code_in};
use shared::store::BoxError;
use shared::store::memory::MemoryStore;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
const MAX_MEDIAN_GAP: f64 = 0.05;

/// Keeps mail while signing accounts up (their codes are read back), then
/// only counts it, as the deployed mailer keeps nothing in the process:
/// thousands of kept messages would weigh on the heap of the timed part
/// for one side only.
#[derive(Default)]
struct SetupMailer {
    kept: MemoryMailer,
    keeping: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Mailer for SetupMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        if self.keeping.load(std::sync::atomic::Ordering::Relaxed) {
            self.kept.send(mail).await?;
        }
        Ok(())
    }
}

/// Keeps jobs until [`Held::run`]: the timed part only enqueues.
struct Held {
    jobs: Mutex<Vec<MailJob>>,
    worker: MailWorker,
}

#[async_trait]
impl MailQueue for Held {
    async fn enqueue(&self, job: MailJob) -> Result<(), BoxError> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner).push(job);
        Ok(())
    }
}

impl Held {
    async fn run(&self) -> Result<(), BoxError> {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner));
        for job in jobs {
            self.worker.run(job).await?;
        }
        Ok(())
    }
}

async fn post(app: &Router, path: &str, body: Value) -> StatusCode {
    let request = shared::testing::api_request("POST", path, Some(body), None);
    match app.clone().oneshot(request).await {
        Ok(response) => response.status(),
        Err(never) => match never {},
    }
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort_unstable();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

/// One kind of request: its path, its body for an address, and the status
/// every address must get.
struct Kind {
    name: &'static str,
    path: &'static str,
    body: fn(&str) -> Value,
    status: StatusCode,
}

const KINDS: [Kind; 7] = [
    Kind {
        name: "failed sign-in",
        path: "/auth/login",
        body: |email| json!({"email": email, "password": "not the password"}),
        status: StatusCode::UNAUTHORIZED,
    },
    Kind {
        name: "sign-up",
        path: "/auth/signup",
        body: |email| json!({"email": email, "password": "another passphrase", "name": "B"}),
        status: StatusCode::ACCEPTED,
    },
    Kind {
        name: "resend",
        path: "/auth/resend",
        body: |email| json!({"email": email}),
        status: StatusCode::ACCEPTED,
    },
    Kind {
        name: "wrong-code verify",
        path: "/auth/verify",
        body: |email| json!({"email": email, "code": "000000", "password": PASSWORD}),
        status: StatusCode::BAD_REQUEST,
    },
    Kind {
        name: "forgot",
        path: "/auth/password/forgot",
        body: |email| json!({"email": email}),
        status: StatusCode::ACCEPTED,
    },
    Kind {
        name: "wrong-code reset",
        path: "/auth/password/reset",
        body: |email| json!({"email": email, "code": "000000", "newPassword": "a new passphrase"}),
        status: StatusCode::BAD_REQUEST,
    },
    Kind {
        name: "sign-in by mail",
        path: "/auth/login/email",
        body: |email| json!({"email": email}),
        status: StatusCode::ACCEPTED,
    },
];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<ExitCode, BoxError> {
    let accounts = numeric_arg("--accounts", 200)?;
    let mailer = Arc::new(SetupMailer::default());
    mailer.keeping.store(true, std::sync::atomic::Ordering::Relaxed);
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let codes = Arc::new(CodeHasher::ephemeral()?);
    let queue = Arc::new(Held {
        jobs: Mutex::default(),
        worker: MailWorker {
            store: store.clone(),
            mailer: mailer.clone(),
            clock: clock.clone(),
            codes: codes.clone(),
            product: Policy::default().product,
            // Not what this measures: the worker runs outside the timing.
            mail_per_hour: DEFAULT_MAIL_PER_HOUR.max(100 * accounts as u64),
        },
    });
    let fleet = "environments: [{name: stg, clusters: [{name: a, region: eu-west-1}]}]";
    let deps = Deps {
        store: store.clone(),
        fleet: Arc::new(shared::fleet::FleetSource::from_text(store.clone(), fleet)?),
        mail_jobs: queue.clone(),
        clock: clock.clone(),
        hasher: Hasher::new()?,
        codes,
        policy: Policy { failure_delay: Duration::ZERO, ..Policy::default() },
    };
    let app = shared::http::with_api_defaults(auth::router(deps), store);

    // Of one length, so that only whether an account exists differs.
    let existing: Vec<String> = (0..accounts).map(|i| format!("known{i:05}@example.com")).collect();
    let unknown: Vec<String> = (0..accounts).map(|i| format!("nonex{i:05}@example.com")).collect();
    for address in &existing {
        let body = json!({"email": address, "password": PASSWORD, "name": "Bench"});
        post(&app, "/auth/signup", body).await;
        queue.run().await?;
        let mail = mailer.kept.last_to(&Email::parse(address)?).ok_or("no verification mail")?;
        let code = code_in(&mail.text).ok_or("no code in the mail")?;
        let body = json!({"email": address, "code": code, "password": PASSWORD});
        let verified = post(&app, "/auth/verify", body).await;
        if verified != StatusCode::OK {
            return Err(format!("verification answered {verified}").into());
        }
    }

    mailer.keeping.store(false, std::sync::atomic::Ordering::Relaxed);
    println!(
        "auth answers, {accounts} existing accounts against {accounts} unknown addresses, \
         interleaved; in-memory store, argon2id 19 MiB t=2 p=1"
    );
    let mut worst: f64 = 0.0;
    for kind in &KINDS {
        // Every address's allowances start afresh for each kind.
        clock.advance(Duration::from_secs(3600));
        let (mut known, mut unknowns) = (Vec::new(), Vec::new());
        for (i, (a, b)) in existing.iter().zip(&unknown).enumerate() {
            let pair = [(a, &mut known), (b, &mut unknowns)];
            let order: Vec<_> = if i % 2 == 0 {
                pair.into_iter().collect()
            } else {
                pair.into_iter().rev().collect()
            };
            for (address, samples) in order {
                let started = Instant::now();
                let status = post(&app, kind.path, (kind.body)(address)).await;
                samples.push(started.elapsed());
                if status != kind.status {
                    return Err(format!("{}: {address} answered {status}", kind.name).into());
                }
                queue.run().await?;
            }
        }
        let (a, b) = (median_ms(&mut known), median_ms(&mut unknowns));
        let gap = (a - b).abs() / a.max(b);
        worst = worst.max(gap);
        println!(
            "{:<20} existing {a:>9.4} ms   unknown {b:>9.4} ms   gap {:>5.1} %",
            kind.name,
            gap * 100.0
        );
    }
    println!(
        "largest median gap: {:.1} % (target ≤ {:.0} %)",
        worst * 100.0,
        MAX_MEDIAN_GAP * 100.0
    );
    Ok(if worst <= MAX_MEDIAN_GAP { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
