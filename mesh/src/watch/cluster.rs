//! One cluster's watches: started, moved with the control plane's namespace, the per-namespace Service
//! watches following the mesh's namespaces, and the snapshots published.

use super::*;

pub(super) fn spawn<K, V>(
    tasks: &mut JoinSet<()>,
    shared: &Arc<Shared>,
    kind: Kind<K, V>,
) -> AbortHandle
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
pub(super) async fn publish(
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
    pub(super) name: ClusterName,
    pub(super) shared: Arc<Shared>,
    pub(super) snapshots: watch::Receiver<ClusterSnapshot>,
    /// Dropping a JoinSet aborts its tasks.
    pub(super) _tasks: JoinSet<()>,
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

    pub(super) fn start_with(
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
