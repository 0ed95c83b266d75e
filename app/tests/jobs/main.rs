//! Setup jobs against the test world: a job takes its clusters to all checks green and locks them while it
//! runs; a job continues after the console running it stops mid-job; a failing cluster stops alone and is
//! retried alone.
#![cfg(feature = "ssr")]

use std::sync::Arc;
use std::time::Duration;

use app::ssr::jobs::{self, Jobs, SetupSpec};
use app::ssr::registry::{Registration, Registry};
use app::ssr::secrets::SecretBox;
use app::ssr::store::Store;
use mesh::ids::{ClusterName, NetworkName};
use mesh::objects::DataPlane;
use mesh::operator::Chart;
use mesh::setup::{self, ClusterSetup, Peering};
use testworld::*;

async fn console(tag: &str, lease: Duration) -> (Store, Registry, Jobs) {
    let dir = std::env::temp_dir().join(format!("meshdeck-jobs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::connect(&format!("sqlite://{}/db.sqlite", dir.display()))
        .await
        .expect("store");
    let secrets = Arc::new(SecretBox::from_key(&[7u8; 32]).expect("key"));
    let registry = Registry::new(store.clone(), secrets.clone(), loopback());
    let jobs = Jobs::new(
        store.clone(),
        registry.clone(),
        secrets,
        bin("helm"),
        lease,
        test_chart(),
        notifier(&store),
    );
    (store, registry, jobs)
}

/// A second console process on the same database.
fn another_replica(store: &Store, registry: &Registry, lease: Duration) -> Jobs {
    replica_with_chart(store, registry, lease, test_chart())
}

/// A console process on the same database, configured with another operator chart (`--operator-chart`).
fn replica_with_chart(store: &Store, registry: &Registry, lease: Duration, chart: Chart) -> Jobs {
    let secrets = Arc::new(SecretBox::from_key(&[7u8; 32]).expect("key"));
    Jobs::new(
        store.clone(),
        registry.clone(),
        secrets,
        bin("helm"),
        lease,
        chart,
        notifier(store),
    )
}

/// The test world's API servers listen on loopback.
fn loopback() -> mesh::connect::Reach {
    mesh::connect::Reach {
        networks: vec![],
        allow_loopback: true,
    }
}

fn notifier(store: &Store) -> app::ssr::notify::Notifier {
    app::ssr::notify::Notifier::new(
        store.clone(),
        format!("test-{}", std::process::id()),
        Default::default(),
    )
}

fn test_chart() -> Chart {
    Chart {
        reference: repo_path("testenv/charts/gloo-operator")
            .display()
            .to_string(),
        version: None,
    }
}

async fn register(registry: &Registry, context: &str) {
    let kubeconfig = std::fs::read_to_string(kubeconfig_path()).expect("kubeconfig");
    registry
        .register(Registration {
            name: ClusterName::new(context).expect("name"),
            network: None,
            labels: Default::default(),
            kubeconfig,
            context: context.into(),
            allow_insecure: false,
            onboard: false,
            by: "test".into(),
        })
        .await
        .expect("register");
}

fn spec(contexts: &[&str], root_id: &str) -> SetupSpec {
    let names: Vec<ClusterName> = contexts
        .iter()
        .map(|c| ClusterName::new(c).expect("name"))
        .collect();
    SetupSpec {
        clusters: names
            .iter()
            .map(|n| ClusterSetup::new(n.clone(), NetworkName::from(n)))
            .collect(),
        istio_version: ISTIO_VERSION.into(),
        data_plane: DataPlane::LoadBalancer,
        peering: Peering::Manual {
            pairs: setup::full_mesh(&names),
        },
        chart: test_chart(),
        license_secret_ref: None,
        watch_namespaces: vec![],
        root_id: root_id.into(),
        verify_secs: 90,
        members: vec![],
    }
}

async fn wait_finished(store: &Store, id: &str, secs: u64) -> String {
    wait_for(secs, "job finished", || async {
        let j = store
            .job(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("gone")?;
        if j.state == "running" {
            Err(format!(
                "running: {:?}",
                store.job_steps(id).await.map(|s| s
                    .into_iter()
                    .map(|s| format!("{}/{}={}", s.cluster, s.step, s.state))
                    .collect::<Vec<_>>())
            ))
        } else {
            Ok(j.state)
        }
    })
    .await
}

/// The console running job `id` dies once its step `at` (`cluster/step`) has begun — its tasks killed, as by a
/// crash — and another console on the same database takes the job over once the first one's lease has run
/// out; the job succeeds there, no step done before the crash runs again, and the job's events say it went on.
async fn crash_and_resume(store: &Store, registry: &Registry, jobs: &Jobs, id: &str, at: &str) {
    wait_for(180, &format!("{at} under way"), || async {
        let steps = store.job_steps(id).await.map_err(|e| e.to_string())?;
        if steps
            .iter()
            .any(|s| format!("{}/{}", s.cluster, s.step) == at && s.state != "pending")
        {
            Ok(())
        } else {
            Err(format!("{steps:?}"))
        }
    })
    .await;
    jobs.abort_all();
    let done_before: Vec<(String, String, Option<i64>)> = store
        .job_steps(id)
        .await
        .expect("steps")
        .into_iter()
        .filter(|s| s.state == "done")
        .map(|s| (s.cluster, s.step, s.started_at))
        .collect();
    assert_eq!(
        store.job(id).await.expect("job").expect("job").state,
        "running",
        "stopped before its end"
    );
    let second = another_replica(store, registry, Duration::from_secs(30));
    wait_for(120, "the job taken over", || async {
        let ids = second.resume_orphans().await.map_err(|e| e.to_string())?;
        if ids.iter().any(|i| i == id) {
            Ok(())
        } else {
            Err("lease still held".to_string())
        }
    })
    .await;
    assert_eq!(
        wait_finished(store, id, 600).await,
        "succeeded",
        "{:?} {:?}",
        store.job_steps(id).await,
        store.job_events(id, 0).await
    );
    let steps = store.job_steps(id).await.expect("steps");
    for (cluster, step, started) in &done_before {
        let s = steps
            .iter()
            .find(|s| &s.cluster == cluster && &s.step == step)
            .expect("step");
        assert_eq!(&s.started_at, started, "{cluster}/{step} was not run again");
    }
    let events = store.job_events(id, 0).await.expect("events");
    assert!(
        events.iter().any(|e| e
            .message
            .contains("continued after the console that ran it stopped")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_setup_job_takes_its_clusters_to_all_checks_green_and_holds_them_while_it_runs() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let (store, registry, jobs) = console("green", Duration::from_secs(30)).await;
    register(&registry, "c1").await;
    register(&registry, "c2").await;
    let (root_id, root) = jobs.root("alice").await.expect("root");
    let mut updates = jobs.subscribe();
    let id = jobs
        .start_setup(
            spec(&["c1", "c2"], &root_id),
            Some("meshdeck-test-license".into()),
            "alice",
        )
        .await
        .expect("start");

    // One job at a time per cluster: the second is refused, naming who holds the cluster.
    let busy = jobs
        .start_setup(spec(&["c2"], &root_id), Some("k".into()), "bob")
        .await
        .expect_err("busy");
    let text = busy.to_string();
    assert!(
        text.contains("cluster c2 is busy with job") && text.contains("alice"),
        "{text}"
    );

    assert_eq!(
        wait_finished(&store, &id, 300).await,
        "succeeded",
        "{:?}",
        store.job_events(&id, 0).await
    );
    let steps = store.job_steps(&id).await.expect("steps");
    assert_eq!(steps.len(), 13);
    assert!(steps.iter().all(|s| s.state == "done"), "{steps:?}");
    assert!(
        store
            .holders(&["c1".into(), "c2".into()])
            .await
            .expect("holders")
            .is_empty(),
        "locks released"
    );
    // Progress was published as it happened.
    let mut seen = 0;
    while let Ok(u) = updates.try_recv() {
        if u.job_id == id {
            seen += 1;
        }
    }
    assert!(seen > 13, "updates seen: {seen}");
    // The root in use is the one in the clusters, and its key was stored sealed, not in clear.
    assert_eq!(
        Some(root_fingerprint("c1").await),
        mesh::ca::fingerprint(&root.cert_pem)
    );
    let row = store.active_root().await.expect("root row").expect("root");
    assert!(!String::from_utf8_lossy(&row.key_sealed).contains("PRIVATE KEY"));

    // Its verification is kept as a check report (as a run from the Checks page is), and a topology that
    // starts watching the clusters knows their licenses from it: no "not read yet" after a green setup.
    let latest: app::model::ChecksReport =
        serde_json::from_str(&store.recent_check_reports(1).await.expect("reports")[0])
            .expect("report");
    assert_eq!(latest.ran_by.as_deref(), Some(format!("job {id}").as_str()));
    assert_eq!(
        latest
            .clusters
            .iter()
            .map(|c| c.cluster.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2"]
    );
    let topology = app::ssr::topology::Topology::new(registry.clone(), store.clone());
    let c1 = ClusterName::new("c1").expect("name");
    topology.watch(&c1).await;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let license = topology.snapshot(&c1).map(|s| s.license);
        if license == Some(mesh::topology::LicenseState::Valid) {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "c1's license from the setup's checks: {license:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A console running a setup of c1 and c2, caught while the control plane is being installed somewhere.
async fn setup_under_way(tag: &str, lease: Duration) -> (Store, Registry, Jobs, String) {
    let (store, registry, jobs) = console(tag, lease).await;
    register(&registry, "c1").await;
    register(&registry, "c2").await;
    let (root_id, _) = jobs.root("alice").await.expect("root");
    let id = jobs
        .start_setup(
            spec(&["c1", "c2"], &root_id),
            Some("meshdeck-test-license".into()),
            "alice",
        )
        .await
        .expect("start");
    wait_for(120, "control plane step running", || async {
        let steps = store.job_steps(&id).await.map_err(|e| e.to_string())?;
        if steps
            .iter()
            .any(|s| s.step == "control-plane" && s.state == "running")
        {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    (store, registry, jobs, id)
}

#[tokio::test]
async fn a_job_continues_where_it_stopped_after_the_console_running_it_stops() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let lease = Duration::from_secs(2);
    let (store, registry, first, id) = setup_under_way("resume", lease).await;
    first.abort_all();
    let before = store.job_steps(&id).await.expect("steps");
    let done_before: Vec<(String, String, Option<i64>)> = before
        .iter()
        .filter(|s| s.state == "done")
        .map(|s| (s.cluster.clone(), s.step.clone(), s.started_at))
        .collect();
    assert!(
        done_before.iter().any(|(_, s, _)| s == "operator"),
        "{before:?}"
    );
    assert_eq!(
        store.job(&id).await.expect("job").expect("job").state,
        "running"
    );

    // Another console starts: it takes the job over once the first one's lease has run out.
    let second = another_replica(&store, &registry, lease);
    let resumed = wait_for(30, "job taken over", || async {
        let ids = second.resume_orphans().await.map_err(|e| e.to_string())?;
        if ids.contains(&id) {
            Ok(ids)
        } else {
            Err("lease still held".to_string())
        }
    })
    .await;
    assert_eq!(resumed, vec![id.clone()]);
    assert_eq!(wait_finished(&store, &id, 300).await, "succeeded");
    let after = store.job_steps(&id).await.expect("steps");
    for (cluster, step, started) in done_before {
        let s = after
            .iter()
            .find(|s| s.cluster == cluster && s.step == step)
            .expect("step");
        assert_eq!(s.started_at, started, "{cluster}/{step} was not run again");
    }
    let events = store.job_events(&id, 0).await.expect("events");
    assert!(events.iter().any(|e| {
        e.message
            .contains("continued after the console that ran it stopped")
    }));
}

#[tokio::test]
async fn a_stopping_console_finishes_the_step_it_is_on_and_hands_the_job_over_at_once() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    // A lease far longer than the test: another console may take the job only because it was released.
    let lease = Duration::from_secs(600);
    let (store, registry, first, id) = setup_under_way("handover", lease).await;

    // SIGTERM, as the console's main loop handles it: the steps under way finish, no next one starts.
    let handed = first.hand_over(Duration::from_secs(120)).await;
    assert_eq!(handed.released, vec![id.clone()], "{handed:?}");
    assert!(handed.cut.is_empty(), "no step was cut short: {handed:?}");
    assert!(first.stopping());
    let steps = store.job_steps(&id).await.expect("steps");
    assert!(
        steps
            .iter()
            .all(|s| s.state != "running" && s.state != "failed"),
        "every step finished or not begun: {steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.step == "control-plane" && s.state == "done"),
        "the step under way finished: {steps:?}"
    );
    assert!(
        steps.iter().any(|s| s.state == "pending"),
        "the job was not run to its end: {steps:?}"
    );
    assert_eq!(
        store.job(&id).await.expect("job").expect("job").state,
        "running"
    );
    let events = store.job_events(&id, 0).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("handed over before the next step")),
        "{events:?}"
    );
    // A stopping console takes nothing over.
    assert!(first.resume_orphans().await.expect("resume").is_empty());

    // Another console takes it at its first look, long before the lease would have run out.
    let second = another_replica(&store, &registry, lease);
    assert_eq!(
        second.resume_orphans().await.expect("resume"),
        vec![id.clone()]
    );
    assert_eq!(wait_finished(&store, &id, 300).await, "succeeded");
}

#[tokio::test]
async fn a_failing_cluster_stops_alone_and_is_retried_alone() {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    kubectl(
        "c2",
        &[
            "delete",
            "clusterrolebinding",
            "meshdeck-test-limited-admin",
            "--ignore-not-found",
        ],
        None,
    )
    .await;
    let (store, registry, jobs) = console("retry", Duration::from_secs(30)).await;
    register(&registry, "c1").await;
    register(&registry, "c2-limited").await;
    let (root_id, _) = jobs.root("alice").await.expect("root");
    let mut s = spec(&["c1", "c2-limited"], &root_id);
    s.verify_secs = 60;
    let id = jobs
        .start_setup(s, Some("meshdeck-test-license".into()), "alice")
        .await
        .expect("start");
    assert_eq!(wait_finished(&store, &id, 300).await, "failed");
    let steps = store.job_steps(&id).await.expect("steps");
    // The steps of the first wave (root of trust, operator, Gateway API CRDs) run at the same
    // time, so each of them meets the missing permissions; the cluster stops once that wave ended.
    let failed: Vec<_> = steps.iter().filter(|s| s.state == "failed").collect();
    assert!(!failed.is_empty(), "{steps:?}");
    assert!(
        failed.iter().all(|s| s.cluster == "c2-limited"
            && ["root-of-trust", "operator", "gateway-api"].contains(&s.step.as_str())),
        "only the limited cluster's first wave failed: {steps:?}"
    );
    let root = failed
        .iter()
        .find(|s| s.step == "root-of-trust")
        .expect("the root of trust failed");
    let msg = root.message.clone().unwrap_or_default();
    assert!(
        msg.contains("cluster c2-limited (step: Root of trust)") && msg.contains("grant"),
        "{msg}"
    );
    assert!(
        steps
            .iter()
            .filter(|s| s.cluster == "c2-limited"
                && ["control-plane", "east-west"].contains(&s.step.as_str()))
            .all(|s| s.state == "pending"),
        "the limited cluster stopped after its failed wave: {steps:?}"
    );
    // The other cluster went on with its own steps.
    assert!(
        steps
            .iter()
            .filter(|s| s.cluster == "c1" && !s.step.starts_with("link:"))
            .all(|s| s.state == "done"),
        "{steps:?}"
    );

    // Grant the permissions, then retry that cluster alone.
    kubectl_ok(
        "c2",
        &[
            "create",
            "clusterrolebinding",
            "meshdeck-test-limited-admin",
            "--clusterrole=cluster-admin",
            "--group=meshdeck:limited",
        ],
        None,
    )
    .await;
    jobs.retry(
        &id,
        Some(&ClusterName::new("c2-limited").expect("name")),
        "alice",
    )
    .await
    .expect("retry");
    let outcome = wait_finished(&store, &id, 300).await;
    kubectl(
        "c2",
        &[
            "delete",
            "clusterrolebinding",
            "meshdeck-test-limited-admin",
        ],
        None,
    )
    .await;
    assert_eq!(outcome, "succeeded", "{:?}", store.job_steps(&id).await);
    let steps = store.job_steps(&id).await.expect("steps");
    let c1_root = steps
        .iter()
        .find(|s| s.cluster == "c1" && s.step == "root-of-trust")
        .expect("c1");
    assert_eq!(
        c1_root.changed,
        Some(true),
        "c1 was not run again by the retry"
    );
    let _ = jobs::FLEET;
}

#[tokio::test]
async fn an_apiserver_stopped_mid_apply_fails_its_cluster_alone_and_a_retry_finishes_once_it_is_back()
 {
    let _l = WORLD_LOCK.lock().await;
    reset_all(&["c1", "c2"]).await;
    let (store, registry, jobs) = console("outage", Duration::from_secs(30)).await;
    register(&registry, "c1").await;
    register(&registry, "c2").await;
    let (root_id, _) = jobs.root("alice").await.expect("root");
    let id = jobs
        .start_setup(
            spec(&["c1", "c2"], &root_id),
            Some("meshdeck-test-license".into()),
            "alice",
        )
        .await
        .expect("start");

    // c2's apiserver goes away while c2 waits for its control plane.
    wait_for(240, "c2 setting up its control plane", || async {
        let steps = store.job_steps(&id).await.map_err(|e| e.to_string())?;
        steps
            .iter()
            .any(|s| s.cluster == "c2" && s.step == "control-plane" && s.state == "running")
            .then_some(())
            .ok_or_else(|| format!("{steps:?}"))
    })
    .await;
    stop_apiserver("c2").await;
    let outcome = wait_finished(&store, &id, 300).await;
    let steps = store.job_steps(&id).await.expect("steps");
    start_apiserver("c2").await;
    assert_eq!(outcome, "failed", "{steps:?}");
    let failed: Vec<_> = steps.iter().filter(|s| s.state == "failed").collect();
    assert_eq!(failed.len(), 1, "{steps:?}");
    assert_eq!(
        (failed[0].cluster.as_str(), failed[0].step.as_str()),
        ("c2", "control-plane")
    );
    // The message names the cluster and the step, says what failed and what to do.
    let msg = failed[0].message.clone().unwrap_or_default();
    // The apiserver may go away before the apply or while the step waits for Ready.
    assert!(
        msg.contains("cluster c2 (step: Control plane)")
            && (msg.contains("reading the ServiceMeshController")
                || msg.contains("applying ServiceMeshController managed-istio")),
        "{msg}"
    );
    assert!(
        msg.contains("unreachable") || msg.contains("refused") || msg.contains("connect"),
        "{msg}"
    );
    // c1 went on with its own steps.
    assert!(
        steps
            .iter()
            .filter(|s| s.cluster == "c1" && !s.step.starts_with("link:"))
            .all(|s| s.state == "done"),
        "{steps:?}"
    );

    // Once the apiserver is back, retrying c2 alone finishes the job.
    jobs.retry(&id, Some(&ClusterName::new("c2").expect("name")), "alice")
        .await
        .expect("retry");
    assert_eq!(
        wait_finished(&store, &id, 300).await,
        "succeeded",
        "{:?}",
        store.job_events(&id, 0).await
    );
}

mod change;
mod day2;
mod install_namespace;
mod operator;
