//! The auth routes end to end over the in-memory adapters (the moto-backed
//! journey lives in the integration tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use auth::password::Hasher;
use auth::secrets::CodeHasher;
use auth::{Deps, Policy};
use axum::Router;
use axum::body::{Body, to_bytes};
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::domain::Email;
use shared::mail::{MemoryMailer, code_in};
use shared::store::memory::MemoryStore;
use tower::ServiceExt;

struct Bed {
    app: Router,
    mailer: Arc<MemoryMailer>,
}

fn bed() -> Bed {
    captured_log();
    let clock = Arc::new(ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap()));
    let mailer = Arc::new(MemoryMailer::default());
    let deps = Deps {
        store: Arc::new(MemoryStore::new(clock.clone())),
        mailer: mailer.clone(),
        clock,
        hasher: Hasher::new().unwrap(),
        codes: CodeHasher::new(&[9u8; 32]).unwrap(),
        policy: Policy {
            admin_emails: vec![Email::parse("root@example.com").unwrap()],
            ..Policy::default()
        },
    };
    Bed { app: shared::http::with_api_defaults(auth::router(deps)), mailer }
}

impl Bed {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        self.raw(shared::testing::api_request(method, path, body, token)).await
    }

    async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    fn last_code(&self, to: &str) -> String {
        let mail = self.mailer.last_to(&Email::parse(to).unwrap()).expect("a mail");
        code_in(&mail.text).expect("a code")
    }

    async fn signed_up(&self, email: &str) {
        let body =
            json!({"email": email, "password": "correct horse battery staple", "name": "Jane"});
        assert_eq!(
            self.call("POST", "/auth/signup", Some(body), None).await.0,
            StatusCode::ACCEPTED
        );
        let code = self.last_code(email);
        let (status, _) = self
            .call("POST", "/auth/verify", Some(json!({"email": email, "code": code})), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.call("POST", "/auth/login", Some(json!({"email": email, "password": password})), None)
            .await
    }
}

#[tokio::test]
async fn signup_verify_login_me_logout() {
    let bed = bed();
    bed.signed_up("Jane@Example.com").await;
    let (status, body) = bed.login("jane@example.com", "correct horse battery staple").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["email"], "jane@example.com");
    assert_eq!(body["user"]["role"], "viewer");
    let (status, me) = bed.call("GET", "/auth/me", None, Some(&token)).await;
    assert_eq!((status, me["email"].as_str()), (StatusCode::OK, Some("jane@example.com")));
    assert_eq!(
        bed.call("POST", "/auth/logout", None, Some(&token)).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bed.call("GET", "/auth/me", None, Some(&token)).await.0,
        StatusCode::UNAUTHORIZED,
        "the token is dead"
    );
}

#[tokio::test]
async fn a_configured_admin_email_signs_up_as_admin() {
    let bed = bed();
    bed.signed_up("root@example.com").await;
    let (_, body) = bed.login("root@example.com", "correct horse battery staple").await;
    assert_eq!(body["user"]["role"], "admin");
}

#[tokio::test]
async fn a_duplicate_signup_answers_the_same_and_mails_the_owner() {
    let bed = bed();
    bed.signed_up("jane@example.com").await;
    let body = json!({"email": "jane@example.com", "password": "another long passphrase", "name": "Mallory"});
    let (status, answer) = bed.call("POST", "/auth/signup", Some(body), None).await;
    assert_eq!((status, answer), (StatusCode::ACCEPTED, json!({"status": "check_your_email"})));
    let mail = bed.mailer.last_to(&Email::parse("jane@example.com").unwrap()).unwrap();
    assert!(mail.subject.contains("someone tried to sign up"), "{}", mail.subject);
    // The original password still works; the duplicate's does not.
    assert_eq!(
        bed.login("jane@example.com", "correct horse battery staple").await.0,
        StatusCode::OK
    );
    assert_eq!(
        bed.login("jane@example.com", "another long passphrase").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn wrong_codes_and_unverified_logins_are_refused() {
    let bed = bed();
    let body = json!({"email": "bob@example.com", "password": "correct horse battery staple", "name": "Bob"});
    bed.call("POST", "/auth/signup", Some(body), None).await;
    let (status, body) = bed
        .call(
            "POST",
            "/auth/verify",
            Some(json!({"email": "bob@example.com", "code": "000000"})),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_code"))
    );
    assert_eq!(
        bed.login("bob@example.com", "correct horse battery staple").await.0,
        StatusCode::FORBIDDEN,
        "not verified yet"
    );
    assert_eq!(
        bed.login("bob@example.com", "wrong password here").await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_accounts_and_wrong_passwords_get_the_same_401() {
    let bed = bed();
    bed.signed_up("jane@example.com").await;
    let wrong = bed.login("jane@example.com", "not the password").await;
    let unknown = bed.login("nobody@example.com", "not the password").await;
    let malformed = bed.login("not-an-email", "not the password").await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, malformed);
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn resends_are_limited_per_address() {
    let bed = bed();
    let body = json!({"email": "bob@example.com", "password": "correct horse battery staple", "name": "Bob"});
    bed.call("POST", "/auth/signup", Some(body), None).await;
    let (status, body) =
        bed.call("POST", "/auth/resend", Some(json!({"email": "bob@example.com"})), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests"))
    );
    let (status, _) =
        bed.call("POST", "/auth/resend", Some(json!({"email": "nobody@example.com"})), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "an unknown address answers like a known one");
}

#[tokio::test]
async fn bad_requests_get_clear_json_errors() {
    let bed = bed();
    let weak = json!({"email": "jane@example.com", "password": "password123", "name": "Jane"});
    let (status, body) = bed.call("POST", "/auth/signup", Some(weak), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("weak_password"))
    );
    let unknown_field = json!({"email": "jane@example.com", "password": "correct horse battery staple", "name": "J", "role": "admin"});
    let (status, body) = bed.call("POST", "/auth/signup", Some(unknown_field), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );
    let request = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, body) = bed.raw(request).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let request = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(bed.raw(request).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = format!("{{\"email\": \"{}\"}}", "a".repeat(100_000));
    let request = Request::post("/auth/resend")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(huge))
        .unwrap();
    assert_eq!(bed.raw(request).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(bed.mailer.sent().is_empty(), "nothing was sent for bad requests");
}

#[tokio::test]
async fn a_password_reset_changes_the_password_and_ends_old_sessions() {
    let bed = bed();
    bed.signed_up("jane@example.com").await;
    let (_, body) = bed.login("jane@example.com", "correct horse battery staple").await;
    let old_token = body["token"].as_str().unwrap().to_owned();

    let (status, _) = bed
        .call("POST", "/auth/password/forgot", Some(json!({"email": "jane@example.com"})), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = bed.mailer.last_to(&Email::parse("jane@example.com").unwrap()).unwrap();
    assert!(mail.subject.contains("Reset your password"), "{}", mail.subject);
    let code = code_in(&mail.text).unwrap();

    let weak = json!({"email": "jane@example.com", "code": code, "newPassword": "password1"});
    assert_eq!(
        bed.call("POST", "/auth/password/reset", Some(weak), None).await.0,
        StatusCode::BAD_REQUEST
    );
    let wrong = json!({"email": "jane@example.com", "code": "000000", "newPassword": "a brand new passphrase"});
    assert_eq!(
        bed.call("POST", "/auth/password/reset", Some(wrong), None).await.0,
        StatusCode::BAD_REQUEST
    );
    let reset =
        json!({"email": "jane@example.com", "code": code, "newPassword": "a brand new passphrase"});
    let (status, body) = bed.call("POST", "/auth/password/reset", Some(reset.clone()), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        bed.call("POST", "/auth/password/reset", Some(reset), None).await.0,
        StatusCode::BAD_REQUEST,
        "the code is used up"
    );

    assert_eq!(
        bed.call("GET", "/auth/me", None, Some(&old_token)).await.0,
        StatusCode::UNAUTHORIZED,
        "old sessions end"
    );
    assert_eq!(
        bed.login("jane@example.com", "correct horse battery staple").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bed.login("jane@example.com", "a brand new passphrase").await.0, StatusCode::OK);
}

#[tokio::test]
async fn forgetting_an_unknown_address_answers_like_a_known_one() {
    let bed = bed();
    let (status, body) = bed
        .call("POST", "/auth/password/forgot", Some(json!({"email": "nobody@example.com"})), None)
        .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, json!({"status": "check_your_email"})));
    assert!(bed.mailer.sent().is_empty());
}

#[tokio::test]
async fn admins_list_change_and_disable_users() {
    let bed = bed();
    bed.signed_up("root@example.com").await;
    bed.signed_up("jane@example.com").await;
    let password = "correct horse battery staple";
    let root =
        bed.login("root@example.com", password).await.1["token"].as_str().unwrap().to_owned();
    let jane =
        bed.login("jane@example.com", password).await.1["token"].as_str().unwrap().to_owned();

    assert_eq!(bed.call("GET", "/auth/users", None, Some(&jane)).await.0, StatusCode::FORBIDDEN);
    let (status, page) = bed.call("GET", "/auth/users?limit=1", None, Some(&root)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(!page.to_string().contains("argon2"), "no hashes in the directory: {page}");
    let next = page["next"].as_str().unwrap();
    let (_, second) =
        bed.call("GET", &format!("/auth/users?limit=1&cursor={next}"), None, Some(&root)).await;
    let emails: Vec<&str> =
        [&page, &second].iter().map(|p| p["items"][0]["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["jane@example.com", "root@example.com"]);

    let change = json!({"role": "admin", "teams": ["platform"]});
    let (status, body) =
        bed.call("PATCH", "/auth/users/jane@example.com", Some(change), Some(&root)).await;
    assert_eq!((status, body["role"].as_str()), (StatusCode::OK, Some("admin")));
    let (_, me) = bed.call("GET", "/auth/me", None, Some(&jane)).await;
    assert_eq!((me["role"].as_str(), me["teams"][0].as_str()), (Some("admin"), Some("platform")));

    let disable = json!({"disabled": true});
    assert_eq!(
        bed.call("PATCH", "/auth/users/jane@example.com", Some(disable.clone()), Some(&root))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        bed.call("GET", "/auth/me", None, Some(&jane)).await.0,
        StatusCode::UNAUTHORIZED,
        "disabled: sessions end"
    );
    assert_eq!(bed.login("jane@example.com", password).await.0, StatusCode::UNAUTHORIZED);

    let (status, body) =
        bed.call("PATCH", "/auth/users/root@example.com", Some(disable), Some(&root)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("self_lockout"))
    );
    let missing = bed
        .call("PATCH", "/auth/users/nobody@example.com", Some(json!({"teams": []})), Some(&root))
        .await;
    assert_eq!(missing.0, StatusCode::NOT_FOUND);
    let unknown_field = bed
        .call("PATCH", "/auth/users/jane@example.com", Some(json!({"password": "x"})), Some(&root))
        .await;
    assert_eq!(unknown_field.0, StatusCode::BAD_REQUEST);
}

/// Everything this test binary logs, through one global subscriber
/// installed before any test logs (a per-test subscriber would miss call
/// sites that other tests registered first).
fn captured_log() -> &'static Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
}

/// Collects what is logged.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

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
async fn no_response_and_no_log_line_carries_a_password_a_code_or_a_token() {
    let captured = captured_log();
    let bed = bed();
    let password = "correct horse battery staple";
    let mut secrets = vec![password.to_owned(), "a second long passphrase".to_owned()];
    let mut bodies = Vec::new();
    let signup = json!({"email": "jane@example.com", "password": password, "name": "Jane"});
    bodies.push(bed.call("POST", "/auth/signup", Some(signup.clone()), None).await.1);
    bodies.push(bed.call("POST", "/auth/signup", Some(signup), None).await.1);
    let code = bed.last_code("jane@example.com");
    secrets.push(code.clone());
    bodies.push(
        bed.call(
            "POST",
            "/auth/verify",
            Some(json!({"email": "jane@example.com", "code": "000000"})),
            None,
        )
        .await
        .1,
    );
    bodies.push(
        bed.call(
            "POST",
            "/auth/verify",
            Some(json!({"email": "jane@example.com", "code": code})),
            None,
        )
        .await
        .1,
    );
    bodies.push(bed.login("jane@example.com", "wrong password here").await.1);
    let (_, login) = bed.login("jane@example.com", password).await;
    let token = login["token"].as_str().unwrap().to_owned();
    bodies.push(bed.call("GET", "/auth/me", None, Some(&token)).await.1);
    bodies.push(
        bed.call("POST", "/auth/password/forgot", Some(json!({"email": "jane@example.com"})), None)
            .await
            .1,
    );
    let reset_code = bed.last_code("jane@example.com");
    secrets.push(reset_code.clone());
    let reset = json!({"email": "jane@example.com", "code": reset_code, "newPassword": "a second long passphrase"});
    bodies.push(bed.call("POST", "/auth/password/reset", Some(reset), None).await.1);
    bodies.push(bed.call("POST", "/auth/logout", None, Some(&token)).await.1);
    secrets.push(token);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("signed in") && log.contains("mail kept in memory"),
        "the log was captured: {log}"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "the log carries a secret");
        for body in &bodies {
            assert!(
                !body.to_string().contains(secret.as_str()),
                "a response carries a secret: {body}"
            );
        }
    }
    assert!(!log.contains("jane@example.com"), "addresses are masked in logs");
}
