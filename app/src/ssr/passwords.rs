//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 iterations, 1 lane, per OWASP), in PHC
//! string form so parameters can be raised later without invalidating stored hashes. Hashing is deliberately
//! slow, so requests never hash on an async worker: [`verify_async`] and [`hash_async`] run on the blocking
//! pool, a few at a time, and refuse at once (the console is busy) when too many wait — so a burst of
//! sign-ins cannot hold up the rest of the console (pages, job lease renewals) or queue without bound.

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
    #[error("too many password checks at once; try again in a few seconds")]
    Busy,
}

/// Hashes running at once: half the cores (at least one), so the other half keeps serving.
fn running_limit() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Hashes allowed to wait for a turn; more are refused at once.
const WAITING_LIMIT: usize = 64;

struct Gate {
    running: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
}

static GATE: std::sync::LazyLock<Gate> = std::sync::LazyLock::new(|| Gate {
    running: tokio::sync::Semaphore::new(running_limit()),
    waiting: std::sync::atomic::AtomicUsize::new(0),
});

/// Runs `work` on the blocking pool when a hashing slot is free, or refuses when too many wait.
async fn gated<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    use std::sync::atomic::Ordering;
    let gate = &*GATE;
    if gate.waiting.fetch_add(1, Ordering::SeqCst) >= WAITING_LIMIT {
        gate.waiting.fetch_sub(1, Ordering::SeqCst);
        return Err(Error::Busy);
    }
    let permit = gate.running.acquire().await;
    gate.waiting.fetch_sub(1, Ordering::SeqCst);
    let _permit = permit.map_err(|_| Error::Busy)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Hash(e.to_string()))
}

/// [`verify`] on the blocking pool, a few at a time.
pub async fn verify_async(password: &str, stored: &str) -> Result<bool, Error> {
    let (password, stored) = (password.to_string(), stored.to_string());
    gated(move || verify(&password, &stored)).await
}

/// [`hash`] on the blocking pool, a few at a time.
pub async fn hash_async(password: &str) -> Result<String, Error> {
    check_strength(password)?;
    let password = password.to_string();
    gated(move || hash(&password)).await?
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

    #[tokio::test(flavor = "current_thread")]
    async fn checks_run_off_the_async_workers_a_few_at_a_time_and_a_flood_is_refused() {
        let h = hash("correct horse battery").expect("hash");
        // One async worker only: were the check run on it, nothing else could run until it ends.
        let check = tokio::spawn({
            let h = h.clone();
            async move { verify_async("correct horse battery", &h).await }
        });
        let mut ticks = 0u32;
        while !check.is_finished() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            ticks += 1;
        }
        assert!(check.await.expect("joined").expect("checked"));
        assert!(
            ticks > 0,
            "the worker stayed free while the password was checked"
        );
        // A flood: at most WAITING_LIMIT wait, the rest are refused at once (never queued without bound).
        let tries = (0..(WAITING_LIMIT + 40)).map(|_| {
            let h = h.clone();
            tokio::spawn(async move { verify_async("wrong password!", &h).await })
        });
        let results = futures::future::join_all(tries).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Ok(Err(Error::Busy))))
            .count();
        let judged = results
            .iter()
            .filter(|r| matches!(r, Ok(Ok(false))))
            .count();
        assert!(busy > 0, "some are refused");
        assert_eq!(busy + judged, WAITING_LIMIT + 40, "every one is answered");
    }

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
