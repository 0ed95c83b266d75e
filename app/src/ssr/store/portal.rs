//! The portal's tables: teams with members, grants, limits and rules; requests; what the portal keeps
//! applied per object; and the append-only audit.

use super::Db;
use super::{Error, Result, Store, conflict_or, found, now};
use crate::model::{
    AuditFilter, AuditRecord, PortalRules, TeamGrant, TeamMember, TeamRole, TeamSettings,
};

#[derive(sqlx::FromRow)]
struct TeamRow {
    name: String,
    description: String,
    contact: String,
    max_namespaces: i64,
    max_services: i64,
    rules: String,
}

impl TeamRow {
    fn settings(self) -> TeamSettings {
        TeamSettings {
            name: self.name,
            description: self.description,
            contact: self.contact,
            max_namespaces: self.max_namespaces.clamp(0, u32::MAX as i64) as u32,
            max_services: self.max_services.clamp(0, u32::MAX as i64) as u32,
            rules: serde_json::from_str(&self.rules).unwrap_or_else(|_| PortalRules::default()),
        }
    }
}

/// A stored request, with the state of its job when it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: String,
    pub team: String,
    pub kind: String,
    pub action: String,
    pub state: String,
    pub waits_for: Option<String>,
    pub requested_by: String,
    pub source: String,
    pub created_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub comment: Option<String>,
    pub job_id: Option<String>,
    pub job_state: Option<String>,
}

/// Appends one audit record (its arguments bound in the order of [`NewAudit`]'s fields, `at` first).
const AUDIT_INSERT: &str = "INSERT INTO audit (at, actor, source, team, cluster, kind, subject, detail) \
                            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// What the portal keeps applied on one object.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ObjectRow {
    pub cluster: String,
    pub namespace: String,
    /// '' for the namespace itself.
    pub service: String,
    pub team: String,
    pub labels: String,
    pub annotations: String,
    pub job_id: String,
    pub updated_at: i64,
    /// The drift last recorded in the audit ('' = in step); only [`Store::record_drift`] changes it.
    #[sqlx(default)]
    pub drift: String,
}

/// An audit record to append.
#[derive(Debug, Clone, Default)]
pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub source: &'a str,
    pub team: &'a str,
    pub cluster: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    pub detail: &'a str,
}

const REQUEST_COLUMNS: &str = "r.id, r.team, r.kind, r.action, r.state, r.waits_for, r.requested_by, r.source, \
     r.created_at, r.decided_by, r.decided_at, r.comment, r.job_id, j.state AS job_state";

impl Store {
    pub async fn create_team(&self, t: &TeamSettings, by: &str) -> Result<()> {
        let rules = serde_json::to_string(&t.rules).unwrap_or_default();
        let at = now();
        let sql = "INSERT INTO teams (name, description, contact, max_namespaces, max_services, rules, created_by, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)";
        on_db!(self, |p| sqlx::query(sql)
            .bind(&t.name)
            .bind(&t.description)
            .bind(&t.contact)
            .bind(t.max_namespaces as i64)
            .bind(t.max_services as i64)
            .bind(&rules)
            .bind(by)
            .bind(at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| conflict_or(e, || format!("team {}", t.name)))?;
        Ok(())
    }

    pub async fn update_team(&self, t: &TeamSettings) -> Result<()> {
        let rules = serde_json::to_string(&t.rules).unwrap_or_default();
        let sql = "UPDATE teams SET description = $2, contact = $3, max_namespaces = $4, max_services = $5, rules = $6, updated_at = $7 \
                   WHERE name = $1";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(&t.name)
            .bind(&t.description)
            .bind(&t.contact)
            .bind(t.max_namespaces as i64)
            .bind(t.max_services as i64)
            .bind(&rules)
            .bind(now())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("team {}", t.name))
    }

    pub async fn delete_team(&self, name: &str) -> Result<()> {
        let n = on_db!(self, |p| sqlx::query("DELETE FROM teams WHERE name = $1")
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("team {name}"))
    }

    pub async fn team(&self, name: &str) -> Result<Option<TeamSettings>> {
        let sql = "SELECT name, description, contact, max_namespaces, max_services, rules FROM teams WHERE name = $1";
        let row: Option<TeamRow> = on_db!(self, |p| sqlx::query_as(sql)
            .bind(name)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(TeamRow::settings))
    }

    pub async fn list_teams(&self) -> Result<Vec<TeamSettings>> {
        let sql = "SELECT name, description, contact, max_namespaces, max_services, rules FROM teams ORDER BY name";
        let rows: Vec<TeamRow> = on_db!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?;
        Ok(rows.into_iter().map(TeamRow::settings).collect())
    }

    pub async fn set_member(&self, team: &str, username: &str, role: TeamRole) -> Result<()> {
        // Set by hand: the membership no longer follows a provider group.
        let sql = "INSERT INTO team_members (team, username, role, added_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (team, username) DO UPDATE SET role = excluded.role, via = ''";
        on_db!(self, |p| sqlx::query(sql)
            .bind(team)
            .bind(username)
            .bind(role.as_str())
            .bind(now())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn remove_member(&self, team: &str, username: &str) -> Result<()> {
        let n = on_db!(self, |p| sqlx::query(
            "DELETE FROM team_members WHERE team = $1 AND username = $2"
        )
        .bind(team)
        .bind(username)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        found(n, || format!("{username} in team {team}"))
    }

    pub async fn members(&self, team: &str) -> Result<Vec<TeamMember>> {
        let sql = "SELECT username, role FROM team_members WHERE team = $1 ORDER BY username";
        let rows: Vec<(String, String)> =
            on_db!(self, |p| sqlx::query_as(sql).bind(team).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(username, role)| {
                TeamRole::parse(&role).map(|role| TeamMember { username, role })
            })
            .collect())
    }

    /// The teams `username` is in, with their role there.
    pub async fn teams_of(&self, username: &str) -> Result<Vec<(String, TeamRole)>> {
        let sql = "SELECT team, role FROM team_members WHERE username = $1 ORDER BY team";
        let rows: Vec<(String, String)> = on_db!(self, |p| sqlx::query_as(sql)
            .bind(username)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|(t, r)| TeamRole::parse(&r).map(|r| (t, r)))
            .collect())
    }

    /// Replaces the team's patterns in one cluster (none: the cluster is no longer granted).
    pub async fn set_grant(&self, team: &str, cluster: &str, patterns: &[String]) -> Result<()> {
        let outcome: std::result::Result<(), sqlx::Error> = on_db!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                sqlx::query("DELETE FROM team_grants WHERE team = $1 AND cluster = $2")
                    .bind(team)
                    .bind(cluster)
                    .execute(&mut *tx)
                    .await?;
                for pat in patterns {
                    sqlx::query(
                        "INSERT INTO team_grants (team, cluster, pattern) VALUES ($1, $2, $3)",
                    )
                    .bind(team)
                    .bind(cluster)
                    .bind(pat)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }
            .await
        });
        outcome.map_err(|e| conflict_or(e, || format!("a pattern of team {team}")))
    }

    pub async fn grants(&self, team: &str) -> Result<Vec<TeamGrant>> {
        let sql =
            "SELECT cluster, pattern FROM team_grants WHERE team = $1 ORDER BY cluster, pattern";
        let rows: Vec<(String, String)> =
            on_db!(self, |p| sqlx::query_as(sql).bind(team).fetch_all(p).await)?;
        let mut out: Vec<TeamGrant> = vec![];
        for (cluster, pattern) in rows {
            match out.last_mut() {
                Some(g) if g.cluster == cluster => g.patterns.push(pattern),
                _ => out.push(TeamGrant {
                    cluster,
                    patterns: vec![pattern],
                }),
            }
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_request(
        &self,
        id: &str,
        team: &str,
        kind: &str,
        action: &str,
        waits_for: Option<&str>,
        requested_by: &str,
        source: &str,
    ) -> Result<()> {
        let sql = "INSERT INTO portal_requests (id, team, kind, action, state, waits_for, requested_by, source, created_at) \
                   VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)";
        on_db!(self, |p| sqlx::query(sql)
            .bind(id)
            .bind(team)
            .bind(kind)
            .bind(action)
            .bind(waits_for)
            .bind(requested_by)
            .bind(source)
            .bind(now())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM portal_requests r LEFT JOIN jobs j ON j.id = r.job_id WHERE r.id = $1"
        );
        Ok(on_db!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?)
    }

    /// Requests, newest first: of one team, or (None) of every team; only pending ones when asked.
    pub async fn list_requests(
        &self,
        team: Option<&str>,
        pending_only: bool,
        limit: i64,
    ) -> Result<Vec<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM portal_requests r LEFT JOIN jobs j ON j.id = r.job_id \
             WHERE ($1 IS NULL OR r.team = $1) AND ($2 = FALSE OR r.state = 'pending') \
             ORDER BY r.created_at DESC, r.id DESC LIMIT $3"
        );
        Ok(on_db!(self, |p| sqlx::query_as(&sql)
            .bind(team)
            .bind(pending_only)
            .bind(limit)
            .fetch_all(p)
            .await)?)
    }

    /// Moves a pending request to `state` (started, rejected, withdrawn). False when it was no longer pending
    /// (someone else decided first): nothing changes then.
    pub async fn decide_request(
        &self,
        id: &str,
        state: &str,
        by: &str,
        comment: Option<&str>,
    ) -> Result<bool> {
        let sql = "UPDATE portal_requests SET state = $2, decided_by = $3, decided_at = $4, comment = $5 \
                   WHERE id = $1 AND state = 'pending'";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(id)
            .bind(state)
            .bind(by)
            .bind(now())
            .bind(comment)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Puts a started request back in the queue (its job could not be created: a namespace was busy).
    pub async fn reopen_request(&self, id: &str, why: &str) -> Result<()> {
        let sql = "UPDATE portal_requests SET state = 'pending', waits_for = $2, decided_by = NULL, decided_at = NULL \
                   WHERE id = $1 AND state = 'started' AND job_id IS NULL";
        on_db!(self, |p| sqlx::query(sql)
            .bind(id)
            .bind(why)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn set_request_job(&self, id: &str, job_id: &str) -> Result<()> {
        let n = on_db!(self, |p| sqlx::query(
            "UPDATE portal_requests SET job_id = $2 WHERE id = $1"
        )
        .bind(id)
        .bind(job_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        found(n, || format!("request {id}"))
    }

    pub async fn portal_object(
        &self,
        cluster: &str,
        namespace: &str,
        service: &str,
    ) -> Result<Option<ObjectRow>> {
        let sql = "SELECT cluster, namespace, service, team, labels, annotations, job_id, updated_at, drift FROM portal_objects \
                   WHERE cluster = $1 AND namespace = $2 AND service = $3";
        Ok(on_db!(self, |p| sqlx::query_as(sql)
            .bind(cluster)
            .bind(namespace)
            .bind(service)
            .fetch_optional(p)
            .await)?)
    }

    /// Records what the portal now keeps applied on an object (or forgets it, when `labels` and
    /// `annotations` are both empty).
    pub async fn put_portal_object(&self, row: &ObjectRow) -> Result<()> {
        let empty = row.labels == "{}" && row.annotations == "{}";
        if empty {
            on_db!(self, |p| sqlx::query(
                "DELETE FROM portal_objects WHERE cluster = $1 AND namespace = $2 AND service = $3"
            )
            .bind(&row.cluster)
            .bind(&row.namespace)
            .bind(&row.service)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
            return Ok(());
        }
        let sql = "INSERT INTO portal_objects (cluster, namespace, service, team, labels, annotations, job_id, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   ON CONFLICT (cluster, namespace, service) DO UPDATE SET team = excluded.team, labels = excluded.labels, \
                   annotations = excluded.annotations, job_id = excluded.job_id, updated_at = excluded.updated_at";
        on_db!(self, |p| sqlx::query(sql)
            .bind(&row.cluster)
            .bind(&row.namespace)
            .bind(&row.service)
            .bind(&row.team)
            .bind(&row.labels)
            .bind(&row.annotations)
            .bind(&row.job_id)
            .bind(now())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Everything the portal keeps applied for a team (None: for every team).
    pub async fn portal_objects(&self, team: Option<&str>) -> Result<Vec<ObjectRow>> {
        let sql = "SELECT cluster, namespace, service, team, labels, annotations, job_id, updated_at, drift FROM portal_objects \
                   WHERE ($1 IS NULL OR team = $1) ORDER BY namespace, service, cluster";
        Ok(on_db!(self, |p| sqlx::query_as(sql)
            .bind(team)
            .fetch_all(p)
            .await)?)
    }

    /// Records that an object's drift is now `drift` ('' = in step again) with its audit record, once: only
    /// the caller whose conditional update changed the row appends the record (consoles sharing a database
    /// all watch the same clusters). False when the row already said so, or is gone.
    pub async fn record_drift(
        &self,
        row: &ObjectRow,
        drift: &str,
        a: &NewAudit<'_>,
    ) -> Result<bool> {
        let changed: std::result::Result<bool, sqlx::Error> = on_db!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                let n = sqlx::query(
                    "UPDATE portal_objects SET drift = $4 \
                     WHERE cluster = $1 AND namespace = $2 AND service = $3 AND drift <> $4",
                )
                .bind(&row.cluster)
                .bind(&row.namespace)
                .bind(&row.service)
                .bind(drift)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                sqlx::query(AUDIT_INSERT)
                    .bind(now())
                    .bind(a.actor)
                    .bind(a.source)
                    .bind(a.team)
                    .bind(a.cluster)
                    .bind(a.kind)
                    .bind(a.subject)
                    .bind(a.detail)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
            .await
        });
        Ok(changed?)
    }

    /// Appends an audit record for work that goes on whether or not it is recorded: a failure is logged.
    pub async fn audit_logged(&self, a: &NewAudit<'_>) {
        if let Err(e) = self.audit(a).await {
            tracing::error!(kind = a.kind, "could not write an audit record: {e}");
        }
    }

    /// Appends an audit record (never updated or deleted; the database refuses both).
    pub async fn audit(&self, a: &NewAudit<'_>) -> Result<()> {
        on_db!(self, |p| sqlx::query(AUDIT_INSERT)
            .bind(now())
            .bind(a.actor)
            .bind(a.source)
            .bind(a.team)
            .bind(a.cluster)
            .bind(a.kind)
            .bind(a.subject)
            .bind(a.detail)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Audit records matching `f`, oldest first, at most `limit`.
    pub async fn audit_records(&self, f: &AuditFilter, limit: i64) -> Result<Vec<AuditRecord>> {
        let sql = "SELECT id, at, actor, source, team, cluster, kind, subject, detail FROM audit \
                   WHERE ($1 IS NULL OR team = $1) AND ($2 IS NULL OR actor = $2) AND ($3 IS NULL OR cluster = $3) \
                   AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) \
                   ORDER BY id LIMIT $7";
        type Row = (
            i64,
            i64,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        );
        let rows: Vec<Row> = on_db!(self, |p| sqlx::query_as(sql)
            .bind(f.team.as_deref())
            .bind(f.user.as_deref())
            .bind(f.cluster.as_deref())
            .bind(f.kind.as_deref())
            .bind(f.since)
            .bind(f.until)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, source, team, cluster, kind, subject, detail)| AuditRecord {
                    id,
                    at,
                    actor,
                    source,
                    team,
                    cluster,
                    kind,
                    subject,
                    detail,
                },
            )
            .collect())
    }

    /// Runs a raw statement against the audit table: only for tests that prove the database refuses to
    /// change or delete records.
    #[doc(hidden)]
    pub async fn tamper_with_audit(&self, sql: &str) -> Result<u64> {
        if !(sql.starts_with("UPDATE audit ") || sql.starts_with("DELETE FROM audit")) {
            return Err(Error::Invalid {
                field: "sql",
                message: "only statements on the audit table".into(),
            });
        }
        Ok(on_db!(self, |p| sqlx::query(sql)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?)
    }
}
