//! What the day-two flows share (upgrade, settings change, re-apply, re-issue, root rotation): the settings and
//! root a job applies with, a cluster's checks as a step, a rollout stopped at its first failed cluster, the
//! steps already done, a one-cluster job's start, the clusters meant to hold peer gateways.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::model::format_time;

impl Jobs {
    /// What a day-two job over a mesh applies with: the settings (with the license the job holds sealed) and
    /// the mesh's root of trust.
    pub(super) async fn settings_and_root(
        &self,
        id: &str,
        setup: &SetupSpec,
    ) -> Result<(Settings, RootCa)> {
        let key = self.license_key_of(id, setup).await?;
        let settings = self.settings_of(setup, license_of(setup, key)).await?;
        Ok((settings, self.root_by_id(&setup.root_id).await?))
    }

    /// One cluster's checks as a step of a job (after its upgrade or re-apply), kept as a check report as a
    /// setup's are, so the topology and the Checks page show its health without anyone running them again.
    /// Returns whether every check passed.
    pub(super) async fn verify_cluster(
        &self,
        id: &str,
        name: &str,
        step: &str,
        t: Target,
        holders: &BTreeSet<ClusterName>,
        wait: Duration,
    ) -> Result<bool> {
        self.verify_clusters(id, name, step, vec![t], holders, wait)
            .await
    }

    /// The checks of `targets` as a step of cluster `name` (a cluster and the peers it changed).
    pub(super) async fn verify_clusters(
        &self,
        id: &str,
        name: &str,
        step: &str,
        targets: Vec<Target>,
        holders: &BTreeSet<ClusterName>,
        wait: Duration,
    ) -> Result<bool> {
        self.set_step(id, name, step, "running", None, None).await?;
        let targets = &targets;
        let results = self
            .logged(id, name, step, |progress| async move {
                setup::verify(targets, holders, wait, &*progress).await
            })
            .await;
        self.keep_checks(id, results.clone()).await;
        if results
            .iter()
            .all(|r| r.worst() == mesh::checks::Status::Pass)
        {
            self.set_step(
                id,
                name,
                step,
                "done",
                Some(false),
                Some(&format!("every check passes (at {})", format_time(now()))),
            )
            .await?;
            Ok(true)
        } else {
            let text = mesh::checks::to_text(&results);
            self.set_step(id, name, step, "failed", None, Some(&text))
                .await?;
            Ok(false)
        }
    }

    /// Ends a rollout (an upgrade, a settings change) at the first cluster that failed: an event saying where it
    /// stopped (`stopped`), which clusters after it were left as they run (`rest`, with the verb for one and
    /// for several), and what to do; the job failed.
    pub(super) async fn stop_rollout(
        &self,
        id: &str,
        stopped: &str,
        rest: &[String],
        (keeps, keep): (&str, &str),
    ) -> Result<()> {
        let untouched = match rest {
            [] => String::new(),
            [one] => format!("; {one} {keeps}"),
            _ => format!("; {} {keep}", rest.join(", ")),
        };
        self.event(
            id,
            None,
            None,
            "error",
            &format!("{stopped}: see its failed step{untouched} — fix the cause and retry the job"),
        )
        .await;
        self.finish(id, "failed").await
    }

    /// The steps of job `id` already done, as (cluster, step): what a retry or a takeover skips.
    pub(super) async fn done_steps(&self, id: &str) -> Result<BTreeSet<(String, String)>> {
        Ok(self
            .inner
            .store
            .job_steps(id)
            .await?
            .into_iter()
            .filter(|s| s.state == "done")
            .map(|s| (s.cluster, s.step))
            .collect())
    }

    /// A one-cluster job's start (a re-apply, a re-issue): the steps of `cluster` already done (skipped on a
    /// retry) and the cluster to work on — or None when it cannot be reached, its first pending step failed
    /// with why and what to do.
    pub(super) async fn one_cluster(
        &self,
        id: &str,
        cluster: &ClusterName,
        steps: &[String],
    ) -> Result<Option<(BTreeSet<String>, Target)>> {
        let name = cluster.to_string();
        let done: BTreeSet<String> = self
            .inner
            .store
            .job_steps(id)
            .await?
            .into_iter()
            .filter(|s| s.state == "done" && s.cluster == name)
            .map(|s| s.step)
            .collect();
        match self.target(cluster).await {
            Ok(t) => Ok(Some((done, t))),
            Err(e) => {
                if let Some(step) = steps.iter().find(|s| !done.contains(*s)) {
                    let msg = format!(
                        "cluster {name} (step: {}): {e}. Check it under Clusters (Re-test), then retry this cluster",
                        super::step_title(step).to_lowercase()
                    );
                    self.set_step(id, &name, step, "failed", None, Some(&msg))
                        .await?;
                }
                Ok(None)
            }
        }
    }

    /// The clusters of `setup` meant to hold peer gateways now, as the topology expects them.
    pub(super) async fn holders_of_mesh(&self, setup: &SetupSpec) -> Result<BTreeSet<ClusterName>> {
        if matches!(setup.peering, Peering::Automatic { .. }) {
            return Ok(setup.clusters.iter().map(|c| c.name.clone()).collect());
        }
        let rows = self.inner.store.list_jobs(500).await?;
        let chosen = crate::ssr::topology::chosen_links(&rows);
        Ok(setup
            .clusters
            .iter()
            .filter(|c| {
                chosen
                    .get(&c.name)
                    .is_some_and(|row| row.values().any(|linked| *linked))
            })
            .map(|c| c.name.clone())
            .collect())
    }
}
