//! Live progress for browsers: a job followed over Server-Sent Events (`/live/jobs/<id>`). The database is
//! the source of truth; the job service's broadcast only wakes the stream up at once, and a 2 s timer covers
//! jobs run by another replica. Each message (`event: job`) is a `JobDetail` with the steps and the events
//! since the last message; nothing is sent while nothing changes (a keep-alive comment every 15 s). The
//! topology is followed the same way (`/live/topology`): the graph once, then the updates that keep it current.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use super::jobs::{Jobs, Update};
use super::session::user_in;
use super::state::AppState;
use crate::model::AppError;

/// How often a stream looks at the database when no wake-up came (progress of other replicas).
const TICK: Duration = Duration::from_secs(2);
/// How often a stream checks that its user may still see it.
const RECHECK: Duration = Duration::from_secs(30);

struct Follow {
    state: AppState,
    session: Session,
    jobs: Jobs,
    id: String,
    after: i64,
    last: Option<String>,
    rx: tokio::sync::broadcast::Receiver<Update>,
    checked: tokio::time::Instant,
    first: bool,
}

impl Follow {
    /// Waits for an update of this job (or the tick), then lets a burst settle.
    async fn wake(&mut self) {
        let id = self.id.clone();
        let rx = &mut self.rx;
        let wait = async {
            loop {
                match rx.recv().await {
                    Ok(u) if u.job_id == id => return,
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        let _ = tokio::time::timeout(TICK, wait).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        while self.rx.try_recv().is_ok() {}
    }

    /// The next message: the job when it changed; None ends the stream (job gone, user signed out).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Follow)> {
        loop {
            if !self.first {
                self.wake().await;
            }
            self.first = false;
            if self.checked.elapsed() > RECHECK {
                self.checked = tokio::time::Instant::now();
                if !matches!(user_in(&self.session, &self.state).await, Ok(Some(_))) {
                    return None;
                }
            }
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
    match user_in(&session, &state).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(AppError::Unauthenticated),
        Err(e) => return error(e),
    }
    let jobs = state.jobs.clone();
    // Subscribe before the first read, so nothing between the two is missed.
    let rx = jobs.subscribe();
    if let Err(e) = jobs.detail(&id, i64::MAX).await {
        return error(e.into());
    }
    let follow = Follow {
        state,
        session,
        jobs,
        id,
        after: 0,
        last: None,
        rx,
        checked: tokio::time::Instant::now(),
        first: true,
    };
    let stream = futures::stream::unfold(follow, Follow::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn error(e: AppError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(e)).into_response()
}

/// How often a topology stream checks that its user may still see it while nothing changes.
const TOPOLOGY_RECHECK: Duration = Duration::from_secs(30);

struct Watching {
    state: AppState,
    session: Session,
    frames: tokio::sync::watch::Receiver<std::sync::Arc<super::topology::Frame>>,
    /// The version the browser holds (None: nothing yet).
    sent: Option<u64>,
    checked: tokio::time::Instant,
}

impl Watching {
    /// The next message: the whole graph first (or after falling behind), then each update as it is
    /// published; None ends the stream (user signed out, console stopping).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watching)> {
        loop {
            if self.sent.is_some() {
                match tokio::time::timeout(TOPOLOGY_RECHECK, self.frames.changed()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => {}
                }
            }
            if self.checked.elapsed() >= TOPOLOGY_RECHECK {
                self.checked = tokio::time::Instant::now();
                if !matches!(user_in(&self.session, &self.state).await, Ok(Some(_))) {
                    return None;
                }
            }
            let frame = self.frames.borrow_and_update().clone();
            if Some(frame.version) == self.sent {
                continue;
            }
            let event = match &frame.update {
                Some(update) if self.sent.is_some_and(|v| v + 1 == frame.version) => {
                    let data = serde_json::json!({"version": frame.version, "update": update});
                    Event::default().event("update").data(data.to_string())
                }
                _ => {
                    let data = serde_json::json!({"version": frame.version, "graph": frame.graph});
                    Event::default().event("graph").data(data.to_string())
                }
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
    match user_in(&session, &state).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(AppError::Unauthenticated),
        Err(e) => return error(e),
    }
    let frames = state.topology.subscribe();
    let watching = Watching {
        state,
        session,
        frames,
        sent: None,
        checked: tokio::time::Instant::now(),
    };
    let stream = futures::stream::unfold(watching, Watching::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
