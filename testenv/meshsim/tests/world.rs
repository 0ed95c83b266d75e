//! Tests of the test world: the clusters `testenv/up` starts, the limited user's RBAC, and the simulator
//! answering the guide's own YAML (applied with kubectl and helm, as a person following the guide would)
//! with the conditions mesh-spec.md describes, including every fault knob.
//!
//! They share clusters c1–c3 and run one at a time (WORLD_LOCK); each resets the clusters it uses first.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use testworld::*;

fn env_of(d: &Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| &p.containers[0])
        .and_then(|c| c.env.as_ref())
        .map(|e| {
            e.iter()
                .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn clusters_run_real_apiservers_with_tls_rbac_and_labelled_nodes() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2", "c3"]).await;
    for ctx in ["c1", "c2", "c3"] {
        let c = client(ctx).await;
        // Real version strings (ldflags), served over verified TLS (the kubeconfig carries the CA, no skip).
        let v = c.apiserver_version().await.expect("version");
        assert_eq!(v.git_version, "v1.34.4", "{ctx}");
        assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "34"));
        let kc = std::fs::read_to_string(kubeconfig_path()).expect("kubeconfig");
        assert!(!kc.contains("insecure-skip-tls-verify"));

        // Fake nodes are Ready and carry region/zone labels.
        let nodes = Api::<Node>::all(c.clone())
            .list(&ListParams::default())
            .await
            .expect("nodes");
        assert!(nodes.items.len() >= 2, "{ctx}: {} nodes", nodes.items.len());
        for n in &nodes.items {
            let l = n.metadata.labels.clone().unwrap_or_default();
            assert!(
                l.contains_key("topology.kubernetes.io/region")
                    && l.contains_key("topology.kubernetes.io/zone"),
                "{l:?}"
            );
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            assert!(ready, "{ctx}: node {:?} not Ready", n.metadata.name);
        }

        // Deployments produce Pods that reach Running (KCM + scheduler + kwok); admission defaulted the SA.
        kubectl_ok(ctx, &["create", "namespace", "meshdeck-test"], None).await;
        kubectl_ok(
            ctx,
            &[
                "-n",
                "meshdeck-test",
                "create",
                "deployment",
                "web",
                "--image=example.invalid/web:1",
                "--replicas=2",
            ],
            None,
        )
        .await;
        let pods: Api<Pod> = Api::namespaced(c.clone(), "meshdeck-test");
        wait_for(60, &format!("{ctx}: web pods Running"), || {
            let pods = pods.clone();
            async move {
                let l = pods
                    .list(&ListParams::default().labels("app=web"))
                    .await
                    .map_err(|e| e.to_string())?;
                let running = l
                    .items
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .count();
                if running == 2 {
                    Ok(())
                } else {
                    Err(format!("{running} running"))
                }
            }
        })
        .await;
        let p = pods
            .list(&ListParams::default())
            .await
            .expect("pods")
            .items
            .remove(0);
        assert_eq!(
            p.spec.and_then(|s| s.service_account_name).as_deref(),
            Some("default")
        );
    }
    // Namespace deletion completes (the namespace controller runs).
    reset("c1").await;
}

#[tokio::test]
async fn limited_user_can_read_but_cannot_write_or_hold_cluster_admin() {
    let _l = WORLD_LOCK.lock().await;
    let c = client("c1-limited").await;
    Api::<Pod>::all(c.clone())
        .list(&ListParams::default())
        .await
        .expect("limited user can list pods");
    let err = Api::<Namespace>::all(c.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "forbidden-ns"}})).expect("ns"),
        )
        .await
        .expect_err("limited user must not create namespaces");
    match err {
        kube::Error::Api(e) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("expected 403, got {other:?}"),
    }
    for (verb, group, resource) in [
        (
            "create",
            "apiextensions.k8s.io",
            "customresourcedefinitions",
        ),
        ("create", "", "secrets"),
        ("patch", "gateway.networking.k8s.io", "gateways"),
        ("*", "*", "*"),
    ] {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = Api::<SelfSubjectAccessReview>::all(c.clone())
            .create(&PostParams::default(), &review)
            .await
            .expect("ssar");
        assert!(
            !r.status.expect("status").allowed,
            "limited user may {verb} {group}/{resource}"
        );
    }
    let admin = client("c1").await;
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some("*".into()),
                group: Some("*".into()),
                resource: Some("*".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = Api::<SelfSubjectAccessReview>::all(admin)
        .create(&PostParams::default(), &review)
        .await
        .expect("ssar");
    assert!(
        r.status.expect("status").allowed,
        "admin context holds cluster-admin"
    );
}

#[tokio::test]
async fn guide_install_yields_a_ready_control_plane_shaped_as_the_spec_says() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    let root = RootCa::new();
    install(Install {
        context: "c1",
        root: Some(&root),
        license: "test-license",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let smc = wait_smc_succeeded("c1").await;
    // §4.2: the six conditions, all True, each with observedGeneration.
    for (t, reason) in [
        ("Initialized", "ManifestsInitialized"),
        ("CRDInstalled", "CRDInstalled"),
        ("ControlPlaneDeployed", "DeploymentSucceeded"),
        ("CNIDeployed", "DeploymentSucceeded"),
        ("WebhookDeployed", "DeploymentSucceeded"),
        ("Ready", "SystemReady"),
    ] {
        let c = condition(&smc, t).unwrap_or_else(|| panic!("condition {t} missing: {smc}"));
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("True"), Some(reason)),
            "{t}"
        );
        assert_eq!(c["observedGeneration"], smc["metadata"]["generation"]);
    }
    // The CRD defaulted the fields of §4.1.
    assert_eq!(smc["spec"]["onConflict"], "Abort");
    assert_eq!(smc["spec"]["scalingProfile"], "Default");

    let c = client("c1").await;
    let istiod = Api::<Deployment>::namespaced(c.clone(), "istio-system")
        .get("istiod-gloo")
        .await
        .expect("istiod-gloo");
    let labels = istiod
        .spec
        .as_ref()
        .expect("spec")
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("istiod"));
    assert_eq!(labels.get("istio.io/rev").map(String::as_str), Some("gloo"));
    let env = env_of(&istiod);
    assert_eq!(env.get("CLUSTER_ID").map(String::as_str), Some("c1"));
    assert_eq!(
        env.get("ENABLE_PEERING_DISCOVERY").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        env.get("SOLO_LICENSE_KEY").map(String::as_str),
        Some("test-license")
    );
    assert_eq!(
        istiod
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].name.as_str()),
        Some("discovery")
    );
    for ds in ["ztunnel", "istio-cni-node"] {
        let d = Api::<DaemonSet>::namespaced(c.clone(), "istio-system")
            .get(ds)
            .await
            .expect("daemonset");
        let st = d.status.expect("status");
        assert!(
            st.number_ready >= 2 && st.number_ready == st.desired_number_scheduled,
            "{ds}: {st:?}"
        );
    }
    // §2.1 / §4.1: the trust domain is the bare cluster name; §4.2: the namespace carries the network.
    let mesh = Api::<ConfigMap>::namespaced(c.clone(), "istio-system")
        .get("istio-gloo")
        .await
        .expect("istio-gloo");
    let mesh: Value = serde_yaml::from_str(&mesh.data.expect("data")["mesh"]).expect("mesh yaml");
    assert_eq!(mesh["trustDomain"], "c1");
    let ns = Api::<Namespace>::all(c.clone())
        .get("istio-system")
        .await
        .expect("ns");
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("topology.istio.io/network")
            .map(String::as_str),
        Some("c1")
    );
    // §6.1: istiod took the plugged-in root.
    assert_eq!(
        root_fingerprint("c1").await,
        pem_fingerprint(&root.cert_pem)
    );
    // The operator pods of the guide's check are Running.
    let out = kubectl_ok(
        "c1",
        &[
            "get",
            "pods",
            "-n",
            "gloo-mesh",
            "-l",
            "app.kubernetes.io/name=gloo-operator",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ],
        None,
    )
    .await;
    assert_eq!(out.trim(), "Running");
}

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

async fn mesh_with_eastwest(ctx: &str, root: Option<&RootCa>) {
    reset(ctx).await;
    install(Install {
        context: ctx,
        root,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    wait_smc_succeeded(ctx).await;
    create_eastwest(ctx, false).await;
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
async fn fault_knob_lb_never_assigned_leaves_the_gateway_unprogrammed() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    wait_smc_succeeded("c1").await;
    set_faults("c1", &[("lb-never-assigned", "true")]).await;
    kubectl_ok("c1", &["create", "namespace", "istio-eastwest"], None).await;
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&eastwest_yaml("c1", false)),
    )
    .await;
    wait_gateway("c1", "istio-eastwest", |g| {
        condition(g, "Programmed").is_some()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let g = current_gateway("c1", "istio-eastwest").await;
    let p = condition(&g, "Programmed").expect("Programmed");
    assert_eq!(
        (p["status"].as_str(), p["reason"].as_str()),
        (Some("False"), Some("AddressNotAssigned")),
        "{g}"
    );
    assert!(p["message"].as_str().expect("m").contains(
        "address pending for hostname \"istio-eastwest.istio-eastwest.svc.cluster.local\""
    ));
    // Turning the knob off lets the controller assign one.
    set_faults("c1", &[]).await;
    wait_gateway("c1", "istio-eastwest", |g| {
        condition(g, "Programmed").is_some_and(|c| c["status"] == "True")
    })
    .await;
    // Hostname addresses (§9 P12).
    set_faults("c1", &[("lb-address-type", "Hostname")]).await;
    kubectl_ok(
        "c1",
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
    wait_for(30, "old service gone", || async {
        let out = kubectl(
            "c1",
            &["get", "svc", "-n", "istio-eastwest", "istio-eastwest"],
            None,
        )
        .await;
        if out.ok {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&eastwest_yaml("c1", false)),
    )
    .await;
    let g = wait_gateway("c1", "istio-eastwest", |g| {
        g["status"]["addresses"][0]["type"] == "Hostname"
    })
    .await;
    assert!(
        g["status"]["addresses"][0]["value"]
            .as_str()
            .expect("h")
            .ends_with(".example.com")
    );
}

#[tokio::test]
async fn fault_knob_license_invalid_stops_peering_on_both_sides() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join_all(["c1", "c2"].map(|ctx| mesh_with_eastwest(ctx, Some(&root)))).await;
    set_faults("c2", &[("license-invalid", "true")]).await;
    for (from, to) in [("c1", "c2"), ("c2", "c1")] {
        kubectl_ok(
            from,
            &["apply", "--server-side", "-f", "-"],
            Some(&link_yaml(to, false).await),
        )
        .await;
    }
    // c1's peer to c2: c2's istiod does not serve peering, so not connected.
    let g = wait_gateway("c1", "istio-remote-peer-c2", |g| {
        condition(g, "gloo.solo.io/PeerConnected").is_some()
    })
    .await;
    assert_eq!(
        condition(&g, "gloo.solo.io/PeerConnected").expect("pc")["status"],
        "False"
    );
    // c2's own peering controller does not run: its peer gateway gets no Solo conditions at all (§3 check 7:
    // an absent condition is pending, not connected), while the Istio controller still accepts it.
    let g = wait_gateway("c2", "istio-remote-peer-c1", |g| {
        condition(g, "Programmed").is_some()
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let g2 = current_gateway("c2", "istio-remote-peer-c1").await;
    for g in [&g, &g2] {
        assert!(
            PEER_CONDITIONS.iter().all(|t| condition(g, t).is_none()),
            "{g}"
        );
    }
    // A valid license again: both sides peer.
    set_faults("c2", &[]).await;
    wait_gateway("c1", "istio-remote-peer-c2", all_peer_conditions_true).await;
    wait_gateway("c2", "istio-remote-peer-c1", all_peer_conditions_true).await;
}

#[tokio::test]
async fn fault_knob_operator_fail_marks_the_controller_failed_with_the_reason() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    set_faults(
        "c1",
        &[("operator-fail", "image pull failed: registry unreachable")],
    )
    .await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let smc = wait_smc_phase("c1", "FAILED").await;
    let ready = condition(&smc, "Ready").expect("Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["message"], "image pull failed: registry unreachable");
    // No control plane was deployed.
    assert!(
        !kubectl(
            "c1",
            &["get", "deploy", "-n", "istio-system", "istiod-gloo"],
            None
        )
        .await
        .ok
    );
    set_faults("c1", &[]).await;
    wait_smc_succeeded("c1").await;
}

#[tokio::test]
async fn fault_knob_istiod_not_ready_keeps_the_control_plane_unready() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    set_faults("c1", &[("istiod-not-ready", "true")]).await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let c = client("c1").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "istio-system");
    wait_for(60, "istiod pod running but not ready", || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=istiod"))
                .await
                .map_err(|e| e.to_string())?;
            let p = l.items.first().ok_or("no istiod pod")?;
            let st = p.status.as_ref().ok_or("no status")?;
            let ready = st
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if st.phase.as_deref() == Some("Running") && !ready {
                Ok(())
            } else {
                Err(format!("phase {:?} ready {ready}", st.phase))
            }
        }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let smc = current_smc("c1").await;
    assert_eq!(
        condition(&smc, "ControlPlaneDeployed").expect("cp")["status"],
        "False",
        "{smc}"
    );
    assert_eq!(condition(&smc, "Ready").expect("ready")["status"], "False");
    assert_ne!(smc["status"]["phase"], "SUCCEEDED");
    set_faults("c1", &[]).await;
    wait_smc_succeeded("c1").await;
}

#[tokio::test]
async fn fault_knob_peering_delay_holds_peers_pending_then_connects() {
    let _l = WORLD_LOCK.lock().await;
    let root = RootCa::new();
    futures::future::join_all(["c1", "c2"].map(|ctx| mesh_with_eastwest(ctx, Some(&root)))).await;
    set_faults("c1", &[("peering-delay-seconds", "4")]).await;
    let start = std::time::Instant::now();
    kubectl_ok(
        "c1",
        &["apply", "--server-side", "-f", "-"],
        Some(&link_yaml("c2", false).await),
    )
    .await;
    let g = wait_gateway("c1", "istio-remote-peer-c2", |g| {
        condition(g, "gloo.solo.io/PeerConnected").is_some()
    })
    .await;
    let pc = condition(&g, "gloo.solo.io/PeerConnected").expect("pc");
    assert_eq!(
        (pc["status"].as_str(), pc["reason"].as_str()),
        (Some("False"), Some("Pending"))
    );
    wait_gateway("c1", "istio-remote-peer-c2", all_peer_conditions_true).await;
    assert!(
        start.elapsed() >= std::time::Duration::from_secs(4),
        "connected before the delay"
    );
}

#[tokio::test]
async fn on_conflict_abort_refuses_an_existing_istio_and_force_takes_over() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    kubectl_ok("c1", &["create", "namespace", "istio-system"], None).await;
    kubectl_ok(
        "c1",
        &[
            "-n",
            "istio-system",
            "create",
            "deployment",
            "istiod",
            "--image=docker.io/istio/pilot:1.27.0",
        ],
        None,
    )
    .await;
    kubectl_ok(
        "c1",
        &[
            "-n",
            "istio-system",
            "label",
            "deployment",
            "istiod",
            "app=istiod",
            "--overwrite",
        ],
        None,
    )
    .await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let smc = wait_smc_phase("c1", "FAILED").await;
    let cp = condition(&smc, "ControlPlaneDeployed").expect("cp");
    assert_eq!(cp["reason"], "ConflictDetected");
    assert!(
        cp["message"]
            .as_str()
            .expect("m")
            .contains("Deployment istio-system/istiod")
    );
    kubectl_ok(
        "c1",
        &[
            "-n",
            "gloo-mesh",
            "patch",
            "smc",
            "managed-istio",
            "--type=merge",
            "-p",
            "{\"spec\":{\"onConflict\":\"Force\"}}",
        ],
        None,
    )
    .await;
    wait_smc_succeeded("c1").await;
}

#[tokio::test]
async fn a_broken_cacerts_bundle_keeps_istiod_from_starting() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    let root = RootCa::new();
    let other = RootCa::new();
    // The intermediate is signed by `root` but the bundle names `other` as its root.
    let yaml = root.cacerts_yaml("c1");
    let b = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let bad = yaml
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("root-cert.pem:") {
                format!("  root-cert.pem: {}", b(&other.cert_pem))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    kubectl_ok("c1", &["create", "namespace", "istio-system"], None).await;
    kubectl_ok("c1", &["apply", "-f", "-"], Some(&bad)).await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let c = client("c1").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "istio-system");
    let msg = wait_for(60, "istiod refuses the bundle", || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=istiod"))
                .await
                .map_err(|e| e.to_string())?;
            let p = l.items.first().ok_or("no pod")?;
            let c = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .ok_or("no Ready")?;
            if c.status == "False" {
                Ok(c.message.clone().unwrap_or_default())
            } else {
                Err("ready".into())
            }
        }
    })
    .await;
    assert!(msg.contains("unknown authority"), "{msg}");
    assert!(
        !kubectl(
            "c1",
            &["get", "cm", "-n", "istio-system", "istio-ca-root-cert"],
            None
        )
        .await
        .ok
    );
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

/// GET `path` on a pod's port through the apiserver's port-forward (kwok plays the kubelet's side).
async fn port_forward_get(pods: &Api<Pod>, pod: &str, port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pf = pods.portforward(pod, &[port]).await.expect("port-forward");
    let mut stream = pf.take_stream(port).expect("stream");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    // Read one response by its Content-Length: the forwarded stream need not report the server's close.
    let mut resp = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.expect("read");
            resp.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&resp);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("response within 20s");
    drop(stream);
    pf.abort();
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test]
async fn istiod_answers_the_license_check_through_a_port_forward() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    wait_smc_succeeded("c1").await;
    let c = client("c1").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "istio-system");
    let istiod_pod = || async {
        let l = pods
            .list(&ListParams::default().labels("app=istiod"))
            .await
            .expect("pods");
        l.items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none())
            .and_then(|p| p.metadata.name)
            .expect("istiod pod")
    };
    let body = |resp: String| -> Value {
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).expect("body")).expect("json")
    };
    // §3 check 2: valid = State OK/BYPASSED and a product that allows multicluster.
    let v = body(port_forward_get(&pods, &istiod_pod().await, 15014, "/debug/license").await);
    assert_eq!(
        (v["State"].as_str(), v["Product"].as_str()),
        (Some("OK"), Some("GlooMesh")),
        "{v}"
    );
    set_faults("c1", &[("license-invalid", "true")]).await;
    let v = body(port_forward_get(&pods, &istiod_pod().await, 15014, "/debug/license").await);
    assert_eq!(v["State"], "INVALID");
    set_faults("c1", &[]).await;
    // Istio before 1.27 has no license endpoint: 404, which the check counts as "not supported".
    kubectl_ok(
        "c1",
        &[
            "-n",
            "gloo-mesh",
            "patch",
            "smc",
            "managed-istio",
            "--type=merge",
            "-p",
            "{\"spec\":{\"version\":\"1.26.3\"}}",
        ],
        None,
    )
    .await;
    let resp = wait_for(60, "istiod rolled to 1.26", || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=istiod"))
                .await
                .map_err(|e| e.to_string())?;
            let p = l
                .items
                .into_iter()
                .find(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.spec.as_ref().is_some_and(|s| {
                            s.containers[0]
                                .image
                                .as_deref()
                                .is_some_and(|i| i.ends_with(":1.26.3-solo"))
                        })
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .and_then(|p| p.metadata.name)
                .ok_or("no 1.26 pod yet")?;
            Ok(port_forward_get(&pods, &p, 15014, "/debug/license").await)
        }
    })
    .await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}
