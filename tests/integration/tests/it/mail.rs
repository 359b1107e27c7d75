//! The SES mailer against moto: what it sends is read back from moto's
//! record of sent mail (`GET /moto-api/data.json`).

use std::time::Duration;

use integration_tests::{aws, mails_to, unique};
use secrecy::SecretString;
use shared::domain::Email;
use shared::mail::ses::SesMailer;
use shared::mail::{CodePurpose, Mail, MailError, Mailer, code_in};

fn email(local: &str) -> Email {
    Email::parse(format!("{}@example.com", unique(local))).unwrap()
}

async fn sent_to(to: &Email) -> Vec<(String, String)> {
    mails_to(to.as_str()).await
}

#[tokio::test]
async fn ses_sends_a_code_message_from_a_verified_sender() {
    let config = aws().await;
    let ses = aws_sdk_ses::Client::new(&config);
    let sender = email("no-reply");
    ses.verify_email_identity().email_address(sender.as_str()).send().await.unwrap();
    let mailer = SesMailer::new(ses, sender);

    let to = email("jane");
    let code = SecretString::from("907413".to_owned());
    let mail = Mail::code(
        &to,
        "Release dashboard",
        CodePurpose::VerifyEmail,
        &code,
        Duration::from_secs(600),
    );
    mailer.send(mail).await.unwrap();

    let sent = sent_to(&to).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].0, "Release dashboard: Confirm your email address");
    assert_eq!(code_in(&sent[0].1).as_deref(), Some("907413"), "{}", sent[0].1);
}

#[tokio::test]
async fn an_unverified_sender_is_rejected() {
    let ses = aws_sdk_ses::Client::new(&aws().await);
    let mailer = SesMailer::new(ses, email("unverified"));
    let to = email("bob");
    let err = mailer.send(Mail::already_registered(&to, "X")).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected(_)), "{err:?}");
    assert!(sent_to(&to).await.is_empty());
}

/// The deployed path of mail work: the auth API leaves a job as an
/// asynchronous invoke of the mailer function (recorded by the test bed,
/// since moto would need Docker to run it), the mailer's handler does it,
/// and the code goes out through SES and verifies the sign-up.
#[tokio::test]
async fn mail_work_goes_through_an_asynchronous_invoke_to_the_mailer_and_out_through_ses() {
    use std::sync::Arc;

    use auth::mail_jobs::{DEFAULT_MAIL_PER_HOUR, LambdaQueue, MailJob, MailWorker};
    use integration_tests::{fresh_table, http_json};
    use serde_json::json;
    use tower::ServiceExt;

    let config = aws().await;
    let clock = Arc::new(shared::clock::ManualClock::new(jiff::Timestamp::now()));
    let store = Arc::new(fresh_table(clock.clone()).await);
    let codes = Arc::new(auth::secrets::CodeHasher::new(&[9u8; 32]).unwrap());
    let function = unique("auth-mailer");
    let fleet = "environments: [{name: stg, clusters: [{name: a, region: eu-west-1}]}]";
    let deps = auth::Deps {
        store: store.clone(),
        fleet: Arc::new(shared::fleet::FleetSource::from_text(store.clone(), fleet).unwrap()),
        mail_jobs: Arc::new(LambdaQueue::new(aws_sdk_lambda::Client::new(&config), &function)),
        clock: clock.clone(),
        hasher: auth::password::Hasher::new().unwrap(),
        codes: codes.clone(),
        policy: auth::Policy::default(),
    };
    let app = auth::router(deps);
    let to = email("jane");
    let password = "correct horse battery staple";
    let body = json!({"email": to.as_str(), "password": password, "name": "Jane"});
    let request = shared::testing::api_request("POST", "/auth/signup", Some(body), None);
    assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 202);
    assert!(sent_to(&to).await.is_empty(), "nothing is mailed inside the request");

    let (_, invocations) = http_json("GET", "/_testbed/lambda-invocations", None).await;
    let jobs: Vec<MailJob> = invocations
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["function"] == function.as_str())
        .map(|i| serde_json::from_value(i["payload"].clone()).unwrap())
        .collect();
    assert_eq!(jobs.len(), 1, "{invocations}");
    assert!(!invocations.to_string().contains(password), "the job holds no password");

    let ses = aws_sdk_ses::Client::new(&config);
    let sender = email("no-reply");
    ses.verify_email_identity().email_address(sender.as_str()).send().await.unwrap();
    let worker = MailWorker {
        store,
        mailer: Arc::new(SesMailer::new(ses, sender)),
        clock,
        codes,
        product: "Release dashboard".into(),
        mail_per_hour: DEFAULT_MAIL_PER_HOUR,
    };
    for job in jobs {
        worker.run(job).await.unwrap();
    }
    let sent = sent_to(&to).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let code = code_in(&sent[0].1).unwrap();
    let body = json!({"email": to.as_str(), "code": code, "password": password});
    let request = shared::testing::api_request("POST", "/auth/verify", Some(body), None);
    assert_eq!(app.oneshot(request).await.unwrap().status(), 200, "the mailed code verifies");
}
