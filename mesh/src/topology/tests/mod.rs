//! The topology's unit tests: the snapshots they start from (here), the graph's links and findings
//! (`links`), a cluster's parts, its services and gateways, and the diff (`parts`).

use std::collections::BTreeMap;

use kube::api::DynamicObject;

use super::*;
use crate::ids::ClusterName;
use crate::ids::graph::{
    ClusterNode, ConditionView, EastWestKind, Finding, FindingKind, Graph, Health, LinkEdge,
};
use crate::ids::graph::{apply, diff};

mod links;
mod parts;

const ROOT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER_ROOT: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn name(n: &str) -> ClusterName {
    ClusterName::new(n).expect("name")
}

fn cond(t: &str, status: &str, reason: &str, message: &str) -> ConditionView {
    ConditionView {
        type_: t.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
    }
}

fn connected() -> Vec<ConditionView> {
    let mut c = vec![
        cond("Accepted", "True", "Accepted", "Resource accepted"),
        cond(
            "Programmed",
            "True",
            "Programmed",
            "This Gateway is remote; Istio will not program it",
        ),
    ];
    c.extend(
        PEER_CONDITIONS
            .iter()
            .map(|t| cond(t, "True", "Programmed", "")),
    );
    c
}

fn address(i: usize) -> String {
    format!("10.0.{}.{}", i / 250, i % 250 + 1)
}

/// A healthy cluster: everything installed and ready, east-west gateway at `address(i)`, shared root,
/// trust domain = its name, Istio 1.28.1; one meshed namespace with an exported and a local service.
fn healthy(i: usize) -> ClusterSnapshot {
    let n = format!("c{i}");
    let ready = Some(WorkloadState {
        desired: 2,
        ready: 2,
    });
    let labels = |kv: &[(&str, &str)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    ClusterSnapshot {
        network: Some(n.clone()),
        region: Some(if i.is_multiple_of(2) { "eu" } else { "us" }.into()),
        operator: Some(WorkloadState {
            desired: 1,
            ready: 1,
        }),
        smc: Some(SmcState {
            phase: Some("SUCCEEDED".into()),
            conditions: vec![cond(
                "Ready",
                "True",
                "SystemReady",
                "All conditions are met",
            )],
            version: Some("1.28.1-patch0".into()),
            install_namespace: None,
        }),
        istiod: Some(IstiodState {
            pods: WorkloadState {
                desired: 1,
                ready: 1,
            },
            revision: Some("gloo".into()),
        }),
        ztunnel: ready,
        cni: ready,
        eastwest: Some(EastWestState {
            kind: EastWestKind::LoadBalancer,
            addresses: vec![address(i)],
            address_override: None,
            programmed: Some(cond(
                "Programmed",
                "True",
                "Programmed",
                "Resource programmed",
            )),
            cluster_label: Some(n.clone()),
        }),
        root_fingerprint: Some(ROOT.into()),
        trust_domain: Some(n.clone()),
        license: LicenseState::Valid,
        namespaces: vec![
            NamespaceState {
                name: "bookinfo".into(),
                labels: labels(&[("istio-injection", "enabled")]),
                services: vec![
                    ServiceState {
                        name: "reviews".into(),
                        labels: BTreeMap::new(),
                    },
                    ServiceState {
                        name: "productpage".into(),
                        labels: labels(&[(SERVICE_SCOPE_LABEL, "global")]),
                    },
                ],
            },
            NamespaceState {
                name: "kube-system".into(),
                labels: BTreeMap::new(),
                services: vec![ServiceState {
                    name: "kube-dns".into(),
                    labels: BTreeMap::new(),
                }],
            },
        ],
        ..ClusterSnapshot::new(name(&n))
    }
}

/// Adds to `snaps[from]` the peer gateway `link` would make for `snaps[to]`, connected.
fn link(snaps: &mut [ClusterSnapshot], from: usize, to: usize) {
    let peer = &snaps[to];
    let gw = PeerGatewayState {
        name: format!("istio-remote-peer-{}", peer.name),
        cluster_label: Some(peer.name.to_string()),
        network_label: peer.network.clone(),
        trust_domain: peer.trust_domain.clone(),
        address: peer.eastwest.as_ref().map(|e| e.addresses[0].clone()),
        conditions: connected().into(),
    };
    snaps[from].peers.push(gw);
}

fn full_mesh(n: usize) -> Vec<ClusterSnapshot> {
    let mut snaps: Vec<ClusterSnapshot> = (1..=n).map(healthy).collect();
    for a in 0..n {
        for b in 0..n {
            if a != b {
                link(&mut snaps, a, b);
            }
        }
    }
    snaps
}

fn peer<'a>(snaps: &'a mut [ClusterSnapshot], from: usize, to: &str) -> &'a mut PeerGatewayState {
    snaps[from]
        .peers
        .iter_mut()
        .find(|p| p.cluster_label.as_deref() == Some(to))
        .expect("peer gateway")
}

fn kinds(g: &Graph) -> Vec<FindingKind> {
    g.findings.iter().map(|f| f.kind).collect()
}

fn only(g: &Graph, kind: FindingKind) -> &Finding {
    let found: Vec<&Finding> = g.findings.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(found.len(), 1, "{:#?}", g.findings);
    found[0]
}

fn edge<'a>(g: &'a Graph, from: &str, to: &str) -> &'a LinkEdge {
    g.link(&name(from), &name(to)).expect("link")
}

fn cluster<'a>(g: &'a Graph, n: &str) -> &'a ClusterNode {
    g.cluster(&name(n)).expect("cluster")
}

fn clusters(f: &Finding) -> Vec<&str> {
    f.clusters.iter().map(ClusterName::as_str).collect()
}
