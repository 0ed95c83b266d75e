//! Wire types of the checks (mesh-spec.md §3): per cluster, per check, a status with what to do.

use serde::{Deserialize, Serialize};

/// The outcome of one check, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    Pass,
    /// Expected to come (peering conditions not reported yet).
    Pending,
    Warn,
    Fail,
}

impl CheckStatus {
    /// An icon and a word (never colour alone).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            CheckStatus::Pass => ("✓", "pass"),
            CheckStatus::Pending => ("…", "pending"),
            CheckStatus::Warn => ("!", "warn"),
            CheckStatus::Fail => ("✕", "fail"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    pub title: String,
    pub status: CheckStatus,
    pub message: String,
    pub remediation: Option<String>,
    pub details: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterCheckView {
    pub cluster: String,
    pub worst: CheckStatus,
    pub results: Vec<CheckView>,
}

/// The checks of a set of clusters, with the same as plain text for a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecksReport {
    pub clusters: Vec<ClusterCheckView>,
    pub text: String,
    pub ran_at: i64,
    /// Where the run is kept (`/checks?report=<id>`), once stored.
    #[serde(default)]
    pub id: Option<String>,
    /// Who ran it.
    #[serde(default)]
    pub ran_by: Option<String>,
}
