//! The auth routes. Every answer is the same whether or not an account
//! exists (sign-up, resend, failed sign-in), and every credential failure is
//! one generic 401.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::auth::{
    Account, AccountStatus, AccountSummary, Admin, Authenticated, Role, Session, bearer_token,
    create_session, delete_session, read_account, token_digest, write_account,
};
use shared::domain::{Email, TeamName};
use shared::http::{ApiError, ApiJson, ApiQuery};
use shared::mail::{CodePurpose, Mail};
use shared::store::{Condition, Cursor, Query};

use crate::codes::{self, Purpose};
use crate::limits::{
    self, LOGIN_FAILURES_PER_HOUR, Limit, RESEND_PER_HOUR, RESEND_PER_MINUTE, RESET_PER_HOUR,
    RESET_PER_MINUTE, SIGNIN_CODES_PER_HOUR,
};
use crate::password::Password;
use crate::secrets::{new_code, new_token};
use crate::{AuthState, MAX_FAILURE_DELAY};

type AppState = State<Arc<AuthState>>;

fn email_or_400(text: &str) -> Result<Email, ApiError> {
    Email::parse(text).map_err(|e| ApiError::bad_request("invalid_email", e.rule))
}

fn invalid_code() -> ApiError {
    ApiError::bad_request("invalid_code", "the code is wrong or has expired; ask for a new one")
}

fn store_error(err: impl Into<shared::store::BoxError>) -> ApiError {
    ApiError::Unavailable(err.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupBody {
    email: String,
    password: SecretString,
    name: String,
}

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
    let store = state.store.as_ref();
    let now = state.clock.now();
    match read_account(store, &email).await.map_err(store_error)? {
        Some((account, _)) => {
            // Pay what a new account pays, so timing tells nothing either.
            state.hasher.verify_decoy(&SecretString::from(password.expose().to_owned()));
            match account.status {
                AccountStatus::Active => {
                    state.send(Mail::already_registered(&email, &policy.product)).await
                }
                AccountStatus::Pending => {
                    state.issue_code(&email, Purpose::VerifyEmail, "", false).await?
                }
                AccountStatus::Disabled => {}
            }
        }
        None => {
            let hash = state.hasher.hash(&password).map_err(ApiError::internal)?;
            let role =
                if policy.admin_emails.contains(&email) { Role::Admin } else { Role::Viewer };
            let account = Account {
                email: email.clone(),
                name,
                password_hash: hash,
                role,
                teams: Vec::new(),
                status: AccountStatus::Pending,
                created_at: now,
                verified_at: None,
                sessions_valid_after: None,
            };
            match write_account(store, &account, Condition::IfAbsent).await {
                Ok(_) => {
                    count(AuthEvent::Signups);
                    state.issue_code(&email, Purpose::VerifyEmail, "", false).await?
                }
                // Someone signed up with this address a moment ago: same answer.
                Err(shared::auth::AuthStoreError::Store(
                    shared::store::StoreError::ConditionFailed,
                )) => {}
                Err(other) => return Err(store_error(other)),
            }
        }
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "check_your_email" }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    email: String,
    code: SecretString,
}

fn code_shape(code: &SecretString) -> Result<(), ApiError> {
    let text = code.expose_secret();
    if text.len() == 6 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid_code())
    }
}

pub async fn verify(
    State(state): AppState,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    code_shape(&body.code)?;
    let store = state.store.as_ref();
    let (mut account, version) = state.redeem(&email, Purpose::VerifyEmail, &body.code).await?;
    if account.status == AccountStatus::Pending {
        account.status = AccountStatus::Active;
        account.verified_at = Some(state.clock.now());
        write_account(store, &account, Condition::IfVersion(version)).await.map_err(store_error)?;
    }
    Ok(Json(json!({ "status": "verified" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    email: String,
}

pub async fn resend(
    State(state): AppState,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    // Limited per address whether or not it has an account.
    state.take_resend(&email, Purpose::VerifyEmail).await?;
    if let Some((account, _)) =
        read_account(state.store.as_ref(), &email).await.map_err(store_error)?
        && account.status == AccountStatus::Pending
    {
        state.issue_code(&email, Purpose::VerifyEmail, "", true).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "check_your_email" }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    password: SecretString,
}

pub async fn login(
    State(state): AppState,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    // A malformed address is a failed sign-in like any other.
    let Ok(email) = Email::parse(&body.email) else {
        state.hasher.verify_decoy(&body.password);
        return Err(ApiError::Unauthorized);
    };
    state.refuse_when_locked(&email).await?;
    let account = read_account(state.store.as_ref(), &email).await.map_err(store_error)?;
    let password_ok = match &account {
        Some((account, _)) => state.hasher.verify(&body.password, &account.password_hash),
        None => {
            state.hasher.verify_decoy(&body.password);
            false
        }
    };
    let account = match account {
        Some((account, _)) if password_ok && account.status != AccountStatus::Disabled => account,
        _ => return Err(state.failed_sign_in(&email).await),
    };
    if account.status == AccountStatus::Pending {
        // The password is right, so saying this reveals nothing new.
        return Err(ApiError::Forbidden);
    }
    if state.policy.login_email_code {
        return Ok(state.send_sign_in_code(&account.email).await?.into_response());
    }
    Ok(state.start_session(&account).await?.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginCodeBody {
    email: String,
    challenge: SecretString,
    code: SecretString,
}

/// The second step of a sign-in when mailed codes are switched on: the code
/// from the mail and the challenge from the first step's answer. Every
/// failure is the same 401 and counts against the sign-in limit.
pub async fn login_code(
    State(state): AppState,
    ApiJson(body): ApiJson<LoginCodeBody>,
) -> Result<Json<Value>, ApiError> {
    let Ok(email) = Email::parse(&body.email) else { return Err(ApiError::Unauthorized) };
    state.refuse_when_locked(&email).await?;
    let store = state.store.as_ref();
    let challenge = body.challenge.expose_secret();
    let redeemed = code_shape(&body.code).is_ok()
        && codes::redeem(store, &state.codes, &email, Purpose::SignIn, challenge, &body.code)
            .await
            .map_err(store_error)?;
    let account = match redeemed {
        true => read_account(store, &email).await.map_err(store_error)?.map(|(a, _)| a),
        false => None,
    };
    match account {
        // Disabled between the two steps: no session.
        Some(account) if account.status == AccountStatus::Active => {
            state.start_session(&account).await
        }
        _ => Err(state.failed_sign_in(&email).await),
    }
}

pub async fn forgot_password(
    State(state): AppState,
    ApiJson(body): ApiJson<EmailBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&body.email)?;
    state.take_resend(&email, Purpose::ResetPassword).await?;
    if let Some((account, _)) =
        read_account(state.store.as_ref(), &email).await.map_err(store_error)?
        && account.status != AccountStatus::Disabled
    {
        state.issue_code(&email, Purpose::ResetPassword, "", true).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "check_your_email" }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResetBody {
    email: String,
    code: SecretString,
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
        account.status = AccountStatus::Active;
        account.verified_at = Some(now);
    }
    write_account(store, &account, Condition::IfVersion(version)).await.map_err(store_error)?;
    tracing::info!(user = %email.masked(), "password reset; older sessions revoked");
    Ok(Json(json!({ "status": "password_changed" })))
}

pub async fn logout(
    State(state): AppState,
    Authenticated(principal): Authenticated,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = bearer_token(&headers).ok_or(ApiError::Unauthorized)?;
    delete_session(state.store.as_ref(), &token_digest(&token)).await.map_err(store_error)?;
    tracing::info!(user = %principal.email.masked(), "signed out");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(Authenticated(principal): Authenticated) -> Json<shared::auth::Principal> {
    Json(principal)
}

impl AuthState {
    /// 429 once the address has used up its failed sign-ins for the window.
    async fn refuse_when_locked(&self, email: &Email) -> Result<(), ApiError> {
        let now = self.clock.now();
        let failures = limits::count(self.store.as_ref(), LOGIN_FAILURES_PER_HOUR, email, now)
            .await
            .map_err(store_error)?;
        if failures >= LOGIN_FAILURES_PER_HOUR.max {
            count(AuthEvent::Lockouts);
            return Err(ApiError::TooManyRequests { retry_after: LOGIN_FAILURES_PER_HOUR.window });
        }
        Ok(())
    }

    /// Counts a failed sign-in and answers it the generic 401, later the
    /// more failures the window already holds.
    async fn failed_sign_in(&self, email: &Email) -> ApiError {
        let now = self.clock.now();
        let failures =
            match limits::take(self.store.as_ref(), LOGIN_FAILURES_PER_HOUR, email, now).await {
                Ok(taken) => taken.unwrap_or(LOGIN_FAILURES_PER_HOUR.max),
                Err(err) => return store_error(err),
            };
        count(AuthEvent::LoginFailures);
        let steps = u32::try_from(failures).unwrap_or(u32::MAX);
        let delay = self.policy.failure_delay.saturating_mul(steps).min(MAX_FAILURE_DELAY);
        tokio::time::sleep(delay).await;
        ApiError::Unauthorized
    }

    /// Mails a sign-in code bound to a fresh challenge, and answers with the
    /// challenge: the code alone (say, from a read mailbox) signs no one in.
    async fn send_sign_in_code(&self, email: &Email) -> Result<impl IntoResponse, ApiError> {
        self.take_resend(email, Purpose::SignIn).await?;
        let challenge = new_token().map_err(ApiError::internal)?;
        self.issue_code(email, Purpose::SignIn, challenge.expose_secret(), true).await?;
        let expires_at = self
            .clock
            .now()
            .saturating_add(SignedDuration::try_from(codes::VALID_FOR).unwrap_or_default())
            .map_err(ApiError::internal)?;
        tracing::info!(user = %email.masked(), "sign-in code sent");
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "code_sent",
                "challenge": challenge.expose_secret(),
                "expiresAt": expires_at,
            })),
        ))
    }

    /// A new session for `account`, answered as the sign-in's result.
    async fn start_session(&self, account: &Account) -> Result<Json<Value>, ApiError> {
        let token = new_token().map_err(ApiError::internal)?;
        let session = Session::new(account.email.clone(), self.clock.now(), self.policy.lifetimes);
        create_session(self.store.as_ref(), &token_digest(&token), &session)
            .await
            .map_err(store_error)?;
        tracing::info!(user = %account.email.masked(), "signed in");
        count(AuthEvent::Logins);
        Ok(Json(json!({
            "token": token.expose_secret(),
            "expiresAt": session.absolute_expiry,
            "idleExpiresAt": session.idle_expiry,
            "user": {
                "email": account.email,
                "name": account.name,
                "role": account.role,
                "teams": account.teams,
            },
        })))
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
        if !codes::redeem(store, &self.codes, email, purpose, "", code)
            .await
            .map_err(store_error)?
        {
            return Err(invalid_code());
        }
        read_account(store, email).await.map_err(store_error)?.ok_or_else(invalid_code)
    }

    async fn send(&self, mail: Mail) {
        let to = mail.to.masked();
        if let Err(err) = self.mailer.send(mail).await {
            // The answer must not depend on mail delivery: log and go on.
            tracing::error!(to = %to, error = %shared::http::error_chain(&err), "mail not sent");
        }
    }

    /// Counts one code sent for `purpose` to `email`: per address and
    /// purpose, 1 a minute and 5 an hour.
    async fn take_resend(&self, email: &Email, purpose: Purpose) -> Result<(), ApiError> {
        let store = self.store.as_ref();
        let now = self.clock.now();
        let limits: &[Limit] = match purpose {
            Purpose::VerifyEmail => &[RESEND_PER_MINUTE, RESEND_PER_HOUR],
            Purpose::ResetPassword => &[RESET_PER_MINUTE, RESET_PER_HOUR],
            Purpose::SignIn => &[SIGNIN_CODES_PER_HOUR],
        };
        for &limit in limits {
            if let Err(retry_after) =
                limits::take(store, limit, email, now).await.map_err(store_error)?
            {
                return Err(ApiError::TooManyRequests { retry_after });
            }
        }
        Ok(())
    }

    /// Sends a fresh code, bound to `binding`. `limited` says the caller
    /// already counted it against the resend limits; otherwise it is counted
    /// here, and a code over the limit is silently not sent.
    async fn issue_code(
        &self,
        email: &Email,
        purpose: Purpose,
        binding: &str,
        limited: bool,
    ) -> Result<(), ApiError> {
        if !limited && self.take_resend(email, purpose).await.is_err() {
            return Ok(());
        }
        let code = new_code().map_err(ApiError::internal)?;
        let now = self.clock.now();
        codes::store(self.store.as_ref(), &self.codes, email, purpose, binding, &code, now)
            .await
            .map_err(store_error)?;
        let mail_purpose = match purpose {
            Purpose::VerifyEmail => CodePurpose::VerifyEmail,
            Purpose::ResetPassword => CodePurpose::ResetPassword,
            Purpose::SignIn => CodePurpose::SignIn,
        };
        self.send(Mail::code(email, &self.policy.product, mail_purpose, &code, codes::VALID_FOR))
            .await;
        count(AuthEvent::CodesSent);
        Ok(())
    }
}

/// What the auth function counts in CloudWatch (EMF), one metric each.
#[derive(Debug, Clone, Copy)]
enum AuthEvent {
    Signups,
    Logins,
    LoginFailures,
    Lockouts,
    CodesSent,
}

fn count(event: AuthEvent) {
    let name = match event {
        AuthEvent::Signups => "Signups",
        AuthEvent::Logins => "Logins",
        AuthEvent::LoginFailures => "LoginFailures",
        AuthEvent::Lockouts => "Lockouts",
        AuthEvent::CodesSent => "CodesSent",
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
) -> Result<impl IntoResponse, ApiError> {
    let paging = shared::paging::Paging::new(query.limit, query.cursor)?;
    let request = Query::partition(shared::auth::keys::DIRECTORY_PK)
        .limit(paging.limit)
        .after(paging.cursor.map(Cursor::from_client));
    let page = state.store.query(request).await?;
    let items = page
        .items
        .into_iter()
        .map(|s| serde_json::from_value::<AccountSummary>(s.item.body))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    let mut body = json!({ "items": items });
    if let Some(next) = page.next {
        // Absent on the last page, as on every other list.
        body["next"] = json!(next.as_str());
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
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
    Path(email): Path<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> Result<impl IntoResponse, ApiError> {
    let email = email_or_400(&email)?;
    let store = state.store.as_ref();
    let Some((mut account, version)) = read_account(store, &email).await.map_err(store_error)?
    else {
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
    match write_account(store, &account, Condition::IfVersion(version)).await {
        Ok(_) => {}
        Err(shared::auth::AuthStoreError::Store(err)) => return Err(err.into()),
        Err(other) => return Err(ApiError::internal(other)),
    }
    tracing::info!(admin = %admin.email.masked(), user = %email.masked(), "account changed");
    Ok(Json(AccountSummary::from(&account)))
}
