//! Console accounts.

use super::Db;
use super::{Result, Role, Store, User, check_username, conflict_or, found, now};

pub(super) const USER_COLUMNS: &str =
    "id, username, password_hash, role, disabled, created_at, session_epoch, origin";

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: i64,
    username: String,
    password_hash: String,
    role: String,
    disabled: bool,
    created_at: i64,
    session_epoch: i64,
    origin: String,
}

impl UserRow {
    pub(super) fn into_user(self) -> Result<(User, String)> {
        let role = self.role.parse()?;
        Ok((
            User {
                id: self.id,
                username: self.username,
                role,
                disabled: self.disabled,
                created_at: self.created_at,
                session_epoch: self.session_epoch,
                sso: self.origin == "sso",
            },
            self.password_hash,
        ))
    }
}

impl Store {
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
        // fetch_all runs the insert to its end, where a failed commit (a full disk) is reported.
        let rows: Result<Vec<(i64,)>, sqlx::Error> = on_db!(self, |p| sqlx::query_as(sql)
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(t)
            .fetch_all(p)
            .await);
        super::returned_id(rows.map_err(|e| conflict_or(e, || format!("user {username:?}")))?)
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

    /// Disables or enables a user; either way the user's sessions end (a new epoch).
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<()> {
        self.update_user(
            id,
            "UPDATE users SET disabled = $1, session_epoch = session_epoch + 1, updated_at = $2 WHERE id = $3",
            UserUpdate::Flag(disabled),
        )
        .await
    }

    /// Sets a new password; every session of the user ends (a new epoch), the caller begins its own again.
    pub async fn set_password_hash(&self, id: i64, hash: &str) -> Result<()> {
        self.update_user(
            id,
            "UPDATE users SET password_hash = $1, session_epoch = session_epoch + 1, updated_at = $2 WHERE id = $3",
            UserUpdate::Text(hash),
        )
        .await
    }
}

enum UserUpdate<'a> {
    Text(&'a str),
    Flag(bool),
}
