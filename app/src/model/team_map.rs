//! The topology as one team sees it (the Topology page's team filter): where its namespaces are, which of
//! its services are shared, from which clusters they are reachable and along which links, and any drift of
//! what the portal keeps applied. Computed from the live graph and the team's scope the same way on the
//! server (the page renders without JavaScript) and in the browser (it follows the graph as it changes).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::portal::{PortalDrift, TeamGrant, pattern_matches};
use super::topology::Graph;

/// What the page needs of a team: its grants, and every object the portal keeps applied for it with the
/// drift the watches see (empty: in step, or its cluster is not watched now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamScope {
    pub team: String,
    /// The caller is in the team (and may ask for a re-apply from the topology).
    #[serde(default)]
    pub member: bool,
    pub grants: Vec<TeamGrant>,
    pub objects: Vec<PortalDrift>,
}

/// One namespace of the team in one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamNamespace {
    pub cluster: String,
    pub namespace: String,
    /// In the mesh, as the graph shows it.
    pub meshed: bool,
    /// The portal keeps labels on it (else it is only granted and seen in the graph).
    pub by_portal: bool,
    pub drift: Vec<String>,
}

/// One service of the team shared across the mesh (or that the portal shares and has drifted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamService {
    pub namespace: String,
    pub service: String,
    /// The name other clusters use, as the graph shows it.
    pub hostname: Option<String>,
    /// Clusters where it is shared (labelled with a scope) now.
    pub shared_in: Vec<String>,
    /// Clusters from which it is reachable: linked to one where it is shared.
    pub reachable_from: Vec<String>,
    /// `(cluster, what differs)`.
    pub drift: Vec<(String, String)>,
}

/// The team's view of the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TeamMap {
    pub team: String,
    /// Clusters holding a namespace of the team.
    pub home: BTreeSet<String>,
    /// Clusters from which a shared service of the team is reachable.
    pub reaching: BTreeSet<String>,
    /// Links `(from, to)` along which a shared service of the team is reached: `to` shares it, `from` holds
    /// the peer gateway for `to`.
    pub links: BTreeSet<(String, String)>,
    /// Clusters where something the portal applied for the team has drifted.
    pub drifting: BTreeSet<String>,
    /// `(cluster, namespace)` holding drift: what a re-apply is asked for.
    pub to_reapply: BTreeSet<(String, String)>,
    pub member: bool,
    pub namespaces: Vec<TeamNamespace>,
    pub services: Vec<TeamService>,
}

impl TeamMap {
    /// Whether a cluster matters to the team (home, or reaching its services).
    pub fn touches(&self, cluster: &str) -> bool {
        self.home.contains(cluster) || self.reaching.contains(cluster)
    }
}

/// The team's view of `graph`: the namespaces the portal keeps applied for it, and the graph's namespaces
/// its grants cover; the services of those that are shared, with where they are reachable from.
pub fn team_map(graph: &Graph, scope: &TeamScope) -> TeamMap {
    let mut map = TeamMap {
        team: scope.team.clone(),
        member: scope.member,
        ..Default::default()
    };
    let granted = |cluster: &str, ns: &str| {
        scope
            .grants
            .iter()
            .filter(|g| g.cluster == cluster)
            .flat_map(|g| g.patterns.iter())
            .any(|p| pattern_matches(p, ns))
    };
    // What the portal keeps: (cluster, namespace) → drift; (namespace, service) → [(cluster, drift)].
    let mut kept_ns: BTreeMap<(&str, &str), &PortalDrift> = BTreeMap::new();
    let mut kept_svc: BTreeMap<(&str, &str), Vec<&PortalDrift>> = BTreeMap::new();
    let kept_any: BTreeSet<(&str, &str)> = scope
        .objects
        .iter()
        .map(|o| (o.cluster.as_str(), o.namespace.as_str()))
        .collect();
    for o in &scope.objects {
        match &o.service {
            None => {
                kept_ns.insert((o.cluster.as_str(), o.namespace.as_str()), o);
            }
            Some(s) => kept_svc
                .entry((o.namespace.as_str(), s.as_str()))
                .or_default()
                .push(o),
        }
        if !o.drift.is_empty() {
            map.drifting.insert(o.cluster.clone());
            map.to_reapply
                .insert((o.cluster.clone(), o.namespace.clone()));
        }
    }
    let mut services: BTreeMap<(String, String), TeamService> = BTreeMap::new();
    let mut seen_ns: BTreeSet<(&str, &str)> = BTreeSet::new();
    for c in &graph.clusters {
        let cluster = c.name.as_str();
        for ns in &c.namespaces {
            let kept = kept_ns.get(&(cluster, ns.name.as_str()));
            if !kept_any.contains(&(cluster, ns.name.as_str())) && !granted(cluster, &ns.name) {
                continue;
            }
            seen_ns.insert((cluster, ns.name.as_str()));
            map.home.insert(cluster.to_string());
            map.namespaces.push(TeamNamespace {
                cluster: cluster.to_string(),
                namespace: ns.name.clone(),
                meshed: ns.meshed,
                by_portal: kept.is_some(),
                drift: kept.map(|k| k.drift.clone()).unwrap_or_default(),
            });
            for s in ns.services.iter().filter(|s| s.exported) {
                let entry = services
                    .entry((ns.name.clone(), s.name.clone()))
                    .or_insert_with(|| TeamService {
                        namespace: ns.name.clone(),
                        service: s.name.clone(),
                        hostname: None,
                        shared_in: vec![],
                        reachable_from: vec![],
                        drift: vec![],
                    });
                if entry.hostname.is_none() {
                    entry.hostname = s.hostname.clone();
                }
                entry.shared_in.push(cluster.to_string());
                for from in c.reachable_from(s) {
                    entry.reachable_from.push(from.to_string());
                    map.reaching.insert(from.to_string());
                    map.links.insert((from.to_string(), cluster.to_string()));
                }
            }
        }
    }
    // Namespaces the portal keeps that the graph no longer shows (left the mesh by hand, or not watched).
    for ((cluster, ns), o) in &kept_ns {
        if !seen_ns.contains(&(*cluster, *ns)) {
            map.home.insert(cluster.to_string());
            map.namespaces.push(TeamNamespace {
                cluster: cluster.to_string(),
                namespace: ns.to_string(),
                meshed: false,
                by_portal: true,
                drift: o.drift.clone(),
            });
        }
    }
    // Services the portal shares: their drift, and those no longer shared anywhere.
    for ((ns, svc), objects) in kept_svc {
        let entry = services
            .entry((ns.to_string(), svc.to_string()))
            .or_insert_with(|| TeamService {
                namespace: ns.to_string(),
                service: svc.to_string(),
                hostname: None,
                shared_in: vec![],
                reachable_from: vec![],
                drift: vec![],
            });
        for o in objects {
            entry
                .drift
                .extend(o.drift.iter().map(|d| (o.cluster.clone(), d.clone())));
        }
    }
    map.namespaces
        .sort_by(|a, b| (&a.namespace, &a.cluster).cmp(&(&b.namespace, &b.cluster)));
    map.services = services
        .into_values()
        .map(|mut s| {
            s.reachable_from.sort();
            s.reachable_from.dedup();
            s
        })
        .collect();
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClusterName;
    use crate::model::topology::{ClusterNode, test_cluster};
    use mesh_ids::graph::{NamespaceNode, ServiceNode};

    fn cluster(name: &str, namespaces: Vec<NamespaceNode>, reached_by: &[&str]) -> ClusterNode {
        ClusterNode {
            namespaces,
            exports_reachable_from: reached_by
                .iter()
                .map(|n| ClusterName::new(n).expect("name"))
                .collect(),
            ..test_cluster(name, None)
        }
    }

    fn ns(name: &str, services: &[(&str, bool)]) -> NamespaceNode {
        NamespaceNode {
            name: name.into(),
            meshed: true,
            services: services
                .iter()
                .map(|(s, exported)| ServiceNode {
                    name: s.to_string(),
                    exported: *exported,
                    hostname: exported.then(|| format!("{s}.{name}.mesh.internal")),
                })
                .collect(),
        }
    }

    fn object(cluster: &str, ns: &str, svc: Option<&str>, drift: &[&str]) -> PortalDrift {
        PortalDrift {
            cluster: cluster.into(),
            namespace: ns.into(),
            service: svc.map(String::from),
            drift: drift.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn a_team_sees_its_namespaces_its_shared_services_and_where_they_are_reached_from() {
        let graph = Graph {
            clusters: vec![
                cluster(
                    "c1",
                    vec![
                        ns("pay-api", &[("web", true), ("db", false)]),
                        ns("shop", &[("cart", true)]),
                    ],
                    &["c2", "c3"],
                ),
                cluster("c2", vec![ns("pay-api", &[("web", true)])], &["c1"]),
                cluster("c3", vec![ns("shop", &[])], &[]),
            ],
            ..Default::default()
        };
        let scope = TeamScope {
            member: true,
            team: "payments".into(),
            grants: vec![
                TeamGrant {
                    cluster: "c1".into(),
                    patterns: vec!["pay-*".into()],
                },
                TeamGrant {
                    cluster: "c2".into(),
                    patterns: vec!["pay-*".into()],
                },
            ],
            objects: vec![
                object("c1", "pay-api", None, &[]),
                object(
                    "c2",
                    "pay-api",
                    None,
                    &["label istio-injection=enabled was removed"],
                ),
                object("c1", "pay-api", Some("web"), &[]),
                // Left the mesh by hand in c3: not in the graph, still the team's.
                object(
                    "c3",
                    "pay-old",
                    None,
                    &["label istio-injection=enabled was removed"],
                ),
            ],
        };
        let m = team_map(&graph, &scope);
        assert_eq!(
            m.home,
            ["c1", "c2", "c3"].map(String::from).into_iter().collect()
        );
        let names: Vec<(&str, &str, bool)> = m
            .namespaces
            .iter()
            .map(|n| (n.namespace.as_str(), n.cluster.as_str(), n.meshed))
            .collect();
        assert_eq!(
            names,
            [
                ("pay-api", "c1", true),
                ("pay-api", "c2", true),
                ("pay-old", "c3", false)
            ],
            "the shop namespace is another team's"
        );
        assert_eq!(m.services.len(), 1, "{:?}", m.services);
        let web = &m.services[0];
        assert_eq!(web.hostname.as_deref(), Some("web.pay-api.mesh.internal"));
        assert_eq!(web.shared_in, ["c1", "c2"]);
        assert_eq!(web.reachable_from, ["c1", "c2", "c3"]);
        assert!(m.links.contains(&("c3".to_string(), "c1".to_string())));
        assert!(m.links.contains(&("c1".to_string(), "c2".to_string())));
        assert!(!m.links.contains(&("c3".to_string(), "c2".to_string())));
        assert_eq!(
            m.drifting,
            ["c2", "c3"].map(String::from).into_iter().collect()
        );
        assert_eq!(
            m.to_reapply,
            [("c2", "pay-api"), ("c3", "pay-old")]
                .map(|(c, n)| (c.to_string(), n.to_string()))
                .into_iter()
                .collect()
        );
        assert!(m.touches("c3") && !m.touches("c9"));
    }

    #[test]
    fn a_service_the_portal_shares_that_lost_its_label_is_listed_with_its_drift() {
        let graph = Graph {
            clusters: vec![cluster("c1", vec![ns("pay", &[("web", false)])], &[])],
            ..Default::default()
        };
        let scope = TeamScope {
            member: true,
            team: "t".into(),
            grants: vec![],
            objects: vec![
                object("c1", "pay", None, &[]),
                object(
                    "c1",
                    "pay",
                    Some("web"),
                    &["label solo.io/service-scope=global was removed"],
                ),
            ],
        };
        let m = team_map(&graph, &scope);
        assert_eq!(m.services.len(), 1);
        assert!(m.services[0].shared_in.is_empty());
        assert_eq!(
            m.services[0].drift,
            [(
                "c1".to_string(),
                "label solo.io/service-scope=global was removed".to_string()
            )]
        );
        assert_eq!(m.namespaces.len(), 1);
        assert!(m.namespaces[0].by_portal);
    }
}
