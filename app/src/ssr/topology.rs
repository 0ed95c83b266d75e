//! The live topology on the server: watches on every registered cluster (`mesh::watch`, scoped to the
//! objects the graph needs, no polling), the graph computed from their caches (`mesh::topology::compute`)
//! whenever one of them changes, and each new graph published with the small update that leads to it, for
//! the browsers that follow it over Server-Sent Events (`/live/topology`).
//!
//! Watches start when the console starts (for every registered cluster) and when a cluster is registered,
//! and stop when it is removed. The registry is looked at again every [`RESYNC`] as well, so clusters
//! registered or removed through another replica are picked up; that reads the console's database, never a
//! cluster.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mesh::ids::graph::{ConditionView, Graph, GraphUpdate, Health, diff};
use mesh::topology::{Chosen, ClusterSnapshot, Expectation, LicenseState, Shown, compute};
use mesh::watch::Watches;
use tokio::sync::{Mutex, watch};

use super::jobs::SetupSpec;
use super::registry::Registry;
use super::store::{JobRow, Store};
use crate::model::topology::ObjectYaml;
use crate::model::{CheckStatus, ChecksReport, ClusterName};

/// How often the registry is read again (registrations through another replica).
pub const RESYNC: Duration = Duration::from_secs(30);
/// How many of the latest jobs are read for the linking chosen at setup.
const JOBS_READ: i64 = 1000;
/// How many of the latest check reports are read for a license when a cluster's watch starts.
const SEED_REPORTS: i64 = 50;
/// How long a burst of changes may settle before the graph is computed again (on top of the watches' own
/// debounce).
const SETTLE: Duration = Duration::from_millis(20);

/// One published graph: its version, the graph, and the update from the previous version. Each is turned
/// into the text streams send once, by the first stream that needs it, and shared by all the others.
#[derive(Debug)]
pub struct Frame {
    pub version: u64,
    pub graph: Arc<Graph>,
    /// What changed since `version - 1` (None for the first frame).
    pub update: Option<Arc<GraphUpdate>>,
    graph_json: std::sync::OnceLock<Arc<str>>,
    update_json: std::sync::OnceLock<Option<Arc<str>>>,
}

impl Frame {
    pub fn new(version: u64, graph: Arc<Graph>, update: Option<Arc<GraphUpdate>>) -> Frame {
        Frame {
            version,
            graph,
            update,
            graph_json: Default::default(),
            update_json: Default::default(),
        }
    }

    /// `{"version": …, "graph": …}`, serialised once per frame.
    pub fn graph_message(&self) -> Arc<str> {
        #[derive(serde::Serialize)]
        struct Msg<'a> {
            version: u64,
            graph: &'a Graph,
        }
        self.graph_json
            .get_or_init(|| {
                serde_json::to_string(&Msg {
                    version: self.version,
                    graph: &self.graph,
                })
                .unwrap_or_default()
                .into()
            })
            .clone()
    }

    /// `{"version": …, "update": …}`, serialised once per frame (None for the first frame).
    pub fn update_message(&self) -> Option<Arc<str>> {
        #[derive(serde::Serialize)]
        struct Msg<'a> {
            version: u64,
            update: &'a GraphUpdate,
        }
        self.update_json
            .get_or_init(|| {
                self.update.as_ref().map(|u| {
                    serde_json::to_string(&Msg {
                        version: self.version,
                        update: u,
                    })
                    .unwrap_or_default()
                    .into()
                })
            })
            .clone()
    }
}

/// The topology service (cheap to clone).
#[derive(Clone)]
pub struct Topology {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    store: Store,
    /// The links chosen in setup jobs (see [`chosen_links`]).
    chosen: RwLock<Arc<Chosen>>,
    watches: Watches,
    frames: watch::Sender<Arc<Frame>>,
    /// Serializes registry syncs (start, registration, removal and the periodic one).
    syncing: Mutex<()>,
}

impl Topology {
    /// The service, not started yet: nothing is watched until [`Topology::start`].
    pub fn new(registry: Registry, store: Store) -> Self {
        let first = Arc::new(Frame::new(0, Arc::new(Graph::default()), None));
        Topology {
            inner: Arc::new(Inner {
                registry,
                store,
                chosen: RwLock::new(Arc::default()),
                watches: Watches::new(),
                frames: watch::channel(first).0,
                syncing: Mutex::new(()),
            }),
        }
    }

    /// Starts watching the registered clusters and computing the graph (within a Tokio runtime). The tasks
    /// hold only a weak reference: they end when the last clone of the service is dropped.
    pub fn start(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut changes = self.inner.watches.changes();
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                Topology { inner }.recompute();
                if changes.changed().await.is_err() {
                    return;
                }
                tokio::time::sleep(SETTLE).await;
                changes.mark_unchanged();
            }
        });
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                Topology { inner }.sync().await;
                tokio::time::sleep(RESYNC).await;
            }
        });
    }

    /// Makes the watched clusters those of the registry: starts watches for new ones and stops those of
    /// removed ones. A cluster whose credentials cannot be opened is left out, with a warning. Reads the
    /// linking chosen in setup jobs again too.
    pub async fn sync(&self) {
        let _one = self.inner.syncing.lock().await;
        self.read_choices().await;
        let registered = match self.inner.registry.list().await {
            Ok(list) => list
                .into_iter()
                .map(|(r, _)| r.name)
                .collect::<BTreeSet<_>>(),
            Err(e) => {
                tracing::warn!("topology: reading the registry: {e}");
                return;
            }
        };
        let watched: BTreeSet<ClusterName> = self.inner.watches.names().into_iter().collect();
        for gone in watched.difference(&registered) {
            self.inner.watches.remove(gone);
            tracing::info!(cluster = %gone, "topology: stopped watching");
        }
        for name in registered.difference(&watched) {
            self.watch(name).await;
        }
    }

    /// Reads the linking chosen in the setup jobs (those started through another replica too) and computes
    /// the graph again when it changed. Called when a setup starts and at every sync.
    pub async fn read_choices(&self) {
        match self.inner.store.list_jobs(JOBS_READ).await {
            Ok(rows) => {
                let chosen = chosen_links(&rows);
                let changed = {
                    let mut held = self
                        .inner
                        .chosen
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let changed = **held != chosen;
                    *held = Arc::new(chosen);
                    changed
                };
                if changed {
                    self.recompute();
                }
            }
            Err(e) => tracing::warn!("topology: reading the setup jobs: {e}"),
        }
    }

    /// Starts (or restarts, with fresh credentials) the watches of one registered cluster.
    pub async fn watch(&self, name: &ClusterName) {
        let client = match self.inner.registry.credentials(name).await {
            Ok(creds) => mesh::connect::watch_client(&creds)
                .await
                .map_err(|p| p.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match client {
            Ok(client) => {
                self.inner.watches.add(name.clone(), client);
                self.seed_license(name).await;
                tracing::info!(cluster = %name, "topology: watching");
            }
            Err(e) => tracing::warn!(cluster = %name, "topology: cannot watch: {e}"),
        }
    }

    /// Reads a kept check report (see [`Notice::Checked`](crate::ssr::notify::Notice)) and records its licenses.
    pub async fn record_report(&self, id: &str) {
        match self.inner.store.check_report(id).await {
            Ok(Some(json)) => match serde_json::from_str::<ChecksReport>(&json) {
                Ok(report) => self.record_checks(&report),
                Err(e) => tracing::warn!(report = id, "topology: reading a check report: {e}"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(report = id, "topology: reading a check report: {e}"),
        }
    }

    /// What the latest kept check report that looked at `name` found of its license (a console that starts,
    /// or starts watching a cluster, knows it from the last checks rather than showing "not read yet").
    async fn seed_license(&self, name: &ClusterName) {
        let reports = match self.inner.store.recent_check_reports(SEED_REPORTS).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(cluster = %name, "topology: reading the last check reports: {e}");
                return;
            }
        };
        for json in reports {
            let Ok(report) = serde_json::from_str::<ChecksReport>(&json) else {
                continue;
            };
            if let Some(c) = report.clusters.iter().find(|c| c.cluster == name.as_str())
                && let Some(state) = license_found(c)
            {
                self.inner.watches.set_license(name, state);
                return;
            }
        }
    }

    /// Records what a drift comparison of `cluster` found (see [`Notice::Drift`](crate::ssr::notify::Notice)).
    pub fn record_drift(&self, cluster: &str, drifted: Vec<String>) {
        if let Ok(name) = ClusterName::new(cluster) {
            self.inner.watches.set_drift(&name, drifted);
        }
    }

    /// Records what the license checks of a checks run found (istiod's license is read through a
    /// port-forward, which no watch can follow).
    pub fn record_checks(&self, report: &ChecksReport) {
        for c in &report.clusters {
            let Ok(name) = ClusterName::new(&c.cluster) else {
                continue;
            };
            if let Some(state) = license_found(c) {
                self.inner.watches.set_license(&name, state);
            }
        }
    }

    /// The frame published last.
    pub fn current(&self) -> Arc<Frame> {
        self.inner.frames.borrow().clone()
    }

    /// Frames as they are published.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Frame>> {
        self.inner.frames.subscribe()
    }

    /// One cluster's snapshot, when it is watched.
    pub fn snapshot(&self, name: &ClusterName) -> Option<ClusterSnapshot> {
        self.inner.watches.snapshot(name)
    }

    /// The live objects behind a cluster (its ServiceMeshController and east-west gateway) or, with `peer`,
    /// behind the link `cluster`→`peer` (the peer gateway `cluster` holds, and `peer`'s east-west gateway),
    /// read now, as YAML. Never a Secret.
    pub async fn objects(
        &self,
        cluster: &ClusterName,
        peer: Option<&ClusterName>,
    ) -> Vec<ObjectYaml> {
        let wanted = match peer {
            None => vec![(cluster, Shown::Smc), (cluster, Shown::EastWestGateway)],
            Some(peer) => vec![
                (cluster, Shown::PeerGateway(peer.clone())),
                (peer, Shown::EastWestGateway),
            ],
        };
        let mut out = vec![];
        for (name, what) in wanted {
            let yaml = match self.inner.registry.credentials(name).await {
                Ok(creds) => match mesh::connect::client(&creds).await {
                    Ok(client) => what.read_yaml(&client).await,
                    Err(p) => Err(p.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            out.push(ObjectYaml {
                title: format!("{} in {name}", what.title()),
                yaml: yaml.map_err(|e| format!("cluster {name}: {e}")),
            });
        }
        out
    }

    /// Computes the graph from the caches and publishes it when it differs from the last one.
    fn recompute(&self) {
        let snapshots = self.inner.watches.snapshots();
        let mut expect = expectation(&snapshots);
        expect.chosen = self
            .inner
            .chosen
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let graph = slim(compute(&snapshots, &expect));
        let last = self.current();
        let update = diff(&last.graph, &graph);
        if update.is_empty() && last.version > 0 {
            return;
        }
        self.inner.frames.send_replace(Arc::new(Frame::new(
            last.version + 1,
            Arc::new(graph),
            (last.version > 0).then(|| Arc::new(update)),
        )));
    }
}

/// The clusters expected in one full mesh: those that take part in multicluster peering at all (an
/// east-west gateway, a peer gateway, or one that names them). A registered cluster with none of these is
/// drawn, but not reported as missing from the mesh.
pub fn expectation(snapshots: &[ClusterSnapshot]) -> Expectation {
    let named: BTreeSet<&str> = snapshots
        .iter()
        .flat_map(|s| s.peers.iter())
        .filter_map(|p| p.cluster_label.as_deref())
        .collect();
    Expectation {
        full_mesh: snapshots
            .iter()
            .filter(|s| {
                s.eastwest.is_some() || !s.peers.is_empty() || named.contains(s.name.as_str())
            })
            .map(|s| s.name.clone())
            .collect(),
        chosen: Arc::default(),
    }
}

/// The linking chosen in setup jobs (`rows` newest first, as the store lists them): for each job, every
/// ordered pair of its clusters is decided — linked when the job made a full mesh or automatic peering, or
/// when the pair was among the selected ones (a growth decides only the pairs of the clusters it added). A
/// removal decides every pair of the cluster it took the mesh out of as not linked, an unlinking its pairs.
/// A later job overrides an earlier one for the pairs they share.
/// Jobs whose spec cannot be read (another kind, an older format) are skipped.
pub fn chosen_links(rows: &[JobRow]) -> Chosen {
    let mut expect = Expectation::default();
    for row in rows.iter().rev() {
        match row.kind.as_str() {
            crate::ssr::jobs::REMOVE_KIND => {
                // The mesh taken out of a cluster: no link to or from it is expected any more.
                if let Ok(spec) = serde_json::from_str::<crate::ssr::jobs::RemoveSpec>(&row.spec) {
                    let all: Vec<ClusterName> = std::iter::once(spec.cluster.clone())
                        .chain(spec.peers)
                        .collect();
                    let gone = &spec.cluster;
                    expect.choose_where(&all, |a, b| a == gone || b == gone, |_, _| false);
                }
                continue;
            }
            crate::ssr::jobs::UNLINK_KIND => {
                // Links removed on purpose are not missing.
                if let Ok(spec) = serde_json::from_str::<crate::ssr::jobs::UnlinkSpec>(&row.spec) {
                    for (from, to) in &spec.pairs {
                        expect.choose_where(
                            &[from.clone(), to.clone()],
                            |a, b| a == from && b == to,
                            |_, _| false,
                        );
                    }
                }
                continue;
            }
            "setup" => {}
            _ => continue,
        }
        let Ok(spec) = serde_json::from_str::<SetupSpec>(&row.spec) else {
            continue;
        };
        let added: BTreeSet<&ClusterName> = spec.clusters.iter().map(|c| &c.name).collect();
        let clusters: Vec<ClusterName> = spec
            .clusters
            .iter()
            .chain(&spec.members)
            .map(|c| c.name.clone())
            .collect();
        // A growth decides the pairs that involve an added cluster; a setup, every pair of its clusters.
        let decides = |a: &ClusterName, b: &ClusterName| added.contains(a) || added.contains(b);
        match &spec.peering {
            mesh::setup::Peering::Manual { pairs } => {
                let pairs: BTreeSet<(&ClusterName, &ClusterName)> =
                    pairs.iter().map(|(a, b)| (a, b)).collect();
                expect.choose_where(&clusters, decides, |a, b| pairs.contains(&(a, b)));
            }
            mesh::setup::Peering::Automatic { .. } => {
                expect.choose_where(&clusters, decides, |_, _| true)
            }
        }
    }
    Arc::unwrap_or_clone(expect.chosen)
}

/// A healthy link's conditions are all True and say so: they are dropped from what browsers receive (the
/// side panel reads the gateway itself), which keeps a 100-cluster graph a fraction of its size.
fn slim(mut graph: Graph) -> Graph {
    // One empty list shared by every healthy link, not one allocated per link on each recomputation.
    let none: Arc<[ConditionView]> = [].into();
    for l in &mut graph.links {
        if l.health == Health::Healthy {
            l.conditions = none.clone();
        }
    }
    graph
}

/// What one cluster's checks found of its license, if they looked.
fn license_found(c: &crate::model::ClusterCheckView) -> Option<LicenseState> {
    let r = c.results.iter().find(|r| r.title == "License Check")?;
    Some(match r.status {
        CheckStatus::Pass => LicenseState::Valid,
        CheckStatus::Fail => LicenseState::Invalid(r.message.clone()),
        _ if r.message.contains("not supported") => LicenseState::NotCheckable,
        _ => LicenseState::Unknown(r.message.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh::ids::graph::EastWestKind;

    #[test]
    fn a_frame_is_serialised_once_for_every_stream() {
        let f = Frame::new(
            7,
            Arc::new(Graph::default()),
            Some(Arc::new(GraphUpdate::default())),
        );
        let (a, b) = (f.graph_message(), f.graph_message());
        assert!(Arc::ptr_eq(&a, &b), "the second stream gets the same text");
        assert!(a.starts_with("{\"version\":7,\"graph\":"), "{a}");
        let (u, v) = (
            f.update_message().expect("update"),
            f.update_message().expect("update"),
        );
        assert!(Arc::ptr_eq(&u, &v));
        assert!(
            Frame::new(1, Arc::new(Graph::default()), None)
                .update_message()
                .is_none()
        );
    }
    use mesh::topology::{EastWestState, PeerGatewayState};
    use std::collections::BTreeMap;

    fn name(n: &str) -> ClusterName {
        ClusterName::new(n).expect("name")
    }

    fn job(id: &str, names: &[&str], peering: mesh::setup::Peering) -> JobRow {
        use mesh::ids::NetworkName;
        use mesh::objects::DataPlane;
        use mesh::operator::Chart;
        use mesh::setup::ClusterSetup;
        let spec = SetupSpec {
            clusters: names
                .iter()
                .map(|n| ClusterSetup::new(name(n), NetworkName::from(&name(n))))
                .collect(),
            istio_version: "1.28.1-patch0".into(),
            data_plane: DataPlane::LoadBalancer,
            peering,
            chart: Chart::default(),
            license_secret_ref: None,
            watch_namespaces: vec![],
            root_id: "r".into(),
            verify_secs: 60,
            members: vec![],
        };
        JobRow {
            id: id.into(),
            kind: "setup".into(),
            spec: serde_json::to_string(&spec).expect("spec"),
            state: "succeeded".into(),
            started_by: "admin".into(),
            created_at: 0,
            finished_at: None,
            lease_owner: None,
            lease_until: None,
        }
    }

    /// The decisions as `(from, to) → meant`.
    fn flat(chosen: Chosen) -> BTreeMap<(ClusterName, ClusterName), bool> {
        chosen
            .into_iter()
            .flat_map(|(a, row)| row.into_iter().map(move |(b, m)| ((a.clone(), b), m)))
            .collect()
    }

    #[test]
    fn the_linking_chosen_in_the_latest_setup_of_each_pair_is_what_is_expected() {
        use mesh::setup::Peering;
        let pair = |a: &str, b: &str| (name(a), name(b));
        // Newest first, as the store lists jobs: a one-way c1 → c2 chosen after a full mesh of c1..c3.
        let rows = [
            job(
                "2",
                &["c1", "c2"],
                Peering::Manual {
                    pairs: vec![pair("c1", "c2")],
                },
            ),
            job(
                "1",
                &["c1", "c2", "c3"],
                Peering::Manual {
                    pairs: mesh::setup::full_mesh(&[name("c1"), name("c2"), name("c3")]),
                },
            ),
            JobRow {
                kind: "other".into(),
                spec: "{}".into(),
                ..job(
                    "0",
                    &["c9"],
                    Peering::Automatic {
                        management: name("c9"),
                    },
                )
            },
        ];
        let chosen = flat(chosen_links(&rows));
        assert_eq!(chosen.get(&pair("c1", "c2")), Some(&true));
        assert_eq!(chosen.get(&pair("c2", "c1")), Some(&false));
        assert_eq!(chosen.get(&pair("c3", "c1")), Some(&true));
        assert_eq!(chosen.get(&pair("c2", "c3")), Some(&true));
        assert_eq!(chosen.len(), 6);
        // Automatic peering links every pair of its clusters.
        let rows = [job(
            "3",
            &["a", "b"],
            Peering::Automatic {
                management: name("a"),
            },
        )];
        assert_eq!(
            flat(chosen_links(&rows)).into_iter().collect::<Vec<_>>(),
            [(pair("a", "b"), true), (pair("b", "a"), true)]
        );
    }

    #[test]
    fn a_growth_decides_only_the_pairs_of_the_clusters_it_added() {
        use mesh::setup::{ClusterSetup, Peering};
        let pair = |a: &str, b: &str| (name(a), name(b));
        let setup = job(
            "1",
            &["c1", "c2"],
            Peering::Manual {
                pairs: vec![pair("c1", "c2")],
            },
        );
        // c3 added, reached by the members only (one way).
        let mut growth = job(
            "2",
            &["c3"],
            Peering::Manual {
                pairs: vec![pair("c1", "c3"), pair("c2", "c3")],
            },
        );
        let mut spec: SetupSpec = serde_json::from_str(&growth.spec).expect("spec");
        spec.members = ["c1", "c2"]
            .iter()
            .map(|n| ClusterSetup::new(name(n), mesh::ids::NetworkName::from(&name(n))))
            .collect();
        growth.spec = serde_json::to_string(&spec).expect("spec");
        let chosen = flat(chosen_links(&[growth, setup]));
        let meant = |a: &str, b: &str| chosen.get(&pair(a, b)).copied();
        assert_eq!(meant("c1", "c2"), Some(true), "the members' own link stays");
        assert_eq!(
            meant("c2", "c1"),
            Some(false),
            "left out by the setup, still"
        );
        assert_eq!(meant("c1", "c3"), Some(true));
        assert_eq!(meant("c2", "c3"), Some(true));
        assert_eq!(meant("c3", "c1"), Some(false));
        assert_eq!(meant("c3", "c2"), Some(false));
    }

    #[test]
    fn only_clusters_taking_part_in_peering_are_expected_in_the_full_mesh() {
        let mut a = ClusterSnapshot::new(name("a"));
        a.eastwest = Some(EastWestState {
            kind: EastWestKind::LoadBalancer,
            addresses: vec!["10.0.0.1".into()],
            address_override: None,
            programmed: None,
            cluster_label: Some("a".into()),
        });
        let mut b = ClusterSnapshot::new(name("b"));
        b.peers.push(PeerGatewayState {
            cluster_label: Some("c".into()),
            ..Default::default()
        });
        let c = ClusterSnapshot::new(name("c"));
        let fresh = ClusterSnapshot::new(name("fresh"));
        let e = expectation(&[a, b, c, fresh]);
        assert_eq!(
            e.full_mesh.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
