//! Day two — a running mesh's settings changed against the test world: the form starts from what the mesh
//! runs; bad, empty and identity-breaking changes are refused; the plan diffs each changing cluster; the job
//! changes one cluster at a time, links the peers of a cluster whose east-west gateway changed again, and the
//! mesh's later flows start from the new settings.

use super::*;
use app::model::{ClusterSettings, EastWest};

/// `jsonpath` of one object of `context`.
pub(super) async fn field(context: &str, kind: &str, ns: &str, name: &str, path: &str) -> String {
    kubectl_ok(
        context,
        &[
            "get",
            kind,
            "-n",
            ns,
            name,
            "-o",
            &format!("jsonpath={path}"),
        ],
        None,
    )
    .await
}

pub(super) async fn scaling_profile(context: &str) -> String {
    field(
        context,
        "servicemeshcontroller",
        "gloo-mesh",
        "managed-istio",
        "{.spec.scalingProfile}",
    )
    .await
}

/// Changes the settings of the running mesh `mesh_id` (c1–c3, manual full mesh, at a version that has
/// NodePort peering), leaving c3 on NodePort and every control plane on the Large profile.
pub(super) async fn change_settings(
    store: &Store,
    registry: &Registry,
    jobs: &Jobs,
    mesh_id: &str,
) {
    let name = |n: &str| ClusterName::new(n).expect("name");
    let current = jobs.current_settings(mesh_id).await.expect("current");
    assert_eq!(current.mesh, mesh_id);
    assert_eq!(current.eastwest, EastWest::LoadBalancer);
    assert!(
        current.per_cluster.is_empty(),
        "every member runs the same settings: {current:#?}"
    );

    // Nothing changed, a bad field, a new trust domain: refused, naming why.
    let nothing = jobs.change_spec(&current).await.expect_err("same settings");
    assert!(nothing.to_string().contains("nothing changes"), "{nothing}");
    let mut bad = current.clone();
    bad.settings.scaling_profile = Some("Huge".into());
    let bad = jobs.change_spec(&bad).await.expect_err("bad profile");
    assert!(bad.to_string().contains("shared.scaling_profile"), "{bad}");
    let mut domain = current.clone();
    domain.per_cluster.insert(
        name("c2"),
        ClusterSettings {
            mesh: app::model::MeshSettings {
                trust_domain: Some("elsewhere.example".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let domain = jobs.change_spec(&domain).await.expect_err("trust domain");
    assert!(
        domain
            .to_string()
            .contains("c2: the trust domain cannot change"),
        "{domain}"
    );

    // Every control plane on the Large profile, one more istiod variable in c2, c3 reached over NodePort.
    let mut change = current.clone();
    change.settings.scaling_profile = Some("Large".into());
    change.per_cluster.insert(
        name("c2"),
        ClusterSettings {
            mesh: app::model::MeshSettings {
                istiod_env: [("PILOT_TRACE_SAMPLING".to_string(), "1.0".to_string())].into(),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    change.per_cluster.insert(
        name("c3"),
        ClusterSettings {
            eastwest: Some(EastWest::NodePort),
            ..Default::default()
        },
    );
    let plan = jobs.change_plan(&change).await.expect("plan");
    let order: Vec<&str> = plan.iter().map(|p| p.cluster.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"]);
    let titles: Vec<&str> = plan[2].steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(
        titles[2].contains("c1, c2") && titles[2].starts_with("Link its peers again"),
        "{titles:?}"
    );
    let object = |p: usize, s: usize, kind: &str| {
        plan[p].steps[s]
            .objects
            .iter()
            .find(|o| o.kind == kind)
            .unwrap_or_else(|| panic!("{kind} in {:#?}", plan[p]))
            .clone()
    };
    let smc = object(0, 0, "ServiceMeshController");
    assert_eq!(smc.change, "update");
    assert!(
        smc.detail
            .as_deref()
            .unwrap_or_default()
            .contains("+  scalingProfile: Large"),
        "{smc:?}"
    );
    let env = object(1, 0, "ConfigMap");
    assert!(
        env.detail
            .as_deref()
            .unwrap_or_default()
            .contains("PILOT_TRACE_SAMPLING"),
        "{env:?}"
    );
    let gw = object(2, 1, "Gateway");
    assert_eq!(gw.change, "update");
    assert!(
        gw.detail
            .as_deref()
            .unwrap_or_default()
            .contains("NodePort"),
        "{gw:?}"
    );
    assert!(
        plan[2].steps[2]
            .commands
            .iter()
            .any(|c| c.contains("istioctl multicluster link --from c1 --to c3")),
        "{:?}",
        plan[2].steps[2]
    );
    let before_gateways = mesh_peer_gateways("c1").await;

    let (spec, key) = jobs.change_spec(&change).await.expect("spec");
    let id = jobs.start_change(spec, key, "alice").await.expect("start");
    // While it runs, a second change is refused.
    let again = jobs.change_spec(&change).await.expect_err("running");
    assert!(
        again
            .to_string()
            .contains("changing this mesh's settings now"),
        "{again}"
    );
    // The console running it stops while c2's control plane changes (c1 done); another one finishes it.
    crash_and_resume(store, registry, jobs, &id, "c2/change:control-plane").await;
    let steps = store.job_steps(&id).await.expect("steps");
    let keys: Vec<String> = steps
        .iter()
        .map(|s| format!("{}/{}", s.cluster, s.step))
        .collect();
    assert_eq!(
        keys,
        [
            "c1/change:control-plane",
            "c1/change:verify",
            "c2/change:control-plane",
            "c2/change:verify",
            "c3/change:control-plane",
            "c3/change:east-west",
            "c3/change:relink",
            "c3/change:verify"
        ]
    );
    // One cluster at a time: each starts once the one before it passed its checks.
    let first = |c: &str| {
        steps
            .iter()
            .find(|s| s.cluster == c)
            .and_then(|s| s.started_at)
    };
    let last = |c: &str| {
        steps
            .iter()
            .rev()
            .find(|s| s.cluster == c)
            .and_then(|s| s.finished_at)
    };
    assert!(
        first("c2") >= last("c1") && first("c3") >= last("c2"),
        "{steps:?}"
    );

    // In the clusters: the profile everywhere, c2's variable, c3's gateway and its peers' gateways for it.
    for c in ["c1", "c2", "c3"] {
        assert_eq!(scaling_profile(c).await, "Large", "{c}");
    }
    let values = field(
        "c2",
        "configmap",
        "gloo-mesh",
        "gloo-extensions-config",
        "{.data.values\\.istiod}",
    )
    .await;
    assert!(values.contains("PILOT_TRACE_SAMPLING"), "{values}");
    let ew = field(
        "c3",
        "gateways.gateway.networking.k8s.io",
        "istio-eastwest",
        "istio-eastwest",
        "{.metadata.annotations}",
    )
    .await;
    assert!(ew.contains("NodePort"), "c3's gateway: {ew}");
    for from in ["c1", "c2"] {
        let peer = field(
            from,
            "gateways.gateway.networking.k8s.io",
            "istio-eastwest",
            "istio-remote-peer-c3",
            "{.metadata.annotations}",
        )
        .await;
        assert!(
            peer.contains("\"peering.solo.io/preferred-data-plane-service-type\":\"NodePort\""),
            "{from}'s peer gateway for c3: {peer}"
        );
    }
    assert_eq!(
        mesh_peer_gateways("c1").await.len(),
        before_gateways.len(),
        "no peer gateway added or lost"
    );

    // The mesh runs the new settings now: the form starts from them, nothing drifted, the same change again
    // changes nothing.
    let now = jobs.current_settings(mesh_id).await.expect("current");
    assert_eq!(now.settings.scaling_profile.as_deref(), Some("Large"));
    assert_eq!(
        now.per_cluster.get(&name("c3")).and_then(|c| c.eastwest),
        Some(EastWest::NodePort)
    );
    assert_eq!(
        now.per_cluster
            .get(&name("c2"))
            .and_then(|c| c.mesh.istiod_env.get("PILOT_TRACE_SAMPLING"))
            .map(String::as_str),
        Some("1.0")
    );
    for c in ["c1", "c2", "c3"] {
        assert_eq!(
            jobs.drift(&name(c)).await.expect("drift").drifted(),
            0,
            "{c}"
        );
    }
    let same = jobs.change_spec(&now).await.expect_err("applied already");
    assert!(same.to_string().contains("nothing changes"), "{same}");

    // A change stopped halfway by an operator fault in c2: c1 runs the Demo profile, c3 keeps Large.
    set_faults("c2", &[("operator-fail", "InstallFailed")]).await;
    let mut demo = now.clone();
    demo.settings.scaling_profile = Some("Demo".into());
    let (spec, key) = jobs.change_spec(&demo).await.expect("spec");
    let failed = jobs.start_change(spec, key, "alice").await.expect("start");
    assert_eq!(wait_finished(store, &failed, 300).await, "failed");
    set_faults("c2", &[]).await;
    assert_eq!(scaling_profile("c1").await, "Demo");
    assert_eq!(scaling_profile("c3").await, "Large");
    let events: Vec<String> = store
        .job_events(&failed, 0)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("the change stopped at c2") && e.contains("c3 keeps its settings")),
        "{events:?}"
    );
    // Meanwhile a re-apply of c1 would put Large back behind the job's back: refused, naming the job.
    let reapply = jobs
        .reapply_spec(&name("c1"))
        .await
        .expect_err("change unfinished");
    assert!(
        reapply
            .to_string()
            .contains(&format!("job {failed} (change-settings)")),
        "{reapply}"
    );
    // Going back to what the mesh ran before is a change too: every cluster the stopped job planned is in it.
    let back = jobs.change_plan(&now).await.expect("plan back");
    let order: Vec<&str> = back.iter().map(|p| p.cluster.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"]);
    let (spec, key) = jobs.change_spec(&now).await.expect("spec back");
    let id = jobs
        .start_change(spec, key, "alice")
        .await
        .expect("start back");
    assert_eq!(wait_finished(store, &id, 300).await, "succeeded");
    for c in ["c1", "c2", "c3"] {
        assert_eq!(scaling_profile(c).await, "Large", "{c}");
    }
    // The stopped job is stale now: retrying it would put Demo back.
    let stale = jobs.retry(&failed, None, "alice").await.expect_err("stale");
    assert!(
        stale
            .to_string()
            .contains(&format!("job {id} (change-settings)")),
        "{stale}"
    );
}

/// The names of the peer gateways `context` holds.
async fn mesh_peer_gateways(context: &str) -> Vec<String> {
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
    .await
    .lines()
    .filter(|l| l.contains("istio-remote-peer-"))
    .map(str::to_string)
    .collect()
}
