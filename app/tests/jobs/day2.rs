//! Day two against the test world: clusters added to a running mesh, links removed, and the mesh taken out
//! of a cluster — each a job like a setup, checked in the clusters.

use super::*;

/// A console (its own database, `tag`) with c1–c4 reset and registered, and a succeeded setup of a full mesh
/// of `mesh` at `version`: the store, the registry, the jobs, the root's id and the setup job's id (which names
/// the mesh).
async fn running_mesh(
    tag: &str,
    mesh: &[&str],
    version: &str,
) -> (Store, Registry, Jobs, String, String) {
    reset_all(&["c1", "c2", "c3", "c4"]).await;
    let (store, registry, jobs) = console(tag, Duration::from_secs(10)).await;
    for c in ["c1", "c2", "c3", "c4"] {
        register(&registry, c).await;
    }
    let (root_id, _) = jobs.root("alice").await.expect("root");
    let mut setup = spec(mesh, &root_id);
    setup.istio_version = version.into();
    let base = jobs
        .start_setup(setup, Some("meshdeck-test-license".into()), "alice")
        .await
        .expect("start");
    assert_eq!(wait_finished(&store, &base, 300).await, "succeeded");
    (store, registry, jobs, root_id, base)
}

/// Every object of the mesh a cluster holds, as `kind/namespace/name=resourceVersion` lines.
async fn mesh_objects(context: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (kind, ns) in [
        ("servicemeshcontrollers", "gloo-mesh"),
        ("gateways.gateway.networking.k8s.io", "istio-eastwest"),
        ("secrets", "istio-system"),
        ("configmaps", "gloo-mesh"),
    ] {
        let text = kubectl_ok(
            context,
            &[
                "get",
                kind,
                "-n",
                ns,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
            ],
            None,
        )
        .await;
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some((name, version)) = line.split_once('=') {
                out.insert(format!("{kind}/{ns}/{name}"), version.to_string());
            }
        }
    }
    out
}

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

fn gateways(context: &str) -> impl std::future::Future<Output = String> + '_ {
    kubectl_ok(
        context,
        &[
            "get",
            "gateways.gateway.networking.k8s.io",
            "-n",
            "istio-eastwest",
            "-o",
            "name",
        ],
        None,
    )
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

pub(super) async fn smc_version(context: &str) -> String {
    current_smc(context).await["spec"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn istiod_image(context: &str) -> String {
    kubectl_ok(
        context,
        &[
            "get",
            "deployment",
            "istiod-gloo",
            "-n",
            "istio-system",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn an_upgrade_rolls_out_one_cluster_at_a_time_and_stops_at_the_first_that_fails() {
    use app::model::UpgradeRequest;
    let _l = WORLD_LOCK.lock().await;
    let (store, registry, jobs, _, base) =
        running_mesh("upgrade", &["c1", "c2", "c3"], "1.27.3").await;
    let name = |n: &str| ClusterName::new(n).expect("name");
    for c in ["c1", "c2", "c3"] {
        assert_eq!(smc_version(c).await, "1.27.3");
    }
    let request = |version: &str, order: &[&str]| UpgradeRequest {
        mesh: base.clone(),
        version: version.into(),
        operator: Default::default(),
        order: order.iter().map(|c| name(c)).collect(),
        batch: 1,
    };

    // The version rules: one minor at a time, never 1.26.0 or plain 1.26.1, not the version it runs.
    let skip = jobs
        .upgrade_spec(&request("1.29.0", &[]))
        .await
        .expect_err("two minors");
    assert!(skip.to_string().contains("one minor at a time"), "{skip}");
    let same = jobs
        .upgrade_spec(&request("1.27.3", &[]))
        .await
        .expect_err("same");
    assert!(same.to_string().contains("already runs 1.27.3"), "{same}");
    let order = jobs
        .upgrade_spec(&request("1.28.1-patch0", &["c1", "c2"]))
        .await
        .expect_err("order");
    assert!(
        order.to_string().contains("every cluster of the mesh once"),
        "{order}"
    );

    // The plan shows each ServiceMeshController's new version against the live one.
    let up = request("1.28.1-patch0", &[]);
    let plan = jobs.upgrade_plan(&up).await.expect("plan");
    let order: Vec<&str> = plan.iter().map(|p| p.cluster.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"]);
    let smc = plan[0].steps[0]
        .objects
        .iter()
        .find(|o| o.kind == "ServiceMeshController")
        .expect("smc");
    assert_eq!(smc.change, "update");
    assert!(
        smc.detail
            .as_deref()
            .unwrap_or_default()
            .contains("1.28.1-patch0"),
        "{smc:?}"
    );

    let (spec1, key) = jobs.upgrade_spec(&up).await.expect("spec");
    let id = jobs
        .start_upgrade(spec1, key, "alice")
        .await
        .expect("upgrade");
    // The console running it stops while c2 is being upgraded (c1 done); another one finishes the rollout.
    crash_and_resume(&store, &registry, &jobs, &id, "c2/upgrade:control-plane").await;
    let steps = store.job_steps(&id).await.expect("steps");
    let keys: Vec<String> = steps
        .iter()
        .map(|s| format!("{}/{}", s.cluster, s.step))
        .collect();
    assert_eq!(
        keys,
        [
            "c1/upgrade:control-plane",
            "c1/upgrade:verify",
            "c2/upgrade:control-plane",
            "c2/upgrade:verify",
            "c3/upgrade:control-plane",
            "c3/upgrade:verify"
        ]
    );
    // One at a time: a cluster starts once the one before it has passed its checks.
    for w in steps.chunks(2).collect::<Vec<_>>().windows(2) {
        assert!(w[1][0].started_at >= w[0][1].finished_at, "{steps:?}");
    }
    for c in ["c1", "c2", "c3"] {
        assert_eq!(smc_version(c).await, "1.28.1-patch0");
        assert!(istiod_image(c).await.ends_with(":1.28.1-patch0-solo"));
    }
    assert_eq!(
        jobs.meshes().await.expect("meshes")[0].istio_version,
        "1.28.1-patch0"
    );

    // Drift: compared with what Meshdeck applied, at the version the mesh runs now (no drift after the upgrade).
    let c2 = name("c2");
    let report = jobs.drift(&c2).await.expect("drift");
    assert_eq!(report.istio_version, "1.28.1-patch0");
    assert_eq!(report.drifted(), 0, "{report:#?}");
    assert!(report.plan.error.is_none());
    // Someone switches c2's data plane mode by hand and deletes its extensions ConfigMap.
    let smc_before_c1 = mesh_objects("c1").await;
    kubectl_ok(
        "c2",
        &[
            "-n",
            "gloo-mesh",
            "patch",
            "servicemeshcontroller",
            "managed-istio",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"dataplaneMode":"Sidecar"}}"#,
        ],
        None,
    )
    .await;
    kubectl_ok(
        "c2",
        &[
            "-n",
            "gloo-mesh",
            "delete",
            "configmap",
            "gloo-extensions-config",
        ],
        None,
    )
    .await;
    let report = jobs.drift(&c2).await.expect("drift");
    assert_eq!(report.drifted(), 2, "{report:#?}");
    assert_eq!(report.plan.steps.len(), 1, "{report:#?}");
    assert_eq!(report.plan.steps[0].title, "Control plane");
    let change = |kind: &str| {
        report.plan.steps[0]
            .objects
            .iter()
            .find(|o| o.kind == kind)
            .unwrap_or_else(|| panic!("{kind} drifted: {report:#?}"))
    };
    let smc = change("ServiceMeshController");
    assert_eq!(smc.change, "update");
    let diff = smc.detail.clone().unwrap_or_default();
    assert!(
        diff.contains("-  dataplaneMode: Sidecar") && diff.contains("+  dataplaneMode: Ambient"),
        "{diff}"
    );
    assert_eq!(change("ConfigMap").change, "create");
    assert!(
        report.plan.steps[0]
            .commands
            .iter()
            .any(|c| c.contains("--server-side")),
        "the commands by hand: {report:#?}"
    );
    assert_eq!(jobs.drift(&name("c1")).await.expect("drift").drifted(), 0);
    let nothing = jobs
        .reapply_spec(&name("c1"))
        .await
        .expect_err("no drift in c1");
    assert!(
        nothing.to_string().contains("nothing drifted in c1"),
        "{nothing}"
    );
    // Re-applied as a job: the drifted step, then c2's checks; c2 is back, c1 untouched.
    let (spec, key) = jobs.reapply_spec(&c2).await.expect("reapply");
    let id = jobs.start_reapply(spec, key, "alice").await.expect("start");
    // The console running it stops while c2's control plane is put back; another one finishes it.
    crash_and_resume(&store, &registry, &jobs, &id, "c2/reapply:control-plane").await;
    let keys: Vec<String> = store
        .job_steps(&id)
        .await
        .expect("steps")
        .iter()
        .map(|s| format!("{}/{}", s.cluster, s.step))
        .collect();
    assert_eq!(keys, ["c2/reapply:control-plane", "c2/reapply:verify"]);
    assert_eq!(jobs.drift(&c2).await.expect("drift").drifted(), 0);
    // c1's own objects keep their resourceVersions (its peer gateway for c2 is left out: the peering
    // controller rewrites its status while c2's control plane comes back, §2.3).
    let own = |m: std::collections::BTreeMap<String, String>| {
        m.into_iter()
            .filter(|(k, _)| !k.contains("istio-remote-peer-"))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        own(mesh_objects("c1").await),
        own(smc_before_c1),
        "c1 is not touched"
    );
    assert_eq!(
        jobs.meshes().await.expect("meshes")[0].job_id,
        base,
        "a re-apply does not change what the mesh is made of"
    );

    // c1's intermediate re-issued alone from the mesh's root: a plan, then the job — a new cacerts with the
    // same root, istiod restarted (a new pod reads it at start-up), c1's checks.
    reissue_one_intermediate(&store, &registry, &jobs, &name("c1")).await;

    // The whole mesh's root rotated: both roots trusted, then the new one signing everywhere (the checks see
    // both fingerprints), then the old one dropped (the checks see one).
    rotate_the_root(&store, &registry, &jobs, &base).await;

    // Its settings changed: the Large profile everywhere, an istiod variable in c2, c3 reached over NodePort
    // (c1 and c2 linked to it again).
    super::change::change_settings(&store, &registry, &jobs, &base).await;

    // An operator fault in c2 stops the next rollout there: c1 moved on, c3 keeps what it runs.
    set_faults("c2", &[("operator-fail", "InstallFailed")]).await;
    let (spec2, key) = jobs
        .upgrade_spec(&request("1.28.2", &["c1", "c2", "c3"]))
        .await
        .expect("spec");
    let id = jobs
        .start_upgrade(spec2, key, "alice")
        .await
        .expect("upgrade");
    assert_eq!(wait_finished(&store, &id, 300).await, "failed");
    set_faults("c2", &[]).await;
    let steps = store.job_steps(&id).await.expect("steps");
    let state = |key: &str| {
        steps
            .iter()
            .find(|s| format!("{}/{}", s.cluster, s.step) == key)
            .map(|s| (s.state.clone(), s.message.clone().unwrap_or_default()))
            .expect("step")
    };
    assert_eq!(state("c1/upgrade:verify").0, "done");
    let (c2, why) = state("c2/upgrade:control-plane");
    assert_eq!(c2, "failed");
    assert!(
        why.contains("FAILED") && why.contains("InstallFailed"),
        "{why}"
    );
    assert_eq!(state("c3/upgrade:control-plane").0, "pending");
    assert_eq!(smc_version("c1").await, "1.28.2");
    assert_eq!(smc_version("c3").await, "1.28.1-patch0");
    assert_eq!(
        super::change::scaling_profile("c1").await,
        "Large",
        "the upgrade keeps the settings changed before it"
    );
    let events: Vec<String> = store
        .job_events(&id, 0)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("the rollout stopped at c2")
                && e.contains("c3 keeps Istio 1.28.1-patch0")),
        "{events:?}"
    );
    // The mesh still runs the version of its last upgrade that succeeded.
    assert_eq!(
        jobs.meshes().await.expect("meshes")[0].istio_version,
        "1.28.1-patch0"
    );
    // Its settings cannot change while the upgrade is unfinished (c1 would move back a version).
    let current = jobs.current_settings(&base).await.expect("current");
    let mut change = current.clone();
    change.settings.scaling_profile = Some("Default".into());
    let refused = jobs
        .change_spec(&change)
        .await
        .expect_err("upgrade unfinished");
    assert!(
        refused
            .to_string()
            .contains(&format!("job {id} upgrading this mesh is failed")),
        "{refused}"
    );
    // Upgraded again once the fault is gone; the failed job is then stale and its retry refused.
    let (spec3, key) = jobs
        .upgrade_spec(&request("1.28.2", &["c1", "c2", "c3"]))
        .await
        .expect("spec");
    let again = jobs
        .start_upgrade(spec3, key, "alice")
        .await
        .expect("upgrade");
    assert_eq!(wait_finished(&store, &again, 300).await, "succeeded");
    let stale = jobs.retry(&id, None, "alice").await.expect_err("stale");
    assert!(
        stale.to_string().contains(&format!(
            "job {again} (upgrade) changed c1, c2, c3 after job {id} was planned"
        )),
        "{stale}"
    );
    assert_eq!(smc_version("c3").await, "1.28.2");

    // The operator's chart moves the same way, alone this time.
    super::operator::upgrade_the_operator(&store, &registry, &jobs, &base).await;

    // Grown after all that: c4 joins with what the mesh runs now — the version of its last upgrade, the
    // settings changed since its setup, the rotated root and the operator chart it moved to — and is linked
    // both ways (to c3 over its NodePort).
    let mesh = jobs.meshes().await.expect("meshes").remove(0);
    let grow = app::model::GrowRequest {
        mesh: mesh.job_id.clone(),
        clusters: vec![name("c4")],
        links: app::model::GrowLinks::BothWays,
        override_reason: None,
    };
    let (spec, key) = jobs.grow_spec(&grow).await.expect("spec");
    let id = jobs.start_setup(spec, key, "alice").await.expect("grow");
    assert_eq!(
        wait_finished(&store, &id, 300).await,
        "succeeded",
        "{:?}",
        store.job_events(&id, 0).await
    );
    assert_eq!(smc_version("c4").await, "1.28.2");
    assert_eq!(super::change::scaling_profile("c4").await, "Large");
    // What c2 alone sets (an istiod variable) stays c2's.
    let values = super::change::field(
        "c4",
        "configmap",
        "gloo-mesh",
        "gloo-extensions-config",
        "{.data.values\\.istiod}",
    )
    .await;
    assert!(!values.contains("PILOT_TRACE_SAMPLING"), "{values}");
    assert_eq!(root_fingerprint("c4").await, root_fingerprint("c1").await);
    assert_eq!(
        super::operator::release("c4").await,
        super::operator::release("c1").await
    );
    let c4 = gateways("c4").await;
    for peer in ["c1", "c2", "c3"] {
        assert!(c4.contains(&format!("istio-remote-peer-{peer}")), "{c4}");
        assert!(
            gateways(peer).await.contains("istio-remote-peer-c4"),
            "{peer} reaches c4"
        );
    }
    let mesh = jobs.meshes().await.expect("meshes").remove(0);
    assert_eq!(mesh.members, ["c1", "c2", "c3", "c4"]);
    assert_eq!(mesh.istio_version, "1.28.2");
}

/// `cluster`'s `cacerts` key `key`, decoded.
async fn cacerts_pem(context: &str, key: &str) -> String {
    let b64 = kubectl_ok(
        context,
        &[
            "get",
            "secret",
            "cacerts",
            "-n",
            "istio-system",
            "-o",
            &format!("jsonpath={{.data.{}}}", key.replace('.', "\\.")),
        ],
        None,
    )
    .await;
    use base64::Engine;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .expect("base64"),
    )
    .expect("pem")
}

async fn istiod_pods(context: &str) -> String {
    kubectl_ok(
        context,
        &[
            "get",
            "pods",
            "-n",
            "istio-system",
            "-l",
            "app=istiod",
            "-o",
            "jsonpath={.items[*].metadata.uid}",
        ],
        None,
    )
    .await
}

/// The uids of a cluster's ztunnel and east-west gateway pods.
async fn data_plane_pods(context: &str) -> String {
    let mut out = vec![];
    for (ns, selector) in [
        ("istio-system", "app=ztunnel"),
        (
            "istio-eastwest",
            "gateway.networking.k8s.io/gateway-name=istio-eastwest",
        ),
    ] {
        out.push(
            kubectl_ok(
                context,
                &[
                    "get",
                    "pods",
                    "-n",
                    ns,
                    "-l",
                    selector,
                    "-o",
                    "jsonpath={.items[*].metadata.uid}",
                ],
                None,
            )
            .await,
        );
    }
    out.join(" ").trim().to_string()
}

async fn reissue_one_intermediate(
    store: &Store,
    registry: &Registry,
    jobs: &Jobs,
    cluster: &ClusterName,
) {
    let c = cluster.as_str();
    let outside = jobs
        .reissue_spec(&ClusterName::new("nowhere").expect("name"))
        .await
        .expect_err("in no mesh");
    assert!(outside.to_string().contains("in no mesh"), "{outside}");

    let plan = jobs.reissue_plan(cluster).await.expect("plan");
    assert_eq!(plan.error, None, "{plan:?}");
    let secret = &plan.steps[0].objects[0];
    assert_eq!(
        (secret.kind.as_str(), secret.name.as_str()),
        ("Secret", "cacerts")
    );
    assert_eq!(secret.change, "update");
    let detail = secret.detail.clone().unwrap_or_default();
    assert!(detail.contains("valid until"), "{detail}");
    assert!(
        !secret.yaml.contains("BEGIN"),
        "no key material in a plan: {}",
        secret.yaml
    );
    let restart = &plan.steps[1].objects[0];
    assert_eq!(
        (restart.kind.as_str(), restart.change.as_str()),
        ("Deployment", "update"),
        "{restart:?}"
    );
    assert!(
        restart
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("restartedAt"),
        "{restart:?}"
    );
    assert!(
        plan.steps[1]
            .commands
            .iter()
            .any(|l| l.contains("rollout restart")),
        "{plan:?}"
    );

    let (cert, root, pods) = (
        cacerts_pem(c, "ca-cert.pem").await,
        cacerts_pem(c, "root-cert.pem").await,
        istiod_pods(c).await,
    );
    let spec = jobs.reissue_spec(cluster).await.expect("spec");
    let id = jobs.start_reissue(spec, "alice").await.expect("start");
    // The console running it stops once istiod's restart has begun (the new intermediate written); another
    // one finishes it without issuing a second intermediate.
    crash_and_resume(store, registry, jobs, &id, &format!("{c}/reissue:restart")).await;
    let steps = store.job_steps(&id).await.expect("steps");
    let keys: Vec<String> = steps
        .iter()
        .map(|s| format!("{}/{}/{}", s.cluster, s.step, s.state))
        .collect();
    assert_eq!(
        keys,
        [
            format!("{c}/reissue:cacerts/done"),
            format!("{c}/reissue:restart/done"),
            format!("{c}/reissue:verify/done")
        ]
    );
    assert_ne!(
        cacerts_pem(c, "ca-cert.pem").await,
        cert,
        "a new intermediate"
    );
    assert_eq!(cacerts_pem(c, "root-cert.pem").await, root, "the same root");
    let now = istiod_pods(c).await;
    assert!(
        !now.is_empty() && now.split(' ').all(|uid| !pods.contains(uid)),
        "istiod restarted: {pods} → {now}"
    );
}

async fn rotate_the_root(store: &Store, registry: &Registry, jobs: &Jobs, mesh_id: &str) {
    let members = ["c1", "c2", "c3"];
    let old = jobs.root_summary().await.expect("root").expect("a root");
    let bad = jobs.rotate_spec("../x").await.expect_err("not an id");
    assert!(bad.to_string().contains("letters, digits"), "{bad}");

    let plan = jobs.rotate_plan(mesh_id).await.expect("plan");
    assert_eq!(
        plan.iter().map(|p| p.cluster.as_str()).collect::<Vec<_>>(),
        members
    );
    for p in &plan {
        assert_eq!(p.error, None, "{p:?}");
        assert_eq!(p.steps.len(), 3, "three passes: {p:?}");
        for step in &p.steps {
            let secret = &step.objects[0];
            assert_eq!(secret.name, "cacerts");
            assert!(!secret.yaml.contains("BEGIN"), "no key material in a plan");
            assert!(
                step.objects[1..].iter().any(|o| o.kind == "Deployment"
                    && o.detail
                        .as_deref()
                        .unwrap_or_default()
                        .contains("restartedAt")),
                "{step:?}"
            );
            assert!(step.commands.iter().any(|c| c.contains("rollout restart")));
        }
    }
    let before: Vec<(String, String, String)> = {
        let mut v = vec![];
        for c in members {
            v.push((
                cacerts_pem(c, "ca-cert.pem").await,
                istiod_pods(c).await,
                data_plane_pods(c).await,
            ));
        }
        v
    };

    let spec = jobs.rotate_spec(mesh_id).await.expect("spec");
    let id = jobs.start_rotation(spec, "alice").await.expect("start");
    // While it runs (or after it failed), a second rotation of the mesh is refused.
    let again = jobs.rotate_spec(mesh_id).await.expect_err("one at a time");
    assert!(again.to_string().contains(&id), "{again}");
    // The console stops in the middle of the second pass (its task killed, as by a crash): another console
    // takes the job over once the lease runs out and finishes it; what was done is not done again.
    crash_and_resume(
        store,
        registry,
        jobs,
        &id,
        &format!("{}/rotate:issue", members[0]),
    )
    .await;
    let steps = store.job_steps(&id).await.expect("steps");
    let keys: Vec<String> = steps
        .iter()
        .map(|s| format!("{}/{}", s.cluster, s.step))
        .collect();
    let mut want = vec![];
    for pass in ["trust", "issue", "drop"] {
        for c in members {
            want.push(format!("{c}/rotate:{pass}"));
        }
        want.push(format!("*/rotate:verify-{pass}"));
    }
    assert_eq!(keys, want);
    let new = jobs.root_summary().await.expect("root").expect("a root");
    assert_ne!(new.fingerprint, old.fingerprint, "the new root is in use");
    let (old_short, new_short) = (
        mesh::ca::short(&old.fingerprint),
        mesh::ca::short(&new.fingerprint),
    );
    let summary = |key: &str| {
        steps
            .iter()
            .find(|s| s.step == key)
            .and_then(|s| s.message.clone())
            .unwrap_or_default()
    };
    // The midpoint's checks saw both fingerprints; the end's only the new.
    let mid = summary("rotate:verify-issue");
    assert!(
        mid.contains(&old_short) && mid.contains(&new_short),
        "{mid}"
    );
    let end = summary("rotate:verify-drop");
    assert!(
        end.contains(&new_short) && !end.contains(&old_short),
        "{end}"
    );
    for (c, (cert, pods, data_plane)) in members.iter().zip(&before) {
        assert_eq!(
            mesh::ca::fingerprints(&cacerts_pem(c, "root-cert.pem").await),
            std::slice::from_ref(&new.fingerprint),
            "{c} trusts only the new root"
        );
        assert_eq!(
            root_fingerprint(c).await,
            new.fingerprint,
            "{c}'s istiod serves it"
        );
        assert_ne!(
            &cacerts_pem(c, "ca-cert.pem").await,
            cert,
            "{c}: a new intermediate"
        );
        let now = istiod_pods(c).await;
        assert!(
            now.split(' ').all(|uid| !pods.contains(uid)),
            "{c}'s istiod restarted"
        );
        // ztunnel and the east-west gateway too: their certificates and trust bundle are the new ones.
        let now = data_plane_pods(c).await;
        assert!(
            !now.is_empty() && now.split(' ').all(|uid| !data_plane.contains(uid)),
            "{c}'s data plane restarted: {data_plane} → {now}"
        );
    }
    // The mesh's day-two flows now use the new root: a re-issue plans from it.
    let plan = jobs
        .reissue_plan(&ClusterName::new("c2").expect("name"))
        .await
        .expect("plan");
    let detail = plan.steps[0].objects[0].detail.clone().unwrap_or_default();
    assert!(detail.contains(&new_short), "{detail}");
}
