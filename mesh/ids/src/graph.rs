//! The topology graph as the browser receives it: clusters as nodes with their parts, peering links as
//! directed edges (A→B when A holds a remote peer gateway for B), and findings that say what is wrong and what
//! to do. The server computes a [`Graph`] from its caches (`mesh::topology`), and sends a browser the whole
//! graph once, then only [`GraphUpdate`]s made by [`diff`]; the browser keeps its copy current with [`apply`].
//! Only serde here: this module is compiled for the browser too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ClusterName;

/// The health of a cluster, a part of one, a link or a finding. An unreachable cluster is `Unknown`, with
/// the error in its reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    Healthy,
    Degraded,
    Failing,
    Unknown,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failing => "failing",
            Health::Unknown => "unknown",
        }
    }

    /// How bad it is, for picking the worst: not knowing is better than knowing of a problem.
    pub fn severity(self) -> u8 {
        match self {
            Health::Healthy => 0,
            Health::Unknown => 1,
            Health::Degraded => 2,
            Health::Failing => 3,
        }
    }

    /// The worse of two.
    pub fn worst(self, other: Health) -> Health {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// One part of a cluster (operator, control plane, ztunnel/CNI, license): its state and, one click away,
/// why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Part {
    pub state: Health,
    pub detail: String,
}

/// How peers reach a cluster's east-west gateway (mesh-spec §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EastWestKind {
    LoadBalancer,
    NodePort,
}

impl EastWestKind {
    pub fn label(self) -> &'static str {
        match self {
            EastWestKind::LoadBalancer => "LoadBalancer",
            EastWestKind::NodePort => "NodePort",
        }
    }
}

/// A cluster's east-west gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct EastWestView {
    pub state: Health,
    pub detail: String,
    /// The address peers are told to use (the override annotation, else the gateway's status address).
    pub address: Option<String>,
    pub kind: EastWestKind,
    /// Whether the Gateway's `Programmed` condition is True.
    pub programmed: bool,
}

/// A service of a meshed namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceNode {
    pub name: String,
    /// Made available to the other clusters of the mesh (`solo.io/service-scope=global`).
    pub exported: bool,
    /// The mesh-wide name of an exported service (`<name>.<namespace>.mesh.internal`).
    pub hostname: Option<String>,
}

/// A namespace of a cluster that is in the mesh, or that exports services to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NamespaceNode {
    pub name: String,
    /// Its workloads join the mesh (sidecar injection, a revision label or ambient mode).
    pub meshed: bool,
    pub services: Vec<ServiceNode>,
}

/// A cluster and its parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterNode {
    pub name: ClusterName,
    /// `topology.istio.io/network`, for grouping.
    pub network: Option<String>,
    /// `topology.kubernetes.io/region` shared by its nodes, for grouping.
    pub region: Option<String>,
    /// False when its watches fail: the rest is the state last seen.
    pub reachable: bool,
    pub health: Health,
    /// Why the health is not `Healthy`, one line per problem, worst first.
    pub reasons: Vec<String>,
    pub operator: Part,
    pub control_plane: Part,
    /// The istiod revision (`istio.io/rev`, `gloo` with the operator).
    pub revision: Option<String>,
    /// The Istio version of the ServiceMeshController.
    pub version: Option<String>,
    /// ztunnel and the CNI node agent.
    pub ztunnel: Part,
    pub eastwest: Option<EastWestView>,
    /// SHA-256 of `root-cert.pem` in `cacerts`.
    pub root_fingerprint: Option<String>,
    pub trust_domain: Option<String>,
    pub license: Part,
    /// What the last comparison with what Meshdeck applied found (none until someone compares).
    #[serde(default)]
    pub drift: Option<Part>,
    pub namespaces: Vec<NamespaceNode>,
    /// The clusters from which this cluster's exported services are reachable: those whose link to this
    /// cluster is connected and not failing. Kept once per cluster rather than per service, since it is the
    /// same for every exported service and a cluster's update stays small.
    pub exports_reachable_from: Vec<ClusterName>,
}

impl ClusterNode {
    /// The clusters a service of this cluster is reachable from (none when it is not exported).
    pub fn reachable_from(&self, service: &ServiceNode) -> &[ClusterName] {
        if service.exported {
            &self.exports_reachable_from
        } else {
            &[]
        }
    }
}

/// A status condition as shown to users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// Identifies a link: `from` holds a peer gateway for `to`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LinkKey {
    pub from: ClusterName,
    pub to: ClusterName,
}

impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.from, self.to)
    }
}

/// A peering link: `from` holds a remote peer gateway (`istio-remote-peer-<to>`) for `to`, so `from`'s
/// workloads can reach `to`'s exported services. Its health combines both sides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LinkEdge {
    pub from: ClusterName,
    pub to: ClusterName,
    pub health: Health,
    /// The peer gateway's status conditions (shared with the snapshot they were read into: a graph computed
    /// again on every change copies none of them).
    pub conditions: std::sync::Arc<[ConditionView]>,
    /// The address the peer gateway dials.
    pub address: Option<String>,
    /// The address `to`'s east-west gateway has now.
    pub expected_address: Option<String>,
    /// What is wrong or worth knowing, worst first.
    pub reasons: Vec<String>,
}

impl LinkEdge {
    pub fn key(&self) -> LinkKey {
        LinkKey {
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    /// `from->to`, for keys in views.
    pub fn id(&self) -> String {
        format!("{}->{}", self.from, self.to)
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A cluster's watches fail; it is shown as last seen.
    Unreachable,
    /// Linked clusters hold different roots of trust.
    RootMismatch,
    /// A peer gateway records a trust domain other than its peer's.
    TrustDomainMismatch,
    /// A peer gateway reports that peering fails.
    LinkFailing,
    /// A peer gateway dials an address the peer's east-west gateway no longer has.
    StaleAddress,
    /// A cluster expected in a full mesh is linked with none of the others.
    NotMeshed,
    /// Two clusters expected in a full mesh are not linked in either direction.
    MissingLink,
    /// A link exists in one direction only where a full mesh is expected.
    OneWay,
    /// Linked clusters run different Istio minor versions.
    VersionSkew,
    /// A peer gateway names a cluster Meshdeck does not manage.
    UnknownPeer,
}

impl FindingKind {
    pub fn title(self) -> &'static str {
        match self {
            FindingKind::Unreachable => "Cluster unreachable",
            FindingKind::RootMismatch => "Root of trust mismatch",
            FindingKind::TrustDomainMismatch => "Trust domain mismatch",
            FindingKind::LinkFailing => "Peering failing",
            FindingKind::StaleAddress => "Stale peer address",
            FindingKind::NotMeshed => "Cluster not in the mesh",
            FindingKind::MissingLink => "Missing link",
            FindingKind::OneWay => "One-way link",
            FindingKind::VersionSkew => "Version skew",
            FindingKind::UnknownPeer => "Unknown peer",
        }
    }
}

/// A problem of the topology: what is wrong and what to do, naming the clusters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Health,
    /// The clusters involved; the one to act on first.
    pub clusters: Vec<ClusterName>,
    pub message: String,
}

/// The whole topology. In canonical order: clusters by name, links by (from, to), findings worst first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Graph {
    pub clusters: Vec<ClusterNode>,
    pub links: Vec<LinkEdge>,
    pub findings: Vec<Finding>,
}

impl Graph {
    pub fn cluster(&self, name: &ClusterName) -> Option<&ClusterNode> {
        self.clusters
            .binary_search_by(|c| c.name.cmp(name))
            .ok()
            .map(|i| &self.clusters[i])
    }

    pub fn link(&self, from: &ClusterName, to: &ClusterName) -> Option<&LinkEdge> {
        self.links
            .binary_search_by(|l| (&l.from, &l.to).cmp(&(from, to)))
            .ok()
            .map(|i| &self.links[i])
    }

    /// Puts clusters and links in canonical order (findings keep theirs: they are replaced as a whole).
    pub fn sort(&mut self) {
        self.clusters.sort_by(|a, b| a.name.cmp(&b.name));
        self.links
            .sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    }
}

/// What changed between two graphs: the clusters and links to replace or add, those to remove, and the
/// findings when they changed (they are few, so they travel whole).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct GraphUpdate {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upsert_clusters: Vec<ClusterNode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_clusters: Vec<ClusterName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upsert_links: Vec<LinkEdge>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_links: Vec<LinkKey>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<Finding>>,
}

impl GraphUpdate {
    /// Nothing changed: there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.upsert_clusters.is_empty()
            && self.remove_clusters.is_empty()
            && self.upsert_links.is_empty()
            && self.remove_links.is_empty()
            && self.findings.is_none()
    }
}

/// The update that turns `old` into `new`: `apply(old, diff(old, new)) == new` for a `new` in canonical
/// order (as `mesh::topology::compute` makes it).
pub fn diff(old: &Graph, new: &Graph) -> GraphUpdate {
    let old_clusters: BTreeMap<&ClusterName, &ClusterNode> =
        old.clusters.iter().map(|c| (&c.name, c)).collect();
    let new_names: BTreeSet<&ClusterName> = new.clusters.iter().map(|c| &c.name).collect();
    let old_links: BTreeMap<(&ClusterName, &ClusterName), &LinkEdge> =
        old.links.iter().map(|l| ((&l.from, &l.to), l)).collect();
    let new_links: BTreeSet<(&ClusterName, &ClusterName)> =
        new.links.iter().map(|l| (&l.from, &l.to)).collect();
    GraphUpdate {
        upsert_clusters: new
            .clusters
            .iter()
            .filter(|c| old_clusters.get(&c.name) != Some(c))
            .cloned()
            .collect(),
        remove_clusters: old_clusters
            .keys()
            .filter(|n| !new_names.contains(*n))
            .map(|n| (*n).clone())
            .collect(),
        upsert_links: new
            .links
            .iter()
            .filter(|l| old_links.get(&(&l.from, &l.to)) != Some(l))
            .cloned()
            .collect(),
        remove_links: old_links
            .keys()
            .filter(|k| !new_links.contains(*k))
            .map(|(from, to)| LinkKey {
                from: (*from).clone(),
                to: (*to).clone(),
            })
            .collect(),
        findings: (old.findings != new.findings).then(|| new.findings.clone()),
    }
}

/// Applies an update made by [`diff`]; the graph stays in canonical order.
pub fn apply(graph: &mut Graph, update: GraphUpdate) {
    // The graph is in canonical order (sorting sorted input is one pass), so what an update names is found by
    // binary search: a live update of a few items on a 9,900-link graph builds no index of all of them.
    graph.sort();
    if !update.remove_clusters.is_empty() {
        let removed: BTreeSet<&ClusterName> = update.remove_clusters.iter().collect();
        graph.clusters.retain(|c| !removed.contains(&c.name));
    }
    if !update.remove_links.is_empty() {
        let removed: BTreeSet<(&ClusterName, &ClusterName)> = update
            .remove_links
            .iter()
            .map(|k| (&k.from, &k.to))
            .collect();
        graph.links.retain(|l| !removed.contains(&(&l.from, &l.to)));
    }
    upsert(&mut graph.clusters, update.upsert_clusters, |a, b| {
        a.name.cmp(&b.name)
    });
    upsert(&mut graph.links, update.upsert_links, |a, b| {
        (&a.from, &a.to).cmp(&(&b.from, &b.to))
    });
    if let Some(findings) = update.findings {
        graph.findings = findings;
    }
    graph.sort();
}

/// Replaces the items of `sorted` (ordered by `cmp`) that `items` name, and adds the others (the last of
/// several with one key wins). New items are appended, to be sorted in by the caller (a sort of a sorted run
/// and a short tail is one pass), rather than each inserted with a shift of everything after it.
fn upsert<T>(sorted: &mut Vec<T>, items: Vec<T>, cmp: impl Fn(&T, &T) -> std::cmp::Ordering) {
    let mut fresh = vec![];
    for item in items {
        match sorted.binary_search_by(|x| cmp(x, &item)) {
            Ok(i) => sorted[i] = item,
            Err(_) => fresh.push(item),
        }
    }
    // The latest first, sorted stably: of several with one key, the first of each run is the one to keep.
    fresh.reverse();
    fresh.sort_by(&cmp);
    fresh.dedup_by(|later, kept| cmp(later, kept).is_eq());
    sorted.extend(fresh);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> ClusterName {
        ClusterName::new(n).expect("name")
    }

    fn part() -> Part {
        Part {
            state: Health::Healthy,
            detail: "ok".into(),
        }
    }

    fn node(n: &str, health: Health) -> ClusterNode {
        ClusterNode {
            name: name(n),
            network: Some(n.into()),
            region: None,
            reachable: true,
            health,
            reasons: vec![],
            operator: part(),
            control_plane: part(),
            revision: Some("gloo".into()),
            version: Some("1.28.1".into()),
            ztunnel: part(),
            eastwest: None,
            root_fingerprint: None,
            trust_domain: None,
            license: part(),
            drift: None,
            namespaces: vec![],
            exports_reachable_from: vec![],
        }
    }

    fn edge(from: &str, to: &str, health: Health) -> LinkEdge {
        LinkEdge {
            from: name(from),
            to: name(to),
            health,
            conditions: [].into(),
            address: None,
            expected_address: None,
            reasons: vec![],
        }
    }

    fn graph(clusters: Vec<ClusterNode>, links: Vec<LinkEdge>) -> Graph {
        let mut g = Graph {
            clusters,
            links,
            findings: vec![],
        };
        g.sort();
        g
    }

    #[test]
    fn the_worst_health_wins_and_unknown_is_better_than_a_known_problem() {
        assert_eq!(Health::Healthy.worst(Health::Unknown), Health::Unknown);
        assert_eq!(Health::Unknown.worst(Health::Degraded), Health::Degraded);
        assert_eq!(Health::Failing.worst(Health::Degraded), Health::Failing);
        assert_eq!(Health::Degraded.label(), "degraded");
    }

    #[test]
    fn an_update_of_equal_graphs_is_empty_and_serializes_to_an_empty_object() {
        let g = graph(
            vec![node("c1", Health::Healthy)],
            vec![edge("c1", "c2", Health::Healthy)],
        );
        let u = diff(&g, &g.clone());
        assert!(u.is_empty());
        assert_eq!(serde_json::to_string(&u).expect("json"), "{}");
    }

    #[test]
    fn applying_the_diff_turns_the_old_graph_into_the_new_one() {
        let old = graph(
            vec![
                node("c1", Health::Healthy),
                node("c2", Health::Healthy),
                node("c3", Health::Healthy),
            ],
            vec![
                edge("c1", "c2", Health::Healthy),
                edge("c2", "c1", Health::Healthy),
                edge("c1", "c3", Health::Healthy),
            ],
        );
        let mut new = graph(
            vec![
                node("c0", Health::Healthy),
                node("c1", Health::Healthy),
                node("c2", Health::Failing),
            ],
            vec![
                edge("c1", "c2", Health::Failing),
                edge("c2", "c1", Health::Healthy),
                edge("c0", "c1", Health::Healthy),
            ],
        );
        new.findings.push(Finding {
            kind: FindingKind::OneWay,
            severity: Health::Degraded,
            clusters: vec![name("c0"), name("c1")],
            message: "c1 holds no peer gateway for c0".into(),
        });
        let u = diff(&old, &new);
        assert_eq!(
            u.upsert_clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["c0", "c2"]
        );
        assert_eq!(u.remove_clusters, [name("c3")]);
        assert_eq!(
            u.upsert_links.iter().map(LinkEdge::id).collect::<Vec<_>>(),
            ["c0->c1", "c1->c2"]
        );
        assert_eq!(
            u.remove_links
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["c1->c3"]
        );
        assert_eq!(u.findings.as_deref(), Some(&new.findings[..]));
        // Through the wire, as the browser gets it.
        let wire: GraphUpdate =
            serde_json::from_str(&serde_json::to_string(&u).expect("json")).expect("parse");
        let mut got = old.clone();
        apply(&mut got, wire);
        assert_eq!(got, new);
        assert!(diff(&got, &new).is_empty());
    }

    #[test]
    fn an_update_naming_an_item_twice_keeps_the_last_and_new_items_are_sorted_in() {
        let mut g = graph(
            vec![node("c1", Health::Healthy), node("c3", Health::Healthy)],
            vec![edge("c1", "c3", Health::Healthy)],
        );
        apply(
            &mut g,
            GraphUpdate {
                upsert_clusters: vec![
                    node("c4", Health::Healthy),
                    node("c2", Health::Healthy),
                    node("c4", Health::Failing),
                    node("c1", Health::Degraded),
                    node("c1", Health::Unknown),
                ],
                upsert_links: vec![
                    edge("c3", "c1", Health::Healthy),
                    edge("c1", "c3", Health::Failing),
                    edge("c1", "c2", Health::Healthy),
                    edge("c3", "c1", Health::Degraded),
                ],
                ..GraphUpdate::default()
            },
        );
        let clusters: Vec<(&str, Health)> = g
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.health))
            .collect();
        assert_eq!(
            clusters,
            [
                ("c1", Health::Unknown),
                ("c2", Health::Healthy),
                ("c3", Health::Healthy),
                ("c4", Health::Failing)
            ]
        );
        let links: Vec<(String, Health)> = g.links.iter().map(|l| (l.id(), l.health)).collect();
        assert_eq!(
            links,
            [
                ("c1->c2".to_string(), Health::Healthy),
                ("c1->c3".to_string(), Health::Failing),
                ("c3->c1".to_string(), Health::Degraded)
            ]
        );
        assert_eq!(
            g.link(&name("c3"), &name("c1")).map(|l| l.health),
            Some(Health::Degraded)
        );
    }

    #[test]
    fn wire_names_are_kebab_case() {
        let mut l = edge("c1", "c2", Health::Degraded);
        l.conditions = [ConditionView {
            type_: "gloo.solo.io/PeerConnected".into(),
            status: "True".into(),
            reason: "Programmed".into(),
            message: String::new(),
        }]
        .into();
        l.expected_address = Some("10.0.0.1".into());
        let v = serde_json::to_value(&l).expect("json");
        assert_eq!(v["health"], "degraded");
        assert_eq!(v["expected-address"], "10.0.0.1");
        assert_eq!(v["conditions"][0]["type"], "gloo.solo.io/PeerConnected");
        assert_eq!(
            serde_json::to_value(FindingKind::TrustDomainMismatch).expect("json"),
            "trust-domain-mismatch"
        );
        assert_eq!(
            serde_json::to_value(EastWestKind::NodePort).expect("json"),
            "node-port"
        );
    }

    #[test]
    fn lookups_find_clusters_and_links_by_name() {
        let g = graph(
            vec![node("c2", Health::Healthy), node("c1", Health::Degraded)],
            vec![
                edge("c2", "c1", Health::Healthy),
                edge("c1", "c2", Health::Failing),
            ],
        );
        assert_eq!(
            g.cluster(&name("c1")).map(|c| c.health),
            Some(Health::Degraded)
        );
        assert_eq!(
            g.link(&name("c1"), &name("c2")).map(|l| l.health),
            Some(Health::Failing)
        );
        assert!(g.link(&name("c1"), &name("c3")).is_none());
    }
}
