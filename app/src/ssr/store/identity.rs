//! Single sign-on accounts and the group mappings: which provider group gives which role or team membership.

use std::collections::BTreeMap;

use super::Db;
use super::users::{USER_COLUMNS, UserRow};
use super::{Error, Result, Role, Store, User, conflict_or, now};
use crate::model::{Grant, GroupMapping, TeamRole};

#[derive(sqlx::FromRow)]
struct MappingRow {
    group_name: String,
    kind: String,
    target: String,
    team_role: String,
}

impl MappingRow {
    fn into_mapping(self) -> Option<GroupMapping> {
        let grant = match self.kind.as_str() {
            "role" => Grant::Role {
                role: Role::parse(&self.target)?,
            },
            "team" => Grant::Team {
                team: self.target,
                role: TeamRole::parse(&self.team_role)?,
            },
            _ => return None,
        };
        Some(GroupMapping {
            group: self.group_name,
            grant,
        })
    }
}

fn columns(m: &GroupMapping) -> (&'static str, String, &'static str) {
    match &m.grant {
        Grant::Role { role } => ("role", role.as_str().to_string(), ""),
        Grant::Team { team, role } => ("team", team.clone(), role.as_str()),
    }
}

/// A single sign-on account as the mappings see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SsoUser {
    pub user: User,
    pub groups: Vec<String>,
}

impl Store {
    pub async fn group_mappings(&self) -> Result<Vec<GroupMapping>> {
        let sql = "SELECT group_name, kind, target, team_role FROM group_mappings \
                   ORDER BY group_name, kind, target";
        let rows: Vec<MappingRow> = on_db!(self, |p| sqlx::query_as(sql).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .filter_map(MappingRow::into_mapping)
            .collect())
    }

    /// Adds a mapping (a group mapped twice to the same role or team is a conflict; a team mapping's team
    /// role is replaced).
    pub async fn add_group_mapping(&self, m: &GroupMapping, by: &str) -> Result<()> {
        let (kind, target, team_role) = columns(m);
        let sql = "INSERT INTO group_mappings (group_name, kind, target, team_role, created_by, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        on_db!(self, |p| sqlx::query(sql)
            .bind(&m.group)
            .bind(kind)
            .bind(&target)
            .bind(team_role)
            .bind(by)
            .bind(now())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| {
            conflict_or(e, || {
                format!("a mapping of group {:?} to {target}", m.group)
            })
        })?;
        Ok(())
    }

    /// Removes a mapping; NotFound when there was none.
    pub async fn remove_group_mapping(&self, m: &GroupMapping) -> Result<()> {
        let (kind, target, _) = columns(m);
        let sql = "DELETE FROM group_mappings WHERE group_name = $1 AND kind = $2 AND target = $3";
        let n = on_db!(self, |p| sqlx::query(sql)
            .bind(&m.group)
            .bind(kind)
            .bind(&target)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        super::found(n, || {
            format!("a mapping of group {:?} to {target}", m.group)
        })
    }

    /// Replaces every mapping (the settings file, read at start).
    pub async fn replace_group_mappings(&self, list: &[GroupMapping], by: &str) -> Result<()> {
        let t = now();
        let outcome: std::result::Result<(), sqlx::Error> = on_db!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                sqlx::query("DELETE FROM group_mappings")
                    .execute(&mut *tx)
                    .await?;
                for m in list {
                    let (kind, target, team_role) = columns(m);
                    sqlx::query(
                        "INSERT INTO group_mappings (group_name, kind, target, team_role, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    )
                    .bind(&m.group)
                    .bind(kind)
                    .bind(&target)
                    .bind(team_role)
                    .bind(by)
                    .bind(t)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }
            .await
        });
        Ok(outcome?)
    }

    /// The single sign-on account of `subject` (the provider's issuer and subject).
    pub async fn sso_user(&self, subject: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE subject = $1 AND origin = 'sso'");
        let row: Option<UserRow> = on_db!(self, |p| sqlx::query_as(&sql)
            .bind(subject)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(UserRow::into_user).transpose()?.map(|(u, _)| u))
    }

    /// Records a single sign-on: creates the account on its first sign-in (a name a local account has is a
    /// conflict), else stores the groups and the role they give now. Never touches `disabled`: an admin's
    /// disable outlasts the provider.
    pub async fn sign_in_sso(
        &self,
        subject: &str,
        username: &str,
        groups: &[String],
        role: Role,
    ) -> Result<User> {
        super::check_username(username)?;
        let groups_json = serde_json::to_string(groups).unwrap_or_else(|_| "[]".into());
        let t = now();
        if self.sso_user(subject).await?.is_none() {
            let sql = "INSERT INTO users (username, password_hash, role, disabled, created_at, updated_at, origin, subject, groups) \
                       VALUES ($1, '', $2, FALSE, $3, $3, 'sso', $4, $5)";
            let inserted = on_db!(self, |p| sqlx::query(sql)
                .bind(username)
                .bind(role.as_str())
                .bind(t)
                .bind(subject)
                .bind(&groups_json)
                .execute(p)
                .await
                .map(|r| r.rows_affected()));
            match inserted {
                Ok(_) => {}
                Err(e) if super::is_conflict(&e) => {
                    // Either this subject signed in at the same moment elsewhere (fine), or the name is taken.
                    if self.sso_user(subject).await?.is_none() {
                        return Err(Error::Conflict(format!(
                            "the name {username:?}, which another account already has"
                        )));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            let sql = "UPDATE users SET role = $1, groups = $2, updated_at = $3 WHERE subject = $4 AND origin = 'sso'";
            on_db!(self, |p| sqlx::query(sql)
                .bind(role.as_str())
                .bind(&groups_json)
                .bind(t)
                .bind(subject)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
        }
        self.sso_user(subject)
            .await?
            .ok_or_else(|| Error::NotFound(format!("the account of {username}")))
    }

    /// The groups of a single sign-on account's last sign-in.
    pub async fn sso_groups(&self, id: i64) -> Result<Vec<String>> {
        let row: Option<(String,)> = on_db!(self, |p| sqlx::query_as(
            "SELECT groups FROM users WHERE id = $1 AND origin = 'sso'"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row
            .and_then(|(g,)| serde_json::from_str(&g).ok())
            .unwrap_or_default())
    }

    /// Every single sign-on account with its last groups.
    pub async fn sso_users(&self) -> Result<Vec<SsoUser>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, groups FROM users WHERE origin = 'sso' ORDER BY username"
        );
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            groups: String,
        }
        let rows: Vec<Row> = on_db!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter()
            .map(|r| {
                let groups = serde_json::from_str(&r.groups).unwrap_or_default();
                Ok(SsoUser {
                    user: r.user.into_user()?.0,
                    groups,
                })
            })
            .collect()
    }

    /// Gives a single sign-on account the role its groups give now; `None` (no mapped group left) ends its
    /// sessions (a new epoch) — it cannot sign in again until a group is mapped.
    pub async fn set_sso_role(&self, id: i64, role: Option<Role>) -> Result<()> {
        let sql = match role {
            Some(_) => {
                "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3 AND origin = 'sso'"
            }
            None => {
                "UPDATE users SET role = $1, session_epoch = session_epoch + 1, updated_at = $2 \
                 WHERE id = $3 AND origin = 'sso'"
            }
        };
        let role = role.unwrap_or(Role::Viewer);
        on_db!(self, |p| sqlx::query(sql)
            .bind(role.as_str())
            .bind(now())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Makes `username`'s group-given team memberships exactly `teams` (team → role, group): memberships
    /// added by hand stay as they are; teams that do not exist are skipped.
    pub async fn sync_group_memberships(
        &self,
        username: &str,
        teams: &BTreeMap<String, (TeamRole, String)>,
    ) -> Result<()> {
        let t = now();
        let outcome: std::result::Result<(), sqlx::Error> = on_db!(self, |p| {
            async {
                let mut tx = p.begin().await?;
                sqlx::query("DELETE FROM team_members WHERE username = $1 AND via <> ''")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                for (team, (role, group)) in teams {
                    sqlx::query(
                        "INSERT INTO team_members (team, username, role, added_at, via) \
                         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM teams WHERE name = $1) \
                         ON CONFLICT (team, username) DO NOTHING",
                    )
                    .bind(team)
                    .bind(username)
                    .bind(role.as_str())
                    .bind(t)
                    .bind(format!("group:{group}"))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }
            .await
        });
        Ok(outcome?)
    }
}
