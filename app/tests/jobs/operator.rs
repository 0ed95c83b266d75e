//! Day two — the Gloo Operator's chart upgraded across a running mesh, as an air-gapped site does it: a newer
//! chart put on the console's machine and the console pointed at it, then each cluster's release moved one at
//! a time, its checks passing before the next; never back to an older chart.

use app::model::{OperatorMove, UpgradeRequest};

use super::*;

/// A copy of the test world's operator chart at `version` (its appVersion too, so the operator's image
/// changes and its pod is replaced), in a folder of its own.
fn newer_chart(version: &str) -> Chart {
    let from = repo_path("testenv/charts/gloo-operator");
    let to = std::env::temp_dir()
        .join(format!(
            "meshdeck-operator-{version}-{}",
            std::process::id()
        ))
        .join("gloo-operator");
    let _ = std::fs::remove_dir_all(&to);
    copy_dir(&from, &to);
    let chart_yaml = to.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).expect("Chart.yaml");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("version:") {
                format!("version: {version}")
            } else if l.starts_with("appVersion:") {
                format!("appVersion: {version}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&chart_yaml, text).expect("write Chart.yaml");
    Chart {
        reference: to.display().to_string(),
        version: None,
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read chart") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// The chart of `context`'s gloo-operator release, as helm lists it, and its status.
async fn release(context: &str) -> (String, String) {
    let out = helm(
        context,
        &[
            "list",
            "-n",
            "gloo-mesh",
            "--filter",
            "^gloo-operator$",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(out.ok, "{}", out.stderr);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    (
        list[0]["chart"].as_str().unwrap_or_default().to_string(),
        list[0]["status"].as_str().unwrap_or_default().to_string(),
    )
}

async fn operator_image(context: &str) -> String {
    kubectl_ok(
        context,
        &[
            "get",
            "deployment",
            "gloo-operator",
            "-n",
            "gloo-mesh",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
        None,
    )
    .await
}

/// Called by the upgrade test on its mesh (c1–c3 at Istio 1.28.2, operator chart 0.4.2 from the test chart).
pub(super) async fn upgrade_the_operator(
    store: &Store,
    registry: &Registry,
    jobs: &Jobs,
    base: &str,
) {
    let request = |operator: OperatorMove| UpgradeRequest {
        mesh: base.into(),
        version: String::new(),
        operator,
        order: vec![],
        batch: 1,
    };
    let mesh = jobs.meshes().await.expect("meshes").remove(0);
    assert_eq!(mesh.operator_chart.version, None, "a local chart");
    assert_eq!(mesh.operator_chart, mesh.console_chart);
    for c in ["c1", "c2", "c3"] {
        assert_eq!(
            release(c).await,
            ("gloo-operator-0.4.2".into(), "deployed".into())
        );
    }

    // Nothing to upgrade; a local chart has no versions to pick from.
    let nothing = jobs
        .upgrade_spec(&request(OperatorMove::Keep))
        .await
        .expect_err("nothing");
    assert!(
        nothing
            .to_string()
            .contains("already runs 1.28.2 and the operator keeps its chart"),
        "{nothing}"
    );
    let local = jobs
        .upgrade_spec(&request(OperatorMove::Version {
            version: "0.4.3".into(),
        }))
        .await
        .expect_err("local chart");
    assert!(
        local.to_string().contains("has no versions to choose from")
            && local.to_string().contains("--operator-chart"),
        "{local}"
    );
    // The console's chart is what the clusters run: the plan says so, release by release.
    let plan = jobs
        .upgrade_plan(&request(OperatorMove::ConsoleChart))
        .await
        .expect("plan");
    for p in &plan {
        let o = &p.steps[0].objects[0];
        assert_eq!(
            (o.kind.as_str(), o.change.as_str()),
            ("HelmRelease", "unchanged"),
            "{o:?}"
        );
        assert!(
            o.detail
                .as_deref()
                .unwrap_or_default()
                .contains("gloo-operator-0.4.2 is deployed already"),
            "{o:?}"
        );
    }

    // The console restarted with --operator-chart pointing at a newer chart.
    let chart = newer_chart("0.4.3");
    let console = replica_with_chart(store, registry, Duration::from_secs(30), chart.clone());
    let mesh = console.meshes().await.expect("meshes").remove(0);
    assert_eq!(mesh.console_chart.reference, chart.reference);
    let plan = console
        .upgrade_plan(&request(OperatorMove::ConsoleChart))
        .await
        .expect("plan");
    assert_eq!(
        plan.iter().map(|p| p.cluster.as_str()).collect::<Vec<_>>(),
        ["c1", "c2", "c3"]
    );
    for p in &plan {
        let titles: Vec<&str> = p.steps.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Upgrade the Gloo Operator"],
            "only the operator moves"
        );
        let o = &p.steps[0].objects[0];
        assert_eq!(o.change, "update", "{o:?}");
        assert!(
            o.detail
                .as_deref()
                .unwrap_or_default()
                .contains("gloo-operator-0.4.2 (deployed) → gloo-operator-0.4.3"),
            "{o:?}"
        );
        assert!(o.yaml.contains(&chart.reference), "{}", o.yaml);
        assert!(
            p.steps[0].commands[0].starts_with(&format!(
                "helm upgrade --install gloo-operator {} --kube-context {}",
                chart.reference, p.cluster
            )),
            "{:?}",
            p.steps[0].commands
        );
    }
    let (spec, key) = console
        .upgrade_spec(&request(OperatorMove::ConsoleChart))
        .await
        .expect("spec");
    let id = console
        .start_upgrade(spec, key, "alice")
        .await
        .expect("upgrade");
    assert_eq!(wait_finished(store, &id, 300).await, "succeeded");
    let steps: Vec<String> = store
        .job_steps(&id)
        .await
        .expect("steps")
        .into_iter()
        .map(|s| format!("{}/{}={}", s.cluster, s.step, s.state))
        .collect();
    assert_eq!(
        steps,
        [
            "c1/upgrade:operator=done",
            "c1/upgrade:verify=done",
            "c2/upgrade:operator=done",
            "c2/upgrade:verify=done",
            "c3/upgrade:operator=done",
            "c3/upgrade:verify=done"
        ]
    );
    for c in ["c1", "c2", "c3"] {
        assert_eq!(
            release(c).await,
            ("gloo-operator-0.4.3".into(), "deployed".into())
        );
        assert!(
            operator_image(c).await.ends_with(":0.4.3"),
            "{c}: the operator's new image"
        );
        assert_eq!(
            super::day2::smc_version(c).await,
            "1.28.2",
            "{c}: Istio stays"
        );
    }
    // Every console knows the mesh's operator chart now, and the new one has nothing more to move.
    for j in [jobs, &console] {
        let mesh = j.meshes().await.expect("meshes").remove(0);
        assert_eq!(mesh.operator_chart.reference, chart.reference);
        assert_eq!(mesh.istio_version, "1.28.2");
    }
    let plan = console
        .upgrade_plan(&request(OperatorMove::ConsoleChart))
        .await
        .expect("plan");
    assert!(
        plan.iter()
            .all(|p| p.steps[0].objects[0].change == "unchanged"),
        "{plan:?}"
    );
    // The first console's chart is older than what the mesh runs now: never moved back.
    let back = jobs
        .upgrade_spec(&request(OperatorMove::ConsoleChart))
        .await
        .expect_err("older");
    assert!(
        back.to_string()
            .contains("0.4.2 is older than the operator chart the mesh runs (0.4.3)"),
        "{back}"
    );
}
