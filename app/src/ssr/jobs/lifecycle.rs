//! A job's life in this console: started, retried, its tasks spawned, taken over from a console that stopped,
//! handed over at shutdown.

use super::*;

impl Jobs {
    /// Creates a job of another flow (`kind`, its spec as JSON, its steps, the lock keys it holds while it
    /// runs) and starts it; refused, storing nothing, when a lock is held.
    pub(crate) async fn start_job(
        &self,
        kind: &str,
        spec_json: &str,
        steps: &[(String, String)],
        locks: &[String],
        user: &str,
        what: &str,
    ) -> Result<String> {
        self.start_job_sealed(kind, spec_json, None, steps, locks, user, what)
            .await
    }

    /// [`Jobs::start_job`] with secrets the job needs (a license key), sealed under the job's id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start_job_sealed(
        &self,
        kind: &str,
        spec_json: &str,
        secret: Option<&[u8]>,
        steps: &[(String, String)],
        locks: &[String],
        user: &str,
        what: &str,
    ) -> Result<String> {
        self.may_change(locks, user).await?;
        let id = random_id();
        let sealed = secret.map(|s| self.inner.secrets.seal(&job_context(&id), s));
        let created = self
            .inner
            .store
            .create_job(&store::NewJob {
                id: &id,
                kind,
                spec: spec_json,
                secret: sealed.as_deref(),
                started_by: user,
                steps,
                clusters: locks,
                lease_owner: &self.inner.replica,
                lease_until: now() + self.inner.lease.as_secs() as i64,
            })
            .await?;
        created.map_err(Error::Busy)?;
        tracing::info!(job = %id, user, kind, "job started");
        self.event(
            &id,
            None,
            None,
            "info",
            &format!("started by {user}: {what}"),
        )
        .await;
        self.spawn(id.clone());
        Ok(id)
    }

    /// Runs a finished (failed) job's unfinished steps again — for one cluster, or all.
    pub async fn retry(
        &self,
        job_id: &str,
        cluster: Option<&ClusterName>,
        user: &str,
    ) -> Result<()> {
        let job = self
            .inner
            .store
            .job(job_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {job_id}")))?;
        if job.state == "running" {
            return Err(Error::Invalid {
                field: "job",
                message: "the job is still running".into(),
            });
        }
        let clusters = locked_of(&job)?;
        if let Some(newer) = self.superseded(&job, &clusters).await? {
            return Err(Error::Conflict(format!(
                "job {} ({}) changed {} after job {} was planned, and retrying it would apply what was planned before \
                 that: start this flow again from its page — its plan starts from the mesh as it runs now",
                newer.id,
                newer.kind,
                locked_of(&newer)?
                    .into_iter()
                    .filter(|c| clusters.contains(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                job.id
            )));
        }
        self.inner
            .store
            .relock(
                job_id,
                &clusters,
                &self.inner.replica,
                now() + self.inner.lease.as_secs() as i64,
            )
            .await?
            .map_err(Error::Busy)?;
        self.inner
            .store
            .reopen_steps(job_id, cluster.map(|c| c.as_str()), true)
            .await?;
        // The fleet steps depend on every cluster: run them again too.
        self.inner
            .store
            .reopen_steps(job_id, Some(FLEET), true)
            .await?;
        let who = cluster.map_or("all clusters".to_string(), |c| format!("cluster {c}"));
        self.event(
            job_id,
            cluster.map(|c| c.as_str()),
            None,
            "info",
            &format!("retry of {who} by {user}"),
        )
        .await;
        self.spawn(job_id.to_string());
        Ok(())
    }

    /// Takes over the jobs whose replica stopped (lease expired) and continues them. Call at start.
    pub async fn resume_orphans(&self) -> Result<Vec<String>> {
        if self.stopping() {
            return Ok(vec![]);
        }
        let ids = self
            .inner
            .store
            .claim_orphaned_jobs(
                &self.inner.replica,
                now() + self.inner.lease.as_secs() as i64,
            )
            .await?;
        for id in &ids {
            self.inner.store.reopen_steps(id, None, false).await?;
            self.event(
                id,
                None,
                None,
                "info",
                "continued after the console that ran it stopped",
            )
            .await;
            tracing::info!(job = %id, "resuming a job");
            self.spawn(id.clone());
        }
        Ok(ids)
    }

    /// Stops every job task of this process at once, as a crash would (for tests of resumption).
    pub fn abort_all(&self) {
        for (_, t) in self.take_tasks() {
            t.abort();
        }
    }

    /// This process's job tasks, taken out of the list.
    fn take_tasks(&self) -> Vec<(String, tokio::task::JoinHandle<()>)> {
        self.inner
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }

    /// How many jobs this console is running now.
    pub fn running_here(&self) -> usize {
        self.inner
            .tasks
            .lock()
            .map(|t| t.iter().filter(|(_, h)| !h.is_finished()).count())
            .unwrap_or(0)
    }

    /// Whether this console is stopping (no new step, no new job task).
    pub fn stopping(&self) -> bool {
        self.inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The console is stopping: every running job finishes the step it is on and stops before the next
    /// (or ends, if that was its last); after `grace` the ones still inside a step are stopped there. Then
    /// every job this console held is released at once — its lease ended, a line in its log — so another
    /// console (another replica now, or this one's successor at its start) continues it from its first
    /// step not done, instead of waiting for the lease to run out. Steps are idempotent (server-side apply,
    /// `helm upgrade --install`), so a step cut short simply runs again.
    pub async fn hand_over(&self, grace: Duration) -> HandOver {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let running = self.running_here();
            if running == 0 || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut out = HandOver::default();
        for (id, h) in self.take_tasks() {
            if !h.is_finished() {
                h.abort();
                out.cut.push(id);
            }
        }
        match self.inner.store.release_leases(&self.inner.replica).await {
            Ok(ids) => out.released = ids,
            Err(e) => {
                tracing::error!(
                    "releasing the jobs' leases (they are taken over when the leases run out): {e}"
                )
            }
        }
        for id in &out.released {
            let message = if out.cut.contains(id) {
                "this console stopped while a step ran; another console runs that step again and continues"
            } else {
                "this console is stopping: handed over before the next step; another console continues"
            };
            self.event(id, None, None, "info", message).await;
            tracing::info!(job = %id, "{message}");
        }
        out
    }

    pub(super) fn spawn(&self, id: String) {
        if self.stopping() {
            // Started while the console stops: leave it to another console, at once.
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.inner.store.release_leases(&this.inner.replica).await {
                    tracing::warn!(job = %id, "releasing the job's lease: {e}");
                }
            });
            return;
        }
        let this = self.clone();
        let job = id.clone();
        // The job and its lease renewal live in one task: when the task stops, so does the lease (and any
        // helm it started, which is killed when dropped).
        let handle = tokio::spawn(async move {
            let heartbeat = async {
                let lease = this.inner.lease;
                let mut held_until = now() + lease.as_secs() as i64;
                loop {
                    tokio::time::sleep(lease / 3).await;
                    let until = now() + lease.as_secs() as i64;
                    match this
                        .inner
                        .store
                        .renew_lease(&id, &this.inner.replica, until)
                        .await
                    {
                        Ok(true) => held_until = until,
                        Ok(false) => {
                            // Another replica took the job over: stop here.
                            tracing::warn!(job = %id, "lost the job's lease to another console");
                            return;
                        }
                        // A database hiccup is no reason to stop: the lease still holds until `held_until`,
                        // so keep trying; stop only once it has run out (another console may take over).
                        Err(e) if now() + 1 < held_until => {
                            tracing::warn!(job = %id, "renewing the job's lease (will retry): {e}");
                        }
                        Err(e) => {
                            tracing::error!(job = %id, "the job's lease ran out while the database did not answer: {e}");
                            return;
                        }
                    }
                }
            };
            // The job acts for whoever started it (per-user rights, `acting`).
            let actor = match this.inner.store.job(&id).await {
                Ok(Some(j)) if this.inner.registry.impersonates() => {
                    crate::ssr::acting::of_username(&this.inner.store, &j.started_by).await
                }
                _ => None,
            };
            tokio::select! {
                () = crate::ssr::acting::scope(actor, this.run(&id)) => {}
                () = heartbeat => {}
            }
        });
        if let Ok(mut t) = self.inner.tasks.lock() {
            t.retain(|(_, h)| !h.is_finished());
            t.push((job, handle));
        }
    }
}
