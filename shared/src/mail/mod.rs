//! Mail: the port the auth function sends through, the messages it sends,
//! and the in-memory adapter of the local server and tests. The SES adapter
//! is in [`ses`] (feature `ses`).
//!
//! A message carries a one-time code; nothing here ever logs a body.

#[cfg(feature = "ses")]
pub mod ses;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::Email;
use crate::store::BoxError;

/// One message: plain text and HTML alternatives of the same content.
#[derive(Clone)]
pub struct Mail {
    pub to: Email,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Never prints the bodies: they hold codes.
impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to.masked())
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// What a one-time code is for; it decides the words of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    VerifyEmail,
    ResetPassword,
    SignIn,
}

impl CodePurpose {
    fn subject(self) -> &'static str {
        match self {
            Self::VerifyEmail => "Confirm your email address",
            Self::ResetPassword => "Reset your password",
            Self::SignIn => "Your sign-in code",
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Self::VerifyEmail => "to confirm your email address and finish creating your account",
            Self::ResetPassword => "to choose a new password",
            Self::SignIn => "to finish signing in",
        }
    }
}

impl Mail {
    /// A one-time code: what it is for, when it expires, and that it can be
    /// ignored if not requested.
    pub fn code(
        to: &Email,
        product: &str,
        purpose: CodePurpose,
        code: &SecretString,
        valid_for: Duration,
    ) -> Self {
        let minutes = valid_for.as_secs().div_ceil(60).max(1);
        let code = code.expose_secret();
        let reason = purpose.reason();
        let subject = format!("{product}: {}", purpose.subject());
        let text = format!(
            "Your {product} code is {code}\n\n\
             Enter it {reason}. It expires in {minutes} minutes and works once.\n\n\
             If you did not ask for this code, you can ignore this message: nothing changes without it.\n"
        );
        let html = format!(
            "<p>Your {product} code is</p>\
             <p style=\"font-size:24px;font-weight:bold;letter-spacing:4px\">{code}</p>\
             <p>Enter it {reason}. It expires in {minutes} minutes and works once.</p>\
             <p>If you did not ask for this code, you can ignore this message: nothing changes without it.</p>",
            product = escape(product),
            code = escape(code),
        );
        Self { to: to.clone(), subject, text, html }
    }

    /// Sent instead of a code when someone signs up with an address that
    /// already has an account, so the answer to the sign-up reveals nothing.
    pub fn already_registered(to: &Email, product: &str) -> Self {
        let subject = format!("{product}: someone tried to sign up with your address");
        let text = format!(
            "Someone (perhaps you) tried to create a {product} account with this address, which already has one.\n\n\
             If it was you, sign in instead, or reset your password if you forgot it.\n\
             If it was not you, you can ignore this message: your account is unchanged.\n"
        );
        let html = format!(
            "<p>Someone (perhaps you) tried to create a {product} account with this address, which already has one.</p>\
             <p>If it was you, sign in instead, or reset your password if you forgot it.</p>\
             <p>If it was not you, you can ignore this message: your account is unchanged.</p>",
            product = escape(product),
        );
        Self { to: to.clone(), subject, text, html }
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The service refused this message (unverified sender, bad address).
    #[error("the mail service refused the message")]
    Rejected(#[source] BoxError),
    #[error("the mail service is throttling")]
    Throttled(#[source] BoxError),
    #[error("the mail service is unavailable")]
    Unavailable(#[source] BoxError),
}

/// The port.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: Mail) -> Result<(), MailError>;
}

/// Keeps sent mail in memory: the local server's mailer (the demo reads
/// codes from it) and the tests'. Logs that a message went out, never what
/// it says.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Mail>>,
}

impl MemoryMailer {
    pub fn sent(&self) -> Vec<Mail> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The newest message to `to`.
    pub fn last_to(&self, to: &Email) -> Option<Mail> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .find(|m| &m.to == to)
            .cloned()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        tracing::info!(to = %mail.to.masked(), subject = %mail.subject, "mail kept in memory (local mailer)");
        self.sent.lock().unwrap_or_else(PoisonError::into_inner).push(mail);
        Ok(())
    }
}

/// The six-digit code in a message's text, as a person would read it.
pub fn code_in(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() == 6).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email::parse("jane@example.com").unwrap()
    }

    #[test]
    fn a_code_message_says_what_when_and_that_it_can_be_ignored() {
        let code = SecretString::from("042917".to_owned());
        let mail = Mail::code(
            &email(),
            "Release dashboard",
            CodePurpose::ResetPassword,
            &code,
            Duration::from_secs(600),
        );
        assert_eq!(mail.subject, "Release dashboard: Reset your password");
        for body in [&mail.text, &mail.html] {
            assert!(body.contains("042917"));
            assert!(body.contains("choose a new password"));
            assert!(body.contains("expires in 10 minutes"));
            assert!(body.contains("you can ignore this message"));
        }
        assert_eq!(code_in(&mail.text).as_deref(), Some("042917"));
    }

    #[test]
    fn debug_output_never_shows_the_body() {
        let code = SecretString::from("123456".to_owned());
        let mail = Mail::code(&email(), "X", CodePurpose::SignIn, &code, Duration::from_secs(600));
        let shown = format!("{mail:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert!(shown.contains("j***@example.com"));
    }

    #[test]
    fn html_is_escaped() {
        let mail = Mail::already_registered(&email(), "<b>&Co</b>");
        assert!(mail.html.contains("&lt;b&gt;&amp;Co&lt;/b&gt;"));
        assert!(!mail.html.contains("<b>&Co"));
    }

    #[tokio::test]
    async fn the_memory_mailer_keeps_what_it_sent() {
        let mailer = MemoryMailer::default();
        mailer.send(Mail::already_registered(&email(), "X")).await.unwrap();
        assert_eq!(mailer.sent().len(), 1);
        assert!(mailer.last_to(&email()).is_some());
        assert!(mailer.last_to(&Email::parse("other@example.com").unwrap()).is_none());
    }
}
