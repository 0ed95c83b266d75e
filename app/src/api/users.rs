use leptos::prelude::*;

use crate::model::{AppError, Role, SignInLock, UserSummary};

#[cfg(feature = "ssr")]
fn summary(u: crate::ssr::store::User) -> UserSummary {
    UserSummary {
        id: u.id,
        username: u.username,
        role: u.role,
        disabled: u.disabled,
        created_at: u.created_at,
        sso: u.sso,
        groups: vec![],
    }
}

/// A single sign-on account's role follows its groups, and it has no password: refuse both changes.
#[cfg(feature = "ssr")]
fn not_for_sso(user: &crate::ssr::store::User, what: &str) -> Result<(), AppError> {
    if user.sso {
        return Err(AppError::Conflict(format!(
            "{} signs in through the OpenID provider: {what}",
            user.username
        )));
    }
    Ok(())
}

#[cfg(feature = "ssr")]
async fn user_or_not_found(
    st: &crate::ssr::state::AppState,
    id: i64,
) -> Result<crate::ssr::store::User, AppError> {
    st.store
        .user(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("user {id}")))
}

#[server(endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserSummary>, AppError> {
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            session::require(Role::Admin).await?;
            let st = state()?;
            let groups: std::collections::HashMap<i64, Vec<String>> = st
                .store
                .sso_users()
                .await?
                .into_iter()
                .map(|u| (u.user.id, u.groups))
                .collect();
            Ok(st
                .store
                .list_users()
                .await?
                .into_iter()
                .map(|u| {
                    let g = groups.get(&u.id).cloned().unwrap_or_default();
                    UserSummary {
                        groups: g,
                        ..summary(u)
                    }
                })
                .collect())
        }
        .await,
    )
}

#[server(endpoint = "create_user")]
pub async fn create_user(
    username: String,
    role: Role,
    password: String,
) -> Result<UserSummary, AppError> {
    use crate::ssr::{passwords, session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            if role == Role::Admin {
                session::require_recent_auth().await?;
            }
            let st = state()?;
            let username = username.trim().to_string();
            crate::ssr::store::check_username(&username)?;
            let hash = passwords::hash_async(&password).await?;
            let id = st.store.create_user(&username, &hash, role).await?;
            tracing::info!(admin = %admin.username, user = %username, role = %role, "created a user");
            let user = st
                .store
                .user(id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("user {username}")))?;
            Ok(summary(user))
        }
        .await,
    )
}

/// Sets a user's role (the admin re-entered their password recently). The last enabled admin cannot be
/// demoted.
#[server(endpoint = "set_user_role")]
pub async fn set_user_role(id: i64, role: Role) -> Result<UserSummary, AppError> {
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            session::require_recent_auth().await?;
            let st = state()?;
            let user = user_or_not_found(&st, id).await?;
            not_for_sso(&user, "its role follows its groups; change the group mappings")?;
            if user.role == Role::Admin
                && role != Role::Admin
                && !user.disabled
                && st.store.count_other_enabled_admins(id).await? == 0
            {
                return Err(AppError::Conflict(
                    "this is the last enabled admin; make another admin first".into(),
                ));
            }
            st.store.set_role(id, role).await?;
            tracing::info!(admin = %admin.username, user = %user.username, role = %role, "set a role");
            let user = user_or_not_found(&st, id).await?;
            Ok(summary(user))
        }
        .await,
    )
}

/// Disables or enables a user. Disabling ends every session of the user at once (open live views too);
/// enabling gives power back, so it needs a recently re-entered password. The last enabled admin cannot be
/// disabled.
#[server(endpoint = "set_user_disabled")]
pub async fn set_user_disabled(id: i64, disabled: bool) -> Result<UserSummary, AppError> {
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            if !disabled {
                session::require_recent_auth().await?;
            }
            let st = state()?;
            let user = user_or_not_found(&st, id).await?;
            if disabled
                && user.role == Role::Admin
                && st.store.count_other_enabled_admins(id).await? == 0
            {
                return Err(AppError::Conflict(
                    "this is the last enabled admin; make another admin first".into(),
                ));
            }
            st.store.set_disabled(id, disabled).await?;
            session::end_all_sessions(id).await?;
            tracing::info!(admin = %admin.username, user = %user.username, disabled, "set disabled");
            let user = user_or_not_found(&st, id).await?;
            Ok(summary(user))
        }
        .await,
    )
}

/// Sets a new password for a user (an admin resetting a forgotten one; the admin re-entered their own
/// password recently). Every session of that user ends.
#[server(endpoint = "reset_user_password")]
pub async fn reset_user_password(id: i64, password: String) -> Result<(), AppError> {
    use crate::ssr::{passwords, session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            session::require_recent_auth().await?;
            let st = state()?;
            let user = user_or_not_found(&st, id).await?;
            not_for_sso(&user, "it has no password here")?;
            let hash = passwords::hash_async(&password).await?;
            st.store.set_password_hash(id, &hash).await?;
            if id == admin.id {
                session::end_other_sessions(&admin).await?;
            } else {
                session::end_all_sessions(id).await?;
            }
            tracing::info!(admin = %admin.username, user = %user.username, "reset a password; the user's sessions ended");
            Ok(())
        }
        .await,
    )
}

/// The sign-in locks in force: sources, usernames from a source, and usernames from unknown browsers that
/// reached their limit of failed attempts.
#[server(endpoint = "list_sign_in_locks")]
pub async fn list_sign_in_locks() -> Result<Vec<SignInLock>, AppError> {
    use crate::ssr::{now, session, state::state};
    session::respond(
        async {
            session::require(Role::Admin).await?;
            let st = state()?;
            Ok(st
                .store
                .sign_in_locks(now(), &st.throttle)
                .await?
                .into_iter()
                .map(|l| SignInLock {
                    kind: l.kind.to_string(),
                    username: l.username,
                    source: l.source,
                    attempts: l.attempts,
                    until: l.until,
                })
                .collect())
        }
        .await,
    )
}

/// Lifts sign-in locks: every recorded attempt for `username` and/or from `source` (at least one given).
#[server(endpoint = "unlock_sign_in")]
pub async fn unlock_sign_in(username: String, source: String) -> Result<u64, AppError> {
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            let (username, source) = (username.trim(), source.trim());
            if username.is_empty() && source.is_empty() {
                return Err(AppError::invalid("username", "name a username, a source, or both"));
            }
            if username.len() > 64 || source.len() > 128 {
                return Err(AppError::invalid("username", "too long to be a lock"));
            }
            let n = state()?
                .store
                .clear_attempts(
                    (!username.is_empty()).then_some(username),
                    (!source.is_empty()).then_some(source),
                )
                .await?;
            tracing::info!(admin = %admin.username, username, source, attempts = n, "lifted sign-in locks");
            Ok(n)
        }
        .await,
    )
}
