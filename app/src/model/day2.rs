//! Wire types of day two: the meshes the console set up, and what is asked of one that runs — clusters
//! added to it, linked with its members as chosen.

use serde::{Deserialize, Serialize};

use super::ClusterName;

/// A running mesh as the console knows it: the clusters of the latest succeeded setup (or growth) that put
/// them together, with what they share. What a growth starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeshSummary {
    /// The job that last set up or grew this mesh.
    pub job_id: String,
    pub finished_at: Option<i64>,
    pub members: Vec<String>,
    pub istio_version: String,
    /// How its clusters are linked: "full mesh", "selected pairs", "automatic (management: c1)".
    pub linking: String,
    /// Whether peer gateways are applied by the console (manual pairs) rather than distributed.
    pub manual_links: bool,
    /// The shared east-west variant: LoadBalancer or NodePort.
    pub eastwest: String,
    /// Registered clusters outside this mesh: what can be added.
    pub candidates: Vec<String>,
    /// The Gloo Operator chart its clusters were given (by the setup or the newest upgrade that moved it).
    #[serde(default)]
    pub operator_chart: OperatorChart,
    /// The chart this console is configured with (`--operator-chart`): what an upgrade can move the operator to.
    #[serde(default)]
    pub console_chart: OperatorChart,
}

/// A Gloo Operator chart: an OCI or repository reference with its version, or a chart folder or `.tgz` on
/// the console's machine (no version: its `Chart.yaml` says).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OperatorChart {
    pub reference: String,
    pub version: Option<String>,
    /// How to name it, for a chart uploaded to the console (its name, version and file).
    #[serde(default)]
    pub label: Option<String>,
}

impl std::fmt::Display for OperatorChart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(l) = &self.label {
            return f.write_str(l);
        }
        if let Some(sha) = self.reference.strip_prefix("meshdeck-chart:") {
            let short: String = sha.chars().take(12).collect();
            return write!(f, "the uploaded chart sha256 {short}");
        }
        match &self.version {
            Some(v) => write!(f, "{} {v}", self.reference),
            None => write!(f, "{} (local chart)", self.reference),
        }
    }
}

/// A Gloo Operator chart an admin uploaded (air-gapped sites).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedChart {
    pub sha256: String,
    /// What its Chart.yaml says.
    pub name: String,
    pub version: String,
    pub file_name: String,
    pub size: u64,
    pub uploaded_by: String,
    pub uploaded_at: i64,
    /// The chart new setups install and upgrades offer.
    pub in_use: bool,
    /// The meshes (their job ids) whose operators run it.
    pub meshes: Vec<String>,
}

/// The operator charts: the one the console was started with, the one in use, and those uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorCharts {
    pub started_with: OperatorChart,
    pub in_use: OperatorChart,
    pub uploaded: Vec<UploadedChart>,
}

/// What an upgrade does with the Gloo Operator's release.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "move")]
pub enum OperatorMove {
    /// Leave the release as it is.
    #[default]
    Keep,
    /// Move it to the chart the console is configured with (a new version, or a new local chart).
    ConsoleChart,
    /// Move it to another version of the mesh's chart (OCI or repository charts).
    Version { version: String },
}

/// How clusters added to a mesh are linked with its members (and with each other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum GrowLinks {
    /// Every member and every added cluster reach each other, both ways.
    #[default]
    BothWays,
    /// The added clusters reach the members (and each other); the members do not reach them.
    FromNew,
    /// The members reach the added clusters (and those each other); not the other way.
    ToNew,
    /// Exactly these ordered pairs `(from, to)`; each involves an added cluster.
    Pairs {
        pairs: Vec<(ClusterName, ClusterName)>,
    },
}

/// Clusters to add to a running mesh, with its existing root of trust, settings, version and linking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowRequest {
    /// The mesh: the job that last set it up or grew it ([`MeshSummary::job_id`]).
    pub mesh: String,
    pub clusters: Vec<ClusterName>,
    #[serde(default)]
    pub links: GrowLinks,
    /// An admin going on despite failed preflight findings says why; the job records it.
    #[serde(default)]
    pub override_reason: Option<String>,
}

/// The links a growth makes: ordered pairs `(from, to)` between the added clusters and the members and among
/// the added ones; members' links with each other are left as they are. Checked: every pair involves an added
/// cluster, names clusters of the mesh, and is not a cluster with itself.
pub fn grow_pairs(
    members: &[ClusterName],
    added: &[ClusterName],
    links: &GrowLinks,
) -> Result<Vec<(ClusterName, ClusterName)>, String> {
    let mut out = vec![];
    let is_added = |c: &ClusterName| added.contains(c);
    match links {
        GrowLinks::Pairs { pairs } => {
            for (a, b) in pairs {
                if a == b {
                    return Err(format!("{a} cannot link with itself"));
                }
                for c in [a, b] {
                    if !is_added(c) && !members.contains(c) {
                        return Err(format!("{c} is neither in the mesh nor being added"));
                    }
                }
                if !is_added(a) && !is_added(b) {
                    return Err(format!(
                        "{a} → {b} links two members: change the links between members with unlink or a new setup, not by adding clusters"
                    ));
                }
                out.push((a.clone(), b.clone()));
            }
        }
        mode => {
            for a in added {
                for b in added.iter().filter(|b| *b != a) {
                    out.push((a.clone(), b.clone()));
                }
                for m in members {
                    if matches!(mode, GrowLinks::BothWays | GrowLinks::FromNew) {
                        out.push((a.clone(), m.clone()));
                    }
                    if matches!(mode, GrowLinks::BothWays | GrowLinks::ToNew) {
                        out.push((m.clone(), a.clone()));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<ClusterName> {
        list.iter()
            .map(|n| ClusterName::new(n).expect("name"))
            .collect()
    }

    fn text(pairs: &[(ClusterName, ClusterName)]) -> Vec<String> {
        pairs.iter().map(|(a, b)| format!("{a}>{b}")).collect()
    }

    #[test]
    fn both_ways_links_every_added_cluster_with_every_member_and_leaves_members_alone() {
        let pairs = grow_pairs(
            &names(&["c1", "c2"]),
            &names(&["c3", "c4"]),
            &GrowLinks::BothWays,
        )
        .expect("pairs");
        assert_eq!(
            text(&pairs),
            [
                "c1>c3", "c1>c4", "c2>c3", "c2>c4", "c3>c1", "c3>c2", "c3>c4", "c4>c1", "c4>c2",
                "c4>c3"
            ]
        );
    }

    #[test]
    fn one_way_growth_links_only_the_chosen_direction_with_members() {
        let members = names(&["c1", "c2"]);
        let added = names(&["c3"]);
        let from = grow_pairs(&members, &added, &GrowLinks::FromNew).expect("pairs");
        assert_eq!(text(&from), ["c3>c1", "c3>c2"]);
        let to = grow_pairs(&members, &added, &GrowLinks::ToNew).expect("pairs");
        assert_eq!(text(&to), ["c1>c3", "c2>c3"]);
    }

    #[test]
    fn chosen_pairs_must_involve_an_added_cluster_of_the_mesh() {
        let members = names(&["c1", "c2"]);
        let added = names(&["c3"]);
        let pick = |a: &str, b: &str| GrowLinks::Pairs {
            pairs: vec![(
                ClusterName::new(a).expect("a"),
                ClusterName::new(b).expect("b"),
            )],
        };
        assert_eq!(
            text(&grow_pairs(&members, &added, &pick("c3", "c1")).expect("ok")),
            ["c3>c1"]
        );
        let e = grow_pairs(&members, &added, &pick("c1", "c2")).expect_err("members");
        assert!(e.contains("links two members"), "{e}");
        let e = grow_pairs(&members, &added, &pick("c3", "c9")).expect_err("stranger");
        assert!(e.contains("c9 is neither"), "{e}");
        let e = grow_pairs(&members, &added, &pick("c3", "c3")).expect_err("self");
        assert!(e.contains("itself"), "{e}");
    }
}

/// Take the mesh out of one of its clusters: its peers' gateways for it first, then its own objects in the
/// reverse order of the setup; `cacerts` and the Gateway API CRDs only when asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveRequest {
    /// The mesh ([`MeshSummary::job_id`]).
    pub mesh: String,
    pub cluster: ClusterName,
    #[serde(default)]
    pub cacerts: bool,
    #[serde(default)]
    pub gateway_api: bool,
}

/// Remove links between clusters of a mesh: each `(from, to)` drops the peer gateway `from` holds for `to`
/// (one direction; give both pairs for both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlinkRequest {
    pub mesh: String,
    pub pairs: Vec<(ClusterName, ClusterName)>,
}

/// Upgrade (or move back one minor) the Istio version of a running mesh, cluster by cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeRequest {
    pub mesh: String,
    /// The target version, e.g. `1.28.1-patch0`; empty or the running one when only the operator moves.
    pub version: String,
    /// The operator chart, moved first in each cluster (before its control plane).
    #[serde(default)]
    pub operator: OperatorMove,
    /// The rollout order; empty: the members in name order. Must name every member once.
    #[serde(default)]
    pub order: Vec<ClusterName>,
    /// How many clusters change at a time (1 by default).
    #[serde(default = "one")]
    pub batch: usize,
}

/// New settings for a running mesh, applied cluster by cluster: the parts a setup takes — the settings every
/// cluster shares, the shared east-west variant, and each cluster's overrides, address and variant. The form
/// starts from the settings the mesh runs now (`current_settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsChangeRequest {
    pub mesh: String,
    pub eastwest: super::EastWest,
    #[serde(default)]
    pub settings: super::MeshSettings,
    #[serde(default)]
    pub per_cluster: std::collections::BTreeMap<ClusterName, super::ClusterSettings>,
}

fn one() -> usize {
    1
}

/// How a cluster's mesh objects differ from what Meshdeck last applied to it: its part of the mesh's job (at the
/// version the mesh runs) compared with the live objects by a server-side dry-run apply. Only what differs is
/// listed — an object deleted since ("create") or changed since ("update", with the diff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub cluster: String,
    /// The mesh's job whose objects are compared.
    pub mesh: String,
    pub istio_version: String,
    pub checked_at: i64,
    /// The drifted objects per step, with the commands that re-apply them by hand; no steps = no drift.
    /// `error` says why the cluster could not be compared.
    pub plan: super::ClusterPlan,
    /// What is not compared, said once (secrets with generated keys, the Helm release, peer gateways).
    pub not_compared: Vec<String>,
}

impl DriftReport {
    pub fn drifted(&self) -> usize {
        self.plan.steps.iter().map(|s| s.objects.len()).sum()
    }
}
