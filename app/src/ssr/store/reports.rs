//! What the server found and keeps for a while: preflight results by the exact request they were for (starting
//! a setup needs one, see `jobs`), and check runs (a run is a POST; its report is then shown, and can be linked
//! to, by id).

use super::{Db, Result, Store};

/// How long preflight results and check reports are kept.
pub const KEEP_SECS: i64 = 7 * 24 * 3600;

impl Store {
    /// Records the preflight of the request hashed `hash`: its failed findings as JSON.
    pub async fn record_preflight(
        &self,
        hash: &str,
        at: i64,
        user: &str,
        failures: &str,
    ) -> Result<()> {
        on_db!(self, |p| {
            sqlx::query(
                "INSERT INTO preflights (request_hash, at, by_user, failures) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (request_hash) DO UPDATE SET at = excluded.at, by_user = excluded.by_user, \
                 failures = excluded.failures",
            )
            .bind(hash)
            .bind(at)
            .bind(user)
            .bind(failures)
            .execute(p)
            .await?;
            sqlx::query("DELETE FROM preflights WHERE at < $1")
                .bind(at - KEEP_SECS)
                .execute(p)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The recorded preflight of the request hashed `hash`: when, and its failed findings as JSON.
    pub async fn preflight(&self, hash: &str) -> Result<Option<(i64, String)>> {
        Ok(on_db!(self, |p| sqlx::query_as(
            "SELECT at, failures FROM preflights WHERE request_hash = $1"
        )
        .bind(hash)
        .fetch_optional(p)
        .await)?)
    }

    /// Keeps a check run's report (JSON) under `id`.
    pub async fn insert_check_report(
        &self,
        id: &str,
        at: i64,
        user: &str,
        report: &str,
    ) -> Result<()> {
        on_db!(self, |p| {
            sqlx::query(
                "INSERT INTO check_reports (id, at, by_user, report) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(at)
            .bind(user)
            .bind(report)
            .execute(p)
            .await?;
            sqlx::query("DELETE FROM check_reports WHERE at < $1")
                .bind(at - KEEP_SECS)
                .execute(p)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The latest `limit` check reports (JSON), newest first.
    pub async fn recent_check_reports(&self, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_db!(self, |p| sqlx::query_as(
            "SELECT report FROM check_reports ORDER BY at DESC, id LIMIT $1"
        )
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// A check run's report (JSON), if kept.
    pub async fn check_report(&self, id: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = on_db!(self, |p| sqlx::query_as(
            "SELECT report FROM check_reports WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|r| r.0))
    }
}
