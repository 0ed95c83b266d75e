//! Keeping each registered cluster's [`ClusterSnapshot`] current without polling: one
//! [`kube::runtime::watcher`] per kind of object the topology needs, each scoped to its namespace and, where
//! the API allows, to its objects by name or label — east-west and peer Gateways in istio-eastwest, the
//! `managed-istio` ServiceMeshController and the `gloo-operator` Deployment in gloo-mesh, the istiod
//! Deployments and the ztunnel/CNI DaemonSets in the control plane's namespace (istio-system, or the one the
//! ServiceMeshController's `installNamespace` names: those watches move with it), the `cacerts` Secret (of
//! which only the root's fingerprint is kept), the mesh ConfigMaps (for the trust domain), the namespaces
//! labelled for the mesh and the Services the drill-down shows. A change reaches the snapshot as soon as the apiserver sends it; bursts
//! are coalesced for [`DEBOUNCE`] before the snapshot is published.
//!
//! Each watch recovers on its own. A failure to connect marks the cluster unreachable (the rest of its
//! snapshot is the state last seen) and is retried with exponential backoff capped at 30 s; the mark clears
//! once every watch of the cluster has listed its objects again. An API that is not served (a CRD not
//! installed yet) reads as "no objects", marks nothing, and is tried again once a watch on that CRD (by
//! name) sees it installed — still no polling; only where that watch is not possible is it retried every
//! [`SLOW_RETRY`]. A cluster's watches run as tasks of their own, so a slow or dead cluster holds up no
//! other.
//!
//! [`Watches`] keeps one [`ClusterWatch`] per registered cluster and counts the changes of them all, so the
//! server can recompute the graph ([`crate::topology::compute`]) when something changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, DefaultBackoff, Event};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument;

use crate::connect::{Problem, classify};
use crate::ids::ClusterName;
use crate::objects::{
    EASTWEST_NAMESPACE, ISTIO_NAMESPACE, OPERATOR_NAMESPACE, SMC_NAME, gateway_resource,
    smc_resource,
};
use crate::topology::{
    ClusterSnapshot, EastWestState, IstiodState, LicenseState, NamespaceState, PeerGatewayState,
    SERVICE_SCOPE_LABEL, ServiceState, SmcState, WorkloadState,
};

mod cluster;
mod keep;
mod state;
mod task;
#[cfg(test)]
mod tests;

pub use cluster::ClusterWatch;
use keep::*;
use state::*;
use task::*;

/// How long changes are collected before a snapshot is published: a burst (an initial list, a rollout)
/// becomes one update, and a single change still shows well within a second.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// How long the apiserver keeps one watch request open (its `timeoutSeconds`). The watch is then resumed
/// from where it was, without listing again; a connection silent for longer than this (plus 5 s) counts as
/// dead, which is how a network failure that closes nothing is noticed.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long listing the objects of one kind may take before the cluster counts as unreachable.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an API that is not served (a CRD not installed yet) or not permitted is tried again.
pub const SLOW_RETRY: Duration = Duration::from_secs(10);
/// The longest wait between two attempts to reach an unreachable cluster.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

const OPERATOR_DEPLOYMENT: &str = "gloo-operator";
const NETWORK_LABEL: &str = "topology.istio.io/network";
const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// The mesh ConfigMaps in the control plane's namespace, in the order `istioctl` reads them (`istio-gloo`
/// first, "for ILM support", mesh-spec §2.1).
const MESH_CONFIGS: [&str; 2] = ["istio-gloo", "istio"];
/// The prefix of the ids of the per-namespace Service watches.
const SERVICES_IN: &str = "services in ";

/// The namespaces the drill-down may show, by label. A selector cannot say "any of", so each is its own
/// watch; istio-system is watched by name for its network label.
const NAMESPACE_SELECTORS: [(&str, &str); 4] = [
    (
        "istio.io/dataplane-mode=ambient",
        "ambient namespaces (istio.io/dataplane-mode=ambient)",
    ),
    (
        "istio-injection=enabled",
        "namespaces with sidecar injection (istio-injection=enabled)",
    ),
    (
        "istio.io/rev",
        "namespaces with a revision label (istio.io/rev)",
    ),
    (
        SERVICE_SCOPE_LABEL,
        "namespaces with a service scope (solo.io/service-scope)",
    ),
];
/// The key under which the control plane's namespace (watched by name for its network label) is kept.
const ISTIO_NAMESPACE_KEY: &str = "the control plane's namespace";
/// The watches in the control plane's namespace — the ServiceMeshController's `installNamespace` (§4.1),
/// istio-system by default — started again there when the controller names another. Their ids end in
/// ` @<namespace>` ([`in_istio`]), so what a watch of the namespace before still sends is ignored.
const IN_ISTIO_NAMESPACE: [&str; 6] = [
    "istiod",
    "daemonsets",
    "cacerts",
    "mesh config istio-gloo",
    "mesh config istio",
    "namespace",
];

/// What separates a watch of [`IN_ISTIO_NAMESPACE`] from its namespace in its id.
const IN_NS: &str = " @";

/// The id of watch `id` of [`IN_ISTIO_NAMESPACE`] in namespace `ns`.
fn in_istio(id: &str, ns: &str) -> String {
    format!("{id}{IN_NS}{ns}")
}

type Labels = BTreeMap<String, String>;
/// What one watch keeps, by `namespace/name` (`name` for cluster-scoped objects).
type Store<V> = BTreeMap<String, V>;

/// The watches of every registered cluster, with one change counter for them all.
#[derive(Debug)]
pub struct Watches {
    clusters: Mutex<BTreeMap<ClusterName, ClusterWatch>>,
    generation: Arc<watch::Sender<u64>>,
}

impl Default for Watches {
    fn default() -> Self {
        Self::new()
    }
}

impl Watches {
    pub fn new() -> Self {
        Watches {
            clusters: Mutex::new(BTreeMap::new()),
            generation: Arc::new(watch::channel(0).0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<ClusterName, ClusterWatch>> {
        self.clusters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts watching a cluster (within a Tokio runtime); one already watched under this name is restarted
    /// with the new client (new credentials).
    pub fn add(&self, name: ClusterName, client: Client) {
        let (watch, _) =
            ClusterWatch::start_with(name.clone(), client, Some(self.generation.clone()));
        let old = self.lock().insert(name, watch);
        drop(old);
        self.bump();
    }

    /// Stops watching a cluster; false when it was not watched.
    pub fn remove(&self, name: &ClusterName) -> bool {
        let removed = self.lock().remove(name);
        let found = removed.is_some();
        drop(removed);
        if found {
            self.bump();
        }
        found
    }

    pub fn names(&self) -> Vec<ClusterName> {
        self.lock().keys().cloned().collect()
    }

    /// The current snapshot of every watched cluster, by name.
    pub fn snapshots(&self) -> Vec<ClusterSnapshot> {
        self.lock().values().map(ClusterWatch::snapshot).collect()
    }

    pub fn snapshot(&self, name: &ClusterName) -> Option<ClusterSnapshot> {
        self.lock().get(name).map(ClusterWatch::snapshot)
    }

    /// See [`ClusterWatch::set_license`]; false when the cluster is not watched.
    pub fn set_license(&self, name: &ClusterName, license: LicenseState) -> bool {
        match self.lock().get(name) {
            Some(w) => {
                w.set_license(license);
                true
            }
            None => false,
        }
    }

    /// See [`ClusterWatch::set_drift`]; false when the cluster is not watched.
    pub fn set_drift(&self, name: &ClusterName, drifted: Vec<String>) -> bool {
        match self.lock().get(name) {
            Some(w) => {
                w.set_drift(drifted);
                true
            }
            None => false,
        }
    }

    /// A counter that grows whenever a snapshot changes or a cluster is added or removed: wait on
    /// [`watch::Receiver::changed`], then read [`Watches::snapshots`].
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn bump(&self) {
        self.generation.send_modify(|n| *n += 1);
    }
}
