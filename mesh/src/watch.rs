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

/// What a watch learned: all objects after a (re)list, or one object.
enum Change<V> {
    Replace(Store<V>),
    Upsert(String, V),
    Remove(String),
}

impl<V> Change<V> {
    fn apply_to(self, store: &mut Store<V>) {
        match self {
            Change::Replace(all) => *store = all,
            Change::Upsert(k, v) => {
                store.insert(k, v);
            }
            Change::Remove(k) => {
                store.remove(&k);
            }
        }
    }
}

/// A Gateway in istio-eastwest, as the topology reads it.
#[derive(Clone, Debug, PartialEq)]
enum GatewayEntry {
    /// With its `topology.kubernetes.io/region` label, which `expose` copies from the nodes when they all
    /// share one region.
    EastWest(EastWestState, Option<String>),
    Peer(PeerGatewayState),
}

/// What the watches of one cluster hold: only the parts of objects the snapshot is made of.
#[derive(Default)]
struct Stores {
    gateways: Store<GatewayEntry>,
    smc: Store<SmcState>,
    istiod: Store<IstiodState>,
    operator: Store<WorkloadState>,
    daemonsets: Store<WorkloadState>,
    /// The root fingerprint of `cacerts` (`None` when it has no readable root).
    cacerts: Store<Option<String>>,
    /// The trust domain of each mesh ConfigMap, by ConfigMap (each is its own watch: a relist replaces
    /// only what that watch keeps).
    mesh_config: BTreeMap<&'static str, Store<String>>,
    /// Namespace labels, per selector.
    namespaces: BTreeMap<&'static str, Store<Labels>>,
    /// Service labels by `namespace/name`, per watch.
    services: BTreeMap<String, Store<Labels>>,
}

impl Stores {
    /// Every namespace seen, with its labels.
    fn namespace_labels(&self) -> BTreeMap<&str, &Labels> {
        self.namespaces
            .values()
            .flat_map(|s| s.iter().map(|(k, v)| (k.as_str(), v)))
            .collect()
    }

    /// The namespaces whose Services are all shown: meshed ones, and those that export all their Services.
    fn namespaces_with_services(&self) -> BTreeSet<String> {
        self.namespace_labels()
            .into_iter()
            .filter(|(name, labels)| {
                let ns = NamespaceState {
                    name: name.to_string(),
                    labels: (*labels).clone(),
                    services: vec![],
                };
                ns.is_meshed() || ns.exports(&ServiceState::default())
            })
            .map(|(name, _)| name.to_string())
            .collect()
    }
}

/// One cluster's watches' shared state.
struct State {
    stores: Stores,
    /// Why a watch cannot reach the cluster, by watch id.
    failures: BTreeMap<String, String>,
    /// Watches that have not listed their objects (or failed) yet; the first snapshot waits for them.
    pending: BTreeSet<String>,
    published: bool,
    license: LicenseState,
    drift: Option<Vec<String>>,
    /// The namespaces whose Services are watched.
    service_namespaces: BTreeSet<String>,
    /// The namespace the control plane's watches run in.
    istio_ns: String,
}

impl State {
    fn new(ids: impl IntoIterator<Item = String>) -> Self {
        State {
            stores: Stores::default(),
            failures: BTreeMap::new(),
            pending: ids.into_iter().collect(),
            published: false,
            license: LicenseState::Unknown(
                "not read yet: istiod's license is read by the checks (Checks page)".into(),
            ),
            drift: None,
            service_namespaces: BTreeSet::new(),
            istio_ns: ISTIO_NAMESPACE.to_string(),
        }
    }

    /// Whether a watch is still wanted (a per-namespace Service watch stops when its namespace leaves the
    /// mesh; what it sends after that is ignored).
    fn is_live(&self, id: &str) -> bool {
        if let Some(ns) = id.strip_prefix(SERVICES_IN) {
            return self.service_namespaces.contains(ns);
        }
        match id.rsplit_once(IN_NS) {
            Some((_, ns)) => ns == self.istio_ns,
            None => true,
        }
    }

    /// Follows the ServiceMeshController's `installNamespace`: when it names another namespace than the one
    /// watched, forgets what the watches there held and returns the namespace to watch now.
    fn reconcile_istio(&mut self) -> Option<String> {
        let wanted = self
            .stores
            .smc
            .values()
            .next()
            .and_then(|s| s.install_namespace.clone())
            .unwrap_or_else(|| ISTIO_NAMESPACE.to_string());
        if wanted == self.istio_ns {
            return None;
        }
        for id in IN_ISTIO_NAMESPACE {
            let old = in_istio(id, &self.istio_ns);
            self.failures.remove(&old);
            self.pending.remove(&old);
            // Publishing waits until the watches there have listed: the cluster is not shown without its
            // control plane meanwhile ([`State::moving`]).
            self.pending.insert(in_istio(id, &wanted));
        }
        let s = &mut self.stores;
        s.istiod.clear();
        s.daemonsets.clear();
        s.cacerts.clear();
        s.mesh_config.clear();
        s.namespaces.remove(ISTIO_NAMESPACE_KEY);
        self.istio_ns = wanted.clone();
        Some(wanted)
    }

    /// Whether the control plane's watches are moving to another namespace and have not listed there yet.
    fn moving(&self) -> bool {
        self.pending.iter().any(|id| id.contains(IN_NS))
    }

    /// Starts and stops the per-namespace Service watches to follow the namespaces; returns the commands.
    fn reconcile_services(&mut self) -> Vec<ServiceWatch> {
        let wanted = self.stores.namespaces_with_services();
        if wanted == self.service_namespaces {
            return vec![];
        }
        let mut commands = vec![];
        for ns in self.service_namespaces.difference(&wanted) {
            let id = format!("{SERVICES_IN}{ns}");
            self.stores.services.remove(&id);
            self.failures.remove(&id);
            self.pending.remove(&id);
            commands.push(ServiceWatch::Stop(ns.clone()));
        }
        for ns in wanted.difference(&self.service_namespaces) {
            self.pending.insert(format!("{SERVICES_IN}{ns}"));
            commands.push(ServiceWatch::Start(ns.clone()));
        }
        self.service_namespaces = wanted;
        commands
    }

    /// The snapshot the stores make.
    fn snapshot(&self, name: &ClusterName) -> ClusterSnapshot {
        let s = &self.stores;
        let mut snap = ClusterSnapshot::new(name.clone());
        snap.unreachable = self.failures.values().next().cloned();
        snap.license = self.license.clone();
        snap.drift = self.drift.clone();

        // The east-west gateway is the one named istio-eastwest (what `expose` creates), else the first.
        let mut eastwest: Option<(&EastWestState, &Option<String>)> = None;
        for (key, g) in &s.gateways {
            match g {
                GatewayEntry::EastWest(ew, region) => {
                    if eastwest.is_none() || key.ends_with("/istio-eastwest") {
                        eastwest = Some((ew, region));
                    }
                }
                GatewayEntry::Peer(p) => snap.peers.push(p.clone()),
            }
        }
        if let Some((ew, region)) = eastwest {
            snap.eastwest = Some(ew.clone());
            snap.region = region.clone();
        }
        snap.smc = s.smc.values().next().cloned();
        // Several istiod Deployments (a canary revision) count together; the revision is the first one's.
        snap.istiod = s.istiod.values().cloned().reduce(|mut all, i| {
            all.pods.desired += i.pods.desired;
            all.pods.ready += i.pods.ready;
            all
        });
        snap.operator = s.operator.values().next().copied();
        let daemonset = |n: &str| s.daemonsets.get(&format!("{}/{n}", self.istio_ns)).copied();
        snap.ztunnel = daemonset("ztunnel");
        snap.cni = daemonset("istio-cni-node");
        snap.root_fingerprint = s.cacerts.values().next().cloned().flatten();
        snap.trust_domain = MESH_CONFIGS
            .iter()
            .find_map(|n| s.mesh_config.get(n)?.values().next())
            .cloned();

        let labels = s.namespace_labels();
        snap.network = labels
            .get(self.istio_ns.as_str())
            .and_then(|l| l.get(NETWORK_LABEL))
            .cloned();
        let mut services: BTreeMap<&str, BTreeMap<&str, &Labels>> = BTreeMap::new();
        for store in s.services.values() {
            for (key, l) in store {
                if let Some((ns, svc)) = key.split_once('/') {
                    services.entry(ns).or_default().insert(svc, l);
                }
            }
        }
        let names: BTreeSet<&str> = labels.keys().chain(services.keys()).copied().collect();
        snap.namespaces = names
            .into_iter()
            .map(|ns| NamespaceState {
                name: ns.to_string(),
                // A namespace known only through an exported Service has none of the labels looked at.
                labels: labels.get(ns).map(|l| (*l).clone()).unwrap_or_default(),
                services: services
                    .get(ns)
                    .map(|svcs| {
                        svcs.iter()
                            .map(|(name, l)| ServiceState {
                                name: name.to_string(),
                                labels: (*l).clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        snap
    }
}

/// Starting or stopping the Service watch of one namespace, or moving the control plane's watches.
#[derive(Debug, PartialEq)]
enum ServiceWatch {
    Start(String),
    Stop(String),
    /// The control plane's watches ([`IN_ISTIO_NAMESPACE`]) run in this namespace now.
    Istio(String),
}

/// What the tasks of one cluster share.
struct Shared {
    name: ClusterName,
    state: Mutex<State>,
    /// Wakes the publisher.
    dirty: Notify,
    services: mpsc::UnboundedSender<ServiceWatch>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state of watch `id` (unless it was stopped meanwhile) and wakes the publisher.
    fn update(&self, id: &str, f: impl FnOnce(&mut State)) {
        let mut st = self.lock();
        if !st.is_live(id) {
            return;
        }
        f(&mut st);
        if let Some(ns) = st.reconcile_istio() {
            let _ = self.services.send(ServiceWatch::Istio(ns));
        }
        for command in st.reconcile_services() {
            // The receiver lives as long as the cluster's tasks; after that nothing is to be started.
            let _ = self.services.send(command);
        }
        drop(st);
        self.dirty.notify_one();
    }

    /// Watch `id` reached the cluster: it no longer holds up the first snapshot nor marks the cluster
    /// unreachable.
    fn reached(st: &mut State, id: &str, name: &ClusterName, what: &str) {
        st.pending.remove(id);
        if st.failures.remove(id).is_some() && st.failures.is_empty() {
            tracing::info!(cluster = %name, what, "reachable again");
        }
    }
}

/// Why a watch stopped, and what follows.
#[derive(Debug, PartialEq)]
enum Failure {
    /// The API is not served (404): no objects; for a custom resource, wait until its CRD is installed, else
    /// try again every [`SLOW_RETRY`].
    NotInstalled,
    /// Not permitted (403): the objects stay unknown; try again every [`SLOW_RETRY`].
    Forbidden(String),
    /// The resource version expired (410) or a running watch broke: the watcher resumes after a short
    /// backoff (listing again after a 410), marking nothing unless that fails too.
    Interrupted,
    /// The cluster cannot be reached or refused the request: mark it unreachable and back off.
    Unreachable(Problem),
}

impl Failure {
    fn of(e: &watcher::Error) -> Failure {
        use watcher::Error as W;
        let status = match e {
            W::WatchError(s) => Some((s.code, s.message.clone())),
            W::InitialListFailed(kube::Error::Api(s))
            | W::WatchStartFailed(kube::Error::Api(s))
            | W::WatchFailed(kube::Error::Api(s)) => Some((s.code, s.message.clone())),
            _ => None,
        };
        match (status, e) {
            (Some((404, _)), _) => Failure::NotInstalled,
            (Some((403, m)), _) => Failure::Forbidden(m),
            (Some((410, _)), _) | (_, W::NoResourceVersion) => Failure::Interrupted,
            (Some((code, m)), W::WatchError(_)) => {
                Failure::Unreachable(Problem::Other(format!("HTTP {code} {m}")))
            }
            // The stream of a watch that was running broke (a reset connection, the apiserver stopping):
            // reconnecting tells whether the cluster is gone.
            (None, W::WatchFailed(_)) => Failure::Interrupted,
            (_, W::InitialListFailed(k) | W::WatchStartFailed(k) | W::WatchFailed(k)) => {
                Failure::Unreachable(classify(k))
            }
            (_, _) => Failure::Interrupted,
        }
    }
}

/// The message of an unreachable cluster: which cluster, what failed, what to do, and that it is retried.
fn unreachable_message(cluster: &ClusterName, what: &str, problem: &Problem) -> String {
    format!(
        "cluster {cluster}: {problem} (while watching {what}; Meshdeck keeps the state last seen and reconnects on \
         its own, waiting up to {} s between attempts)",
        MAX_BACKOFF.as_secs()
    )
}

fn key_of<K: Resource>(o: &K) -> String {
    match o.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", o.name_any()),
        None => o.name_any(),
    }
}

type Events<K> = BoxStream<'static, watcher::Result<Event<K>>>;
/// Where a watch puts what it learned.
type Put<V> = Box<dyn Fn(&mut Stores, Change<V>) + Send + Sync>;

/// One watched kind: how to open its watch, what to keep of each object, and where.
struct Kind<K, V> {
    /// Unique among the cluster's watches.
    id: String,
    /// For messages, e.g. "Gateways in istio-eastwest".
    what: String,
    open: Box<dyn Fn() -> Events<K> + Send + Sync>,
    keep: fn(&K) -> Option<V>,
    put: Put<V>,
    /// For a custom resource: the client and the name of its CRD, watched while the API is not served.
    crd: Option<(Client, String)>,
}

impl<K, V> Kind<K, V> {
    /// Marks a custom resource, whose API is served once `resource`'s CRD is installed.
    fn custom(mut self, client: &Client, resource: &kube::api::ApiResource) -> Self {
        self.crd = Some((
            client.clone(),
            format!("{}.{}", resource.plural, resource.group),
        ));
        self
    }
}

fn kind<K, V>(
    id: impl Into<String>,
    what: impl Into<String>,
    api: Api<K>,
    config: watcher::Config,
    keep: fn(&K) -> Option<V>,
    put: impl Fn(&mut Stores, Change<V>) + Send + Sync + 'static,
) -> Kind<K, V>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let config = config.timeout(WATCH_TIMEOUT.as_secs() as u32);
    Kind {
        id: id.into(),
        what: what.into(),
        open: Box::new(move || watcher::watcher(api.clone(), config.clone()).boxed()),
        keep,
        put: Box::new(put),
        crd: None,
    }
}

/// Waits until a CRD exists, by watching for it (no polling). False when that watch fails (no permission
/// to read CRDs, or the cluster cannot be reached): the caller then retries after [`SLOW_RETRY`].
async fn crd_installed(client: Client, crd: &str) -> bool {
    let api = Api::<PartialObjectMeta<CustomResourceDefinition>>::all(client);
    let config = by_name(crd).timeout(WATCH_TIMEOUT.as_secs() as u32);
    let mut events = watcher::watcher(api, config).boxed();
    loop {
        match events.next().await {
            Some(Ok(Event::InitApply(_) | Event::Apply(_))) => return true,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return false,
        }
    }
}

/// Runs one watch for as long as the cluster is watched: applies what it sees to the shared state and
/// recovers from every failure (see the module's documentation).
async fn run<K, V>(shared: Arc<Shared>, kind: Kind<K, V>)
where
    K: Resource + Send + 'static,
    V: Send + 'static,
{
    let name = shared.name.clone();
    let mut backoff = DefaultBackoff::default();
    loop {
        let mut events = (kind.open)();
        let mut listed: Store<V> = BTreeMap::new();
        let mut synced = false;
        let error = loop {
            // Until its objects are listed a watch may take LIST_TIMEOUT; then the watcher's own idle timeout
            // (WATCH_TIMEOUT + 5 s) notices a dead connection.
            let next = if synced {
                events.next().await
            } else {
                match tokio::time::timeout(LIST_TIMEOUT, events.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        break Failure::Unreachable(Problem::Unreachable(format!(
                            "listing took longer than {} s",
                            LIST_TIMEOUT.as_secs()
                        )));
                    }
                }
            };
            let change = match next {
                Some(Ok(Event::Init)) => {
                    synced = false;
                    listed.clear();
                    None
                }
                Some(Ok(Event::InitApply(o))) => {
                    if let Some(v) = (kind.keep)(&o) {
                        listed.insert(key_of(&o), v);
                    }
                    None
                }
                Some(Ok(Event::InitDone)) => {
                    synced = true;
                    backoff.reset();
                    Some(Change::Replace(std::mem::take(&mut listed)))
                }
                Some(Ok(Event::Apply(o))) => Some(match (kind.keep)(&o) {
                    Some(v) => Change::Upsert(key_of(&o), v),
                    // It no longer is what this watch keeps (a Gateway of another class).
                    None => Change::Remove(key_of(&o)),
                }),
                Some(Ok(Event::Delete(o))) => Some(Change::Remove(key_of(&o))),
                Some(Err(e)) => match Failure::of(&e) {
                    // The watcher resumes on its own (from where it was, or by listing again after a 410):
                    // only pace it.
                    Failure::Interrupted => {
                        tracing::debug!("watch interrupted ({e}); resuming");
                        tokio::time::sleep(pause(&mut backoff)).await;
                        None
                    }
                    // Starting over, with a new list, is what shows the cluster is back.
                    failure => break failure,
                },
                // A watcher's stream does not end; if it did, start over.
                None => break Failure::Interrupted,
            };
            if let Some(change) = change {
                shared.update(&kind.id, |st| {
                    (kind.put)(&mut st.stores, change);
                    Shared::reached(st, &kind.id, &name, &kind.what);
                });
            }
        };
        drop(events);
        let wait = match error {
            Failure::NotInstalled => {
                tracing::debug!(what = %kind.what, "not served (CRD not installed?)");
                shared.update(&kind.id, |st| {
                    (kind.put)(&mut st.stores, Change::Replace(BTreeMap::new()));
                    Shared::reached(st, &kind.id, &name, &kind.what);
                });
                match &kind.crd {
                    // Once the CRD is there its API is served within moments (when it is Established).
                    Some((client, crd)) if crd_installed(client.clone(), crd).await => {
                        pause(&mut backoff)
                    }
                    _ => SLOW_RETRY,
                }
            }
            Failure::Forbidden(message) => {
                tracing::warn!(
                    what = %kind.what,
                    "not permitted to watch ({message}): grant Meshdeck's credentials list and watch on these objects"
                );
                shared.update(&kind.id, |st| {
                    Shared::reached(st, &kind.id, &name, &kind.what)
                });
                backoff.reset();
                SLOW_RETRY
            }
            Failure::Interrupted => {
                tracing::debug!(what = %kind.what, "watch interrupted; listing again");
                pause(&mut backoff)
            }
            Failure::Unreachable(problem) => {
                let message = unreachable_message(&name, &kind.what, &problem);
                shared.update(&kind.id, |st| {
                    st.pending.remove(&kind.id);
                    // One warning per outage, not one per watch.
                    if st.failures.is_empty() {
                        tracing::warn!(what = %kind.what, "cluster unreachable: {problem}");
                    }
                    st.failures.insert(kind.id.clone(), message);
                });
                pause(&mut backoff)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The next wait of a backoff: [`DefaultBackoff`] doubles from 0.8 s up to 30 s and adds up to as much
/// again as jitter; the wait is kept at [`MAX_BACKOFF`] at most.
fn pause(backoff: &mut DefaultBackoff) -> Duration {
    backoff.next().map_or(MAX_BACKOFF, |d| d.min(MAX_BACKOFF))
}

fn workload_of_deployment(d: &Deployment) -> WorkloadState {
    let count = |n: Option<i32>| u32::try_from(n.unwrap_or(0)).unwrap_or(0);
    WorkloadState {
        desired: count(Some(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))),
        ready: count(d.status.as_ref().and_then(|s| s.ready_replicas)),
    }
}

fn keep_istiod(d: &Deployment) -> Option<IstiodState> {
    Some(IstiodState {
        pods: workload_of_deployment(d),
        revision: d.labels().get("istio.io/rev").cloned(),
    })
}

fn keep_deployment(d: &Deployment) -> Option<WorkloadState> {
    Some(workload_of_deployment(d))
}

fn keep_daemonset(d: &DaemonSet) -> Option<WorkloadState> {
    let count = |n: i32| u32::try_from(n).unwrap_or(0);
    let status = d.status.as_ref();
    Some(WorkloadState {
        desired: count(status.map_or(0, |s| s.desired_number_scheduled)),
        ready: count(status.map_or(0, |s| s.number_ready)),
    })
}

fn keep_gateway(g: &DynamicObject) -> Option<GatewayEntry> {
    if let Some(ew) = EastWestState::from_gateway(g) {
        return Some(GatewayEntry::EastWest(
            ew,
            g.labels().get(REGION_LABEL).cloned(),
        ));
    }
    PeerGatewayState::from_gateway(g).map(GatewayEntry::Peer)
}

fn keep_smc(smc: &DynamicObject) -> Option<SmcState> {
    Some(SmcState::from_object(smc))
}

/// Only the root's fingerprint: the Secret, with the intermediate's key, is dropped as soon as it is read.
fn keep_cacerts(secret: &Secret) -> Option<Option<String>> {
    Some(crate::ca::secret_root_fingerprint(secret))
}

/// The trust domain of a mesh ConfigMap (key `mesh`), with mesh config's default `cluster.local`.
fn keep_trust_domain(cm: &ConfigMap) -> Option<String> {
    let mesh = cm.data.as_ref().and_then(|d| d.get("mesh"));
    Some(
        mesh.and_then(|m| {
            crate::yaml::from_str::<Value>(m, &crate::yaml::Limits::CLUSTER_VALUE).ok()
        })
        .and_then(|v| v["trustDomain"].as_str().map(String::from))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cluster.local".into()),
    )
}

fn keep_labels<K: Resource>(o: &PartialObjectMeta<K>) -> Option<Labels> {
    Some(o.labels().clone())
}

fn by_name(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

fn spawn<K, V>(tasks: &mut JoinSet<()>, shared: &Arc<Shared>, kind: Kind<K, V>) -> AbortHandle
where
    K: Resource + Send + 'static,
    V: Send + 'static,
{
    let span = tracing::info_span!("watch", cluster = %shared.name, what = %kind.what);
    tasks.spawn(run(shared.clone(), kind).instrument(span))
}

/// The Services of one namespace (metadata only: the labels are all the drill-down needs).
fn services_in(client: &Client, ns: &str) -> Kind<PartialObjectMeta<Service>, Labels> {
    let id = format!("{SERVICES_IN}{ns}");
    let slot = id.clone();
    kind(
        id,
        format!("Services in {ns}"),
        Api::namespaced(client.clone(), ns),
        watcher::Config::default(),
        keep_labels,
        move |s, c| c.apply_to(s.services.entry(slot.clone()).or_default()),
    )
}

/// The watches in the control plane's namespace `ns` ([`IN_ISTIO_NAMESPACE`]): istiod's Deployments, the
/// DaemonSets, `cacerts`, the mesh ConfigMaps and the namespace itself (its network label).
fn spawn_istio(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    c: &Client,
    ns: &str,
) -> Vec<AbortHandle> {
    let mut out = vec![
        spawn(
            tasks,
            shared,
            kind(
                in_istio("istiod", ns),
                format!("istiod Deployments (app=istiod) in {ns}"),
                Api::<Deployment>::namespaced(c.clone(), ns),
                watcher::Config::default().labels("app=istiod"),
                keep_istiod,
                |s, ch| ch.apply_to(&mut s.istiod),
            ),
        ),
        spawn(
            tasks,
            shared,
            kind(
                in_istio("daemonsets", ns),
                format!("DaemonSets in {ns}"),
                Api::<DaemonSet>::namespaced(c.clone(), ns),
                watcher::Config::default(),
                keep_daemonset,
                |s, ch| ch.apply_to(&mut s.daemonsets),
            ),
        ),
        spawn(
            tasks,
            shared,
            kind(
                in_istio("cacerts", ns),
                format!("Secret cacerts in {ns}"),
                Api::<Secret>::namespaced(c.clone(), ns),
                by_name("cacerts"),
                keep_cacerts,
                |s, ch| ch.apply_to(&mut s.cacerts),
            ),
        ),
        spawn(
            tasks,
            shared,
            kind(
                in_istio("namespace", ns),
                format!("Namespace {ns}"),
                Api::<PartialObjectMeta<Namespace>>::all(c.clone()),
                by_name(ns),
                keep_labels,
                |s, ch| ch.apply_to(s.namespaces.entry(ISTIO_NAMESPACE_KEY).or_default()),
            ),
        ),
    ];
    for cm in MESH_CONFIGS {
        out.push(spawn(
            tasks,
            shared,
            kind(
                in_istio(&format!("mesh config {cm}"), ns),
                format!("ConfigMap {cm} in {ns}"),
                Api::<ConfigMap>::namespaced(c.clone(), ns),
                by_name(cm),
                keep_trust_domain,
                move |s, ch| ch.apply_to(s.mesh_config.entry(cm).or_default()),
            ),
        ));
    }
    out
}

/// Starts and stops the per-namespace Service watches as namespaces join and leave the mesh, and runs the
/// control plane's watches in the namespace its ServiceMeshController names.
async fn supervise_services(
    shared: Arc<Shared>,
    client: Client,
    mut commands: mpsc::UnboundedReceiver<ServiceWatch>,
) {
    let mut tasks = JoinSet::new();
    let mut running: BTreeMap<String, AbortHandle> = BTreeMap::new();
    let mut istio = spawn_istio(&mut tasks, &shared, &client, ISTIO_NAMESPACE);
    while let Some(command) = commands.recv().await {
        match command {
            ServiceWatch::Istio(ns) => {
                for old in istio.drain(..) {
                    old.abort();
                }
                istio = spawn_istio(&mut tasks, &shared, &client, &ns);
            }
            ServiceWatch::Start(ns) => {
                let handle = spawn(&mut tasks, &shared, services_in(&client, &ns));
                if let Some(old) = running.insert(ns, handle) {
                    old.abort();
                }
            }
            ServiceWatch::Stop(ns) => {
                if let Some(handle) = running.remove(&ns) {
                    handle.abort();
                }
            }
        }
        while tasks.try_join_next().is_some() {}
    }
}

/// Publishes the snapshot after each burst of changes: the first one once every watch has listed its
/// objects (or failed), then whenever it differs from the last one published.
async fn publish(
    shared: Arc<Shared>,
    snapshots: watch::Sender<ClusterSnapshot>,
    generation: Option<Arc<watch::Sender<u64>>>,
) {
    loop {
        shared.dirty.notified().await;
        tokio::time::sleep(DEBOUNCE).await;
        let (first, snap) = {
            let mut st = shared.lock();
            if (!st.published && !st.pending.is_empty()) || (st.published && st.moving()) {
                continue;
            }
            let first = !st.published;
            st.published = true;
            (first, st.snapshot(&shared.name))
        };
        let changed = if first {
            snapshots.send_replace(snap);
            true
        } else {
            snapshots.send_if_modified(|current| {
                let changed = *current != snap;
                if changed {
                    *current = snap;
                }
                changed
            })
        };
        if changed && let Some(g) = &generation {
            g.send_modify(|n| *n += 1);
        }
    }
}

/// The watches of one cluster. Dropping it (or [`ClusterWatch::stop`]) stops them.
pub struct ClusterWatch {
    name: ClusterName,
    shared: Arc<Shared>,
    snapshots: watch::Receiver<ClusterSnapshot>,
    /// Dropping a JoinSet aborts its tasks.
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for ClusterWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterWatch")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClusterWatch {
    /// Starts watching a cluster (within a Tokio runtime). The receiver holds [`ClusterSnapshot::new`] until
    /// the first complete snapshot, which is the first change it sees; after that, each change is a new
    /// snapshot. The client should not have a read timeout (see [`crate::connect::watch_client`]).
    pub fn start(
        name: ClusterName,
        client: Client,
    ) -> (ClusterWatch, watch::Receiver<ClusterSnapshot>) {
        Self::start_with(name, client, None)
    }

    fn start_with(
        name: ClusterName,
        client: Client,
        generation: Option<Arc<watch::Sender<u64>>>,
    ) -> (ClusterWatch, watch::Receiver<ClusterSnapshot>) {
        let (services_tx, services_rx) = mpsc::unbounded_channel();
        let (snapshots_tx, snapshots) = watch::channel(ClusterSnapshot::new(name.clone()));
        let mut ids: Vec<String> = ["gateways", "smc", "operator", "exported services"]
            .into_iter()
            .chain(NAMESPACE_SELECTORS.iter().map(|(selector, _)| *selector))
            .map(String::from)
            .collect();
        ids.extend(
            IN_ISTIO_NAMESPACE
                .iter()
                .map(|id| in_istio(id, ISTIO_NAMESPACE)),
        );
        let shared = Arc::new(Shared {
            name: name.clone(),
            state: Mutex::new(State::new(ids)),
            dirty: Notify::new(),
            services: services_tx,
        });
        let mut tasks = JoinSet::new();
        let c = &client;
        let t = &mut tasks;
        let gateways = gateway_resource();
        spawn(
            t,
            &shared,
            kind(
                "gateways",
                format!("Gateways in {EASTWEST_NAMESPACE}"),
                Api::<DynamicObject>::namespaced_with(c.clone(), EASTWEST_NAMESPACE, &gateways),
                watcher::Config::default(),
                keep_gateway,
                |s, ch| ch.apply_to(&mut s.gateways),
            )
            .custom(c, &gateways),
        );
        let smc = smc_resource();
        spawn(
            t,
            &shared,
            kind(
                "smc",
                format!("ServiceMeshController {SMC_NAME} in {OPERATOR_NAMESPACE}"),
                Api::<DynamicObject>::namespaced_with(c.clone(), OPERATOR_NAMESPACE, &smc),
                by_name(SMC_NAME),
                keep_smc,
                |s, ch| ch.apply_to(&mut s.smc),
            )
            .custom(c, &smc),
        );
        spawn(
            t,
            &shared,
            kind(
                "operator",
                format!("Deployment {OPERATOR_DEPLOYMENT} in {OPERATOR_NAMESPACE}"),
                Api::<Deployment>::namespaced(c.clone(), OPERATOR_NAMESPACE),
                by_name(OPERATOR_DEPLOYMENT),
                keep_deployment,
                |s, ch| ch.apply_to(&mut s.operator),
            ),
        );
        for (selector, what) in NAMESPACE_SELECTORS {
            spawn(
                t,
                &shared,
                kind(
                    selector,
                    what,
                    Api::<PartialObjectMeta<Namespace>>::all(c.clone()),
                    watcher::Config::default().labels(selector),
                    keep_labels,
                    move |s, ch| ch.apply_to(s.namespaces.entry(selector).or_default()),
                ),
            );
        }
        spawn(
            t,
            &shared,
            kind(
                "exported services",
                format!("Services labelled {SERVICE_SCOPE_LABEL}"),
                Api::<PartialObjectMeta<Service>>::all(c.clone()),
                watcher::Config::default().labels(SERVICE_SCOPE_LABEL),
                keep_labels,
                |s, ch| {
                    ch.apply_to(
                        s.services
                            .entry("exported services".to_string())
                            .or_default(),
                    )
                },
            ),
        );
        let span = tracing::info_span!("watch", cluster = %name);
        tasks.spawn(
            supervise_services(shared.clone(), client, services_rx).instrument(span.clone()),
        );
        tasks.spawn(publish(shared.clone(), snapshots_tx, generation).instrument(span));
        let watch = ClusterWatch {
            name,
            shared,
            snapshots: snapshots.clone(),
            _tasks: tasks,
        };
        (watch, snapshots)
    }

    pub fn name(&self) -> &ClusterName {
        &self.name
    }

    /// The snapshot last published.
    pub fn snapshot(&self) -> ClusterSnapshot {
        self.snapshots.borrow().clone()
    }

    /// Another receiver of the snapshots.
    pub fn subscribe(&self) -> watch::Receiver<ClusterSnapshot> {
        self.snapshots.clone()
    }

    /// Records what the license check found: istiod's license is read through a port-forward, which no
    /// watch can follow.
    pub fn set_license(&self, license: LicenseState) {
        self.shared.update("license", |st| st.license = license);
    }

    /// Records what a drift comparison found: the objects that differed from what Meshdeck applied (none:
    /// empty). Compared on request by the console, so no watch can follow it.
    pub fn set_drift(&self, drifted: Vec<String>) {
        self.shared.update("drift", |st| st.drift = Some(drifted));
    }

    /// Stops the watches (as dropping does).
    pub fn stop(self) {}
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::graph::{ConditionView, EastWestKind};

    fn name(n: &str) -> ClusterName {
        ClusterName::new(n).expect("name")
    }

    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn store<V>(entries: Vec<(&str, V)>) -> Store<V> {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    fn eastwest(address: &str) -> EastWestState {
        EastWestState {
            kind: EastWestKind::LoadBalancer,
            addresses: vec![address.into()],
            address_override: None,
            programmed: None,
            cluster_label: Some("c1".into()),
        }
    }

    fn peer(n: &str) -> PeerGatewayState {
        PeerGatewayState {
            name: n.into(),
            ..Default::default()
        }
    }

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure(
                "the server could not find the requested resource",
                "NotFound",
            )
            .with_code(code),
        ))
    }

    #[test]
    fn the_control_plane_watches_follow_the_install_namespace_and_hold_the_snapshot_until_they_listed()
     {
        let ids = IN_ISTIO_NAMESPACE.map(|id| in_istio(id, ISTIO_NAMESPACE));
        let mut st = State::new(ids.clone());
        for id in &ids {
            st.pending.remove(id);
        }
        st.published = true;
        st.stores.cacerts = store(vec![("istio-system/cacerts", Some("abcd".to_string()))]);
        assert_eq!(st.reconcile_istio(), None, "no controller: istio-system");
        assert!(!st.moving());
        st.stores.smc = store(vec![(
            "gloo-mesh/managed-istio",
            SmcState {
                install_namespace: Some("istio-custom".into()),
                ..Default::default()
            },
        )]);
        assert_eq!(st.reconcile_istio().as_deref(), Some("istio-custom"));
        assert_eq!(st.reconcile_istio(), None, "once");
        assert!(
            st.stores.cacerts.is_empty(),
            "what istio-system held is forgotten"
        );
        assert!(
            !st.is_live("cacerts @istio-system"),
            "the old watches' late events"
        );
        assert!(st.is_live("cacerts @istio-custom"));
        assert!(st.moving(), "the snapshot waits for the new watches");
        for id in IN_ISTIO_NAMESPACE {
            st.pending.remove(&in_istio(id, "istio-custom"));
        }
        assert!(!st.moving());
        st.stores.smc.clear();
        assert_eq!(
            st.reconcile_istio().as_deref(),
            Some(ISTIO_NAMESPACE),
            "the controller gone: back to istio-system"
        );
    }

    #[test]
    fn the_snapshot_is_made_of_what_the_watches_keep() {
        let mut st = State::new([]);
        let s = &mut st.stores;
        s.gateways = store(vec![
            (
                "istio-eastwest/another-eastwest",
                GatewayEntry::EastWest(eastwest("10.0.0.9"), None),
            ),
            (
                "istio-eastwest/istio-eastwest",
                GatewayEntry::EastWest(eastwest("10.0.0.1"), Some("eu-west-1".into())),
            ),
            (
                "istio-eastwest/istio-remote-peer-c3",
                GatewayEntry::Peer(peer("istio-remote-peer-c3")),
            ),
            (
                "istio-eastwest/istio-remote-peer-c2",
                GatewayEntry::Peer(peer("istio-remote-peer-c2")),
            ),
        ]);
        s.istiod = store(vec![
            (
                "istio-system/istiod-gloo",
                IstiodState {
                    pods: WorkloadState {
                        desired: 2,
                        ready: 1,
                    },
                    revision: Some("gloo".into()),
                },
            ),
            (
                "istio-system/istiod-next",
                IstiodState {
                    pods: WorkloadState {
                        desired: 1,
                        ready: 1,
                    },
                    revision: Some("next".into()),
                },
            ),
        ]);
        s.daemonsets = store(vec![
            (
                "istio-system/ztunnel",
                WorkloadState {
                    desired: 3,
                    ready: 3,
                },
            ),
            (
                "istio-system/other",
                WorkloadState {
                    desired: 1,
                    ready: 0,
                },
            ),
        ]);
        s.cacerts = store(vec![("istio-system/cacerts", Some("abcd".to_string()))]);
        s.mesh_config.insert(
            "istio",
            store(vec![("istio-system/istio", "old.local".to_string())]),
        );
        s.mesh_config.insert(
            "istio-gloo",
            store(vec![("istio-system/istio-gloo", "c1".to_string())]),
        );
        let snap = st.snapshot(&name("c1"));
        assert_eq!(
            snap.eastwest,
            Some(eastwest("10.0.0.1")),
            "the one named istio-eastwest"
        );
        assert_eq!(snap.region.as_deref(), Some("eu-west-1"));
        let peers: Vec<&str> = snap.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(peers, ["istio-remote-peer-c2", "istio-remote-peer-c3"]);
        assert_eq!(
            snap.istiod,
            Some(IstiodState {
                pods: WorkloadState {
                    desired: 3,
                    ready: 2
                },
                revision: Some("gloo".into())
            })
        );
        assert_eq!(
            snap.ztunnel,
            Some(WorkloadState {
                desired: 3,
                ready: 3
            })
        );
        assert_eq!(snap.cni, None);
        assert_eq!(snap.root_fingerprint.as_deref(), Some("abcd"));
        assert_eq!(snap.trust_domain.as_deref(), Some("c1"), "istio-gloo first");
        assert_eq!(
            (snap.smc, snap.operator, snap.unreachable),
            (None, None, None)
        );

        // A relist of `istio` (gone now) leaves what the `istio-gloo` watch keeps.
        Change::Replace(Store::new()).apply_to(st.stores.mesh_config.entry("istio").or_default());
        assert_eq!(st.snapshot(&name("c1")).trust_domain.as_deref(), Some("c1"));
    }

    #[test]
    fn namespaces_join_their_services_and_meshed_ones_get_a_service_watch() {
        let mut st = State::new([]);
        let s = &mut st.stores;
        s.namespaces.insert(
            ISTIO_NAMESPACE_KEY,
            store(vec![("istio-system", labels(&[(NETWORK_LABEL, "net1")]))]),
        );
        let shop = labels(&[
            ("istio.io/dataplane-mode", "ambient"),
            (SERVICE_SCOPE_LABEL, "global"),
        ]);
        s.namespaces.insert(
            NAMESPACE_SELECTORS[0].0,
            store(vec![("shop", shop.clone())]),
        );
        s.namespaces.insert(
            SERVICE_SCOPE_LABEL,
            store(vec![
                ("shop", shop.clone()),
                ("public", labels(&[(SERVICE_SCOPE_LABEL, "global-only")])),
                ("local", labels(&[(SERVICE_SCOPE_LABEL, "cluster")])),
            ]),
        );
        assert_eq!(
            st.reconcile_services(),
            [
                ServiceWatch::Start("public".into()),
                ServiceWatch::Start("shop".into())
            ]
        );
        assert!(st.pending.contains("services in shop"));
        assert!(st.reconcile_services().is_empty(), "nothing changed");
        let exported = labels(&[(SERVICE_SCOPE_LABEL, "global")]);
        st.stores.services.insert(
            "exported services".into(),
            store(vec![
                ("shop/cart", exported.clone()),
                ("plain/api", exported.clone()),
            ]),
        );
        st.stores.services.insert(
            "services in shop".into(),
            store(vec![
                ("shop/cart", exported.clone()),
                ("shop/admin", Labels::new()),
            ]),
        );
        let snap = st.snapshot(&name("c1"));
        assert_eq!(snap.network.as_deref(), Some("net1"));
        let names: Vec<&str> = snap.namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["istio-system", "local", "plain", "public", "shop"]);
        let shop_ns = &snap.namespaces[4];
        assert_eq!(shop_ns.labels, shop);
        let svcs: Vec<&str> = shop_ns.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(svcs, ["admin", "cart"]);
        assert!(
            snap.namespaces[2].labels.is_empty(),
            "known only through its Service"
        );
        assert!(snap.namespaces[2].exports(&snap.namespaces[2].services[0]));

        // The namespace leaves the mesh: its Service watch stops and what it sent is forgotten.
        for s in st.stores.namespaces.values_mut() {
            s.remove("shop");
        }
        assert_eq!(st.reconcile_services(), [ServiceWatch::Stop("shop".into())]);
        assert!(!st.stores.services.contains_key("services in shop"));
        assert!(!st.is_live("services in shop"));
        assert!(st.is_live("gateways"));
    }

    #[test]
    fn failures_say_whether_the_cluster_is_unreachable() {
        use watcher::Error as W;
        assert_eq!(
            Failure::of(&W::InitialListFailed(api_error(404))),
            Failure::NotInstalled
        );
        assert!(matches!(
            Failure::of(&W::WatchStartFailed(api_error(403))),
            Failure::Forbidden(_)
        ));
        assert_eq!(
            Failure::of(&W::WatchError(Box::new(
                kube::core::Status::failure("too old", "Expired").with_code(410)
            ))),
            Failure::Interrupted
        );
        assert_eq!(Failure::of(&W::NoResourceVersion), Failure::Interrupted);
        assert!(matches!(
            Failure::of(&W::InitialListFailed(api_error(401))),
            Failure::Unreachable(Problem::Unauthorized(_))
        ));
        assert!(matches!(
            Failure::of(&W::WatchError(Box::new(
                kube::core::Status::failure("boom", "InternalError").with_code(500)
            ))),
            Failure::Unreachable(Problem::Other(_))
        ));
        let m = unreachable_message(
            &name("c3"),
            "Gateways in istio-eastwest",
            &Problem::Unreachable("tcp connect error: Connection refused".into()),
        );
        assert_eq!(
            m,
            "cluster c3: cannot reach the API server (tcp connect error: Connection refused); check the server address \
             and that this machine can connect to it (while watching Gateways in istio-eastwest; Meshdeck keeps the \
             state last seen and reconnects on its own, waiting up to 30 s between attempts)"
        );
    }

    #[test]
    fn objects_are_read_into_what_the_topology_needs() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "istiod-gloo", "namespace": "istio-system", "labels": {"app": "istiod", "istio.io/rev": "gloo"}},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"readyReplicas": 1}
        }))
        .expect("deployment");
        assert_eq!(
            keep_istiod(&d),
            Some(IstiodState {
                pods: WorkloadState {
                    desired: 2,
                    ready: 1
                },
                revision: Some("gloo".into())
            })
        );
        let ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ztunnel", "namespace": "istio-system"},
            "status": {"desiredNumberScheduled": 3, "numberReady": 2, "currentNumberScheduled": 3, "numberMisscheduled": 0}
        }))
        .expect("daemonset");
        assert_eq!(
            keep_daemonset(&ds),
            Some(WorkloadState {
                desired: 3,
                ready: 2
            })
        );
        let cm = |mesh: Option<&str>| -> ConfigMap {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "istio", "namespace": "istio-system"},
                "data": mesh.map(|m| serde_json::json!({"mesh": m})).unwrap_or(serde_json::json!({}))
            }))
            .expect("configmap")
        };
        assert_eq!(
            keep_trust_domain(&cm(Some("trustDomain: c1\ndefaultConfig: {}\n"))).as_deref(),
            Some("c1")
        );
        assert_eq!(
            keep_trust_domain(&cm(Some("accessLogFile: /dev/stdout\n"))).as_deref(),
            Some("cluster.local")
        );
        assert_eq!(
            keep_trust_domain(&cm(None)).as_deref(),
            Some("cluster.local")
        );
        let smc: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "operator.gloo.solo.io/v1", "kind": "ServiceMeshController",
            "metadata": {"name": "managed-istio", "namespace": "gloo-mesh"},
            "spec": {"version": "1.28.1-patch0"},
            "status": {"phase": "SUCCEEDED", "conditions": [{"type": "Ready", "status": "True", "reason": "SystemReady", "message": "All conditions are met"}]}
        }))
        .expect("smc");
        assert_eq!(
            keep_smc(&smc),
            Some(SmcState {
                phase: Some("SUCCEEDED".into()),
                conditions: vec![ConditionView {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: "SystemReady".into(),
                    message: "All conditions are met".into()
                }],
                version: Some("1.28.1-patch0".into()),
                install_namespace: None,
            })
        );
        let other: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "ingress", "namespace": "istio-eastwest"},
            "spec": {"gatewayClassName": "istio"}
        }))
        .expect("gateway");
        assert_eq!(keep_gateway(&other), None);
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_published_once_and_only_after_every_watch_listed() {
        let (services, _rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            name: name("c1"),
            state: Mutex::new(State::new(["a".to_string(), "b".to_string()])),
            dirty: Notify::new(),
            services,
        });
        let (tx, mut rx) = watch::channel(ClusterSnapshot::new(name("c1")));
        let generation = Arc::new(watch::channel(0).0);
        let mut counter = generation.subscribe();
        let task = tokio::spawn(publish(shared.clone(), tx, Some(generation.clone())));
        let reached =
            |id: &'static str| move |st: &mut State| Shared::reached(st, id, &name("c1"), id);
        shared.update("a", reached("a"));
        tokio::time::sleep(DEBOUNCE * 3).await;
        assert!(!rx.has_changed().expect("open"), "b has not listed yet");
        shared.update("b", reached("b"));
        rx.changed().await.expect("first snapshot");
        rx.borrow_and_update();
        for i in 0..10u32 {
            shared.update("a", |st| {
                st.stores.operator = store(vec![(
                    "gloo-mesh/gloo-operator",
                    WorkloadState {
                        desired: 1,
                        ready: i,
                    },
                )]);
            });
        }
        let start = tokio::time::Instant::now();
        rx.changed().await.expect("changed");
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(
            rx.borrow_and_update().operator,
            Some(WorkloadState {
                desired: 1,
                ready: 9
            })
        );
        tokio::time::sleep(DEBOUNCE * 3).await;
        assert!(
            !rx.has_changed().expect("open"),
            "one publication for the burst"
        );
        assert_eq!(*counter.borrow_and_update(), 2);
        // Nothing new: nothing published.
        shared.update("a", |_| {});
        tokio::time::sleep(DEBOUNCE * 3).await;
        assert!(!rx.has_changed().expect("open"));
        task.abort();
    }
}
