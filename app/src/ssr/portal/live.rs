//! `GET /live/portal/<team>`: a team's page, live. `event: requests` carries the team's requests
//! (`Vec<PortalRequestView>`) whenever one is made, decided, withdrawn, or its job moves; `event: drift`
//! carries what the cluster watches say of everything the portal keeps applied for the team
//! (`Vec<PortalDrift>`) whenever the topology publishes a change that alters it. Both are sent at first.
//! Pushed, never polled; the stream ends with its session (see `ssr::live`). For the team's members and
//! platform operators.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use super::{Portal, watched_drift};
use crate::model::{AppError, ClusterName};
use crate::ssr::live::{Owner, RECHECK, error};
use crate::ssr::notify::Notice;
use crate::ssr::session::user_in;
use crate::ssr::state::AppState;
use crate::ssr::store::User;

struct TeamWatch {
    owner: Owner,
    state: AppState,
    portal: Portal,
    user: User,
    team: String,
    notices: tokio::sync::broadcast::Receiver<Notice>,
    frames: tokio::sync::watch::Receiver<std::sync::Arc<crate::ssr::topology::Frame>>,
    want_requests: bool,
    want_drift: bool,
    sent_requests: Option<String>,
    sent_drift: Option<String>,
}

pub async fn portal_stream(
    State(state): State<AppState>,
    session: Session,
    Path(team): Path<String>,
) -> Response {
    let notices = state.notifier.subscribe();
    let frames = state.topology.subscribe();
    let user = match user_in(&session, &state).await {
        Ok(Some(u)) => u,
        Ok(None) => return error(AppError::Unauthenticated),
        Err(e) => return error(e),
    };
    let portal = Portal::new(&state);
    // Who may see the team, before anything of it is said.
    if let Err(e) = portal.requests(&user, Some(&team), true).await {
        return error(e);
    }
    let owner = match Owner::open(state.clone(), &session).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let watch = TeamWatch {
        owner,
        state,
        portal,
        user,
        team,
        notices,
        frames,
        want_requests: true,
        want_drift: true,
        sent_requests: None,
        sent_drift: None,
    };
    let stream = futures::stream::unfold(watch, TeamWatch::next);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

impl TeamWatch {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, TeamWatch)> {
        loop {
            if self.want_requests {
                self.want_requests = false;
                if !self.owner.still_valid(false).await {
                    return None;
                }
                match self
                    .portal
                    .requests(&self.user, Some(&self.team), false)
                    .await
                {
                    Ok(list) => {
                        let text = serde_json::to_string(&list).unwrap_or_default();
                        if self.sent_requests.as_deref() != Some(text.as_str()) {
                            self.sent_requests = Some(text.clone());
                            return Some((Ok(Event::default().event("requests").data(text)), self));
                        }
                    }
                    // The team is gone, or the user left it.
                    Err(_) => return None,
                }
            }
            if self.want_drift {
                self.want_drift = false;
                let rows = self
                    .state
                    .store
                    .portal_objects(Some(&self.team))
                    .await
                    .unwrap_or_default();
                let topology = &self.state.topology;
                let drift = watched_drift(&rows, |c| {
                    ClusterName::new(c).ok().and_then(|n| topology.snapshot(&n))
                });
                let text = serde_json::to_string(&drift).unwrap_or_default();
                if self.sent_drift.as_deref() != Some(text.as_str()) {
                    self.sent_drift = Some(text.clone());
                    return Some((Ok(Event::default().event("drift").data(text)), self));
                }
            }
            let until = self.owner.checked + RECHECK;
            tokio::select! {
                changed = self.frames.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    self.frames.borrow_and_update();
                    self.want_drift = true;
                }
                n = self.notices.recv() => match n {
                    Ok(n) if self.owner.ended_by(&n) => return None,
                    Ok(Notice::Portal { team }) if team == self.team => {
                        // What was applied may have changed too.
                        self.want_requests = true;
                        self.want_drift = true;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => {
                        self.want_requests = true;
                        self.want_drift = true;
                    }
                    Err(RecvError::Closed) => return None,
                },
                () = tokio::time::sleep_until(until) => {
                    if !self.owner.still_valid(true).await {
                        return None;
                    }
                    // A notice lost while the database restarted: read again.
                    self.want_requests = true;
                }
            }
        }
    }
}
