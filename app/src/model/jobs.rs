//! Wire types of setup jobs and the root of trust: what the browser sends to start a setup and what it is
//! shown of jobs (steps, events) and of the root (never its key, except in the admin's export).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ClusterName, ClusterSettings, MeshSettings};

/// How peers reach each cluster's east-west gateway (mesh-spec.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EastWest {
    #[default]
    LoadBalancer,
    NodePort,
}

/// Which clusters hold a peer gateway for which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum PeeringChoice {
    /// Every ordered pair of the chosen clusters.
    FullMesh,
    /// Only these ordered pairs: `(from, to)` = `from` holds a peer gateway to reach `to`.
    Pairs {
        pairs: Vec<(ClusterName, ClusterName)>,
    },
    /// The management plane on `management` distributes the peer gateways (§7).
    Automatic { management: ClusterName },
}

/// Every ordered pair of distinct clusters (`(from, to)`: `from` holds a peer gateway for `to`), in order.
pub fn full_mesh_pairs(clusters: &[ClusterName]) -> Vec<(ClusterName, ClusterName)> {
    let mut out = Vec::new();
    for a in clusters {
        for b in clusters {
            if a != b {
                out.push((a.clone(), b.clone()));
            }
        }
    }
    out
}

/// The license the operator gets: a key (stored sealed with the job, written to a Secret) or a reference to
/// a Secret already in every cluster (`namespace/name`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LicenseChoice {
    Key { key: String },
    Secret { reference: String },
}

impl std::fmt::Debug for LicenseChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LicenseChoice::Key { .. } => f.write_str("LicenseChoice::Key(<redacted>)"),
            LicenseChoice::Secret { reference } => write!(f, "LicenseChoice::Secret({reference})"),
        }
    }
}

/// Everything a setup job needs from the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupRequest {
    pub clusters: Vec<ClusterName>,
    pub istio_version: String,
    pub eastwest: EastWest,
    pub peering: PeeringChoice,
    pub license: LicenseChoice,
    /// An admin going on despite failed preflight findings says why; the job records it.
    #[serde(default)]
    pub override_reason: Option<String>,
    /// Control-plane settings shared by every cluster.
    #[serde(default)]
    pub settings: MeshSettings,
    /// Per-cluster overrides of `settings`, and east-west address overrides.
    #[serde(default)]
    pub per_cluster: BTreeMap<ClusterName, ClusterSettings>,
}

/// A job as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub id: String,
    pub kind: String,
    /// running, succeeded, failed.
    pub state: String,
    pub started_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub clusters: Vec<String>,
    pub steps_done: usize,
    pub steps_total: usize,
}

/// One step of a job, for one cluster (`*` for the steps across clusters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStep {
    pub cluster: String,
    pub step: String,
    pub title: String,
    /// pending, running, done, failed, skipped.
    pub state: String,
    pub changed: Option<bool>,
    pub message: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: i64,
    pub at: i64,
    pub cluster: Option<String>,
    pub step: Option<String>,
    pub level: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobDetail {
    pub job: JobSummary,
    pub steps: Vec<JobStep>,
    /// Events after the `after` id asked for.
    pub events: Vec<JobEvent>,
}

/// The key algorithm of a root of trust and its intermediates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RootAlgorithm {
    #[default]
    EcdsaP256,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

/// The root of trust in use, as shown to everyone (no key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootSummary {
    pub id: String,
    pub fingerprint: String,
    pub algorithm: RootAlgorithm,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub created_by: String,
    pub created_at: i64,
    pub cert_pem: String,
}

/// The root with its key: only for an admin who re-entered their password.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RootExport {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for RootExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootExport")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}
