//! `mesh` owns everything Meshdeck does with Kubernetes clusters, as plain async Rust with no knowledge of
//! HTTP, sessions or views: validated ids, the intake of user-supplied kubeconfigs (refusing credentials
//! that would let a web user run commands or read files on the server), and the connectivity report of a
//! cluster (reachability, version, latency, and which of the verbs Meshdeck needs are allowed).

pub mod access;
pub mod apply;
pub mod ca;
pub mod checks;
pub mod connect;
pub mod gateway_api;
pub mod helm;
/// Validated ids, in their own small crate so the browser build can use them too.
pub use mesh_ids as ids;
pub mod kubeconfig;
pub mod objects;
pub mod operator;
pub mod platform;
pub mod portal;
pub mod preflight;
pub mod remove;
pub mod restart;
pub mod rotate;
pub mod setup;
pub mod topology;
pub mod watch;
pub mod yaml;

/// The one field manager of every server-side apply Meshdeck makes (README, invariant 4).
pub const FIELD_MANAGER: &str = "meshdeck";
