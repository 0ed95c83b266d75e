//! What a running job writes: events, step states and the updates its followers see, each write retried
//! through a restart of the database; the clusters it works on.

use super::*;

impl Jobs {
    /// Runs a database write, retrying for a few seconds when it fails (a restart, a lost connection).
    pub(super) async fn recorded<T, F, Fut>(&self, what: &str, mut write: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = store::Result<T>>,
    {
        let mut delay = Duration::from_millis(200);
        for attempt in 0.. {
            match write().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < 6 => {
                    tracing::warn!("recording {what} (attempt {}): {e}", attempt + 1);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                }
                Err(e) => return Err(Error::Unrecorded(format!("{what}: {e}"))),
            }
        }
        unreachable!("the loop returns")
    }

    /// Tells live pages about a change of job `id`, in this process and the others.
    pub(super) async fn publish(&self, update: Update) {
        let id = update.job_id.clone();
        let _ = self.inner.updates.send(update);
        self.inner.notifier.publish(Notice::Job { id }).await;
    }

    /// Records an event of a job (retried; an event that still cannot be written is logged and dropped —
    /// use [`Jobs::event_or_stop`] where the job must not go on without it).
    pub(crate) async fn event(
        &self,
        job: &str,
        cluster: Option<&str>,
        step: Option<&str>,
        level: &str,
        message: &str,
    ) {
        if let Err(e) = self.event_or_stop(job, cluster, step, level, message).await {
            tracing::error!(job, "{e}; the event was: {message}");
        }
    }

    async fn event_or_stop(
        &self,
        job: &str,
        cluster: Option<&str>,
        step: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<()> {
        let st = &self.inner.store;
        let id = self
            .recorded("an event", || {
                st.add_event(job, cluster, step, level, message)
            })
            .await?;
        self.publish(Update {
            job_id: job.into(),
            cluster: cluster.map(String::from),
            step: step.map(String::from),
            kind: UpdateKind::Event {
                id,
                level: level.into(),
                message: message.into(),
            },
        })
        .await;
        Ok(())
    }

    /// Records a step's state (retried). When it cannot be written the job must stop: going on would apply
    /// more than the database says, and a failure would be lost.
    pub(crate) async fn set_step(
        &self,
        job: &str,
        cluster: &str,
        step: &str,
        state: &str,
        changed: Option<bool>,
        message: Option<&str>,
    ) -> Result<()> {
        if state == "running" && self.stopping() {
            return Err(Error::HandedOver);
        }
        let st = &self.inner.store;
        self.recorded("a step", || {
            st.set_step(job, cluster, step, state, changed, message)
        })
        .await?;
        self.publish(Update {
            job_id: job.into(),
            cluster: Some(cluster.into()),
            step: Some(step.into()),
            kind: UpdateKind::Step {
                state: state.into(),
                message: message.map(String::from),
            },
        })
        .await;
        Ok(())
    }

    pub(crate) async fn target(&self, name: &ClusterName) -> std::result::Result<Target, String> {
        let creds = self
            .inner
            .registry
            .credentials_acting(name)
            .await
            .map_err(|e| e.to_string())?;
        let client = mesh::connect::client(&creds)
            .await
            .map_err(|p| format!("cluster {name}: {p}"))?;
        Ok(Target {
            name: name.clone(),
            client,
            creds,
        })
    }
}
