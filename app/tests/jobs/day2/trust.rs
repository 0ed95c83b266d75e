//! One cluster's intermediate reissued and the mesh's root rotated, checked in the clusters: `cacerts`,
//! istiod and the data plane restarted.

use super::*;

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

pub(super) async fn reissue_one_intermediate(
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

pub(super) async fn rotate_the_root(
    store: &Store,
    registry: &Registry,
    jobs: &Jobs,
    mesh_id: &str,
) {
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
