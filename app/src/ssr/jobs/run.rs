//! Running a setup job: each cluster's steps (clusters in parallel, a failing one stops alone), then the
//! links or the automatic-peering verification, then the checks; every step recorded as it goes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

impl Jobs {
    pub(super) async fn run(&self, id: &str) {
        match self.run_inner(id).await {
            Ok(()) => {}
            // Released by `hand_over`, for another console.
            Err(Error::HandedOver) => tracing::info!(
                job = id,
                "stopped before its next step: this console is stopping"
            ),
            Err(e @ Error::Unrecorded(_)) => {
                // Not finished on purpose: the lease runs out and the job is continued when the database
                // answers (resume_orphans, every 15 s).
                tracing::error!(
                    job = id,
                    "{e}; the job stops here and is continued once the database answers"
                );
            }
            Err(e) => {
                tracing::error!(job = id, "job stopped: {e}");
                self.event(id, None, None, "error", &format!("the job stopped: {e}"))
                    .await;
                let st = &self.inner.store;
                if let Err(e) = self
                    .recorded("the job's end", || st.finish_job(id, "failed"))
                    .await
                {
                    tracing::error!(job = id, "{e}; it is continued once the database answers");
                }
            }
        }
    }

    pub(super) async fn run_inner(&self, id: &str) -> Result<()> {
        let st = &self.inner.store;
        let job: JobRow = st
            .job(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id}")))?;
        if job.kind == crate::ssr::portal::JOB_KIND {
            return crate::ssr::portal::run_job(self, id, &job).await;
        }
        if job.kind == REMOVE_KIND || job.kind == UNLINK_KIND {
            return self.run_take_apart(id).await;
        }
        if job.kind == UPGRADE_KIND {
            return self.run_upgrade(id, &job).await;
        }
        if job.kind == REAPPLY_KIND {
            return self.run_reapply(id, &job).await;
        }
        if job.kind == REISSUE_KIND {
            return self.run_reissue(id, &job).await;
        }
        if job.kind == ROTATE_KIND {
            return self.run_rotation(id, &job).await;
        }
        if job.kind == CHANGE_KIND {
            return self.run_change(id, &job).await;
        }
        let spec: SetupSpec = spec_of(&job)?;
        let secrets: JobSecrets = st
            .job_secret(id)
            .await?
            .and_then(|s| self.inner.secrets.open(&job_context(id), &s).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Error::Sealed)?;
        let root = self.root_by_id(&spec.root_id).await?;
        let license = match (&spec.license_secret_ref, secrets.license_key) {
            (Some(r), _) => License::SecretRef(r.clone()),
            (None, Some(k)) => License::Key(k),
            (None, None) => {
                return Err(Error::Invalid {
                    field: "license",
                    message: "missing".into(),
                });
            }
        };
        let settings = self.settings_of(&spec, license).await?;
        let steps = st.job_steps(id).await?;
        let state_of: BTreeMap<(String, String), String> = steps
            .iter()
            .map(|s| ((s.cluster.clone(), s.step.clone()), s.state.clone()))
            .collect();
        let done = |c: &str, s: &str| {
            state_of
                .get(&(c.to_string(), s.to_string()))
                .map(String::as_str)
                == Some("done")
        };
        let failed_before = |c: &str| steps.iter().any(|s| s.cluster == c && s.state == "failed");

        // Per cluster, in parallel.
        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        let runs = spec.clusters.iter().map(|c| {
            let settings = &settings;
            let root = &root;
            let done = &done;
            async move {
                let name = c.name.to_string();
                let outcome: Result<Option<Target>> = async {
                    if failed_before(&name) {
                        return Ok(None);
                    }
                    let pending: Vec<Step> = Step::ALL.into_iter().filter(|s| !done(&name, s.key())).collect();
                    let target = match self.target(&c.name).await {
                        Ok(t) => t,
                        Err(e) => {
                            let step = pending.first().copied().unwrap_or(Step::RootOfTrust);
                            let msg = format!("cluster {name} (step: {}): {e}. Check it under Clusters (Re-test), then retry this cluster", step.title());
                            self.set_step(id, &name, step.key(), "failed", None, Some(&msg)).await?;
                            return Ok(None);
                        }
                    };
                    // Wave by wave; the steps of a wave at the same time, each recorded as it goes. A failed
                    // step stops the cluster once its wave's other steps have ended (none is cut off halfway).
                    for wave in Step::WAVES {
                        let target = &target;
                        let name = &name;
                        let runs = wave
                            .iter()
                            .filter(|s| pending.contains(s))
                            .map(|&step| self.setup_step(id, name, step, target, c, settings, root));
                        let mut all_done = true;
                        for ran in futures::future::join_all(runs).await {
                            all_done &= ran?;
                        }
                        if !all_done {
                            return Ok(None);
                        }
                    }
                    Ok(Some(target))
                }
                .await;
                (name, outcome)
            }
        });
        let mut all_ok = true;
        for (name, t) in futures::future::join_all(runs).await {
            match t? {
                Some(t) => {
                    targets.insert(name, t);
                }
                None => all_ok = false,
            }
        }
        if !all_ok {
            self.event(
                id,
                None,
                None,
                "error",
                "stopped before linking: a cluster failed; fix it and retry that cluster",
            )
            .await;
            return self.finish(id, "failed").await;
        }

        // A growth links with the mesh's members: reached here, never set up again. A member that cannot be
        // reached fails the links that involve it, naming it.
        let mut unreachable: BTreeMap<String, String> = BTreeMap::new();
        for m in &spec.members {
            match self.target(&m.name).await {
                Ok(t) => {
                    targets.insert(m.name.to_string(), t);
                }
                Err(e) => {
                    unreachable.insert(m.name.to_string(), e);
                }
            }
        }

        // Across clusters.
        let mut linked_ok = true;
        match &spec.peering {
            Peering::Manual { pairs } => {
                let mut todo = vec![];
                for pair @ (from, to) in pairs {
                    let key = format!("link:{to}");
                    if done(from.as_str(), &key) {
                        continue;
                    }
                    match [from, to]
                        .into_iter()
                        .find_map(|c| unreachable.get_key_value(c.as_str()))
                    {
                        Some((member, e)) => {
                            let msg = format!(
                                "cluster {member} (a member of the mesh) cannot be reached: {e}. Check it under Clusters (Re-test), then retry this job"
                            );
                            self.set_step(id, from.as_str(), &key, "failed", None, Some(&msg))
                                .await?;
                            linked_ok = false;
                        }
                        None => todo.push(pair),
                    }
                }
                linked_ok &= self.link_pairs(id, &todo, &targets, &spec).await?;
            }
            Peering::Automatic { .. } => {
                if let Some((member, e)) = unreachable.iter().next() {
                    let msg = format!(
                        "cluster {member} (a member of the mesh) cannot be reached: {e}. Check it under Clusters (Re-test), then retry this job"
                    );
                    self.set_step(id, FLEET, "peers", "failed", None, Some(&msg))
                        .await?;
                    linked_ok = false;
                } else if !done(FLEET, "peers") {
                    self.set_step(id, FLEET, "peers", "running", None, None)
                        .await?;
                    let list: Vec<Target> = targets.values().cloned().collect();
                    let start = std::time::Instant::now();
                    let result = loop {
                        match setup::missing_automatic_peers(&list).await {
                            Ok(m) if m.is_empty() => break Ok(()),
                            Ok(m) if start.elapsed() > Duration::from_secs(spec.verify_secs) => {
                                break Err(format!(
                                    "peer gateways still missing: {}. Check that the management plane runs with ConfigDistribution and that every cluster's agent is connected",
                                    m.iter()
                                        .map(|(a, b)| format!("{a} has none for {b}"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ));
                            }
                            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                            Err(e) => break Err(e.to_string()),
                        }
                    };
                    match result {
                        Ok(()) => {
                            self.set_step(
                                id,
                                FLEET,
                                "peers",
                                "done",
                                Some(false),
                                Some("every cluster holds a peer gateway for every other"),
                            )
                            .await?
                        }
                        Err(e) => {
                            linked_ok = false;
                            self.set_step(id, FLEET, "peers", "failed", None, Some(&e))
                                .await?;
                        }
                    }
                }
            }
        }
        if !linked_ok {
            return self.finish(id, "failed").await;
        }
        self.set_step(id, FLEET, "verify", "running", None, None)
            .await?;
        let list: Vec<Target> = targets.values().cloned().collect();
        let names: Vec<ClusterName> = spec
            .clusters
            .iter()
            .chain(&spec.members)
            .map(|c| c.name.clone())
            .collect();
        let holders = setup::holders(&names, &spec.peering);
        let (list, holders, wait) = (&list, &holders, Duration::from_secs(spec.verify_secs));
        let results = self
            .logged(id, FLEET, "verify", |progress| async move {
                setup::verify(list, holders, wait, &*progress).await
            })
            .await;
        self.keep_checks(id, results.clone()).await;
        if results
            .iter()
            .all(|c| c.worst() == mesh::checks::Status::Pass)
        {
            self.set_step(
                id,
                FLEET,
                "verify",
                "done",
                Some(false),
                Some("every check passes in every cluster"),
            )
            .await?;
            self.finish(id, "succeeded").await
        } else {
            let text = mesh::checks::to_text(&results);
            self.set_step(id, FLEET, "verify", "failed", None, Some(&text))
                .await?;
            self.finish(id, "failed").await
        }
    }

    /// Runs one setup step on one cluster, recorded as it goes: `Ok(true)` once it is done, `Ok(false)` when it
    /// failed (recorded, with an error event); `Err` only when the job cannot go on here (the store, a hand-over).
    #[allow(
        clippy::too_many_arguments,
        reason = "one step of run_inner's per-cluster loop, with its context"
    )]
    async fn setup_step(
        &self,
        id: &str,
        cluster: &str,
        step: Step,
        target: &Target,
        c: &ClusterSetup,
        settings: &Settings,
        root: &RootCa,
    ) -> Result<bool> {
        self.set_step(id, cluster, step.key(), "running", None, None)
            .await?;
        let result = self
            .logged(id, cluster, step.key(), |progress| async move {
                setup::run_step(step, target, c, settings, root, &*progress).await
            })
            .await
            .map_err(|e| e.to_string());
        self.step_ended(id, cluster, step.key(), &result).await
    }

    /// Records how a step ended — done, with whether it changed anything and its summary, or failed with its
    /// message, which also goes into the job's log as an error — and says whether it is done.
    pub(super) async fn step_ended(
        &self,
        id: &str,
        cluster: &str,
        key: &str,
        result: &std::result::Result<setup::Outcome, String>,
    ) -> Result<bool> {
        match result {
            Ok(o) => {
                self.set_step(id, cluster, key, "done", Some(o.changed), Some(&o.summary))
                    .await?;
                Ok(true)
            }
            Err(e) => {
                self.set_step(id, cluster, key, "failed", None, Some(e))
                    .await?;
                self.event(id, Some(cluster), Some(key), "error", e).await;
                Ok(false)
            }
        }
    }

    pub(crate) async fn finish(&self, id: &str, state: &str) -> Result<()> {
        let st = &self.inner.store;
        self.recorded("the job's end", || st.finish_job(id, state))
            .await?;
        self.event(
            id,
            None,
            None,
            if state == "succeeded" {
                "info"
            } else {
                "error"
            },
            &format!("job {state}"),
        )
        .await;
        self.publish(Update {
            job_id: id.into(),
            cluster: None,
            step: None,
            kind: UpdateKind::Finished {
                state: state.into(),
            },
        })
        .await;
        Ok(())
    }

    /// Runs `work` with a progress callback whose lines become events of `step` on `cluster` as they come.
    pub(super) async fn logged<T, Fut>(
        &self,
        id: &str,
        cluster: &str,
        step: &str,
        work: impl FnOnce(Box<dyn Fn(String) + Send + Sync>) -> Fut,
    ) -> T
    where
        Fut: std::future::Future<Output = T>,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let progress: Box<dyn Fn(String) + Send + Sync> = Box::new(move |line| {
            let _ = tx.send(line);
        });
        let drain = async {
            while let Some(line) = rx.recv().await {
                self.event(id, Some(cluster), Some(step), "info", &line)
                    .await;
            }
        };
        // The callback is dropped when `work` ends, which ends the drain.
        let (result, ()) = tokio::join!(work(progress), drain);
        result
    }

    /// One step of a job on one cluster: marked running, its progress logged as it comes, then marked done
    /// (whether it changed something, its summary) or failed (the error, returned to the caller).
    pub(super) async fn job_step<Fut>(
        &self,
        id: &str,
        cluster: &str,
        step: &str,
        work: impl FnOnce(Box<dyn Fn(String) + Send + Sync>) -> Fut,
    ) -> Result<std::result::Result<(), String>>
    where
        Fut: std::future::Future<Output = setup::StepResult>,
    {
        self.set_step(id, cluster, step, "running", None, None)
            .await?;
        match self.logged(id, cluster, step, work).await {
            Ok(o) => {
                self.set_step(id, cluster, step, "done", Some(o.changed), Some(&o.summary))
                    .await?;
                Ok(Ok(()))
            }
            Err(e) => {
                let text = e.to_string();
                self.set_step(id, cluster, step, "failed", None, Some(&text))
                    .await?;
                Ok(Err(text))
            }
        }
    }

    /// Links the ordered pairs `(from, to)`: each peer's gateway is built once from its live state, each
    /// holder's gateways listed once, then every link is one write, several at a time and spread over the
    /// holders (not all in flight on one API server). Each pair is its own step; returns whether all
    /// succeeded.
    pub(super) async fn link_pairs(
        &self,
        id: &str,
        pairs: &[&(ClusterName, ClusterName)],
        targets: &BTreeMap<String, Target>,
        spec: &SetupSpec,
    ) -> Result<bool> {
        use futures::StreamExt;
        const IN_FLIGHT: usize = 8;
        let peers: std::collections::BTreeSet<&ClusterName> =
            pairs.iter().map(|(_, to)| to).collect();
        let mut reads = vec![];
        for to in peers {
            reads.push(peer_gateway(to, targets, peer_data_plane(spec, to)));
        }
        let gateways: BTreeMap<String, std::result::Result<serde_json::Value, String>> =
            futures::stream::iter(reads)
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        let holders: std::collections::BTreeSet<&ClusterName> =
            pairs.iter().map(|(from, _)| from).collect();
        let mut lists = vec![];
        for from in holders {
            lists.push(holder_versions(from, targets));
        }
        let listed: Holders = futures::stream::iter(lists)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut links = vec![];
        for (from, to) in interleaved(pairs) {
            links.push(self.link_one(id, from, to, targets, &gateways, &listed));
        }
        let outcomes: Vec<Result<bool>> = futures::stream::iter(links)
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut all = true;
        for o in outcomes {
            all &= o?;
        }
        Ok(all)
    }

    /// One link step: applies `to`'s peer gateway in `from`.
    pub(super) async fn link_one(
        &self,
        id: &str,
        from: &ClusterName,
        to: &ClusterName,
        targets: &BTreeMap<String, Target>,
        gateways: &BTreeMap<String, std::result::Result<serde_json::Value, String>>,
        listed: &Holders,
    ) -> Result<bool> {
        let key = format!("link:{to}");
        self.set_step(id, from.as_str(), &key, "running", None, None)
            .await?;
        let result = match (
            targets.get(from.as_str()),
            gateways.get(to.as_str()),
            listed.get(from.as_str()),
        ) {
            (_, Some(Err(e)), _) | (_, _, Some(Err(e))) => Err(e.clone()),
            (Some(f), Some(Ok(gw)), Some(Ok(versions))) => {
                let name = gw["metadata"]["name"].as_str().unwrap_or_default();
                setup::link_peer(f, gw, versions.get(name).map(String::as_str))
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => Err(format!("cluster {from} is not part of this job")),
        };
        self.step_ended(id, from.as_str(), &key, &result).await
    }
}

/// The peer gateway that reaches `to`, built from its live state (or why it cannot be).
/// The gateways' resourceVersions each holder had before linking, by holder (or why they could not be
/// listed).
type Holders = BTreeMap<String, std::result::Result<BTreeMap<String, String>, String>>;

/// The gateways' resourceVersions in `from` before linking (see [`setup::gateway_versions`]).
async fn holder_versions(
    from: &ClusterName,
    targets: &BTreeMap<String, Target>,
) -> (
    String,
    std::result::Result<BTreeMap<String, String>, String>,
) {
    let versions = match targets.get(from.as_str()) {
        Some(t) => setup::gateway_versions(t).await.map_err(|e| e.to_string()),
        None => Err(format!("cluster {from} is not part of this job")),
    };
    (from.to_string(), versions)
}

/// The pairs in an order that takes each holder in turn (c1→c2, c2→c1, c3→c1, …, then c1→c3, …), so the
/// links in flight are spread over the holders' API servers instead of all on the first one's.
fn interleaved<'a>(
    pairs: &[&'a (ClusterName, ClusterName)],
) -> Vec<&'a (ClusterName, ClusterName)> {
    let mut by_holder: BTreeMap<
        &ClusterName,
        std::collections::VecDeque<&'a (ClusterName, ClusterName)>,
    > = BTreeMap::new();
    for p in pairs {
        by_holder.entry(&p.0).or_default().push_back(p);
    }
    let mut out = Vec::with_capacity(pairs.len());
    while out.len() < pairs.len() {
        for queue in by_holder.values_mut() {
            if let Some(p) = queue.pop_front() {
                out.push(p);
            }
        }
    }
    out
}

async fn peer_gateway(
    to: &ClusterName,
    targets: &BTreeMap<String, Target>,
    data_plane: DataPlane,
) -> (String, std::result::Result<serde_json::Value, String>) {
    let gw = match targets.get(to.as_str()) {
        Some(t) => setup::peer_gateway_for(t, data_plane)
            .await
            .map_err(|e| e.to_string()),
        None => Err(format!("cluster {to} is not part of this job")),
    };
    (to.to_string(), gw)
}

/// The variant peers use to reach `to`: its own east-west variant in this setup, else the shared one.
pub(super) fn peer_data_plane(spec: &SetupSpec, to: &ClusterName) -> DataPlane {
    spec.clusters
        .iter()
        .find(|c| &c.name == to)
        .and_then(|c| c.data_plane)
        .unwrap_or(spec.data_plane)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_take_each_holder_in_turn() {
        let n = |s: &str| ClusterName::new(s).expect("name");
        let pairs = setup::full_mesh(&[n("c1"), n("c2"), n("c3")]);
        let refs: Vec<&(ClusterName, ClusterName)> = pairs.iter().collect();
        let order: Vec<String> = interleaved(&refs)
            .iter()
            .map(|(from, to)| format!("{from}>{to}"))
            .collect();
        assert_eq!(
            order,
            ["c1>c2", "c2>c1", "c3>c1", "c1>c3", "c2>c3", "c3>c2"]
        );
        assert!(interleaved(&[]).is_empty());
    }
}
