//! The checks of `istioctl multicluster check` (mesh-spec.md §3), per cluster, read-only, with the spec's
//! corrections: a peer gateway whose peering conditions are absent is *pending*, not connected; the
//! incompatible-variable check looks at the variable istiod really reads
//! (`PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES`); the license is read through a port-forward to istiod's
//! monitoring port, as istioctl does (§9 P17). On top: the root of trust of every cluster, compared across
//! the clusters checked together. Every result carries what to do when it is not a pass.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ca::short;
use crate::ids::ClusterName;
use crate::objects::{EASTWEST_NAME, ISTIO_NAMESPACE, gateway_resource};

mod across;
mod cluster;
mod port_forward;
#[cfg(test)]
mod tests;

pub use across::*;
pub use cluster::*;
pub use port_forward::*;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pass,
    /// Not there yet, and expected to come (peering conditions not reported yet).
    Pending,
    Warn,
    Fail,
}

/// Which check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CheckId {
    Reachable,
    EnvironmentVariables,
    License,
    IstiodPods,
    ZtunnelPods,
    EastWestPods,
    Gateways,
    Peers,
    StaleWorkloads,
    RootOfTrust,
}

impl CheckId {
    pub fn title(self) -> &'static str {
        match self {
            CheckId::Reachable => "Cluster reachable",
            CheckId::EnvironmentVariables => "Incompatible Environment Variable Check",
            CheckId::License => "License Check",
            CheckId::IstiodPods => "Pod Check (istiod)",
            CheckId::ZtunnelPods => "Pod Check (ztunnel)",
            CheckId::EastWestPods => "Pod Check (eastwest gateway)",
            CheckId::Gateways => "Gateway Check",
            CheckId::Peers => "Peers Check",
            CheckId::StaleWorkloads => "Stale Workloads Check",
            CheckId::RootOfTrust => "Root of trust",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: CheckId,
    pub status: Status,
    pub message: String,
    /// What to do, when the status is not Pass.
    pub remediation: Option<String>,
    /// Details, one per object looked at (e.g. one line per peer gateway).
    pub details: Vec<String>,
}

impl CheckResult {
    fn new(id: CheckId, status: Status, message: impl Into<String>) -> Self {
        CheckResult {
            id,
            status,
            message: message.into(),
            remediation: None,
            details: vec![],
        }
    }

    fn fix(mut self, remediation: impl Into<String>) -> Self {
        if self.status != Status::Pass {
            self.remediation = Some(remediation.into());
        }
        self
    }

    fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// The checks of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterChecks {
    pub cluster: ClusterName,
    pub results: Vec<CheckResult>,
    /// SHA-256 of the root certificate istiod serves (`istio-ca-root-cert`), when there is one; during a root
    /// rotation, the first root of the bundle (the one that signed this cluster's intermediate).
    pub root_fingerprint: Option<String>,
    /// Every root istiod serves (`istio-ca-root-cert` is a bundle of two during a rotation), by fingerprint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_roots: Vec<String>,
}

impl ClusterChecks {
    /// The roots this cluster trusts: the served bundle, or else the one served root.
    pub fn trusts(&self) -> Vec<String> {
        if self.trusted_roots.is_empty() {
            self.root_fingerprint.iter().cloned().collect()
        } else {
            self.trusted_roots.clone()
        }
    }
}

impl ClusterChecks {
    pub fn worst(&self) -> Status {
        worst(self.results.iter().map(|r| r.status))
    }

    pub fn get(&self, id: CheckId) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.id == id)
    }
}

fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    statuses
        .max_by_key(|s| match s {
            Status::Pass => 0,
            Status::Pending => 1,
            Status::Warn => 2,
            Status::Fail => 3,
        })
        .unwrap_or(Status::Pass)
}

/// Formats results the way a ticket wants them: one line per check, remediation indented.
pub fn to_text(all: &[ClusterChecks]) -> String {
    let mut out = String::new();
    for c in all {
        out.push_str(&format!("=== Cluster: {} ===\n", c.cluster));
        for r in &c.results {
            let mark = match r.status {
                Status::Pass => "✅",
                Status::Pending => "⏳",
                Status::Warn => "⚠️",
                Status::Fail => "❌",
            };
            out.push_str(&format!("{mark} {}: {}\n", r.id.title(), r.message));
            for d in &r.details {
                out.push_str(&format!("    {d}\n"));
            }
            if let Some(fix) = &r.remediation {
                out.push_str(&format!("    → {fix}\n"));
            }
        }
    }
    out
}

/// The Peers check's message when a cluster holds no peer gateway at all.
pub const NO_PEERS: &str = "no configured peers";

impl ClusterChecks {
    /// For a cluster that is not meant to hold peer gateways (alone in its setup, or only the target of
    /// one-way links): holding none passes. Peer gateways it does hold are still checked.
    pub fn expect_no_peers(&mut self) {
        for r in &mut self.results {
            if r.id == CheckId::Peers && r.status == Status::Fail && r.message == NO_PEERS {
                r.status = Status::Pass;
                r.message = "no peer gateways, as expected: nothing links from this cluster".into();
                r.remediation = None;
            }
        }
    }
}

const PEER_CONDITIONS: [&str; 3] = [
    "gloo.solo.io/PeerConnected",
    "gloo.solo.io/PeeringSucceeded",
    "gloo.solo.io/PeerDataPlaneProgrammed",
];
