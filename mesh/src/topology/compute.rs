//! [`compute`]: the graph from the snapshots.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ca::short;
use crate::ids::ClusterName;
use crate::ids::graph::{Finding, FindingKind, Graph, Health, LinkEdge};

use super::findings::{mesh_findings, ordered, root_findings, skew_findings, unknown_peer};
use super::index::{Clusters, Expected, PairSet};
use super::model::*;
use super::parts::*;

/// A link being built, with what the findings need to know of it.
struct Built<'a> {
    from: usize,
    to: usize,
    gateway: &'a PeerGatewayState,
    /// Other peer gateways in `from` for the same peer.
    extra: Vec<&'a str>,
}

/// Derives the graph: every cluster with its parts and health, every link with the state of both its sides,
/// and the findings (unreachable clusters, root and trust-domain mismatches, failing and stale links, clusters
/// and links missing from an expected full mesh, one-way links there, version skew across links, peer
/// gateways for clusters Meshdeck does not manage). Snapshots with a duplicate name after the first are
/// ignored.
pub fn compute(snapshots: &[ClusterSnapshot], expect: &Expectation) -> Graph {
    let clusters = Clusters::new(snapshots);
    let snaps = &clusters.snaps;
    let n = clusters.len();
    let mut by_network: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in snaps.iter().enumerate() {
        if let Some(net) = &s.network {
            by_network.entry(net.as_str()).or_default().push(i);
        }
    }
    let present = clusters.names();
    let expected_by = Expected::new(&clusters, expect);
    let mut findings = Vec::new();

    // The peer each gateway is for: its cluster label; without one (older or hand-written gateways) the
    // network label, which names the cluster or, failing that, the one cluster of that network (§2.1).
    // Per holder, its gateways by peer, then by name: the first names the link, the others are extra.
    let mut built: Vec<Built> = Vec::new();
    let mut linked = PairSet::new(n);
    let mut gateways: Vec<(usize, &PeerGatewayState)> = Vec::new();
    for (from, holder) in snaps.iter().enumerate() {
        gateways.clear();
        for gw in &holder.peers {
            let target = match (&gw.cluster_label, &gw.network_label) {
                (Some(c), _) => clusters.find(c).ok_or(c.as_str()),
                (None, Some(net)) => clusters
                    .find(net)
                    .or_else(|| match by_network.get(net.as_str()).map(Vec::as_slice) {
                        Some([only]) => Some(*only),
                        _ => None,
                    })
                    .ok_or(net.as_str()),
                (None, None) => Err(""),
            };
            match target {
                // istiod ignores a peer gateway for its own cluster (automatic peering makes one, §7.2).
                Ok(to) if to == from => {}
                Ok(to) => gateways.push((to, gw)),
                Err(peer) => findings.push(unknown_peer(holder, gw, peer)),
            }
        }
        gateways.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then_with(|| a.name.cmp(&b.name)));
        for &(to, gw) in &gateways {
            match built.last_mut() {
                Some(b) if b.from == from && b.to == to => b.extra.push(&gw.name),
                _ => {
                    linked.insert(from, to);
                    built.push(Built {
                        from,
                        to,
                        gateway: gw,
                        extra: vec![],
                    });
                }
            }
        }
    }
    // What every link to or from a cluster compares, read once per cluster.
    let advertised: Vec<Vec<&str>> = snaps
        .iter()
        .map(|s| {
            s.eastwest
                .as_ref()
                .map(EastWestState::advertised)
                .unwrap_or_default()
        })
        .collect();
    let minors: Vec<Option<(u64, u64)>> = snaps.iter().map(|s| s.minor()).collect();

    let mut links = Vec::with_capacity(built.len());
    let mut reachable_from: Vec<Vec<ClusterName>> = vec![Vec::new(); n];
    let mut stale: BTreeMap<&ClusterName, Vec<(&ClusterName, &str, bool)>> = BTreeMap::new();
    let mut wrong_trust: BTreeMap<&ClusterName, Vec<(&ClusterName, Option<&str>)>> =
        BTreeMap::new();
    let mut failing: BTreeMap<&ClusterName, Vec<(&ClusterName, String)>> = BTreeMap::new();
    let mut root_pairs: BTreeSet<(&ClusterName, &ClusterName)> = BTreeSet::new();
    let mut skew_pairs: BTreeSet<(&ClusterName, &ClusterName)> = BTreeSet::new();
    let mut one_way: BTreeMap<&ClusterName, Vec<&ClusterName>> = BTreeMap::new();

    for b in &built {
        let (a, z, gw) = (snaps[b.from], snaps[b.to], b.gateway);
        let mut reasons = Reasons::default();
        let (state, connected, why) = peering_state(&gw.conditions);
        if let Some(why) = &why {
            reasons.add(state, why.clone());
        }
        let expected = &advertised[b.to];
        let mut explained = false;
        match (&gw.address, expected.first()) {
            (None, _) => reasons.add(
                Health::Failing,
                format!(
                    "the peer gateway has no spec.addresses: re-link {} → {}",
                    a.name, z.name
                ),
            ),
            (Some(addr), Some(now)) if !expected.contains(&addr.as_str()) => {
                explained = true;
                reasons.add(
                    if connected {
                        Health::Degraded
                    } else {
                        Health::Failing
                    },
                    format!(
                        "stale address: dials {addr}, but {}'s east-west address is now {now}",
                        z.name
                    ),
                );
                stale
                    .entry(&z.name)
                    .or_default()
                    .push((&a.name, addr.as_str(), connected));
            }
            (Some(_), None) => reasons.add(
                Health::Degraded,
                format!(
                    "{}'s east-west gateway has no address to compare with",
                    z.name
                ),
            ),
            (Some(_), Some(_)) => {}
        }
        if let Some(actual) = &z.trust_domain
            && gw.trust_domain.as_deref() != Some(actual.as_str())
        {
            explained = true;
            reasons.add(
                Health::Failing,
                format!(
                    "trust domain mismatch: the gateway records {}, but {}'s trust domain is {actual:?}",
                    gw.trust_domain
                        .as_deref()
                        .map_or("none".to_string(), |t| format!("{t:?}")),
                    z.name
                ),
            );
            wrong_trust
                .entry(&z.name)
                .or_default()
                .push((&a.name, gw.trust_domain.as_deref()));
        }
        if let (Some(ra), Some(rz)) = (&a.root_fingerprint, &z.root_fingerprint)
            && ra != rz
        {
            explained = true;
            reasons.add(
                Health::Failing,
                format!(
                    "root mismatch: {} has root {}, {} has root {}",
                    a.name,
                    short(ra),
                    z.name,
                    short(rz)
                ),
            );
            root_pairs.insert(ordered(&a.name, &z.name));
        }
        if let (Some(ma), Some(mz)) = (minors[b.from], minors[b.to])
            && ma != mz
        {
            reasons.add(
                Health::Degraded,
                format!(
                    "version skew: {} runs {}, {} runs {}; keep the same Istio minor version on every cluster",
                    a.name,
                    a.version().unwrap_or_default(),
                    z.name,
                    z.version().unwrap_or_default()
                ),
            );
            skew_pairs.insert(ordered(&a.name, &z.name));
        }
        if !linked.contains(b.to, b.from) {
            let expected_both = expected_by.expects(b.to, b.from);
            reasons.add(
                if expected_both { Health::Degraded } else { Health::Healthy },
                format!(
                    "one-way: {z} holds no peer gateway for {a}, so {z}'s workloads cannot reach {a}'s services",
                    a = a.name,
                    z = z.name
                ),
            );
            if expected_both {
                one_way.entry(&a.name).or_default().push(&z.name);
            }
        }
        if !b.extra.is_empty() {
            reasons.add(
                Health::Degraded,
                format!(
                    "{} holds more than one peer gateway for {}: {}, {}; delete the extra ones",
                    a.name,
                    z.name,
                    gw.name,
                    b.extra.join(", ")
                ),
            );
        }
        for (s, side) in [
            (a, "its peer gateway"),
            (z, "its east-west address and root"),
        ] {
            if s.unreachable.is_some() {
                reasons.add(
                    Health::Healthy,
                    format!("{} is unreachable: {side} as last seen", s.name),
                );
            }
        }
        let health = reasons.health();
        if state == Health::Failing && !explained {
            failing
                .entry(&z.name)
                .or_default()
                .push((&a.name, why.unwrap_or_default()));
        }
        if connected && health != Health::Failing {
            reachable_from[b.to].push(a.name.clone());
        }
        links.push(LinkEdge {
            from: a.name.clone(),
            to: z.name.clone(),
            health,
            conditions: gw.conditions.clone(),
            address: gw.address.clone(),
            expected_address: expected.first().map(|s| s.to_string()),
            reasons: reasons.into_lines(),
        });
    }

    for s in snaps {
        if let Some(err) = &s.unreachable {
            findings.push(Finding {
                kind: FindingKind::Unreachable,
                severity: Health::Unknown,
                clusters: vec![s.name.clone()],
                message: format!(
                    "{} cannot be reached ({err}): it is shown as last seen, and its links may have changed since. \
                     Check its address and credentials in Meshdeck (Clusters → Re-test).",
                    s.name
                ),
            });
        }
    }
    root_findings(snaps, &root_pairs, &mut findings);
    for (to, from) in wrong_trust {
        let actual = clusters
            .find(to.as_str())
            .and_then(|i| snaps[i].trust_domain.as_deref())
            .unwrap_or_default();
        let mut recorded: BTreeMap<Option<&str>, Vec<&ClusterName>> = BTreeMap::new();
        for (f, t) in &from {
            recorded.entry(*t).or_default().push(*f);
        }
        let what = recorded
            .iter()
            .map(|(t, fs)| {
                format!(
                    "{} {}",
                    names(fs.iter().copied()),
                    t.map_or("no trust domain".to_string(), |t| format!("{t:?}"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let sources: Vec<&ClusterName> = from.iter().map(|(f, _)| *f).collect();
        findings.push(Finding {
            kind: FindingKind::TrustDomainMismatch,
            severity: Health::Failing,
            clusters: std::iter::once(to).chain(sources.iter().copied()).cloned().collect(),
            message: format!(
                "The peer gateways for {to} record the wrong trust domain ({what}), but {to}'s trust domain is \
                 {actual:?}: ztunnel then rejects {to}'s workloads (\"peer did not present the expected SAN\"). \
                 Re-link {} → {to}, which rebuilds the gateways from {to}'s mesh config.",
                names(sources.iter().copied())
            ),
        });
    }
    for (to, from) in failing {
        let sources: Vec<&ClusterName> = from.iter().map(|(f, _)| *f).collect();
        let details = from
            .iter()
            .take(3)
            .map(|(f, why)| format!("{f}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        let (invalid, other): (Vec<_>, Vec<_>) =
            from.iter().partition(|(_, why)| why.contains("(Invalid)"));
        let mut advice = vec![];
        if !invalid.is_empty() {
            advice.push(format!(
                "Re-link {} → {to}: an invalid peer gateway is rebuilt from {to}'s live state.",
                names(invalid.iter().map(|(f, _)| *f))
            ));
        }
        if !other.is_empty() {
            let others = names(other.iter().map(|(f, _)| *f));
            advice.push(format!(
                "Check that {to}'s east-west gateway is reachable from {others}, that {to}'s istiod runs, and that \
                 the licenses allow multicluster; then look at istiod's log in {others}."
            ));
        }
        findings.push(Finding {
            kind: FindingKind::LinkFailing,
            severity: Health::Failing,
            clusters: std::iter::once(to)
                .chain(sources.iter().copied())
                .cloned()
                .collect(),
            message: format!(
                "Peering with {to} fails from {} ({details}). {}",
                names(sources.iter().copied()),
                advice.join(" ")
            ),
        });
    }
    for (to, from) in stale {
        let now = clusters
            .find(to.as_str())
            .and_then(|i| advertised[i].first().copied())
            .unwrap_or_default();
        let mut dialed: BTreeMap<&str, Vec<&ClusterName>> = BTreeMap::new();
        for (f, addr, _) in &from {
            dialed.entry(*addr).or_default().push(*f);
        }
        let what = dialed
            .iter()
            .map(|(addr, fs)| format!("{} dial {addr}", names(fs.iter().copied())))
            .collect::<Vec<_>>()
            .join("; ");
        let sources: Vec<&ClusterName> = from.iter().map(|(f, _, _)| *f).collect();
        findings.push(Finding {
            kind: FindingKind::StaleAddress,
            severity: if from.iter().all(|(_, _, connected)| *connected) {
                Health::Degraded
            } else {
                Health::Failing
            },
            clusters: std::iter::once(to).chain(sources.iter().copied()).cloned().collect(),
            message: format!(
                "{to}'s east-west gateway is now at {now}, but peer gateways for it use an old address ({what}). \
                 Re-link {} → {to} so they carry the current address (with automatic peering, check that the \
                 management plane redistributed {to}'s peer gateway).",
                names(sources.iter().copied())
            ),
        });
    }
    mesh_findings(&present, &expected_by, &linked, &one_way, &mut findings);
    skew_findings(snaps, &skew_pairs, &mut findings);
    findings
        .sort_by(|a, b| (a.kind, &a.clusters, &a.message).cmp(&(b.kind, &b.clusters, &b.message)));

    // Links were built holder by holder in name order, so each cluster's list is in name order.
    let nodes = snaps
        .iter()
        .zip(reachable_from)
        .map(|(s, from)| cluster_node(s, from))
        .collect();
    // `built` is in (from, to) order of names, so the links are already in canonical order.
    Graph {
        clusters: nodes,
        links,
        findings,
    }
}
