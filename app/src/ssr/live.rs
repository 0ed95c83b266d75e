//! Live progress for browsers, over Server-Sent Events: a job (`/live/jobs/<id>`) and the topology
//! (`/live/topology`).
//!
//! Streams are pushed, not polled: a job stream wakes when the job service (or, on Postgres, another replica
//! through `notify`) says the job changed, then reads it once; the topology stream sends each published frame,
//! serialised once for every subscriber (`topology::Frame`). Each message of a job (`event: job`) is a
//! `JobDetail` with the steps and the events since the last message; the topology sends the graph once
//! (`event: graph`), then small updates (`event: update`). Nothing is sent while nothing changes (a comment
//! every 15 s keeps proxies from closing the connection).
//!
//! Streams end when their session does: at once on sign-out, a password change or reset, or a disable (the
//! notices of `notify`), and otherwise at the next check (every 30 s), which reads the session again from the
//! store — so idle expiry and the absolute limit end them too. Open streams are bounded per user and in total.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use super::jobs::Jobs;
use super::notify::{Notice, StreamSlot};
use super::session::{still_valid, user_in};
use super::state::AppState;
use crate::model::AppError;

/// How often a stream checks its session in the store (and a job stream re-reads its job, for a notice that
/// may have been lost while the database restarted).
pub(crate) const RECHECK: Duration = Duration::from_secs(30);

/// What ties a stream to its session.
pub(crate) struct Owner {
    state: AppState,
    session_id: Option<String>,
    user: i64,
    pub(crate) checked: tokio::time::Instant,
    _slot: StreamSlot,
}

impl Owner {
    /// Opens a stream for the signed-in user of `session`, within the limits.
    pub(crate) async fn open(state: AppState, session: &Session) -> Result<Owner, Response> {
        if state.jobs.stopping() {
            // It would miss the notice that ends the others: the browser reconnects to another console.
            return Err(error(AppError::Busy("this console is stopping".into())));
        }
        let user = match user_in(session, &state).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(error(AppError::Unauthenticated)),
            Err(e) => return Err(error(e)),
        };
        let slot = match state.notifier.open_stream(user.id) {
            Ok(s) => s,
            Err(e @ super::notify::Refused::User(_)) => {
                return Err(error(AppError::Throttled(e.to_string())));
            }
            Err(e) => return Err(error(AppError::Busy(e.to_string()))),
        };
        Ok(Owner {
            state,
            session_id: session.id().map(|i| i.to_string()),
            user: user.id,
            checked: tokio::time::Instant::now(),
            _slot: slot,
        })
    }

    /// Whether a notice ends this stream.
    pub(crate) fn ended_by(&self, n: &Notice) -> bool {
        match n {
            Notice::SessionEnded { session } => self.session_id.as_deref() == Some(session),
            Notice::UserSessionsEnded { user } => *user == self.user,
            Notice::Stopping => true,
            Notice::Job { .. }
            | Notice::Portal { .. }
            | Notice::Checked { .. }
            | Notice::Drift { .. } => false,
        }
    }

    /// Reads the session again from the store when [`RECHECK`] has passed: false when it no longer stands.
    pub(crate) async fn still_valid(&mut self, force: bool) -> bool {
        if !force && self.checked.elapsed() < RECHECK {
            return true;
        }
        self.checked = tokio::time::Instant::now();
        let id = self
            .session_id
            .as_deref()
            .and_then(|s| s.parse::<tower_sessions::session::Id>().ok());
        still_valid(&self.state.session_store, id, &self.state).await
    }
}

struct Follow {
    owner: Owner,
    jobs: Jobs,
    notices: tokio::sync::broadcast::Receiver<Notice>,
    id: String,
    after: i64,
    last: Option<String>,
    first: bool,
}

/// What woke a stream up.
enum Wake {
    Changed,
    Ended,
    Recheck,
}

impl Follow {
    /// Waits until this job changes (a notice), the session ends, or it is time to check again; then lets a
    /// burst of changes settle.
    async fn wake(&mut self) -> Wake {
        let until = self.owner.checked + RECHECK;
        loop {
            let next = tokio::time::timeout_at(until, self.notices.recv()).await;
            match next {
                Err(_) => return Wake::Recheck,
                Ok(Ok(Notice::Job { id })) if id == self.id => break,
                Ok(Ok(n)) if self.owner.ended_by(&n) => return Wake::Ended,
                Ok(Ok(_)) => {}
                // Fell behind: read the job (something may have changed).
                Ok(Err(RecvError::Lagged(_))) => break,
                Ok(Err(RecvError::Closed)) => return Wake::Ended,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        loop {
            match self.notices.try_recv() {
                Ok(n) if self.owner.ended_by(&n) => return Wake::Ended,
                Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        Wake::Changed
    }

    /// The next message: the job when it changed; None ends the stream (job gone, session over).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Follow)> {
        loop {
            if !self.first {
                match self.wake().await {
                    Wake::Ended => return None,
                    Wake::Recheck => {
                        if !self.owner.still_valid(true).await {
                            return None;
                        }
                    }
                    Wake::Changed => {
                        if !self.owner.still_valid(false).await {
                            return None;
                        }
                    }
                }
            }
            self.first = false;
            let detail = match self.jobs.detail(&self.id, self.after).await {
                Ok(d) => d,
                Err(super::jobs::Error::NotFound(_)) => return None,
                Err(e) => {
                    tracing::warn!(job = %self.id, "live job stream: {e}");
                    continue;
                }
            };
            let shape = serde_json::to_string(&(&detail.job, &detail.steps)).unwrap_or_default();
            if detail.events.is_empty() && self.last.as_deref() == Some(shape.as_str()) {
                continue;
            }
            self.last = Some(shape);
            if let Some(e) = detail.events.last() {
                self.after = e.id;
            }
            let data = serde_json::to_string(&detail).unwrap_or_default();
            return Some((Ok(Event::default().event("job").data(data)), self));
        }
    }
}

/// `GET /live/jobs/<id>`: the job's progress as it happens, for any signed-in user.
pub async fn job_stream(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    // Subscribe before the first read, so nothing between the two is missed.
    let notices = state.notifier.subscribe();
    let jobs = state.jobs.clone();
    // Who asks comes first: nothing about a job is said to someone not signed in.
    let owner = match Owner::open(state, &session).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return error(AppError::NotFound(format!("job {}", id.escape_debug())));
    }
    if let Err(e) = jobs.detail(&id, i64::MAX).await {
        return error(e.into());
    }
    let follow = Follow {
        owner,
        jobs,
        notices,
        id,
        after: 0,
        last: None,
        first: true,
    };
    let stream = futures::stream::unfold(follow, Follow::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

pub(crate) fn error(e: AppError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(e),
    )
        .into_response()
}

struct Watching {
    owner: Owner,
    frames: tokio::sync::watch::Receiver<Arc<super::topology::Frame>>,
    notices: tokio::sync::broadcast::Receiver<Notice>,
    /// The version the browser holds (None: nothing yet).
    sent: Option<u64>,
}

impl Watching {
    /// The next message: the whole graph first (or after falling behind), then each update as it is
    /// published; None ends the stream (session over, console stopping).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watching)> {
        loop {
            if self.sent.is_some() {
                let until = self.owner.checked + RECHECK;
                tokio::select! {
                    changed = self.frames.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                    n = self.notices.recv() => {
                        match n {
                            Ok(n) if self.owner.ended_by(&n) => return None,
                            Err(RecvError::Closed) => return None,
                            _ => continue,
                        }
                    }
                    () = tokio::time::sleep_until(until) => {
                        if !self.owner.still_valid(true).await {
                            return None;
                        }
                        continue;
                    }
                }
            }
            if !self.owner.still_valid(false).await {
                return None;
            }
            let frame = self.frames.borrow_and_update().clone();
            if Some(frame.version) == self.sent {
                continue;
            }
            let event = match frame.update_message() {
                Some(text) if self.sent.is_some_and(|v| v + 1 == frame.version) => {
                    Event::default().event("update").data(&*text)
                }
                _ => Event::default()
                    .event("graph")
                    .data(&*frame.graph_message()),
            };
            self.sent = Some(frame.version);
            return Some((Ok(event), self));
        }
    }
}

/// `GET /live/topology`: the topology graph, whole at first, then each change as a small update, for any
/// signed-in user. Messages: `event: graph` with `{"version", "graph"}`, `event: update` with
/// `{"version", "update"}` (an update applies to the graph of `version - 1`).
pub async fn topology_stream(State(state): State<AppState>, session: Session) -> Response {
    let notices = state.notifier.subscribe();
    let frames = state.topology.subscribe();
    let owner = match Owner::open(state, &session).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let watching = Watching {
        owner,
        frames,
        notices,
        sent: None,
    };
    let stream = futures::stream::unfold(watching, Watching::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
