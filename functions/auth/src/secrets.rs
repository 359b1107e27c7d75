//! One-time codes and session tokens: generated from the operating
//! system's CSPRNG, stored only as hashes, compared in constant time.
//!
//! - A code is 6 digits, drawn without modulo bias, and stored as an
//!   HMAC-SHA256 keyed with the function's secret, bound to its purpose and
//!   address: a leaked table cannot be brute-forced offline through the
//!   million possible codes without the key.
//! - A session token is 256 random bits (base64url); its SHA-256 is stored
//!   (`shared::auth::token_digest`). With that much entropy no key is needed.

use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use shared::domain::Email;

#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    rand::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A fresh 6-digit code.
pub fn new_code() -> Result<SecretString, RandomError> {
    // The largest multiple of 10^6 that fits in a u32: values above it are
    // redrawn so that every code is equally likely.
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let value = u32::from_be_bytes(random_bytes::<4>()?);
        if value < LIMIT {
            return Ok(SecretString::from(format!("{:06}", value % 1_000_000)));
        }
    }
}

/// A fresh session token (256 bits).
pub fn new_token() -> Result<SecretString, RandomError> {
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?),
    ))
}

/// Keyed hashing of one-time codes.
pub struct CodeHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeHasher(<key>)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the code key must be at least 32 bytes")]
pub struct WeakKey;

impl CodeHasher {
    pub fn new(key: &[u8]) -> Result<Self, WeakKey> {
        if key.len() < 32 {
            return Err(WeakKey);
        }
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, key) })
    }

    /// A key for a process whose codes need not outlive it (the local server).
    pub fn ephemeral() -> Result<Self, RandomError> {
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>()?) })
    }

    /// The stored form of `code`, bound to what it is for, to whom, and to
    /// `binding` (the sign-in challenge; empty for other purposes).
    pub fn digest(
        &self,
        purpose: &str,
        email: &Email,
        binding: &str,
        code: &SecretString,
    ) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        let parts = [
            purpose.as_bytes(),
            email.as_str().as_bytes(),
            binding.as_bytes(),
            code.expose_secret().as_bytes(),
        ];
        for part in parts {
            // Length-prefixed, so that no two inputs run together the same way.
            context.update(&(part.len() as u32).to_be_bytes());
            context.update(part);
        }
        hex(context.sign().as_ref())
    }

    /// Whether `candidate` is the code stored as `stored`, in constant time.
    pub fn matches(
        &self,
        purpose: &str,
        email: &Email,
        binding: &str,
        candidate: &SecretString,
        stored: &str,
    ) -> bool {
        let computed = self.digest(purpose, email, binding, candidate);
        constant_time::verify_slices_are_equal(computed.as_bytes(), stored.as_bytes()).is_ok()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn email() -> Email {
        Email::parse("jane@example.com").unwrap()
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: HashSet<String> =
            (0..200).map(|_| new_code().unwrap().expose_secret().to_owned()).collect();
        assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 190, "200 draws from a million rarely collide: {}", codes.len());
    }

    #[test]
    fn tokens_carry_256_bits() {
        let token = new_token().unwrap();
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.expose_secret()).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_ne!(token.expose_secret(), new_token().unwrap().expose_secret());
        let digest = shared::auth::token_digest(&token);
        assert_eq!(digest.len(), 64);
        assert_ne!(digest, token.expose_secret().to_owned());
    }

    #[test]
    fn code_digests_are_keyed_and_bound_to_purpose_address_and_binding() {
        let hasher = CodeHasher::new(&[7u8; 32]).unwrap();
        let code = SecretString::from("123456".to_owned());
        let stored = hasher.digest("verify", &email(), "", &code);
        assert!(hasher.matches("verify", &email(), "", &code, &stored));
        assert!(!hasher.matches("reset", &email(), "", &code, &stored), "another purpose");
        let other = Email::parse("bob@example.com").unwrap();
        assert!(!hasher.matches("verify", &other, "", &code, &stored), "another address");
        assert!(!hasher.matches("verify", &email(), "x", &code, &stored), "another binding");
        let wrong = SecretString::from("123457".to_owned());
        assert!(!hasher.matches("verify", &email(), "", &wrong, &stored));
        let other_key = CodeHasher::new(&[8u8; 32]).unwrap();
        assert!(!other_key.matches("verify", &email(), "", &code, &stored), "another key");
        assert!(CodeHasher::new(&[1u8; 16]).is_err());
    }
}
