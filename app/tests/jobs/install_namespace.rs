//! A mesh whose control plane lives outside istio-system (the ServiceMeshController's `installNamespace`):
//! planned, set up with the operator watching that namespace, checked, followed by the topology's watches,
//! its intermediate re-issued, its settings kept from moving it, and the mesh taken out of a cluster —
//! everything read and written in the namespace it names.

use super::*;
use app::model::{LicenseChoice, MeshSettings, PeeringChoice, RemoveRequest, SetupRequest};

const NS: &str = testworld::CUSTOM_ISTIO_NAMESPACE;

async fn cacerts_in(context: &str, ns: &str) -> bool {
    kubectl(context, &["get", "secret", "cacerts", "-n", ns], None)
        .await
        .ok
}

/// `context`'s intermediate CA (`ca-cert.pem` of its `cacerts` in the mesh's namespace), base64.
async fn intermediate(context: &str) -> String {
    kubectl_ok(
        context,
        &[
            "get",
            "secret",
            "cacerts",
            "-n",
            NS,
            "-o",
            "jsonpath={.data.ca-cert\\.pem}",
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn a_mesh_installed_in_a_namespace_of_its_own_is_set_up_checked_reissued_and_taken_apart_there()
 {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let (store, registry, jobs) = console("install-ns", Duration::from_secs(10)).await;
    register(&registry, "c1").await;
    register(&registry, "c2").await;
    let name = |n: &str| ClusterName::new(n).expect("name");
    let mut request = SetupRequest {
        clusters: vec![name("c1"), name("c2")],
        istio_version: ISTIO_VERSION.into(),
        eastwest: Default::default(),
        peering: PeeringChoice::FullMesh,
        license: LicenseChoice::Key {
            key: "meshdeck-test-license".into(),
        },
        override_reason: None,
        settings: MeshSettings {
            install_namespace: Some("kube-system".into()),
            ..Default::default()
        },
        per_cluster: Default::default(),
    };
    // Kubernetes' own namespaces, the operator's and the east-west gateway's cannot hold the control plane.
    let refused = jobs.plan(&request).await.expect_err("kube-system");
    assert!(
        refused.to_string().contains("kube-system is taken"),
        "{refused}"
    );
    request.settings.install_namespace = Some(NS.into());

    // The plan writes cacerts there and the ServiceMeshController names it; the commands say so.
    let plan = jobs.plan(&request).await.expect("plan");
    let root = plan[0]
        .steps
        .iter()
        .find(|s| s.title == "Root of trust")
        .expect("root of trust step");
    let secret = root
        .objects
        .iter()
        .find(|o| o.kind == "Secret")
        .expect("cacerts");
    assert_eq!(secret.namespace.as_deref(), Some(NS), "{secret:?}");
    assert!(
        root.commands
            .iter()
            .any(|c| c.contains(&format!("create secret generic cacerts -n {NS}"))),
        "{root:?}"
    );
    let control = plan[0]
        .steps
        .iter()
        .find(|s| s.title == "Control plane")
        .expect("control plane step");
    assert!(
        control
            .objects
            .iter()
            .any(|o| o.kind == "ServiceMeshController"
                && o.yaml.contains(&format!("installNamespace: {NS}"))),
        "{control:?}"
    );

    let (spec, key) = jobs
        .spec_from_request(&request, "alice")
        .await
        .expect("spec");
    let base = jobs.start_setup(spec, key, "alice").await.expect("start");
    assert_eq!(
        wait_finished(&store, &base, 300).await,
        "succeeded",
        "{:?}",
        store.job_events(&base, 0).await
    );
    for c in ["c1", "c2"] {
        assert_eq!(current_smc(c).await["spec"]["installNamespace"], NS);
        // The operator watches it (WATCH_NAMESPACES), or it would refuse the controller (NamespaceNotWatched).
        let values = helm(
            c,
            &[
                "get",
                "values",
                "gloo-operator",
                "-n",
                "gloo-mesh",
                "-o",
                "json",
            ],
        )
        .await;
        assert!(values.ok, "{}", values.stderr);
        let values: serde_json::Value = serde_json::from_str(&values.stdout).expect("json");
        assert_eq!(values["manager"]["env"]["WATCH_NAMESPACES"], NS, "{values}");
        let istiod = kubectl_ok(
            c,
            &[
                "get",
                "deployments",
                "-n",
                NS,
                "-l",
                "app=istiod",
                "-o",
                "name",
            ],
            None,
        )
        .await;
        assert!(!istiod.trim().is_empty(), "{c}: istiod runs in {NS}");
        assert!(cacerts_in(c, NS).await, "{c}: cacerts in {NS}");
        assert!(
            !cacerts_in(c, "istio-system").await,
            "{c}: none in istio-system"
        );
    }
    // Set up again into istio-system, the control plane would move: the preflight stops that.
    let mut elsewhere = request.clone();
    elsewhere.settings.install_namespace = None;
    let views = jobs.preflight(&elsewhere).await.expect("preflight");
    for v in &views {
        let moved = v
            .findings
            .iter()
            .find(|f| f.key == "install-namespace")
            .unwrap_or_else(|| panic!("{}: {v:?}", v.cluster));
        assert_eq!(moved.status, app::model::CheckStatus::Fail, "{moved:?}");
        assert!(
            moved
                .message
                .contains(&format!("installs the control plane in {NS}")),
            "{moved:?}"
        );
        assert!(v.blocked, "{v:?}");
    }

    // The checks look there: istiod's settings, its license, the root it serves against cacerts.
    let report = jobs.run_checks(&[name("c1"), name("c2")]).await;
    assert_eq!(report.clusters.len(), 2);
    for c in &report.clusters {
        for title in [
            "Incompatible Environment Variable Check",
            "License Check",
            "Root of trust",
        ] {
            let r = c
                .results
                .iter()
                .find(|r| r.title == title)
                .unwrap_or_else(|| panic!("{}: {title}", c.cluster));
            assert_eq!(
                r.status,
                app::model::CheckStatus::Pass,
                "{}: {title}: {}",
                c.cluster,
                r.message
            );
        }
        assert!(
            c.results
                .iter()
                .all(|r| r.status != app::model::CheckStatus::Fail),
            "{c:?}"
        );
    }

    // The topology's watches follow the ServiceMeshController to its namespace.
    let (_watch, mut snapshots) = mesh::watch::ClusterWatch::start(name("c1"), client("c1").await);
    let seen = wait_for(60, "istiod, ztunnel, cacerts and the network seen", || {
        let snap = snapshots.borrow_and_update().clone();
        async move {
            if snap.istiod.is_some()
                && snap.ztunnel.is_some()
                && snap.root_fingerprint.is_some()
                && snap.network.is_some()
            {
                Ok(snap)
            } else {
                Err(format!("{snap:?}"))
            }
        }
    })
    .await;
    assert_eq!(seen.network.as_deref(), Some("c1"));
    assert_eq!(
        seen.smc.and_then(|s| s.install_namespace).as_deref(),
        Some(NS)
    );

    // c1's intermediate re-issued there: the plan names the namespace, the job writes and restarts there.
    let c1 = name("c1");
    let plan = jobs.reissue_plan(&c1).await.expect("plan");
    assert_eq!(plan.error, None, "{plan:?}");
    assert_eq!(
        plan.steps[0].objects[0].namespace.as_deref(),
        Some(NS),
        "{plan:?}"
    );
    assert!(
        plan.steps
            .iter()
            .flat_map(|s| &s.commands)
            .any(|c| c.contains(&format!("-n {NS} rollout restart deployment"))),
        "{plan:?}"
    );
    let cert = intermediate("c1").await;
    let spec = jobs.reissue_spec(&c1).await.expect("spec");
    let id = jobs.start_reissue(spec, "alice").await.expect("start");
    assert_eq!(
        wait_finished(&store, &id, 300).await,
        "succeeded",
        "{:?}",
        store.job_events(&id, 0).await
    );
    let now = intermediate("c1").await;
    assert_ne!(now, cert, "a new intermediate in {NS}");

    // The settings show it, and it cannot move on a running mesh.
    let current = jobs.current_settings(&base).await.expect("current");
    assert_eq!(current.settings.install_namespace.as_deref(), Some(NS));
    let mut change = current.clone();
    change.settings.install_namespace = None;
    let moved = jobs.change_spec(&change).await.expect_err("moved");
    assert!(
        moved.to_string().contains(&format!(
            "the install namespace cannot change on a running mesh ({NS} → istio-system)"
        )),
        "{moved}"
    );

    // Taken out of c2 with its cacerts: the Secret goes from the namespace the controller named, though the
    // controller is gone by then.
    let remove = RemoveRequest {
        mesh: base.clone(),
        cluster: name("c2"),
        cacerts: true,
        gateway_api: false,
    };
    let plan = jobs.remove_plan(&remove).await.expect("plan");
    let own = plan.iter().find(|p| p.cluster == "c2").expect("c2's plan");
    assert!(
        own.steps
            .iter()
            .flat_map(|s| &s.commands)
            .any(|c| c.contains(&format!("-n {NS} delete secret cacerts"))),
        "{own:?}"
    );
    let id = jobs
        .start_remove(jobs.remove_spec(&remove).await.expect("spec"), "alice")
        .await
        .expect("remove");
    assert_eq!(
        wait_finished(&store, &id, 300).await,
        "succeeded",
        "{:?}",
        store.job_events(&id, 0).await
    );
    assert!(!cacerts_in("c2", NS).await, "c2: cacerts removed from {NS}");
    assert!(cacerts_in("c1", NS).await, "c1 keeps its own");
}
