//! The console as a real process against the test world: two consoles share one Postgres; a setup job
//! started over HTTP on the first survives that console being killed (SIGKILL, no clean-up) in the middle of
//! it — the other console takes the job over once its lease ran out and finishes it, without running again
//! the steps already done, and without applying any object a second time with different content.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use app::model::{JobDetail, RegisterOutcome};
use axum::http::StatusCode;
use common::Client;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const METRICS_TOKEN: &str = "a-metrics-token-for-the-test";

struct Console {
    child: Child,
    addr: SocketAddr,
}

/// Starts `meshdeck serve` on `database`; returns once it listens. Its log goes to `dir/<tag>.log`.
async fn start(dir: &Path, tag: &str, database: &str) -> Console {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshdeck"))
        .arg("serve")
        .args(["--addr", "127.0.0.1:0"])
        .args(["--database-url", database])
        .args(["--key-file", &dir.join("secret.key").display().to_string()])
        .args(["--helm", &testworld::bin("helm").display().to_string()])
        .args([
            "--operator-chart",
            &testworld::repo_path("testenv/charts/gloo-operator")
                .display()
                .to_string(),
        ])
        .args(["--job-lease", "3"])
        .arg("--allow-loopback-clusters")
        .env("MESHDECK_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("MESHDECK_METRICS_TOKEN", METRICS_TOKEN)
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start meshdeck");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let log: PathBuf = dir.join(format!("{tag}.log"));
    let mut file = std::fs::File::create(&log).expect("log file");
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        use std::io::Write;
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(file, "{line}");
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return addr.parse::<SocketAddr>().expect("address");
            }
        }
        panic!("meshdeck exited before listening; see {}", log.display())
    })
    .await
    .expect("meshdeck listens within 60 s");
    // Keep draining its log so the pipe never fills.
    tokio::spawn(async move {
        use std::io::Write;
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(file, "{line}");
        }
    });
    Console { child, addr }
}

async fn job(client: &mut Client, id: &str) -> JobDetail {
    let a = client.call("get_job", &[("id", id), ("after", "0")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("job")
}

fn step_line(d: &JobDetail) -> String {
    d.steps
        .iter()
        .map(|s| format!("{}/{}={}", s.cluster, s.step, s.state))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The spec of what the job applies, per cluster: SMC spec and generation, the east-west Gateway's spec and
/// generation, and the root behind `cacerts`.
async fn applied(context: &str) -> Vec<(String, serde_json::Value)> {
    let mut out = vec![];
    if let Some(smc) =
        testworld::get_json(context, &testworld::smc_ar(), "gloo-mesh", "managed-istio").await
    {
        out.push((
            format!("{context} smc"),
            json!([smc["spec"], smc["metadata"]["generation"]]),
        ));
    }
    if let Some(gw) = testworld::get_json(
        context,
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-eastwest",
    )
    .await
    {
        out.push((
            format!("{context} eastwest"),
            json!([gw["spec"], gw["metadata"]["generation"]]),
        ));
    }
    out
}

/// Everything `cacerts` holds (the root of trust step ran before the kill).
async fn cacerts(context: &str) -> String {
    testworld::kubectl_ok(
        context,
        &[
            "get",
            "secret",
            "-n",
            "istio-system",
            "cacerts",
            "-o",
            "jsonpath={.data}",
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn a_job_survives_its_console_being_killed_and_is_finished_by_the_other_one() {
    testworld::reset_all(&["c1", "c2"]).await;
    let dir = common::temp_dir("process-kill");
    let database = common::fresh_database("process").await;
    let (first, other) = tokio::join!(
        start(&dir, "first", &database),
        start(&dir, "other", &database)
    );
    let mut client = Client::remote(first.addr);
    client.sign_in("admin", common::ADMIN_PASSWORD).await;

    let kubeconfig = std::fs::read_to_string(testworld::kubeconfig_path()).expect("kubeconfig");
    let form = |c: &str| json!({"context": c, "name": c, "network": "", "env": "", "region": "", "allow_insecure": false});
    let a = client
        .call_json(
            "register_clusters",
            json!({"kubeconfig": kubeconfig, "clusters": [form("c1"), form("c2")]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<RegisterOutcome> = serde_json::from_str(&a.body).expect("outcomes");
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");

    let a = client
        .call_json(
            "start_setup",
            json!({"request": {
                "clusters": ["c1", "c2"], "istio_version": testworld::ISTIO_VERSION,
                "eastwest": "load-balancer", "peering": {"mode": "full-mesh"},
                "license": {"kind": "key", "key": "meshdeck-test-license"}
            }}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id: String = serde_json::from_str(&a.body).expect("job id");

    // Kill it once the control plane is being set up somewhere: steps done, one running, more to come.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let before = loop {
        let d = job(&mut client, &id).await;
        assert_eq!(d.job.state, "running", "{}", step_line(&d));
        if d.steps
            .iter()
            .any(|s| s.step == "control-plane" && s.state == "running")
        {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no control plane step started: {}",
            step_line(&d)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Console { mut child, .. } = first;
    child.kill().await.expect("SIGKILL");
    let done_before: Vec<_> = before.steps.iter().filter(|s| s.state == "done").collect();
    assert!(!done_before.is_empty(), "{}", step_line(&before));
    let root_before = (cacerts("c1").await, cacerts("c2").await);
    let mut applied_before = applied("c1").await;
    applied_before.extend(applied("c2").await);

    // The other console, running all along, takes the job over (after the 3 s lease) and finishes it.
    let second = other;
    let mut client = Client::remote(second.addr);
    client.sign_in("admin", common::ADMIN_PASSWORD).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(420);
    let after = loop {
        let d = job(&mut client, &id).await;
        if d.job.state != "running" {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job did not finish: {}",
            step_line(&d)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        after.job.state,
        "succeeded",
        "{}\n{:#?}",
        step_line(&after),
        after.events
    );
    assert!(after.steps.iter().all(|s| s.state == "done"));
    assert!(
        after.events.iter().any(|e| e
            .message
            .contains("continued after the console that ran it stopped")),
        "{:#?}",
        after.events
    );
    // Steps finished before the kill were not run again.
    for s in done_before {
        let now = after
            .steps
            .iter()
            .find(|a| a.cluster == s.cluster && a.step == s.step)
            .expect("same step");
        assert_eq!(
            now.finished_at, s.finished_at,
            "{}/{} ran again",
            s.cluster, s.step
        );
    }
    // Nothing was applied twice with different content: what existed at the kill is as it was (same spec,
    // same generation), and the root of trust did not change.
    let mut applied_after = applied("c1").await;
    applied_after.extend(applied("c2").await);
    for (what, was) in &applied_before {
        let now = applied_after
            .iter()
            .find(|(w, _)| w == what)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{what} is gone"));
        assert_eq!(now, was, "{what} was applied again with different content");
    }
    assert_eq!(
        (cacerts("c1").await, cacerts("c2").await),
        root_before,
        "cacerts (root, intermediate, key) as they were"
    );
    // The clusters really are set up: the verification step ran every check to green.
    let verify = after
        .steps
        .iter()
        .find(|s| s.step == "verify")
        .expect("verify step");
    assert_eq!(verify.state, "done", "{:?}", verify.message);

    // The console counts what it sent to each cluster; /metrics shows it to a scraper with the token only.
    let metrics = |token: Option<&str>| {
        let mut req = axum::http::Request::get("/metrics");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.body(axum::body::Body::empty()).expect("request")
    };
    let mut scraper = Client::remote(second.addr);
    let a = scraper.send(metrics(None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = scraper.send(metrics(Some("wrong-token"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = scraper.send(metrics(Some(METRICS_TOKEN))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for c in ["c1", "c2"] {
        let line = format!("meshdeck_kube_requests_total{{cluster=\"{c}\",kind=\"request\"}} ");
        let n: u64 = a
            .body
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count for {c}: {}", a.body));
        assert!(n > 10, "{c}: {n} requests");
        assert!(
            a.body
                .contains(&format!("meshdeck_cluster_watched{{cluster=\"{c}\"}} ")),
            "{c}'s watch state: {}",
            a.body
        );
    }
    // What the console answered, its jobs (the store's, every replica's) and its live views.
    for line in [
        "meshdeck_http_requests_total{route=\"health\",status=\"4xx\"} ",
        "meshdeck_http_request_duration_seconds_count{route=\"health\"} ",
        "meshdeck_jobs{state=\"succeeded\"} ",
        "meshdeck_jobs_running_here 0",
        "meshdeck_live_streams 0",
        "meshdeck_stopping 0",
        "meshdeck_build_info{version=",
        // Its memory, as the kernel and the allocator see it.
        "meshdeck_resident_memory_bytes{kind=\"anonymous\"} ",
        "meshdeck_resident_memory_bytes{kind=\"file\"} ",
        "meshdeck_heap_bytes{state=\"in_use\"} ",
        "meshdeck_heap_bytes{state=\"free\"} ",
    ] {
        assert!(
            a.body.contains(line),
            "{line} missing from /metrics:\n{}",
            a.body
        );
    }
    drop(second);
}
