//! Links between clusters and the findings about them: one-way, stale, other roots and trust domains, skew,
//! missing links, unreachable clusters, peering conditions, and how peer gateways resolve.

use super::*;

#[test]
fn a_registered_cluster_without_any_of_the_mesh_is_unknown_not_failing() {
    let snaps = vec![ClusterSnapshot::new(
        ClusterName::new("fresh").expect("name"),
    )];
    let g = compute(&snaps, &Expectation::default());
    let c = &g.clusters[0];
    assert_eq!(c.health, Health::Unknown);
    assert_eq!(c.reasons.len(), 1);
    assert!(
        c.reasons[0].starts_with("not in a mesh yet"),
        "{:?}",
        c.reasons
    );
    assert!(g.findings.is_empty(), "{:?}", g.findings);
}

#[test]
fn a_healthy_full_mesh_has_healthy_nodes_and_links_and_no_findings() {
    let snaps = full_mesh(3);
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(g.findings, []);
    assert_eq!(
        g.links.iter().map(LinkEdge::id).collect::<Vec<_>>(),
        ["c1->c2", "c1->c3", "c2->c1", "c2->c3", "c3->c1", "c3->c2"]
    );
    for l in &g.links {
        assert_eq!(l.health, Health::Healthy, "{l:?}");
        assert_eq!(l.reasons, Vec::<String>::new());
        assert_eq!(l.address, l.expected_address);
        assert_eq!(l.conditions.len(), 5);
    }
    let c2 = cluster(&g, "c2");
    assert_eq!(c2.health, Health::Healthy, "{:?}", c2.reasons);
    assert!(c2.reachable);
    assert_eq!(c2.revision.as_deref(), Some("gloo"));
    assert_eq!(c2.version.as_deref(), Some("1.28.1-patch0"));
    assert_eq!(c2.network.as_deref(), Some("c2"));
    assert_eq!(c2.region.as_deref(), Some("eu"));
    let ew = c2.eastwest.as_ref().expect("east-west");
    assert_eq!(
        (ew.address.as_deref(), ew.kind, ew.programmed),
        (Some("10.0.0.3"), EastWestKind::LoadBalancer, true)
    );
    assert_eq!(ew.detail, "programmed, LoadBalancer at 10.0.0.3");
    assert_eq!(
        c2.control_plane.detail,
        "ServiceMeshController ready; istiod: 1 of 1 pods ready"
    );
    assert_eq!(
        c2.ztunnel.detail,
        "ztunnel: 2 of 2 pods ready; istio-cni-node: 2 of 2 pods ready"
    );
    // Drill-down: only the meshed namespace; the exported service and where it is reachable from.
    assert_eq!(c2.namespaces.len(), 1);
    let ns = &c2.namespaces[0];
    assert_eq!((ns.name.as_str(), ns.meshed), ("bookinfo", true));
    let svcs: Vec<(&str, bool, Option<&str>)> = ns
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.exported, s.hostname.as_deref()))
        .collect();
    assert_eq!(
        svcs,
        [
            (
                "productpage",
                true,
                Some("productpage.bookinfo.mesh.internal")
            ),
            ("reviews", false, None)
        ]
    );
    assert_eq!(c2.exports_reachable_from, [name("c1"), name("c3")]);
    assert_eq!(c2.reachable_from(&ns.services[0]), [name("c1"), name("c3")]);
    assert!(c2.reachable_from(&ns.services[1]).is_empty());
}

#[test]
fn the_same_snapshots_in_any_order_give_the_same_graph() {
    let snaps = full_mesh(4);
    let mut shuffled = snaps.clone();
    shuffled.reverse();
    for s in &mut shuffled {
        s.peers.reverse();
    }
    let expect = Expectation::full_mesh_of(&snaps);
    assert_eq!(compute(&snaps, &expect), compute(&shuffled, &expect));
}

#[test]
fn a_one_way_link_is_a_finding_in_a_full_mesh_and_a_note_otherwise() {
    let mut snaps: Vec<ClusterSnapshot> = (1..=2).map(healthy).collect();
    link(&mut snaps, 0, 1);
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::OneWay]);
    let f = only(&g, FindingKind::OneWay);
    assert_eq!(clusters(f), ["c1", "c2"]);
    assert_eq!(
        f.message,
        "c1 links to c2, but c2 holds no peer gateway for c1, so their workloads cannot reach c1's services. \
         Link c2 → c1 (or link each pair both ways)."
    );
    let l = edge(&g, "c1", "c2");
    assert_eq!(l.health, Health::Degraded);
    assert_eq!(
        l.reasons,
        ["one-way: c2 holds no peer gateway for c1, so c2's workloads cannot reach c1's services"]
    );
    assert!(g.link(&name("c2"), &name("c1")).is_none());
    // c1 reaches c2's exported services; c2 does not reach c1's.
    assert_eq!(cluster(&g, "c2").exports_reachable_from, [name("c1")]);
    assert_eq!(cluster(&g, "c1").exports_reachable_from, []);

    // Linking one way on purpose (`--from c1 --to c2`): a note on the edge, not a finding.
    let g = compute(&snaps, &Expectation::default());
    assert_eq!(g.findings, []);
    let l = edge(&g, "c1", "c2");
    assert_eq!(l.health, Health::Healthy);
    assert_eq!(l.reasons.len(), 1);
    assert!(l.reasons[0].starts_with("one-way: c2 holds no peer gateway for c1"));
}

#[test]
fn a_peer_gateway_dialing_an_old_address_is_stale_and_names_the_new_one() {
    let mut snaps = full_mesh(3);
    snaps[1].eastwest.as_mut().expect("ew").addresses = vec!["192.168.9.9".into()];
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::StaleAddress]);
    let f = only(&g, FindingKind::StaleAddress);
    assert_eq!(clusters(f), ["c2", "c1", "c3"]);
    assert_eq!(
        f.severity,
        Health::Degraded,
        "still connected: not failing yet"
    );
    assert_eq!(
        f.message,
        "c2's east-west gateway is now at 192.168.9.9, but peer gateways for it use an old address (c1 and c3 \
         dial 10.0.0.3). Re-link c1 and c3 → c2 so they carry the current address (with automatic peering, check \
         that the management plane redistributed c2's peer gateway)."
    );
    let l = edge(&g, "c1", "c2");
    assert_eq!(l.health, Health::Degraded);
    assert_eq!(
        (l.address.as_deref(), l.expected_address.as_deref()),
        (Some("10.0.0.3"), Some("192.168.9.9"))
    );
    assert_eq!(
        l.reasons,
        ["stale address: dials 10.0.0.3, but c2's east-west address is now 192.168.9.9"]
    );
    assert_eq!(edge(&g, "c2", "c1").health, Health::Healthy);

    // An address override is what peers must dial (§1.3): a gateway dialing it is not stale.
    let mut snaps = full_mesh(2);
    let ew = snaps[1].eastwest.as_mut().expect("ew");
    ew.address_override = Some("10.0.0.3".into());
    ew.addresses = vec!["172.18.0.5".into()];
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(g.findings, []);
}

#[test]
fn a_stale_link_that_lost_its_connection_fails() {
    let mut snaps = full_mesh(2);
    snaps[1].eastwest.as_mut().expect("ew").addresses = vec!["192.168.9.9".into()];
    peer(&mut snaps, 0, "c2").conditions = vec![cond(
        "gloo.solo.io/PeerConnected",
        "False",
        "Pending",
        "not connected to peer",
    )]
    .into();
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    // The stale address explains the failure: one finding, not two.
    assert_eq!(kinds(&g), [FindingKind::StaleAddress]);
    assert_eq!(g.findings[0].severity, Health::Failing);
    let l = edge(&g, "c1", "c2");
    assert_eq!(l.health, Health::Failing);
    assert_eq!(
        l.reasons,
        [
            "PeerConnected is False (Pending): not connected to peer",
            "stale address: dials 10.0.0.3, but c2's east-west address is now 192.168.9.9",
        ]
    );
    assert_eq!(cluster(&g, "c2").exports_reachable_from, []);
}

#[test]
fn a_cluster_with_another_root_fails_its_links_and_is_told_to_reissue_from_the_shared_root() {
    let mut snaps = full_mesh(3);
    snaps[2].root_fingerprint = Some(OTHER_ROOT.into());
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::RootMismatch]);
    let f = only(&g, FindingKind::RootMismatch);
    assert_eq!(clusters(f), ["c3", "c1", "c2"]);
    assert_eq!(f.severity, Health::Failing);
    assert_eq!(
        f.message,
        "c3 (root bbbbbbbbbbbbbbbb…) does not share the root of trust of the clusters it is linked with, c1 and c2 \
         (root aaaaaaaaaaaaaaaa…), so their workloads cannot verify each other. Re-issue c3's intermediate CA (the \
         cacerts Secret in istio-system) from the shared root aaaaaaaaaaaaaaaa…, then restart istiod on c3."
    );
    for (from, to) in [("c1", "c3"), ("c3", "c1"), ("c2", "c3"), ("c3", "c2")] {
        let l = edge(&g, from, to);
        assert_eq!(l.health, Health::Failing, "{from}->{to}");
        assert!(
            l.reasons[0].starts_with("root mismatch: "),
            "{:?}",
            l.reasons
        );
    }
    assert_eq!(edge(&g, "c1", "c2").health, Health::Healthy);
    // A failing link does not carry services.
    assert_eq!(cluster(&g, "c3").exports_reachable_from, []);
    assert_eq!(cluster(&g, "c1").exports_reachable_from, [name("c2")]);
}

#[test]
fn two_clusters_with_two_roots_are_told_to_choose_one() {
    let mut snaps = full_mesh(2);
    snaps[1].root_fingerprint = Some(OTHER_ROOT.into());
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    let f = only(&g, FindingKind::RootMismatch);
    assert_eq!(clusters(f), ["c1", "c2"]);
    assert_eq!(
        f.message,
        "Linked clusters hold different roots of trust, c1 (root aaaaaaaaaaaaaaaa…), c2 (root bbbbbbbbbbbbbbbb…), and \
         none is held by most clusters, so their workloads cannot verify each other. Choose one root, re-issue \
         every other cluster's intermediate CA (the cacerts Secret in istio-system) from it, then restart istiod \
         there."
    );
}

#[test]
fn a_peer_gateway_recording_another_trust_domain_fails_the_link() {
    let mut snaps = full_mesh(2);
    peer(&mut snaps, 0, "c2").trust_domain = Some("cluster.local".into());
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::TrustDomainMismatch]);
    let f = &g.findings[0];
    assert_eq!(clusters(f), ["c2", "c1"]);
    assert_eq!(
        f.message,
        "The peer gateways for c2 record the wrong trust domain (c1 \"cluster.local\"), but c2's trust domain is \
         \"c2\": ztunnel then rejects c2's workloads (\"peer did not present the expected SAN\"). Re-link c1 → c2, \
         which rebuilds the gateways from c2's mesh config."
    );
    let l = edge(&g, "c1", "c2");
    assert_eq!(l.health, Health::Failing);
    assert_eq!(
        l.reasons,
        [
            "trust domain mismatch: the gateway records \"cluster.local\", but c2's trust domain is \"c2\""
        ]
    );
    assert_eq!(edge(&g, "c2", "c1").health, Health::Healthy);
}

#[test]
fn linked_clusters_on_different_minor_versions_are_skewed_and_the_rule_is_said() {
    let mut snaps = full_mesh(3);
    snaps[2].smc.as_mut().expect("smc").version = Some("1.27.3".into());
    // A different patch of the same minor is no skew.
    snaps[1].smc.as_mut().expect("smc").version = Some("1.28.2".into());
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::VersionSkew]);
    let f = &g.findings[0];
    assert_eq!(clusters(f), ["c3", "c1", "c2"]);
    assert_eq!(f.severity, Health::Degraded);
    assert_eq!(
        f.message,
        "c3 runs Istio 1.27.3 but is linked with clusters on another minor version (c1 and c2 run 1.28). The rule \
         is the same Istio minor version on every cluster of the mesh: upgrade c3 to 1.28 (the \
         ServiceMeshController's version)."
    );
    let l = edge(&g, "c3", "c1");
    assert_eq!(l.health, Health::Degraded);
    assert_eq!(
        l.reasons,
        [
            "version skew: c3 runs 1.27.3, c1 runs 1.28.1-patch0; keep the same Istio minor version on every cluster"
        ]
    );
    assert_eq!(edge(&g, "c1", "c2").health, Health::Healthy);
    // Skew degrades, it does not cut: services stay reachable.
    assert_eq!(
        cluster(&g, "c3").exports_reachable_from,
        [name("c1"), name("c2")]
    );
}

#[test]
fn a_pair_linked_in_neither_direction_is_a_missing_link() {
    let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
    for (a, b) in [(0, 1), (1, 0), (1, 2), (2, 1)] {
        link(&mut snaps, a, b);
    }
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::MissingLink]);
    let f = &g.findings[0];
    assert_eq!(clusters(f), ["c1", "c3"]);
    assert_eq!(
        f.message,
        "c1 and c3 are expected in the full mesh but are not linked in either direction, so neither reaches the \
         other's services. Link them both ways (Setup → Link c1 ⇄ c3)."
    );
    // Not expected in a full mesh: no finding.
    let g = compute(&snaps, &Expectation::default());
    assert_eq!(g.findings, []);
}

#[test]
fn links_left_out_on_purpose_at_setup_are_not_findings_but_chosen_ones_missing_are() {
    // Chosen at setup: c1 ⇄ c2 both ways, c3 → c1 one way; nothing between c2 and c3.
    let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
    for (a, b) in [(0, 1), (1, 0), (2, 0)] {
        link(&mut snaps, a, b);
    }
    let names3: Vec<ClusterName> = snaps.iter().map(|s| s.name.clone()).collect();
    let meant = [("c1", "c2"), ("c2", "c1"), ("c3", "c1")];
    let mut expect = Expectation::full_mesh_of(&snaps);
    expect.choose(&names3, |a, b| meant.contains(&(a.as_str(), b.as_str())));
    let g = compute(&snaps, &expect);
    assert_eq!(g.findings, []);
    // The one-way link is healthy: its other direction was never meant.
    assert_eq!(edge(&g, "c3", "c1").health, Health::Healthy);
    // Under the full-mesh rule alone the same state is a one-way link and a missing pair.
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::MissingLink, FindingKind::OneWay]);

    // The chosen one-way link deleted: reported, in the words of the choice.
    snaps[2].peers.clear();
    let g = compute(&snaps, &expect);
    assert_eq!(kinds(&g), [FindingKind::NotMeshed]);
    assert_eq!(clusters(&g.findings[0]), ["c3"]);
    assert!(
        g.findings[0].message.starts_with(
            "c3 is meant to be linked with c1 (as chosen at setup) but is linked with none of them."
        ),
        "{}",
        g.findings[0].message
    );
    // A fourth cluster set up later and never chosen with the others falls back to the full-mesh rule.
    link(&mut snaps, 2, 0);
    snaps.push(healthy(4));
    expect.full_mesh.insert(name("c4"));
    link(&mut snaps, 3, 0);
    link(&mut snaps, 0, 3);
    let g = compute(&snaps, &expect);
    let missing: Vec<Vec<&str>> = g
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::MissingLink)
        .map(clusters)
        .collect();
    assert_eq!(missing, [["c2", "c4"], ["c3", "c4"]]);
}

#[test]
fn a_chosen_pair_linked_in_neither_direction_says_it_was_chosen() {
    let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
    for (a, b) in [(0, 1), (1, 0), (1, 2), (2, 1)] {
        link(&mut snaps, a, b);
    }
    let all: Vec<ClusterName> = snaps.iter().map(|s| s.name.clone()).collect();
    let mut expect = Expectation::default();
    // c1 → c3 one way was chosen, and is missing.
    expect.choose(&all, |a, b| a.as_str() != "c3" || b.as_str() != "c1");
    let g = compute(&snaps, &expect);
    assert_eq!(kinds(&g), [FindingKind::MissingLink]);
    assert_eq!(
        g.findings[0].message,
        "c1 is meant to hold a peer gateway for c3 (a one-way link chosen at setup) but holds none, so c1's \
         workloads cannot reach c3's services. Link c1 → c3 (Setup → Link)."
    );
}

#[test]
fn a_cluster_linked_with_none_of_the_mesh_is_one_finding_not_one_per_pair() {
    let mut snaps = full_mesh(3);
    snaps.push(healthy(4));
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::NotMeshed]);
    let f = &g.findings[0];
    assert_eq!(clusters(f), ["c4"]);
    assert!(
        f.message
            .starts_with("c4 is expected in the full mesh but is linked with none of the other 3 clusters. Link it both ways"),
        "{}",
        f.message
    );
    // Nothing linked at all: one finding for the whole mesh.
    let snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::NotMeshed]);
    assert_eq!(clusters(&g.findings[0]), ["c1", "c2", "c3"]);
    assert!(g.findings[0].message.starts_with(
        "None of the 3 clusters expected in the full mesh (c1, c2 and c3) are linked."
    ));
}

#[test]
fn an_unreachable_cluster_is_unknown_with_its_error_and_its_links_keep_their_last_state() {
    let mut snaps = full_mesh(2);
    snaps[1].unreachable = Some("connection refused".into());
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::Unreachable]);
    let f = &g.findings[0];
    assert_eq!(clusters(f), ["c2"]);
    assert_eq!(f.severity, Health::Unknown);
    assert_eq!(
        f.message,
        "c2 cannot be reached (connection refused): it is shown as last seen, and its links may have changed \
         since. Check its address and credentials in Meshdeck (Clusters → Re-test)."
    );
    let c2 = cluster(&g, "c2");
    assert!(!c2.reachable);
    assert_eq!(c2.health, Health::Unknown);
    assert_eq!(
        c2.reasons,
        ["unreachable: connection refused; showing the state last seen"]
    );
    // Its parts are as last seen.
    assert_eq!(c2.operator.state, Health::Healthy);
    for (from, to, why) in [
        (
            "c1",
            "c2",
            "c2 is unreachable: its east-west address and root as last seen",
        ),
        (
            "c2",
            "c1",
            "c2 is unreachable: its peer gateway as last seen",
        ),
    ] {
        let l = edge(&g, from, to);
        assert_eq!(l.health, Health::Healthy);
        assert_eq!(l.reasons, [why]);
    }
}

#[test]
fn absent_peering_conditions_are_pending_not_connected() {
    let mut snaps = full_mesh(2);
    // Only what the Istio gateway controller writes: Programmed=True says nothing about peering (§2.3).
    peer(&mut snaps, 0, "c2").conditions = connected()[..2].into();
    // One condition still on its way.
    let gw = peer(&mut snaps, 1, "c1");
    gw.conditions = gw
        .conditions
        .iter()
        .filter(|c| c.type_ != "gloo.solo.io/PeerDataPlaneProgrammed")
        .cloned()
        .collect();
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(g.findings, []);
    let l = edge(&g, "c1", "c2");
    assert_eq!(l.health, Health::Degraded);
    assert_eq!(
        l.reasons,
        ["pending: no peering conditions reported yet (not connected)"]
    );
    let l = edge(&g, "c2", "c1");
    assert_eq!(l.health, Health::Degraded);
    assert_eq!(l.reasons, ["pending: waiting for PeerDataPlaneProgrammed"]);
    // Pending links do not carry services yet.
    assert_eq!(cluster(&g, "c1").exports_reachable_from, []);
    assert_eq!(cluster(&g, "c2").exports_reachable_from, []);
}

#[test]
fn a_false_peering_condition_fails_the_link_and_is_listed_with_its_reason() {
    let mut snaps = full_mesh(3);
    for from in [0, 2] {
        peer(&mut snaps, from, "c2").conditions = vec![
            cond(
                "gloo.solo.io/PeerConnected",
                "False",
                "Pending",
                "not connected to peer",
            ),
            cond(
                "gloo.solo.io/PeeringSucceeded",
                "Unknown",
                "Pending",
                "network not yet synced",
            ),
        ]
        .into();
    }
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    assert_eq!(kinds(&g), [FindingKind::LinkFailing]);
    let f = &g.findings[0];
    assert_eq!(clusters(f), ["c2", "c1", "c3"]);
    assert_eq!(
        f.message,
        "Peering with c2 fails from c1 and c3 (c1: PeerConnected is False (Pending): not connected to peer; c3: \
         PeerConnected is False (Pending): not connected to peer). Check that c2's east-west gateway is reachable \
         from c1 and c3, that c2's istiod runs, and that the licenses allow multicluster; then look at istiod's log \
         in c1 and c3."
    );
    assert_eq!(edge(&g, "c1", "c2").health, Health::Failing);

    // An invalid gateway is rebuilt by linking again.
    peer(&mut snaps, 0, "c2").conditions = vec![cond(
        "gloo.solo.io/PeerConnected",
        "False",
        "Invalid",
        "no network started, encountered error validating gateway: no spec.addresses found in gateway",
    )].into();
    let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
    let m = &only(&g, FindingKind::LinkFailing).message;
    assert!(
        m.contains(
            "Re-link c1 → c2: an invalid peer gateway is rebuilt from c2's live state. Check that c2's east-west \
             gateway is reachable from c3,"
        ),
        "{m}"
    );
}

#[test]
fn peer_gateways_resolve_by_cluster_then_network_and_unknown_or_local_ones_are_handled() {
    let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
    snaps[1].network = Some("net-b".into());
    // Older gateway, network label only: resolved through the network of c2.
    let mut old = PeerGatewayState {
        name: "istio-remote-peer-net-b".into(),
        cluster_label: None,
        network_label: Some("net-b".into()),
        trust_domain: Some("c2".into()),
        address: Some(address(2)),
        conditions: connected().into(),
    };
    snaps[0].peers.push(old.clone());
    // Automatic peering's local copy: ignored, as istiod does.
    old.name = "istio-remote-peer-c1".into();
    old.cluster_label = Some("c1".into());
    snaps[0].peers.push(old.clone());
    // A peer Meshdeck does not manage.
    old.name = "istio-remote-peer-c9".into();
    old.cluster_label = Some("c9".into());
    snaps[0].peers.push(old);
    let g = compute(&snaps, &Expectation::default());
    assert_eq!(
        g.links.iter().map(LinkEdge::id).collect::<Vec<_>>(),
        ["c1->c2"]
    );
    assert_eq!(kinds(&g), [FindingKind::UnknownPeer]);
    assert_eq!(
        g.findings[0].message,
        "c1 holds peer gateway istio-remote-peer-c9 for cluster \"c9\", which Meshdeck does not manage: register c9 \
         in Meshdeck to see this link, or, if that cluster is gone, delete the gateway (gateway \
         istio-remote-peer-c9 in istio-eastwest on c1)."
    );
}
