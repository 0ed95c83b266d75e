use leptos::prelude::*;

use crate::model::{AppError, Me};

/// Checks the signed-in user's password again through sign-in's throttling (a stolen session cannot guess
/// it faster than a sign-in could).
#[cfg(feature = "ssr")]
pub(super) async fn recheck_password(
    user: &crate::ssr::store::User,
    password: &str,
    field: &str,
) -> Result<(), AppError> {
    use crate::ssr::{auth, client, now, state::state};
    let st = state()?;
    let who = client::attempter();
    match auth::sign_in(
        &st.store,
        &st.secrets,
        &st.throttle,
        &who,
        &user.username,
        password,
        now(),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(auth::Error::BadCredentials) => Err(AppError::invalid(field, "the password is wrong")),
        Err(e) => Err(e.into()),
    }
}

/// Signs in. With JavaScript off (a plain form post) the outcome travels in a redirect.
#[server(endpoint = "sign_in")]
pub async fn sign_in(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<Me, AppError> {
    use crate::ssr::{auth, client, session, state::state};
    let st = state()?;
    let now = crate::ssr::now();
    let who = client::attempter();
    let username = username.trim().to_string();
    let result: Result<Me, AppError> = async {
        // Break-glass: with single sign-on the only password account may be this one. Said before the
        // password is checked, so the answer tells nothing about it.
        if let Some(only) = &st.break_glass
            && &username != only
        {
            return Err(AppError::invalid(
                "username",
                "sign in with the single sign-on button; passwords are kept for the break-glass account",
            ));
        }
        let user = auth::sign_in(
            &st.store,
            &st.secrets,
            &st.throttle,
            &who,
            &username,
            &password,
            now,
        )
        .await
        .inspect_err(|e| tracing::info!(source = %who.source, "sign-in refused: {e}"))?;
        session::begin(&user).await?;
        // This browser is now known for this user: its later attempts count on their own (auth).
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            let value = auth::issue_device(&st.secrets, &user, now);
            let secure = if st.sessions.secure { "; Secure" } else { "" };
            let cookie = format!(
                "{}={value}; Path=/api; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
                auth::DEVICE_COOKIE,
                auth::DEVICE_LIFETIME.as_secs()
            );
            if let Ok(v) = http::HeaderValue::from_str(&cookie) {
                res.append_header(http::header::SET_COOKIE, v);
            }
        }
        tracing::info!(user = %user.username, source = %who.source, "signed in");
        Ok(Me {
            username: user.username,
            role: user.role,
            sso: user.sso,
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
                // `next` goes back through the allow-list (it is only kept when it is a page of ours).
                let back = crate::model::after_sign_in(next.as_deref());
                leptos_axum::redirect(&format!(
                    "/sign-in?error={}&next={}",
                    crate::pages::encode_query(&message),
                    crate::pages::encode_query(&back)
                ))
            }
        }
    }
    session::respond(result)
}

#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    use crate::ssr::session;
    let sso = session::current_user()
        .await
        .ok()
        .flatten()
        .is_some_and(|u| u.sso);
    session::end().await?;
    if sso {
        // The sign-in page then offers the provider's own end-session (where it has one).
        session::note_signed_out_of_sso().await;
    }
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
        sso: u.sso,
    }))
}

/// Changes the signed-in user's own password (the current one is required). Every other session of the user
/// ends; this one continues.
#[server(endpoint = "change_password")]
pub async fn change_password(current: String, new: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::ssr::{passwords, session, state::state};
    session::respond(
        async {
            let user = session::require(Role::Viewer).await?;
            if user.sso {
                return Err(AppError::Conflict(
                    "you sign in through the OpenID provider: change your password there".into(),
                ));
            }
            let st = state()?;
            recheck_password(&user, &current, "current").await?;
            let hash = passwords::hash_async(&new).await.map_err(|e| match e {
                passwords::Error::Busy => AppError::Busy(e.to_string()),
                e => AppError::invalid("new", e.to_string()),
            })?;
            st.store.set_password_hash(user.id, &hash).await?;
            session::end_other_sessions(&user).await?;
            tracing::info!(user = %user.username, "password changed; other sessions ended");
            Ok(())
        }
        .await,
    )
}

/// Re-enters the signed-in user's password: for the next few minutes (the session policy's `reauth`) the
/// session may do what gives or exports power (create an admin, change a role, reset a password, export the
/// root's key).
#[server(endpoint = "confirm_password")]
pub async fn confirm_password(password: String) -> Result<(), AppError> {
    use crate::model::Role;
    use crate::ssr::session;
    let plain = session::is_plain_form();
    let result = session::respond(
        async {
            let user = session::require(Role::Viewer).await?;
            if user.sso {
                return Err(AppError::invalid(
                    "password",
                    "you sign in through the OpenID provider: confirm with the provider's button",
                ));
            }
            recheck_password(&user, &password, "password").await?;
            session::mark_reauthenticated().await?;
            tracing::info!(user = %user.username, "re-entered the password");
            Ok(())
        }
        .await,
    );
    if plain {
        let back = use_context::<http::request::Parts>()
            .and_then(|p| {
                p.headers
                    .get(http::header::REFERER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
                    .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
            })
            .map(|p| crate::model::after_sign_in(Some(&p)))
            .unwrap_or_else(|| "/users".into());
        leptos_axum::redirect(&back);
    }
    result
}
