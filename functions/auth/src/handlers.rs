//! The auth routes. Every answer is the same whether or not an account
//! exists (sign-up, resend, failed sign-in), and every credential failure is
//! one generic 401.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shared::auth::{Admin, Authenticated, bearer_token, token_digest};
use shared::domain::{Email, TeamName};
use shared::http::{ApiError, ApiJson, ApiPath, ApiQuery};
use shared::records::account::{self, Account, AccountStatus, AccountSummary, Role};
use shared::records::limit_window::{self, Admission, Counted, Limit};
use shared::records::session::{self, Session};
use shared::store::{Condition, Cursor};

use crate::client::ClientAddr;
use crate::codes::{self, Purpose, SignUp};
use crate::limits::{
    GUESSES_PER_ACCOUNT, GUESSES_PER_CLIENT, RESET_MAIL, SIGNIN_MAIL, VERIFY_MAIL,
};
use crate::mail_jobs::MailJob;
use crate::password::Password;
use crate::secrets::new_token;
use crate::{AuthState, MAX_FAILURE_DELAY};

type AppState = State<Arc<AuthState>>;

fn email_or_400(text: &str) -> Result<Email, ApiError> {
    Email::parse(text).map_err(|e| ApiError::bad_request("invalid_email", e.rule))
}

fn invalid_code() -> ApiError {
    ApiError::bad_request("invalid_code", "the code is wrong or has expired; ask for a new one")
}

/// An answer that only says what happened (`check_your_email`,
/// `verified`, `password_changed`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct StatusAnswer {
    status: &'static str,
}

fn status(status: &'static str) -> Json<StatusAnswer> {
    Json(StatusAnswer { status })
}

fn check_your_email() -> impl IntoResponse {
    (StatusCode::ACCEPTED, status("check_your_email"))
}

/// A sign-in's session.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAnswer {
    /// The bearer token of every later request.
    token: String,
    expires_at: jiff::Timestamp,
    idle_expires_at: jiff::Timestamp,
    user: shared::auth::Principal,
}

/// A mailed code is the next step (`status: code_sent`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeSent {
    status: &'static str,
    /// Sent back with the code to `/auth/login/code`.
    challenge: String,
    expires_at: jiff::Timestamp,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    email: String,
    /// 8 to 128 characters, not a common password.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
    name: String,
}

/// Hashes the password, spends the address's verification-mail allowance
/// and leaves the rest to the mail worker: the same work, answer and time
/// for every address. A sign-up over the allowance changes nothing.
pub async fn signup(
    State(state): AppState,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::bad_request("invalid_name", "the name must be 1 to 100 characters"));
    }
    let password = Password::new(body.password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let policy = &state.policy;
    if !policy.allowed_domains.is_empty()
        && !policy.allowed_domains.iter().any(|d| d == email.domain())
    {
        return Err(ApiError::bad_request(
            "email_domain_not_allowed",
            "sign-up is limited to the organisation's email domains",
        ));
    }
    let password_hash = state.hasher.hash(&password).map_err(ApiError::internal)?;
    if state.take_mail(&email, &VERIFY_MAIL).await?.is_ok() {
        state.enqueue(MailJob::SignUp { email, sign_up: SignUp { password_hash, name } }).await?;
    }
    Ok(check_your_email())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    email: String,
    /// The six digits from the mail.
    #[schema(value_type = String)]
    code: SecretString,
    /// The password chosen at sign-up: the code works only with the
    /// password of the sign-up it was mailed for.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

fn code_shape(code: &SecretString) -> Result<(), ApiError> {
    let text = code.expose_secret();
    if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid_code())
    }
}

/// Proves the mailbox: the pending account becomes active with exactly the
/// password (and name) of the sign-up whose code this is, which the
/// verifier must know. Someone who signed the address up before its owner
/// did never gets their password kept: the owner types their own.
pub async fn verify(
    State(state): AppState,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    code_shape(&body.code)?;
    let store = state.store.as_ref();
    let hasher = &state.hasher;
    let is_the_sign_up_s = |sign_up: Option<&SignUp>| {
        sign_up.is_some_and(|s| hasher.verify(&body.password, &s.password_hash))
    };
    let redeemed = codes::redeem_if(
        store,
        &state.codes,
        &email,
        Purpose::VerifyEmail,
        "",
        &body.code,
        is_the_sign_up_s,
    )
    .await?
    .ok_or_else(invalid_code)?;
    let (mut account, version) = account::read(store, &email).await?.ok_or_else(invalid_code)?;
    let Some(sign_up) = redeemed.sign_up else { return Err(invalid_code()) };
    if account.status != AccountStatus::Pending {
        return Err(invalid_code());
    }
    account.password_hash = sign_up.password_hash;
    account.name = sign_up.name;
    state.activate(&mut account);
    account::write(store, &account, Condition::IfVersion(version)).await?;
    Ok(status("verified"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

/// A new verification code, within the address's allowance (429 past it,
/// for every address alike).
pub async fn resend(
    State(state): AppState,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    state.take_mail(&email, &VERIFY_MAIL).await?.map_err(too_many)?;
    state.enqueue(MailJob::Resend { email }).await?;
    Ok(check_your_email())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// A password sign-in. Each guess takes its place in the account's hourly
/// allowance (100, ASVS 2.2.1) and in this client's (20) before the
/// password is checked, so no request, however many race, is checked past
/// them; a right password gives its places back. Answers grow slower with
/// the client's failures. A stranger can shut the password door for an
/// hour at most, never the owner's way in by mail (`/auth/login/email`).
pub async fn login(
    State(state): AppState,
    client: ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    // A malformed address is a failed sign-in like any other.
    let Ok(email) = Email::parse(&body.email) else {
        state.hasher.verify_decoy(&body.password);
        return Err(ApiError::Unauthorized);
    };
    let store = state.store.as_ref();
    let now = state.clock.now();
    let from_client = Counted::AddressFrom(&email, &client.0);
    let client_guesses =
        match limit_window::take(store, GUESSES_PER_CLIENT, from_client, now).await? {
            Admission::Admitted { count } => count,
            Admission::Refused { retry_after } => {
                count(AuthEvent::Lockouts);
                return Err(ApiError::TooManyRequests { retry_after });
            }
        };
    let account_wide = Counted::Address(&email);
    if let Admission::Refused { retry_after } =
        limit_window::take(store, GUESSES_PER_ACCOUNT, account_wide, now).await?
    {
        count(AuthEvent::Lockouts);
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let account = account::read(store, &email).await?;
    let password_ok = match &account {
        Some((account, _)) => state.hasher.verify(&body.password, &account.password_hash),
        None => {
            state.hasher.verify_decoy(&body.password);
            false
        }
    };
    let account = match account {
        // A pending account cannot sign in at all: its password was never
        // proven to be the mailbox owner's.
        Some((account, _)) if password_ok && account.status == AccountStatus::Active => account,
        _ => {
            count(AuthEvent::LoginFailures);
            let steps = u32::try_from(client_guesses.saturating_sub(1)).unwrap_or(u32::MAX);
            let delay = state.policy.failure_delay.saturating_mul(steps).min(MAX_FAILURE_DELAY);
            tokio::time::sleep(delay).await;
            return Err(ApiError::Unauthorized);
        }
    };
    limit_window::give_back(store, GUESSES_PER_CLIENT, from_client, now).await?;
    limit_window::give_back(store, GUESSES_PER_ACCOUNT, account_wide, now).await?;
    if state.policy.login_email_code {
        return Ok(state.send_sign_in_code(account.email).await?.into_response());
    }
    Ok(state.start_session(&account).await?.into_response())
}

/// Signing in by mail: a code is mailed to the address (if it has an
/// active account) and the answer holds the challenge it is bound to. The
/// same answer for every address; 10 codes an hour. It does not count
/// against password guesses, so the owner of an account whose password
/// door a stranger shut still gets in.
pub async fn login_email(
    State(state): AppState,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<Response, ApiError> {
    let email = email_or_400(&body.email)?;
    Ok(state.send_sign_in_code(email).await?.into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginCodeBody {
    email: String,
    /// The challenge of the answer that sent the code.
    #[schema(value_type = String)]
    challenge: SecretString,
    #[schema(value_type = String)]
    code: SecretString,
}

/// The code from the mail and the challenge from the answer that sent it
/// (the second step of a password sign-in, or signing in by mail). Every
/// failure is the same 401; a code takes five tries at most.
pub async fn login_code(
    State(state): AppState,
    ApiJson(body): ApiJson<LoginCodeBody>,
) -> Result<Json<SessionAnswer>, ApiError> {
    let Ok(email) = Email::parse(&body.email) else { return Err(ApiError::Unauthorized) };
    let store = state.store.as_ref();
    let binding = token_digest(&body.challenge);
    let redeemed = code_shape(&body.code).is_ok()
        && codes::redeem(store, &state.codes, &email, Purpose::SignIn, &binding, &body.code)
            .await?
            .is_some();
    let account = match redeemed {
        true => account::read(store, &email).await?.map(|(a, _)| a),
        false => None,
    };
    match account {
        // Disabled between the two steps: no session.
        Some(account) if account.status == AccountStatus::Active => {
            state.start_session(&account).await
        }
        _ => {
            count(AuthEvent::LoginFailures);
            Err(ApiError::Unauthorized)
        }
    }
}

pub async fn forgot_password(
    State(state): AppState,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    state.take_mail(&email, &RESET_MAIL).await?.map_err(too_many)?;
    state.enqueue(MailJob::Forgot { email }).await?;
    Ok(check_your_email())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResetBody {
    email: String,
    #[schema(value_type = String)]
    code: SecretString,
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

/// Sets a new password and ends every session of the account.
pub async fn reset_password(
    State(state): AppState,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    code_shape(&body.code)?;
    let password = Password::new(body.new_password)
        .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?;
    let store = state.store.as_ref();
    let (mut account, version) = state.redeem(&email, Purpose::ResetPassword, &body.code).await?;
    if account.status == AccountStatus::Disabled {
        return Err(invalid_code());
    }
    let now = state.clock.now();
    account.password_hash = state.hasher.hash(&password).map_err(ApiError::internal)?;
    account.sessions_valid_after = Some(now);
    if account.status == AccountStatus::Pending {
        // The code proves the mailbox, as verification would.
        state.activate(&mut account);
    }
    account::write(store, &account, Condition::IfVersion(version)).await?;
    tracing::info!(user = %email.masked(), "password reset; older sessions revoked");
    Ok(status("password_changed"))
}

pub async fn logout(
    State(state): AppState,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer_token(&headers).ok_or(ApiError::Unauthorized)?;
    session::delete(state.store.as_ref(), &token_digest(&token)).await?;
    tracing::info!(user = %principal.email.masked(), "signed out");
    Ok(StatusCode::NO_CONTENT)
}

/// Who is signed in, and what they may see: the environments, and in
/// words, so that a new account with no team knows why its lists are empty.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeAnswer {
    #[serde(flatten)]
    principal: shared::auth::Principal,
    /// The environments this account sees.
    environments: Vec<String>,
    /// The same, in words.
    sees: String,
}

pub async fn me(
    State(state): AppState,
    Authenticated(principal): Authenticated,
) -> Result<Json<MeAnswer>, ApiError> {
    let config = state.fleet.current().await.map_err(ApiError::from)?;
    let environments: Vec<String> = config
        .environments
        .iter()
        .filter(|e| principal.can_see(e))
        .map(|e| e.name.to_string())
        .collect();
    let teams: Vec<&str> = principal.teams.iter().map(|t| t.as_str()).collect();
    let sees = if principal.is_admin() {
        "every environment (you are an admin)".to_owned()
    } else if environments.is_empty() {
        format!(
            "no environment yet: an admin gives accounts their teams, and each environment names \
             the teams that see it (your teams: {})",
            if teams.is_empty() { "none".to_owned() } else { teams.join(", ") }
        )
    } else {
        format!(
            "the environments of your teams ({}) and those open to everyone; an admin assigns teams",
            if teams.is_empty() { "none".to_owned() } else { teams.join(", ") }
        )
    };
    Ok(Json(MeAnswer { principal, environments, sees }))
}

fn too_many(retry_after: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests { retry_after }
}

impl AuthState {
    /// Spends one of the address's mails of a kind: `Err(retry_after)` when
    /// the allowance is spent. Counted whether or not the address has an
    /// account, so the answers of every address stay alike.
    async fn take_mail(
        &self,
        email: &Email,
        limits: &[Limit],
    ) -> Result<Result<(), std::time::Duration>, ApiError> {
        let now = self.clock.now();
        let store = self.store.as_ref();
        match limit_window::take_all(store, limits, Counted::Address(email), now).await? {
            Admission::Admitted { .. } => Ok(Ok(())),
            Admission::Refused { retry_after } => Ok(Err(retry_after)),
        }
    }

    async fn enqueue(&self, job: MailJob) -> Result<(), ApiError> {
        self.mail_jobs.enqueue(job).await.map_err(ApiError::Unavailable)
    }

    /// The mailbox is proven: active, and admin if the installation lists
    /// the address.
    fn activate(&self, account: &mut Account) {
        account.status = AccountStatus::Active;
        account.verified_at = Some(self.clock.now());
        if self.policy.admin_emails.contains(&account.email) {
            account.role = Role::Admin;
        }
    }

    /// Leaves a sign-in code, bound to a fresh challenge, for the mail
    /// worker, and answers with the challenge: the code alone (say, from a
    /// read mailbox) signs no one in.
    async fn send_sign_in_code(&self, email: Email) -> Result<impl IntoResponse + use<>, ApiError> {
        self.take_mail(&email, &SIGNIN_MAIL).await?.map_err(too_many)?;
        let challenge = new_token().map_err(ApiError::internal)?;
        let challenge_digest = token_digest(&challenge);
        self.enqueue(MailJob::SignIn { email, challenge_digest }).await?;
        let expires_at = self
            .clock
            .now()
            .saturating_add(SignedDuration::try_from(codes::VALID_FOR).unwrap_or_default())
            .map_err(ApiError::internal)?;
        let challenge = challenge.expose_secret().to_owned();
        Ok((StatusCode::ACCEPTED, Json(CodeSent { status: "code_sent", challenge, expires_at })))
    }

    /// A new session for `account`, answered as the sign-in's result.
    async fn start_session(&self, account: &Account) -> Result<Json<SessionAnswer>, ApiError> {
        let token = new_token().map_err(ApiError::internal)?;
        let session = Session::new(account.email.clone(), self.clock.now(), self.policy.lifetimes);
        session::create(self.store.as_ref(), &token_digest(&token), &session).await?;
        tracing::info!(user = %account.email.masked(), "signed in");
        count(AuthEvent::Logins);
        Ok(Json(SessionAnswer {
            token: token.expose_secret().to_owned(),
            expires_at: session.absolute_expiry,
            idle_expires_at: session.idle_expiry,
            user: shared::auth::Principal {
                email: account.email.clone(),
                name: account.name.clone(),
                role: account.role,
                teams: account.teams.clone(),
            },
        }))
    }

    /// Uses up `code` and returns the account it was for; any failure is
    /// the same `invalid_code`.
    async fn redeem(
        &self,
        email: &Email,
        purpose: Purpose,
        code: &SecretString,
    ) -> Result<(Account, u64), ApiError> {
        let store = self.store.as_ref();
        codes::redeem(store, &self.codes, email, purpose, "", code)
            .await?
            .ok_or_else(invalid_code)?;
        account::read(store, email).await?.ok_or_else(invalid_code)
    }
}

/// What the auth function counts in CloudWatch (EMF), one metric each.
#[derive(Debug, Clone, Copy)]
enum AuthEvent {
    Logins,
    LoginFailures,
    Lockouts,
}

fn count(event: AuthEvent) {
    let name = match event {
        AuthEvent::Logins => "Logins",
        AuthEvent::LoginFailures => "LoginFailures",
        AuthEvent::Lockouts => "Lockouts",
    };
    shared::metrics::Record::new().value(name, 1.0, shared::metrics::Unit::Count).emit();
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Admins: every account, by address, a page at a time.
pub async fn list_users(
    State(state): AppState,
    Admin(_): Admin,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<shared::paging::Paged<AccountSummary>>, ApiError> {
    let paging = shared::paging::Paging::new(query.limit, query.cursor)?;
    let cursor = paging.cursor.map(Cursor::from_client);
    Ok(Json(account::directory_page(state.store.as_ref(), paging.limit, cursor).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    role: Option<Role>,
    teams: Option<Vec<TeamName>>,
    disabled: Option<bool>,
}

/// Admins: change a user's role or teams, disable or re-enable them.
/// Disabling ends their sessions at once.
pub async fn change_user(
    State(state): AppState,
    Admin(admin): Admin,
    ApiPath(email): ApiPath<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&email)?;
    let store = state.store.as_ref();
    let Some((mut account, version)) = account::read(store, &email).await? else {
        return Err(ApiError::not_found("user"));
    };
    let demotes_self = email == admin.email
        && (change.role == Some(Role::Viewer) || change.disabled == Some(true));
    if demotes_self {
        return Err(ApiError::bad_request(
            "self_lockout",
            "an admin cannot demote or disable their own account",
        ));
    }
    if let Some(role) = change.role {
        account.role = role;
    }
    if let Some(teams) = change.teams {
        account.teams = teams;
    }
    match change.disabled {
        Some(true) if account.status != AccountStatus::Disabled => {
            account.status = AccountStatus::Disabled;
            account.sessions_valid_after = Some(state.clock.now());
        }
        Some(false) if account.status == AccountStatus::Disabled => {
            account.status = if account.verified_at.is_some() {
                AccountStatus::Active
            } else {
                AccountStatus::Pending
            };
        }
        _ => {}
    }
    account::write(store, &account, Condition::IfVersion(version)).await?;
    tracing::info!(admin = %admin.email.masked(), user = %email.masked(), "account changed");
    Ok(Json(AccountSummary::from(&account)))
}
