//! The auth journey against moto: accounts, codes, limits and sessions in
//! DynamoDB, mail through SES and read back from moto's record of it.

use std::sync::Arc;

use auth::password::Hasher;
use auth::secrets::CodeHasher;
use auth::{Deps, Policy};
use axum::Router;
use axum::body::to_bytes;
use http::StatusCode;
use integration_tests::{aws, fresh_table, http_json, unique};
use jiff::Timestamp;
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::domain::Email;
use shared::mail::code_in;
use shared::mail::ses::SesMailer;
use tower::ServiceExt;

async fn app() -> Router {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let config = aws().await;
    let ses = aws_sdk_ses::Client::new(&config);
    let sender = Email::parse(format!("{}@example.com", unique("no-reply"))).unwrap();
    ses.verify_email_identity().email_address(sender.as_str()).send().await.unwrap();
    let deps = Deps {
        store: Arc::new(fresh_table(clock.clone()).await),
        mailer: Arc::new(SesMailer::new(ses, sender)),
        clock,
        hasher: Hasher::new().unwrap(),
        codes: CodeHasher::new(&[5u8; 32]).unwrap(),
        policy: Policy::default(),
    };
    shared::http::with_api_defaults(auth::router(deps))
}

async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, String) {
    let request = shared::testing::api_request(method, path, body, token);
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The code in the newest message moto recorded for `to`.
async fn code_mailed_to(to: &str) -> String {
    let (_, data) = http_json("GET", "/moto-api/data.json", None).await;
    let messages = data["ses"]["Message"].as_array().cloned().unwrap_or_default();
    let body = messages
        .iter()
        .rev()
        .find(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(to)))
        })
        .and_then(|m| m["body"].as_str())
        .unwrap_or_else(|| panic!("no mail to {to}"))
        .to_owned();
    code_in(&body).expect("a code in the mail")
}

#[tokio::test]
async fn sign_up_verify_sign_in_and_out_against_dynamodb_and_ses() {
    let app = app().await;
    let email = format!("{}@example.com", unique("jane"));
    let password = "correct horse battery staple";
    let mut bodies = Vec::new();

    let (status, body) = call(
        &app,
        "POST",
        "/auth/signup",
        Some(json!({"email": email, "password": password, "name": "Jane"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    bodies.push(body);
    let code = code_mailed_to(&email).await;

    let (status, body) = call(
        &app,
        "POST",
        "/auth/login",
        Some(json!({"email": email, "password": password})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not verified yet: {body}");
    bodies.push(body);

    let (status, body) =
        call(&app, "POST", "/auth/verify", Some(json!({"email": email, "code": code})), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    bodies.push(body);
    let (status, body) =
        call(&app, "POST", "/auth/verify", Some(json!({"email": email, "code": code})), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code works once: {body}");
    bodies.push(body);

    let (status, body) = call(
        &app,
        "POST",
        "/auth/login",
        Some(json!({"email": email, "password": password})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"].as_str().unwrap().to_owned();

    let (status, body) = call(&app, "GET", "/auth/me", None, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    bodies.push(body);
    assert_eq!(
        call(&app, "POST", "/auth/logout", None, Some(&token)).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = call(&app, "GET", "/auth/me", None, Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out: {body}");
    bodies.push(body);

    for body in &bodies {
        assert!(
            !body.contains(password) && !body.contains(&code) && !body.contains(&token),
            "a secret leaked: {body}"
        );
    }
}
