//! Day two — the Gloo Operator's chart upgraded across a running mesh, as an air-gapped site does it: a newer
//! chart put on the console's machine and the console pointed at it, then each cluster's release moved one at
//! a time, its checks passing before the next; never back to an older chart.

use app::model::{OperatorMove, UpgradeRequest};

use super::*;

/// A copy of the test world's operator chart named `name` at `version` (its appVersion too, so the operator's
/// image changes and its pod is replaced), in a folder of its own.
fn chart_copy(name: &str, version: &str) -> std::path::PathBuf {
    let from = repo_path("testenv/charts/gloo-operator");
    let to = std::env::temp_dir()
        .join(format!(
            "meshdeck-operator-{name}-{version}-{}",
            std::process::id()
        ))
        .join(name);
    let _ = std::fs::remove_dir_all(&to);
    copy_dir(&from, &to);
    let chart_yaml = to.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).expect("Chart.yaml");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("name:") {
                format!("name: {name}")
            } else if l.starts_with("version:") {
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
    to
}

/// A newer operator chart as a folder on the console's machine (`--operator-chart`).
fn newer_chart(version: &str) -> Chart {
    Chart {
        reference: chart_copy("gloo-operator", version).display().to_string(),
        version: None,
    }
}

/// A chart packaged as `helm package` makes it: the `.tgz` an admin uploads.
async fn packaged(name: &str, version: &str) -> Vec<u8> {
    let dir = chart_copy(name, version);
    let out_dir = dir.parent().expect("parent").join("packaged");
    std::fs::create_dir_all(&out_dir).expect("mkdir");
    let (d, o) = (dir.display().to_string(), out_dir.display().to_string());
    let out = helm("c1", &["package", &d, "-d", &o]).await;
    assert!(out.ok, "helm package: {}", out.stderr);
    std::fs::read(out_dir.join(format!("{name}-{version}.tgz"))).expect("package")
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
pub(super) async fn release(context: &str) -> (String, String) {
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

/// Plans and runs `request` with `jobs`, waits until it succeeded; returns the job's id.
async fn upgraded(store: &Store, jobs: &Jobs, request: &UpgradeRequest) -> String {
    let (spec, key) = jobs.upgrade_spec(request).await.expect("spec");
    let id = jobs
        .start_upgrade(spec, key, "alice")
        .await
        .expect("upgrade");
    assert_eq!(wait_finished(store, &id, 300).await, "succeeded");
    id
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
    let id = upgraded(store, &console, &request(OperatorMove::ConsoleChart)).await;
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

    uploaded_charts(store, jobs, &console, base, request).await;
}

/// An air-gapped site uploads the next chart from the browser instead: checked with helm, kept in the database,
/// chosen for new setups, then the mesh's operators moved to it by a console that has no copy of the file yet.
async fn uploaded_charts(
    store: &Store,
    jobs: &Jobs,
    console: &Jobs,
    base: &str,
    request: impl Fn(OperatorMove) -> UpgradeRequest,
) {
    let mut big = vec![0x1f, 0x8b];
    big.resize(jobs::MAX_CHART_BYTES + 1, 0);
    let other = packaged("not-the-operator", "1.0.0").await;
    let refusals: [(&str, &[u8], &str); 4] = [
        (
            "notes.txt",
            b"hello",
            "notes.txt is not a .tgz (gzip) chart archive",
        ),
        ("big.tgz", &big, "1 byte to 4 MiB"),
        (
            "broken.tgz",
            &[0x1f, 0x8b, 8, 0, 0, 0],
            "helm cannot read broken.tgz as a chart",
        ),
        ("other.tgz", &other, "is the chart \"not-the-operator\""),
    ];
    for (file, bytes, says) in refusals {
        let e = console
            .upload_chart(file, bytes, "alice")
            .await
            .expect_err(file)
            .to_string();
        assert!(e.contains(says), "{file}: {e}");
    }
    let refused = |e: jobs::Error| e.to_string();
    assert!(
        console
            .operator_charts()
            .await
            .expect("charts")
            .uploaded
            .is_empty(),
        "nothing refused is kept"
    );

    let tgz = packaged("gloo-operator", "0.4.4").await;
    let up = console
        .upload_chart("gloo-operator-0.4.4.tgz", &tgz, "alice")
        .await
        .expect("upload");
    assert_eq!(
        (up.name.as_str(), up.version.as_str()),
        ("gloo-operator", "0.4.4")
    );
    let twice = console
        .upload_chart("again.tgz", &tgz, "alice")
        .await
        .map_err(refused);
    assert!(
        twice.as_ref().is_err_and(|e| e.contains("already exists")),
        "{twice:?}"
    );
    console.use_chart(Some(&up.sha256)).await.expect("use");
    // Every console of the database offers it; the first one never saw the file.
    let mesh = jobs.meshes().await.expect("meshes").remove(0);
    let label = mesh.console_chart.to_string();
    assert!(
        label.starts_with("uploaded gloo-operator-0.4.4 (gloo-operator-0.4.4.tgz, sha256 "),
        "{label}"
    );
    std::fs::remove_file(mesh::helm::chart_path(&up.sha256).expect("path"))
        .expect("forget the copy");
    let plan = jobs
        .upgrade_plan(&request(OperatorMove::ConsoleChart))
        .await
        .expect("plan");
    for p in &plan {
        let o = &p.steps[0].objects[0];
        assert!(
            o.detail
                .as_deref()
                .unwrap_or_default()
                .contains("gloo-operator-0.4.3 (deployed) → gloo-operator-0.4.4"),
            "{o:?}"
        );
    }
    upgraded(store, jobs, &request(OperatorMove::ConsoleChart)).await;
    for c in ["c1", "c2", "c3"] {
        assert_eq!(
            release(c).await,
            ("gloo-operator-0.4.4".into(), "deployed".into())
        );
    }
    let mesh = jobs.meshes().await.expect("meshes").remove(0);
    assert!(
        mesh.operator_chart
            .to_string()
            .starts_with("uploaded gloo-operator-0.4.4"),
        "{}",
        mesh.operator_chart
    );
    // Kept while new setups install it or the mesh's operators run it.
    let in_use = console.delete_chart(&up.sha256).await.map_err(refused);
    assert!(
        in_use
            .as_ref()
            .is_err_and(|e| e.contains("is the chart new setups install")),
        "{in_use:?}"
    );
    console
        .use_chart(None)
        .await
        .expect("back to the console's own");
    let run = console.delete_chart(&up.sha256).await.map_err(refused);
    assert!(
        run.as_ref().is_err_and(|e| e.contains(&format!(
            "the operators of mesh {base} run gloo-operator-0.4.4"
        ))),
        "{run:?}"
    );
    let charts = console.operator_charts().await.expect("charts");
    assert_eq!(charts.uploaded[0].meshes, [base.to_string()]);
    assert!(!charts.uploaded[0].in_use);
}
