//! One-time codes: one live code per address and purpose, in the
//! address's partition, as its keyed hash, its wrong tries and what a
//! verification carries. What a code means (hashing, redeeming, limits) is
//! the auth function's; this is how one is kept.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::Email;
use crate::records::keys;
use crate::store::{
    Condition, Item, ItemDelete, ItemGet, ItemKey, ItemPut, StoreError, StoreResult,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    /// The emailed second step of a sign-in, bound to the challenge handed
    /// to whoever proved the password.
    SignIn,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify",
            Self::ResetPassword => "reset",
            Self::SignIn => "signin",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeRecord {
    /// The code's keyed hash: the code itself is never kept.
    pub digest: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_up: Option<SignUp>,
}

/// What a sign-up chose, carried by its verification code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignUp {
    pub password_hash: String,
    pub name: String,
}

impl std::fmt::Debug for SignUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignUp").finish_non_exhaustive()
    }
}

/// A live code as read, with what a conditional write of it needs.
pub struct Held {
    /// `None` when the item does not decode: such a code is voided.
    pub code: Option<CodeRecord>,
    pub version: u64,
    pub expires_at: Option<Timestamp>,
}

fn key(email: &Email, purpose: Purpose) -> ItemKey {
    ItemKey::new(keys::user_pk(email), format!("CODE#{}", purpose.as_str()))
}

/// Makes `code` the live code for `purpose` (replacing any older one) until
/// `expires_at`.
pub async fn put<S: ItemPut + ?Sized>(
    store: &S,
    email: &Email,
    purpose: Purpose,
    code: &CodeRecord,
    expires_at: Timestamp,
) -> StoreResult<()> {
    let body = serde_json::to_value(code).map_err(StoreError::Encoding)?;
    let item = Item::new(key(email, purpose), body).expiring_at(expires_at);
    store.put(item, Condition::Always).await.map(|_| ())
}

/// The live code for `purpose`, if any.
pub async fn get<S: ItemGet + ?Sized>(
    store: &S,
    email: &Email,
    purpose: Purpose,
) -> StoreResult<Option<Held>> {
    let Some(stored) = store.get(&key(email, purpose)).await? else { return Ok(None) };
    let code = serde_json::from_value(stored.item.body).ok();
    Ok(Some(Held { code, version: stored.version, expires_at: stored.item.expires_at }))
}

/// Writes `code` back over `held` (its expiry kept) if no one changed it
/// since: [`StoreError::ConditionFailed`] otherwise.
pub async fn replace<S: ItemPut + ?Sized>(
    store: &S,
    email: &Email,
    purpose: Purpose,
    code: &CodeRecord,
    held: &Held,
) -> StoreResult<()> {
    let body = serde_json::to_value(code).map_err(StoreError::Encoding)?;
    let mut item = Item::new(key(email, purpose), body);
    item.expires_at = held.expires_at;
    store.put(item, Condition::IfVersion(held.version)).await.map(|_| ())
}

/// Deletes the live code for `purpose`: whatever it is with `None`, else
/// only the version `held` read ([`StoreError::ConditionFailed`] if it
/// changed).
pub async fn delete<S: ItemDelete + ?Sized>(
    store: &S,
    email: &Email,
    purpose: Purpose,
    held: Option<&Held>,
) -> StoreResult<()> {
    let condition = held.map_or(Condition::Always, |h| Condition::IfVersion(h.version));
    store.delete(&key(email, purpose), condition).await
}
