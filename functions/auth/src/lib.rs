//! The auth API: sign-up with email verification, sign-in, sessions,
//! sign-out. Handlers are plain functions over the ports in `shared`; the
//! Lambda `main` and the local server both serve [`router`].

pub mod client;
pub mod codes;
pub mod handlers;
pub mod limits;
pub mod mail_jobs;
pub mod password;
pub mod secrets;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use base64::Engine as _;
use shared::auth::{Authenticator, HasAuthenticator};
use shared::clock::Clock;
use shared::config::ConfigError;
use shared::domain::Email;
use shared::fleet::FleetSource;
use shared::records::session::SessionLifetimes;
use shared::settings::{FleetSettings, Lookup, StoreSettings, process_env, required};
use shared::store::Store;

use crate::mail_jobs::{DEFAULT_MAIL_PER_HOUR, MailQueue};
use crate::password::Hasher;
use crate::secrets::CodeHasher;

pub const SENDER_VAR: &str = "MAIL_SENDER";
pub const ADMIN_EMAILS_VAR: &str = "ADMIN_EMAILS";
pub const ALLOWED_DOMAINS_VAR: &str = "ALLOWED_EMAIL_DOMAINS";
/// Base64 of at least 32 random bytes: the key of the codes' HMAC.
pub const CODE_KEY_VAR: &str = "CODE_KEY";
/// `true`: a sign-in also needs a code mailed to the account's address.
pub const LOGIN_EMAIL_CODE_VAR: &str = "LOGIN_EMAIL_CODE";
/// The function the API leaves mail work for (`auth-mailer`).
pub const MAILER_FUNCTION_VAR: &str = "MAILER_FUNCTION";
/// Mail the installation sends in an hour at most.
pub const MAIL_PER_HOUR_VAR: &str = "MAIL_PER_HOUR";

/// What the API function reads from its environment, once, at cold start.
pub struct Settings {
    /// The table, and the fleet (`/auth/me` says which environments an
    /// account sees).
    pub fleet: FleetSettings,
    pub mailer_function: String,
    pub policy: Policy,
    pub code_key: Vec<u8>,
}

/// What the mailer function (`auth-mailer`) reads, once, at cold start.
pub struct MailerSettings {
    pub store: StoreSettings,
    pub sender: Email,
    pub code_key: Vec<u8>,
    pub mail_per_hour: u64,
}

impl std::fmt::Debug for MailerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailerSettings")
            .field("store", &self.store)
            .field("mail_per_hour", &self.mail_per_hour)
            .finish_non_exhaustive()
    }
}

impl MailerSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        let bad = |name: &'static str, message: String| ConfigError::BadVar { name, message };
        let sender = Email::parse(required(vars, SENDER_VAR)?)
            .map_err(|e| bad(SENDER_VAR, e.to_string()))?;
        let mail_per_hour =
            match vars(MAIL_PER_HOUR_VAR).as_deref().map(str::trim) {
                None | Some("") => DEFAULT_MAIL_PER_HOUR,
                Some(text) => text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    bad(MAIL_PER_HOUR_VAR, "must be a whole number above 0".into())
                })?,
            };
        Ok(Self {
            store: StoreSettings::from_vars(vars)?,
            sender,
            code_key: code_key(vars)?,
            mail_per_hour,
        })
    }
}

/// `CODE_KEY`, decoded and checked.
fn code_key(vars: Lookup<'_>) -> Result<Vec<u8>, ConfigError> {
    let bad = |message: &str| ConfigError::BadVar { name: CODE_KEY_VAR, message: message.into() };
    let key = base64::engine::general_purpose::STANDARD
        .decode(required(vars, CODE_KEY_VAR)?.trim())
        .map_err(|_| bad("must be base64"))?;
    if key.len() < 32 {
        return Err(bad("must hold at least 32 bytes"));
    }
    Ok(key)
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("store", &self.fleet.store)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&process_env)
    }

    pub fn from_vars(vars: Lookup<'_>) -> Result<Self, ConfigError> {
        let bad = |name: &'static str, message: String| ConfigError::BadVar { name, message };
        let mailer_function = required(vars, MAILER_FUNCTION_VAR)?.trim().to_owned();
        let admin_emails = list(vars, ADMIN_EMAILS_VAR)
            .into_iter()
            .map(|e| Email::parse(e).map_err(|e| bad(ADMIN_EMAILS_VAR, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let allowed_domains =
            list(vars, ALLOWED_DOMAINS_VAR).into_iter().map(|d| d.to_lowercase()).collect();
        let code_key = code_key(vars)?;
        let login_email_code = match vars(LOGIN_EMAIL_CODE_VAR).as_deref().map(str::trim) {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(_) => return Err(bad(LOGIN_EMAIL_CODE_VAR, "must be true or false".into())),
        };
        let policy =
            Policy { admin_emails, allowed_domains, login_email_code, ..Policy::default() };
        Ok(Self { fleet: FleetSettings::from_vars(vars)?, mailer_function, policy, code_key })
    }
}

fn list(vars: Lookup<'_>, name: &str) -> Vec<String> {
    vars(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The rules an installation chooses.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Named in mail.
    pub product: String,
    /// Empty: any domain may sign up.
    pub allowed_domains: Vec<String>,
    /// These addresses become admins once they prove their mailbox.
    pub admin_emails: Vec<Email>,
    pub lifetimes: SessionLifetimes,
    /// Whether a sign-in needs a second step: a code mailed to the account.
    pub login_email_code: bool,
    /// Each failed sign-in in the current window makes the answer to the
    /// next one this much slower (at most [`MAX_FAILURE_DELAY`]).
    pub failure_delay: Duration,
}

pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(2);

impl Default for Policy {
    fn default() -> Self {
        Self {
            product: "Release dashboard".into(),
            allowed_domains: Vec::new(),
            admin_emails: Vec::new(),
            lifetimes: SessionLifetimes::default(),
            login_email_code: false,
            failure_delay: Duration::from_millis(20),
        }
    }
}

/// The schemas of what the auth routes take and answer (`shared::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(
    handlers::SignupBody,
    handlers::VerifyBody,
    handlers::EmailBody,
    handlers::LoginBody,
    handlers::LoginCodeBody,
    handlers::ResetBody,
    handlers::UserChange,
    handlers::StatusAnswer,
    handlers::SessionAnswer,
    handlers::CodeSent,
    handlers::MeAnswer,
)))]
pub struct Schemas;

/// The ports and rules the handlers use.
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub fleet: Arc<FleetSource>,
    pub mail_jobs: Arc<dyn MailQueue>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Hasher,
    pub codes: Arc<CodeHasher>,
    pub policy: Policy,
}

impl Deps {
    /// Deps whose mail work runs in this process, a task per job (the local
    /// server, tests): the queue is returned too, to wait for that work.
    pub fn in_process(
        store: Arc<dyn Store>,
        fleet: Arc<FleetSource>,
        mailer: Arc<dyn shared::mail::Mailer>,
        clock: Arc<dyn Clock>,
        hasher: Hasher,
        policy: Policy,
    ) -> Result<(Self, Arc<mail_jobs::InProcessQueue>), secrets::RandomError> {
        let codes = Arc::new(CodeHasher::ephemeral()?);
        let queue = Arc::new(mail_jobs::InProcessQueue::new(mail_jobs::MailWorker {
            store: store.clone(),
            mailer,
            clock: clock.clone(),
            codes: codes.clone(),
            product: policy.product.clone(),
            mail_per_hour: DEFAULT_MAIL_PER_HOUR,
        }));
        let deps = Self { store, fleet, mail_jobs: queue.clone(), clock, hasher, codes, policy };
        Ok((deps, queue))
    }
}

/// The router's state: the deps and the authenticator built from them.
/// Derefs to the deps, so handlers read `state.store`, `state.policy`, ….
pub struct AuthState {
    deps: Deps,
    authenticator: Authenticator,
}

impl std::ops::Deref for AuthState {
    type Target = Deps;

    fn deref(&self) -> &Deps {
        &self.deps
    }
}

impl HasAuthenticator for AuthState {
    fn authenticator(&self) -> &Authenticator {
        &self.authenticator
    }
}

pub fn router(deps: Deps) -> Router {
    let authenticator =
        Authenticator::new(deps.store.clone(), deps.clock.clone(), deps.policy.lifetimes);
    let state = Arc::new(AuthState { deps, authenticator });
    Router::new()
        .route("/auth/signup", post(handlers::signup))
        .route("/auth/verify", post(handlers::verify))
        .route("/auth/resend", post(handlers::resend))
        .route("/auth/login", post(handlers::login))
        .route("/auth/login/email", post(handlers::login_email))
        .route("/auth/login/code", post(handlers::login_code))
        .route("/auth/logout", post(handlers::logout))
        .route("/auth/password/forgot", post(handlers::forgot_password))
        .route("/auth/password/reset", post(handlers::reset_password))
        .route("/auth/users", get(handlers::list_users))
        .route("/auth/users/{email}", axum::routing::patch(handlers::change_user))
        .route("/auth/me", get(handlers::me))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name: &str| {
            let base = [
                ("TABLE_NAME", "release-dashboard"),
                (
                    "FLEET_CONFIG",
                    "environments: [{name: stg, clusters: [{name: a, region: eu-west-1}]}]",
                ),
                (SENDER_VAR, "no-reply@example.com"),
                (MAILER_FUNCTION_VAR, "release-dashboard-AuthMailer"),
                (CODE_KEY_VAR, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                (ADMIN_EMAILS_VAR, " Root@Example.com , ops@example.com"),
            ];
            extra.iter().chain(base.iter()).find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn settings_are_read_and_checked_by_name() {
        let settings = Settings::from_vars(&vars(&[])).unwrap();
        assert_eq!(settings.mailer_function, "release-dashboard-AuthMailer");
        assert_eq!(settings.policy.admin_emails.len(), 2);
        assert_eq!(settings.policy.admin_emails[0].as_str(), "root@example.com");
        assert_eq!(settings.code_key.len(), 32);
        let short = Settings::from_vars(&vars(&[(CODE_KEY_VAR, "c2hvcnQ=")])).unwrap_err();
        assert!(short.to_string().starts_with("environment variable CODE_KEY:"), "{short}");
        let mailer = MailerSettings::from_vars(&vars(&[])).unwrap();
        assert_eq!(mailer.sender.as_str(), "no-reply@example.com");
        assert_eq!(mailer.mail_per_hour, DEFAULT_MAIL_PER_HOUR);
        let sender = MailerSettings::from_vars(&vars(&[(SENDER_VAR, "nope")])).unwrap_err();
        assert!(sender.to_string().starts_with("environment variable MAIL_SENDER:"), "{sender}");
        let zero = MailerSettings::from_vars(&vars(&[(MAIL_PER_HOUR_VAR, "0")])).unwrap_err();
        assert!(zero.to_string().starts_with("environment variable MAIL_PER_HOUR:"), "{zero}");
        assert!(!format!("{mailer:?}").contains("AAEC"), "the key never prints");
        assert!(!format!("{settings:?}").contains("AAEC"), "the key never prints");
        assert!(!settings.policy.login_email_code, "off unless switched on");
        let on = Settings::from_vars(&vars(&[(LOGIN_EMAIL_CODE_VAR, "true")])).unwrap();
        assert!(on.policy.login_email_code);
        let typo = Settings::from_vars(&vars(&[(LOGIN_EMAIL_CODE_VAR, "yes")])).unwrap_err();
        assert!(typo.to_string().starts_with("environment variable LOGIN_EMAIL_CODE:"), "{typo}");
    }
}
