//! Clusters added to a running mesh; links removed one way; the mesh taken out of a cluster.

use super::*;

const HAND_MADE_PEER: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: istio-remote-peer-by-hand
  namespace: istio-eastwest
spec:
  gatewayClassName: istio-remote
  addresses:
  - type: IPAddress
    value: 192.0.2.9
  listeners:
  - name: cross-network
    port: 15008
    protocol: HBONE
    tls:
      mode: Passthrough
";

#[tokio::test]
async fn a_cluster_added_to_a_running_mesh_is_set_up_and_linked_both_ways_leaving_the_members_objects_alone()
 {
    use app::model::{GrowLinks, GrowRequest};
    let _l = WORLD_LOCK.lock().await;
    let (store, registry, jobs, root_id, base) =
        running_mesh("grow", &["c1", "c2", "c3"], ISTIO_VERSION).await;
    let meshes = jobs.meshes().await.expect("meshes");
    assert_eq!(meshes.len(), 1, "{meshes:?}");
    assert_eq!(meshes[0].job_id, base);
    assert_eq!(meshes[0].members, ["c1", "c2", "c3"]);
    assert_eq!(meshes[0].candidates, ["c4"]);
    assert_eq!(meshes[0].linking, "full mesh");

    // A setup of the running clusters, planned again: its links and checks have YAML, a diff against the live
    // peer gateways (unchanged: built from the peers' live east-west gateways) and the istioctl commands.
    let names = vec![
        ClusterName::new("c1").expect("c1"),
        ClusterName::new("c2").expect("c2"),
    ];
    let again = app::model::SetupRequest {
        clusters: names.clone(),
        istio_version: ISTIO_VERSION.into(),
        eastwest: Default::default(),
        peering: app::model::PeeringChoice::FullMesh,
        license: app::model::LicenseChoice::Key { key: "k".into() },
        override_reason: None,
        settings: Default::default(),
        per_cluster: Default::default(),
    };
    let plan = jobs.plan(&again).await.expect("plan");
    for (c, peer) in [("c1", "c2"), ("c2", "c1")] {
        let steps = &plan.iter().find(|p| p.cluster == c).expect("plan").steps;
        let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles[titles.len() - 2..],
            ["Links", "Checks"],
            "after the setup steps: {titles:?}"
        );
        let links = &steps[steps.len() - 2];
        let gw = &links.objects[0];
        assert_eq!(gw.name, format!("istio-remote-peer-{peer}"));
        assert_eq!(gw.change, "unchanged", "{gw:?}");
        assert!(gw.yaml.contains("istio-remote"), "{}", gw.yaml);
        assert_eq!(
            links.commands,
            [format!(
                "istioctl multicluster link --from {c} --to {peer} -n istio-eastwest"
            )]
        );
        assert_eq!(
            steps[steps.len() - 1].commands,
            [format!("istioctl multicluster check --context {c}")]
        );
    }
    let automatic = app::model::SetupRequest {
        peering: app::model::PeeringChoice::Automatic {
            management: names[0].clone(),
        },
        ..again
    };
    let plan = jobs.plan(&automatic).await.expect("plan");
    let peers = plan[1]
        .steps
        .iter()
        .find(|s| s.title == "Peers (automatic)")
        .expect("peers step");
    assert_eq!(peers.objects[0].name, "istio-remote-peer-c1");
    assert!(
        peers.objects[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("management plane (c1)"),
        "{peers:?}"
    );
    assert_eq!(
        peers.commands,
        ["kubectl get gateways -n istio-eastwest --context c2"]
    );

    let request = GrowRequest {
        mesh: base.clone(),
        clusters: vec![ClusterName::new("c4").expect("name")],
        links: GrowLinks::BothWays,
        override_reason: None,
    };
    // A member cannot be added again; an unknown mesh is named.
    let member = jobs
        .grow_spec(&GrowRequest {
            clusters: vec![ClusterName::new("c1").expect("name")],
            ..request.clone()
        })
        .await
        .expect_err("member");
    assert!(
        member.to_string().contains("c1 is already in this mesh"),
        "{member}"
    );
    let unknown = jobs
        .grow_spec(&GrowRequest {
            mesh: "nosuchjob".into(),
            ..request.clone()
        })
        .await
        .expect_err("unknown");
    assert!(unknown.to_string().contains("mesh nosuchjob"), "{unknown}");

    // The preflight says whether c4 fits the mesh.
    let preflight = jobs.grow_preflight(&request).await.expect("preflight");
    assert_eq!(preflight.len(), 1);
    let fits = preflight[0]
        .findings
        .iter()
        .find(|f| f.key == "trust-domain")
        .expect("trust domain finding");
    assert_eq!(fits.status, app::model::CheckStatus::Pass, "{fits:?}");
    assert!(
        preflight[0]
            .findings
            .iter()
            .any(|f| f.key == "network" && f.status == app::model::CheckStatus::Pass),
        "{preflight:?}"
    );

    // The plan: c4's setup steps with its links; in each member only the peer gateway for c4 (built once c4's
    // east-west gateway has an address); c4's gateways for the members compared with the live cluster.
    let plan = jobs.grow_plan(&request).await.expect("plan");
    let of = |c: &str| plan.iter().find(|p| p.cluster == c).expect("cluster plan");
    for member in ["c1", "c2", "c3"] {
        let steps = &of(member).steps;
        let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["Links", "Checks"], "{steps:?}");
        assert_eq!(steps[0].objects[0].name, "istio-remote-peer-c4");
        assert_eq!(steps[0].objects[0].change, "unknown");
        assert!(steps[0].commands[0].contains(&format!("--from {member} --to c4")));
        assert_eq!(
            steps[1].commands,
            [format!("istioctl multicluster check --context {member}")],
            "the whole mesh is checked"
        );
    }
    let c4 = &of("c4").steps;
    assert_eq!(c4.last().expect("checks").title, "Checks");
    let links = c4[c4.len() - 2].clone();
    assert_eq!(links.title, "Links");
    let mut created: Vec<(String, String)> = links
        .objects
        .iter()
        .map(|o| (o.name.clone(), o.change.clone()))
        .collect();
    created.sort();
    assert_eq!(
        created,
        [
            ("istio-remote-peer-c1".to_string(), "create".to_string()),
            ("istio-remote-peer-c2".to_string(), "create".to_string()),
            ("istio-remote-peer-c3".to_string(), "create".to_string())
        ]
    );

    let before: Vec<_> = [
        mesh_objects("c1").await,
        mesh_objects("c2").await,
        mesh_objects("c3").await,
    ]
    .into();
    assert!(
        before[0]
            .contains_key("gateways.gateway.networking.k8s.io/istio-eastwest/istio-remote-peer-c2"),
        "{before:?}"
    );
    let (grow_spec, key) = jobs.grow_spec(&request).await.expect("spec");
    let id = jobs
        .start_setup(grow_spec, key, "alice")
        .await
        .expect("grow");
    // The members are held while it runs.
    let busy = jobs
        .start_setup(spec(&["c1"], &root_id), Some("k".into()), "bob")
        .await
        .expect_err("busy");
    assert!(
        busy.to_string().contains("cluster c1 is busy with job"),
        "{busy}"
    );
    // The console running it stops while c4's control plane is being installed; another one finishes it.
    crash_and_resume(&store, &registry, &jobs, &id, "c4/control-plane").await;
    let steps: Vec<String> = store
        .job_steps(&id)
        .await
        .expect("steps")
        .into_iter()
        .map(|s| format!("{}/{}", s.cluster, s.step))
        .collect();
    assert!(
        steps
            .iter()
            .all(|s| !s.starts_with("c1/") || s == "c1/link:c4"),
        "{steps:?}"
    );
    for link in [
        "c1/link:c4",
        "c2/link:c4",
        "c3/link:c4",
        "c4/link:c1",
        "c4/link:c2",
        "c4/link:c3",
        "*/verify",
    ] {
        assert!(steps.contains(&link.to_string()), "{link} in {steps:?}");
    }

    // Linked both ways, with the mesh's root; the members' own objects are the same objects (same versions).
    for (holder, peer) in [
        ("c1", "c4"),
        ("c2", "c4"),
        ("c3", "c4"),
        ("c4", "c1"),
        ("c4", "c2"),
        ("c4", "c3"),
    ] {
        let gw = current_gateway(holder, &format!("istio-remote-peer-{peer}")).await;
        assert_eq!(
            gw["spec"]["gatewayClassName"], "istio-remote",
            "{holder} → {peer}"
        );
    }
    assert_eq!(root_fingerprint("c4").await, root_fingerprint("c1").await);
    for (i, member) in ["c1", "c2", "c3"].into_iter().enumerate() {
        let after = mesh_objects(member).await;
        for (object, version) in &before[i] {
            assert_eq!(
                after.get(object),
                Some(version),
                "{member}: {object} changed"
            );
        }
        assert!(after.contains_key(
            "gateways.gateway.networking.k8s.io/istio-eastwest/istio-remote-peer-c4"
        ));
    }

    // The mesh is now the growth's, with every cluster; the topology expects the new links.
    let meshes = jobs.meshes().await.expect("meshes");
    assert_eq!(meshes.len(), 1, "{meshes:?}");
    assert_eq!(meshes[0].job_id, id);
    assert_eq!(meshes[0].members, ["c1", "c2", "c3", "c4"]);
    assert!(meshes[0].candidates.is_empty());
    let chosen = app::ssr::topology::chosen_links(&store.list_jobs(10).await.expect("jobs"));
    for (a, b) in [("c1", "c4"), ("c4", "c2"), ("c3", "c4"), ("c1", "c2")] {
        let (a, b) = (
            ClusterName::new(a).expect("a"),
            ClusterName::new(b).expect("b"),
        );
        assert_eq!(
            chosen.get(&a).and_then(|r| r.get(&b)),
            Some(&true),
            "{a} → {b}"
        );
    }
    let again = jobs.grow_spec(&request).await.expect_err("base superseded");
    assert!(
        again
            .to_string()
            .contains(&format!("grow the mesh of job {id}")),
        "{again}"
    );
}

#[tokio::test]
async fn links_removed_one_way_and_the_mesh_taken_out_of_a_cluster_leave_only_what_others_made() {
    use app::model::{RemoveRequest, UnlinkRequest};
    let _l = WORLD_LOCK.lock().await;
    let (store, registry, jobs, _, base) =
        running_mesh("take-apart", &["c1", "c2", "c3"], ISTIO_VERSION).await;
    let name = |n: &str| ClusterName::new(n).expect("name");

    // Unlink one direction: c1 no longer reaches c2; c2 still reaches c1.
    let unlink = UnlinkRequest {
        mesh: base.clone(),
        pairs: vec![(name("c1"), name("c2"))],
    };
    let plan = jobs.unlink_plan(&unlink).await.expect("plan");
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert_eq!(plan[0].cluster, "c1");
    let objects: Vec<(String, String)> = plan[0].steps[0]
        .objects
        .iter()
        .map(|o| (o.name.clone(), o.change.clone()))
        .collect();
    assert_eq!(
        objects,
        [("istio-remote-peer-c2".to_string(), "delete".to_string())]
    );
    let id = jobs
        .start_unlink(jobs.unlink_spec(&unlink).await.expect("spec"), "alice")
        .await
        .expect("unlink");
    assert_eq!(wait_finished(&store, &id, 120).await, "succeeded");
    assert!(!gateways("c1").await.contains("istio-remote-peer-c2"));
    assert!(gateways("c2").await.contains("istio-remote-peer-c1"));
    let chosen = app::ssr::topology::chosen_links(&store.list_jobs(10).await.expect("jobs"));
    let meant = |a: &str, b: &str| chosen.get(&name(a)).and_then(|r| r.get(&name(b))).copied();
    assert_eq!(
        meant("c1", "c2"),
        Some(false),
        "unlinked on purpose: not missing"
    );
    assert_eq!(meant("c2", "c1"), Some(true));

    // Someone else's peer gateway in c3 stays through the removal, and is named.
    kubectl_ok("c3", &["apply", "-f", "-"], Some(HAND_MADE_PEER)).await;
    let remove = RemoveRequest {
        mesh: base.clone(),
        cluster: name("c3"),
        cacerts: false,
        gateway_api: false,
    };
    let plan = jobs.remove_plan(&remove).await.expect("plan");
    let of = |c: &str| {
        plan.iter()
            .find(|p| p.cluster == c)
            .expect("cluster plan")
            .clone()
    };
    for peer in ["c1", "c2"] {
        let p = of(peer);
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].objects[0].name, "istio-remote-peer-c3");
        assert_eq!(p.steps[0].objects[0].change, "delete");
    }
    let own = of("c3");
    let titles: Vec<&str> = own.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Remove its peer gateways",
            "Remove the east-west gateway",
            "Remove the control plane",
            "Uninstall the operator"
        ],
        "cacerts and the Gateway API CRDs stay unless asked"
    );
    let hand = own.steps[0]
        .objects
        .iter()
        .find(|o| o.name == "istio-remote-peer-by-hand")
        .expect("listed");
    assert_eq!(hand.change, "unchanged");
    assert!(
        hand.detail
            .as_deref()
            .unwrap_or_default()
            .contains("not made by Meshdeck")
    );

    let id = jobs
        .start_remove(jobs.remove_spec(&remove).await.expect("spec"), "alice")
        .await
        .expect("remove");
    // The console running it stops once c3's control plane is being removed; another one finishes it.
    crash_and_resume(&store, &registry, &jobs, &id, "c3/remove:control-plane").await;
    let steps = store.job_steps(&id).await.expect("steps");
    let order: Vec<String> = steps
        .iter()
        .map(|s| format!("{}/{}", s.cluster, s.step))
        .collect();
    assert_eq!(
        order,
        [
            "c1/unpeer:c3",
            "c2/unpeer:c3",
            "c3/remove:peer-gateways",
            "c3/remove:eastwest",
            "c3/remove:control-plane",
            "c3/remove:operator"
        ]
    );
    let summary = steps[2].message.clone().unwrap_or_default();
    assert!(
        summary.contains(
            "left in place (not made by Meshdeck): Gateway istio-eastwest/istio-remote-peer-by-hand"
        ),
        "{summary}"
    );
    for peer in ["c1", "c2"] {
        assert!(
            !gateways(peer).await.contains("istio-remote-peer-c3"),
            "{peer}"
        );
    }
    let left = gateways("c3").await;
    assert!(left.contains("istio-remote-peer-by-hand"), "{left}");
    assert!(
        !left.contains("/istio-eastwest") && !left.contains("istio-remote-peer-c1"),
        "{left}"
    );
    assert!(
        get_json("c3", &smc_ar(), "gloo-mesh", "managed-istio")
            .await
            .is_none()
    );
    assert!(
        kubectl(
            "c3",
            &["get", "secret", "-n", "istio-system", "cacerts"],
            None
        )
        .await
        .ok,
        "cacerts kept: not asked"
    );
    // c1 and c2 still reach each other as before (c2 → c1 only, as unlinked).
    assert!(gateways("c2").await.contains("istio-remote-peer-c1"));

    // The mesh is c1 and c2 now; c3 can be added again; no link with c3 is expected.
    let meshes = jobs.meshes().await.expect("meshes");
    assert_eq!(meshes.len(), 1);
    assert_eq!(meshes[0].members, ["c1", "c2"]);
    assert_eq!(meshes[0].candidates, ["c3", "c4"]);
    let chosen = app::ssr::topology::chosen_links(&store.list_jobs(10).await.expect("jobs"));
    let meant = |a: &str, b: &str| chosen.get(&name(a)).and_then(|r| r.get(&name(b))).copied();
    assert_eq!(meant("c1", "c3"), Some(false));
    assert_eq!(meant("c3", "c2"), Some(false));
    let again = jobs.remove_spec(&remove).await.expect_err("not a member");
    assert!(
        again.to_string().contains("c3 is not in this mesh"),
        "{again}"
    );
}
