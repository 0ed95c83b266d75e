//! One cluster's own parts: drift, what is missing or broken, exported services, gateways; and the diff of two
//! graphs.

use super::*;

#[test]
fn drift_shows_once_compared_and_degrades_the_cluster_until_re_applied() {
    let g = compute(&[healthy(1)], &Expectation::default());
    let c = cluster(&g, "c1");
    assert_eq!((c.health, c.drift.as_ref()), (Health::Healthy, None));
    let mut s = healthy(1);
    s.drift = Some(vec!["ServiceMeshController managed-istio".into()]);
    let g = compute(&[s.clone()], &Expectation::default());
    let c = cluster(&g, "c1");
    let d = c.drift.as_ref().expect("drift");
    assert_eq!(d.state, Health::Degraded);
    assert!(
        d.detail.starts_with("1 object differs from"),
        "{}",
        d.detail
    );
    assert_eq!(c.health, Health::Degraded);
    assert!(
        c.reasons.iter().any(|r| r.starts_with("drift: ")),
        "{:?}",
        c.reasons
    );
    s.drift = Some(vec![]);
    let g = compute(&[s], &Expectation::default());
    let c = cluster(&g, "c1");
    assert_eq!(c.drift.as_ref().map(|d| d.state), Some(Health::Healthy));
    assert_eq!(c.health, Health::Healthy);
}

#[test]
fn cluster_parts_say_what_is_missing_or_broken_worst_first() {
    let mut s = healthy(1);
    s.operator = None;
    s.smc.as_mut().expect("smc").conditions = vec![cond(
        "ControlPlaneDeployed",
        "False",
        "DeploymentFailed",
        "istiod did not become ready",
    )];
    s.ztunnel = Some(WorkloadState {
        desired: 3,
        ready: 2,
    });
    s.eastwest.as_mut().expect("ew").programmed = Some(cond(
        "Programmed",
        "False",
        "AddressNotAssigned",
        "address pending for hostname \"istio-eastwest.istio-eastwest.svc.cluster.local\"",
    ));
    s.eastwest.as_mut().expect("ew").addresses.clear();
    s.license = LicenseState::Invalid("license expired".into());
    s.root_fingerprint = None;
    let g = compute(&[s], &Expectation::default());
    let c = cluster(&g, "c1");
    assert_eq!(c.health, Health::Failing);
    assert_eq!(c.operator.state, Health::Failing);
    assert_eq!(
        c.control_plane.detail,
        "ServiceMeshController ControlPlaneDeployed is False (DeploymentFailed): istiod did not become ready; istiod: \
         1 of 1 pods ready"
    );
    assert_eq!(c.ztunnel.state, Health::Degraded);
    assert_eq!(c.license.state, Health::Failing);
    let ew = c.eastwest.as_ref().expect("ew");
    assert_eq!(
        (ew.state, ew.programmed, ew.address.as_deref()),
        (Health::Failing, false, None)
    );
    assert!(
        ew.detail
            .contains("set an address override (istio.io/expose-istiod-address) or use NodePort")
    );
    let heads: Vec<&str> = c
        .reasons
        .iter()
        .map(|r| r.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        heads,
        [
            "operator",
            "control plane",
            "license",
            "east-west gateway",
            "root of trust",
            "ztunnel/CNI"
        ]
    );
}

#[test]
fn services_are_exported_by_their_own_label_or_their_namespace() {
    let l = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let svc = |n: &str, labels| ServiceState {
        name: n.into(),
        labels,
    };
    let ns = NamespaceState {
        name: "shop".into(),
        labels: l(&[
            ("istio.io/dataplane-mode", "ambient"),
            (SERVICE_SCOPE_LABEL, "global"),
        ]),
        services: vec![],
    };
    assert!(ns.is_meshed());
    assert!(ns.exports(&svc("cart", BTreeMap::new())));
    assert!(!ns.exports(&svc("admin", l(&[(SERVICE_SCOPE_LABEL, "cluster")]))));
    let plain = NamespaceState {
        labels: l(&[("istio.io/rev", "gloo")]),
        ..ns.clone()
    };
    assert!(plain.is_meshed());
    assert!(!plain.exports(&svc("cart", BTreeMap::new())));
    assert!(plain.exports(&svc("cart", l(&[(SERVICE_SCOPE_LABEL, "global-only")]))));
    assert!(
        !NamespaceState {
            labels: l(&[("istio-injection", "disabled")]),
            ..ns
        }
        .is_meshed()
    );
}

#[test]
fn gateways_are_read_from_their_objects() {
    let gw: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {
            "name": "istio-remote-peer-c2", "namespace": "istio-eastwest",
            "labels": {"topology.istio.io/network": "c2", "topology.istio.io/cluster": "c2"},
            "annotations": {"gateway.istio.io/trust-domain": "c2", "gateway.istio.io/service-account": "istio-eastwest"}
        },
        "spec": {"gatewayClassName": "istio-remote", "addresses": [{"type": "IPAddress", "value": "10.0.0.3"}]},
        "status": {"conditions": [{"type": "gloo.solo.io/PeerConnected", "status": "True", "reason": "Programmed", "message": ""}]}
    }))
    .expect("gateway");
    let p = PeerGatewayState::from_gateway(&gw).expect("peer");
    assert_eq!(p.name, "istio-remote-peer-c2");
    assert_eq!(
        (
            p.cluster_label.as_deref(),
            p.network_label.as_deref(),
            p.trust_domain.as_deref(),
            p.address.as_deref()
        ),
        (Some("c2"), Some("c2"), Some("c2"), Some("10.0.0.3"))
    );
    assert_eq!(
        *p.conditions,
        [cond("gloo.solo.io/PeerConnected", "True", "Programmed", "")]
    );
    assert_eq!(EastWestState::from_gateway(&gw), None);

    let ew: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {
            "name": "istio-eastwest", "namespace": "istio-eastwest",
            "labels": {"topology.istio.io/cluster": "c1"},
            "annotations": {"peering.solo.io/data-plane-service-type": "nodeport"}
        },
        "spec": {"gatewayClassName": "istio-eastwest"},
        "status": {
            "addresses": [{"type": "IPAddress", "value": "172.18.0.4"}],
            "conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed", "message": "Resource programmed"}]
        }
    }))
    .expect("gateway");
    let e = EastWestState::from_gateway(&ew).expect("east-west");
    assert_eq!(e.kind, EastWestKind::NodePort);
    assert_eq!(e.addresses, ["172.18.0.4"]);
    assert_eq!(e.address_override, None);
    assert_eq!(e.programmed.map(|c| c.status).as_deref(), Some("True"));
    assert_eq!(e.cluster_label.as_deref(), Some("c1"));
    assert!(PeerGatewayState::from_gateway(&ew).is_none());
}

#[test]
fn the_diff_of_two_computed_graphs_applied_to_the_first_gives_the_second() {
    let snaps = full_mesh(4);
    let expect = Expectation::full_mesh_of(&snaps);
    let old = compute(&snaps, &expect);
    assert!(diff(&old, &compute(&snaps, &expect)).is_empty());

    // One link starts failing, one cluster leaves, one arrives.
    let mut changed = snaps.clone();
    std::sync::Arc::make_mut(&mut peer(&mut changed, 0, "c2").conditions)[2] = cond(
        "gloo.solo.io/PeerConnected",
        "False",
        "Pending",
        "not connected to peer",
    );
    changed.retain(|s| s.name.as_str() != "c4");
    for s in &mut changed {
        s.peers.retain(|p| p.cluster_label.as_deref() != Some("c4"));
    }
    changed.push(healthy(5));
    let new = compute(&changed, &expect);
    let update = diff(&old, &new);
    assert_eq!(update.remove_clusters, [name("c4")]);
    assert_eq!(
        update
            .upsert_clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2", "c3", "c5"],
        "c1..c3 lose c4 from where their services are reachable; c2 also loses c1"
    );
    assert_eq!(
        update
            .upsert_links
            .iter()
            .map(LinkEdge::id)
            .collect::<Vec<_>>(),
        ["c1->c2"]
    );
    assert_eq!(update.remove_links.len(), 6);
    assert!(update.findings.is_some());
    let mut got = old.clone();
    apply(&mut got, update);
    assert_eq!(got, new);

    // A one-link change is a one-link update.
    let mut one = snaps.clone();
    let gw = peer(&mut one, 2, "c1");
    gw.conditions = gw.conditions[..4].into();
    let update = diff(&old, &compute(&one, &expect));
    assert_eq!(
        update
            .upsert_links
            .iter()
            .map(LinkEdge::id)
            .collect::<Vec<_>>(),
        ["c3->c1"]
    );
    assert_eq!(
        update
            .upsert_clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["c1"]
    );
    assert_eq!(
        (
            update.remove_clusters.len(),
            update.remove_links.len(),
            update.findings
        ),
        (0, 0, None)
    );
}
