//! The simulated world: every cluster of the kubeconfig, and the loop that runs each cluster's controllers
//! whenever anything changes anywhere (peering decisions read the peer clusters' state).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::watch;
use tracing::Instrument;

use crate::cluster::Cluster;
use crate::{Options, gateways, lb, mgmt, operator};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("context {context}: {source}")]
    Client {
        context: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing state folder: {0}")]
    State(#[from] std::io::Error),
}

pub struct World {
    pub clusters: Vec<Arc<Cluster>>,
    step_delay: Duration,
    since: Mutex<HashMap<String, Instant>>,
    broken_ca: Mutex<HashMap<String, String>>,
    lb: tokio::sync::Mutex<()>,
    lb_reserved: Mutex<HashMap<std::net::Ipv4Addr, Instant>>,
}

impl World {
    /// True once `cond` has held continuously for the step delay (keyed by `key`). The simulator uses it to
    /// make transitions "come true" one after another instead of all at once.
    pub fn held_for(&self, key: &str, cond: bool) -> bool {
        self.held_for_at_least(key, cond, self.step_delay)
    }

    pub fn held_for_at_least(&self, key: &str, cond: bool, delay: Duration) -> bool {
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        if !cond {
            since.remove(key);
            return false;
        }
        let t = *since.entry(key.to_string()).or_insert_with(Instant::now);
        t.elapsed() >= delay
    }

    pub fn broken_ca(&self, pod_uid: &str) -> Option<String> {
        self.broken_ca
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(pod_uid)
            .cloned()
    }

    pub fn set_broken_ca(&self, pod_uid: &str, msg: &str) {
        self.broken_ca
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(pod_uid.to_string(), msg.to_string());
    }

    /// Serialises address allocation across clusters.
    pub async fn lb_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lb.lock().await
    }

    /// An address handed out in the last 30 s, which the watch caches may not show yet.
    pub fn lb_reserved(&self, ip: &std::net::Ipv4Addr) -> bool {
        let r = self.lb_reserved.lock().unwrap_or_else(|e| e.into_inner());
        r.get(ip)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(30))
    }

    pub fn lb_reserve(&self, ip: std::net::Ipv4Addr) {
        let mut r = self.lb_reserved.lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|_, t| t.elapsed() < Duration::from_secs(30));
        r.insert(ip, Instant::now());
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

async fn reconcile_cluster(world: &World, cluster: &Cluster) {
    // Each controller runs on its own so one failing write does not starve the others.
    if let Err(e) = lb::reconcile(world, cluster).await {
        tracing::warn!("load balancer: {e}");
    }
    if let Err(e) = operator::reconcile(world, cluster).await {
        tracing::warn!("operator: {e}");
    }
    if let Err(e) = operator::istiod_startup(world, cluster).await {
        tracing::warn!("istiod: {e}");
    }
    if let Err(e) = gateways::reconcile(world, cluster).await {
        tracing::warn!("gateways: {e}");
    }
    if let Err(e) = mgmt::reconcile(world, cluster).await {
        tracing::warn!("management plane: {e}");
    }
}

pub async fn run(opts: Options) -> Result<(), Error> {
    let path = opts.kubeconfig.display().to_string();
    let kubeconfig = Kubeconfig::read_from(&opts.kubeconfig)
        .map_err(|source| Error::Kubeconfig { path, source })?;
    let (changes, _) = watch::channel(0u64);
    let mut clusters = Vec::new();
    for context in &opts.contexts {
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
            .await
            .map_err(|e| Error::Client {
                context: context.clone(),
                source: kube::Error::InferKubeconfig(e),
            })?;
        let client = kube::Client::try_from(config).map_err(|source| Error::Client {
            context: context.clone(),
            source,
        })?;
        clusters.push(Cluster::start(context.clone(), client, &changes));
    }
    let world = Arc::new(World {
        clusters,
        step_delay: opts.step_delay,
        since: Mutex::new(HashMap::new()),
        broken_ca: Mutex::new(HashMap::new()),
        lb: tokio::sync::Mutex::new(()),
        lb_reserved: Mutex::new(HashMap::new()),
    });
    for c in &world.clusters {
        c.wait_synced().await;
    }
    for (c, port) in world.clusters.iter().zip(opts.debug_ports.iter()) {
        tokio::spawn(crate::debug::serve(c.clone(), *port));
    }
    tracing::info!(
        clusters = world.clusters.len(),
        step_delay_ms = opts.step_delay.as_millis() as u64,
        "meshsim running"
    );
    if let Some(state) = &opts.state {
        std::fs::create_dir_all(state)?;
        std::fs::write(Path::new(state).join("ready"), b"ok\n")?;
    }

    // One task per cluster: a stopped apiserver stalls only its own cluster's controllers.
    let mut tasks = Vec::new();
    for c in world.clusters.clone() {
        let world = world.clone();
        let mut rx = changes.subscribe();
        let span = tracing::info_span!("cluster", name = %c.name);
        tasks.push(tokio::spawn(
            async move {
                loop {
                    // Wake on any change in any cluster, or every 250 ms for time-based transitions.
                    let _ = tokio::time::timeout(Duration::from_millis(250), rx.changed()).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    rx.mark_unchanged();
                    if tokio::time::timeout(Duration::from_secs(20), reconcile_cluster(&world, &c))
                        .await
                        .is_err()
                    {
                        tracing::warn!("reconcile timed out (is the apiserver reachable?)");
                    }
                }
            }
            .instrument(span),
        ));
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = futures::future::join_all(tasks) => {}
    }
    tracing::info!("meshsim stopping");
    Ok(())
}
