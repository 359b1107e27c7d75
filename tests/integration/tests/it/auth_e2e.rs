//! The auth API end to end on its production adapters: accounts, codes and
//! sessions in DynamoDB, the code mailed through SES and read back from
//! moto's record of it. Every abuse case and limit runs over the in-memory
//! adapters in `functions/auth/tests/journeys.rs`; the adapters' own
//! contracts are in `store_contract.rs` and `mail.rs`.

use std::sync::Arc;

use auth::password::Hasher;
use auth::{Deps, Policy};
use axum::body::to_bytes;
use http::StatusCode;
use integration_tests::{aws, fresh_table, mails_to, unique};
use serde_json::{Value, json};
use shared::clock::ManualClock;
use shared::domain::Email;
use shared::fleet::FleetSource;
use shared::mail::code_in;
use shared::mail::ses::SesMailer;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";
const FLEET: &str =
    "environments: [{name: sandbox, clusters: [{name: sandbox-a, region: eu-west-1}]}]\n";

#[tokio::test]
async fn sign_up_by_mail_verify_sign_in_and_out_on_dynamodb_and_ses() {
    let clock = Arc::new(ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap()));
    let ses = aws_sdk_ses::Client::new(&aws().await);
    let sender = Email::parse(format!("{}@example.com", unique("no-reply"))).unwrap();
    ses.verify_email_identity().email_address(sender.as_str()).send().await.unwrap();
    let store = Arc::new(fresh_table(clock.clone()).await);
    let fleet = Arc::new(FleetSource::from_text(store.clone(), FLEET).unwrap());
    let mailer = Arc::new(SesMailer::new(ses, sender));
    let hasher = Hasher::new().unwrap();
    let (deps, mail_jobs) =
        Deps::in_process(store.clone(), fleet, mailer, clock, hasher, Policy::default()).unwrap();
    let app = shared::http::with_api_defaults(auth::router(deps), store);
    let call =
        |method: &'static str, path: &'static str, body: Option<Value>, token: Option<String>| {
            let (app, mail_jobs) = (app.clone(), mail_jobs.clone());
            async move {
                let request = shared::testing::api_request(method, path, body, token.as_deref());
                let response = app.oneshot(request).await.unwrap();
                mail_jobs.settle().await;
                let status = response.status();
                let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
            }
        };

    let email = format!("{}@example.com", unique("jane"));
    let sign_up = json!({"email": email, "password": PASSWORD, "name": "Jane"});
    assert_eq!(call("POST", "/auth/signup", Some(sign_up), None).await.0, StatusCode::ACCEPTED);
    let mails = mails_to(&email).await;
    assert_eq!(mails.len(), 1, "one mail through SES");
    let code = code_in(&mails[0].1).expect("a code in the mail");
    let verify = json!({"email": email, "code": code, "password": PASSWORD});
    let (status, body) = call("POST", "/auth/verify", Some(verify), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let login = json!({"email": email, "password": PASSWORD});
    let (status, body) = call("POST", "/auth/login", Some(login), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, me) = call("GET", "/auth/me", None, Some(token.clone())).await;
    assert_eq!((status, me["email"].as_str()), (StatusCode::OK, Some(email.as_str())));
    let (status, _) = call("POST", "/auth/logout", None, Some(token.clone())).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call("GET", "/auth/me", None, Some(token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ended in DynamoDB");
}
