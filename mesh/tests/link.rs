//! The object builders and the live peer reading, end to end against the test world: two clusters set up with
//! Meshdeck's own objects (server-side applied with its field manager) are linked both ways, and the
//! simulator — which reads the objects as the vendor controllers would — reports every peering condition True.

use mesh::gateway_api;
use mesh::ids::{ClusterName, NetworkName};
use mesh::objects::{self, DataPlane, Locality, MeshSpec, PeerInfo};
use testworld::*;

async fn set_up(ctx: &'static str, root: &mesh::ca::RootCa) {
    let c = client(ctx).await;
    let name = ClusterName::new(ctx).expect("name");
    // The shared root of trust, before istiod exists (§6.1): Meshdeck's own CA code.
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}});
    mesh::apply::apply(&c, &ns, false).await.expect("namespace");
    let intermediate = root
        .intermediate(&name, mesh::ca::DEFAULT_DAYS)
        .expect("intermediate");
    mesh::apply::apply(&c, &intermediate.cacerts_secret("istio-system"), false)
        .await
        .expect("cacerts");
    install_operator(ctx, "test-license").await;
    gateway_api::apply(&c).await.expect("gateway api");
    let spec = MeshSpec {
        cluster: Some(name.clone()),
        network: Some(NetworkName::from(&name)),
        dataplane_mode: Some("Ambient".into()),
        install_namespace: Some("istio-system".into()),
        version: ISTIO_VERSION.into(),
        ..Default::default()
    };
    // A server-side dry run first: the CRD's schema accepts the object as built.
    mesh::apply::apply(&c, &objects::service_mesh_controller(&spec), true)
        .await
        .expect("dry run");
    mesh::apply::apply(&c, &objects::service_mesh_controller(&spec), false)
        .await
        .expect("smc");
    wait_smc_succeeded(ctx).await;
    kubectl_ok(ctx, &["create", "namespace", "istio-eastwest"], None).await;
    let gw = objects::eastwest_gateway(
        &name,
        &NetworkName::from(&name),
        DataPlane::LoadBalancer,
        None,
        &Locality::default(),
    );
    mesh::apply::apply(&c, &gw, false)
        .await
        .expect("east-west gateway");
    wait_gateway(ctx, "istio-eastwest", |g| {
        condition(g, "Programmed").is_some_and(|c| c["status"] == "True")
            && g["status"]["addresses"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    })
    .await;
}

#[tokio::test]
async fn clusters_built_and_linked_by_meshdeck_report_every_peering_condition_true() {
    reset_all(&["c1", "c2"]).await;
    let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");
    futures::future::join(set_up("c1", &root), set_up("c2", &root)).await;
    // istiod took the plugged root in both clusters (the simulator verifies the chain, as istiod does).
    for ctx in ["c1", "c2"] {
        assert_eq!(
            Some(root_fingerprint(ctx).await),
            mesh::ca::fingerprint(&root.cert_pem),
            "{ctx}"
        );
    }
    for (from, to) in [("c1", "c2"), ("c2", "c1")] {
        let peer = PeerInfo::read(&client(to).await).await.expect("peer info");
        assert_eq!(
            (
                peer.cluster.as_str(),
                peer.network.as_str(),
                peer.trust_domain.as_str()
            ),
            (to, to, to),
            "{peer:?}"
        );
        assert_eq!(
            (peer.address_type, peer.service_account.as_str()),
            ("IPAddress", "istio-eastwest")
        );
        let gw = objects::peer_gateway(&peer, DataPlane::LoadBalancer);
        mesh::apply::apply(&client(from).await, &gw, false)
            .await
            .expect("peer gateway");
    }
    for (from, to) in [("c1", "c2"), ("c2", "c1")] {
        wait_gateway(
            from,
            &format!("istio-remote-peer-{to}"),
            all_peer_conditions_true,
        )
        .await;
    }
    // Re-applying the same objects changes nothing.
    let c1 = client("c1").await;
    let peer = PeerInfo::read(&client("c2").await)
        .await
        .expect("peer info");
    let before = mesh::apply::apply(
        &c1,
        &objects::peer_gateway(&peer, DataPlane::LoadBalancer),
        false,
    )
    .await
    .expect("again");
    let after = mesh::apply::apply(
        &c1,
        &objects::peer_gateway(&peer, DataPlane::LoadBalancer),
        false,
    )
    .await
    .expect("again");
    assert_eq!(
        before.metadata.resource_version,
        after.metadata.resource_version
    );
}

#[tokio::test]
async fn reading_a_cluster_without_an_east_west_gateway_says_what_to_do() {
    // c3 is never given an e/w gateway by this binary's tests; reset it to be sure.
    reset("c3").await;
    let err = PeerInfo::read(&client("c3").await)
        .await
        .expect_err("no gateway");
    assert!(
        err.to_string()
            .contains("create the east-west gateway first"),
        "{err}"
    );
}
