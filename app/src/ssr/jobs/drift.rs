//! Day two — drift: a cluster's mesh objects compared with what Meshdeck last applied to it (its part of the
//! mesh's job, at the version the mesh runs now), by the same server-side dry-run the plans use, so a
//! `kubectl edit` or a deleted object shows with its diff. "Re-apply" is a job of its own: the drifted steps
//! run again for that one cluster (server-side apply, one field manager), then that cluster's checks.
//! Re-applying never changes what the topology expects or which job the mesh is made of.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::model::{DriftReport, MeshSummary, PlanStep};

/// The job kind of a re-apply.
pub const REAPPLY_KIND: &str = "reapply";
const VERIFY: &str = "reapply:verify";
/// The steps whose objects are compared. The root of trust's `cacerts` holds keys generated at apply time and
/// the Gateway API CRDs are shared with other tools: neither is compared (the preflight and the trust view
/// judge them).
const COMPARED: [Step; 3] = [Step::Operator, Step::ControlPlane, Step::EastWest];

/// What a re-apply job does. Stored as JSON; the license key is in the job's sealed secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReapplySpec {
    /// The mesh's job whose objects are re-applied.
    pub mesh: String,
    /// The mesh as set up, with `clusters` the one cluster (at the version the mesh runs), `members` empty.
    pub setup: SetupSpec,
    /// The keys of the steps that had drifted when the re-apply was asked for, in setup order.
    pub steps: Vec<String>,
}

/// A cluster's part of a running mesh, as Meshdeck last applied it.
pub(super) struct Applied {
    pub(super) mesh: MeshSummary,
    /// The mesh's job with `clusters` the one cluster (at the version the mesh runs), `members` empty.
    pub(super) setup: SetupSpec,
    /// The license key the mesh's job holds sealed.
    pub(super) key: Option<String>,
}

impl ReapplySpec {
    fn cluster(&self) -> Result<&ClusterSetup> {
        self.setup
            .clusters
            .first()
            .ok_or_else(|| Error::Conflict("a re-apply names no cluster".into()))
    }

    fn steps(&self) -> Vec<(String, String)> {
        let name = self
            .setup
            .clusters
            .first()
            .map(|c| c.name.to_string())
            .unwrap_or_default();
        self.steps
            .iter()
            .map(|s| format!("reapply:{s}"))
            .chain([VERIFY.to_string()])
            .map(|s| (name.clone(), s))
            .collect()
    }
}

pub(crate) fn lock_keys(kind: &str, spec: &str) -> Option<Vec<String>> {
    (kind == REAPPLY_KIND)
        .then(|| serde_json::from_str::<ReapplySpec>(spec).ok())
        .flatten()
        .map(|s| s.setup.locked())
}

pub(crate) fn step_title(key: &str) -> Option<String> {
    if key == VERIFY {
        return Some("Checks after re-applying".into());
    }
    let step = Step::from_key(key.strip_prefix("reapply:")?)?;
    Some(format!("Re-apply: {}", step.title().to_lowercase()))
}

impl Jobs {
    /// The mesh `cluster` belongs to, and its part of the mesh's job at the version the mesh runs now; None
    /// when it is in no mesh Meshdeck set up.
    async fn applied(&self, cluster: &ClusterName) -> Result<Option<Applied>> {
        let Some(mesh) = self
            .meshes()
            .await?
            .into_iter()
            .find(|m| m.members.iter().any(|x| x == cluster.as_str()))
        else {
            return Ok(None);
        };
        let now = self.mesh_now_of(mesh).await?;
        let c = now
            .setup
            .clusters
            .iter()
            .find(|c| c.name == *cluster)
            .cloned()
            .ok_or_else(|| Error::Conflict(format!("{cluster} is not in the mesh's job")))?;
        let key = self.license_key_of(&now.row.id, &now.base).await?;
        // The cluster as the mesh runs it now: after its upgrades, rotations and settings changes.
        let setup = SetupSpec {
            clusters: vec![c],
            ..now.setup
        };
        Ok(Some(Applied {
            mesh: now.mesh,
            setup,
            key,
        }))
    }

    /// [`Jobs::applied`], or the error that says there is nothing to compare with.
    pub(super) async fn applied_or_not_found(&self, cluster: &ClusterName) -> Result<Applied> {
        self.applied(cluster).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "{cluster} is in no mesh Meshdeck set up: there is nothing it applied to compare with"
            ))
        })
    }

    /// [`Jobs::drift`], or None when `cluster` is in no mesh Meshdeck set up (nothing to compare with).
    pub async fn drift_if_meshed(&self, cluster: &ClusterName) -> Result<Option<DriftReport>> {
        Ok(match self.applied(cluster).await? {
            Some(a) => Some(self.compare(cluster, &a).await),
            None => None,
        })
    }

    /// How `cluster`'s mesh objects differ from what Meshdeck last applied. Changes nothing.
    pub async fn drift(&self, cluster: &ClusterName) -> Result<DriftReport> {
        let a = self.applied_or_not_found(cluster).await?;
        Ok(self.compare(cluster, &a).await)
    }

    /// Compares `cluster`'s live objects with `a` and tells every replica's topology what differed.
    async fn compare(&self, cluster: &ClusterName, a: &Applied) -> DriftReport {
        let spec = &a.setup;
        // The operator's release is not compared, so its chart is taken as the spec names it.
        let settings =
            self.settings_with(spec, license_of(spec, a.key.clone()), spec.chart.clone());
        let c = &spec.clusters[0];
        let mut not_compared = vec![
            "cacerts (it holds keys generated at apply time; see the root of trust)".to_string(),
            "the Gloo Operator's Helm release (helm diff is not run)".to_string(),
            "the Gateway API CRDs (shared with other tools; the preflight judges them)".to_string(),
            "peer gateways (their addresses come from the peers; the topology shows missing links)"
                .to_string(),
            "fields Meshdeck never set, added by someone else (server-side apply leaves them to their owner)"
                .to_string(),
        ];
        let unreachable = |e: String| ClusterPlan {
            cluster: cluster.to_string(),
            error: Some(format!(
                "cluster {cluster} (step: compare with what Meshdeck applied): {e}. Check it under Clusters (Re-test), then compare again"
            )),
            steps: vec![],
        };
        let plan = match self.target(cluster).await {
            Err(e) => unreachable(e),
            Ok(t) => match t.client.apiserver_version().await {
                Err(e) => unreachable(mesh::connect::classify(&e).to_string()),
                Ok(_) => {
                    let mut steps = vec![];
                    for step in COMPARED {
                        let mut objects = vec![];
                        for obj in setup::objects(step, c, &settings) {
                            let o = crate::ssr::registry::plan_object(
                                setup::diff_object(&t.client, &obj).await,
                            );
                            match o.change.as_str() {
                                "create" | "update" => objects.push(o),
                                "unknown" => not_compared.push(format!(
                                    "{} {}: {}",
                                    o.kind,
                                    o.name,
                                    o.detail.unwrap_or_default()
                                )),
                                _ => {}
                            }
                        }
                        if !objects.is_empty() {
                            steps.push(PlanStep {
                                title: step.title().into(),
                                objects,
                                commands: setup::commands(step, c, &settings),
                            });
                        }
                    }
                    ClusterPlan {
                        cluster: cluster.to_string(),
                        error: None,
                        steps,
                    }
                }
            },
        };
        if plan.error.is_none() {
            let drifted = plan
                .steps
                .iter()
                .flat_map(|s| s.objects.iter())
                .map(|o| format!("{} {}", o.kind, o.name))
                .collect();
            self.notify(Notice::Drift {
                cluster: cluster.to_string(),
                drifted,
            })
            .await;
        }
        DriftReport {
            cluster: cluster.to_string(),
            mesh: a.mesh.job_id.clone(),
            istio_version: a.mesh.istio_version.clone(),
            checked_at: now(),
            plan,
            not_compared,
        }
    }

    /// A re-apply of what drifted in `cluster`, compared afresh: refused when nothing drifted.
    pub async fn reapply_spec(
        &self,
        cluster: &ClusterName,
    ) -> Result<(ReapplySpec, Option<String>)> {
        let applied = self.applied_or_not_found(cluster).await?;
        // While a change or an upgrade of the mesh is unfinished, its clusters may run what it applied: a
        // re-apply would put the settings or version from before it back.
        let mesh = &applied.mesh.job_id;
        if let Some(open) = match self.unfinished_change(mesh).await? {
            Some(j) => Some(j),
            None => self.unfinished_upgrade(mesh).await?,
        } {
            return Err(Error::Conflict(format!(
                "job {} ({}) over this mesh is {}: finish it first (retry it from its page) — re-applying now would put \
                 back what {cluster} ran before it",
                open.id, open.kind, open.state
            )));
        }
        let report = self.compare(cluster, &applied).await;
        if let Some(e) = report.plan.error {
            return Err(Error::Conflict(e));
        }
        let drifted: BTreeSet<&str> = report.plan.steps.iter().map(|s| s.title.as_str()).collect();
        let steps: Vec<String> = COMPARED
            .into_iter()
            .filter(|s| drifted.contains(s.title()))
            .map(|s| s.key().to_string())
            .collect();
        if steps.is_empty() {
            return Err(Error::Conflict(format!(
                "nothing drifted in {cluster}: its objects are as Meshdeck applied them"
            )));
        }
        Ok((
            ReapplySpec {
                mesh: report.mesh,
                setup: applied.setup,
                steps,
            },
            applied.key,
        ))
    }

    /// Starts a re-apply job; returns its id.
    pub async fn start_reapply(
        &self,
        spec: ReapplySpec,
        license_key: Option<String>,
        user: &str,
    ) -> Result<String> {
        let c = spec.cluster()?.name.to_string();
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let secret = JobSecrets::sealed_bytes(license_key);
        let titles: Vec<&str> = spec
            .steps
            .iter()
            .filter_map(|s| Step::from_key(s).map(Step::title))
            .collect();
        let what = format!(
            "re-apply what drifted in {c}: {}",
            titles.join(", ").to_lowercase()
        );
        self.start_job_sealed(
            REAPPLY_KIND,
            &json,
            Some(&secret),
            &spec.steps(),
            &spec.setup.locked(),
            user,
            &what,
        )
        .await
    }

    /// Runs a re-apply: each drifted step again (done steps skipped on a retry), then the cluster's checks.
    pub(super) async fn run_reapply(&self, id: &str, job: &JobRow) -> Result<()> {
        let spec: ReapplySpec = spec_of(job)?;
        let c = spec.cluster()?;
        let name = c.name.to_string();
        let (settings, root) = self.settings_and_root(id, &spec.setup).await?;
        let keys: Vec<String> = spec.steps().into_iter().map(|(_, s)| s).collect();
        let Some((done, t)) = self.one_cluster(id, &c.name, &keys).await? else {
            return self.finish(id, "failed").await;
        };
        for key in &spec.steps {
            let Some(step) = Step::from_key(key) else {
                continue;
            };
            let job_step = format!("reapply:{key}");
            if done.contains(&job_step) {
                continue;
            }
            let (t, settings, root) = (&t, &settings, &root);
            let ran = self
                .job_step(id, &name, &job_step, |progress| async move {
                    setup::run_step(step, t, c, settings, root, &*progress).await
                })
                .await?;
            if ran.is_err() {
                return self.finish(id, "failed").await;
            }
        }
        let holders = self.holders_of_mesh(&spec.setup).await?;
        let wait = Duration::from_secs(spec.setup.verify_secs);
        if self
            .verify_cluster(id, &name, VERIFY, t, &holders, wait)
            .await?
        {
            // Just applied: nothing differs any more.
            self.notify(Notice::Drift {
                cluster: name.clone(),
                drifted: vec![],
            })
            .await;
            self.finish(id, "succeeded").await
        } else {
            self.finish(id, "failed").await
        }
    }
}
