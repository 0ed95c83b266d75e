//! Wire types of the setup wizard: preflight results and plans, per cluster.

use serde::{Deserialize, Serialize};

use super::CheckStatus;

/// One preflight finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingView {
    pub key: String,
    pub title: String,
    pub status: CheckStatus,
    pub message: String,
    pub remediation: Option<String>,
}

/// The preflight of one cluster (its own findings and those across the selection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightView {
    pub cluster: String,
    pub findings: Vec<FindingView>,
    /// A finding failed: the setup should not go on without fixing it (or an admin's override).
    pub blocked: bool,
}

/// One object a step writes, compared with what is live (server-side dry run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanObject {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub yaml: String,
    /// create, update, unchanged, unknown.
    pub change: String,
    /// The diff (update) or why it was not compared (unknown).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    pub title: String,
    pub objects: Vec<PlanObject>,
    pub commands: Vec<String>,
}

/// What a setup would do on one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterPlan {
    pub cluster: String,
    /// Why the cluster could not be planned (unreachable, credentials).
    pub error: Option<String>,
    pub steps: Vec<PlanStep>,
}

/// What importing a peer gateway did in one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportOutcome {
    pub cluster: String,
    /// The gateways applied (`istio-remote-peer-<cluster>`), when it worked.
    pub applied: Vec<String>,
    /// What went wrong, naming the cluster and the step, and what to do.
    pub error: Option<String>,
}

/// A cluster's intermediate CA as its `cacerts` Secret holds it (public certificates only, never the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntermediateView {
    pub subject: String,
    pub issuer: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// `ECDSA P-256`, `RSA 4096`, …
    pub key_algorithm: String,
    pub pathlen: Option<u32>,
    /// SHA-256 of the Secret's `root-cert.pem`.
    pub root_fingerprint: Option<String>,
    /// That root is the console's root of trust.
    pub root_matches: bool,
    /// Intermediate then root, PEM: what the certificate download gives.
    pub chain_pem: String,
}

/// The root of trust of one chosen cluster, for the wizard's third step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterTrust {
    pub cluster: String,
    /// What `cacerts` holds, when the cluster has one.
    pub intermediate: Option<IntermediateView>,
    /// For a cluster without `cacerts`: what applying will write.
    pub planned: Option<String>,
    /// Expired, expires within 30 days, root differs, chain does not verify.
    pub problems: Vec<String>,
    /// Why the cluster could not be read, naming it and what to do.
    pub error: Option<String>,
}
