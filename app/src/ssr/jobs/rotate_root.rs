//! Day two — rotating a mesh's root of trust without breaking traffic (mesh-spec §6: istiod trusts every root
//! of `root-cert.pem` and reads `cacerts` only when it starts). A new root is made when the job starts (the
//! old one's key algorithm, stored sealed like every root); then three passes, each over every cluster one at
//! a time (its `cacerts` rewritten, istiod restarted and waited on) and closed by the checks of the whole mesh:
//! every cluster trusts both roots; every cluster signs with an intermediate of the new root (both roots
//! still trusted — the midpoint, where the checks must see both fingerprints); the old root dropped (the checks
//! see only the new one). The new root then becomes the one new setups use. A retry continues where the job
//! stopped: a pass already done on a cluster changes nothing there.

use std::time::Duration;

use mesh::rotate::{self, Pass};

use super::*;
use crate::model::{PlanObject, format_time};

/// The job kind of a root rotation.
pub const ROTATE_KIND: &str = "rotate-root";
const PREFIX: &str = "rotate:";
const VERIFY_PREFIX: &str = "rotate:verify-";
/// How many of the latest jobs are read to find a mesh's rotations (as many as to find the meshes).
const ROTATION_JOBS: i64 = 500;

/// What a rotation does. Stored as JSON; no secret in it (both roots' keys are the console's, sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotateSpec {
    /// The mesh (its latest setup or growth job).
    pub mesh: String,
    /// The mesh as set up: `clusters` its members in the order they rotate, `members` empty, `root_id` the
    /// root it leaves.
    pub setup: SetupSpec,
    /// The stored root it moves to.
    pub new_root: String,
    /// How long each new intermediate is valid, in days.
    pub days: i64,
}

impl RotateSpec {
    fn steps(&self) -> Vec<(String, String)> {
        Pass::ALL
            .into_iter()
            .flat_map(|p| {
                self.setup
                    .clusters
                    .iter()
                    .map(move |c| (c.name.to_string(), format!("{PREFIX}{}", p.key())))
                    .chain([(FLEET.to_string(), format!("{VERIFY_PREFIX}{}", p.key()))])
            })
            .collect()
    }
}

pub(crate) fn lock_keys(kind: &str, spec: &str) -> Option<Vec<String>> {
    (kind == ROTATE_KIND)
        .then(|| serde_json::from_str::<RotateSpec>(spec).ok())
        .flatten()
        .map(|s| s.setup.locked())
}

pub(crate) fn step_title(key: &str) -> Option<String> {
    if let Some(p) = key.strip_prefix(VERIFY_PREFIX).and_then(Pass::from_key) {
        return Some(
            match p {
                Pass::Trust => "Checks: every cluster trusts both roots",
                Pass::Issue => "Checks: both roots trusted, every cluster signs with the new",
                Pass::Drop => "Checks: only the new root",
            }
            .into(),
        );
    }
    key.strip_prefix(PREFIX)
        .and_then(Pass::from_key)
        .map(|p| p.title().to_string())
}

/// What the checks after `pass` must see besides passing: which roots each cluster trusts and signs with.
/// Returns each cluster that differs, with what it has.
pub(crate) fn roots_after(
    pass: Pass,
    results: &[mesh::checks::ClusterChecks],
    old: &str,
    new: &str,
) -> Vec<String> {
    let short = mesh::ca::short;
    results
        .iter()
        .filter_map(|c| {
            let signs = c.root_fingerprint.as_deref().unwrap_or_default();
            let all = c.trusts();
            let trusts: Vec<&str> = all.iter().map(String::as_str).collect();
            let both = trusts.contains(&old) && trusts.contains(&new);
            let ok = match pass {
                Pass::Trust => both && signs == old,
                Pass::Issue => both && signs == new,
                Pass::Drop => trusts == [new],
            };
            (!ok).then(|| {
                format!(
                    "{}: istiod serves {} (want {})",
                    c.cluster,
                    if trusts.is_empty() {
                        "no root".to_string()
                    } else {
                        trusts
                            .iter()
                            .map(|f| short(f))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    },
                    match pass {
                        Pass::Trust => format!("{} + {}", short(old), short(new)),
                        Pass::Issue => format!("{} + {}", short(new), short(old)),
                        Pass::Drop => short(new),
                    }
                )
            })
        })
        .collect()
}

/// What each pass restarts in a cluster, in order: its istiod Deployments, then its data plane.
/// Returns them with the control plane's namespace, where the pass writes `cacerts`.
async fn restarted_by_a_pass(
    t: &Target,
) -> std::result::Result<(Vec<mesh::restart::Workload>, String), setup::StepError> {
    let ns = t.istio_namespace(rotate::RESTART_TITLE).await?;
    let mut out = rotate::istiod_deployments(t, rotate::RESTART_TITLE, &ns).await?;
    out.extend(mesh::restart::data_plane(t, mesh::restart::DATA_PLANE_TITLE, &ns).await?);
    Ok((out, ns))
}

impl Jobs {
    /// A rotation checked: the mesh runs, its root is stored with its key, no earlier rotation of it is left
    /// unfinished. Its clusters rotate in the mesh's member order.
    pub async fn rotate_spec(&self, mesh_id: &str) -> Result<RotateSpec> {
        super::change::check_mesh_id(mesh_id)?;
        let now = self.mesh_now(mesh_id).await?;
        self.root_by_id(&now.setup.root_id).await?;
        let mesh = now.mesh;
        if let Some(open) = self.unfinished_rotation(&mesh.job_id).await? {
            return Err(Error::Conflict(format!(
                "job {} rotating this mesh's root is {}: retry it from its page (it continues where it stopped) \
                 rather than start another — its clusters may already trust or sign with its new root",
                open.id, open.state
            )));
        }
        Ok(RotateSpec {
            mesh: mesh.job_id,
            setup: now.setup,
            new_root: String::new(),
            days: mesh::ca::DEFAULT_DAYS,
        })
    }

    /// The rotations of `mesh_job`'s root, newest first.
    async fn rotations_of(&self, mesh_job: &str) -> Result<Vec<(JobRow, RotateSpec)>> {
        Ok(self
            .inner
            .store
            .list_jobs(ROTATION_JOBS)
            .await?
            .into_iter()
            .filter(|j| j.kind == ROTATE_KIND)
            .filter_map(|j| Some((spec_of::<RotateSpec>(&j).ok()?, j)))
            .filter(|(s, _)| s.mesh == mesh_job)
            .map(|(s, j)| (j, s))
            .collect())
    }

    /// The newest rotation of `mesh_job`'s root when it has not succeeded (running, failed, cancelled).
    pub(super) async fn unfinished_rotation(&self, mesh_job: &str) -> Result<Option<JobRow>> {
        Ok(self
            .rotations_of(mesh_job)
            .await?
            .into_iter()
            .next()
            .map(|(j, _)| j)
            .filter(|j| j.state != "succeeded"))
    }

    /// The root a mesh uses now: the new root of its newest succeeded rotation, else the one it was set up with.
    pub(super) async fn mesh_root_id(&self, mesh_job: &str, set_up_with: &str) -> Result<String> {
        Ok(self
            .rotations_of(mesh_job)
            .await?
            .into_iter()
            .find(|(j, _)| j.state == "succeeded")
            .map(|(_, s)| s.new_root)
            .unwrap_or_else(|| set_up_with.to_string()))
    }

    /// What rotating the mesh's root changes, per cluster in rotation order: each pass's `cacerts` (keys made
    /// when the job runs, so not compared) and istiod's restart as a server-side dry-run diff, with the
    /// commands by hand.
    pub async fn rotate_plan(&self, mesh_id: &str) -> Result<Vec<ClusterPlan>> {
        let spec = self.rotate_spec(mesh_id).await?;
        let old = self.root_by_id(&spec.setup.root_id).await?;
        let old_fp = mesh::ca::fingerprint(&old.cert_pem).unwrap_or_default();
        let runs = spec.setup.clusters.iter().map(|c| {
            let old_fp = &old_fp;
            async move {
                let name = c.name.to_string();
                let t = match self.target(&c.name).await {
                    Ok(t) => t,
                    Err(e) => {
                        return ClusterPlan {
                            cluster: name,
                            error: Some(e),
                            steps: vec![],
                        };
                    }
                };
                let (restarts, ns) = match restarted_by_a_pass(&t).await {
                    Ok(r) => r,
                    Err(e) => {
                        return ClusterPlan {
                            cluster: name,
                            error: Some(e.to_string()),
                            steps: vec![],
                        };
                    }
                };
                // Every pass restarts the same workloads the same way: diffed once.
                let mut restart_plan: Vec<PlanObject> = vec![];
                for w in &restarts {
                    let obj = w.restart_object("<when this pass reaches the cluster>");
                    restart_plan.push(crate::ssr::registry::plan_object(
                        setup::diff_object(&t.client, &obj).await,
                    ));
                }
                let mut steps = vec![];
                for pass in Pass::ALL {
                    let mut cacerts = crate::ssr::registry::plan_object(
                        setup::diff_object(&t.client, &pass.placeholder(&ns)).await,
                    );
                    cacerts.change = "update".into();
                    cacerts.detail = Some(match pass {
                        Pass::Trust => format!(
                            "root-cert.pem gains the new root (made when the job starts) next to the mesh's root {}; \
                             the intermediate and its key stay",
                            mesh::ca::short(old_fp)
                        ),
                        Pass::Issue => format!(
                            "a new intermediate valid {} days from the new root; both roots stay trusted",
                            spec.days
                        ),
                        Pass::Drop => format!(
                            "the old root {} leaves root-cert.pem once every cluster signs with the new one",
                            mesh::ca::short(old_fp)
                        ),
                    });
                    let mut objects: Vec<PlanObject> = vec![cacerts];
                    objects.extend(restart_plan.iter().cloned());
                    steps.push(PlanStep {
                        title: format!(
                            "{} (then restart istiod, ztunnel and the east-west gateway)",
                            pass.title()
                        ),
                        objects,
                        commands: pass.commands(&c.name, &ns),
                    });
                }
                ClusterPlan {
                    cluster: name,
                    error: None,
                    steps,
                }
            }
        });
        Ok(futures::future::join_all(runs).await)
    }

    /// Starts a rotation: makes the new root (the old one's key algorithm; stored sealed, not yet the one new
    /// setups use), then the job. Returns the job's id.
    pub async fn start_rotation(&self, mut spec: RotateSpec, user: &str) -> Result<String> {
        let old = self.root_by_id(&spec.setup.root_id).await?;
        let algorithm = old.algorithm();
        // RSA 4096 takes a second or more: off the async workers.
        let new = tokio::task::spawn_blocking(move || {
            mesh::ca::RootCa::generate_with(algorithm, mesh::ca::DEFAULT_DAYS)
        })
        .await
        .map_err(|e| mesh::ca::Error::Generate(e.to_string()))??;
        spec.new_root = self.store_root_kept(&new, user).await?;
        let started = self.start_rotation_job(&spec, &old, &new, user).await;
        if started.is_err() {
            // Its clusters were busy (or the store failed): the root made for it serves nothing.
            if let Err(e) = self.inner.store.delete_inactive_root(&spec.new_root).await {
                tracing::warn!(root = %spec.new_root, "removing the unused new root: {e}");
            }
        }
        started
    }

    async fn start_rotation_job(
        &self,
        spec: &RotateSpec,
        old: &mesh::ca::RootCa,
        new: &mesh::ca::RootCa,
        user: &str,
    ) -> Result<String> {
        let json = serde_json::to_string(spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let what = format!(
            "rotate the root of trust of {} from {} to {} (trust both, sign with the new, drop the old)",
            spec.setup
                .clusters
                .iter()
                .map(|c| c.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            mesh::ca::short(&mesh::ca::fingerprint(&old.cert_pem).unwrap_or_default()),
            mesh::ca::short(&mesh::ca::fingerprint(&new.cert_pem).unwrap_or_default()),
        );
        self.start_job_sealed(
            ROTATE_KIND,
            &json,
            None,
            &spec.steps(),
            &spec.setup.locked(),
            user,
            &what,
        )
        .await
    }

    /// Runs a rotation: pass after pass, cluster after cluster, each pass closed by the mesh's checks; done
    /// steps are skipped on a retry. At the end the new root is the one new setups use.
    pub(super) async fn run_rotation(&self, id: &str, job: &JobRow) -> Result<()> {
        let spec: RotateSpec = spec_of(job)?;
        let old = self.root_by_id(&spec.setup.root_id).await?;
        let new = self.root_by_id(&spec.new_root).await?;
        let fp = |r: &mesh::ca::RootCa| mesh::ca::fingerprint(&r.cert_pem).unwrap_or_default();
        let (old_fp, new_fp) = (fp(&old), fp(&new));
        let done = self.done_steps(id).await?;
        let mut targets = vec![];
        for c in &spec.setup.clusters {
            targets.push((c.name.to_string(), self.target(&c.name).await));
        }
        let holders = self.holders_of_mesh(&spec.setup).await?;
        let verify_wait = Duration::from_secs(spec.setup.verify_secs);
        for (i, pass) in Pass::ALL.into_iter().enumerate() {
            // One restart value per pass, fixed by the job: a retry writes the same and restarts nothing twice.
            let at = mesh::ca::format_unix(job.created_at + i as i64);
            let step = format!("{PREFIX}{}", pass.key());
            for (name, target) in &targets {
                if done.contains(&(name.clone(), step.clone())) {
                    continue;
                }
                let t = match target {
                    Ok(t) => t,
                    Err(e) => {
                        let msg = format!(
                            "cluster {name} (step: {}): {e}. Check it under Clusters (Re-test), then retry the rotation",
                            pass.title().to_lowercase()
                        );
                        self.set_step(id, name, &step, "failed", None, Some(&msg))
                            .await?;
                        return self.finish(id, "failed").await;
                    }
                };
                let (old, new, at) = (&old, &new, at.as_str());
                let ran = self
                    .job_step(id, name, &step, |progress| async move {
                        rotate::rotate_pass(
                            t,
                            pass,
                            old,
                            new,
                            spec.days,
                            at,
                            setup::WAIT,
                            &*progress,
                        )
                        .await
                    })
                    .await?;
                if let Err(e) = ran {
                    self.event(id, Some(name), Some(&step), "error", &e).await;
                    return self.finish(id, "failed").await;
                }
            }
            let verify = format!("{VERIFY_PREFIX}{}", pass.key());
            if done.contains(&(FLEET.to_string(), verify.clone())) {
                continue;
            }
            self.set_step(id, FLEET, &verify, "running", None, None)
                .await?;
            let list: Vec<Target> = targets
                .iter()
                .filter_map(|(_, t)| t.as_ref().ok().cloned())
                .collect();
            let (list, holders) = (&list, &holders);
            let results = self
                .logged(id, FLEET, &verify, |progress| async move {
                    setup::verify(list, holders, verify_wait, &*progress).await
                })
                .await;
            self.keep_checks(id, results.clone()).await;
            let mut problems = roots_after(pass, &results, &old_fp, &new_fp);
            if !results
                .iter()
                .all(|c| c.worst() == mesh::checks::Status::Pass)
            {
                problems.insert(0, mesh::checks::to_text(&results));
            }
            if problems.is_empty() {
                let roots = match pass {
                    Pass::Drop => format!("only the new root {}", mesh::ca::short(&new_fp)),
                    _ => format!(
                        "both roots {} and {}",
                        mesh::ca::short(&old_fp),
                        mesh::ca::short(&new_fp)
                    ),
                };
                let text = format!(
                    "every check passes in every cluster; each trusts {roots} (at {})",
                    format_time(now())
                );
                self.set_step(id, FLEET, &verify, "done", Some(false), Some(&text))
                    .await?;
            } else {
                let text = problems.join("\n");
                self.set_step(id, FLEET, &verify, "failed", None, Some(&text))
                    .await?;
                return self.finish(id, "failed").await;
            }
        }
        if self
            .inner
            .store
            .replace_active_root(&spec.setup.root_id, &spec.new_root)
            .await?
        {
            let msg = format!(
                "the new root {} is now the one new setups use",
                mesh::ca::short(&new_fp)
            );
            self.event(id, None, None, "info", &msg).await;
        }
        self.finish(id, "succeeded").await
    }
}
