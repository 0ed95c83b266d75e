//! [`compute`]: the graph from the snapshots.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ca::short;
use crate::ids::ClusterName;
use crate::ids::graph::{Finding, FindingKind, Graph, Health, LinkEdge};

use super::findings::{mesh_findings, ordered, root_findings, skew_findings, unknown_peer};
use super::model::*;
use super::parts::*;

/// A link being built, with what the findings need to know of it.
struct Built<'a> {
    from: &'a ClusterSnapshot,
    to: &'a ClusterSnapshot,
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
    let mut snaps: Vec<&ClusterSnapshot> = snapshots.iter().collect();
    snaps.sort_by(|a, b| a.name.cmp(&b.name));
    snaps.dedup_by(|b, a| a.name == b.name);
    let by_name: HashMap<&str, &ClusterSnapshot> =
        snaps.iter().map(|s| (s.name.as_str(), *s)).collect();
    let mut by_network: HashMap<&str, Vec<&ClusterSnapshot>> = HashMap::new();
    for s in &snaps {
        if let Some(n) = &s.network {
            by_network.entry(n.as_str()).or_default().push(*s);
        }
    }
    let present: Vec<&ClusterName> = snaps.iter().map(|s| &s.name).collect();
    let mut findings = Vec::new();

    // The peer each gateway is for: its cluster label; without one (older or hand-written gateways) the
    // network label, which names the cluster or, failing that, the one cluster of that network (§2.1).
    let mut built: BTreeMap<(&ClusterName, &ClusterName), Built> = BTreeMap::new();
    for from in snaps.iter().copied() {
        let mut gateways: Vec<&PeerGatewayState> = from.peers.iter().collect();
        gateways.sort_by(|a, b| a.name.cmp(&b.name));
        for gw in gateways {
            let target = match (&gw.cluster_label, &gw.network_label) {
                (Some(c), _) => by_name.get(c.as_str()).copied().ok_or(c.as_str()),
                (None, Some(n)) => by_name
                    .get(n.as_str())
                    .copied()
                    .or_else(|| match by_network.get(n.as_str()).map(Vec::as_slice) {
                        Some([only]) => Some(*only),
                        _ => None,
                    })
                    .ok_or(n.as_str()),
                (None, None) => Err(""),
            };
            match target {
                // istiod ignores a peer gateway for its own cluster (automatic peering makes one, §7.2).
                Ok(to) if to.name == from.name => {}
                Ok(to) => match built.get_mut(&(&from.name, &to.name)) {
                    Some(b) => b.extra.push(&gw.name),
                    None => {
                        built.insert(
                            (&from.name, &to.name),
                            Built {
                                from,
                                to,
                                gateway: gw,
                                extra: vec![],
                            },
                        );
                    }
                },
                Err(peer) => findings.push(unknown_peer(from, gw, peer)),
            }
        }
    }

    let linked: BTreeSet<(&ClusterName, &ClusterName)> = built.keys().copied().collect();
    let mut links = Vec::with_capacity(built.len());
    let mut reachable_from: HashMap<&str, Vec<ClusterName>> = HashMap::new();
    let mut stale: BTreeMap<&ClusterName, Vec<(&ClusterName, &str, bool)>> = BTreeMap::new();
    let mut wrong_trust: BTreeMap<&ClusterName, Vec<(&ClusterName, Option<&str>)>> =
        BTreeMap::new();
    let mut failing: BTreeMap<&ClusterName, Vec<(&ClusterName, String)>> = BTreeMap::new();
    let mut root_pairs: BTreeSet<(&ClusterName, &ClusterName)> = BTreeSet::new();
    let mut skew_pairs: BTreeSet<(&ClusterName, &ClusterName)> = BTreeSet::new();
    let mut one_way: BTreeMap<&ClusterName, Vec<&ClusterName>> = BTreeMap::new();

    for b in built.values() {
        let (a, z, gw) = (b.from, b.to, b.gateway);
        let mut reasons = Reasons::default();
        let (state, connected, why) = peering_state(&gw.conditions);
        if let Some(why) = &why {
            reasons.add(state, why.clone());
        }
        let expected = z
            .eastwest
            .as_ref()
            .map(EastWestState::advertised)
            .unwrap_or_default();
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
        if let (Some(ma), Some(mz)) = (a.minor(), z.minor())
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
        if !linked.contains(&(&z.name, &a.name)) {
            let expected_both = expect.expects(&z.name, &a.name);
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
            reachable_from
                .entry(z.name.as_str())
                .or_default()
                .push(a.name.clone());
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

    for s in &snaps {
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
    root_findings(&snaps, &root_pairs, &mut findings);
    for (to, from) in wrong_trust {
        let actual = by_name[to.as_str()]
            .trust_domain
            .as_deref()
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
        let now = by_name[to.as_str()]
            .eastwest
            .as_ref()
            .and_then(|e| e.advertised().first().map(|a| a.to_string()))
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
    mesh_findings(&present, expect, &linked, &one_way, &mut findings);
    skew_findings(&snaps, &skew_pairs, &mut findings);
    findings
        .sort_by(|a, b| (a.kind, &a.clusters, &a.message).cmp(&(b.kind, &b.clusters, &b.message)));

    let clusters = snaps
        .iter()
        .map(|s| {
            let mut from = reachable_from.remove(s.name.as_str()).unwrap_or_default();
            from.sort();
            cluster_node(s, from)
        })
        .collect();
    // `built` is keyed by (from, to), so the links are already in canonical order.
    Graph {
        clusters,
        links,
        findings,
    }
}
