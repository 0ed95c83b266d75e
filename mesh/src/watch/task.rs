//! One watch as a task: what it keeps, where, and how it recovers from every failure.

use super::*;

/// What the tasks of one cluster share.
pub(super) struct Shared {
    pub(super) name: ClusterName,
    pub(super) state: Mutex<State>,
    /// Wakes the publisher.
    pub(super) dirty: Notify,
    pub(super) services: mpsc::UnboundedSender<ServiceWatch>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the state of watch `id` (unless it was stopped meanwhile) and wakes the publisher.
    pub(super) fn update(&self, id: &str, f: impl FnOnce(&mut State)) {
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
    pub(super) fn reached(st: &mut State, id: &str, name: &ClusterName, what: &str) {
        st.pending.remove(id);
        if st.failures.remove(id).is_some() && st.failures.is_empty() {
            tracing::info!(cluster = %name, what, "reachable again");
        }
    }
}

/// Why a watch stopped, and what follows.
#[derive(Debug, PartialEq)]
pub(super) enum Failure {
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
    pub(super) fn of(e: &watcher::Error) -> Failure {
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
pub(super) fn unreachable_message(cluster: &ClusterName, what: &str, problem: &Problem) -> String {
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
pub(super) struct Kind<K, V> {
    /// Unique among the cluster's watches.
    pub(super) id: String,
    /// For messages, e.g. "Gateways in istio-eastwest".
    pub(super) what: String,
    pub(super) open: Box<dyn Fn() -> Events<K> + Send + Sync>,
    pub(super) keep: fn(&K) -> Option<V>,
    pub(super) put: Put<V>,
    /// For a custom resource: the client and the name of its CRD, watched while the API is not served.
    pub(super) crd: Option<(Client, String)>,
}

impl<K, V> Kind<K, V> {
    /// Marks a custom resource, whose API is served once `resource`'s CRD is installed.
    pub(super) fn custom(mut self, client: &Client, resource: &kube::api::ApiResource) -> Self {
        self.crd = Some((
            client.clone(),
            format!("{}.{}", resource.plural, resource.group),
        ));
        self
    }
}

pub(super) fn kind<K, V>(
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
pub(super) async fn run<K, V>(shared: Arc<Shared>, kind: Kind<K, V>)
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
