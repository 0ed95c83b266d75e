//! Tests of the test world: the clusters `testenv/up` starts, the limited user's RBAC, and the simulator
//! answering the guide's own YAML (applied with kubectl and helm, as a person following the guide would)
//! with the conditions mesh-spec.md describes, including every fault knob.
//!
//! They share clusters c1–c3 and run one at a time (WORLD_LOCK); each resets the clusters it uses first.
//! Here: the clusters and the limited user; the control plane the guide installs (`install`); east-west
//! gateways and peering (`peering`); the fault knobs (`faults`).

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Service};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};
use testworld::*;

mod faults;
mod install;
mod peering;

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
