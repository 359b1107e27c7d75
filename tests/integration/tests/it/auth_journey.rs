//! The auth API against moto: accounts, codes, limits and sessions in
//! DynamoDB, mail through SES and read back from moto's record of it. The
//! whole journey and each abuse case; every test's bed checks, when it is
//! dropped, that no response and no log line carried one of its secrets.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use auth::password::Hasher;
use auth::secrets::CodeHasher;
use auth::{Deps, Policy};
use axum::Router;
use axum::body::{Body, to_bytes};
use http::{HeaderMap, Request, StatusCode, header};
use integration_tests::{aws, fresh_table, mails_to, unique};
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::domain::Email;
use shared::mail::code_in;
use shared::mail::ses::SesMailer;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
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
    let config = aws().await;
    let ses = aws_sdk_ses::Client::new(&config);
    let sender = Email::parse(address("no-reply")).unwrap();
    ses.verify_email_identity().email_address(sender.as_str()).send().await.unwrap();
    let admin = address("root");
    let mut policy = Policy {
        admin_emails: vec![Email::parse(&admin).unwrap()],
        failure_delay: FAILURE_DELAY,
        ..Policy::default()
    };
    configure(&mut policy);
    let hasher = Hasher::new().unwrap();
    let store = Arc::new(fresh_table(clock.clone()).await);
    let deps = Deps {
        store: store.clone(),
        mailer: Arc::new(SesMailer::new(ses, sender)),
        clock: clock.clone(),
        hasher: hasher.clone(),
        codes: CodeHasher::new(&[5u8; 32]).unwrap(),
        policy,
    };
    Bed {
        app: shared::http::with_api_defaults(auth::router(deps), store),
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
        let mails = mails_to(to).await;
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
        let reply = self.post("/auth/verify", json!({"email": email, "code": code})).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    async fn login(&self, email: &str, password: &str) -> Reply {
        self.handing_out("/auth/login", json!({"email": email, "password": password})).await
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
        assert!(mails_to(&unknown).await.is_empty());
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
    let counted = ["Signups", "CodesSent", "Logins"].map(crate::metric_count);
    let mixed_case = email.replacen("jane", "Jane", 1).replace("example.com", "Example.COM");
    assert_eq!(bed.sign_up(&mixed_case).await.status, StatusCode::ACCEPTED);
    let mails = mails_to(&email).await;
    assert_eq!(mails.len(), 1, "one mail, to the normalised address");
    assert_eq!(mails[0].0, "Release dashboard: Confirm your email address");
    let code = bed.last_code(&email).await;

    let unverified = bed.login(&email, PASSWORD).await;
    assert_eq!(unverified.status, StatusCode::FORBIDDEN, "not verified yet");
    let verified = bed.post("/auth/verify", json!({"email": email, "code": code})).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    let reused = bed.post("/auth/verify", json!({"email": email, "code": code})).await;
    assert_eq!(
        (reused.status, reused.error_code()),
        (StatusCode::BAD_REQUEST, Some("invalid_code"))
    );

    let login = bed.login(&email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["user"]["email"], email.as_str());
    assert_eq!(login.body["user"]["role"], "viewer");
    assert!(login.body["expiresAt"].is_string() && login.body["idleExpiresAt"].is_string());
    let now = ["Signups", "CodesSent", "Logins"].map(crate::metric_count);
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
    let hashes = bed.hasher.verifications();
    let duplicate = bed.post("/auth/signup", body).await;
    assert_eq!(
        (duplicate.status, duplicate.body),
        (StatusCode::ACCEPTED, json!({"status": "check_your_email"}))
    );
    assert_eq!(bed.hasher.verifications(), hashes + 1, "a duplicate pays for a hash too");
    let (subject, _) = mails_to(&email).await.pop().unwrap();
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
        let reply = bed.post("/auth/verify", json!({"email": email, "code": wrong})).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (StatusCode::BAD_REQUEST, Some("invalid_code"))
        );
    }
    let sixth = bed.post("/auth/verify", json!({"email": email, "code": code})).await;
    assert_eq!(sixth.status, StatusCode::BAD_REQUEST, "five wrong tries void the code");
    for malformed in ["12345", "abcdef", "1234567", ""] {
        let reply = bed.post("/auth/verify", json!({"email": email, "code": malformed})).await;
        assert_eq!(reply.error_code(), Some("invalid_code"));
    }
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::FORBIDDEN, "still pending");

    bed.advance(Duration::from_secs(61));
    assert_eq!(
        bed.post("/auth/resend", json!({"email": email})).await.status,
        StatusCode::ACCEPTED
    );
    let fresh = bed.last_code(&email).await;
    let reply = bed.post("/auth/verify", json!({"email": email, "code": fresh})).await;
    assert_eq!(reply.status, StatusCode::OK, "a new code works");
}

#[tokio::test]
async fn a_code_expires_after_ten_minutes() {
    let bed = bed().await;
    let email = bed.address("bob");
    bed.sign_up(&email).await;
    let code = bed.last_code(&email).await;
    bed.advance(Duration::from_secs(10 * 60 + 1));
    let late = bed.post("/auth/verify", json!({"email": email, "code": code})).await;
    assert_eq!((late.status, late.error_code()), (StatusCode::BAD_REQUEST, Some("invalid_code")));
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::FORBIDDEN);
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
    assert_eq!(mails_to(&email).await.len(), 5, "sign-up and four resends");

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
async fn a_hundred_failed_sign_ins_lock_the_account_for_the_hour_with_growing_delays() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let lockouts = crate::metric_count("Lockouts");
    let failures = crate::metric_count("LoginFailures");
    let mut last = Duration::ZERO;
    for attempt in 1..=100u32 {
        let started = Instant::now();
        let reply = bed.login(&email, "not the password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        last = started.elapsed();
    }
    assert!(last >= FAILURE_DELAY * 100, "the hundredth failure waited {last:?}");
    let locked = bed.login(&email, PASSWORD).await;
    assert_eq!(
        (locked.status, locked.error_code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests")),
        "locked, even with the right password"
    );
    assert!(locked.headers.contains_key(header::RETRY_AFTER));
    // Other tests count too, but only this one locks an account out.
    assert!(crate::metric_count("LoginFailures") >= failures + 100);
    assert!(crate::metric_count("Lockouts") > lockouts, "the lockout is counted");
    let other = bed.address("bob");
    bed.member(&other).await;
    assert_eq!(bed.login(&other, PASSWORD).await.status, StatusCode::OK, "per account");
    bed.advance(Duration::from_secs(3600));
    assert_eq!(bed.login(&email, PASSWORD).await.status, StatusCode::OK, "a new hour");
}

#[tokio::test]
async fn a_password_reset_changes_the_password_and_ends_older_sessions() {
    let bed = bed().await;
    let email = bed.address("jane");
    bed.member(&email).await;
    let old_token = bed.token(&email).await;

    let forgot = bed.post("/auth/password/forgot", json!({"email": email})).await;
    assert_eq!(forgot.status, StatusCode::ACCEPTED);
    let (subject, _) = mails_to(&email).await.pop().unwrap();
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
    let (subject, _) = mails_to(&jane).await.pop().unwrap();
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

    assert!(mails_to(&email).await.is_empty(), "nothing was sent");
    assert_eq!(bed.sign_up(&email).await.status, StatusCode::ACCEPTED, "and nothing was created");
    assert_eq!(
        mails_to(&email).await.pop().unwrap().0,
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
    let (subject, _) = mails_to(&email).await.pop().unwrap();
    assert_eq!(subject, "Release dashboard: Your sign-in code");
    let code = bed.last_code(&email).await;

    let wrong_password = bed.login(&email, "not the password").await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED, "no code for a wrong password");
    assert_eq!(mails_to(&email).await.len(), 2, "verification and one sign-in code");

    let without_challenge = bed.login_code(&email, "made-up", &code).await;
    assert_eq!(without_challenge.status, StatusCode::UNAUTHORIZED, "the code alone is not enough");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let wrong_code = bed.login_code(&email, &challenge, wrong).await;
    assert_eq!(wrong_code.status, StatusCode::UNAUTHORIZED);
    let missing = bed.post("/auth/login/code", json!({"email": email, "code": code})).await;
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

/// Everything this test binary logs, through one global subscriber with the
/// functions' own filter at its most verbose, installed before any auth test
/// logs.
fn captured_log() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(shared::telemetry::filter("trace"))
            .with_writer(captured.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

/// Collects what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
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
