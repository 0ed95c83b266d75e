//! The life of one running mesh after its setup, in one test: upgrades rolled out one cluster at a time (a
//! console stopping halfway, drift re-applied), an intermediate reissued and the root rotated (`super::trust`),
//! its settings changed, an upgrade stopped at the first cluster that fails, the operator's chart moved, and a
//! cluster grown into it with all of that.

use super::trust::{reissue_one_intermediate, rotate_the_root};
use super::*;

pub(in super::super) async fn smc_version(context: &str) -> String {
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
    super::super::change::change_settings(&store, &registry, &jobs, &base).await;

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
        super::super::change::scaling_profile("c1").await,
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
    super::super::operator::upgrade_the_operator(&store, &registry, &jobs, &base).await;

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
    assert_eq!(super::super::change::scaling_profile("c4").await, "Large");
    // What c2 alone sets (an istiod variable) stays c2's.
    let values = super::super::change::field(
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
        super::super::operator::release("c4").await,
        super::super::operator::release("c1").await
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
