//! The setup engine against the test world (3 real API servers + the simulator): every step of the guide run
//! by Meshdeck, to all checks green, for LoadBalancer and NodePort peering, manual and automatic; re-running a
//! finished setup changes nothing; simulator faults surface as the right failed step or check, with advice.

use std::time::Duration;

use mesh::checks::{CheckId, Status};
use mesh::ids::{ClusterName, NetworkName};
use mesh::objects::DataPlane;
use mesh::operator;
use mesh::remove::{self, Removal};
use mesh::setup::{self, ClusterSetup, Peering, Settings, Step, Target};
use testworld::*;

async fn target(ctx: &str) -> Target {
    let text = std::fs::read_to_string(kubeconfig_path()).expect("kubeconfig");
    Target::from_kubeconfig(&text, ctx).await.expect("target")
}

fn settings(data_plane: DataPlane, peering: Peering) -> Settings {
    Settings {
        istio_version: ISTIO_VERSION.into(),
        data_plane,
        peering,
        operator: operator::Install {
            chart: operator::Chart {
                reference: repo_path("testenv/charts/gloo-operator")
                    .display()
                    .to_string(),
                version: None,
            },
            license: operator::License::Key("meshdeck-test-license".into()),
            watch_namespaces: vec![],
            helm: bin("helm"),
        },
    }
}

fn cluster(ctx: &str) -> ClusterSetup {
    let name = ClusterName::new(ctx).expect("name");
    ClusterSetup::new(name.clone(), NetworkName::from(&name))
}

fn quiet(_: String) {}

/// Runs every per-cluster step on every cluster (clusters in parallel), returning the outcomes.
async fn run_all(
    targets: &[Target],
    settings: &Settings,
    root: &mesh::ca::RootCa,
) -> Vec<(String, Step, setup::Outcome)> {
    let runs = targets.iter().map(|t| async move {
        let mut out = vec![];
        let c = cluster(t.name.as_str());
        for step in Step::ALL {
            let o = setup::run_step(step, t, &c, settings, root, &quiet)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            out.push((t.name.to_string(), step, o));
        }
        out
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn link_pairs(targets: &[Target], data_plane: DataPlane) {
    for (a, b) in setup::full_mesh(&targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>()) {
        let from = targets.iter().find(|t| t.name == a).expect("from");
        let to = targets.iter().find(|t| t.name == b).expect("to");
        setup::link(from, to, data_plane)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every cluster holds peer gateways (full mesh).
fn every(targets: &[Target]) -> std::collections::BTreeSet<ClusterName> {
    targets.iter().map(|t| t.name.clone()).collect()
}

async fn all_green(targets: &[Target]) {
    let results = setup::verify(targets, &every(targets), Duration::from_secs(90), &quiet).await;
    for c in &results {
        assert_eq!(
            c.worst(),
            Status::Pass,
            "{}",
            mesh::checks::to_text(std::slice::from_ref(c))
        );
    }
}

/// Every object Meshdeck wrote, with its resourceVersion, to show a re-run changes nothing.
async fn versions(ctx: &str) -> Vec<String> {
    let mut out = vec![];
    for (kind, ns) in [
        ("secret/cacerts", "istio-system"),
        ("configmap/gloo-extensions-config", "gloo-mesh"),
        ("servicemeshcontroller/managed-istio", "gloo-mesh"),
        ("secret/meshdeck-license", "gloo-mesh"),
    ] {
        out.push(
            kubectl_ok(
                ctx,
                &[
                    "get",
                    kind,
                    "-n",
                    ns,
                    "-o",
                    "jsonpath={.metadata.resourceVersion}",
                ],
                None,
            )
            .await,
        );
    }
    out.push(
        kubectl_ok(
            ctx,
            &[
                "get",
                "gateways",
                "-n",
                "istio-eastwest",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}",
            ],
            None,
        )
        .await,
    );
    out.push(
        kubectl_ok(
            ctx,
            &[
                "get",
                "secrets",
                "-n",
                "gloo-mesh",
                "-l",
                "owner=helm",
                "-o",
                "name",
            ],
            None,
        )
        .await,
    );
    out.push(
        kubectl_ok(
            ctx,
            &[
                "get",
                "crd",
                "gateways.gateway.networking.k8s.io",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
            None,
        )
        .await,
    );
    out
}

#[tokio::test]
async fn three_clusters_set_up_and_linked_by_meshdeck_pass_every_check_and_a_rerun_changes_nothing()
{
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2", "c3"]).await;
    let targets = vec![target("c1").await, target("c2").await, target("c3").await];
    let names: Vec<ClusterName> = targets.iter().map(|t| t.name.clone()).collect();
    let s = settings(
        DataPlane::LoadBalancer,
        Peering::Manual {
            pairs: setup::full_mesh(&names),
        },
    );
    let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");

    // Before linking, the checks say what is missing, with what to do.
    let first = run_all(&targets, &s, &root).await;
    // (The Gateway API CRDs outlive a reset of the test world, so that step may have nothing to do.)
    assert!(
        first
            .iter()
            .all(|(_, step, o)| o.changed || *step == Step::GatewayApi),
        "a fresh cluster gets every step: {first:?}"
    );
    let before = setup::verify(&targets, &every(&targets), Duration::from_secs(0), &quiet).await;
    let peers = before[0].get(CheckId::Peers).expect("peers");
    assert_eq!(
        (peers.status, peers.message.as_str()),
        (Status::Fail, "no configured peers")
    );
    assert!(
        peers
            .remediation
            .as_deref()
            .is_some_and(|r| r.contains("Link"))
    );

    link_pairs(&targets, DataPlane::LoadBalancer).await;
    all_green(&targets).await;
    let roots: Vec<_> = futures::future::join_all(["c1", "c2", "c3"].map(root_fingerprint)).await;
    assert!(
        roots
            .iter()
            .all(|r| Some(r.clone()) == mesh::ca::fingerprint(&root.cert_pem))
    );

    // Again, from the start: nothing changes in any cluster.
    let snapshot = futures::future::join_all(["c1", "c2", "c3"].map(versions)).await;
    let second = run_all(&targets, &s, &root).await;
    assert!(second.iter().all(|(_, _, o)| !o.changed), "{second:?}");
    link_pairs(&targets, DataPlane::LoadBalancer).await;
    assert_eq!(
        futures::future::join_all(["c1", "c2", "c3"].map(versions)).await,
        snapshot
    );

    // The plan of a set-up cluster shows nothing to change; the root of trust is not compared (it holds keys).
    let plan = setup::plan_cluster(&targets[0], &cluster("c1"), &s).await;
    for ps in &plan {
        for o in &ps.objects {
            match (&o.kind[..], &o.change) {
                ("Secret", setup::Change::Unknown { .. }) => {}
                (_, setup::Change::Unchanged) => {}
                other => panic!("{:?} {}: {other:?}", ps.step, o.name),
            }
        }
        assert!(!ps.commands.is_empty());
    }
    // A changed setting shows up as a diff of the live object.
    let mut changed = cluster("c1");
    changed.mesh.scaling_profile = Some("Large".into());
    let plan = setup::plan_cluster(&targets[0], &changed, &s).await;
    let smc = plan
        .iter()
        .flat_map(|p| &p.objects)
        .find(|o| o.kind == "ServiceMeshController")
        .expect("smc");
    match &smc.change {
        setup::Change::Update { diff } => {
            assert!(diff.contains("+  scalingProfile: Large"), "{diff}")
        }
        other => panic!("{other:?}"),
    }

    // Removing c3's mesh: its peers' gateways to it go first, then its own objects in the reverse order of
    // the setup (cacerts because asked); a peer gateway someone else made stays and is named; twice is fine.
    kubectl_ok(
        "c3",
        &["apply", "-f", "-"],
        Some(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: istio-remote-peer-by-hand\n  namespace: istio-eastwest\nspec:\n  gatewayClassName: istio-remote\n  addresses:\n  - type: IPAddress\n    value: 192.0.2.9\n  listeners:\n  - name: cross-network\n    port: 15008\n    protocol: HBONE\n    tls:\n      mode: Passthrough\n",
        ),
    )
    .await;
    let found = remove::survey(&targets[2], Removal::PeerGateways, "istio-system")
        .await
        .expect("survey");
    assert!(
        found.contains(&(
            "Gateway".into(),
            "istio-eastwest/istio-remote-peer-by-hand".into(),
            remove::Found::Foreign
        )) && found.contains(&(
            "Gateway".into(),
            "istio-eastwest/istio-remote-peer-c1".into(),
            remove::Found::Ours
        )),
        "{found:?}"
    );
    let options = remove::RemoveOptions {
        cacerts: true,
        gateway_api: false,
    };
    let remove_all = || async {
        let mut changed = false;
        let mut summaries = vec![];
        for peer in &targets[..2] {
            let o = remove::unpeer(peer, &targets[2].name, &quiet)
                .await
                .expect("unpeer");
            changed |= o.changed;
        }
        for step in Removal::steps(options) {
            let o = remove::run(step, &targets[2], "istio-system", &bin("helm"), &quiet)
                .await
                .expect("remove");
            changed |= o.changed;
            summaries.push(o.summary);
        }
        (changed, summaries)
    };
    let (changed, summaries) = remove_all().await;
    assert!(changed);
    assert!(
        summaries[0].contains(
            "left in place (not made by Meshdeck): Gateway istio-eastwest/istio-remote-peer-by-hand"
        ),
        "{summaries:?}"
    );
    assert!(
        get_json(
            "c3",
            &gateway_ar(),
            "istio-eastwest",
            "istio-remote-peer-by-hand"
        )
        .await
        .is_some(),
        "someone else's gateway stays"
    );
    assert!(
        get_json(
            "c1",
            &gateway_ar(),
            "istio-eastwest",
            "istio-remote-peer-c3"
        )
        .await
        .is_none()
    );
    assert!(
        get_json("c3", &gateway_ar(), "istio-eastwest", "istio-eastwest")
            .await
            .is_none()
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
        .stderr
        .contains("NotFound")
    );
    assert!(
        !helm("c3", &["status", "gloo-operator", "-n", "gloo-mesh"])
            .await
            .ok,
        "release uninstalled"
    );
    let (again, summaries) = remove_all().await;
    assert!(!again, "{summaries:?}");

    // Unlink removes exactly what linking created: one direction only.
    setup::unlink(&targets[0], &targets[1].name)
        .await
        .expect("unlink");
    assert!(
        get_json(
            "c1",
            &gateway_ar(),
            "istio-eastwest",
            "istio-remote-peer-c2"
        )
        .await
        .is_none()
    );
    assert!(
        get_json(
            "c2",
            &gateway_ar(),
            "istio-eastwest",
            "istio-remote-peer-c1"
        )
        .await
        .is_some()
    );
}

#[tokio::test]
async fn nodeport_peering_and_one_way_export_import_linking_pass_the_checks() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let targets = vec![target("c1").await, target("c2").await];
    let s = settings(DataPlane::NodePort, Peering::Manual { pairs: vec![] });
    let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");
    run_all(&targets, &s, &root).await;
    let gw = current_gateway("c1", "istio-eastwest").await;
    assert_eq!(
        gw["metadata"]["annotations"]["peering.solo.io/data-plane-service-type"],
        "NodePort"
    );
    // c1 → c2 directly; c2 → c1 the way it goes without c1's credentials: c1's owner exports, c2 imports.
    setup::link(&targets[0], &targets[1], DataPlane::NodePort)
        .await
        .expect("link");
    let exported = serde_yaml::to_string(
        &setup::peer_gateway_for(&targets[0], DataPlane::NodePort)
            .await
            .expect("export"),
    )
    .expect("yaml");
    let checked = setup::validate_peer_gateway(&exported).expect("valid");
    assert!(
        setup::import_peer(&targets[0], &checked).await.is_err(),
        "a cluster refuses a peer gateway to itself"
    );
    setup::import_peer(&targets[1], &checked)
        .await
        .expect("import");
    all_green(&targets).await;
    let peer = current_gateway("c2", "istio-remote-peer-c1").await;
    assert_eq!(
        peer["metadata"]["annotations"]["peering.solo.io/preferred-data-plane-service-type"],
        "NodePort"
    );
}

#[tokio::test]
async fn automatic_peering_sets_the_flags_and_the_peers_appear_everywhere() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2", "c3"]).await;
    let targets = vec![target("c1").await, target("c2").await, target("c3").await];
    let s = settings(
        DataPlane::LoadBalancer,
        Peering::Automatic {
            management: ClusterName::new("c1").expect("c1"),
        },
    );
    let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");
    // The management plane is the platform team's (Gloo Platform with ConfigDistribution); the test installs it.
    install_management_plane("c1", &["c2", "c3"]).await;
    run_all(&targets, &s, &root).await;
    let ext = kubectl_ok(
        "c2",
        &[
            "get",
            "configmap",
            "-n",
            "gloo-mesh",
            "gloo-extensions-config",
            "-o",
            "json",
        ],
        None,
    )
    .await;
    assert!(
        ext.contains("PEERING_AUTOMATIC_LOCAL_GATEWAY")
            && ext.contains("multiClusterMode: Peering"),
        "{ext}"
    );
    wait_for(60, "peers distributed everywhere", || async {
        let missing = setup::missing_automatic_peers(&targets)
            .await
            .map_err(|e| e.to_string())?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("{missing:?}"))
        }
    })
    .await;
    all_green(&targets).await;
}

#[tokio::test]
async fn faults_surface_as_the_failed_step_or_check_with_what_to_do() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let targets = vec![target("c1").await, target("c2").await];
    let s = settings(DataPlane::LoadBalancer, Peering::Manual { pairs: vec![] });
    let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");
    set_faults("c2", &[("license-invalid", "true")]).await;
    run_all(&targets, &s, &root).await;
    link_pairs(&targets, DataPlane::LoadBalancer).await;
    let results = setup::verify(&targets, &every(&targets), Duration::from_secs(20), &quiet).await;
    let license = results[1].get(CheckId::License).expect("license");
    assert_eq!(license.status, Status::Fail, "{license:?}");
    assert!(
        license
            .remediation
            .as_deref()
            .is_some_and(|r| r.contains("license")),
        "{license:?}"
    );
    assert_eq!(
        results[0].get(CheckId::License).map(|r| r.status),
        Some(Status::Pass)
    );
    set_faults("c2", &[]).await;

    // A root of trust that is not the shared one is refused, not overwritten.
    let other = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("other root");
    let e = setup::run_step(
        Step::RootOfTrust,
        &targets[0],
        &cluster("c1"),
        &s,
        &other,
        &quiet,
    )
    .await
    .expect_err("refused");
    assert_eq!(
        (e.cluster.as_str(), e.step.as_str()),
        ("c1", "Root of trust")
    );
    assert!(e.message.contains("another root of trust"), "{e}");

    // No load-balancer address: the east-west step fails, saying what to do (with a short wait for the test).
    reset("c1").await;
    set_faults("c1", &[("lb-never-assigned", "true")]).await;
    let t = &targets[0];
    let c = cluster("c1");
    for step in [
        Step::RootOfTrust,
        Step::Operator,
        Step::GatewayApi,
        Step::ControlPlane,
    ] {
        setup::run_step(step, t, &c, &s, &root, &quiet)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let progress = |l: String| lines.lock().expect("lock").push(l);
    let run = setup::run_step(Step::EastWest, t, &c, &s, &root, &progress);
    assert!(
        tokio::time::timeout(Duration::from_secs(15), run)
            .await
            .is_err(),
        "still waiting for an address"
    );
    assert!(
        lines
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains("AddressNotAssigned")),
        "{lines:?}"
    );
    let checks = mesh::checks::check_cluster(&t.name, &t.client).await;
    let gw = checks.get(CheckId::Gateways).expect("gateways");
    assert_eq!(gw.status, Status::Fail);
    assert!(
        gw.remediation
            .as_deref()
            .is_some_and(|r| r.contains("NodePort")),
        "{gw:?}"
    );
    set_faults("c1", &[]).await;
}

#[tokio::test]
async fn the_other_fault_knobs_surface_as_the_failed_step_or_check_and_clear() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let targets = vec![target("c1").await, target("c2").await];
    let s = settings(DataPlane::LoadBalancer, Peering::Manual { pairs: vec![] });
    let root = mesh::ca::RootCa::generate(mesh::ca::DEFAULT_DAYS).expect("root");

    // operator-fail: the control-plane step fails at once, naming the cluster, the step and the operator's
    // reason, with what to do; cleared, a retry of the step succeeds.
    set_faults(
        "c2",
        &[(
            "operator-fail",
            "revision gloo conflicts with an existing install",
        )],
    )
    .await;
    let (t2, c2) = (&targets[1], cluster("c2"));
    for step in [Step::RootOfTrust, Step::Operator, Step::GatewayApi] {
        setup::run_step(step, t2, &c2, &s, &root, &quiet)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let e = tokio::time::timeout(
        Duration::from_secs(60),
        setup::run_step(Step::ControlPlane, t2, &c2, &s, &root, &quiet),
    )
    .await
    .expect("the step ends rather than waiting for its timeout")
    .expect_err("the operator failed");
    assert_eq!(
        (e.cluster.as_str(), e.step.as_str()),
        ("c2", "Control plane")
    );
    assert!(
        e.message.contains("FAILED") && e.message.contains("conflicts with an existing install"),
        "{e}"
    );
    assert!(e.advice.contains("retry this cluster"), "{e}");

    // Hostname load-balancer addresses on c1 and a slow peering controller on c2: c2's peer gateway for c1
    // dials c1's hostname; c2's peering check reports the peer not connected (with its condition and what to
    // do) while the controller waits, then every check passes.
    set_faults("c2", &[("peering-delay-seconds", "20")]).await;
    set_faults("c1", &[("lb-address-type", "Hostname")]).await;
    run_all(&targets, &s, &root).await;
    let ew_type = kubectl_ok(
        "c1",
        &[
            "get",
            "gateway",
            "istio-eastwest",
            "-n",
            "istio-eastwest",
            "-o",
            "jsonpath={.status.addresses[0].type}",
        ],
        None,
    )
    .await;
    assert_eq!(ew_type, "Hostname");
    link_pairs(&targets, DataPlane::LoadBalancer).await;
    let dialled = kubectl_ok(
        "c2",
        &[
            "get",
            "gateway",
            "istio-remote-peer-c1",
            "-n",
            "istio-eastwest",
            "-o",
            "jsonpath={.spec.addresses[0].type} {.spec.addresses[0].value}",
        ],
        None,
    )
    .await;
    assert!(
        dialled.starts_with("Hostname c1") || dialled.starts_with("Hostname istio-eastwest"),
        "{dialled}"
    );
    let early = setup::verify(&targets, &every(&targets), Duration::from_secs(3), &quiet).await;
    let peers = early[1].get(CheckId::Peers).expect("peers");
    assert_ne!(peers.status, Status::Pass, "{peers:?}");
    assert!(
        peers
            .details
            .iter()
            .any(|d| d.contains("istio-remote-peer-c1") && d.contains("PeerConnected is False")),
        "{peers:?}"
    );
    assert!(peers.remediation.is_some(), "{peers:?}");
    all_green(&targets).await;

    // istiod never ready on c1: its istiod check warns, naming the pods, with what to do; cleared, it passes again.
    set_faults(
        "c1",
        &[
            ("lb-address-type", "Hostname"),
            ("istiod-not-ready", "true"),
        ],
    )
    .await;
    let t1 = &targets[0];
    let mut istiod = None;
    for _ in 0..60 {
        let checks = mesh::checks::check_cluster(&t1.name, &t1.client).await;
        let r = checks.get(CheckId::IstiodPods).expect("istiod").clone();
        // Unhealthy istiod pods are a warning in `istioctl multicluster check` (mesh-spec.md §3, check 3).
        if r.status == Status::Warn {
            istiod = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let istiod = istiod.expect("the istiod check warned within 30 s");
    assert!(
        istiod.message.contains("unhealthy istiod pods"),
        "{istiod:?}"
    );
    assert!(
        !istiod.details.is_empty() && istiod.remediation.is_some(),
        "{istiod:?}"
    );
    // (The hostname addresses stay: c2's peer gateway dials c1 by its hostname.)
    set_faults("c1", &[("lb-address-type", "Hostname")]).await;
    set_faults("c2", &[]).await;
    all_green(&targets).await;
    set_faults("c1", &[]).await;
}

#[tokio::test]
async fn a_release_left_pending_by_a_killed_helm_is_recovered_by_the_next_run() {
    let _l = WORLD_LOCK.lock().await;
    reset("c3").await;
    let t = target("c3").await;
    let chart = repo_path("testenv/charts/gloo-operator")
        .display()
        .to_string();
    // A helm that hangs in its pre-install hook, killed as a console's kill -9 (or a lost lease) would.
    let kc = kubeconfig_path().display().to_string();
    let mut hung = tokio::process::Command::new(bin("helm"))
        .args([
            "upgrade",
            "--install",
            "gloo-operator",
            &chart,
            "--kubeconfig",
            &kc,
            "--kube-context",
            "c3",
        ])
        .args([
            "-n",
            "gloo-mesh",
            "--create-namespace",
            "--set",
            "testHang=true",
            "--wait",
            "--timeout",
            "300s",
        ])
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("meshdeck-testenv-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("meshdeck-testenv-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("meshdeck-testenv-helm/data"),
        )
        .kill_on_drop(true)
        .spawn()
        .expect("helm");
    wait_for(60, "a pending release", || async {
        let out = helm("c3", &["list", "-n", "gloo-mesh", "--pending", "-q"]).await;
        out.stdout
            .contains("gloo-operator")
            .then_some(())
            .ok_or(out.stdout)
    })
    .await;
    hung.kill().await.expect("kill helm");
    let status = helm(
        "c3",
        &["status", "gloo-operator", "-n", "gloo-mesh", "-o", "json"],
    )
    .await;
    assert!(
        status.stdout.contains("pending-install"),
        "{}",
        status.stdout
    );
    // Read from helm's records through the API, the release shows as helm shows it.
    let (chart, state) = mesh::operator::release(&t.client)
        .await
        .expect("helm's records")
        .expect("a release");
    assert_eq!(state, "pending-install");
    assert!(
        chart.starts_with("gloo-operator-") && status.stdout.contains(&chart[14..]),
        "{chart} against {}",
        status.stdout
    );

    // The step runs again: it finds the pending release, removes it, and installs.
    let s = settings(DataPlane::LoadBalancer, Peering::Manual { pairs: vec![] });
    let outcome = mesh::operator::ensure(&s.operator, &t.creds, &t.client)
        .await
        .unwrap_or_else(|e| panic!("recovered: {e}"));
    assert_eq!(outcome, mesh::operator::Outcome::Installed);
    let status = helm(
        "c3",
        &["status", "gloo-operator", "-n", "gloo-mesh", "-o", "json"],
    )
    .await;
    assert!(status.stdout.contains("\"deployed\""), "{}", status.stdout);
    let _ = kubectl(
        "c3",
        &[
            "delete",
            "pod",
            "-n",
            "gloo-mesh",
            "gloo-operator-test-hang",
            "--ignore-not-found",
            "--wait=false",
        ],
        None,
    )
    .await;
}
