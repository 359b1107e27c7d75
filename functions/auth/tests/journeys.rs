//! The auth API's journeys over the in-memory adapters: accounts, codes,
//! limits and sessions in the memory store, mail kept by the memory mailer.
//! The whole journey and each abuse case; every test's bed checks, when it
//! is dropped, that no response and no log line carried one of its secrets.
//! (The same journey against DynamoDB and SES on moto is in the
//! integration tests.)

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth::mail_jobs::InProcessQueue;
use auth::password::Hasher;
use auth::{Deps, Policy};
use axum::Router;
use axum::body::{Body, to_bytes};
use http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::domain::Email;
use shared::fleet::FleetSource;
use shared::mail::MemoryMailer;
use shared::mail::code_in;
use shared::store::memory::MemoryStore;
use shared::testing::{captured_log, metric_count, unique};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
/// Environments seen by everyone, by the platform team, and by dev.
const FLEET: &str = "environments:
  - {name: sandbox, clusters: [{name: sandbox-a, region: eu-west-1}]}
  - {name: stg, teams: [platform], clusters: [{name: stg-a, region: eu-west-1}]}
  - {name: dev, teams: [dev], clusters: [{name: dev-a, region: eu-west-1}]}
";
const NEW_PASSWORD: &str = "a brand new passphrase";
/// Slower answers after each failed sign-in: small, so that a hundred
/// failures take a second, yet measurable.
const FAILURE_DELAY: Duration = Duration::from_micros(200);

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

struct Bed {
    app: Router,
    /// Mail work runs after each answer; the bed waits for it.
    mail_jobs: Arc<InProcessQueue>,
    /// What was sent, as the mail service would have it.
    mailer: Arc<MemoryMailer>,
    clock: Arc<ManualClock>,
    /// Shares its counter with the router's hasher.
    hasher: Hasher,
    /// An address configured as an admin's.
    admin: String,
    /// What no response (but the one that hands it out) and no log line
    /// may contain.
    secrets: Mutex<Vec<String>>,
    addresses: Mutex<Vec<String>>,
    bodies: Mutex<Vec<String>>,
}

async fn bed() -> Bed {
    bed_with(|_| {}).await
}

async fn bed_with(configure: impl FnOnce(&mut Policy)) -> Bed {
    captured_log();
    let clock = Arc::new(ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap()));
    let admin = address("root");
    let mut policy = Policy {
        admin_emails: vec![Email::parse(&admin).unwrap()],
        failure_delay: FAILURE_DELAY,
        ..Policy::default()
    };
    configure(&mut policy);
    let hasher = Hasher::new().unwrap();
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let mailer = Arc::new(MemoryMailer::default());
    let fleet = Arc::new(FleetSource::from_text(store.clone(), FLEET).unwrap());
    let (deps, mail_jobs) = Deps::in_process(
        store.clone(),
        fleet,
        mailer.clone(),
        clock.clone(),
        hasher.clone(),
        policy,
    )
    .unwrap();
    Bed {
        app: shared::http::with_api_defaults(auth::router(deps), store),
        mail_jobs,
        mailer,
        clock,
        hasher,
        admin,
        secrets: Mutex::new(vec![PASSWORD.into(), NEW_PASSWORD.into()]),
        addresses: Mutex::default(),
        bodies: Mutex::default(),
    }
}

fn address(local: &str) -> String {
    format!("{}@example.com", unique(local))
}

impl Bed {
    async fn call(&self, method: &str, path: &str, body: Option<Value>, token: &str) -> Reply {
        let token = Some(token).filter(|t| !t.is_empty());
        self.send(shared::testing::api_request(method, path, body, token)).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body), "").await
    }

    async fn send(&self, request: Request<Body>) -> Reply {
        let reply = self.send_unrecorded(request).await;
        self.bodies.lock().unwrap().push(reply.body.to_string());
        reply
    }

    /// For the answers that hand out a secret (a token, a challenge).
    async fn send_unrecorded(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        self.mail_jobs.settle().await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        Reply { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    fn secret(&self, secret: &str) -> String {
        self.secrets.lock().unwrap().push(secret.to_owned());
        secret.to_owned()
    }

    /// A fresh address this test owns.
    fn address(&self, local: &str) -> String {
        let address = address(local);
        self.addresses.lock().unwrap().push(address.clone());
        address
    }

    /// The code in the newest mail to `to`.
    async fn last_code(&self, to: &str) -> String {
        let mails = self.mails_to(to);
        let (_, body) = mails.last().unwrap_or_else(|| panic!("no mail to {to}"));
        self.secret(&code_in(body).expect("a code in the mail"))
    }

    async fn sign_up(&self, email: &str) -> Reply {
        self.post("/auth/signup", json!({"email": email, "password": PASSWORD, "name": "Jane"}))
            .await
    }

    /// Signs `email` up and verifies it.
    async fn member(&self, email: &str) {
        assert_eq!(self.sign_up(email).await.status, StatusCode::ACCEPTED);
        let code = self.last_code(email).await;
        let reply = self
            .post("/auth/verify", json!({"email": email, "code": code, "password": PASSWORD}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.handing_out("/auth/login", json!({"email": email, "password": password})).await
    }

    /// A sign-in from the client at `ip` (the address per-client limits count).
    async fn login_from(&self, ip: &str, email: &str, password: &str) -> Reply {
        let body = json!({"email": email, "password": password});
        let mut request = shared::testing::api_request("POST", "/auth/login", Some(body), None);
        let peer: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        self.send_unrecorded(request).await
    }

    /// The second step of a sign-in with mailed codes.
    async fn login_code(&self, email: &str, challenge: &str, code: &str) -> Reply {
        let body = json!({"email": email, "challenge": challenge, "code": code});
        self.handing_out("/auth/login/code", body).await
    }

    /// Posts to a route whose success hands out a token or a challenge: the
    /// answer is not checked for secrets, what it hands out becomes one.
    async fn handing_out(&self, path: &str, body: Value) -> Reply {
        let request = shared::testing::api_request("POST", path, Some(body), None);
        let reply = self.send_unrecorded(request).await;
        let handed_out: Vec<&str> =
            ["token", "challenge"].iter().filter_map(|f| reply.body[f].as_str()).collect();
        if handed_out.is_empty() {
            self.bodies.lock().unwrap().push(reply.body.to_string());
        }
        for secret in handed_out {
            self.secret(secret);
        }
        reply
    }

    /// A session token for a member.
    async fn token(&self, email: &str) -> String {
        let reply = self.login(email, PASSWORD).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["token"].as_str().unwrap().to_owned()
    }

    /// `path` answers for an address without an account exactly as for
    /// one with, and mails nothing.
    async fn answers_an_unknown_address_like_a_known_one(&self, path: &str) {
        let unknown = self.address("nobody");
        let reply = self.post(path, json!({"email": unknown})).await;
        assert_eq!(
            (reply.status, reply.body),
            (StatusCode::ACCEPTED, json!({"status": "check_your_email"})),
            "{path}: an unknown address answers like a known one"
        );
        assert!(self.mails_to(&unknown).is_empty());
    }

    /// Every message sent to `to`, oldest first: (subject, HTML body).
    fn mails_to(&self, to: &str) -> Vec<(String, String)> {
        let sent = self.mailer.sent().into_iter().filter(|m| m.to.as_str() == to);
        sent.map(|m| (m.subject, m.html)).collect()
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Whether `text` holds `secret` as a whole word (a six-digit code may occur
/// inside a longer run of digits or hex by chance).
fn holds(text: &str, secret: &str) -> bool {
    text.match_indices(secret).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + secret.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

impl Drop for Bed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let log = captured_log().text();
        let secrets = self.secrets.lock().unwrap();
        for secret in secrets.iter() {
            assert!(!holds(&log, secret), "a log line carries a secret");
            for body in self.bodies.lock().unwrap().iter() {
                assert!(!holds(body, secret), "a response carries a secret: {body}");
            }
        }
        for address in self.addresses.lock().unwrap().iter() {
            assert!(!log.contains(address.as_str()), "addresses are masked in logs: {address}");
        }
    }
}

#[tokio::test]
async fn sign_up_verify_sign_in_me_and_sign_out() {
    let bed = bed().await;
    let email = bed.address("jane");
    let counted = ["Signups", "CodesSent", "Logins"].map(metric_count);
    let mixed_case = email.replacen("jane", "Jane", 1).replace("example.com", "Example.COM");
    assert_eq!(bed.sign_up(&mixed_case).await.status, StatusCode::ACCEPTED);
    let mails = bed.mails_to(&email);
    assert_eq!(mails.len(), 1, "one mail, to the normalised address");
    assert_eq!(mails[0].0, "Release dashboard: Confirm your email address");
    let code = bed.last_code(&email).await;

    let unverified = bed.login(&email, PASSWORD).await;
    assert_eq!(unverified.status, StatusCode::UNAUTHORIZED, "not verified yet: the generic 401");
    let verified =
        bed.post("/auth/verify", json!({"email": email, "code": code, "password": PASSWORD})).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let reused =
        bed.post("/auth/verify", json!({"email": email, "code": code, "password": PASSWORD})).await;
    assert_eq!(
        (reused.status, reused.error_code()),
        (StatusCode::BAD_REQUEST, Some("invalid_code"))
    );

    let login = bed.login(&email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["user"]["email"], email.as_str());
    assert_eq!(login.body["user"]["role"], "viewer");
    assert!(login.body["expiresAt"].is_string() && login.body["idleExpiresAt"].is_string());
    let now = ["Signups", "CodesSent", "Logins"].map(metric_count);
    assert!(now.iter().zip(counted).all(|(now, before)| *now > before), "{counted:?} → {now:?}");
    let token = login.body["token"].as_str().unwrap();
    let me = bed.call("GET", "/auth/me", None, token).await;
    assert_eq!((me.status, me.body["email"].as_str()), (StatusCode::OK, Some(email.as_str())));

    let out = bed.call("POST", "/auth/logout", None, token).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let reuse = bed.call("GET", "/auth/me", None, token).await;
    assert_eq!(reuse.status, StatusCode::UNAUTHORIZED, "a signed-out token is dead");
    let again = bed.call("POST", "/auth/logout", None, token).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
}

const ATTACKER_PASSWORD: &str = "the attacker's own passphrase";

#[tokio::test]
async fn a_sign_up_made_before_the_owner_s_never_survives_the_owner_s_verification() {
    let bed = bed().await;
    bed.secret(ATTACKER_PASSWORD);
    for victim in [bed.address("victim"), bed.admin.clone()] {
        let attacker = json!({"email": victim, "password": ATTACKER_PASSWORD, "name": "Mallory"});
        assert_eq!(bed.post("/auth/signup", attacker).await.status, StatusCode::ACCEPTED);
        let polled = bed.login(&victim, ATTACKER_PASSWORD).await;
        assert_eq!(polled.status, StatusCode::UNAUTHORIZED, "a pending account cannot sign in");
        assert_eq!(polled.body, bed.login(&victim, "any other password").await.body);

        // The owner signs up at once (over the minute's allowance: no new
        // mail) and types the code that did arrive, with their password.
        assert_eq!(bed.sign_up(&victim).await.status, StatusCode::ACCEPTED);
        assert_eq!(bed.mails_to(&victim).len(), 1, "the attacker's code only");
        let attacker_s_code = bed.last_code(&victim).await;
        let body = json!({"email": victim, "code": attacker_s_code, "password": PASSWORD});
        let refused = bed.post("/auth/verify", body).await;
        assert_eq!(refused.error_code(), Some("invalid_code"), "not with the owner's password");

        // A minute on, the owner's own sign-up mails a code bound to it.
        bed.advance(Duration::from_secs(61));
        assert_eq!(bed.sign_up(&victim).await.status, StatusCode::ACCEPTED);
        let code = bed.last_code(&victim).await;
        let body = json!({"email": victim, "code": code, "password": PASSWORD});
        let verified = bed.post("/auth/verify", body).await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);

        let owner = bed.login(&victim, PASSWORD).await;
        assert_eq!(owner.status, StatusCode::OK, "the owner's password: {}", owner.body);
        let expected_role = if victim == bed.admin { "admin" } else { "viewer" };
        assert_eq!(owner.body["user"]["role"], expected_role);
        assert_eq!(owner.body["user"]["name"], "Jane", "the owner's sign-up, not Mallory's");
        let attacker = bed.login(&victim, ATTACKER_PASSWORD).await;
        assert_eq!(attacker.status, StatusCode::UNAUTHORIZED, "never the attacker's");
    }
}

#[tokio::test]
async fn a_resent_code_carries_the_newest_sign_up() {
    let bed = bed().await;
    bed.secret(ATTACKER_PASSWORD);
    let email = bed.address("jane");
    let attacker = json!({"email": email, "password": ATTACKER_PASSWORD, "name": "Mallory"});
    bed.post("/auth/signup", attacker).await;
    bed.advance(Duration::from_secs(61));
    bed.sign_up(&email).await;
    bed.advance(Duration::from_secs(61));
    assert_eq!(
        bed.post("/auth/resend", json!({"email": email})).await.status,
        StatusCode::ACCEPTED
    );
    let code = bed.last_code(&email).await;
    let body = json!({"email": email, "code": code, "password": PASSWORD});
    assert_eq!(bed.post("/auth/verify", body).await.status, StatusCode::OK, "the owner's");
    assert_eq!(bed.login(&email, ATTACKER_PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    let owner = bed.login(&email, PASSWORD).await;
    assert_eq!((owner.status, owner.body["user"]["name"].as_str()), (StatusCode::OK, Some("Jane")));
}

#[tokio::test]
async fn a_code_works_only_with_the_password_of_the_sign_up_it_was_mailed_for() {
    let bed = bed().await;
    bed.secret(ATTACKER_PASSWORD);
    let email = bed.address("jane");
    let attacker = json!({"email": email, "password": ATTACKER_PASSWORD, "name": "Mallory"});
    bed.post("/auth/signup", attacker).await;
    let code = bed.last_code(&email).await;
    let with_other = json!({"email": email, "code": code, "password": PASSWORD});
    assert_eq!(bed.post("/auth/verify", with_other).await.error_code(), Some("invalid_code"));
    // Whoever reads the mailbox and knows that sign-up's password is its
    // owner: then it works.
    let with_own = json!({"email": email, "code": code, "password": ATTACKER_PASSWORD});
    assert_eq!(bed.post("/auth/verify", with_own).await.status, StatusCode::OK);
}

#[tokio::test]
async fn every_sequence_of_sign_up_resend_forgot_verify_and_reset_answers_alike() {
    let bed = bed().await;
    let active = bed.address("active");
    let pending = bed.address("pending");
    bed.member(&active).await;
    bed.sign_up(&pending).await;
    // Windows aligned: every address starts with a fresh allowance.
    bed.advance(Duration::from_secs(3600));
    let unknown = bed.address("unknown");
    // (path, body for an address, seconds to wait before the step)
    type Step = (&'static str, fn(&str) -> Value, u64);
    let steps: [Step; 13] = [
        ("/auth/signup", |e| json!({"email": e, "password": "xx-another-pass", "name": "X"}), 0),
        ("/auth/resend", |e| json!({"email": e}), 0),
        ("/auth/password/forgot", |e| json!({"email": e}), 0),
        ("/auth/password/forgot", |e| json!({"email": e}), 0),
        ("/auth/verify", |e| json!({"email": e, "code": "000000", "password": "xx"}), 0),
        (
            "/auth/password/reset",
            |e| json!({"email": e, "code": "000000", "newPassword": "xx-new-passphrase"}),
            0,
        ),
        ("/auth/resend", |e| json!({"email": e}), 61),
        ("/auth/signup", |e| json!({"email": e, "password": "xx-another-pass", "name": "X"}), 0),
        ("/auth/resend", |e| json!({"email": e}), 61),
        ("/auth/resend", |e| json!({"email": e}), 61),
        ("/auth/resend", |e| json!({"email": e}), 61),
        ("/auth/resend", |e| json!({"email": e}), 61),
        ("/auth/login/email", |e| json!({"email": e}), 0),
    ];
    for (i, (path, body, wait)) in steps.iter().enumerate() {
        bed.advance(Duration::from_secs(*wait));
        let mut answers = Vec::new();
        for address in [&active, &pending, &unknown] {
            let reply = bed.handing_out(path, body(address)).await;
            let mut shown = reply.body.clone();
            if shown.get("challenge").is_some() {
                shown["challenge"] = json!("<challenge>");
            }
            let retry = reply.headers.get(header::RETRY_AFTER).cloned();
            answers.push((reply.status, shown, retry));
        }
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "step {i} ({path}): active, pending and unknown answer alike: {answers:?}"
        );
    }
}

#[tokio::test]
async fn notices_to_a_registered_address_are_limited_like_every_other_mail() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    bed.advance(Duration::from_secs(3600));
    for _ in 0..12 {
        let reply = bed.sign_up(&email).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        bed.advance(Duration::from_secs(61));
    }
    let notices = bed
        .mails_to(&email)
        .into_iter()
        .filter(|(subject, _)| subject.contains("someone tried to sign up"))
        .count();
    assert_eq!(notices, 5, "five an hour, like every other mail to one address");
}

#[tokio::test]
async fn the_installation_sends_at_most_its_hourly_mail_in_total() {
    let bed = bed().await;
    let dropped = metric_count("MailDropped");
    let worker = auth::mail_jobs::MailWorker {
        store: Arc::new(MemoryStore::new(bed.clock.clone())),
        mailer: Arc::new(MemoryMailer::default()),
        clock: bed.clock.clone(),
        codes: Arc::new(auth::secrets::CodeHasher::new(&[5u8; 32]).unwrap()),
        product: "X".into(),
        mail_per_hour: 3,
    };
    let mailer = Arc::new(MemoryMailer::default());
    let worker = auth::mail_jobs::MailWorker { mailer: mailer.clone(), ..worker };
    for i in 0..5 {
        let email = Email::parse(address(&format!("many{i}"))).unwrap();
        worker.run(auth::mail_jobs::MailJob::Forgot { email: email.clone() }).await.unwrap();
        let sign_up = auth::codes::SignUp { password_hash: "h".into(), name: "N".into() };
        worker.run(auth::mail_jobs::MailJob::SignUp { email, sign_up }).await.unwrap();
    }
    assert_eq!(mailer.sent().len(), 3, "three mails this hour, then none");
    assert!(metric_count("MailDropped") >= dropped + 2, "what is dropped is counted");
    bed.advance(Duration::from_secs(3600));
    let email = Email::parse(address("later")).unwrap();
    let sign_up = auth::codes::SignUp { password_hash: "h".into(), name: "N".into() };
    worker.run(auth::mail_jobs::MailJob::SignUp { email, sign_up }).await.unwrap();
    assert_eq!(mailer.sent().len(), 4, "a new hour");
}

#[tokio::test]
async fn sessions_end_after_idle_time_and_absolute_lifetime() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let token = bed.token(&email).await;
    // Used every 20 minutes, a session lives past its 30-minute idle limit…
    for _ in 0..3 {
        bed.advance(Duration::from_secs(20 * 60));
        assert_eq!(bed.call("GET", "/auth/me", None, &token).await.status, StatusCode::OK);
    }
    // …but not 31 minutes unused.
    bed.advance(Duration::from_secs(31 * 60));
    assert_eq!(bed.call("GET", "/auth/me", None, &token).await.status, StatusCode::UNAUTHORIZED);

    let token = bed.token(&email).await;
    for _ in 0..36 {
        bed.advance(Duration::from_secs(20 * 60));
        let status = bed.call("GET", "/auth/me", None, &token).await.status;
        if status != StatusCode::OK {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            return;
        }
    }
    panic!("a session in constant use still ends after 12 hours");
}

#[tokio::test]
async fn a_duplicate_sign_up_answers_the_same_and_mails_the_owner() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let body = json!({"email": email, "password": "another long passphrase", "name": "Mallory"});
    bed.advance(Duration::from_secs(61));
    let duplicate = bed.post("/auth/signup", body).await;
    assert_eq!(
        (duplicate.status, duplicate.body),
        (StatusCode::ACCEPTED, json!({"status": "check_your_email"}))
    );
    let (subject, _) = bed.mails_to(&email).pop().unwrap();
    assert!(subject.contains("someone tried to sign up"), "{subject}");
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::OK, "the owner's password");
    assert_eq!(
        bed.login(&email, "another long passphrase").await.status,
        StatusCode::UNAUTHORIZED,
        "not the duplicate's"
    );
}

#[tokio::test]
async fn wrong_codes_are_refused_and_the_sixth_try_fails_even_with_the_right_code() {
    let bed = bed().await;
    let email = bed.address("bob");
    bed.sign_up(&email).await;
    let code = bed.last_code(&email).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let reply = bed
            .post("/auth/verify", json!({"email": email, "code": wrong, "password": PASSWORD}))
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, Some("invalid_code"))
        );
    }
    let sixth =
        bed.post("/auth/verify", json!({"email": email, "code": code, "password": PASSWORD})).await;
    assert_eq!(sixth.status, StatusCode::BAD_REQUEST, "five wrong tries void the code");
    for malformed in ["12345", "abcdef", "1234567", ""] {
        let reply = bed
            .post("/auth/verify", json!({"email": email, "code": malformed, "password": PASSWORD}))
            .await;
        assert_eq!(reply.error_code(), Some("invalid_code"));
    }
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::UNAUTHORIZED, "pending");

    bed.advance(Duration::from_secs(61));
    assert_eq!(
        bed.post("/auth/resend", json!({"email": email})).await.status,
        StatusCode::ACCEPTED
    );
    let fresh = bed.last_code(&email).await;
    let reply = bed
        .post("/auth/verify", json!({"email": email, "code": fresh, "password": PASSWORD}))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "a new code works");
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let bed = bed().await;
    let email = bed.address("bob");
    bed.sign_up(&email).await;
    let code = bed.last_code(&email).await;
    bed.advance(Duration::from_secs(10 * 60 + 1));
    let late =
        bed.post("/auth/verify", json!({"email": email, "code": code, "password": PASSWORD})).await;
    assert_eq!((late.status, late.error_code()), (StatusCode::BAD_REQUEST, Some("invalid_code")));
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn resends_are_limited_to_one_a_minute_and_five_an_hour_per_address() {
    let bed = bed().await;
    let email = bed.address("bob");
    bed.sign_up(&email).await;
    let flood = bed.post("/auth/resend", json!({"email": email})).await;
    assert_eq!(
        (flood.status, flood.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests"))
    );
    let retry_after: u64 = flood.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    for _ in 0..4 {
        bed.advance(Duration::from_secs(61));
        let reply = bed.post("/auth/resend", json!({"email": email})).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    bed.advance(Duration::from_secs(61));
    let hourly = bed.post("/auth/resend", json!({"email": email})).await;
    assert_eq!(hourly.status, StatusCode::TOO_MANY_REQUESTS, "the sixth within the hour");
    assert_eq!(bed.mails_to(&email).len(), 5, "sign-up and four resends");

    bed.answers_an_unknown_address_like_a_known_one("/auth/resend").await;
}

#[tokio::test]
async fn every_failed_sign_in_is_the_same_401_and_costs_one_password_hash() {
    let bed = bed().await;
    let email = bed.address("jane");
    let disabled = bed.address("gone");
    bed.member(&email).await;
    bed.member(&disabled).await;
    bed.member(&bed.admin).await;
    let admin = bed.token(&bed.admin).await;
    let path = format!("/auth/users/{disabled}");
    let reply = bed.call("PATCH", &path, Some(json!({"disabled": true})), &admin).await;
    assert_eq!(reply.status, StatusCode::OK);

    let nobody = bed.address("nobody");
    let attempts = [
        (email.as_str(), "not the password"),
        (nobody.as_str(), "not the password"),
        ("not-an-email", "not the password"),
        (disabled.as_str(), PASSWORD),
    ];
    let mut answers = Vec::new();
    for (address, password) in attempts {
        let before = bed.hasher.verifications();
        let reply = bed.login(address, password).await;
        assert_eq!(bed.hasher.verifications(), before + 1, "{address}: one hash, like any other");
        answers.push((reply.status, reply.body));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
}

#[tokio::test]
async fn one_client_s_wrong_passwords_slow_and_stop_that_client_but_not_the_owner() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let lockouts = metric_count("Lockouts");
    let failures = metric_count("LoginFailures");
    let mut waits = Vec::new();
    for attempt in 1..=20u32 {
        let started = Instant::now();
        let reply = bed.login_from("203.0.113.66", &email, "not the password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        waits.push(started.elapsed());
    }
    assert!(waits[19] >= FAILURE_DELAY * 19, "the twentieth failure waited {:?}", waits[19]);
    let stopped = bed.login_from("203.0.113.66", &email, PASSWORD).await;
    assert_eq!(
        (stopped.status, stopped.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests")),
        "that client is stopped, even with the right password"
    );
    assert!(stopped.headers.contains_key(header::RETRY_AFTER));
    assert!(metric_count("LoginFailures") >= failures + 20);
    assert!(metric_count("Lockouts") > lockouts, "the stop is counted");
    let owner = bed.login_from("198.51.100.1", &email, PASSWORD).await;
    assert_eq!(owner.status, StatusCode::OK, "the owner, from another client, signs in");
    bed.advance(Duration::from_secs(3600));
    let later = bed.login_from("203.0.113.66", &email, PASSWORD).await;
    assert_eq!(later.status, StatusCode::OK, "a new hour");
}

#[tokio::test]
async fn a_hundred_failures_from_many_clients_stop_password_guesses_and_the_owner_signs_in_by_mail()
{
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    for attempt in 0..100u32 {
        let ip = format!("203.0.113.{}", attempt / 10);
        let reply = bed.login_from(&ip, &email, "not the password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let shut = bed.login_from("198.51.100.1", &email, PASSWORD).await;
    assert_eq!(shut.status, StatusCode::TOO_MANY_REQUESTS, "ASVS: 100 failures an hour at most");
    let other = bed.address("bob");
    bed.member(&other).await;
    assert_eq!(bed.login_from("203.0.113.1", &other, PASSWORD).await.status, StatusCode::OK);

    let by_mail = bed.handing_out("/auth/login/email", json!({"email": email})).await;
    assert_eq!(by_mail.status, StatusCode::ACCEPTED, "{}", by_mail.body);
    let challenge = by_mail.body["challenge"].as_str().unwrap().to_owned();
    let code = bed.last_code(&email).await;
    let signed_in = bed.login_code(&email, &challenge, &code).await;
    assert_eq!(signed_in.status, StatusCode::OK, "the owner gets in by mail: {}", signed_in.body);

    let nobody = bed.address("nobody");
    let unknown = bed.handing_out("/auth/login/email", json!({"email": nobody})).await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED, "the same answer for any address");
    assert_eq!(unknown.body["status"], by_mail.body["status"]);
    assert!(bed.mails_to(&nobody).is_empty());
}

#[tokio::test]
async fn concurrent_wrong_passwords_never_get_a_101st_guess_checked() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let before = bed.hasher.verifications();
    let guesses = (0..130u32).map(|i| {
        let ip = format!("192.0.2.{i}");
        let email = email.clone();
        let bed = &bed;
        async move { bed.login_from(&ip, &email, "not the password").await.status }
    });
    let statuses = futures::future::join_all(guesses).await;
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(bed.hasher.verifications() - before, 100, "exactly 100 passwords were checked");
    assert_eq!(refused, 30, "{statuses:?}");
}

#[tokio::test]
async fn a_password_reset_changes_the_password_and_ends_older_sessions() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let old_token = bed.token(&email).await;

    let forgot = bed.post("/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(forgot.status, StatusCode::ACCEPTED);
    let (subject, _) = bed.mails_to(&email).pop().unwrap();
    assert!(subject.contains("Reset your password"), "{subject}");
    let code = bed.last_code(&email).await;
    let again = bed.post("/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS, "one a minute");

    let weak = json!({"email": email, "code": code, "newPassword": "password1"});
    let reply = bed.post("/auth/password/reset", weak).await;
    assert_eq!(reply.error_code(), Some("weak_password"));
    let wrong = json!({"email": email, "code": "000000", "newPassword": NEW_PASSWORD});
    assert_eq!(bed.post("/auth/password/reset", wrong).await.error_code(), Some("invalid_code"));
    let reset = json!({"email": email, "code": code, "newPassword": NEW_PASSWORD});
    let reply = bed.post("/auth/password/reset", reset.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reused = bed.post("/auth/password/reset", reset).await;
    assert_eq!(reused.error_code(), Some("invalid_code"), "the code is used up");

    let old = bed.call("GET", "/auth/me", None, &old_token).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "older sessions end");
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bed.login(&email, NEW_PASSWORD).await.status, StatusCode::OK);

    bed.answers_an_unknown_address_like_a_known_one("/auth/password/forgot").await;
}

#[tokio::test]
async fn admins_list_change_and_disable_users() {
    let bed = bed().await;
    let jane = bed.address("jane");
    bed.member(&bed.admin).await;
    bed.member(&jane).await;
    let root = bed.token(&bed.admin).await;
    let token = bed.token(&jane).await;

    let me = bed.call("GET", "/auth/me", None, &root).await;
    assert_eq!(me.body["role"], "admin", "a configured admin address signs up as admin");
    let forbidden = bed.call("GET", "/auth/users", None, &token).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let page = bed.call("GET", "/auth/users?limit=1", None, &root).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert!(!page.body.to_string().contains("argon2"), "no hashes in the directory");
    let next = page.body["next"].as_str().unwrap();
    let second = bed.call("GET", &format!("/auth/users?limit=1&cursor={next}"), None, &root).await;
    let mut emails: Vec<&str> = [&page.body, &second.body]
        .iter()
        .map(|p| p["items"][0]["email"].as_str().unwrap())
        .collect();
    emails.sort_unstable();
    let mut expected = [jane.as_str(), bed.admin.as_str()];
    expected.sort_unstable();
    assert_eq!(emails, expected);
    let garbled = bed.call("GET", "/auth/users?cursor=garbage", None, &root).await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);

    let change = json!({"role": "admin", "teams": ["platform"]});
    let reply = bed.call("PATCH", &format!("/auth/users/{jane}"), Some(change), &root).await;
    assert_eq!((reply.status, reply.body["role"].as_str()), (StatusCode::OK, Some("admin")));
    let me = bed.call("GET", "/auth/me", None, &token).await;
    assert_eq!(
        (me.body["role"].as_str(), me.body["teams"][0].as_str()),
        (Some("admin"), Some("platform"))
    );

    let disable = json!({"disabled": true});
    let reply =
        bed.call("PATCH", &format!("/auth/users/{jane}"), Some(disable.clone()), &root).await;
    assert_eq!(reply.status, StatusCode::OK);
    let me = bed.call("GET", "/auth/me", None, &token).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "disabled: sessions end");
    assert_eq!(bed.login(&jane, PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    bed.post("/auth/password/forgot", json!({"email": jane})).await;
    let (subject, _) = bed.mails_to(&jane).pop().unwrap();
    assert!(!subject.contains("Reset"), "no reset for a disabled account: {subject}");

    let own = bed.call("PATCH", &format!("/auth/users/{}", bed.admin), Some(disable), &root).await;
    assert_eq!((own.status, own.error_code()), (StatusCode::BAD_REQUEST, Some("self_lockout")));
    let missing = bed.address("nobody");
    let reply = bed
        .call("PATCH", &format!("/auth/users/{missing}"), Some(json!({"teams": []})), &root)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let unknown_field = json!({"password": "x"});
    let reply = bed.call("PATCH", &format!("/auth/users/{jane}"), Some(unknown_field), &root).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let bad_team = json!({"teams": ["Not A Team!"]});
    let reply = bed.call("PATCH", &format!("/auth/users/{jane}"), Some(bad_team), &root).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let enable = json!({"disabled": false});
    let reply = bed.call("PATCH", &format!("/auth/users/{jane}"), Some(enable), &root).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(bed.login(&jane, PASSWORD).await.status, StatusCode::OK, "enabled again");
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors_and_change_nothing() {
    let bed = bed().await;
    let email = bed.address("jane");
    let json_request = |path: &str, content_type: &str, body: String| {
        Request::post(path)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let cases = [
        (json!({"email": email, "password": "password123", "name": "Jane"}), "weak_password"),
        (json!({"email": email, "password": "short", "name": "Jane"}), "weak_password"),
        (json!({"email": "not an address", "password": PASSWORD, "name": "Jane"}), "invalid_email"),
        (json!({"email": email, "password": PASSWORD, "name": ""}), "invalid_name"),
        (
            json!({"email": email, "password": PASSWORD, "name": "J", "role": "admin"}),
            "invalid_body",
        ),
        (json!({"email": email, "password": PASSWORD}), "invalid_body"),
        (json!({"email": email, "password": 12345678, "name": "J"}), "invalid_body"),
    ];
    for (body, code) in cases {
        let reply = bed.post("/auth/signup", body.clone()).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
        assert!(reply.body["error"]["message"].is_string());
    }
    let malformed =
        bed.send(json_request("/auth/signup", "application/json", "{not json".into())).await;
    assert_eq!(
        (malformed.status, malformed.error_code()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let plain = format!(r#"{{"email": "{email}", "password": "{PASSWORD}", "name": "J"}}"#);
    let text = bed.send(json_request("/auth/signup", "text/plain", plain)).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text.error_code().is_some(), "a JSON error: {}", text.body);
    let huge =
        format!(r#"{{"email": "{email}", "password": "{}", "name": "J"}}"#, "a".repeat(100_000));
    let oversized = bed.send(json_request("/auth/signup", "application/json", huge)).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(oversized.error_code().is_some(), "a JSON error: {}", oversized.body);
    let no_route = bed.post("/auth/nothing-here", json!({})).await;
    assert_eq!(
        (no_route.status, no_route.error_code()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let wrong_method = bed.call("GET", "/auth/login", None, "").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);

    assert!(bed.mails_to(&email).is_empty(), "nothing was sent");
    assert_eq!(bed.sign_up(&email).await.status, StatusCode::ACCEPTED, "and nothing was created");
    assert_eq!(
        bed.mails_to(&email).pop().unwrap().0,
        "Release dashboard: Confirm your email address"
    );
}

#[tokio::test]
async fn sign_up_can_be_limited_to_the_organisation_s_domains() {
    let bed = bed_with(|policy| policy.allowed_domains = vec!["corp.example".into()]).await;
    let outsider = bed.address("eve");
    let reply = bed.sign_up(&outsider).await;
    assert_eq!(reply.error_code(), Some("email_domain_not_allowed"));
    let insider = format!("{}@corp.example", unique("jane"));
    bed.addresses.lock().unwrap().push(insider.clone());
    assert_eq!(bed.sign_up(&insider).await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn with_mailed_codes_switched_on_a_sign_in_needs_the_code_and_the_challenge() {
    let bed = bed_with(|policy| policy.login_email_code = true).await;
    let email = bed.address("jane");
    bed.member(&email).await;

    let first = bed.login(&email, PASSWORD).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["status"], "code_sent");
    assert!(first.body.get("token").is_none(), "no session yet");
    let challenge = first.body["challenge"].as_str().unwrap().to_owned();
    let (subject, _) = bed.mails_to(&email).pop().unwrap();
    assert_eq!(subject, "Release dashboard: Your sign-in code");
    let code = bed.last_code(&email).await;

    let wrong_password = bed.login(&email, "not the password").await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED, "no code for a wrong password");
    assert_eq!(bed.mails_to(&email).len(), 2, "verification and one sign-in code");

    let without_challenge = bed.login_code(&email, "made-up", &code).await;
    assert_eq!(without_challenge.status, StatusCode::UNAUTHORIZED, "the code alone is not enough");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let wrong_code = bed.login_code(&email, &challenge, wrong).await;
    assert_eq!(wrong_code.status, StatusCode::UNAUTHORIZED);
    let missing = bed
        .post("/auth/login/code", json!({"email": email, "code": code, "password": PASSWORD}))
        .await;
    assert_eq!(missing.error_code(), Some("invalid_body"));

    let second = bed.login_code(&email, &challenge, &code).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let token = second.body["token"].as_str().unwrap();
    assert_eq!(bed.call("GET", "/auth/me", None, token).await.status, StatusCode::OK);
    let reused = bed.login_code(&email, &challenge, &code).await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "a code signs in once");

    // A code mailed just before the account is disabled no longer works.
    let first = bed.login(&email, PASSWORD).await;
    let challenge = first.body["challenge"].as_str().unwrap().to_owned();
    let code = bed.last_code(&email).await;
    bed.member(&bed.admin).await;
    let admin_first = bed.login(&bed.admin, PASSWORD).await;
    let admin_challenge = admin_first.body["challenge"].as_str().unwrap().to_owned();
    let admin_code = bed.last_code(&bed.admin).await;
    let admin = bed.login_code(&bed.admin, &admin_challenge, &admin_code).await;
    let root = admin.body["token"].as_str().unwrap();
    let disable = json!({"disabled": true});
    let reply = bed.call("PATCH", &format!("/auth/users/{email}"), Some(disable), root).await;
    assert_eq!(reply.status, StatusCode::OK);
    let late = bed.login_code(&email, &challenge, &code).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "disabled between the two steps");
}

#[tokio::test]
async fn the_log_is_captured_and_says_what_happened() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    bed.token(&email).await;
    let log = captured_log().text();
    assert!(log.contains("signed in"), "the log was captured: {log}");
}

#[tokio::test]
async fn me_says_which_environments_an_account_sees_and_who_assigns_teams() {
    let bed = bed().await;
    let jane = bed.address("jane");
    bed.member(&jane).await;
    bed.member(&bed.admin).await;
    let token = bed.token(&jane).await;
    let me = bed.call("GET", "/auth/me", None, &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["environments"], json!(["sandbox"]), "only what no team holds");
    let sees = me.body["sees"].as_str().unwrap();
    assert!(sees.contains("an admin assigns teams") && sees.contains("none"), "{sees}");

    let root = bed.token(&bed.admin).await;
    let change = json!({"teams": ["platform"]});
    bed.call("PATCH", &format!("/auth/users/{jane}"), Some(change), &root).await;
    let me = bed.call("GET", "/auth/me", None, &token).await;
    assert_eq!(me.body["environments"], json!(["sandbox", "stg"]));
    assert!(me.body["sees"].as_str().unwrap().contains("platform"));
    let admin = bed.call("GET", "/auth/me", None, &root).await;
    assert_eq!(admin.body["environments"], json!(["sandbox", "stg", "dev"]));
    assert!(admin.body["sees"].as_str().unwrap().contains("admin"));
}

#[tokio::test]
async fn a_pending_account_is_gone_after_a_week_and_an_active_one_stays() {
    let bed = bed().await;
    bed.member(&bed.admin).await;
    let member = bed.address("jane");
    bed.member(&member).await;
    let stranger = bed.address("never-proven");
    bed.sign_up(&stranger).await;
    let listed = |page: &Reply| -> Vec<String> {
        page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let root = bed.token(&bed.admin).await;
    let users = listed(&bed.call("GET", "/auth/users?limit=500", None, &root).await);
    assert!(users.contains(&stranger) && users.contains(&member), "{users:?}");
    bed.advance(shared::records::account::PENDING_TTL + Duration::from_secs(1));
    let root = bed.token(&bed.admin).await;
    let users = listed(&bed.call("GET", "/auth/users?limit=500", None, &root).await);
    assert!(!users.contains(&stranger), "an unproven sign-up does not outlive a week: {users:?}");
    assert!(users.contains(&member), "a verified account stays");
    assert_eq!(bed.login(&member, PASSWORD).await.status, StatusCode::OK);
}
