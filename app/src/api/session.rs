use leptos::prelude::*;

use crate::model::{AppError, Me};

/// Signs in. With JavaScript off (a plain form post) the outcome travels in a redirect.
#[server(endpoint = "sign_in")]
pub async fn sign_in(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<Me, AppError> {
    use crate::ssr::{auth, session, state::state};
    let st = state()?;
    let now = crate::ssr::now();
    let username = username.trim().to_string();
    let result: Result<Me, AppError> = async {
        let user = auth::sign_in(&st.store, &username, &password, now).await?;
        session::begin(&user).await?;
        tracing::info!(user = %user.username, "signed in");
        Ok(Me {
            username: user.username,
            role: user.role,
        })
    }
    .await;
    if session::is_plain_form() {
        match &result {
            Ok(_) => leptos_axum::redirect(&crate::model::after_sign_in(next.as_deref())),
            Err(e) => {
                let message = match e {
                    AppError::Invalid { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                leptos_axum::redirect(&format!(
                    "/sign-in?error={}",
                    crate::pages::encode_query(&message)
                ))
            }
        }
    }
    session::respond(result)
}

#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::ssr::session;
    session::end().await?;
    if session::is_plain_form() {
        leptos_axum::redirect("/sign-in");
    }
    Ok(())
}

/// Who is signed in, if anyone. Public: the shell uses it to decide what to show.
#[server(endpoint = "get_me")]
pub async fn get_me() -> Result<Option<Me>, AppError> {
    use crate::ssr::session;
    let user = session::respond(session::current_user().await)?;
    Ok(user.map(|u| Me {
        username: u.username,
        role: u.role,
    }))
}

/// Changes the signed-in user's own password (the current one is required).
#[server(endpoint = "change_password")]
pub async fn change_password(current: String, new: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::ssr::{passwords, session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Viewer).await?;
            let st = state()?;
            let (_, hash) = st
                .store
                .user_by_name(&user.username)
                .await?
                .ok_or(AppError::Unauthenticated)?;
            if !passwords::verify(&current, &hash) {
                return Err(AppError::invalid(
                    "current",
                    "the current password is wrong",
                ));
            }
            let hash =
                passwords::hash(&new).map_err(|e| AppError::invalid("new", e.to_string()))?;
            st.store.set_password_hash(user.id, &hash).await?;
            tracing::info!(user = %user.username, "password changed");
            Ok(())
        }
        .await,
    )
}
