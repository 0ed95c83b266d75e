//! Preflight against the test world: a clean cluster passes; a view-only user fails with the missing verbs
//! listed; a cluster without load-balancer addresses fails with the NodePort / override advice; a license
//! secret that does not exist fails; the probe leaves nothing behind.

use std::time::Duration;

use mesh::checks::Status;
use mesh::ids::{ClusterName, NetworkName};
use mesh::objects::DataPlane;
use mesh::operator;
use mesh::preflight;
use mesh::setup::{ClusterSetup, Peering, Settings, Target};
use testworld::*;

async fn target(ctx: &str) -> Target {
    let text = std::fs::read_to_string(kubeconfig_path()).expect("kubeconfig");
    Target::from_kubeconfig(&text, ctx).await.expect("target")
}

fn settings(license: operator::License) -> Settings {
    Settings {
        istio_version: ISTIO_VERSION.into(),
        data_plane: DataPlane::LoadBalancer,
        peering: Peering::Manual { pairs: vec![] },
        operator: operator::Install {
            chart: operator::Chart::default(),
            license,
            watch_namespaces: vec![],
            helm: bin("helm"),
        },
    }
}

fn setup_for(ctx: &str) -> ClusterSetup {
    let name = ClusterName::new(ctx).expect("name");
    ClusterSetup::new(name.clone(), NetworkName::from(&name))
}

#[tokio::test]
async fn preflight_passes_a_clean_cluster_and_explains_each_failure() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    let s = settings(operator::License::Key("k".into()));
    let t = target("c1").await;
    // Two preflights of the same cluster at once (two operators, two tabs): each has its own probe, neither
    // deletes the other's, both pass.
    let c1 = setup_for("c1");
    let (p, p2) = tokio::join!(
        preflight::cluster(&t, &c1, &s, Duration::from_secs(20)),
        preflight::cluster(&t, &c1, &s, Duration::from_secs(20))
    );
    assert!(!p.blocked(), "{p:#?}");
    assert!(!p2.blocked(), "{p2:#?}");
    assert_eq!(p.get("permissions").map(|f| f.status), Some(Status::Pass));
    for p in [&p, &p2] {
        assert_eq!(
            p.get("load-balancer").map(|f| f.status),
            Some(Status::Pass),
            "{p:#?}"
        );
    }
    // The probe Services are gone again.
    let out = kubectl(
        "c1",
        &[
            "get",
            "service",
            "-n",
            "istio-eastwest",
            "-l",
            preflight::PROBE_LABEL,
            "-o",
            "name",
        ],
        None,
    )
    .await;
    assert!(
        out.ok && out.stdout.trim().is_empty(),
        "{} {}",
        out.stdout,
        out.stderr
    );

    // The fake nodes are regular: Istio can run on them.
    assert_eq!(
        p.get("nodes").map(|f| f.status),
        Some(Status::Pass),
        "{p:#?}"
    );
    // A Fargate node joins: said by name, with what to do; the other nodes still run the mesh.
    let fargate = "apiVersion: v1\nkind: Node\nmetadata:\n  name: fargate-ip-10-0-1-7\n  labels:\n    eks.amazonaws.com/compute-type: fargate\n";
    let out = kubectl("c1", &["apply", "--server-side", "-f", "-"], Some(fargate)).await;
    assert!(out.ok, "{}", out.stderr);
    let p = preflight::cluster(&t, &c1, &s, Duration::from_secs(20)).await;
    let _ = kubectl("c1", &["delete", "node", "fargate-ip-10-0-1-7"], None).await;
    let nodes = p.get("nodes").expect("nodes");
    assert_eq!(nodes.status, Status::Warn, "{nodes:?}");
    assert!(
        nodes.message.contains("fargate-ip-10-0-1-7 (Fargate)"),
        "{}",
        nodes.message
    );
    assert!(
        nodes
            .remediation
            .as_deref()
            .is_some_and(|r| r.contains("regular nodes")),
        "{nodes:?}"
    );
    assert!(!p.blocked(), "a warning does not block: {p:#?}");

    // A view-only user: the verbs to grant are listed.
    let limited = target("c1-limited").await;
    let p = preflight::cluster(
        &limited,
        &setup_for("c1-limited"),
        &s,
        Duration::from_secs(5),
    )
    .await;
    let perms = p.get("permissions").expect("permissions");
    assert_eq!(perms.status, Status::Fail);
    assert!(
        perms.message.contains("create namespaces"),
        "{}",
        perms.message
    );
    assert!(
        perms.message.contains("servicemeshcontrollers"),
        "{}",
        perms.message
    );
    assert!(perms.remediation.is_some());

    // No load-balancer controller.
    set_faults("c1", &[("lb-never-assigned", "true")]).await;
    let p = preflight::cluster(&t, &setup_for("c1"), &s, Duration::from_secs(5)).await;
    let lb = p.get("load-balancer").expect("lb");
    assert_eq!(lb.status, Status::Fail);
    assert!(
        lb.remediation
            .as_deref()
            .is_some_and(|r| r.contains("NodePort")),
        "{lb:?}"
    );
    set_faults("c1", &[]).await;

    // A license secret that is not there.
    let s = settings(operator::License::SecretRef(
        "gloo-mesh/license-keys".into(),
    ));
    let p = preflight::cluster(&t, &setup_for("c1"), &s, Duration::from_secs(5)).await;
    let lic = p.get("license").expect("license");
    assert_eq!(lic.status, Status::Fail);
    assert!(lic.message.contains("does not exist"), "{lic:?}");
}

#[tokio::test]
async fn automatic_peering_needs_the_guides_gloo_platform_flags_and_says_the_command() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let (t1, t2) = (target("c1").await, target("c2").await);
    let mut s = settings(operator::License::Key("k".into()));
    let manual = preflight::cluster(&t1, &setup_for("c1"), &s, Duration::from_secs(5)).await;
    assert_eq!(
        manual.get("automatic-peering"),
        None,
        "manual linking needs no management plane"
    );
    s.peering = Peering::Automatic {
        management: ClusterName::new("c1").expect("c1"),
    };
    let peering =
        |p: &preflight::ClusterPreflight| p.get("automatic-peering").cloned().expect("finding");

    // Nothing of Gloo Platform installed: both clusters fail, before anything is changed, saying what is missing.
    let p = peering(&preflight::cluster(&t1, &setup_for("c1"), &s, Duration::from_secs(5)).await);
    assert_eq!(p.status, Status::Fail, "{p:?}");
    assert!(p.message.contains("c1 is the management cluster"), "{p:?}");
    assert!(
        p.message
            .contains("no deployed gloo-platform-crds release in gloo-mesh"),
        "{p:?}"
    );
    let p = peering(&preflight::cluster(&t2, &setup_for("c2"), &s, Duration::from_secs(5)).await);
    assert_eq!(p.status, Status::Fail, "{p:?}");
    assert!(p.message.contains("c2 is a workload cluster"), "{p:?}");
    assert!(
        p.remediation
            .as_deref()
            .is_some_and(|r| r.contains("glooAgent.enabled=true")),
        "{p:?}"
    );

    // The CRD releases as installed before automatic peering (the flags off): the guide's exact upgrade commands.
    install_platform_crds("c1", &[]).await;
    install_platform_crds("c2", &[]).await;
    let p = peering(&preflight::cluster(&t1, &setup_for("c1"), &s, Duration::from_secs(5)).await);
    assert_eq!(p.status, Status::Fail, "{p:?}");
    assert!(
        p.message.contains("gloo-platform-crds lacks featureGates.ConfigDistribution=true and installEnterpriseCrds=true"),
        "{p:?}"
    );
    let fix = p.remediation.clone().unwrap_or_default();
    assert!(
        fix.contains(
            "helm get values gloo-platform-crds -n gloo-mesh -o yaml --kube-context c1 > c1-gloo-platform-crds.yaml && \
             helm upgrade gloo-platform-crds gloo-platform/gloo-platform-crds --kube-context c1 --namespace gloo-mesh \
             -f c1-gloo-platform-crds.yaml --set featureGates.ConfigDistribution=true --set installEnterpriseCrds=true"
        ),
        "{fix}"
    );
    let p = peering(&preflight::cluster(&t2, &setup_for("c2"), &s, Duration::from_secs(5)).await);
    assert!(
        p.message
            .contains("gloo-platform-crds lacks installEnterpriseCrds=true;"),
        "{p:?}"
    );
    assert!(
        !p.message.contains("ConfigDistribution"),
        "a workload cluster needs no feature gate: {p:?}"
    );

    // The platform team runs the guide's three upgrades and installs the agents: both pass, naming the revisions.
    install_management_plane("c1", &["c2"]).await;
    let p = peering(&preflight::cluster(&t1, &setup_for("c1"), &s, Duration::from_secs(5)).await);
    assert_eq!(p.status, Status::Pass, "{p:?}");
    assert!(
        p.message
            .contains("gloo-platform-crds revision 2 (gloo-platform-crds-2.10.0)"),
        "{p:?}"
    );
    let p = peering(&preflight::cluster(&t2, &setup_for("c2"), &s, Duration::from_secs(5)).await);
    assert_eq!(p.status, Status::Pass, "{p:?}");
    reset_all(&["c1", "c2"]).await;
}
