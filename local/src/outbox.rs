//! The local mailer: every message is written to a file in an outbox
//! directory, the way a development mail catcher keeps it, so a person (or
//! the browser test) reads the sign-up code there. The log names the file,
//! never what the message says.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use shared::mail::{Mail, MailError, Mailer};

#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    sent: AtomicU64,
}

impl Outbox {
    /// Creates the directory; messages already there are kept and new ones
    /// numbered after them.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let existing = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count();
        Ok(Self { dir: dir.to_owned(), sent: AtomicU64::new(existing as u64) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, mail: &Mail) -> std::io::Result<PathBuf> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self.dir.join(format!("{n:04}.eml"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        write!(
            file,
            "To: {}\r\nSubject: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
            mail.to.as_str(),
            mail.subject,
            mail.text.replace('\n', "\r\n")
        )?;
        Ok(path)
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        match self.write(&mail) {
            Ok(path) => {
                tracing::info!(to = %mail.to.masked(), subject = %mail.subject, file = %path.display(), "mail written to the local outbox");
                Ok(())
            }
            Err(err) => {
                tracing::error!(error = %err, dir = %self.dir.display(), "cannot write to the local outbox");
                Err(MailError::Unavailable(Box::new(err)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use shared::domain::Email;

    use super::*;

    fn mail(code: &str) -> Mail {
        Mail {
            to: Email::parse("jane@example.com").unwrap(),
            subject: "Your code".into(),
            text: format!("Your code is {code}.\nIt expires in 10 minutes."),
            html: String::new(),
        }
    }

    #[tokio::test]
    async fn each_message_is_a_file_in_the_outbox() {
        let dir = std::env::temp_dir().join(format!("outbox-test-{}", std::process::id()));
        let outbox = Outbox::create(&dir).unwrap();
        for code in ["123456", "654321"] {
            outbox.send(mail(code)).await.unwrap();
        }
        let second = std::fs::read_to_string(dir.join("0002.eml")).unwrap();
        assert!(second.starts_with("To: jane@example.com\r\nSubject: Your code\r\n"));
        assert_eq!(shared::mail::code_in(&second).as_deref(), Some("654321"));
        let reopened = Outbox::create(&dir).unwrap();
        assert_eq!(reopened.write(&mail("111111")).unwrap(), dir.join("0003.eml"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
