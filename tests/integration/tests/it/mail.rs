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
