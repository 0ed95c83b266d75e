//! The findings that span clusters: roots, version skew, and clusters and links missing from the mesh.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ca::short;
use crate::ids::ClusterName;
use crate::ids::graph::{Finding, FindingKind, Health};

use super::index::{Expected, PairSet};
use super::model::*;
use super::parts::{most_common, names};

pub(super) fn ordered<'a>(
    a: &'a ClusterName,
    b: &'a ClusterName,
) -> (&'a ClusterName, &'a ClusterName) {
    if a <= b { (a, b) } else { (b, a) }
}

/// For each cluster, the others it shares a pair with.
fn partners<'a>(
    pairs: &BTreeSet<(&'a ClusterName, &'a ClusterName)>,
) -> BTreeMap<&'a ClusterName, BTreeSet<&'a ClusterName>> {
    let mut out: BTreeMap<&ClusterName, BTreeSet<&ClusterName>> = BTreeMap::new();
    for (a, b) in pairs {
        out.entry(a).or_default().insert(b);
        out.entry(b).or_default().insert(a);
    }
    out
}

pub(super) fn unknown_peer(from: &ClusterSnapshot, gw: &PeerGatewayState, peer: &str) -> Finding {
    let message = if peer.is_empty() {
        format!(
            "{} holds peer gateway {} without a topology.istio.io/cluster or topology.istio.io/network label, which \
             the peering controller rejects: delete it (gateway {} in istio-eastwest on {}) and link again from Meshdeck.",
            from.name, gw.name, gw.name, from.name
        )
    } else {
        format!(
            "{} holds peer gateway {} for cluster {peer:?}, which Meshdeck does not manage: register {peer} in Meshdeck \
             to see this link, or, if that cluster is gone, delete the gateway (gateway {} in istio-eastwest on {}).",
            from.name, gw.name, gw.name, from.name
        )
    };
    Finding {
        kind: FindingKind::UnknownPeer,
        severity: Health::Degraded,
        clusters: vec![from.name.clone()],
        message,
    }
}

/// One finding per cluster whose root is not the one most clusters hold and that is linked with a cluster of
/// another root; without such a root (a tie), one finding for all the clusters involved.
pub(super) fn root_findings(
    snaps: &[&ClusterSnapshot],
    pairs: &BTreeSet<(&ClusterName, &ClusterName)>,
    findings: &mut Vec<Finding>,
) {
    if pairs.is_empty() {
        return;
    }
    let root_of: HashMap<&ClusterName, &str> = snaps
        .iter()
        .filter_map(|s| Some((&s.name, s.root_fingerprint.as_deref()?)))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in root_of.values() {
        *counts.entry(*r).or_default() += 1;
    }
    let top = counts.values().max().copied().unwrap_or(0);
    let mut tops = counts.iter().filter(|(_, n)| **n == top).map(|(r, _)| *r);
    let shared = match (tops.next(), tops.next()) {
        (Some(r), None) => Some(r),
        _ => None,
    };
    let partners = partners(pairs);
    // "c1 and c2 (root aaaa…), c3 (root bbbb…)".
    let grouped = |cs: Vec<&ClusterName>| {
        let mut by_root: BTreeMap<&str, Vec<&ClusterName>> = BTreeMap::new();
        for c in cs {
            by_root.entry(root_of[c]).or_default().push(c);
        }
        by_root
            .iter()
            .map(|(r, cs)| format!("{} (root {})", names(cs.iter().copied()), short(r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match shared {
        Some(shared) => {
            for (c, others) in &partners {
                if root_of[c] == shared {
                    continue;
                }
                findings.push(Finding {
                    kind: FindingKind::RootMismatch,
                    severity: Health::Failing,
                    clusters: std::iter::once(*c).chain(others.iter().copied()).cloned().collect(),
                    message: format!(
                        "{c} (root {}) does not share the root of trust of the clusters it is linked with, {}, so their \
                         workloads cannot verify each other. Re-issue {c}'s intermediate CA (the cacerts Secret in \
                         istio-system) from the shared root {}, then restart istiod on {c}.",
                        short(root_of[c]),
                        grouped(others.iter().copied().collect()),
                        short(shared)
                    ),
                });
            }
        }
        None => {
            let involved: Vec<&ClusterName> = partners.keys().copied().collect();
            findings.push(Finding {
                kind: FindingKind::RootMismatch,
                severity: Health::Failing,
                clusters: involved.iter().copied().cloned().collect(),
                message: format!(
                    "Linked clusters hold different roots of trust, {}, and none is held by most clusters, so their \
                     workloads cannot verify each other. Choose one root, re-issue every other cluster's intermediate \
                     CA (the cacerts Secret in istio-system) from it, then restart istiod there.",
                    grouped(involved.clone())
                ),
            });
        }
    }
}

/// One finding per cluster on a minor version other than the one most clusters run (a tie goes to the newest)
/// that is linked with a cluster on another minor.
pub(super) fn skew_findings(
    snaps: &[&ClusterSnapshot],
    pairs: &BTreeSet<(&ClusterName, &ClusterName)>,
    findings: &mut Vec<Finding>,
) {
    if pairs.is_empty() {
        return;
    }
    let by_name: HashMap<&ClusterName, &ClusterSnapshot> =
        snaps.iter().map(|s| (&s.name, *s)).collect();
    let Some(target) = most_common(snaps.iter().filter_map(|s| s.minor())) else {
        return;
    };
    for (c, others) in partners(pairs) {
        let s = by_name[c];
        if s.minor() == Some(target) {
            continue;
        }
        let mut by_minor: BTreeMap<(u64, u64), Vec<&ClusterName>> = BTreeMap::new();
        for o in &others {
            if let Some(m) = by_name[o].minor() {
                by_minor.entry(m).or_default().push(*o);
            }
        }
        let peers = by_minor
            .iter()
            .map(|((ma, mi), cs)| {
                format!(
                    "{} {} {ma}.{mi}",
                    names(cs.iter().copied()),
                    if cs.len() == 1 { "runs" } else { "run" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        findings.push(Finding {
            kind: FindingKind::VersionSkew,
            severity: Health::Degraded,
            clusters: std::iter::once(c).chain(others.iter().copied()).cloned().collect(),
            message: format!(
                "{c} runs Istio {} but is linked with clusters on another minor version ({peers}). The rule is the \
                 same Istio minor version on every cluster of the mesh: upgrade {c} to {}.{} (the \
                 ServiceMeshController's version).",
                s.version().unwrap_or_default(),
                target.0,
                target.1
            ),
        });
    }
}

/// Against what is expected (a full mesh, or the linking chosen at setup): clusters linked with none of
/// the clusters they are meant to be linked with, pairs linked in neither direction, and links not returned.
pub(super) fn mesh_findings(
    present: &[&ClusterName],
    expect: &Expected,
    linked: &PairSet,
    one_way: &BTreeMap<&ClusterName, Vec<&ClusterName>>,
    findings: &mut Vec<Finding>,
) {
    // Who each cluster is meant to be linked with, in either direction (in name order: the pairs are visited
    // in order, so each cluster's list fills in order).
    let n = present.len();
    let mut partners: Vec<Vec<usize>> = vec![Vec::new(); n];
    for a in 0..n {
        for b in a + 1..n {
            if expect.expects(a, b) || expect.expects(b, a) {
                partners[a].push(b);
                partners[b].push(a);
            }
        }
    }
    let meant: Vec<usize> = (0..n).filter(|c| !partners[*c].is_empty()).collect();
    if meant.len() < 2 {
        return;
    }
    let name = |i: &usize| present[*i];
    let with = |c: usize| {
        partners[c]
            .iter()
            .any(|o| linked.contains(c, *o) || linked.contains(*o, c))
    };
    let alone: Vec<bool> = (0..n)
        .map(|c| !partners[c].is_empty() && !with(c))
        .collect();
    let alone_count = alone.iter().filter(|a| **a).count();
    let any_chosen = meant
        .iter()
        .any(|c| partners[*c].iter().any(|o| expect.chose(*c, *o)));
    if alone_count == meant.len() {
        let all = names(meant.iter().map(name));
        findings.push(Finding {
            kind: FindingKind::NotMeshed,
            severity: Health::Failing,
            clusters: meant.iter().map(name).cloned().collect(),
            message: if any_chosen {
                format!(
                    "None of the {} clusters meant to be linked ({all}, as chosen at setup) are linked. Link them \
                     (Setup → Link, the pairs chosen), or with automatic peering check that each east-west gateway \
                     is programmed and that the management plane distributes the peer gateways.",
                    meant.len()
                )
            } else {
                format!(
                    "None of the {} clusters expected in the full mesh ({all}) are linked. Link them (Setup → Link, \
                     every pair both ways), or with automatic peering check that each east-west gateway is programmed \
                     and that the management plane distributes the peer gateways.",
                    meant.len()
                )
            },
        });
        return;
    }
    for &c in meant.iter().filter(|c| alone[**c]) {
        let p = &partners[c];
        let c_name = present[c];
        findings.push(Finding {
            kind: FindingKind::NotMeshed,
            severity: Health::Failing,
            clusters: vec![c_name.clone()],
            message: if p.iter().any(|o| expect.chose(c, *o)) {
                format!(
                    "{c_name} is meant to be linked with {} (as chosen at setup) but is linked with none of them. Link \
                     it (Setup → Link), or with automatic peering check that its east-west gateway is programmed and \
                     that the management plane distributes its peer gateway.",
                    names(p.iter().map(name))
                )
            } else {
                format!(
                    "{c_name} is expected in the full mesh but is linked with none of the other {} clusters. Link it both \
                     ways with each of them (Setup → Link), or with automatic peering check that its east-west gateway \
                     is programmed and that the management plane distributes its peer gateway.",
                    p.len()
                )
            },
        });
    }
    for &ai in &meant {
        for &bi in partners[ai].iter().filter(|b| **b > ai) {
            if alone[ai] || alone[bi] || linked.contains(ai, bi) || linked.contains(bi, ai) {
                continue;
            }
            let (a, b) = (present[ai], present[bi]);
            let (ab, ba) = (expect.expects(ai, bi), expect.expects(bi, ai));
            let message = match (ab, ba, expect.chose(ai, bi)) {
                (true, true, false) => format!(
                    "{a} and {b} are expected in the full mesh but are not linked in either direction, so neither \
                     reaches the other's services. Link them both ways (Setup → Link {a} ⇄ {b})."
                ),
                (true, true, true) => format!(
                    "{a} and {b} are meant to be linked both ways (as chosen at setup) but are not linked in either \
                     direction, so neither reaches the other's services. Link them both ways (Setup → Link {a} ⇄ {b})."
                ),
                (from_a, _, _) => {
                    let (x, y) = if from_a { (a, b) } else { (b, a) };
                    format!(
                        "{x} is meant to hold a peer gateway for {y} (a one-way link chosen at setup) but holds none, \
                         so {x}'s workloads cannot reach {y}'s services. Link {x} → {y} (Setup → Link)."
                    )
                }
            };
            findings.push(Finding {
                kind: FindingKind::MissingLink,
                severity: Health::Degraded,
                clusters: vec![(*a).clone(), (*b).clone()],
                message,
            });
        }
    }
    for (a, lacking) in one_way {
        let verb = if lacking.len() == 1 { "holds" } else { "hold" };
        findings.push(Finding {
            kind: FindingKind::OneWay,
            severity: Health::Degraded,
            clusters: std::iter::once(*a).chain(lacking.iter().copied()).cloned().collect(),
            message: format!(
                "{a} links to {l}, but {l} {verb} no peer gateway for {a}, so their workloads cannot reach {a}'s \
                 services. Link {l} → {a} (or link each pair both ways).",
                l = names(lacking.iter().copied())
            ),
        });
    }
}
