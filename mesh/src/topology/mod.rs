//! The topology model: from what the server's caches hold about each cluster (a [`ClusterSnapshot`], plain
//! data, no Kubernetes types), [`compute`] derives the [`Graph`] the Topology page draws — each cluster's parts
//! and health, the peering links with the state of both their sides, and the findings, each naming the
//! clusters and saying what to do. Pure and deterministic: the same snapshots give the same graph, so the
//! server can [`diff`](crate::ids::graph::diff) successive graphs and send only what changed.
//!
//! A link A→B exists when A holds a remote peer gateway for B (mesh-spec §2.1). Its state combines the
//! gateway's `gloo.solo.io/*` conditions (absent means pending, not connected: the corrected Peers check of
//! §3), whether the address it dials is still B's east-west address (§1.3), whether the trust domain it
//! records is B's (§9 P5), whether A and B share a root of trust (§6.2, §9 P6) and run the same Istio minor
//! version (§9 P14).

mod compute;
mod findings;
mod index;
mod model;
mod parts;
#[cfg(test)]
mod tests;

pub use compute::compute;
pub use model::*;
