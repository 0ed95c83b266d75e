//! The console's state: users and the cluster registry, in SQLite (default, embedded) or Postgres (several
//! replicas). One code path serves both: queries use `$n` placeholders, which both drivers accept, and each
//! function runs the same statement on whichever pool is configured. One file per area: users, sign-in
//! attempts, clusters, and jobs (with roots of trust and cluster locks).

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
    /// Held by a job (the message says which).
    #[error("{0}")]
    Busy(String),
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("database: {0}")]
    Db(sqlx::Error),
    /// The database cannot grow: its disk (or its size limit) is full. Nothing of the write was kept.
    #[error(
        "the console's database is full (no space left where it is stored); nothing was saved — free space on its volume, then try again"
    )]
    Full,
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
    /// Sessions begun under an older epoch are over (raised by a password change, a reset, a disable).
    pub session_epoch: i64,
    /// Signed in through the OpenID provider (no password; the role follows the groups).
    pub sso: bool,
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
    /// How the console reaches the cluster ([`crate::model::ClusterAccess`] as JSON); `None`: with the
    /// credentials given at registration.
    pub access: Option<String>,
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

/// Usernames: 1–64 characters of lowercase letters, digits, '.', '_', '-', '@' and '+' (an e-mail address names a
/// single sign-on user).
pub fn check_username(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "username",
            message: "use 1–64 lowercase letters, digits, '.', '_', '-', '@' or '+'".into(),
        })
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_full(&e) {
            tracing::error!("database full: {e}");
            Error::Full
        } else {
            Error::Db(e)
        }
    }
}

/// SQLite's SQLITE_FULL (13, "database or disk is full"), Postgres' disk_full (53100), or an I/O error saying
/// there is no space left.
fn is_full(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("13") | Some("53100"))
                || d.message().contains("disk is full")
        }
        sqlx::Error::Io(io) => io.raw_os_error() == Some(28),
        _ => false,
    }
}

/// The id an `INSERT … RETURNING id` gave back.
fn returned_id(rows: Vec<(i64,)>) -> Result<i64> {
    rows.first()
        .map(|r| r.0)
        .ok_or_else(|| Error::Db(sqlx::Error::RowNotFound))
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
        e.into()
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
            // Each SQLite connection is a thread with its own page cache (up to 2 MB): after a busy moment
            // (a setup's writes, a burst of pages) the idle ones close within a minute, down to one.
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .min_connections(1)
                .idle_timeout(Duration::from_secs(30))
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

    /// Closes the store's connections and waits until they are closed (a pool dropped closes them later).
    pub async fn close(&self) {
        on_db!(self, |p| p.close().await)
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

    /// The Postgres pool, when that is the backend (for LISTEN/NOTIFY between replicas).
    pub fn postgres(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Postgres(p) => Some(p),
            Db::Sqlite(_) => None,
        }
    }

    /// The file of a `sqlite:` URL.
    pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
        url.starts_with("sqlite:")
            .then(|| SqliteConnectOptions::from_str(url).ok())
            .flatten()
            .map(|o| o.get_filename().to_path_buf())
    }

    /// Writes a consistent copy of the embedded SQLite store at `url` to `out` while consoles use it (`VACUUM
    /// INTO`: one read transaction, so the copy is the store as of one moment). The store is opened as it is
    /// (no migration: a newer binary never changes the schema under a running console); `out` must not exist
    /// and is made 0600 (it holds password hashes and sessions). For Postgres, use `pg_dump` (see the README).
    pub async fn backup(url: &str, out: &std::path::Path) -> Result<()> {
        let invalid = |field: &'static str, message: String| Error::Invalid { field, message };
        let Some(file) = Self::sqlite_file(url) else {
            return Err(invalid(
                "database",
                "the store is Postgres: back it up with pg_dump (see the README)".into(),
            ));
        };
        if !file.exists() {
            return Err(invalid(
                "database",
                format!(
                    "there is no store at {} (give --database-url)",
                    file.display()
                ),
            ));
        }
        let target = out
            .to_str()
            .ok_or_else(|| invalid("out", "the path is not UTF-8".into()))?;
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(out)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => invalid(
                        "out",
                        format!("{} exists already; name a new file", out.display()),
                    ),
                    _ => invalid("out", format!("{}: {e}", out.display())),
                })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(&file)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        let done = sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&pool)
            .await;
        pool.close().await;
        if let Err(e) = done {
            let _ = std::fs::remove_file(out);
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts a backup made by [`Store::backup_to`] in place of the SQLite store at `url`, which no console may
    /// be using. The backup is checked first (a Meshdeck store, intact, not from a newer Meshdeck); the store
    /// it replaces is kept beside it as `<file>.before-restore-<unix time>`, whose path is returned.
    pub async fn restore(input: &std::path::Path, url: &str) -> Result<Option<std::path::PathBuf>> {
        let invalid = |field: &'static str, message: String| Error::Invalid { field, message };
        if !url.starts_with("sqlite:") {
            return Err(invalid(
                "database",
                "restore puts back the embedded SQLite store; for Postgres use pg_restore (see the README)"
                    .into(),
            ));
        }
        let target = SqliteConnectOptions::from_str(url)?
            .get_filename()
            .to_path_buf();
        // The backup: a SQLite file, intact, with Meshdeck's schema, no newer than this binary's.
        let opts = SqliteConnectOptions::new().filename(input).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(|e| {
                invalid(
                    "backup",
                    format!("{}: not a readable SQLite file ({e})", input.display()),
                )
            })?;
        let not_ours = |e: sqlx::Error| {
            invalid(
                "backup",
                format!("{}: not a Meshdeck store ({e})", input.display()),
            )
        };
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .map_err(not_ours)?;
        if check != "ok" {
            return Err(invalid(
                "backup",
                format!("{}: damaged ({check})", input.display()),
            ));
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&pool)
            .await
            .map_err(not_ours)?;
        sqlx::query("SELECT COUNT(*) FROM clusters")
            .execute(&pool)
            .await
            .map_err(not_ours)?;
        pool.close().await;
        let known = sqlx::migrate!("migrations/sqlite")
            .migrations
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or_default();
        if version.unwrap_or_default() > known {
            return Err(invalid(
                "backup",
                format!(
                    "{} comes from a newer Meshdeck (schema {} > {known}); restore it with that version",
                    input.display(),
                    version.unwrap_or_default()
                ),
            ));
        }
        if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| invalid("database", format!("{}: {e}", dir.display())))?;
        }
        // The copy is made (and synced) before anything is moved: a full disk leaves the store as it was.
        let draft = std::path::PathBuf::from(format!("{}.restoring", target.display()));
        let copied =
            std::fs::copy(input, &draft).and_then(|_| std::fs::File::open(&draft)?.sync_all());
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&draft);
            return Err(invalid("database", format!("{}: {e}", draft.display())));
        }
        // The store replaced: nobody may be writing it.
        let kept = if target.exists() {
            let opts = SqliteConnectOptions::new()
                .filename(&target)
                .busy_timeout(Duration::from_millis(0));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await?;
            let mut conn = pool.acquire().await?;
            let locked = sqlx::query("BEGIN EXCLUSIVE").execute(&mut *conn).await;
            if locked.is_err() {
                let _ = std::fs::remove_file(&draft);
                return Err(Error::Busy(format!(
                    "{} is in use: stop every console using it, then restore",
                    target.display()
                )));
            }
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            drop(conn);
            pool.close().await;
            let kept = std::path::PathBuf::from(format!(
                "{}.before-restore-{}",
                target.display(),
                super::now()
            ));
            std::fs::rename(&target, &kept).map_err(|e| invalid("database", e.to_string()))?;
            for ext in ["-wal", "-shm"] {
                let side = std::path::PathBuf::from(format!("{}{ext}", target.display()));
                if side.exists() {
                    let _ = std::fs::rename(&side, format!("{}{ext}", kept.display()));
                }
            }
            Some(kept)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&draft, &target) {
            // Put the old store back rather than leave none.
            if let Some(k) = &kept {
                let _ = std::fs::rename(k, &target);
            }
            return Err(invalid("database", format!("{}: {e}", target.display())));
        }
        Ok(kept)
    }

    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

mod charts;
mod clusters;
mod identity;
mod jobs;
mod portal;
mod reports;
mod throttle;
mod users;

pub use charts::ChartRow;
pub use jobs::*;
pub use portal::*;
pub use reports::KEEP_SECS;
pub use throttle::*;
