//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 iterations, 1 lane, per OWASP), in PHC
//! string form so parameters can be raised later without invalidating stored hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The shortest password accepted.
pub const MIN_LENGTH: usize = 12;
/// The longest password accepted (hashing is deliberately expensive; cap the input).
pub const MAX_LENGTH: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("the password must have at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("the password must have at most {MAX_LENGTH} characters")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
}

pub fn check_strength(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(Error::TooShort);
    }
    if n > MAX_LENGTH {
        return Err(Error::TooLong);
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, Error> {
    check_strength(password)?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// True when `password` matches `stored`. A malformed stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    if password.len() > MAX_LENGTH * 4 {
        return false;
    }
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify_only_the_right_password() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert_ne!(h, hash("correct horse battery").expect("hash"), "salted");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("anything", "not-a-hash"));
        assert_eq!(hash("short"), Err(Error::TooShort));
    }
}
