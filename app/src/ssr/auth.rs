//! Sign-in: the first admin, password checks, and throttling of repeated failures (kept in the database so
//! every replica sees them). Failures never say whether the user exists.

use std::time::Duration;

use rand::Rng;

use super::passwords;
use super::store::{self, Role, Store, User};

/// Failures allowed per username within [`WINDOW`] before sign-in is refused for the rest of the window.
pub const MAX_FAILURES: i64 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed sign-ins for this user; try again in {} minutes", retry_after.as_secs().div_ceil(60))]
    Throttled { retry_after: Duration },
    #[error(transparent)]
    Password(#[from] passwords::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Creates the first admin when there are no users: with `password` (from MESHDECK_ADMIN_PASSWORD) or a
/// generated one, which is returned so the caller can print it once. Returns None when users exist.
pub async fn bootstrap_admin(store: &Store, password: Option<&str>) -> Result<Option<String>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let generated = password.is_none();
    let password = match password {
        Some(p) => p.to_string(),
        None => {
            const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
            let mut rng = rand::rngs::OsRng;
            (0..24)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect()
        }
    };
    let hash = passwords::hash(&password)?;
    match store.create_user("admin", &hash, Role::Admin).await {
        Ok(_) => {}
        // Another replica created it first.
        Err(store::Error::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(if generated { Some(password) } else { None })
}

/// Checks a sign-in at time `now` (unix seconds).
pub async fn sign_in(store: &Store, username: &str, password: &str, now: i64) -> Result<User> {
    let window = WINDOW.as_secs() as i64;
    let (failures, oldest) = store.login_failures_since(username, now - window).await?;
    if failures >= MAX_FAILURES {
        let until = oldest.unwrap_or(now) + window;
        return Err(Error::Throttled {
            retry_after: Duration::from_secs((until - now).max(1) as u64),
        });
    }
    let found = store.user_by_name(username).await?;
    let ok = match &found {
        Some((user, hash)) => passwords::verify(password, hash) && !user.disabled,
        None => {
            // Spend the same time as a real check so timing does not reveal unknown users.
            let _ = passwords::verify(password, DUMMY_HASH);
            false
        }
    };
    match (ok, found) {
        (true, Some((user, _))) => {
            store.clear_login_failures(username, None).await?;
            Ok(user)
        }
        _ => {
            store.record_login_failure(username, now).await?;
            store
                .clear_login_failures(username, Some(now - window))
                .await?;
            Err(Error::BadCredentials)
        }
    }
}

/// An argon2id hash of a random password, used to equalise timing for unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2jQ2lJ8n2fOJ7Y7xv3vD1y2VbK0Qx0C8Jv6mF2k1r1A";

#[cfg(test)]
mod tests {
    #[test]
    fn the_timing_decoy_is_a_real_argon2id_hash() {
        let h = argon2::PasswordHash::new(super::DUMMY_HASH).expect("parses");
        assert_eq!(h.algorithm.as_str(), "argon2id");
        assert!(!super::passwords::verify("anything", super::DUMMY_HASH));
    }
}
