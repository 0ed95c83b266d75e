//! The console's state: users and the cluster registry, in SQLite (default, embedded) or Postgres (several
//! replicas). One code path serves both: queries use `$n` placeholders, which both drivers accept, and each
//! function runs the same statement on whichever pool is configured.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use super::now;
use mesh::ids::{ClusterName, NetworkName};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported DATABASE_URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use crate::model::Role;

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            other => Err(Error::Invalid {
                field: "role",
                message: format!("{other:?} is not admin, operator or viewer"),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
}

/// A registered cluster. `credentials` is sealed (see `secrets`); the store never sees it in clear.
#[derive(Clone, PartialEq)]
pub struct ClusterRecord {
    pub name: ClusterName,
    pub network: NetworkName,
    pub labels: BTreeMap<String, String>,
    pub server: String,
    pub credentials: Vec<u8>,
    pub insecure_skip_tls_verify: bool,
    /// The last connectivity report, as JSON.
    pub connectivity: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for ClusterRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRecord")
            .field("name", &self.name)
            .field("network", &self.network)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Usernames: 1–64 characters of lowercase letters, digits, '.', '_' and '-'.
pub fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "username",
            message: "use 1–64 lowercase letters, digits, '.', '_' or '-'".into(),
        })
    }
}

/// NotFound when a write touched no row.
fn found(rows: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows == 0 {
        Err(Error::NotFound(what()))
    } else {
        Ok(())
    }
}

/// A unique or primary-key violation.
fn is_conflict(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

fn conflict_or(e: sqlx::Error, what: impl FnOnce() -> String) -> Error {
    if is_conflict(&e) {
        Error::Conflict(what())
    } else {
        Error::Db(e)
    }
}

#[derive(Debug, Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body on whichever pool is configured.
macro_rules! on_db {
    ($self:expr, |$pool:ident| $body:expr) => {
        match &$self.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    password_hash: String,
    role: String,
    disabled: bool,
    created_at: i64,
}

impl UserRow {
    fn into_user(self) -> Result<(User, String)> {
        let role = self.role.parse()?;
        Ok((
            User {
                id: self.id,
                username: self.username,
                role,
                disabled: self.disabled,
                created_at: self.created_at,
            },
            self.password_hash,
        ))
    }
}

#[derive(sqlx::FromRow)]
struct ClusterRow {
    name: String,
    network: String,
    labels: String,
    server: String,
    credentials: Vec<u8>,
    insecure_skip_tls_verify: bool,
    connectivity: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ClusterRow {
    fn into_record(self) -> Result<ClusterRecord> {
        let invalid = |field, e: &dyn std::fmt::Display| Error::Invalid {
            field,
            message: e.to_string(),
        };
        Ok(ClusterRecord {
            name: ClusterName::new(&self.name).map_err(|e| invalid("name", &e))?,
            network: NetworkName::new(&self.network).map_err(|e| invalid("network", &e))?,
            labels: serde_json::from_str(&self.labels).map_err(|e| invalid("labels", &e))?,
            server: self.server,
            credentials: self.credentials,
            insecure_skip_tls_verify: self.insecure_skip_tls_verify,
            connectivity: self.connectivity,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const USER_COLUMNS: &str = "id, username, password_hash, role, disabled, created_at";
const CLUSTER_COLUMNS: &str = "name, network, labels, server, credentials, insecure_skip_tls_verify, connectivity, created_at, updated_at";

/// The store. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH` — created if missing — or `postgres://…`) and migrates the schema.
    pub async fn connect(url: &str) -> Result<Store> {
        let db = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect(url)
                .await?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            Db::Postgres(pool)
        } else {
            return Err(Error::UnsupportedUrl(url.to_string()));
        };
        Ok(Store { db })
    }

    /// True when the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        on_db!(self, |p| sqlx::query("SELECT 1").execute(p).await.is_ok())
    }

    /// The session store (tower-sessions) on the same database, its table created if missing.
    pub async fn session_backend(&self) -> Result<super::session::SessionBackend> {
        use super::session::SessionBackend;
        use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};
        Ok(match &self.db {
            Db::Sqlite(p) => {
                let s = SqliteStore::new(p.clone());
                s.migrate().await?;
                SessionBackend::Sqlite(s)
            }
            Db::Postgres(p) => {
                let s = PostgresStore::new(p.clone());
                s.migrate().await?;
                SessionBackend::Postgres(s)
            }
        })
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    // ---- users ----

    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<i64> {
        check_username(username)?;
        let t = now();
        let sql = "INSERT INTO users (username, password_hash, role, disabled, created_at, updated_at) \
                   VALUES ($1, $2, $3, FALSE, $4, $4) RETURNING id";
        let id: Result<(i64,), sqlx::Error> = on_db!(self, |p| sqlx::query_as(sql)
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(t)
            .fetch_one(p)
            .await);
        Ok(id
            .map_err(|e| conflict_or(e, || format!("user {username:?}")))?
            .0)
    }

    /// A user and their password hash.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = on_db!(self, |p| sqlx::query_as(&sql)
            .bind(username)
            .fetch_optional(p)
            .await)?;
        row.map(UserRow::into_user).transpose()
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = on_db!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(UserRow::into_user).transpose()?.map(|(u, _)| u))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> = on_db!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter()
            .map(|r| r.into_user().map(|(u, _)| u))
            .collect()
    }

    pub async fn count_users(&self) -> Result<i64> {
        let (n,): (i64,) = on_db!(self, |p| sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(p)
            .await)?;
        Ok(n)
    }

    /// Enabled admins other than `except`: an admin may not demote or disable the last one.
    pub async fn count_other_enabled_admins(&self, except: i64) -> Result<i64> {
        let sql =
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = FALSE AND id <> $1";
        let (n,): (i64,) = on_db!(self, |p| sqlx::query_as(sql)
            .bind(except)
            .fetch_one(p)
            .await)?;
        Ok(n)
    }

    async fn update_user(&self, id: i64, sql: &str, bind: UserUpdate<'_>) -> Result<()> {
        let t = now();
        let done = on_db!(self, |p| {
            let q = sqlx::query(sql);
            let q = match bind {
                UserUpdate::Text(s) => q.bind(s.to_string()),
                UserUpdate::Flag(b) => q.bind(b),
            };
            q.bind(t)
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        found(done, || format!("user {id}"))
    }

    pub async fn set_role(&self, id: i64, role: Role) -> Result<()> {
        self.update_user(
            id,
            "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3",
            UserUpdate::Text(role.as_str()),
        )
        .await
    }

    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<()> {
        self.update_user(
            id,
            "UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3",
            UserUpdate::Flag(disabled),
        )
        .await
    }

    pub async fn set_password_hash(&self, id: i64, hash: &str) -> Result<()> {
        self.update_user(
            id,
            "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
            UserUpdate::Text(hash),
        )
        .await
    }

    // ---- sign-in throttling ----

    pub async fn record_login_failure(&self, username: &str, at: i64) -> Result<()> {
        let sql = "INSERT INTO login_failures (username, at) VALUES ($1, $2)";
        on_db!(self, |p| sqlx::query(sql)
            .bind(username)
            .bind(at)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Failures for `username` at or after `since`, and the time of the oldest of them.
    pub async fn login_failures_since(
        &self,
        username: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>)> {
        let sql = "SELECT COUNT(*), MIN(at) FROM login_failures WHERE username = $1 AND at >= $2";
        let row: (i64, Option<i64>) = on_db!(self, |p| sqlx::query_as(sql)
            .bind(username)
            .bind(since)
            .fetch_one(p)
            .await)?;
        Ok(row)
    }

    pub async fn clear_login_failures(
        &self,
        username: &str,
        older_than: Option<i64>,
    ) -> Result<()> {
        match older_than {
            None => on_db!(self, |p| sqlx::query(
                "DELETE FROM login_failures WHERE username = $1"
            )
            .bind(username)
            .execute(p)
            .await
            .map(|_| ()))?,
            Some(t) => on_db!(self, |p| sqlx::query(
                "DELETE FROM login_failures WHERE at < $1"
            )
            .bind(t)
            .execute(p)
            .await
            .map(|_| ()))?,
        }
        Ok(())
    }

    // ---- clusters ----

    pub async fn insert_cluster(&self, c: &ClusterRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO clusters ({CLUSTER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        let labels = serde_json::to_string(&c.labels).unwrap_or_else(|_| "{}".into());
        let r = on_db!(self, |p| sqlx::query(&sql)
            .bind(c.name.as_str())
            .bind(c.network.as_str())
            .bind(&labels)
            .bind(&c.server)
            .bind(&c.credentials)
            .bind(c.insecure_skip_tls_verify)
            .bind(&c.connectivity)
            .bind(c.created_at)
            .bind(c.updated_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        r.map(|_| ())
            .map_err(|e| conflict_or(e, || format!("cluster {:?}", c.name.as_str())))
    }

    pub async fn cluster(&self, name: &ClusterName) -> Result<Option<ClusterRecord>> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE name = $1");
        let row: Option<ClusterRow> = on_db!(self, |p| sqlx::query_as(&sql)
            .bind(name.as_str())
            .fetch_optional(p)
            .await)?;
        row.map(ClusterRow::into_record).transpose()
    }

    pub async fn list_clusters(&self) -> Result<Vec<ClusterRecord>> {
        let sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY name");
        let rows: Vec<ClusterRow> = on_db!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter().map(ClusterRow::into_record).collect()
    }

    /// Changes what a user may edit: network and labels.
    pub async fn update_cluster(
        &self,
        name: &ClusterName,
        network: &NetworkName,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let labels = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
        let sql = "UPDATE clusters SET network = $1, labels = $2, updated_at = $3 WHERE name = $4";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(network.as_str())
            .bind(&labels)
            .bind(now())
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("cluster {:?}", name.as_str()))
    }

    pub async fn set_connectivity(&self, name: &ClusterName, report_json: &str) -> Result<()> {
        let sql = "UPDATE clusters SET connectivity = $1, updated_at = $2 WHERE name = $3";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(report_json)
            .bind(now())
            .bind(name.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        found(n, || format!("cluster {:?}", name.as_str()))
    }

    pub async fn delete_cluster(&self, name: &ClusterName) -> Result<()> {
        let n = on_db!(self, |p| sqlx::query(
            "DELETE FROM clusters WHERE name = $1"
        )
        .bind(name.as_str())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        found(n, || format!("cluster {:?}", name.as_str()))
    }
}

enum UserUpdate<'a> {
    Text(&'a str),
    Flag(bool),
}

// ---- roots of trust, jobs, events, cluster locks ----

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
    pub async fn insert_root(&self, r: &RootRow) -> Result<()> {
        on_db!(self, |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE roots SET active = FALSE WHERE active = TRUE")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO roots (id, cert_pem, key_sealed, fingerprint, created_by, created_at, active) \
                 VALUES ($1, $2, $3, $4, $5, $6, TRUE)",
            )
            .bind(&r.id)
            .bind(&r.cert_pem)
            .bind(&r.key_sealed)
            .bind(&r.fingerprint)
            .bind(&r.created_by)
            .bind(r.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })?;
        Ok(())
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
            Err(e) => Err(Error::Db(e)),
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
            Err(e) => Err(Error::Db(e)),
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
        let (id,): (i64,) = on_db!(self, |p| {
            sqlx::query_as(
            "INSERT INTO job_events (job_id, at, cluster, step, level, message) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
        )
        .bind(job_id)
        .bind(t)
        .bind(cluster)
        .bind(step)
        .bind(level)
        .bind(message)
        .fetch_one(p)
        .await
        })?;
        Ok(id)
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
}
