//! Sign-in: the first admin, password checks, and throttling of guesses (kept in the database so every replica
//! sees them). Failures never say whether the user exists.
//!
//! Each attempt is bounded before anything is stored (a username that cannot exist is stored as ''; an
//! over-long password is never hashed), recorded before its password is checked (store::throttle), and checked
//! on the blocking pool a few at a time (passwords). Guesses are limited per source address, per username and
//! source, and per username from sources it never signed in from: a browser that signed in as a user before
//! carries a sealed device cookie, and its attempts for that user count on their own — so guessing an admin's
//! password from elsewhere can lock that name out of new browsers, never out of the admin's own. Admins can
//! lift any lock.

use std::time::Duration;

use rand::Rng;

use super::passwords;
use super::secrets::SecretBox;
use super::store::{self, Held, Limits, Role, Store, User};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("{what}; try again in {} minutes or ask an admin to lift the lock", retry_after.as_secs().div_ceil(60))]
    Throttled {
        what: &'static str,
        retry_after: Duration,
    },
    #[error(transparent)]
    Password(#[from] passwords::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who is trying: the client's address (as the server sees it, see `ssr::client`) and the device cookie the
/// browser sent, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempter {
    pub source: String,
    pub device: Option<String>,
}

/// The name of the device cookie (HttpOnly, SameSite=Strict, Path=/api).
pub const DEVICE_COOKIE: &str = "meshdeck_device";
/// How long a browser stays known after signing in.
pub const DEVICE_LIFETIME: Duration = Duration::from_secs(180 * 24 * 3600);
/// The longest username the form accepts (store::check_username allows 64).
const MAX_USERNAME: usize = 64;

fn device_context() -> &'static str {
    "sign-in/device"
}

/// A new device cookie value for `user`: sealed "user id | device id | issued at".
pub fn issue_device(secrets: &SecretBox, user: &User, now: i64) -> String {
    use base64::Engine;
    let mut id = [0u8; 12];
    rand::rngs::OsRng.fill(&mut id);
    let device: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let sealed = secrets.seal(
        device_context(),
        format!("{}|{device}|{now}", user.id).as_bytes(),
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
}

/// The device id in `cookie` when it was issued to `user_id` by this console and has not expired.
pub fn device_of(secrets: &SecretBox, cookie: &str, user_id: i64, now: i64) -> Option<String> {
    use base64::Engine;
    if cookie.len() > 512 {
        return None;
    }
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cookie)
        .ok()?;
    let plain = String::from_utf8(secrets.open(device_context(), &sealed).ok()?).ok()?;
    let mut parts = plain.split('|');
    let (uid, device, at) = (parts.next()?, parts.next()?, parts.next()?);
    let fresh = at
        .parse::<i64>()
        .is_ok_and(|t| now - t <= DEVICE_LIFETIME.as_secs() as i64 && t <= now + 60);
    (uid.parse::<i64>().ok()? == user_id && fresh).then(|| device.to_string())
}

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
    let hash = passwords::hash_async(&password).await?;
    match store.create_user("admin", &hash, Role::Admin).await {
        Ok(_) => {}
        // Another replica created it first.
        Err(store::Error::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(if generated { Some(password) } else { None })
}

/// Checks a sign-in (or a re-entered password) at time `now` (unix seconds), throttled as the module says.
pub async fn sign_in(
    store: &Store,
    secrets: &SecretBox,
    limits: &Limits,
    who: &Attempter,
    username: &str,
    password: &str,
    now: i64,
) -> Result<User> {
    // Bounded before anything is stored: a name no user can have is recorded as ''.
    let valid_name = username.len() <= MAX_USERNAME && store::check_username(username).is_ok();
    let name = if valid_name { username } else { "" };
    let found = if valid_name {
        store.user_by_name(name).await?
    } else {
        None
    };
    let device = match (&who.device, &found) {
        (Some(cookie), Some((user, _))) => device_of(secrets, cookie, user.id, now),
        _ => None,
    };
    let (source, trusted) = match &device {
        Some(d) => (format!("device:{d}"), true),
        None => (who.source.clone(), false),
    };
    let attempt = match store
        .begin_attempt(name, &source, trusted, now, limits)
        .await?
    {
        Ok(id) => id,
        Err(held) => {
            let (what, until) = match held {
                Held::Source { until } => ("too many failed sign-ins from your address", until),
                Held::UserAndSource { until } => ("too many failed sign-ins for this user", until),
                Held::User { until } => (
                    "too many failed sign-ins for this user from unknown browsers",
                    until,
                ),
            };
            return Err(Error::Throttled {
                what,
                retry_after: Duration::from_secs((until - now).max(1) as u64),
            });
        }
    };
    let checked = match &found {
        // A single sign-on account has no password here: checked like an unknown user.
        Some((user, hash)) if !user.sso && password.len() <= passwords::MAX_LENGTH * 4 => {
            passwords::verify_async(password, hash).await
        }
        // Spend the same time as a real check so timing does not reveal unknown users.
        _ => passwords::verify_async(password, DUMMY_HASH)
            .await
            .map(|_| false),
    };
    let ok = match checked {
        Ok(ok) => ok,
        Err(e) => {
            // Not judged (the console was busy): the attempt does not count.
            store.drop_attempt(attempt).await?;
            return Err(e.into());
        }
    };
    match found {
        Some((user, _)) if ok && !user.disabled && !user.sso => {
            store.forget_attempt(attempt, name, &source).await?;
            Ok(user)
        }
        _ => Err(Error::BadCredentials),
    }
}

/// An argon2id hash of a random password, used to equalise timing for unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2jQ2lJ8n2fOJ7Y7xv3vD1y2VbK0Qx0C8Jv6mF2k1r1A";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_decoy_is_a_real_argon2id_hash() {
        let h = argon2::PasswordHash::new(super::DUMMY_HASH).expect("parses");
        assert_eq!(h.algorithm.as_str(), "argon2id");
        assert!(!super::passwords::verify("anything", super::DUMMY_HASH));
    }

    fn user(id: i64) -> User {
        User {
            id,
            username: format!("u{id}"),
            role: Role::Viewer,
            disabled: false,
            created_at: 0,
            session_epoch: 0,
            sso: false,
        }
    }

    #[test]
    fn a_device_cookie_names_its_user_and_expires() {
        let secrets = SecretBox::from_key(&[7u8; 32]).expect("key");
        let cookie = issue_device(&secrets, &user(3), 1000);
        let device = device_of(&secrets, &cookie, 3, 2000).expect("valid for its user");
        assert_eq!(device.len(), 24);
        assert_eq!(device_of(&secrets, &cookie, 4, 2000), None, "another user");
        let late = 1000 + DEVICE_LIFETIME.as_secs() as i64 + 1;
        assert_eq!(device_of(&secrets, &cookie, 3, late), None, "expired");
        let other = SecretBox::from_key(&[8u8; 32]).expect("key");
        assert_eq!(device_of(&other, &cookie, 3, 2000), None, "another console");
        assert_eq!(device_of(&secrets, "not-a-cookie", 3, 2000), None);
        assert_eq!(device_of(&secrets, &"A".repeat(5000), 3, 2000), None);
    }
}
