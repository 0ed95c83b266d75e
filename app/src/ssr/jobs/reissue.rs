//! Day two — one cluster's intermediate CA issued again from the mesh's root (one expiring soon, or one whose
//! key may have leaked), alone: a plan first (the `cacerts` Secret whose key is made when the job runs, the
//! istiod restart as a server-side dry-run diff, the commands by hand), then a durable job — new `cacerts`,
//! istiod restarted and waited on until every pod runs with it, the cluster's checks. Peers are untouched:
//! the root, which they trust, stays the same.

use std::time::Duration;

use mesh::rotate;

use super::*;
use crate::model::PlanObject;

/// The job kind of a re-issue.
pub const REISSUE_KIND: &str = "reissue";
const CACERTS: &str = "reissue:cacerts";
const RESTART: &str = "reissue:restart";
const VERIFY: &str = "reissue:verify";
const STEPS: [&str; 3] = [CACERTS, RESTART, VERIFY];

/// What a re-issue job does. Stored as JSON; it holds no secret (the root's key is the console's, the new
/// intermediate's key is made in the cluster's step and goes only into `cacerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReissueSpec {
    /// The mesh's job (its root of trust is the one issuing).
    pub mesh: String,
    /// The mesh as set up, with `clusters` the one cluster, `members` empty.
    pub setup: SetupSpec,
    /// How long the new intermediate is valid, in days.
    pub days: i64,
}

impl ReissueSpec {
    fn cluster(&self) -> Result<&ClusterSetup> {
        self.setup
            .clusters
            .first()
            .ok_or_else(|| Error::Conflict("a re-issue names no cluster".into()))
    }
}

pub(crate) fn lock_keys(kind: &str, spec: &str) -> Option<Vec<String>> {
    (kind == REISSUE_KIND)
        .then(|| serde_json::from_str::<ReissueSpec>(spec).ok())
        .flatten()
        .map(|s| s.setup.locked())
}

pub(crate) fn step_title(key: &str) -> Option<String> {
    match key {
        CACERTS => Some(rotate::REISSUE_TITLE.into()),
        RESTART => Some(rotate::RESTART_TITLE.into()),
        VERIFY => Some("Checks after re-issuing".into()),
        _ => None,
    }
}

/// The restart's annotation value for a job started at `created_at`: fixed, so a retry writes the same.
fn restarted_at(created_at: i64) -> String {
    mesh::ca::format_unix(created_at)
}

impl Jobs {
    /// A re-issue for `cluster` checked: it is in a mesh Meshdeck set up, whose root the console holds.
    pub async fn reissue_spec(&self, cluster: &ClusterName) -> Result<ReissueSpec> {
        let a = self.applied_or_not_found(cluster).await?;
        if let Some(open) = self.unfinished_rotation(&a.mesh.job_id).await? {
            return Err(Error::Conflict(format!(
                "job {} rotating the root of {cluster}'s mesh is {}: finish it first (retry it from its page) — \
                 a re-issue now would put back a bundle without the new root",
                open.id, open.state
            )));
        }
        // The root must be there (with its key) to sign: fail now rather than in the job.
        self.root_by_id(&a.setup.root_id).await?;
        Ok(ReissueSpec {
            mesh: a.mesh.job_id,
            setup: a.setup,
            days: mesh::ca::DEFAULT_DAYS,
        })
    }

    /// What re-issuing `cluster`'s intermediate changes: `cacerts` (its key made at apply time, so not
    /// compared), each istiod Deployment's restart diffed by a server-side dry run, the commands by hand.
    pub async fn reissue_plan(&self, cluster: &ClusterName) -> Result<ClusterPlan> {
        let spec = self.reissue_spec(cluster).await?;
        let name = cluster.to_string();
        let t = match self.target(cluster).await {
            Ok(t) => t,
            Err(e) => {
                return Ok(ClusterPlan {
                    cluster: name,
                    error: Some(e),
                    steps: vec![],
                });
            }
        };
        let ns = match t.istio_namespace(rotate::REISSUE_TITLE).await {
            Ok(ns) => ns,
            Err(e) => {
                return Ok(ClusterPlan {
                    cluster: name,
                    error: Some(e.to_string()),
                    steps: vec![],
                });
            }
        };
        let root = self.root_by_id(&spec.setup.root_id).await?;
        let fingerprint = mesh::ca::fingerprint(&root.cert_pem).unwrap_or_default();
        let current = match mesh::ca::read_cacerts(&t.client, Some(&fingerprint), now()).await {
            Ok(Some(c)) => format!(
                "the intermediate there now is valid until {}{}",
                mesh::ca::format_unix(c.not_after),
                if c.problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.problems.join("; "))
                }
            ),
            Ok(None) => "there is no cacerts: the job will refuse this cluster".into(),
            Err(e) => format!("cacerts could not be read: {e}"),
        };
        let secret = rotate::cacerts_placeholder(&ns);
        let mut cacerts =
            crate::ssr::registry::plan_object(setup::diff_object(&t.client, &secret).await);
        cacerts.change = "update".into();
        cacerts.detail = Some(format!(
            "a new intermediate valid {} days, signed by the mesh's root {} (peers keep trusting it); {current}",
            spec.days,
            mesh::ca::short(&fingerprint)
        ));
        let mut restarts: Vec<PlanObject> = vec![];
        match rotate::istiod_deployments(&t, rotate::RESTART_TITLE, &ns).await {
            Ok(list) => {
                for d in list {
                    let obj = d.restart_object("<when the job starts>");
                    restarts.push(crate::ssr::registry::plan_object(
                        setup::diff_object(&t.client, &obj).await,
                    ));
                }
            }
            Err(e) => {
                return Ok(ClusterPlan {
                    cluster: name,
                    error: Some(e.to_string()),
                    steps: vec![],
                });
            }
        }
        let commands = rotate::commands(cluster, &ns);
        Ok(ClusterPlan {
            cluster: name,
            error: None,
            steps: vec![
                PlanStep {
                    title: rotate::REISSUE_TITLE.into(),
                    objects: vec![cacerts],
                    commands: commands[..2].to_vec(),
                },
                PlanStep {
                    title: format!(
                        "{} (it reads cacerts only when it starts)",
                        rotate::RESTART_TITLE
                    ),
                    objects: restarts,
                    commands: commands[2..].to_vec(),
                },
            ],
        })
    }

    /// Starts a re-issue job; returns its id.
    pub async fn start_reissue(&self, spec: ReissueSpec, user: &str) -> Result<String> {
        let c = spec.cluster()?.name.to_string();
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let steps: Vec<(String, String)> =
            STEPS.iter().map(|s| (c.clone(), s.to_string())).collect();
        let what =
            format!("re-issue {c}'s intermediate CA from the mesh's root, then restart its istiod");
        self.start_job_sealed(
            REISSUE_KIND,
            &json,
            None,
            &steps,
            &spec.setup.locked(),
            user,
            &what,
        )
        .await
    }

    /// Runs a re-issue: `cacerts`, istiod's restart, the checks — done steps skipped on a retry.
    pub(super) async fn run_reissue(&self, id: &str, job: &JobRow) -> Result<()> {
        let spec: ReissueSpec = spec_of(job)?;
        let c = spec.cluster()?;
        let name = c.name.to_string();
        let keys: Vec<String> = STEPS.iter().map(|s| s.to_string()).collect();
        let Some((done, t)) = self.one_cluster(id, &c.name, &keys).await? else {
            return self.finish(id, "failed").await;
        };
        let root = self.root_by_id(&spec.setup.root_id).await?;
        let at = restarted_at(job.created_at);
        // As long as the setup waits for a control plane: a restart may pull an image or wait for a node.
        let wait = setup::WAIT;
        for step in [CACERTS, RESTART] {
            if done.contains(step) {
                continue;
            }
            let (t, root, at) = (&t, &root, at.as_str());
            let ran = self
                .job_step(id, &name, step, |progress| async move {
                    if step == CACERTS {
                        rotate::reissue(t, root, job.created_at, spec.days, &*progress).await
                    } else {
                        let ns = t.istio_namespace(rotate::RESTART_TITLE).await?;
                        rotate::restart_istiod(t, &ns, at, wait, &*progress).await
                    }
                })
                .await?;
            if let Err(e) = ran {
                self.event(id, Some(&name), Some(step), "error", &e).await;
                return self.finish(id, "failed").await;
            }
        }
        let holders = self.holders_of_mesh(&spec.setup).await?;
        let wait = Duration::from_secs(spec.setup.verify_secs);
        if self
            .verify_cluster(id, &name, VERIFY, t, &holders, wait)
            .await?
        {
            self.finish(id, "succeeded").await
        } else {
            self.finish(id, "failed").await
        }
    }
}
