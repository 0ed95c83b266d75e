//! The Topology page's wire types and its layouts, computed the same way on the server (the page renders
//! without JavaScript) and in the browser: clusters in a grouped circular layout (a circle per network or
//! region, the groups on a larger circle) that stays readable from 2 to 100 clusters, and a layered layout
//! for a cluster's drill-down (cluster → meshed namespaces → services).

use std::collections::BTreeMap;
use std::f64::consts::TAU;

use serde::{Deserialize, Serialize};

use mesh_ids::ClusterName;
pub use mesh_ids::graph::{
    ClusterNode, EastWestKind, Finding, FindingKind, Graph, GraphUpdate, Health, LinkEdge,
};

/// The graph as the page first receives it (SSE sends the same with `event: graph`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopologyView {
    pub version: u64,
    pub graph: Graph,
}

/// One live object shown in the side panel, as YAML (status included, managed fields left out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectYaml {
    /// e.g. `Gateway istio-eastwest/istio-remote-peer-c2`.
    pub title: String,
    /// The YAML, or why it could not be read.
    pub yaml: Result<String, String>,
}

/// What clusters are grouped by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    #[default]
    Network,
    Region,
}

impl GroupBy {
    pub fn key(self, c: &ClusterNode) -> String {
        let v = match self {
            GroupBy::Network => c.network.as_deref(),
            GroupBy::Region => c.region.as_deref(),
        };
        v.unwrap_or("").to_string()
    }

    pub fn label(self, key: &str) -> String {
        match (self, key.is_empty()) {
            (GroupBy::Network, true) => "no network label".into(),
            (GroupBy::Region, true) => "no region".into(),
            (GroupBy::Network, false) => format!("network {key}"),
            (GroupBy::Region, false) => format!("region {key}"),
        }
    }
}

/// A placed cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Placed {
    pub name: String,
    pub x: f64,
    pub y: f64,
}

/// A placed group: a circle around its clusters.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupCircle {
    pub label: String,
    pub x: f64,
    pub y: f64,
    pub r: f64,
}

/// A placed link: an SVG path from the edge of one node to the edge of the other.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: ClusterName,
    pub to: ClusterName,
    /// Shared with what is drawn from it.
    pub d: std::sync::Arc<str>,
}

/// The cluster view's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub width: f64,
    pub height: f64,
    /// The radius of a cluster's circle.
    pub node_r: f64,
    pub nodes: Vec<Placed>,
    pub groups: Vec<GroupCircle>,
    pub edges: Vec<Edge>,
}

impl Layout {
    pub fn node(&self, name: &str) -> Option<&Placed> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

const MARGIN: f64 = 60.0;
/// Room between two groups' circles (for the group labels and the cluster names).
const GROUP_GAP: f64 = 70.0;

/// What the layout depends on: the clusters' names and groups and which links exist, not their states. A
/// live update that changes states only (most do) leaves it equal, so the page keeps its layout.
#[derive(Clone, Debug, PartialEq)]
pub struct LayoutKey {
    clusters: Vec<(ClusterName, String)>,
    links: Vec<(ClusterName, ClusterName)>,
}

pub fn layout_key(graph: &Graph, by: GroupBy) -> LayoutKey {
    LayoutKey {
        clusters: graph
            .clusters
            .iter()
            .map(|c| (c.name.clone(), by.key(c)))
            .collect(),
        links: graph
            .links
            .iter()
            .map(|l| (l.from.clone(), l.to.clone()))
            .collect(),
    }
}

/// Lays the clusters out: a circle per group, the groups on a circle, links as arcs (two links between the
/// same clusters bow apart, so both directions stay visible).
pub fn layout(graph: &Graph, by: GroupBy) -> Layout {
    let n = graph.clusters.len();
    let node_r = (220.0 / (n.max(1) as f64).sqrt()).clamp(9.0, 26.0);
    let gap = node_r * 3.2;
    let mut groups: BTreeMap<String, Vec<&ClusterNode>> = BTreeMap::new();
    for c in &graph.clusters {
        groups.entry(by.key(c)).or_default().push(c);
    }
    // Each group's own circle: members spaced `gap` apart along it.
    let radii: Vec<f64> = groups
        .values()
        .map(|m| {
            if m.len() == 1 {
                node_r * 1.8
            } else {
                (m.len() as f64 * gap / TAU).max(node_r * 2.2) + node_r * 1.6
            }
        })
        .collect();
    let mut centres = vec![];
    if radii.len() == 1 {
        centres.push((0.0, 0.0));
    } else {
        let around: f64 = radii.iter().map(|r| 2.0 * r + GROUP_GAP).sum();
        let big = (around / TAU).max(radii.iter().cloned().fold(0.0, f64::max) * 1.3);
        let mut angle = -TAU / 4.0;
        for r in &radii {
            let share = (2.0 * r + GROUP_GAP) / around * TAU;
            angle += share / 2.0;
            centres.push((big * angle.cos(), big * angle.sin()));
            angle += share / 2.0;
        }
    }
    let mut nodes = vec![];
    let mut circles = vec![];
    for (((key, members), r), (cx, cy)) in groups.iter().zip(&radii).zip(&centres) {
        let inner = if members.len() == 1 {
            0.0
        } else {
            r - node_r * 1.6
        };
        for (i, c) in members.iter().enumerate() {
            let a = -TAU / 4.0 + TAU * i as f64 / members.len() as f64;
            nodes.push(Placed {
                name: c.name.to_string(),
                x: cx + inner * a.cos(),
                y: cy + inner * a.sin(),
            });
        }
        circles.push(GroupCircle {
            label: by.label(key),
            x: *cx,
            y: *cy,
            r: *r,
        });
    }
    // Shift everything into view.
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for g in &circles {
        min_x = min_x.min(g.x - g.r);
        min_y = min_y.min(g.y - g.r);
        max_x = max_x.max(g.x + g.r);
        max_y = max_y.max(g.y + g.r);
    }
    let (dx, dy) = (MARGIN - min_x, MARGIN - min_y);
    for p in &mut nodes {
        p.x = round(p.x + dx);
        p.y = round(p.y + dy);
    }
    for g in &mut circles {
        g.x = round(g.x + dx);
        g.y = round(g.y + dy);
        g.r = round(g.r);
    }
    let at: BTreeMap<&str, (f64, f64)> = nodes
        .iter()
        .map(|p| (p.name.as_str(), (p.x, p.y)))
        .collect();
    let edges = graph
        .links
        .iter()
        .filter_map(|l| {
            let a = at.get(l.from.as_str())?;
            let b = at.get(l.to.as_str())?;
            Some(Edge {
                from: l.from.clone(),
                to: l.to.clone(),
                d: arc(*a, *b, node_r).into(),
            })
        })
        .collect();
    Layout {
        width: round(max_x - min_x + 2.0 * MARGIN),
        height: round(max_y - min_y + 2.0 * MARGIN),
        node_r,
        nodes,
        groups: circles,
        edges,
    }
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A quadratic curve from `a` to `b`, bowed to the left of its direction (so `b`→`a` bows the other way),
/// starting and ending at the nodes' rims (plus room for the arrowhead).
fn arc(a: (f64, f64), b: (f64, f64), r: f64) -> String {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (ux, uy) = (dx / len, dy / len);
    // Left normal.
    let (nx, ny) = (uy, -ux);
    let bow = (len * 0.12).min(40.0);
    let (mx, my) = ((a.0 + b.0) / 2.0 + nx * bow, (a.1 + b.1) / 2.0 + ny * bow);
    let start = towards(a, (mx, my), r + 2.0);
    let end = towards(b, (mx, my), r + 6.0);
    format!(
        "M{} {} Q{} {} {} {}",
        round(start.0),
        round(start.1),
        round(mx),
        round(my),
        round(end.0),
        round(end.1)
    )
}

fn towards(from: (f64, f64), to: (f64, f64), by: f64) -> (f64, f64) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    (from.0 + dx / len * by, from.1 + dy / len * by)
}

/// A row of the drill-down's layered layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub namespace: String,
    pub meshed: bool,
    pub y: f64,
    /// Services with their y.
    pub services: Vec<(String, bool, f64)>,
}

/// The drill-down of one cluster: the cluster on the left, its namespaces in the middle, their services
/// on the right, one row per service.
pub fn layers(cluster: &ClusterNode) -> (Vec<Layer>, f64) {
    const ROW: f64 = 26.0;
    let mut y = 20.0;
    let mut out = vec![];
    for ns in &cluster.namespaces {
        let top = y;
        let services: Vec<(String, bool, f64)> = ns
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), s.exported, top + i as f64 * ROW))
            .collect();
        let rows = ns.services.len().max(1) as f64;
        out.push(Layer {
            namespace: ns.name.clone(),
            meshed: ns.meshed,
            y: top + (rows - 1.0) * ROW / 2.0,
            services,
        });
        y += rows * ROW + 12.0;
    }
    (out, y.max(60.0))
}

/// The clusters a filter keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// A health label ("healthy", …) or empty for all.
    pub health: String,
    /// A network or empty for all.
    pub network: String,
    /// A region or empty for all.
    pub region: String,
}

impl Filter {
    pub fn keeps(&self, c: &ClusterNode) -> bool {
        (self.health.is_empty() || c.health.label() == self.health)
            && (self.network.is_empty() || c.network.as_deref() == Some(self.network.as_str()))
            && (self.region.is_empty() || c.region.as_deref() == Some(self.region.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.health.is_empty() && self.network.is_empty() && self.region.is_empty()
    }
}

/// A topology export read back (the page's import): the graph alone, or `{"version", "graph"}`. Read in one
/// pass straight into the graph (a 100-cluster export is 8 MB: no tree of values in between).
pub fn parse_export(text: &str) -> Result<Graph, String> {
    #[derive(Deserialize)]
    struct Export {
        graph: Option<Graph>,
        clusters: Option<Vec<ClusterNode>>,
        links: Option<Vec<LinkEdge>>,
        findings: Option<Vec<Finding>>,
    }
    let e: Export = crate::data::parse(text).map_err(|e| e.to_string())?;
    let mut g = match e {
        Export { graph: Some(g), .. } => g,
        Export {
            clusters: Some(clusters),
            links: Some(links),
            findings: Some(findings),
            ..
        } => Graph {
            clusters,
            links,
            findings,
        },
        Export { clusters: None, .. } => return Err("missing field `clusters`".into()),
        Export { links: None, .. } => return Err("missing field `links`".into()),
        Export { .. } => return Err("missing field `findings`".into()),
    };
    g.sort();
    Ok(g)
}

/// The icon that goes with a health (never colour alone).
pub fn health_icon(h: Health) -> &'static str {
    match h {
        Health::Healthy => "✓",
        Health::Degraded => "!",
        Health::Failing => "✕",
        Health::Unknown => "?",
    }
}

/// A healthy cluster with nothing in it, for the tests of the page's models.
#[cfg(test)]
pub(crate) fn test_cluster(name: &str, network: Option<&str>) -> ClusterNode {
    let part = || mesh_ids::graph::Part {
        state: Health::Healthy,
        detail: String::new(),
    };
    ClusterNode {
        name: ClusterName::new(name).expect("name"),
        network: network.map(String::from),
        region: None,
        reachable: true,
        health: Health::Healthy,
        reasons: vec![],
        operator: part(),
        control_plane: part(),
        revision: None,
        version: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_ids::graph::{NamespaceNode, ServiceNode};

    fn cluster(name: &str, network: &str) -> ClusterNode {
        test_cluster(name, Some(network))
    }

    fn link(from: &str, to: &str) -> LinkEdge {
        LinkEdge {
            from: ClusterName::new(from).expect("name"),
            to: ClusterName::new(to).expect("name"),
            health: Health::Healthy,
            conditions: [].into(),
            address: None,
            expected_address: None,
            reasons: vec![],
        }
    }

    fn graph(n: usize, networks: usize) -> Graph {
        let mut g = Graph::default();
        for i in 0..n {
            g.clusters.push(cluster(
                &format!("c{i:03}"),
                &format!("net{}", i % networks),
            ));
        }
        for i in 0..n {
            for j in 0..n {
                if i != j && n <= 20 {
                    g.links.push(link(&format!("c{i:03}"), &format!("c{j:03}")));
                }
            }
        }
        g
    }

    fn min_distance(l: &Layout) -> f64 {
        let mut best = f64::MAX;
        for (i, a) in l.nodes.iter().enumerate() {
            for b in &l.nodes[i + 1..] {
                best = best.min(((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt());
            }
        }
        best
    }

    #[test]
    fn clusters_never_overlap_and_stay_in_view_from_2_to_100() {
        for (n, nets) in [
            (2, 1),
            (3, 3),
            (10, 2),
            (20, 4),
            (50, 5),
            (100, 10),
            (100, 1),
        ] {
            let g = graph(n, nets);
            let l = layout(&g, GroupBy::Network);
            assert_eq!(l.nodes.len(), n);
            assert!(
                min_distance(&l) >= 2.0 * l.node_r,
                "n={n}: nodes overlap ({} < {})",
                min_distance(&l),
                2.0 * l.node_r
            );
            for p in &l.nodes {
                assert!(
                    p.x >= l.node_r && p.y >= l.node_r && p.x <= l.width && p.y <= l.height,
                    "n={n}: {p:?} outside {}x{}",
                    l.width,
                    l.height
                );
            }
            assert_eq!(l.groups.len(), nets.min(n));
        }
    }

    #[test]
    fn both_directions_of_a_link_are_drawn_apart() {
        let g = graph(2, 1);
        let l = layout(&g, GroupBy::Network);
        assert_eq!(l.edges.len(), 2);
        assert_ne!(l.edges[0].d, l.edges[1].d);
        // Each path starts near its own cluster.
        let a = l.node("c000").expect("a");
        let start: Vec<f64> = l.edges[0].d[1..]
            .split([' ', 'Q'])
            .take(2)
            .map(|v| v.parse().expect("number"))
            .collect();
        let dist = ((start[0] - a.x).powi(2) + (start[1] - a.y).powi(2)).sqrt();
        assert!((dist - (l.node_r + 2.0)).abs() < 1.0, "{dist}");
    }

    #[test]
    fn grouping_by_region_puts_clusters_without_one_together() {
        let mut g = graph(4, 2);
        g.clusters[0].region = Some("eu".into());
        let l = layout(&g, GroupBy::Region);
        let labels: Vec<&str> = l.groups.iter().map(|g| g.label.as_str()).collect();
        assert_eq!(labels, ["no region", "region eu"]);
    }

    #[test]
    fn the_drill_down_has_a_row_per_service_and_centres_namespaces() {
        let mut c = cluster("a", "n");
        let svc = |n: &str, exported| ServiceNode {
            name: n.into(),
            exported,
            hostname: None,
        };
        c.namespaces = vec![
            NamespaceNode {
                name: "shop".into(),
                meshed: true,
                services: vec![svc("cart", true), svc("web", false), svc("db", false)],
            },
            NamespaceNode {
                name: "empty".into(),
                meshed: true,
                services: vec![],
            },
        ];
        let (rows, height) = layers(&c);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].services.len(), 3);
        assert_eq!(rows[0].y, rows[0].services[1].2);
        assert!(rows[1].y > rows[0].services[2].2);
        assert!(height > rows[1].y);
    }

    #[test]
    fn filters_keep_matching_clusters() {
        let mut c = cluster("a", "n1");
        c.health = Health::Failing;
        let f = Filter {
            health: "failing".into(),
            network: "n1".into(),
            region: String::new(),
        };
        assert!(f.keeps(&c));
        let f = Filter {
            network: "n2".into(),
            ..Default::default()
        };
        assert!(!f.keeps(&c));
    }
}
