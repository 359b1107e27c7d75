//! Passwords: the policy (NIST SP 800-63B / OWASP ASVS: at least 8
//! characters, up to 128 allowed, no composition rules, refused when common)
//! and argon2id hashing (19 MiB, t = 2, p = 1, OWASP's baseline).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};

pub const MIN_CHARS: usize = 8;
/// More than the 64 the standards ask to allow; bounded so that hashing
/// cost is bounded too.
pub const MAX_CHARS: usize = 128;

/// The shipped list (see its header for the source).
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../../shared/data/common-passwords.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect()
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("the password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("this password is among the most common ones; choose another")]
    Common,
}

/// A password that meets the policy. Never printed, never logged.
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Checks a new password against the policy. Length counts characters,
    /// not bytes, so that every script gets the same allowance.
    pub fn new(candidate: SecretString) -> Result<Self, PasswordRejected> {
        let text = candidate.expose_secret();
        let chars = text.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordRejected::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordRejected::TooLong);
        }
        if COMMON.contains(text.to_lowercase().as_str()) {
            return Err(PasswordRejected::Common);
        }
        Ok(Self(candidate))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError(#[source] argon2::password_hash::Error);

/// The hash of 32 random bytes nobody kept, with the parameters of
/// [`Hasher::new`]: what it hashes does not matter (no account stands behind
/// it), only its cost does. A constant rather than hashed at start, which
/// would add one hash (about 40 ms) to every cold start.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$3oYFMgYoL0/jgWNMai9fSw$aFarjbwystYLM+bVBwN/Z2zdNfX9qIU19u0WCqK0MU8";

/// argon2id with fixed parameters; hashes are PHC strings that carry them,
/// so old hashes keep verifying if the parameters are raised later.
#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    /// Verified against when an account does not exist, so that "no such
    /// account" costs what a wrong password costs.
    decoy: &'static str,
    /// Verifications spent, real or decoy: what an observer can time.
    verifications: Arc<AtomicU64>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    /// 19 MiB of memory, 2 passes, 1 lane.
    pub fn new() -> Result<Self, HashError> {
        let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| HashError(e.into()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        Ok(Self { argon, decoy: DECOY, verifications: Arc::default() })
    }

    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        Ok(self.argon.hash_password(password.expose().as_bytes()).map_err(HashError)?.to_string())
    }

    /// Whether `candidate` matches `stored` (a PHC string). A malformed
    /// stored hash never matches.
    pub fn verify(&self, candidate: &SecretString, stored: &str) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        self.argon.verify_password(candidate.expose_secret().as_bytes(), stored).is_ok()
    }

    /// Spends one verification for an account that does not exist.
    pub fn verify_decoy(&self, candidate: &SecretString) {
        let _ = self.verify(candidate, self.decoy);
    }

    /// How many verifications this hasher (and its clones) has spent.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn the_policy_is_length_and_commonness_only() {
        assert_eq!(Password::new(secret("short")).unwrap_err(), PasswordRejected::TooShort);
        assert_eq!(Password::new(secret("password")).unwrap_err(), PasswordRejected::Common);
        assert_eq!(
            Password::new(secret("Baseball")).unwrap_err(),
            PasswordRejected::Common,
            "case-insensitive"
        );
        assert_eq!(Password::new(secret(&"x".repeat(129))).unwrap_err(), PasswordRejected::TooLong);
        // No composition rules: lower-case words are fine when long and rare.
        assert!(Password::new(secret("correct horse battery staple")).is_ok());
        assert!(Password::new(secret(&"y".repeat(64))).is_ok());
        // Characters, not bytes: eight non-ASCII characters are enough.
        assert!(Password::new(secret("ééééééééé")).is_ok());
        assert_eq!(Password::new(secret("éééé")).unwrap_err(), PasswordRejected::TooShort);
    }

    #[test]
    fn the_common_list_has_more_than_ten_thousand_entries() {
        assert!(COMMON.len() > 10_000, "{}", COMMON.len());
        assert!(COMMON.contains("iloveyou") && COMMON.contains("qwertyuiop"));
    }

    #[test]
    fn hashes_are_argon2id_with_the_baseline_parameters_and_verify() {
        let hasher = Hasher::new().unwrap();
        let password = Password::new(secret("correct horse battery staple")).unwrap();
        let hash = hasher.hash(&password).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify(&secret("correct horse battery staple"), &hash));
        assert!(!hasher.verify(&secret("correct horse battery stapler"), &hash));
        assert!(!hasher.verify(&secret("anything"), "not a hash"));
        assert_ne!(hash, hasher.hash(&password).unwrap(), "salted");
    }

    #[test]
    fn the_decoy_costs_what_a_real_hash_costs() {
        let hasher = Hasher::new().unwrap();
        let real = hasher.hash(&Password::new(secret("correct horse battery staple")).unwrap());
        let parameters = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(parameters(DECOY), parameters(&real.unwrap()), "same algorithm and cost");
        let before = hasher.verifications();
        hasher.verify_decoy(&secret("anything"));
        assert_eq!(hasher.verifications(), before + 1);
        assert!(argon2::PasswordHash::new(DECOY).is_ok(), "a well-formed PHC string");
    }

    #[test]
    fn debug_output_hides_the_password() {
        let password = Password::new(secret("correct horse battery staple")).unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }
}
