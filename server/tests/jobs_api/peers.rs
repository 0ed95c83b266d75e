//! Peer gateways from a cluster the console has no credentials for: checked, then applied.

use super::*;

#[tokio::test]
async fn peer_gateways_from_a_cluster_without_credentials_are_checked_then_applied() {
    let console = console("jobs-api-import", None, &[]).await;
    let viewer_pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;

    // What the owner of cluster zz-foreign sent: their peer gateway, as Meshdeck's export makes it.
    let theirs = mesh::objects::peer_gateway(
        &mesh::objects::PeerInfo {
            cluster: "zz-foreign".into(),
            network: "zz-net".into(),
            address_type: "IPAddress",
            address: "192.0.2.77".into(),
            trust_domain: "zz-foreign".into(),
            service_account: "istio-eastwest".into(),
            locality: Default::default(),
        },
        mesh::objects::DataPlane::LoadBalancer,
    );
    let yaml = serde_yaml::to_string(&theirs).expect("yaml");
    // c3 as a set-up cluster holds the Gateway API CRDs (a fresh test world's c3 has none yet).
    testworld::apply_gateway_api_crds("c3").await;
    // Left by an interrupted earlier run, if any.
    testworld::kubectl(
        "c3",
        &[
            "-n",
            "istio-eastwest",
            "delete",
            "--ignore-not-found",
            "gateways.gateway.networking.k8s.io",
            "istio-remote-peer-zz-foreign",
        ],
        None,
    )
    .await;

    let mut viewer = Client::new(app);
    viewer.sign_in("vera", &viewer_pw).await;
    let a = viewer
        .call_json("import_peers", json!({"into": ["c3"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);

    // A bad second document refuses the whole import, naming it; nothing is applied.
    let bad = format!("{yaml}---\n{}", yaml.replace("192.0.2.77", "''"));
    let a = admin
        .call_json("import_peers", json!({"into": ["c3"], "yaml": bad}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("document 2"), "{}", a.body);
    let gw = testworld::get_json(
        "c3",
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-remote-peer-zz-foreign",
    )
    .await;
    assert!(gw.is_none(), "nothing applied: {gw:?}");
    let a = admin
        .call_json("import_peers", json!({"into": ["nowhere"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    let a = admin
        .call_json("import_peers", json!({"into": ["c3"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<app::model::ImportOutcome> = serde_json::from_str(&a.body).expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].error, None, "{outcomes:?}");
    assert_eq!(outcomes[0].applied, ["istio-remote-peer-zz-foreign"]);
    let gw = testworld::get_json(
        "c3",
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-remote-peer-zz-foreign",
    )
    .await
    .expect("applied in c3");
    assert_eq!(gw["spec"]["addresses"][0]["value"], "192.0.2.77");
    assert!(
        gw["metadata"]["managedFields"].as_array().is_some_and(|m| m
            .iter()
            .any(|f| f["manager"] == "meshdeck" && f["operation"] == "Apply")),
        "server-side apply by meshdeck: {}",
        gw["metadata"]["managedFields"]
    );
    // Again: the object is not changed (same generation; the simulated istiod keeps writing its status).
    let before = gw["metadata"]["generation"].clone();
    let a = admin
        .call_json("import_peers", json!({"into": ["c3"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let gw = testworld::get_json(
        "c3",
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-remote-peer-zz-foreign",
    )
    .await
    .expect("still there");
    assert_eq!(
        gw["metadata"]["generation"], before,
        "re-import changes nothing"
    );
    testworld::kubectl_ok(
        "c3",
        &[
            "-n",
            "istio-eastwest",
            "delete",
            "gateways.gateway.networking.k8s.io",
            "istio-remote-peer-zz-foreign",
        ],
        None,
    )
    .await;

    // Export: refused for an unknown cluster, with the reason.
    let a = admin
        .call_json(
            "export_peers",
            json!({"clusters": ["nowhere"], "eastwest": "load-balancer"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(a.body.contains("cluster nowhere"), "{}", a.body);
}
