//! Sign-in attempts, for throttling shared by every replica. An attempt is written before its password is
//! checked, by one statement that also counts the attempts before it and writes nothing when a limit is
//! reached — so guesses sent in parallel are counted like guesses sent one after another. A successful
//! attempt is deleted again; a failed one stays until it ages out of the window.

use super::{Db, Result, Store};

/// The limits within one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Attempts from one source (a client address, IPv6 by /64), whatever the usernames: stops spraying.
    pub per_source: i64,
    /// Attempts for one username from one source.
    pub per_user_and_source: i64,
    /// Attempts for one username from sources it never signed in from (no device cookie). Browsers the
    /// user signed in from before are not held by this one, so nobody can lock an admin out of their own
    /// browser by guessing from elsewhere.
    pub per_user_untrusted: i64,
    /// The window, in seconds.
    pub window: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_source: 20,
            per_user_and_source: 5,
            per_user_untrusted: 30,
            window: 15 * 60,
        }
    }
}

/// Which limit holds an attempt back, and from when it frees up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Source { until: i64 },
    UserAndSource { until: i64 },
    User { until: i64 },
}

/// A lock an admin can see and lift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// "source", "user and source" or "user".
    pub kind: &'static str,
    pub username: String,
    pub source: String,
    pub attempts: i64,
    pub until: i64,
}

const ADVISORY_LOCK: i64 = 0x6d65_7368_6465_636b; // "meshdeck"

impl Store {
    /// Writes an attempt at `at` unless a limit is reached; returns its id, or which limit holds it back.
    pub async fn begin_attempt(
        &self,
        username: &str,
        source: &str,
        trusted: bool,
        at: i64,
        limits: &Limits,
    ) -> Result<std::result::Result<i64, Held>> {
        let since = at - limits.window;
        // One statement: SQLite takes its write lock before the statement reads, so the counts and the
        // insert are one step. Postgres reads under READ COMMITTED, so attempts take an advisory lock first.
        let sql = "INSERT INTO login_attempts (username, source, trusted, at) \
                   SELECT $1, $2, $3, $4 \
                   WHERE (SELECT COUNT(*) FROM login_attempts WHERE source = $2 AND at >= $5) < $6 \
                     AND (SELECT COUNT(*) FROM login_attempts WHERE source = $2 AND username = $1 AND at >= $5) < $7 \
                     AND ($3 OR (SELECT COUNT(*) FROM login_attempts WHERE username = $1 AND NOT trusted AND at >= $5) < $8) \
                   RETURNING id";
        let id: Option<(i64,)> = match &self.db {
            // fetch_all runs the insert to its end, where a failed commit (a full disk) is reported.
            Db::Sqlite(p) => sqlx::query_as(sql)
                .bind(username)
                .bind(source)
                .bind(trusted)
                .bind(at)
                .bind(since)
                .bind(limits.per_source)
                .bind(limits.per_user_and_source)
                .bind(limits.per_user_untrusted)
                .fetch_all(p)
                .await?
                .into_iter()
                .next(),
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ADVISORY_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let id = sqlx::query_as(sql)
                    .bind(username)
                    .bind(source)
                    .bind(trusted)
                    .bind(at)
                    .bind(since)
                    .bind(limits.per_source)
                    .bind(limits.per_user_and_source)
                    .bind(limits.per_user_untrusted)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                id
            }
        };
        match id {
            Some((id,)) => Ok(Ok(id)),
            None => Ok(Err(self
                .held(username, source, trusted, at, limits)
                .await?)),
        }
    }

    /// Which limit holds an attempt back (after `begin_attempt` wrote nothing).
    async fn held(
        &self,
        username: &str,
        source: &str,
        trusted: bool,
        at: i64,
        limits: &Limits,
    ) -> Result<Held> {
        let since = at - limits.window;
        let count = |sql: &'static str, a: String, b: String| async move {
            let row: (i64, Option<i64>) = on_db!(self, |p| sqlx::query_as(sql)
                .bind(a.clone())
                .bind(b.clone())
                .bind(since)
                .fetch_one(p)
                .await)?;
            Ok::<_, super::Error>(row)
        };
        // When the oldest of the last `limit` attempts leaves the window, one more is allowed.
        let (n, oldest) = count(
            "SELECT COUNT(*), MIN(at) FROM login_attempts WHERE source = $1 AND $2 = $2 AND at >= $3",
            source.into(),
            String::new(),
        )
        .await?;
        if n >= limits.per_source {
            return Ok(Held::Source {
                until: oldest.unwrap_or(at) + limits.window,
            });
        }
        let (n, oldest) = count(
            "SELECT COUNT(*), MIN(at) FROM login_attempts WHERE source = $1 AND username = $2 AND at >= $3",
            source.into(),
            username.into(),
        )
        .await?;
        if n >= limits.per_user_and_source || trusted {
            return Ok(Held::UserAndSource {
                until: oldest.unwrap_or(at) + limits.window,
            });
        }
        let (_, oldest) = count(
            "SELECT COUNT(*), MIN(at) FROM login_attempts WHERE username = $1 AND $2 = $2 AND NOT trusted AND at >= $3",
            username.into(),
            String::new(),
        )
        .await?;
        Ok(Held::User {
            until: oldest.unwrap_or(at) + limits.window,
        })
    }

    /// Deletes an attempt that succeeded, and the failures of the same username from the same source.
    pub async fn forget_attempt(&self, id: i64, username: &str, source: &str) -> Result<()> {
        on_db!(self, |p| sqlx::query(
            "DELETE FROM login_attempts WHERE id = $1 OR (username = $2 AND source = $3)"
        )
        .bind(id)
        .bind(username)
        .bind(source)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Deletes one attempt (one that was never judged, e.g. the console was too busy to check it).
    pub async fn drop_attempt(&self, id: i64) -> Result<()> {
        on_db!(self, |p| sqlx::query(
            "DELETE FROM login_attempts WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// An admin lifting locks: every attempt for `username` and/or from `source`.
    pub async fn clear_attempts(
        &self,
        username: Option<&str>,
        source: Option<&str>,
    ) -> Result<u64> {
        let n = on_db!(self, |p| {
            sqlx::query(
            "DELETE FROM login_attempts WHERE ($1 IS NULL OR username = $1) AND ($2 IS NULL OR source = $2) \
             AND ($1 IS NOT NULL OR $2 IS NOT NULL)"
        )
        .bind(username)
        .bind(source)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// Deletes attempts older than `before` (they no longer count).
    pub async fn prune_attempts(&self, before: i64) -> Result<u64> {
        let n = on_db!(self, |p| sqlx::query(
            "DELETE FROM login_attempts WHERE at < $1"
        )
        .bind(before)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// The locks in force at `at`: sources, username-and-source pairs, and usernames at their limit.
    pub async fn sign_in_locks(&self, at: i64, limits: &Limits) -> Result<Vec<Lock>> {
        let since = at - limits.window;
        let rows = |sql: &'static str, limit: i64| async move {
            let r: Vec<(String, String, i64, i64)> = on_db!(self, |p| sqlx::query_as(sql)
                .bind(since)
                .bind(limit)
                .fetch_all(p)
                .await)?;
            Ok::<_, super::Error>(r)
        };
        let mut out = vec![];
        for (u, s, n, oldest) in rows(
            "SELECT '', source, COUNT(*), MIN(at) FROM login_attempts WHERE at >= $1 \
             GROUP BY source HAVING COUNT(*) >= $2 ORDER BY source",
            limits.per_source,
        )
        .await?
        {
            out.push(Lock {
                kind: "source",
                username: u,
                source: s,
                attempts: n,
                until: oldest + limits.window,
            });
        }
        for (u, s, n, oldest) in rows(
            "SELECT username, source, COUNT(*), MIN(at) FROM login_attempts WHERE at >= $1 \
             GROUP BY username, source HAVING COUNT(*) >= $2 ORDER BY username, source",
            limits.per_user_and_source,
        )
        .await?
        {
            out.push(Lock {
                kind: "user and source",
                username: u,
                source: s,
                attempts: n,
                until: oldest + limits.window,
            });
        }
        for (u, s, n, oldest) in rows(
            "SELECT username, '', COUNT(*), MIN(at) FROM login_attempts WHERE at >= $1 AND NOT trusted \
             GROUP BY username HAVING COUNT(*) >= $2 ORDER BY username",
            limits.per_user_untrusted,
        )
        .await?
        {
            out.push(Lock {
                kind: "user",
                username: u,
                source: s,
                attempts: n,
                until: oldest + limits.window,
            });
        }
        Ok(out)
    }
}
