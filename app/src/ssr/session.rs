//! Sessions: who is signed in. Sessions live in the database (tower-sessions with the sqlx store of the
//! configured backend), so every replica sees them. The session holds only the user id and the sign-in
//! time; the user is read again on every request, so disabling a user or changing a role takes effect at
//! once. Idle expiry is the cookie/store expiry; the absolute limit is checked here.

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

/// How sessions behave; set by the server from its configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Sign out after this long without a request.
    pub idle: Duration,
    /// Sign out this long after signing in, whatever the activity.
    pub absolute: Duration,
    /// Mark the cookie Secure (the console is served over TLS).
    pub secure: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            idle: Duration::from_secs(8 * 3600),
            absolute: Duration::from_secs(24 * 3600),
            secure: false,
        }
    }
}

/// The cookie's name.
pub const COOKIE: &str = "meshdeck_session";

async fn session() -> Result<Session, AppError> {
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
    if now() - signed_in_at > st.sessions.absolute.as_secs() as i64 {
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    }
    match st.store.user(id).await? {
        Some(user) if !user.disabled => Ok(Some(user)),
        _ => {
            session.flush().await.map_err(session_error)?;
            Ok(None)
        }
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
    let session = session().await?;
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(USER_ID, user.id)
        .await
        .map_err(session_error)?;
    session
        .insert(SIGNED_IN_AT, now())
        .await
        .map_err(session_error)?;
    Ok(())
}

/// Ends the session (deleted from the store, cookie cleared).
pub async fn end() -> Result<(), AppError> {
    session().await?.flush().await.map_err(session_error)
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

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(s) => s.save(record).await,
            SessionBackend::Postgres(s) => s.save(record).await,
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
