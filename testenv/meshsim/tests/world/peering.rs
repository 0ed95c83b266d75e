//! East-west gateways and peering: load balancers and node ports, a shared root, a cluster without one, a
//! foreign trust domain, automatic peering, and a steady world left alone.

use super::*;

#[tokio::test]
async fn eastwest_gateways_are_programmed_with_load_balancer_or_nodeport_services() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    futures::future::join_all(["c1", "c2"].map(|ctx| async move {
        install(Install {
            context: ctx,
            root: None,
            license: "k",
            extensions: None,
            smc_extra: "",
        })
        .await;
        wait_smc_succeeded(ctx).await;
    }))
    .await;
    for (ctx, nodeport) in [("c1", false), ("c2", true)] {
        let gw = create_eastwest(ctx, nodeport).await;
        let addr = &gw["status"]["addresses"][0];
        assert_eq!(addr["type"], "IPAddress");
        let ip: std::net::Ipv4Addr = addr["value"].as_str().expect("value").parse().expect("ip");
        let o = ip.octets();
        assert!(
            matches!(
                [o[0], o[1], o[2]],
                [192, 0, 2] | [198, 51, 100] | [203, 0, 113]
            ),
            "{ip} is a documentation address"
        );
        let p = condition(&gw, "Programmed").expect("Programmed");
        assert_eq!(p["reason"], "Programmed");

        let c = client(ctx).await;
        let svc = Api::<Service>::namespaced(c.clone(), "istio-eastwest")
            .get("istio-eastwest")
            .await
            .expect("svc");
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        let ports: Vec<(String, i32)> = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name.unwrap_or_default(), p.port))
            .collect();
        assert_eq!(
            ports,
            vec![
                ("status-port".into(), 15021),
                ("tls-hbone".into(), 15008),
                ("tls-xds".into(), 15012)
            ]
        );
        let labels = svc.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("istio.io/expose-istiod").map(String::as_str),
            Some("15012")
        );
        assert_eq!(
            labels.get("topology.istio.io/cluster").map(String::as_str),
            Some(ctx)
        );
        let ann = svc.metadata.annotations.unwrap_or_default();
        assert_eq!(
            ann.contains_key("peering.solo.io/data-plane-service-type"),
            nodeport,
            "annotation propagates"
        );
        // The gateway's pod runs (§3 check 5 selects it by canonical name).
        let out = kubectl_ok(
            ctx,
            &[
                "get",
                "pods",
                "-A",
                "-l",
                "service.istio.io/canonical-name=istio-eastwest",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ],
            None,
        )
        .await;
        assert_eq!(out.trim(), "Running");
    }
}

#[tokio::test]
async fn linked_clusters_with_a_shared_root_report_every_peering_condition_true() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join_all(["c1", "c2"].map(|ctx| mesh_with_eastwest(ctx, Some(&root)))).await;
    assert_eq!(root_fingerprint("c1").await, root_fingerprint("c2").await);
    for (from, to) in [("c1", "c2"), ("c2", "c1")] {
        let y = link_yaml(to, false).await;
        kubectl_ok(
            from,
            &[
                "apply",
                "--server-side",
                "--field-manager=istioctl",
                "-f",
                "-",
            ],
            Some(&y),
        )
        .await;
    }
    for (from, to) in [("c1", "c2"), ("c2", "c1")] {
        let g = wait_gateway(
            from,
            &format!("istio-remote-peer-{to}"),
            all_peer_conditions_true,
        )
        .await;
        // The Istio controller's part (§2.3): Programmed only means "remote, not programmed here".
        let p = condition(&g, "Programmed").expect("Programmed");
        assert_eq!(
            p["message"],
            "This Gateway is remote; Istio will not program it"
        );
        assert_eq!(g["status"]["addresses"], g["spec"]["addresses"]);
        let dp = condition(&g, "gloo.solo.io/PeerDataPlaneProgrammed").expect("dp");
        assert!(
            dp["message"]
                .as_str()
                .expect("msg")
                .contains("LoadBalancer service type")
        );
    }
    // Invalid peer gateway (§2.3 ValidatePeerGateway): no network label.
    let bad = link_yaml("c2", false)
        .await
        .replace("istio-remote-peer-c2", "istio-remote-peer-bad")
        .replace("    topology.istio.io/network: c2\n", "");
    kubectl_ok("c1", &["apply", "--server-side", "-f", "-"], Some(&bad)).await;
    let g = wait_gateway("c1", "istio-remote-peer-bad", |g| {
        condition(g, "gloo.solo.io/PeerConnected").is_some()
    })
    .await;
    let pc = condition(&g, "gloo.solo.io/PeerConnected").expect("pc");
    assert_eq!(
        (pc["status"].as_str(), pc["reason"].as_str()),
        (Some("False"), Some("Invalid"))
    );
    assert!(
        pc["message"]
            .as_str()
            .expect("m")
            .starts_with("no network started, encountered error validating gateway")
    );
}

#[tokio::test]
async fn nodeport_peering_programs_the_data_plane_through_node_ports() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join_all(["c1", "c2"].map(|ctx| {
        let root = &root;
        async move {
            reset(ctx).await;
            install(Install {
                context: ctx,
                root: Some(root),
                license: "k",
                extensions: None,
                smc_extra: "",
            })
            .await;
            wait_smc_succeeded(ctx).await;
            create_eastwest(ctx, true).await;
        }
    }))
    .await;
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&link_yaml("c2", true).await),
    )
    .await;
    let g = wait_gateway("c1", "istio-remote-peer-c2", all_peer_conditions_true).await;
    let dp = condition(&g, "gloo.solo.io/PeerDataPlaneProgrammed").expect("dp");
    assert!(
        dp["message"]
            .as_str()
            .expect("msg")
            .contains("NodePort service type"),
        "{dp}"
    );
    // NodePort preference without the required cluster label is invalid (§2.3).
    let bad = link_yaml("c2", true)
        .await
        .replace("istio-remote-peer-c2", "istio-remote-peer-np")
        .replace("    topology.istio.io/cluster: c2\n", "");
    kubectl_ok("c1", &["apply", "--server-side", "-f", "-"], Some(&bad)).await;
    let g = wait_gateway("c1", "istio-remote-peer-np", |g| {
        condition(g, "gloo.solo.io/PeerConnected").is_some()
    })
    .await;
    assert_eq!(
        condition(&g, "gloo.solo.io/PeerConnected").expect("pc")["reason"],
        "Invalid"
    );
}

#[tokio::test]
async fn a_cluster_without_cacerts_gets_its_own_root_and_cannot_peer() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join(
        mesh_with_eastwest("c1", Some(&root)),
        mesh_with_eastwest("c3", None),
    )
    .await;
    assert_ne!(
        root_fingerprint("c1").await,
        root_fingerprint("c3").await,
        "c3 made a self-signed root"
    );
    let secret = kubectl(
        "c3",
        &["get", "secret", "-n", "istio-system", "istio-ca-secret"],
        None,
    )
    .await;
    assert!(secret.ok, "self-signed root kept in istio-ca-secret");
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&link_yaml("c3", false).await),
    )
    .await;
    let g = wait_gateway("c1", "istio-remote-peer-c3", |g| {
        condition(g, "gloo.solo.io/PeerConnected").is_some()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let g2 = current_gateway("c1", "istio-remote-peer-c3").await;
    for g in [&g, &g2] {
        let pc = condition(g, "gloo.solo.io/PeerConnected").expect("pc");
        assert_eq!(
            (
                pc["status"].as_str(),
                pc["reason"].as_str(),
                pc["message"].as_str()
            ),
            (
                Some("False"),
                Some("Pending"),
                Some("not connected to peer")
            )
        );
    }

    // Adding cacerts afterwards changes nothing until istiod restarts (§6.1) ...
    kubectl_ok("c3", &["apply", "-f", "-"], Some(&root.cacerts_yaml("c3"))).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_ne!(root_fingerprint("c1").await, root_fingerprint("c3").await);
    // ... and a restart picks it up, after which peering connects.
    kubectl_ok(
        "c3",
        &[
            "rollout",
            "restart",
            "-n",
            "istio-system",
            "deployment/istiod-gloo",
        ],
        None,
    )
    .await;
    wait_for(60, "c3 istiod restarted with the shared root", || async {
        if root_fingerprint("c3").await == root_fingerprint("c1").await {
            Ok(())
        } else {
            Err("root differs".into())
        }
    })
    .await;
    wait_gateway("c1", "istio-remote-peer-c3", all_peer_conditions_true).await;
}

#[tokio::test]
async fn a_trust_domain_that_is_not_the_peers_leaves_the_network_unsynced() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join_all(["c1", "c2"].map(|ctx| mesh_with_eastwest(ctx, Some(&root)))).await;
    // §9 P5: the field's classic mistake, `c2.local` instead of the SMC default `c2`.
    let y = link_yaml("c2", false).await.replace(
        "gateway.istio.io/trust-domain: c2",
        "gateway.istio.io/trust-domain: c2.local",
    );
    kubectl_ok("c1", &["apply", "--server-side", "-f", "-"], Some(&y)).await;
    let g = wait_gateway("c1", "istio-remote-peer-c2", |g| {
        condition(g, "gloo.solo.io/PeerConnected").is_some_and(|c| c["status"] == "True")
    })
    .await;
    let ps = condition(&g, "gloo.solo.io/PeeringSucceeded").expect("ps");
    assert_eq!(
        (ps["status"].as_str(), ps["reason"].as_str()),
        (Some("Unknown"), Some("Pending"))
    );
    // Fixing the annotation syncs it.
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&link_yaml("c2", false).await),
    )
    .await;
    wait_gateway("c1", "istio-remote-peer-c2", all_peer_conditions_true).await;
}

#[tokio::test]
async fn automatic_peering_distributes_remote_peers_through_the_management_plane() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    let ext = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gloo-extensions-config\n  namespace: gloo-mesh\ndata:\n  beta: |\n    serviceMeshController:\n      \
               multiClusterMode: Peering\n  values.istiod: |\n    env:\n      PEERING_AUTOMATIC_LOCAL_GATEWAY: \"true\"\n";
    reset_all(&["c1", "c2", "c3"]).await;
    futures::future::join_all(["c1", "c2", "c3"].map(|ctx| {
        install(Install {
            context: ctx,
            root: Some(&root),
            license: "k",
            extensions: Some(ext),
            smc_extra: "",
        })
    }))
    .await;
    // Management plane on c1 (ConfigDistribution on), agents on c2 and c3 relaying to it.
    install_management_plane("c1", &["c2", "c3"]).await;
    futures::future::join_all(["c1", "c2", "c3"].map(|ctx| async move {
        wait_smc_succeeded(ctx).await;
        create_eastwest(ctx, false).await;
    }))
    .await;
    // Every cluster ends up with a peer for each cluster; the ones for others connect.
    for ctx in ["c1", "c2", "c3"] {
        for peer in ["c1", "c2", "c3"] {
            let name = format!("istio-remote-peer-{peer}");
            if peer == ctx {
                let g = wait_gateway(ctx, &name, |g| {
                    g["spec"]["gatewayClassName"] == "istio-remote"
                })
                .await;
                assert_eq!(
                    g["metadata"]["ownerReferences"][0]["name"], "istio-eastwest",
                    "generated locally from the e/w gateway"
                );
            } else {
                let g = wait_gateway(ctx, &name, all_peer_conditions_true).await;
                assert_eq!(
                    g["metadata"]["labels"]["gloo.solo.io/distributed-from"],
                    peer
                );
                assert_eq!(
                    g["metadata"]["annotations"]["gateway.istio.io/trust-domain"],
                    peer
                );
            }
        }
    }
    // Deleting an e/w gateway removes its generated peer and, through the management plane, the copies.
    kubectl_ok(
        "c3",
        &[
            "delete",
            "gateway",
            "-n",
            "istio-eastwest",
            "istio-eastwest",
        ],
        None,
    )
    .await;
    for ctx in ["c1", "c2"] {
        wait_for(
            60,
            &format!("{ctx}: copy of c3's peer removed"),
            || async move {
                let out = kubectl(
                    ctx,
                    &[
                        "get",
                        "gateway",
                        "-n",
                        "istio-eastwest",
                        "istio-remote-peer-c3",
                    ],
                    None,
                )
                .await;
                if out.ok {
                    Err("still there".to_string())
                } else {
                    Ok(())
                }
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_steady_world_is_not_rewritten_by_the_simulator() {
    // The simulator's writes are level-based: a steady world makes no writes, so resourceVersions hold.
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join_all(["c1", "c2"].map(|ctx| mesh_with_eastwest(ctx, Some(&root)))).await;
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&link_yaml("c2", false).await),
    )
    .await;
    wait_gateway("c1", "istio-remote-peer-c2", all_peer_conditions_true).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let objects: [&[&str]; 3] = [
        &["gateway", "-n", "istio-eastwest", "istio-remote-peer-c2"],
        &["smc", "-n", "gloo-mesh", "managed-istio"],
        &["deploy", "-n", "istio-system", "istiod-gloo"],
    ];
    let versions = || async {
        let mut out = Vec::new();
        for o in objects {
            let mut args = vec!["get"];
            args.extend_from_slice(o);
            args.extend(["-o", "jsonpath={.metadata.resourceVersion}"]);
            out.push(kubectl_ok("c1", &args, None).await);
        }
        out
    };
    let before = versions().await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let after = versions().await;
    assert_eq!(before, after, "a steady world is not rewritten");
}
