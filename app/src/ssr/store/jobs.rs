//! Roots of trust, jobs with their steps and events, and the per-cluster locks that keep one job per cluster.

use super::{Db, Result, Store, is_conflict, now};

/// The shared root of trust as stored (the key sealed).
#[derive(Clone, sqlx::FromRow)]
pub struct RootRow {
    pub id: String,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub fingerprint: String,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub spec: String,
    pub state: String,
    pub started_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StepRow {
    pub cluster: String,
    pub step: String,
    pub position: i32,
    pub state: String,
    pub changed: Option<bool>,
    pub message: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub cluster: Option<String>,
    pub step: Option<String>,
    pub level: String,
    pub message: String,
}

/// A job to create, with its steps and the clusters it locks.
pub struct NewJob<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub spec: &'a str,
    pub secret: Option<&'a [u8]>,
    pub started_by: &'a str,
    pub steps: &'a [(String, String)],
    pub clusters: &'a [String],
    pub lease_owner: &'a str,
    pub lease_until: i64,
}

/// Who holds a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub cluster: String,
    pub job_id: String,
    pub started_by: String,
    pub since: i64,
}

const JOB_COLUMNS: &str =
    "id, kind, spec, state, started_by, created_at, finished_at, lease_owner, lease_until";

impl Store {
    /// Stores `r` as the active root of trust. The database allows one active root (a unique index), so when
    /// two consoles make the first root at once, one of them gets `Conflict` and uses the other's.
    pub async fn insert_root(&self, r: &RootRow) -> Result<()> {
        self.insert_root_as(r, true).await
    }

    /// Stores `r`, the active root when `active` (see [`Store::insert_root`]), else kept for a rotation.
    pub async fn insert_root_as(&self, r: &RootRow, active: bool) -> Result<()> {
        on_db!(self, |p| sqlx::query(
            "INSERT INTO roots (id, cert_pem, key_sealed, fingerprint, created_by, created_at, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(&r.cert_pem)
        .bind(&r.key_sealed)
        .bind(&r.fingerprint)
        .bind(&r.created_by)
        .bind(r.created_at)
        .bind(active)
        .execute(p)
        .await
        .map(|_| ()))
        .map_err(|e| super::conflict_or(e, || "an active root of trust".into()))
    }

    /// A stored root by id, active or not (a mesh keeps the root it was set up or rotated with).
    pub async fn root_row(&self, id: &str) -> Result<Option<RootRow>> {
        let sql = "SELECT id, cert_pem, key_sealed, fingerprint, created_by, created_at FROM roots WHERE id = $1";
        Ok(on_db!(self, |p| sqlx::query_as::<_, RootRow>(sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// Deletes a root that is not in use (a rotation's new root whose job could not start).
    pub async fn delete_inactive_root(&self, id: &str) -> Result<()> {
        let sql = "DELETE FROM roots WHERE id = $1 AND active = FALSE";
        on_db!(self, |p| sqlx::query(sql)
            .bind(id)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Makes `id` the root new setups use, in place of `was` — only when `was` is still the active one (a
    /// rotation of a mesh set up with an older root leaves the console's choice alone). Returns whether it did.
    pub async fn replace_active_root(&self, was: &str, id: &str) -> Result<bool> {
        Ok(on_db!(self, |p| async {
            let mut tx = p.begin().await?;
            let off =
                sqlx::query("UPDATE roots SET active = FALSE WHERE id = $1 AND active = TRUE")
                    .bind(was)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if off == 1 {
                let on = sqlx::query("UPDATE roots SET active = TRUE WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if on != 1 {
                    // The new root is not stored: keep the old one in use rather than none.
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            tx.commit().await?;
            Ok::<bool, sqlx::Error>(off == 1)
        }
        .await)?)
    }

    /// The root of trust in use, if one was made.
    pub async fn active_root(&self) -> Result<Option<RootRow>> {
        let sql = "SELECT id, cert_pem, key_sealed, fingerprint, created_by, created_at FROM roots WHERE active = TRUE";
        Ok(on_db!(self, |p| sqlx::query_as::<_, RootRow>(sql)
            .fetch_optional(p)
            .await)?)
    }

    /// Who holds any of `clusters` now.
    pub async fn holders(&self, clusters: &[String]) -> Result<Vec<Holder>> {
        let sql = "SELECT l.cluster, l.job_id, j.started_by, l.acquired_at FROM cluster_locks l \
                   JOIN jobs j ON j.id = l.job_id ORDER BY l.cluster";
        let rows: Vec<(String, String, String, i64)> =
            on_db!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .filter(|(c, ..)| clusters.contains(c))
            .map(|(cluster, job_id, started_by, since)| Holder {
                cluster,
                job_id,
                started_by,
                since,
            })
            .collect())
    }

    /// Creates a job, locking its clusters in the same transaction. When a cluster is held by another job,
    /// nothing is written and the holders are returned.
    pub async fn create_job(&self, j: &NewJob<'_>) -> Result<std::result::Result<(), Vec<Holder>>> {
        let t = now();
        let outcome: std::result::Result<(), sqlx::Error> = on_db!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO jobs (id, kind, spec, secret, state, started_by, created_at, lease_owner, lease_until) \
                 VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8)",
            )
            .bind(j.id)
            .bind(j.kind)
            .bind(j.spec)
            .bind(j.secret)
            .bind(j.started_by)
            .bind(t)
            .bind(j.lease_owner)
            .bind(j.lease_until)
            .execute(&mut *tx)
            .await?;
            for c in j.clusters {
                sqlx::query(
                    "INSERT INTO cluster_locks (cluster, job_id, acquired_at) VALUES ($1, $2, $3)",
                )
                .bind(c)
                .bind(j.id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
            }
            for (i, (cluster, step)) in j.steps.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO job_steps (job_id, cluster, step, position, state) VALUES ($1, $2, $3, $4, 'pending')",
                )
                .bind(j.id)
                .bind(cluster)
                .bind(step)
                .bind(i as i32)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await
        });
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(e) if is_conflict(&e) => Ok(Err(self.holders(j.clusters).await?)),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes the locks of a finished job's clusters again (to retry some of them).
    pub async fn relock(
        &self,
        job_id: &str,
        clusters: &[String],
        owner: &str,
        lease_until: i64,
    ) -> Result<std::result::Result<(), Vec<Holder>>> {
        let t = now();
        let outcome: std::result::Result<(), sqlx::Error> = on_db!(self, |p| {
            async {
            let mut tx = p.begin().await?;
            for c in clusters {
                sqlx::query(
                    "INSERT INTO cluster_locks (cluster, job_id, acquired_at) VALUES ($1, $2, $3)",
                )
                .bind(c)
                .bind(job_id)
                .bind(t)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE jobs SET state = 'running', finished_at = NULL, lease_owner = $1, lease_until = $2 WHERE id = $3",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await
        });
        match outcome {
            Ok(()) => Ok(Ok(())),
            Err(e) if is_conflict(&e) => Ok(Err(self.holders(clusters).await?)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRow>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        Ok(on_db!(self, |p| sqlx::query_as::<_, JobRow>(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// The sealed secrets of a job.
    pub async fn job_secret(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<(Option<Vec<u8>>,)> = on_db!(self, |p| sqlx::query_as(
            "SELECT secret FROM jobs WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.and_then(|r| r.0))
    }

    /// The newest jobs first.
    pub async fn list_jobs(&self, limit: i64) -> Result<Vec<JobRow>> {
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id DESC LIMIT $1");
        Ok(on_db!(self, |p| sqlx::query_as::<_, JobRow>(&sql)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    pub async fn job_steps(&self, id: &str) -> Result<Vec<StepRow>> {
        let sql = "SELECT cluster, step, position, state, changed, message, started_at, finished_at \
                   FROM job_steps WHERE job_id = $1 ORDER BY position";
        Ok(on_db!(self, |p| sqlx::query_as::<_, StepRow>(sql)
            .bind(id)
            .fetch_all(p)
            .await)?)
    }

    pub async fn set_step(
        &self,
        job_id: &str,
        cluster: &str,
        step: &str,
        state: &str,
        changed: Option<bool>,
        message: Option<&str>,
    ) -> Result<()> {
        let t = now();
        let sql = "UPDATE job_steps SET state = $1, changed = COALESCE($2, changed), message = COALESCE($3, message), \
                   started_at = CASE WHEN $1 = 'running' THEN $4 ELSE started_at END, \
                   finished_at = CASE WHEN $1 IN ('done', 'failed') THEN $4 ELSE NULL END \
                   WHERE job_id = $5 AND cluster = $6 AND step = $7";
        on_db!(self, |p| sqlx::query(sql)
            .bind(state)
            .bind(changed)
            .bind(message)
            .bind(t)
            .bind(job_id)
            .bind(cluster)
            .bind(step)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Puts steps that were running (and, with `failed`, those that failed) back to pending, for one
    /// cluster or all, so they run again.
    pub async fn reopen_steps(
        &self,
        job_id: &str,
        cluster: Option<&str>,
        failed: bool,
    ) -> Result<u64> {
        let n = on_db!(self, |p| {
            sqlx::query(
            "UPDATE job_steps SET state = 'pending', finished_at = NULL \
             WHERE job_id = $1 AND (state = 'running' OR (state = 'failed' AND $3)) AND ($2 IS NULL OR cluster = $2)"
        )
        .bind(job_id)
        .bind(cluster)
        .bind(failed)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    pub async fn add_event(
        &self,
        job_id: &str,
        cluster: Option<&str>,
        step: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<i64> {
        let t = now();
        // fetch_all, not fetch_one: an insert with RETURNING commits when the statement runs to its end, and
        // only running it to the end reports a failed commit (a full disk); fetch_one stops at the row.
        let rows: Vec<(i64,)> = on_db!(self, |p| {
            sqlx::query_as(
            "INSERT INTO job_events (job_id, at, cluster, step, level, message) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        .bind(job_id)
        .bind(t)
        .bind(cluster)
        .bind(step)
        .bind(level)
        .bind(message)
        .fetch_all(p)
        .await
        })?;
        super::returned_id(rows)
    }

    /// Events of a job after event `after` (0: from the start).
    pub async fn job_events(&self, job_id: &str, after: i64) -> Result<Vec<EventRow>> {
        let sql = "SELECT id, at, cluster, step, level, message FROM job_events WHERE job_id = $1 AND id > $2 ORDER BY id";
        Ok(on_db!(self, |p| sqlx::query_as::<_, EventRow>(sql)
            .bind(job_id)
            .bind(after)
            .fetch_all(p)
            .await)?)
    }

    /// Ends a job and releases its clusters.
    pub async fn finish_job(&self, id: &str, state: &str) -> Result<()> {
        let t = now();
        on_db!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE jobs SET state = $1, finished_at = $2, lease_owner = NULL, lease_until = NULL WHERE id = $3")
                .bind(state)
                .bind(t)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cluster_locks WHERE job_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Extends the lease of a running job; false when another replica took it over.
    pub async fn renew_lease(&self, id: &str, owner: &str, until: i64) -> Result<bool> {
        let n = on_db!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'"
        )
        .bind(until)
        .bind(id)
        .bind(owner)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Takes over running jobs whose lease ran out (their replica stopped): returns their ids.
    pub async fn claim_orphaned_jobs(&self, owner: &str, until: i64) -> Result<Vec<String>> {
        let t = now();
        let rows: Vec<(String,)> = on_db!(self, |p| sqlx::query_as(
            "UPDATE jobs SET lease_owner = $1, lease_until = $2 \
             WHERE state = 'running' AND (lease_until IS NULL OR lease_until < $3) RETURNING id"
        )
        .bind(owner)
        .bind(until)
        .bind(t)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Ends the leases of every running job `owner` holds (a console stopping): another console takes them
    /// over at its next look instead of when the leases run out. Returns their ids.
    pub async fn release_leases(&self, owner: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_db!(self, |p| {
            sqlx::query_as(
            "UPDATE jobs SET lease_until = 0 WHERE lease_owner = $1 AND state = 'running' RETURNING id"
        )
        .bind(owner)
        .fetch_all(p)
        .await
        })?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// How many jobs are in each state (for `/metrics`).
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, i64)> = on_db!(self, |p| sqlx::query_as(
            "SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state"
        )
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
