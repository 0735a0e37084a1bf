//! The admin password in force: `server.admin_password` (or its environment variable) when set,
//! else the one set through the setup link, kept only as an Argon2id hash. Neither: signing in is
//! off until setup is finished.

use std::sync::Mutex;

use arc_swap::ArcSwapOption;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest password setup accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Who may sign in as `admin`.
#[derive(Default)]
pub struct AdminCredentials {
    /// `server.admin_password`; when set it is the one in force.
    configured: String,
    /// The Argon2id hash (PHC string) set through the setup link.
    hashed: ArcSwapOption<String>,
    /// The SHA-256 of the last password that matched the hash, so that each request of a signed-in
    /// browser does not cost an Argon2 verification.
    verified: Mutex<Option<[u8; 32]>>,
}

impl AdminCredentials {
    /// The credentials from the config's password and the stored hash.
    pub fn new(configured: &str, hashed: Option<String>) -> AdminCredentials {
        AdminCredentials {
            configured: configured.to_string(),
            hashed: ArcSwapOption::from_pointee(hashed),
            verified: Mutex::new(None),
        }
    }

    /// Whether a password is in force (otherwise signing in is off and setup is not finished).
    pub fn in_force(&self) -> bool {
        !self.configured.is_empty() || self.hashed.load().is_some()
    }

    /// Whether the password comes from the configuration (then setup cannot change it).
    pub fn configured(&self) -> bool {
        !self.configured.is_empty()
    }

    /// Whether `password` is the one in force.
    pub fn verify(&self, password: &[u8]) -> bool {
        if self.configured() {
            return bool::from(password.ct_eq(self.configured.as_bytes()));
        }
        let Some(hash) = self.hashed.load_full() else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(password).into();
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.is_some_and(|v| bool::from(v.ct_eq(&digest))) {
            return true;
        }
        let ok = PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password, &parsed).is_ok());
        if ok {
            *verified = Some(digest);
        }
        ok
    }

    /// Puts a hash set through setup in force.
    pub fn set_hash(&self, hash: String) {
        *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.hashed.store(Some(std::sync::Arc::new(hash)));
    }
}

/// The Argon2id hash (PHC string, with a random salt) of `password`. Slow on purpose: call it off
/// the async runtime.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("the password could not be hashed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_nothing_else_does() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        let credentials = AdminCredentials::new("", None);
        assert!(!credentials.in_force());
        assert!(!credentials.verify(b""));
        credentials.set_hash(hash);
        assert!(credentials.in_force());
        assert!(!credentials.configured());
        assert!(credentials.verify(b"correct horse battery"));
        // Again, from the cache of the last match.
        assert!(credentials.verify(b"correct horse battery"));
        assert!(!credentials.verify(b"correct horse batter"));
        assert!(!credentials.verify(b""));
    }

    #[test]
    fn a_configured_password_wins_over_a_stored_hash() {
        let hash = hash_password("the stored one is long").unwrap();
        let credentials = AdminCredentials::new("from-the-config", Some(hash));
        assert!(credentials.configured());
        assert!(credentials.verify(b"from-the-config"));
        assert!(!credentials.verify(b"the stored one is long"));
    }
}
