//! Day two — taking a running mesh apart: unlinking pairs of clusters (one direction each) and removing the
//! mesh from one cluster (its peers' gateways for it first, then its own objects in the reverse order of the
//! setup, `cacerts` and the Gateway API CRDs only when asked). Both are durable jobs like a setup — locked
//! clusters, a step per peer and per removal step, live progress, retry per cluster — and both are planned
//! first: what would be deleted (Meshdeck's own objects) and what would be left (anyone else's).

use std::collections::BTreeSet;

use mesh::remove::{self, Found, Removal, RemoveOptions};

use super::*;
use crate::model::{MeshSummary, RemoveRequest, UnlinkRequest};

/// The job kind of a removal.
pub const REMOVE_KIND: &str = "remove";
/// The job kind of an unlinking.
pub const UNLINK_KIND: &str = "unlink";

/// What a removal job does. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveSpec {
    /// The mesh it was part of (its latest job).
    pub mesh: String,
    pub cluster: ClusterName,
    /// The other members: each drops its peer gateway for `cluster` first.
    pub peers: Vec<ClusterName>,
    pub options: RemoveOptions,
    /// The namespace its control plane runs in (the mesh's `installNamespace` for it): where `cacerts` is,
    /// known before the removal takes its ServiceMeshController away. None: istio-system.
    #[serde(default)]
    pub istio_namespace: Option<String>,
}

impl RemoveSpec {
    fn istio_ns(&self) -> &str {
        self.istio_namespace
            .as_deref()
            .unwrap_or(mesh::objects::ISTIO_NAMESPACE)
    }
}

/// What an unlinking job does. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlinkSpec {
    pub mesh: String,
    pub pairs: Vec<(ClusterName, ClusterName)>,
}

impl RemoveSpec {
    fn steps(&self) -> Vec<(String, String)> {
        let mut steps: Vec<(String, String)> = self
            .peers
            .iter()
            .map(|p| (p.to_string(), format!("unpeer:{}", self.cluster)))
            .collect();
        steps.extend(
            Removal::steps(self.options)
                .into_iter()
                .map(|s| (self.cluster.to_string(), s.key().to_string())),
        );
        steps
    }

    fn locks(&self) -> Vec<String> {
        std::iter::once(&self.cluster)
            .chain(&self.peers)
            .map(|c| c.to_string())
            .collect()
    }
}

impl UnlinkSpec {
    fn locks(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.pairs.iter().map(|(f, _)| f.to_string()).collect();
        set.into_iter().collect()
    }
}

/// The clusters a removal or unlinking job holds, from its stored spec (None for other kinds).
pub(crate) fn lock_keys(kind: &str, spec: &str) -> Option<Vec<String>> {
    match kind {
        REMOVE_KIND => serde_json::from_str::<RemoveSpec>(spec)
            .ok()
            .map(|s| s.locks()),
        UNLINK_KIND => serde_json::from_str::<UnlinkSpec>(spec)
            .ok()
            .map(|s| s.locks()),
        _ => None,
    }
}

/// A step's title on the job's page.
pub(crate) fn step_title(key: &str) -> Option<String> {
    if let Some(s) = Removal::from_key(key) {
        return Some(s.title().to_string());
    }
    if let Some(c) = key.strip_prefix("unpeer:") {
        return Some(format!("Remove the peer gateway for {c}"));
    }
    key.strip_prefix("unlink:")
        .map(|c| format!("Unlink from {c}"))
}

impl Jobs {
    /// The running mesh `id` (its latest job), or why there is none.
    pub(super) async fn mesh_of(&self, id: &str) -> Result<MeshSummary> {
        self.meshes()
            .await?
            .into_iter()
            .find(|m| m.job_id == id)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "mesh {id} (a newer setup, growth or removal changed its clusters: open the Mesh page again)"
                ))
            })
    }

    /// A removal checked: the cluster is a member of the running mesh; its peers are the other members.
    pub async fn remove_spec(&self, req: &RemoveRequest) -> Result<RemoveSpec> {
        let mesh = self.mesh_of(&req.mesh).await?;
        if !mesh.members.contains(&req.cluster.to_string()) {
            return Err(Error::Invalid {
                field: "cluster",
                message: format!(
                    "{} is not in this mesh (its clusters: {})",
                    req.cluster,
                    mesh.members.join(", ")
                ),
            });
        }
        let peers = mesh
            .members
            .iter()
            .filter(|m| **m != req.cluster.as_str())
            .map(|m| ClusterName::new(m).map_err(|e| Error::Conflict(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let now = self.mesh_now_of(mesh).await?;
        let istio_namespace = now
            .setup
            .clusters
            .iter()
            .find(|c| c.name == req.cluster)
            .map(|c| c.istio_namespace().to_string());
        Ok(RemoveSpec {
            mesh: now.mesh.job_id,
            cluster: req.cluster.clone(),
            peers,
            options: RemoveOptions {
                cacerts: req.cacerts,
                gateway_api: req.gateway_api,
            },
            istio_namespace,
        })
    }

    /// An unlinking checked: 1 to 1000 distinct pairs of different members of the running mesh.
    pub async fn unlink_spec(&self, req: &UnlinkRequest) -> Result<UnlinkSpec> {
        let mesh = self.mesh_of(&req.mesh).await?;
        let invalid = |message: String| Error::Invalid {
            field: "pairs",
            message,
        };
        if req.pairs.is_empty() || req.pairs.len() > 1000 {
            return Err(invalid("pick 1 to 1000 links to remove".into()));
        }
        let mut pairs = req.pairs.clone();
        pairs.sort();
        pairs.dedup();
        for (from, to) in &pairs {
            if from == to {
                return Err(invalid(format!("{from} cannot unlink from itself")));
            }
            for c in [from, to] {
                if !mesh.members.contains(&c.to_string()) {
                    return Err(invalid(format!("{c} is not in this mesh")));
                }
            }
        }
        Ok(UnlinkSpec {
            mesh: mesh.job_id,
            pairs,
        })
    }

    /// What a removal would delete and leave, per cluster and step (nothing is changed).
    pub async fn remove_plan(&self, req: &RemoveRequest) -> Result<Vec<ClusterPlan>> {
        let spec = self.remove_spec(req).await?;
        let mut plans = vec![];
        for peer in &spec.peers {
            let name = format!("istio-remote-peer-{}", spec.cluster);
            let plan = match self.target(peer).await {
                Ok(t) => match remove::survey(&t, Removal::PeerGateways, spec.istio_ns()).await {
                    Ok(found) => {
                        let objects = found
                            .into_iter()
                            .filter(|(_, what, _)| what.ends_with(&format!("/{name}")))
                            .map(|(kind, what, f)| planned(kind, what, f))
                            .collect();
                        plan_of(
                            peer,
                            None,
                            vec![PlanStep {
                                title: format!("Remove the peer gateway for {}", spec.cluster),
                                objects,
                                commands: vec![format!(
                                    "kubectl --context {peer} -n {} delete gateways.gateway.networking.k8s.io {name}",
                                    mesh::objects::EASTWEST_NAMESPACE
                                )],
                            }],
                        )
                    }
                    Err(e) => plan_of(peer, Some(e.to_string()), vec![]),
                },
                Err(e) => plan_of(peer, Some(e), vec![]),
            };
            plans.push(plan);
        }
        let mut steps = vec![];
        let mut error = None;
        match self.target(&spec.cluster).await {
            Ok(t) => {
                for step in Removal::steps(spec.options) {
                    match remove::survey(&t, step, spec.istio_ns()).await {
                        Ok(found) => steps.push(PlanStep {
                            title: step.title().into(),
                            objects: found
                                .into_iter()
                                .map(|(kind, what, f)| planned(kind, what, f))
                                .collect(),
                            commands: step.commands(&spec.cluster, spec.istio_ns()),
                        }),
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
            }
            Err(e) => error = Some(e),
        }
        plans.push(plan_of(&spec.cluster, error, steps));
        Ok(plans)
    }

    /// What an unlinking would delete and leave in each cluster holding one of the pairs' gateways.
    pub async fn unlink_plan(&self, req: &UnlinkRequest) -> Result<Vec<ClusterPlan>> {
        let spec = self.unlink_spec(req).await?;
        let mut by_holder: std::collections::BTreeMap<&ClusterName, Vec<&ClusterName>> =
            Default::default();
        for (from, to) in &spec.pairs {
            by_holder.entry(from).or_default().push(to);
        }
        let mut plans = vec![];
        for (from, tos) in by_holder {
            let names: Vec<String> = tos
                .iter()
                .map(|t| format!("istio-remote-peer-{t}"))
                .collect();
            let commands = names
                .iter()
                .map(|n| {
                    format!(
                        "kubectl --context {from} -n {} delete gateways.gateway.networking.k8s.io {n}",
                        mesh::objects::EASTWEST_NAMESPACE
                    )
                })
                .collect();
            let found = match self.target(from).await {
                Ok(t) => remove::survey(&t, Removal::PeerGateways, mesh::objects::ISTIO_NAMESPACE)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            plans.push(match found {
                Ok(found) => plan_of(
                    from,
                    None,
                    vec![PlanStep {
                        title: "Unlink".into(),
                        objects: found
                            .into_iter()
                            .filter(|(_, what, _)| {
                                names.iter().any(|n| what.ends_with(&format!("/{n}")))
                            })
                            .map(|(kind, what, f)| planned(kind, what, f))
                            .collect(),
                        commands,
                    }],
                ),
                Err(e) => plan_of(from, Some(e), vec![]),
            });
        }
        Ok(plans)
    }

    /// Starts a removal job; returns its id.
    pub async fn start_remove(&self, spec: RemoveSpec, user: &str) -> Result<String> {
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let what = format!(
            "remove the mesh from {} (then: {}{})",
            spec.cluster,
            if spec.options.cacerts {
                "cacerts too"
            } else {
                "cacerts kept"
            },
            if spec.options.gateway_api {
                ", Gateway API CRDs too when unused"
            } else {
                ", Gateway API CRDs kept"
            }
        );
        self.start_job(
            REMOVE_KIND,
            &json,
            &spec.steps(),
            &spec.locks(),
            user,
            &what,
        )
        .await
    }

    /// Starts an unlinking job; returns its id.
    pub async fn start_unlink(&self, spec: UnlinkSpec, user: &str) -> Result<String> {
        let json = serde_json::to_string(&spec).map_err(|e| Error::Conflict(e.to_string()))?;
        let steps: Vec<(String, String)> = spec
            .pairs
            .iter()
            .map(|(f, t)| (f.to_string(), format!("unlink:{t}")))
            .collect();
        let what = format!(
            "unlink {}",
            spec.pairs
                .iter()
                .map(|(f, t)| format!("{f} → {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.start_job(UNLINK_KIND, &json, &steps, &spec.locks(), user, &what)
            .await
    }

    /// Runs a removal or unlinking job: the steps not done yet, in order — a removal's peers first (in
    /// parallel), then the leaving cluster's steps one after the other, stopping at the first that fails.
    pub(super) async fn run_take_apart(&self, id: &str) -> Result<()> {
        let steps = self.inner.store.job_steps(id).await?;
        let pending: Vec<(String, String)> = steps
            .iter()
            .filter(|s| s.state != "done")
            .map(|s| (s.cluster.clone(), s.step.clone()))
            .collect();
        let (first, rest): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, step)| step.starts_with("unpeer:") || step.starts_with("unlink:"));
        let runs = first
            .iter()
            .map(|(cluster, step)| self.take_apart_step(id, cluster, step));
        let mut ok = true;
        for r in futures::future::join_all(runs).await {
            ok &= r?;
        }
        if ok {
            for (cluster, step) in &rest {
                if !self.take_apart_step(id, cluster, step).await? {
                    ok = false;
                    break;
                }
            }
        } else if !rest.is_empty() {
            self.event(
                id,
                None,
                None,
                "error",
                "stopped before removing anything from the leaving cluster: a peer still holds its gateway; fix that peer and retry",
            )
            .await;
        }
        self.finish(id, if ok { "succeeded" } else { "failed" })
            .await
    }

    /// One step of a removal or unlinking; returns whether it succeeded.
    async fn take_apart_step(&self, id: &str, cluster: &str, step: &str) -> Result<bool> {
        self.set_step(id, cluster, step, "running", None, None)
            .await?;
        let name = ClusterName::new(cluster).map_err(|e| Error::Conflict(e.to_string()))?;
        let result = match self.target(&name).await {
            Err(e) => Err(format!(
                "cluster {cluster} (step: {}): {e}. Check it under Clusters (Re-test), then retry this cluster",
                super::step_title(step)
            )),
            Ok(t) => {
                let helm = self.inner.helm.clone();
                // A removal's spec names the namespace of the leaving cluster's control plane.
                let istio_ns = match self.inner.store.job(id).await? {
                    Some(job) if job.kind == REMOVE_KIND => {
                        spec_of::<RemoveSpec>(&job)?.istio_ns().to_string()
                    }
                    _ => mesh::objects::ISTIO_NAMESPACE.to_string(),
                };
                self.logged(id, cluster, step, |progress| async move {
                    let outcome = if let Some(leaving) = step
                        .strip_prefix("unpeer:")
                        .or(step.strip_prefix("unlink:"))
                    {
                        match ClusterName::new(leaving) {
                            Ok(leaving) => remove::unpeer(&t, &leaving, &*progress).await,
                            Err(e) => return Err(e.to_string()),
                        }
                    } else if let Some(s) = Removal::from_key(step) {
                        remove::run(s, &t, &istio_ns, &helm, &*progress).await
                    } else {
                        return Err(format!("unknown step {step}"));
                    };
                    outcome.map_err(|e| e.to_string())
                })
                .await
            }
        };
        self.step_ended(id, cluster, step, &result).await
    }
}

fn plan_of(cluster: &ClusterName, error: Option<String>, steps: Vec<PlanStep>) -> ClusterPlan {
    ClusterPlan {
        cluster: cluster.to_string(),
        error,
        steps,
    }
}

/// One object a removal would delete (Meshdeck's) or leave (anyone else's).
fn planned(kind: String, what: String, found: Found) -> crate::model::PlanObject {
    let (namespace, name) = match what.split_once('/') {
        Some((ns, n)) => (Some(ns.to_string()), n.to_string()),
        None => (None, what),
    };
    let (change, detail) = match found {
        Found::Ours => ("delete", "deleted: Meshdeck applied it"),
        Found::Foreign => (
            "unchanged",
            "left in place: not made by Meshdeck (its managed fields name another manager)",
        ),
    };
    crate::model::PlanObject {
        kind,
        namespace,
        name,
        yaml: String::new(),
        change: change.into(),
        detail: Some(detail.into()),
    }
}
