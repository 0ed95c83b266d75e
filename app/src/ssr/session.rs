//! Sessions: who is signed in. Sessions live in the database (tower-sessions with the sqlx store of the
//! configured backend), so every replica sees them. The session holds the user id, the sign-in time, the
//! user's session epoch at sign-in and when the password was last re-entered; the user is read again on every
//! request, so disabling a user or changing a role takes effect at once, and a password change, a reset or a
//! disable (each raises the epoch) ends every other session of the user. Idle expiry is the cookie/store
//! expiry; the absolute limit is checked here. Live streams are told when their session ends (`notify`).

use std::time::Duration;

use leptos::prelude::*;
use tower_sessions::Session;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::now;
use super::state::state;
use super::store::User;
use crate::model::{AppError, Role};

const USER_ID: &str = "user_id";
const SIGNED_IN_AT: &str = "signed_in_at";
const EPOCH: &str = "epoch";
const REAUTH_AT: &str = "reauth_at";
const UNTIL: &str = "until";

/// How sessions behave; set by the server from its configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Sign out after this long without a request.
    pub idle: Duration,
    /// Sign out this long after signing in, whatever the activity.
    pub absolute: Duration,
    /// Mark the cookie Secure (the console is served over TLS).
    pub secure: bool,
    /// How long a re-entered password (or the sign-in itself) counts for actions that grant or export power.
    pub reauth: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            idle: Duration::from_secs(8 * 3600),
            absolute: Duration::from_secs(24 * 3600),
            secure: false,
            reauth: Duration::from_secs(5 * 60),
        }
    }
}

/// The cookie's name.
pub const COOKIE: &str = "meshdeck_session";

/// The request's session (server functions).
pub(crate) async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| super::errors::incident(format!("no session layer: {e}")))
}

fn session_error(e: tower_sessions::session::Error) -> AppError {
    super::errors::incident(format!("session store: {e}"))
}

/// The signed-in user, if any (and still enabled, within the absolute limit).
pub async fn current_user() -> Result<Option<User>, AppError> {
    user_in(&session().await?, &state()?).await
}

/// The user signed in with `session` (for handlers outside server functions, such as live streams).
pub async fn user_in(
    session: &Session,
    st: &super::state::AppState,
) -> Result<Option<User>, AppError> {
    let Some(id) = session.get::<i64>(USER_ID).await.map_err(session_error)? else {
        return Ok(None);
    };
    let signed_in_at = session
        .get::<i64>(SIGNED_IN_AT)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    let until = session
        .get::<i64>(UNTIL)
        .await
        .map_err(session_error)?
        .unwrap_or(i64::MAX);
    if now() - signed_in_at > st.sessions.absolute.as_secs() as i64 || now() > until {
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    }
    let epoch = session
        .get::<i64>(EPOCH)
        .await
        .map_err(session_error)?
        .unwrap_or(0);
    match st.store.user(id).await? {
        Some(user) if !user.disabled && user.session_epoch == epoch => Ok(Some(user)),
        _ => {
            session.flush().await.map_err(session_error)?;
            Ok(None)
        }
    }
}

/// Whether the session behind a live stream still stands: read again from the store (the stream's own copy
/// of the session was loaded when it opened), with its user still enabled and in the same epoch, and the
/// session neither idle-expired nor past the absolute limit.
pub async fn still_valid(
    backend: &SessionBackend,
    id: Option<Id>,
    st: &super::state::AppState,
) -> bool {
    let Some(id) = id else { return false };
    let Ok(Some(record)) = backend.load(&id).await else {
        return false;
    };
    if record.expiry_date <= time::OffsetDateTime::now_utc() {
        return false;
    }
    let get = |k: &str| record.data.get(k).and_then(serde_json::Value::as_i64);
    let (Some(user), Some(at)) = (get(USER_ID), get(SIGNED_IN_AT)) else {
        return false;
    };
    if now() - at > st.sessions.absolute.as_secs() as i64
        || get(UNTIL).is_some_and(|until| now() > until)
    {
        return false;
    }
    matches!(st.store.user(user).await, Ok(Some(u)) if !u.disabled && u.session_epoch == get(EPOCH).unwrap_or(0))
}

/// Records that the signed-in user just re-entered their password.
pub async fn mark_reauthenticated() -> Result<(), AppError> {
    mark_reauthenticated_in(&session().await?).await
}

/// Records that the user of `session` just proved it is them (a password, or the provider again).
pub async fn mark_reauthenticated_in(session: &Session) -> Result<(), AppError> {
    session
        .insert(REAUTH_AT, now())
        .await
        .map_err(session_error)
}

/// For actions that grant or export power: the password must have been re-entered within the policy's
/// `reauth` window (default 5 minutes), or the session begun that recently.
pub async fn require_recent_auth() -> Result<(), AppError> {
    let s = session().await?;
    let latest = s
        .get::<i64>(REAUTH_AT)
        .await
        .map_err(session_error)?
        .into_iter()
        .chain(s.get::<i64>(SIGNED_IN_AT).await.map_err(session_error)?)
        .max()
        .unwrap_or(0);
    if now() - latest <= state()?.sessions.reauth.as_secs() as i64 {
        Ok(())
    } else {
        Err(AppError::ReauthRequired(
            "this action gives or exports power: confirm it is you (your password, or the provider for single sign-on)"
                .into(),
        ))
    }
}

/// The first line of every server function that needs a user: the signed-in user with at least `needed`,
/// or Unauthenticated / Forbidden (with the HTTP status set).
pub async fn require(needed: Role) -> Result<User, AppError> {
    let user = current_user().await?.ok_or(AppError::Unauthenticated)?;
    if user.role < needed {
        return Err(AppError::Forbidden {
            needed,
            have: user.role,
        });
    }
    Ok(user)
}

/// Starts a session for `user`: a new session id (no fixation), then the user id and sign-in time.
pub async fn begin(user: &User) -> Result<(), AppError> {
    begin_in(&session().await?, user, None).await
}

/// Starts a session for `user` in `session` (for handlers outside server functions); `until` caps it (a
/// single sign-on session lasts at most `--oidc-session-max`, so a user removed from a group loses the role
/// by then).
pub async fn begin_in(session: &Session, user: &User, until: Option<i64>) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    super::oidc::forget_outcomes(session).await;
    session
        .insert(USER_ID, user.id)
        .await
        .map_err(session_error)?;
    session
        .insert(SIGNED_IN_AT, now())
        .await
        .map_err(session_error)?;
    session
        .insert(EPOCH, user.session_epoch)
        .await
        .map_err(session_error)?;
    match until {
        Some(t) => session.insert(UNTIL, t).await.map_err(session_error)?,
        None => {
            session.remove::<i64>(UNTIL).await.map_err(session_error)?;
        }
    }
    Ok(())
}

/// Ends the session (deleted from the store, cookie cleared) and the live streams that belong to it.
pub async fn end() -> Result<(), AppError> {
    let session = session().await?;
    let id = session.id();
    session.flush().await.map_err(session_error)?;
    if let Some(id) = id {
        state()?
            .notifier
            .publish(super::notify::Notice::SessionEnded {
                session: id.to_string(),
            })
            .await;
    }
    Ok(())
}

/// Remembers, in the browser's fresh session, that it signed out of a single sign-on session.
pub async fn note_signed_out_of_sso() {
    if let Ok(s) = session().await {
        let _ = s.insert(super::oidc::SIGNED_OUT, true).await;
    }
}

/// Ends every session of `user` but the caller's own, which continues under the new epoch (after a password
/// change). The store has already raised the epoch.
pub async fn end_other_sessions(user: &User) -> Result<(), AppError> {
    let st = state()?;
    st.notifier
        .publish(super::notify::Notice::UserSessionsEnded { user: user.id })
        .await;
    let fresh = st
        .store
        .user(user.id)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    begin(&fresh).await
}

/// Ends every session of `user` (after an admin's reset or disable). The store has already raised the epoch.
pub async fn end_all_sessions(user_id: i64) -> Result<(), AppError> {
    state()?
        .notifier
        .publish(super::notify::Notice::UserSessionsEnded { user: user_id })
        .await;
    Ok(())
}

/// True when the request is a plain HTML form post (JavaScript off): errors then travel in a redirect.
pub fn is_plain_form() -> bool {
    use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// Sets the HTTP status of a failed server function (not for plain form posts, which are redirected).
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result
        && !is_plain_form()
        && let Some(res) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(code) = http::StatusCode::from_u16(e.status())
    {
        res.set_status(code);
    }
    result
}

/// The session store on the console's own database, whichever backend it is.
#[derive(Debug, Clone)]
pub enum SessionBackend {
    Sqlite(tower_sessions_sqlx_store::SqliteStore),
    Postgres(tower_sessions_sqlx_store::PostgresStore),
}

#[async_trait::async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.create(record).await,
            SessionBackend::Postgres(s) => s.create(record).await,
        }
    }

    /// Saves a session that exists (most often only its idle expiry moves on). When the database is full,
    /// that is not worth failing the request over — the request's own write fails and says why — so the
    /// session keeps its last saved state and the request goes on. A new session (`create`) is never
    /// swallowed like this.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let saved = match self {
            SessionBackend::Sqlite(s) => s.save(record).await,
            SessionBackend::Postgres(s) => s.save(record).await,
        };
        match saved {
            Err(session_store::Error::Backend(m))
                if m.contains("disk is full") || m.contains("No space left") =>
            {
                tracing::warn!("a session could not be saved, the database is full: {m}");
                Ok(())
            }
            other => other,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite(s) => s.load(id).await,
            SessionBackend::Postgres(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.delete(id).await,
            SessionBackend::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for SessionBackend {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.delete_expired().await,
            SessionBackend::Postgres(s) => s.delete_expired().await,
        }
    }
}

/// The session layer: cookie `meshdeck_session`, HttpOnly, SameSite=Lax (no cross-site posts), Secure when
/// served over TLS, expiring after `policy.idle` without a request.
pub fn layer(
    backend: SessionBackend,
    policy: Policy,
) -> tower_sessions::SessionManagerLayer<SessionBackend> {
    let idle = time::Duration::seconds(policy.idle.as_secs() as i64);
    tower_sessions::SessionManagerLayer::new(backend)
        .with_name(COOKIE)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(policy.secure)
        .with_path("/")
        .with_expiry(tower_sessions::Expiry::OnInactivity(idle))
}
