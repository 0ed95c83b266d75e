//! Notices between the parts of the console, and between replicas: a job made progress, a session ended, a
//! user's sessions ended. Live streams wait on these instead of polling the database. In one process they
//! travel on a broadcast channel; on Postgres (several replicas) each notice is also sent with `pg_notify` and
//! every replica's listener passes on what the others sent, so a browser following a job run by another
//! replica, or signed out through another replica, hears of it at once.
//!
//! Also here: the bound on open live streams, per user and in total, so streams cannot exhaust the console.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::store::Store;

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A job changed (a step, an event, its end).
    Job { id: String },
    /// A team's requests or what the portal applied for it changed.
    Portal { team: String },
    /// This session ended (signed out).
    SessionEnded { session: String },
    /// Every session of this user ended (password changed or reset, user disabled).
    UserSessionsEnded { user: i64 },
    /// A check report was kept (a run from the Checks page, or a job's verification): the topology reads
    /// the licenses it found.
    Checked { report: String },
    /// A drift comparison of a cluster ran (or a re-apply ended it): the objects that differed from what
    /// Meshdeck applied, by kind and name (empty: none). The topology shows it.
    Drift {
        cluster: String,
        drifted: Vec<String>,
    },
    /// This console is stopping: its live streams end (browsers reconnect, to another replica or to the
    /// next console). Local only, never passed to other replicas.
    #[serde(skip)]
    Stopping,
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    notice: Notice,
}

/// The Postgres channel notices travel on between replicas.
pub const CHANNEL: &str = "meshdeck_notices";

/// The notifier (cheap to clone).
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Notice>,
    store: Store,
    replica: String,
    streams: Mutex<Streams>,
    limits: StreamLimits,
}

/// How many live streams may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    pub per_user: usize,
    pub total: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            per_user: 32,
            total: 2000,
        }
    }
}

#[derive(Default)]
struct Streams {
    total: usize,
    per_user: HashMap<i64, usize>,
}

/// Why a stream was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("you have {0} live views open; close some tabs and reload")]
    User(usize),
    #[error("the console has {0} live views open, its limit; try again later")]
    Total(usize),
}

/// An open stream, counted until dropped.
pub struct StreamSlot {
    inner: Arc<Inner>,
    user: i64,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut s = self
            .inner
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_user.remove(&self.user);
            }
        }
    }
}

impl Notifier {
    pub fn new(store: Store, replica: String, limits: StreamLimits) -> Self {
        Notifier {
            inner: Arc::new(Inner {
                tx: broadcast::channel(4096).0,
                store,
                replica,
                streams: Mutex::new(Streams::default()),
                limits,
            }),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.tx.subscribe()
    }

    /// Tells this process at once, and the other replicas (Postgres) as soon as the database passes it on.
    pub async fn publish(&self, notice: Notice) {
        let _ = self.inner.tx.send(notice.clone());
        if let Some(pool) = self.inner.store.postgres() {
            let payload = serde_json::to_string(&Envelope {
                from: self.inner.replica.clone(),
                notice,
            })
            .unwrap_or_default();
            if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(pool)
                .await
            {
                tracing::warn!("passing a notice to the other replicas: {e}");
            }
        }
    }

    /// Ends every live stream of this process (the console is stopping), so that a graceful shutdown is not
    /// held up by browsers following a job or the topology.
    pub fn stopping(&self) {
        let _ = self.inner.tx.send(Notice::Stopping);
    }

    /// Passes on what other replicas publish (Postgres only; nothing to do on SQLite). Reconnects after a
    /// database outage; a gap is covered by the streams' own periodic checks.
    pub fn start(&self) {
        let Some(pool) = self.inner.store.postgres().cloned() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut delay = std::time::Duration::from_millis(500);
            loop {
                let listener = async {
                    let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
                    l.listen(CHANNEL).await?;
                    Ok::<_, sqlx::Error>(l)
                };
                match listener.await {
                    Ok(mut l) => {
                        delay = std::time::Duration::from_millis(500);
                        loop {
                            let Some(inner) = weak.upgrade() else { return };
                            match l.try_recv().await {
                                Ok(Some(n)) => {
                                    if let Ok(env) = serde_json::from_str::<Envelope>(n.payload())
                                        && env.from != inner.replica
                                    {
                                        let _ = inner.tx.send(env.notice);
                                    }
                                }
                                // The connection dropped (and is re-established by the listener): notices
                                // may have been missed; streams re-read their state on their own schedule.
                                Ok(None) => tracing::debug!("notice listener reconnected"),
                                Err(e) => {
                                    tracing::warn!("notice listener: {e}");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("listening for notices: {e}"),
                }
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        });
    }

    /// A slot for one more live stream of `user`, or why not.
    pub fn open_stream(&self, user: i64) -> Result<StreamSlot, Refused> {
        let mut s = self
            .inner
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let limits = self.inner.limits;
        if s.total >= limits.total {
            return Err(Refused::Total(s.total));
        }
        let mine = s.per_user.get(&user).copied().unwrap_or(0);
        if mine >= limits.per_user {
            return Err(Refused::User(mine));
        }
        s.total += 1;
        *s.per_user.entry(user).or_default() += 1;
        Ok(StreamSlot {
            inner: self.inner.clone(),
            user,
        })
    }

    /// Open streams, in total.
    pub fn open_streams(&self) -> usize {
        self.inner
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_travel_as_tagged_json() {
        let e = Envelope {
            from: "r1".into(),
            notice: Notice::UserSessionsEnded { user: 7 },
        };
        let s = serde_json::to_string(&e).expect("json");
        assert_eq!(s, r#"{"from":"r1","kind":"user_sessions_ended","user":7}"#);
        let back: Envelope = serde_json::from_str(&s).expect("back");
        assert_eq!(back.notice, Notice::UserSessionsEnded { user: 7 });
    }
}
