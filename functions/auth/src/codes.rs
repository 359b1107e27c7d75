//! One-time codes in the table: one live code per address and purpose,
//! stored as a keyed hash with a 10-minute TTL, single use, and void after
//! five wrong tries.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use shared::domain::Email;
use shared::store::{Condition, Item, ItemDelete, ItemGet, ItemKey, ItemPut, StoreError};

use crate::secrets::CodeHasher;

pub const VALID_FOR: Duration = Duration::from_secs(10 * 60);
pub const MAX_TRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    /// The emailed second step of a sign-in, bound to the challenge handed
    /// to whoever proved the password.
    SignIn,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify",
            Self::ResetPassword => "reset",
            Self::SignIn => "signin",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredCode {
    digest: String,
    attempts: u32,
}

fn key(email: &Email, purpose: Purpose) -> ItemKey {
    ItemKey::new(format!("USER#{email}"), format!("CODE#{}", purpose.as_str()))
}

/// Stores `code` as the live code (replacing any older one). `binding` is
/// what a redeemer must present besides the code (empty: nothing).
pub async fn store<S: ItemPut + ?Sized>(
    store: &S,
    hasher: &CodeHasher,
    email: &Email,
    purpose: Purpose,
    binding: &str,
    code: &SecretString,
    now: Timestamp,
) -> Result<(), StoreError> {
    let digest = hasher.digest(purpose.as_str(), email, binding, code);
    let stored = StoredCode { digest, attempts: 0 };
    let body = serde_json::to_value(&stored).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    let expires =
        now.saturating_add(SignedDuration::try_from(VALID_FOR).unwrap_or_default()).unwrap_or(now);
    store.put(Item::new(key(email, purpose), body).expiring_at(expires), Condition::Always).await?;
    Ok(())
}

/// Whether `candidate` is the live code; a right code is used up, a wrong
/// one counts as a try, and the fifth wrong try voids the code.
pub async fn redeem<S>(
    store: &S,
    hasher: &CodeHasher,
    email: &Email,
    purpose: Purpose,
    binding: &str,
    candidate: &SecretString,
) -> Result<bool, StoreError>
where
    S: ItemGet + ItemPut + ItemDelete + ?Sized,
{
    let key = key(email, purpose);
    let Some(stored) = store.get(&key).await? else { return Ok(false) };
    let Ok(mut code) = serde_json::from_value::<StoredCode>(stored.item.body.clone()) else {
        store.delete(&key, Condition::Always).await?;
        return Ok(false);
    };
    if code.attempts >= MAX_TRIES {
        store.delete(&key, Condition::Always).await?;
        return Ok(false);
    }
    if hasher.matches(purpose.as_str(), email, binding, candidate, &code.digest) {
        // Single use: only the request that deletes this version wins.
        return match store.delete(&key, Condition::IfVersion(stored.version)).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(other) => Err(other),
        };
    }
    code.attempts += 1;
    if code.attempts >= MAX_TRIES {
        store.delete(&key, Condition::IfVersion(stored.version)).await.or_else(ignore_race)?;
    } else {
        let body = serde_json::to_value(&code).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let mut item = Item::new(key, body);
        item.expires_at = stored.item.expires_at;
        store
            .put(item, Condition::IfVersion(stored.version))
            .await
            .map(|_| ())
            .or_else(ignore_race)?;
    }
    Ok(false)
}

fn ignore_race(err: StoreError) -> Result<(), StoreError> {
    match err {
        StoreError::ConditionFailed => Ok(()),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shared::clock::{Clock, ManualClock};
    use shared::store::memory::MemoryStore;

    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    fn bed() -> (Arc<ManualClock>, MemoryStore, CodeHasher, Email) {
        let clock = Arc::new(ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap()));
        let store = MemoryStore::new(clock.clone());
        (
            clock,
            store,
            CodeHasher::new(&[3u8; 32]).unwrap(),
            Email::parse("jane@example.com").unwrap(),
        )
    }

    #[tokio::test]
    async fn a_right_code_works_once() {
        let (clock, store, hasher, email) = bed();
        store_code(&store, &hasher, &email, "123456", clock.now()).await;
        assert!(try_code(&store, &hasher, &email, Purpose::VerifyEmail, "123456").await);
        assert!(!try_code(&store, &hasher, &email, Purpose::VerifyEmail, "123456").await, "reused");
    }

    #[tokio::test]
    async fn codes_expire_after_ten_minutes() {
        let (clock, store, hasher, email) = bed();
        store_code(&store, &hasher, &email, "123456", clock.now()).await;
        clock.advance(VALID_FOR + Duration::from_secs(1));
        assert!(!try_code(&store, &hasher, &email, Purpose::VerifyEmail, "123456").await);
    }

    #[tokio::test]
    async fn the_fifth_wrong_try_voids_the_code() {
        let (clock, store, hasher, email) = bed();
        store_code(&store, &hasher, &email, "123456", clock.now()).await;
        for _ in 0..MAX_TRIES {
            assert!(!try_code(&store, &hasher, &email, Purpose::VerifyEmail, "000000").await);
        }
        assert!(
            !try_code(&store, &hasher, &email, Purpose::VerifyEmail, "123456").await,
            "sixth try"
        );
    }

    #[tokio::test]
    async fn a_code_is_for_one_purpose() {
        let (clock, store, hasher, email) = bed();
        store_code(&store, &hasher, &email, "123456", clock.now()).await;
        assert!(!try_code(&store, &hasher, &email, Purpose::ResetPassword, "123456").await);
    }

    async fn try_code(
        s: &MemoryStore,
        hasher: &CodeHasher,
        email: &Email,
        purpose: Purpose,
        code: &str,
    ) -> bool {
        redeem(s, hasher, email, purpose, "", &secret(code)).await.unwrap()
    }

    async fn store_code(
        s: &MemoryStore,
        hasher: &CodeHasher,
        email: &Email,
        code: &str,
        now: Timestamp,
    ) {
        store(s, hasher, email, Purpose::VerifyEmail, "", &secret(code), now).await.unwrap();
    }
}
