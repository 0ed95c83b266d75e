//! The plan's last steps, for a setup and a growth alike, so linking and verification get the YAML, diff and
//! CLI tabs every other step has:
//! - **Links** (manual peering): in each cluster that will hold peer gateways, each one built from its peer's
//!   live east-west gateway and compared with the cluster (server-side dry run) — or, for a peer whose steps
//!   have not given it an address yet, what it will be built from — with `istioctl multicluster link`;
//! - **Peers (automatic)**: the peer gateways the management plane will distribute to each cluster, and the
//!   guide's `kubectl get gateways` to see them;
//! - **Checks**: each cluster's `istioctl multicluster check`, which the job runs as its last step.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::model::PlanObject;

/// A peer gateway the plan cannot compare (yet), saying why.
pub(super) fn peer_not_compared(name: &str, reason: String) -> setup::ObjectChange {
    setup::ObjectChange {
        kind: "Gateway".into(),
        namespace: Some(mesh::objects::EASTWEST_NAMESPACE.into()),
        name: name.into(),
        yaml: String::new(),
        change: setup::Change::Unknown { reason },
    }
}

/// Adds `step` to `cluster`'s plan (a member of a growth has none yet).
fn push_step(
    plans: &mut Vec<ClusterPlan>,
    cluster: &ClusterName,
    error: Option<String>,
    step: PlanStep,
) {
    match plans.iter_mut().find(|p| p.cluster == cluster.as_str()) {
        Some(p) => p.steps.push(step),
        None => plans.push(ClusterPlan {
            cluster: cluster.to_string(),
            error,
            steps: vec![step],
        }),
    }
}

impl Jobs {
    /// Appends the link (or automatic peering) and check steps of `spec` to `plans`: `spec.clusters` are set
    /// up by the job, `spec.members` (a growth) already run the mesh.
    pub(super) async fn add_link_and_check_steps(
        &self,
        spec: &SetupSpec,
        plans: &mut Vec<ClusterPlan>,
    ) {
        let ns = mesh::objects::EASTWEST_NAMESPACE;
        let set_up: BTreeSet<&ClusterName> = spec.clusters.iter().map(|c| &c.name).collect();
        let all: Vec<&ClusterName> = spec
            .clusters
            .iter()
            .chain(&spec.members)
            .map(|c| &c.name)
            .collect();
        match &spec.peering {
            Peering::Manual { pairs } => {
                let mut by_holder: BTreeMap<&ClusterName, Vec<&ClusterName>> = BTreeMap::new();
                for (from, to) in pairs {
                    by_holder.entry(from).or_default().push(to);
                }
                // Each peer is read once; one the job sets up may have no address yet.
                let mut peers: BTreeMap<
                    &ClusterName,
                    std::result::Result<serde_json::Value, String>,
                > = BTreeMap::new();
                for (_, to) in pairs {
                    if peers.contains_key(to) {
                        continue;
                    }
                    let gw = match self.target(to).await {
                        Ok(t) => setup::peer_gateway_for(&t, run::peer_data_plane(spec, to))
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    peers.insert(to, gw);
                }
                for (from, tos) in by_holder {
                    let target = self.target(from).await;
                    let mut objects = vec![];
                    let mut commands = vec![];
                    for to in tos {
                        let name = format!("istio-remote-peer-{to}");
                        let object = match (peers.get(to), &target) {
                            (Some(Ok(gw)), Ok(t)) => setup::diff_object(&t.client, gw).await,
                            (_, Err(e)) => {
                                peer_not_compared(&name, format!("{from} cannot be reached: {e}"))
                            }
                            (Some(Err(_)) | None, _) if set_up.contains(to) => peer_not_compared(
                                &name,
                                format!(
                                    "built from {to}'s east-west gateway once its steps have given it an address"
                                ),
                            ),
                            (Some(Err(e)), _) => {
                                peer_not_compared(&name, format!("{to} cannot be read: {e}"))
                            }
                            (None, _) => peer_not_compared(&name, format!("{to} was not read")),
                        };
                        objects.push(crate::ssr::registry::plan_object(object));
                        commands.push(format!(
                            "istioctl multicluster link --from {from} --to {to} -n {ns}"
                        ));
                    }
                    let step = PlanStep {
                        title: "Links".into(),
                        objects,
                        commands,
                    };
                    push_step(plans, from, target.err(), step);
                }
            }
            Peering::Automatic { management } => {
                for holder in &all {
                    // A member gets peers only for the clusters the growth adds; a cluster set up, for all others.
                    let objects = all
                        .iter()
                        .filter(|o| *o != holder && (set_up.contains(*holder) || set_up.contains(*o)))
                        .map(|other| PlanObject {
                            kind: "Gateway".into(),
                            namespace: Some(ns.into()),
                            name: format!("istio-remote-peer-{other}"),
                            yaml: String::new(),
                            change: "unknown".into(),
                            detail: Some(format!(
                                "made by {other}'s istiod from its east-west gateway and distributed here by the \
                                 management plane ({management}); the job waits until it is here"
                            )),
                        })
                        .collect();
                    let step = PlanStep {
                        title: "Peers (automatic)".into(),
                        objects,
                        commands: vec![format!("kubectl get gateways -n {ns} --context {holder}")],
                    };
                    push_step(plans, holder, None, step);
                }
            }
        }
        for c in all {
            let step = PlanStep {
                title: "Checks".into(),
                objects: vec![],
                commands: vec![format!("istioctl multicluster check --context {c}")],
            };
            push_step(plans, c, None, step);
        }
    }
}
