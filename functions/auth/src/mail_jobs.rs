//! Mail work, done after the answer.
//!
//! A request that may mail (sign-up, resend, forgot, a sign-in code) does
//! the same work for every address — its checks, the address's allowance,
//! one [`MailJob`] on a [`MailQueue`] — and answers. Whether an account
//! exists decides only what the [`MailWorker`] does later, so neither the
//! answer nor its timing can tell. Deployed, the queue is an asynchronous
//! invoke of the `auth-mailer` function (Lambda's own queue, with retries
//! and a dead-letter destination); locally and in tests, a task per job.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shared::clock::Clock;
use shared::domain::Email;
use shared::mail::{CodePurpose, Mail, Mailer};
use shared::records::account::{self, Account, AccountStatus, Role};
use shared::store::{BoxError, Condition, Store, StoreError};

use crate::codes::{self, Purpose, SignUp};
use crate::limits;
use crate::secrets::{CodeHasher, new_code};
use shared::records::limit_window::{self, Admission, Counted, Limit};

/// One piece of mail work. It carries no secret a reader of the queue
/// could use: a sign-up's password hash (argon2), and for sign-in codes the
/// SHA-256 of the challenge, never the challenge.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum MailJob {
    /// A pending account is created or renewed with this sign-up, and a
    /// verification code bound to it is mailed; an existing account's owner
    /// gets a notice instead.
    SignUp { email: Email, sign_up: SignUp },
    /// A new verification code for a pending account.
    Resend { email: Email },
    /// A reset code for an active or pending account.
    Forgot { email: Email },
    /// A sign-in code for an active account, bound to a challenge.
    SignIn { email: Email, challenge_digest: String },
}

impl std::fmt::Debug for MailJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, email) = match self {
            Self::SignUp { email, .. } => ("signUp", email),
            Self::Resend { email } => ("resend", email),
            Self::Forgot { email } => ("forgot", email),
            Self::SignIn { email, .. } => ("signIn", email),
        };
        f.debug_struct("MailJob").field("kind", &kind).field("to", &email.masked()).finish()
    }
}

/// The port the API handlers leave mail work on.
#[async_trait]
pub trait MailQueue: Send + Sync {
    async fn enqueue(&self, job: MailJob) -> Result<(), BoxError>;
}

#[derive(Debug, thiserror::Error)]
pub enum MailWorkError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the system random generator failed")]
    Random(#[from] crate::secrets::RandomError),
}

/// What the Lambda runtime reports of a failed job: its kind and cause
/// chain (no address, no secret: the errors carry none).
impl From<MailWorkError> for lambda_runtime::Diagnostic {
    fn from(err: MailWorkError) -> Self {
        let error_type = match &err {
            MailWorkError::Store(_) => "Store",
            MailWorkError::Random(_) => "Random",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: shared::telemetry::error_chain(&err),
        }
    }
}

/// Does the work a [`MailJob`] describes.
pub struct MailWorker {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub codes: Arc<CodeHasher>,
    /// Named in mail.
    pub product: String,
    /// Mail the whole installation sends in an hour at most; more is
    /// dropped (and counted), whoever asked.
    pub mail_per_hour: u64,
}

/// The default of `MAIL_PER_HOUR`.
pub const DEFAULT_MAIL_PER_HOUR: u64 = 500;

impl MailWorker {
    #[tracing::instrument(skip_all, fields(job = ?job))]
    pub async fn run(&self, job: MailJob) -> Result<(), MailWorkError> {
        let store = self.store.as_ref();
        let now = self.clock.now();
        match job {
            MailJob::SignUp { email, sign_up } => match account::read(store, &email).await? {
                None => {
                    let account = Account {
                        email: email.clone(),
                        name: sign_up.name.clone(),
                        password_hash: sign_up.password_hash.clone(),
                        // Admin, if listed, only once the mailbox is proven.
                        role: Role::Viewer,
                        teams: Vec::new(),
                        status: AccountStatus::Pending,
                        created_at: now,
                        verified_at: None,
                        sessions_valid_after: None,
                    };
                    if write_unless_raced(store, &account, Condition::IfAbsent).await? {
                        count("Signups");
                    }
                    self.send_code(&email, Purpose::VerifyEmail, "", Some(sign_up)).await
                }
                Some((mut account, version)) if account.status == AccountStatus::Pending => {
                    // The newest sign-up is what a resend's code carries.
                    account.password_hash.clone_from(&sign_up.password_hash);
                    account.name.clone_from(&sign_up.name);
                    write_unless_raced(store, &account, Condition::IfVersion(version)).await?;
                    self.send_code(&email, Purpose::VerifyEmail, "", Some(sign_up)).await
                }
                Some((account, _)) => {
                    codes::store_decoy(store, &self.codes, &email, Purpose::VerifyEmail, now)
                        .await?;
                    if account.status == AccountStatus::Active {
                        self.send(Mail::already_registered(&email, &self.product)).await?;
                    }
                    Ok(())
                }
            },
            MailJob::Resend { email } => match account::read(store, &email).await? {
                Some((account, _)) if account.status == AccountStatus::Pending => {
                    // The newest sign-up the pending account holds.
                    let sign_up =
                        SignUp { password_hash: account.password_hash, name: account.name };
                    self.send_code(&email, Purpose::VerifyEmail, "", Some(sign_up)).await
                }
                _ => Ok(codes::store_decoy(store, &self.codes, &email, Purpose::VerifyEmail, now)
                    .await?),
            },
            MailJob::Forgot { email } => match account::read(store, &email).await? {
                Some((account, _)) if account.status != AccountStatus::Disabled => {
                    self.send_code(&email, Purpose::ResetPassword, "", None).await
                }
                _ => {
                    Ok(codes::store_decoy(store, &self.codes, &email, Purpose::ResetPassword, now)
                        .await?)
                }
            },
            MailJob::SignIn { email, challenge_digest } => {
                match account::read(store, &email).await? {
                    Some((account, _)) if account.status == AccountStatus::Active => {
                        self.send_code(&email, Purpose::SignIn, &challenge_digest, None).await
                    }
                    _ => Ok(codes::store_decoy(store, &self.codes, &email, Purpose::SignIn, now)
                        .await?),
                }
            }
        }
    }

    async fn send_code(
        &self,
        email: &Email,
        purpose: Purpose,
        binding: &str,
        sign_up: Option<SignUp>,
    ) -> Result<(), MailWorkError> {
        let code = new_code()?;
        let now = self.clock.now();
        let store = self.store.as_ref();
        codes::store(store, &self.codes, email, purpose, binding, &code, sign_up, now).await?;
        let mail_purpose = match purpose {
            Purpose::VerifyEmail => CodePurpose::VerifyEmail,
            Purpose::ResetPassword => CodePurpose::ResetPassword,
            Purpose::SignIn => CodePurpose::SignIn,
        };
        let mail = Mail::code(email, &self.product, mail_purpose, &code, codes::VALID_FOR);
        if self.send(mail).await? {
            count("CodesSent");
        }
        Ok(())
    }

    /// Sends within the installation's hourly allowance; whether it went.
    async fn send(&self, mail: Mail) -> Result<bool, MailWorkError> {
        let hourly = Limit { name: "mail-hour", max: self.mail_per_hour, window: limits::HOUR };
        let now = self.clock.now();
        let to = mail.to.masked();
        match limit_window::take(self.store.as_ref(), hourly, Counted::Installation, now).await? {
            Admission::Admitted { .. } => {}
            Admission::Refused { .. } => {
                tracing::warn!(to = %to, "mail dropped: the installation's hourly allowance is spent");
                count("MailDropped");
                return Ok(false);
            }
        }
        match self.mailer.send(mail).await {
            Ok(()) => Ok(true),
            Err(err) => {
                // A retry would re-issue the code; the owner can ask again.
                tracing::error!(to = %to, error = %shared::telemetry::error_chain(&err), "mail not sent");
                Ok(false)
            }
        }
    }
}

/// Writes `account`, or not when another job of the same address got there
/// first (its code goes out too, and the owner types whichever arrived);
/// whether it was written.
async fn write_unless_raced(
    store: &dyn Store,
    account: &Account,
    condition: Condition,
) -> Result<bool, MailWorkError> {
    match account::write(store, account, condition).await {
        Ok(_) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

fn count(name: &'static str) {
    shared::metrics::Record::new().value(name, 1.0, shared::metrics::Unit::Count).emit();
}

/// The local server's and the tests' queue: a task per job, in this
/// process. [`InProcessQueue::settle`] waits for the jobs so far.
pub struct InProcessQueue {
    worker: Arc<MailWorker>,
    running: Mutex<tokio::task::JoinSet<()>>,
}

impl InProcessQueue {
    pub fn new(worker: MailWorker) -> Self {
        Self { worker: Arc::new(worker), running: Mutex::default() }
    }

    /// Returns once every job enqueued so far is done.
    pub async fn settle(&self) {
        loop {
            let mut running =
                std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
            if running.is_empty() {
                return;
            }
            while running.join_next().await.is_some() {}
        }
    }
}

#[async_trait]
impl MailQueue for InProcessQueue {
    async fn enqueue(&self, job: MailJob) -> Result<(), BoxError> {
        let worker = self.worker.clone();
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        // Finished tasks are reaped as new ones come, so the set stays small.
        while running.try_join_next().is_some() {}
        running.spawn(async move {
            if let Err(err) = worker.run(job).await {
                tracing::error!(error = %shared::telemetry::error_chain(&err), "mail job failed");
            }
        });
        Ok(())
    }
}

/// The deployed queue: an asynchronous invoke of the mailer function,
/// answered as soon as Lambda has queued it.
pub struct LambdaQueue(shared::aws::AsyncInvoke);

impl LambdaQueue {
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        Self(shared::aws::AsyncInvoke::new(client, function))
    }
}

#[async_trait]
impl MailQueue for LambdaQueue {
    async fn enqueue(&self, job: MailJob) -> Result<(), BoxError> {
        self.0.send(&job).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_s_debug_form_names_its_kind_and_a_masked_address_only() {
        let job = MailJob::SignUp {
            email: Email::parse("jane@example.com").unwrap(),
            sign_up: SignUp { password_hash: "$argon2id$secret".into(), name: "Jane".into() },
        };
        let text = format!("{job:?}");
        assert!(text.contains("signUp"), "{text}");
        assert!(!text.contains("jane@") && !text.contains("argon2") && !text.contains("Jane"));
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["kind"], "signUp");
        assert_eq!(json["signUp"]["passwordHash"], "$argon2id$secret");
        assert_eq!(serde_json::from_value::<MailJob>(json).unwrap(), job);
    }
}
