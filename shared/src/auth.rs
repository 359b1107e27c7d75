//! Who is calling, as every API function sees it: the session a bearer
//! token names, its account's role and teams, and which environments that
//! lets them see. The records themselves are `records::account` and
//! `records::session`.
//!
//! Sessions are resolved on every request from the table (a consistent
//! read), so a logout, a password reset or a disabled account takes effect
//! at once everywhere — one shared code path instead of a Lambda authorizer,
//! which would also cache answers for up to its TTL.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::clock::Clock;
use crate::config::Environment;
use crate::domain::{Email, TeamName};
use crate::http::ApiError;
use crate::records::account::{self, AccountStatus, Role};
use crate::records::session::{self, SessionLifetimes, add};
use crate::store::{ItemGet, ItemPut, Store, StoreError};

/// Who is calling: what handlers and the authorization rules need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub teams: Vec<TeamName>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admins see every environment; others see environments that name no
    /// team or name one of theirs.
    pub fn can_see(&self, environment: &Environment) -> bool {
        self.is_admin()
            || environment.teams.is_empty()
            || environment.teams.iter().any(|t| self.teams.contains(t))
    }
}

/// An idle session's expiry is pushed forward at most this often, so that
/// a busy page does not write on every request.
const IDLE_REFRESH_EVERY: Duration = Duration::from_secs(60);

/// Who holds this session token, if the session is valid now: not expired
/// (absolute or idle), its account active, and created after the account's
/// last revocation. Pushes the idle expiry forward (at most once a minute).
pub async fn resolve_session<S>(
    store: &S,
    token_digest: &str,
    lifetimes: SessionLifetimes,
    now: Timestamp,
) -> Result<Option<Principal>, StoreError>
where
    S: ItemGet + ItemPut + ?Sized,
{
    let Some((mut session, version)) = session::read(store, token_digest).await? else {
        return Ok(None);
    };
    if session.absolute_expiry <= now || session.idle_expiry <= now {
        return Ok(None);
    }
    let Some((account, _)) = account::read(store, &session.email).await? else { return Ok(None) };
    // A session created at the very instant of a revocation is revoked too.
    let revoked = account.sessions_valid_after.is_some_and(|after| session.created_at <= after);
    if account.status != AccountStatus::Active || revoked {
        return Ok(None);
    }
    let refreshed_idle = add(now, lifetimes.idle).min(session.absolute_expiry);
    if refreshed_idle.duration_since(session.idle_expiry)
        >= SignedDuration::try_from(IDLE_REFRESH_EVERY).unwrap_or_default()
    {
        session.idle_expiry = refreshed_idle;
        // Losing this race to a logout (the item deleted) must not revive it.
        session::rewrite(store, token_digest, &session, version).await?;
    }
    Ok(Some(Principal {
        email: account.email,
        name: account.name,
        role: account.role,
        teams: account.teams,
    }))
}

/// What is stored for a session token: its SHA-256. Tokens carry 256
/// random bits, so no key is needed to make the digest useless to a thief.
pub fn token_digest(token: &SecretString) -> String {
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.expose_secret().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Resolves bearer tokens for every API function.
pub struct Authenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    lifetimes: SessionLifetimes,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("lifetimes", &self.lifetimes).finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, lifetimes: SessionLifetimes) -> Self {
        Self { store, clock, lifetimes }
    }

    pub async fn principal(&self, token: &SecretString) -> Result<Option<Principal>, StoreError> {
        let digest = token_digest(token);
        resolve_session(self.store.as_ref(), &digest, self.lifetimes, self.clock.now()).await
    }
}

/// The bearer token of a request, if it has a well-formed one.
pub fn bearer_token(headers: &HeaderMap) -> Option<SecretString> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then(|| SecretString::from(token.to_owned()))
}

/// Router states that can authenticate requests.
pub trait HasAuthenticator {
    fn authenticator(&self) -> &Authenticator;
}

impl HasAuthenticator for Authenticator {
    fn authenticator(&self) -> &Authenticator {
        self
    }
}

impl<T: HasAuthenticator + ?Sized> HasAuthenticator for Arc<T> {
    fn authenticator(&self) -> &Authenticator {
        (**self).authenticator()
    }
}

/// An extractor: the signed-in caller, or a 401.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Principal);

impl<S> FromRequestParts<S> for Authenticated
where
    S: HasAuthenticator + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        match state.authenticator().principal(&token).await {
            Ok(Some(principal)) => Ok(Self(principal)),
            Ok(None) => Err(ApiError::Unauthorized),
            Err(err) => Err(err.into()),
        }
    }
}

/// An extractor: the signed-in caller if an admin; 401 or 403 otherwise.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl<S> FromRequestParts<S> for Admin
where
    S: HasAuthenticator + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if principal.is_admin() { Ok(Self(principal)) } else { Err(ApiError::Forbidden) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::FleetConfig;
    use crate::records::account::Account;
    use crate::records::session::Session;
    use crate::store::Condition;
    use crate::store::memory::MemoryStore;

    fn email() -> Email {
        Email::parse("jane@example.com").unwrap()
    }

    fn account(now: Timestamp) -> Account {
        Account {
            email: email(),
            name: "Jane".into(),
            password_hash: "$argon2id$…".into(),
            role: Role::Viewer,
            teams: vec![TeamName::parse("platform").unwrap()],
            status: AccountStatus::Active,
            created_at: now,
            verified_at: Some(now),
            sessions_valid_after: None,
        }
    }

    struct Bed {
        clock: Arc<ManualClock>,
        store: MemoryStore,
    }

    impl Bed {
        async fn new() -> Self {
            let clock = Arc::new(ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap()));
            let store = MemoryStore::new(clock.clone());
            account::write(&store, &account(clock.now()), Condition::IfAbsent).await.unwrap();
            Self { clock, store }
        }

        fn now(&self) -> Timestamp {
            self.clock.now()
        }

        async fn session(&self) -> String {
            let session = Session::new(email(), self.now(), SessionLifetimes::default());
            session::create(&self.store, "digest-1", &session).await.unwrap();
            "digest-1".to_owned()
        }

        async fn resolve(&self, digest: &str) -> Option<Principal> {
            resolve_session(&self.store, digest, SessionLifetimes::default(), self.now())
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn a_fresh_session_resolves_to_its_account() {
        let bed = Bed::new().await;
        let digest = bed.session().await;
        let principal = bed.resolve(&digest).await.unwrap();
        assert_eq!((principal.email, principal.role), (email(), Role::Viewer));
        assert!(bed.resolve("unknown").await.is_none());
    }

    #[tokio::test]
    async fn sessions_end_after_idle_time_unless_used() {
        let bed = Bed::new().await;
        let digest = bed.session().await;
        bed.clock.advance(Duration::from_secs(20 * 60));
        assert!(bed.resolve(&digest).await.is_some(), "used after 20 min: idle expiry moves");
        bed.clock.advance(Duration::from_secs(25 * 60));
        assert!(bed.resolve(&digest).await.is_some(), "25 min after the last use");
        bed.clock.advance(Duration::from_secs(31 * 60));
        assert!(bed.resolve(&digest).await.is_none(), "31 idle minutes");
    }

    #[tokio::test]
    async fn sessions_end_at_the_absolute_expiry_even_when_busy() {
        let bed = Bed::new().await;
        let digest = bed.session().await;
        for _ in 0..(12 * 4 - 1) {
            bed.clock.advance(Duration::from_secs(15 * 60));
            assert!(bed.resolve(&digest).await.is_some());
        }
        bed.clock.advance(Duration::from_secs(15 * 60));
        assert!(bed.resolve(&digest).await.is_none(), "12 hours after sign-in");
    }

    #[tokio::test]
    async fn logout_disabling_and_revocation_end_sessions() {
        let bed = Bed::new().await;
        let digest = bed.session().await;
        session::delete(&bed.store, &digest).await.unwrap();
        assert!(bed.resolve(&digest).await.is_none(), "logged out");

        let digest = bed.session().await;
        let (mut account, version) = account::read(&bed.store, &email()).await.unwrap().unwrap();
        bed.clock.advance(Duration::from_secs(1));
        account.sessions_valid_after = Some(bed.now());
        let version =
            account::write(&bed.store, &account, Condition::IfVersion(version)).await.unwrap();
        assert!(bed.resolve(&digest).await.is_none(), "password reset revokes older sessions");

        bed.clock.advance(Duration::from_secs(1));
        let session = Session::new(email(), bed.now(), SessionLifetimes::default());
        session::create(&bed.store, "digest-2", &session).await.unwrap();
        assert!(bed.resolve("digest-2").await.is_some(), "a newer session is fine");
        account.status = AccountStatus::Disabled;
        account::write(&bed.store, &account, Condition::IfVersion(version)).await.unwrap();
        assert!(bed.resolve("digest-2").await.is_none(), "a disabled account has no sessions");
    }

    #[tokio::test]
    async fn team_scoping_limits_what_a_viewer_sees() {
        let fleet = FleetConfig::parse(
            "defaults: {region: eu-west-1}\nenvironments:\n  - {name: dab-platform-stg, teams: [platform], clusters: [{name: a}]}\n  - {name: dab-custsol-prod, teams: [custsol], clusters: [{name: b}]}\n  - {name: sandbox, clusters: [{name: c}]}\n",
            "test",
        )
        .unwrap();
        let viewer = Principal {
            email: email(),
            name: "Jane".into(),
            role: Role::Viewer,
            teams: vec![TeamName::parse("platform").unwrap()],
        };
        let visible: Vec<&str> = fleet
            .environments
            .iter()
            .filter(|e| viewer.can_see(e))
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(visible, ["dab-platform-stg", "sandbox"]);
        let admin = Principal { role: Role::Admin, teams: vec![], ..viewer };
        assert!(fleet.environments.iter().all(|e| admin.can_see(e)));
    }

    #[test]
    fn debug_output_hides_the_hash_and_address() {
        let shown = format!("{:?}", account("2026-11-23T08:00:00Z".parse().unwrap()));
        assert!(!shown.contains("argon2") && !shown.contains("jane@"), "{shown}");
    }
}

#[cfg(test)]
mod extractor_tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::clock::ManualClock;
    use crate::records::account::Account;
    use crate::records::session::Session;
    use crate::store::Condition;
    use crate::store::memory::MemoryStore;

    async fn me(Authenticated(p): Authenticated) -> String {
        p.email.to_string()
    }

    async fn admin_only(Admin(p): Admin) -> String {
        p.email.to_string()
    }

    async fn app(role: Role) -> (Router, SecretString) {
        let clock = Arc::new(ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(clock.clone()));
        let now = clock.now();
        let email = Email::parse("jane@example.com").unwrap();
        let account = Account {
            email: email.clone(),
            name: "Jane".into(),
            password_hash: String::new(),
            role,
            teams: vec![],
            status: AccountStatus::Active,
            created_at: now,
            verified_at: Some(now),
            sessions_valid_after: None,
        };
        account::write(store.as_ref(), &account, Condition::IfAbsent).await.unwrap();
        let token = SecretString::from("a-token-with-enough-entropy-for-a-test".to_owned());
        let session = Session::new(email, now, SessionLifetimes::default());
        session::create(store.as_ref(), &token_digest(&token), &session).await.unwrap();
        let authenticator = Arc::new(Authenticator::new(store, clock, SessionLifetimes::default()));
        let router = Router::new()
            .route("/me", get(me))
            .route("/admin", get(admin_only))
            .with_state(authenticator);
        (router, token)
    }

    async fn status(router: Router, path: &str, authorization: Option<String>) -> StatusCode {
        let mut request = Request::get(path);
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        router.oneshot(request.body(Body::empty()).unwrap()).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_valid_bearer_token_is_accepted_and_anything_else_is_401() {
        let (router, token) = app(Role::Viewer).await;
        let bearer = format!("Bearer {}", token.expose_secret());
        assert_eq!(status(router.clone(), "/me", Some(bearer.clone())).await, StatusCode::OK);
        let scheme_in_lower_case = format!("bearer {}", token.expose_secret());
        assert_eq!(status(router.clone(), "/me", Some(scheme_in_lower_case)).await, StatusCode::OK);
        let altered = format!("{bearer}x");
        assert_eq!(status(router.clone(), "/me", Some(altered)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(router.clone(), "/me", None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(router.clone(), "/me", Some("Basic abc".into())).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(router.clone(), "/me", Some("Bearer ".into())).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(router, "/admin", Some(bearer)).await,
            StatusCode::FORBIDDEN,
            "a viewer is no admin"
        );
    }

    #[tokio::test]
    async fn admins_pass_the_admin_extractor() {
        let (router, token) = app(Role::Admin).await;
        let bearer = format!("Bearer {}", token.expose_secret());
        assert_eq!(status(router, "/admin", Some(bearer)).await, StatusCode::OK);
    }
}
