//! The SES adapter: `SendEmail` from the configured sender, text and HTML.

use async_trait::async_trait;
use aws_sdk_ses::Client;
use aws_sdk_ses::error::ProvideErrorMetadata;
use aws_sdk_ses::types::{Body, Content, Destination, Message};

use super::{Mail, MailError, Mailer};
use crate::domain::Email;

#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    sender: Email,
}

impl SesMailer {
    pub fn new(client: Client, sender: Email) -> Self {
        Self { client, sender }
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig, sender: Email) -> Self {
        Self::new(Client::new(config), sender)
    }
}

fn content(data: String) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Rejected(Box::new(e)))
}

#[async_trait]
impl Mailer for SesMailer {
    #[tracing::instrument(level = "debug", skip_all, fields(to = %mail.to.masked()))]
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let body = Body::builder().text(content(mail.text)?).html(content(mail.html)?).build();
        let message = Message::builder().subject(content(mail.subject)?).body(body).build();
        let destination = Destination::builder().to_addresses(mail.to.as_str()).build();
        self.client
            .send_email()
            .source(self.sender.as_str())
            .destination(destination)
            .message(message)
            .send()
            .await
            .map_err(|err| match err.code() {
                Some(
                    "MessageRejected"
                    | "MailFromDomainNotVerifiedException"
                    | "ConfigurationSetDoesNotExist",
                ) => MailError::Rejected(Box::new(err)),
                Some("Throttling" | "ThrottlingException") => MailError::Throttled(Box::new(err)),
                _ => MailError::Unavailable(Box::new(err)),
            })?;
        Ok(())
    }
}
