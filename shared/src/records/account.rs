//! An account (`USER#<email>` / `ACCOUNT`) and its entry in the directory
//! admins list (`USERS` / `<email>`), written together.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::domain::{Email, TeamName};
use crate::paging::Paged;
use crate::store::{
    Condition, Cursor, Item, ItemGet, ItemKey, ItemPut, ItemQuery, Query, StoreError, StoreResult,
};

/// One partition listing every account (sorted by address), for admins.
const DIRECTORY_PK: &str = "USERS";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Viewer,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AccountStatus {
    /// Signed up, email not verified yet: cannot sign in.
    Pending,
    Active,
    Disabled,
}

/// An account as stored. The password hash never leaves the auth function.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub email: Email,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub teams: Vec<TeamName>,
    pub status: AccountStatus,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<Timestamp>,
    /// Sessions created before this instant are no longer valid (password
    /// reset, disabling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_valid_after: Option<Timestamp>,
}

impl Account {
    /// A verified, active account as of `now` (seeded admins, tests).
    pub fn active(
        email: Email,
        name: impl Into<String>,
        password_hash: String,
        role: Role,
        teams: Vec<TeamName>,
        now: Timestamp,
    ) -> Self {
        Self {
            email,
            name: name.into(),
            password_hash,
            role,
            teams,
            status: AccountStatus::Active,
            created_at: now,
            verified_at: Some(now),
            sessions_valid_after: None,
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("email", &self.email.masked())
            .field("role", &self.role)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// An account as admins list it: no hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountSummary {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub teams: Vec<TeamName>,
    pub status: AccountStatus,
    pub created_at: Timestamp,
}

impl From<&Account> for AccountSummary {
    fn from(a: &Account) -> Self {
        Self {
            email: a.email.clone(),
            name: a.name.clone(),
            role: a.role,
            teams: a.teams.clone(),
            status: a.status,
            created_at: a.created_at,
        }
    }
}

/// Where an account is kept.
pub fn key(email: &Email) -> ItemKey {
    ItemKey::new(super::keys::user_pk(email), "ACCOUNT")
}

/// An account and its stored version, if the address has one.
pub async fn read<S: ItemGet + ?Sized>(
    store: &S,
    email: &Email,
) -> Result<Option<(Account, u64)>, StoreError> {
    let key = key(email);
    let Some(stored) = store.get(&key).await? else { return Ok(None) };
    let account =
        serde_json::from_value(stored.item.body).map_err(|e| StoreError::corrupt(&key, e))?;
    Ok(Some((account, stored.version)))
}

/// How long an account stays pending: anyone can sign any address up, so
/// an unproven account must not outlive its purpose (its codes live 10
/// minutes; a week leaves room for mail that comes late).
pub const PENDING_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Writes an account if `condition` holds (`IfAbsent` to create,
/// `IfVersion` to update what was read), and its directory entry.
pub async fn write<S: ItemPut + ?Sized>(
    store: &S,
    account: &Account,
    condition: Condition,
) -> Result<u64, StoreError> {
    let expires_at = (account.status == AccountStatus::Pending).then(|| {
        let ttl = SignedDuration::try_from(PENDING_TTL).unwrap_or_default();
        account.created_at.saturating_add(ttl).unwrap_or(Timestamp::MAX)
    });
    let with_expiry = |item: Item| match expires_at {
        Some(at) => item.expiring_at(at),
        None => item,
    };
    let body = serde_json::to_value(account).map_err(StoreError::Encoding)?;
    let item = with_expiry(Item::new(key(&account.email), body));
    let version = store.put(item, condition).await?;
    // The directory entry follows the account (it is only for listing; the
    // account item stays the truth).
    let entry =
        serde_json::to_value(AccountSummary::from(account)).map_err(StoreError::Encoding)?;
    let entry = with_expiry(Item::new(ItemKey::new(DIRECTORY_PK, account.email.as_str()), entry));
    store.put(entry, Condition::Always).await?;
    Ok(version)
}

/// A page of the directory: every account by address, without hashes.
pub async fn directory_page<S: ItemQuery + ?Sized>(
    store: &S,
    limit: u32,
    cursor: Option<Cursor>,
) -> StoreResult<Paged<AccountSummary>> {
    let page = store.query(Query::partition(DIRECTORY_PK).limit(limit).after(cursor)).await?;
    let items = page.items.iter().map(super::decode).collect::<StoreResult<Vec<_>>>()?;
    // `next` is absent on the last page, as on every other list.
    Ok(Paged { items, next: page.next.map(|n| n.as_str().to_owned()) })
}
