use leptos::prelude::*;

use crate::model::{AppError, Role, UserSummary};

#[cfg(feature = "ssr")]
fn summary(u: crate::ssr::store::User) -> UserSummary {
    UserSummary {
        id: u.id,
        username: u.username,
        role: u.role,
        disabled: u.disabled,
        created_at: u.created_at,
    }
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
            Ok(state()?
                .store
                .list_users()
                .await?
                .into_iter()
                .map(summary)
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
            let st = state()?;
            let username = username.trim().to_string();
            crate::ssr::store::check_username(&username)?;
            let hash = passwords::hash(&password)?;
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

/// Sets a user's role. The last enabled admin cannot be demoted.
#[server(endpoint = "set_user_role")]
pub async fn set_user_role(id: i64, role: Role) -> Result<UserSummary, AppError> {
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            let st = state()?;
            let user = user_or_not_found(&st, id).await?;
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

/// Disables or enables a user. A disabled user's sessions stop working at their next request. The last
/// enabled admin cannot be disabled.
#[server(endpoint = "set_user_disabled")]
pub async fn set_user_disabled(id: i64, disabled: bool) -> Result<UserSummary, AppError> {
    use crate::ssr::{session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
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
            tracing::info!(admin = %admin.username, user = %user.username, disabled, "set disabled");
            let user = user_or_not_found(&st, id).await?;
            Ok(summary(user))
        }
        .await,
    )
}

/// Sets a new password for a user (an admin resetting a forgotten one).
#[server(endpoint = "reset_user_password")]
pub async fn reset_user_password(id: i64, password: String) -> Result<(), AppError> {
    use crate::ssr::{passwords, session, state::state};
    session::respond(
        async {
            let admin = session::require(Role::Admin).await?;
            let st = state()?;
            let user = user_or_not_found(&st, id).await?;
            let hash = passwords::hash(&password)?;
            st.store.set_password_hash(id, &hash).await?;
            tracing::info!(admin = %admin.username, user = %user.username, "reset a password");
            Ok(())
        }
        .await,
    )
}
