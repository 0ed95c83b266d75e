//! Every fault knob of the simulator (`meshsim-faults` in kube-system), and what it leaves in the clusters.

use super::*;

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
