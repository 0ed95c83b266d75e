//! What one cluster's watches hold (only the parts of objects the snapshot is made of), and the snapshot
//! made of it.

use super::*;

/// What a watch learned: all objects after a (re)list, or one object.
pub(super) enum Change<V> {
    Replace(Store<V>),
    Upsert(String, V),
    Remove(String),
}

impl<V> Change<V> {
    pub(super) fn apply_to(self, store: &mut Store<V>) {
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
pub(super) enum GatewayEntry {
    /// With its `topology.kubernetes.io/region` label, which `expose` copies from the nodes when they all
    /// share one region.
    EastWest(EastWestState, Option<String>),
    Peer(PeerGatewayState),
}

/// What the watches of one cluster hold: only the parts of objects the snapshot is made of.
#[derive(Default)]
pub(super) struct Stores {
    pub(super) gateways: Store<GatewayEntry>,
    pub(super) smc: Store<SmcState>,
    pub(super) istiod: Store<IstiodState>,
    pub(super) operator: Store<WorkloadState>,
    pub(super) daemonsets: Store<WorkloadState>,
    /// The root fingerprint of `cacerts` (`None` when it has no readable root).
    pub(super) cacerts: Store<Option<String>>,
    /// The trust domain of each mesh ConfigMap, by ConfigMap (each is its own watch: a relist replaces
    /// only what that watch keeps).
    pub(super) mesh_config: BTreeMap<&'static str, Store<String>>,
    /// Namespace labels, per selector.
    pub(super) namespaces: BTreeMap<&'static str, Store<Labels>>,
    /// Service labels by `namespace/name`, per watch.
    pub(super) services: BTreeMap<String, Store<Labels>>,
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
pub(super) struct State {
    pub(super) stores: Stores,
    /// Why a watch cannot reach the cluster, by watch id.
    pub(super) failures: BTreeMap<String, String>,
    /// Watches that have not listed their objects (or failed) yet; the first snapshot waits for them.
    pub(super) pending: BTreeSet<String>,
    pub(super) published: bool,
    pub(super) license: LicenseState,
    pub(super) drift: Option<Vec<String>>,
    /// The namespaces whose Services are watched.
    pub(super) service_namespaces: BTreeSet<String>,
    /// The namespace the control plane's watches run in.
    pub(super) istio_ns: String,
}

impl State {
    pub(super) fn new(ids: impl IntoIterator<Item = String>) -> Self {
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
    pub(super) fn is_live(&self, id: &str) -> bool {
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
    pub(super) fn reconcile_istio(&mut self) -> Option<String> {
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
    pub(super) fn moving(&self) -> bool {
        self.pending.iter().any(|id| id.contains(IN_NS))
    }

    /// Starts and stops the per-namespace Service watches to follow the namespaces; returns the commands.
    pub(super) fn reconcile_services(&mut self) -> Vec<ServiceWatch> {
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
    pub(super) fn snapshot(&self, name: &ClusterName) -> ClusterSnapshot {
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
pub(super) enum ServiceWatch {
    Start(String),
    Stop(String),
    /// The control plane's watches ([`IN_ISTIO_NAMESPACE`]) run in this namespace now.
    Istio(String),
}
