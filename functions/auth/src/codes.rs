//! One-time codes in the table: one live code per address and purpose,
//! stored as a keyed hash with a 10-minute TTL, single use, and void after
//! five wrong tries.
//!
//! A verification code carries the password hash and name of the sign-up
//! that asked for it, and is accepted only with that sign-up's password:
//! verifying sets exactly the password the verifier typed, so no password
//! chosen by someone else before the mailbox was proven survives the proof.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use secrecy::SecretString;
use shared::domain::Email;
use shared::records::{self, code::CodeRecord};
use shared::store::{ItemDelete, ItemGet, ItemPut, StoreError};

use crate::secrets::CodeHasher;

pub const VALID_FOR: Duration = Duration::from_secs(10 * 60);
pub const MAX_TRIES: u32 = 5;

pub use shared::records::code::{Purpose, SignUp};

/// A code that was right, with what it carried.
#[derive(Debug)]
pub struct Redeemed {
    pub sign_up: Option<SignUp>,
}

/// Stores `code` as the live code (replacing any older one). `binding` is
/// what a redeemer must present besides the code (empty: nothing);
/// `sign_up` is what verifying it sets.
#[allow(clippy::too_many_arguments)]
pub async fn store<S: ItemPut + ?Sized>(
    store: &S,
    hasher: &CodeHasher,
    email: &Email,
    purpose: Purpose,
    binding: &str,
    code: &SecretString,
    sign_up: Option<SignUp>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let digest = hasher.digest(purpose.as_str(), email, binding, code);
    let record = CodeRecord { digest, attempts: 0, sign_up };
    let expires =
        now.saturating_add(SignedDuration::try_from(VALID_FOR).unwrap_or_default()).unwrap_or(now);
    records::code::put(store, email, purpose, &record, expires).await
}

/// Stores a code that no one knows, so that a request for an address that
/// gets no mail leaves what one that gets mail leaves: a later wrong-code
/// verify or reset costs the same for both.
pub async fn store_decoy<S: ItemPut + ?Sized>(
    store: &S,
    hasher: &CodeHasher,
    email: &Email,
    purpose: Purpose,
    now: Timestamp,
) -> Result<(), StoreError> {
    let unknowable = crate::secrets::new_token().map_err(|e| StoreError::Unavailable(e.into()))?;
    self::store(store, hasher, email, purpose, "decoy", &unknowable, None, now).await
}

/// Whether `candidate` is the live code; a right code is used up (and what
/// it carried is returned), a wrong one counts as a try, and the fifth
/// wrong try voids the code.
pub async fn redeem<S>(
    store: &S,
    hasher: &CodeHasher,
    email: &Email,
    purpose: Purpose,
    binding: &str,
    candidate: &SecretString,
) -> Result<Option<Redeemed>, StoreError>
where
    S: ItemGet + ItemPut + ItemDelete + ?Sized,
{
    redeem_if(store, hasher, email, purpose, binding, candidate, |_| true).await
}

/// [`redeem`], where a right code also needs `accept` to hold of what it
/// carries (a verification code: the sign-up's password); when it does
/// not, the code counts a wrong try.
pub async fn redeem_if<S>(
    store: &S,
    hasher: &CodeHasher,
    email: &Email,
    purpose: Purpose,
    binding: &str,
    candidate: &SecretString,
    accept: impl FnOnce(Option<&SignUp>) -> bool,
) -> Result<Option<Redeemed>, StoreError>
where
    S: ItemGet + ItemPut + ItemDelete + ?Sized,
{
    let Some(mut held) = records::code::get(store, email, purpose).await? else { return Ok(None) };
    let Some(mut code) = held.code.take_if(|code| code.attempts < MAX_TRIES) else {
        // Unreadable, or out of tries: void.
        records::code::delete(store, email, purpose, None).await?;
        return Ok(None);
    };
    if hasher.matches(purpose.as_str(), email, binding, candidate, &code.digest)
        && accept(code.sign_up.as_ref())
    {
        // Single use: only the request that deletes this version wins.
        return match records::code::delete(store, email, purpose, Some(&held)).await {
            Ok(()) => Ok(Some(Redeemed { sign_up: code.sign_up })),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(other) => Err(other),
        };
    }
    code.attempts += 1;
    if code.attempts >= MAX_TRIES {
        records::code::delete(store, email, purpose, Some(&held)).await.or_else(ignore_race)?;
    } else {
        records::code::replace(store, email, purpose, &code, &held).await.or_else(ignore_race)?;
    }
    Ok(None)
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
    async fn a_verification_code_gives_back_the_sign_up_it_was_mailed_for() {
        let (clock, store, hasher, email) = bed();
        let first = SignUp { password_hash: "hash-1".into(), name: "One".into() };
        let second = SignUp { password_hash: "hash-2".into(), name: "Two".into() };
        for (code, sign_up) in [("111111", first), ("222222", second.clone())] {
            let purpose = Purpose::VerifyEmail;
            store_code_for(&store, &hasher, &email, purpose, code, Some(sign_up), &clock).await;
        }
        let redeemed = redeem(&store, &hasher, &email, Purpose::VerifyEmail, "", &secret("222222"))
            .await
            .unwrap()
            .expect("the newest code works");
        assert_eq!(redeemed.sign_up, Some(second), "and carries the newest sign-up");
    }

    #[tokio::test]
    async fn a_right_code_that_is_not_accepted_counts_as_a_wrong_try() {
        let (clock, store, hasher, email) = bed();
        store_code(&store, &hasher, &email, "123456", clock.now()).await;
        let right = secret("123456");
        for _ in 0..MAX_TRIES {
            let refused =
                redeem_if(&store, &hasher, &email, Purpose::VerifyEmail, "", &right, |_| false);
            assert!(refused.await.unwrap().is_none());
        }
        assert!(!try_code(&store, &hasher, &email, Purpose::VerifyEmail, "123456").await, "void");
    }

    #[tokio::test]
    async fn a_decoy_code_matches_nothing_and_replaces_the_live_one() {
        let (clock, store, hasher, email) = bed();
        store_code(&store, &hasher, &email, "123456", clock.now()).await;
        store_decoy(&store, &hasher, &email, Purpose::VerifyEmail, clock.now()).await.unwrap();
        assert!(!try_code(&store, &hasher, &email, Purpose::VerifyEmail, "123456").await);
    }

    async fn store_code_for(
        s: &MemoryStore,
        hasher: &CodeHasher,
        email: &Email,
        purpose: Purpose,
        code: &str,
        sign_up: Option<SignUp>,
        clock: &ManualClock,
    ) {
        store(s, hasher, email, purpose, "", &secret(code), sign_up, clock.now()).await.unwrap();
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
        redeem(s, hasher, email, purpose, "", &secret(code)).await.unwrap().is_some()
    }

    async fn store_code(
        s: &MemoryStore,
        hasher: &CodeHasher,
        email: &Email,
        code: &str,
        now: Timestamp,
    ) {
        store(s, hasher, email, Purpose::VerifyEmail, "", &secret(code), None, now).await.unwrap();
    }
}
