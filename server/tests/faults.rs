//! The console under faults of its own parts: its Postgres restarting in the middle of a job, and the disk
//! of its SQLite file filling up. (A console killed mid-job is in `process.rs`; an API server stopped while
//! its watches are open in `mesh/tests/watch.rs`; one stopped mid-apply in `app/tests/jobs.rs`.)

mod common;

use std::time::Duration;

use app::model::{AppError, JobDetail};
use axum::http::StatusCode;
use common::{ADMIN_PASSWORD, Client, console};
use serde_json::json;

/// A Postgres of this test's own (so it can be restarted without disturbing the others), on `port`.
struct OwnPostgres {
    dir: std::path::PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn script(&self, cmd: &str) -> String {
        let out = std::process::Command::new(testworld::repo_path("scripts/postgres"))
            .args([cmd, &self.dir.display().to_string(), &self.port.to_string()])
            .output()
            .expect("scripts/postgres");
        assert!(
            out.status.success(),
            "scripts/postgres {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new(testworld::repo_path("scripts/postgres"))
            .args([
                "stop",
                &self.dir.display().to_string(),
                &self.port.to_string(),
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn job(client: &mut Client, id: &str) -> JobDetail {
    let a = client.call("get_job", &[("id", id), ("after", "0")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("job")
}

#[tokio::test]
async fn a_job_goes_on_through_a_restart_of_its_postgres() {
    testworld::reset("c3").await;
    let pg = OwnPostgres {
        dir: std::env::temp_dir().join(format!("meshdeck-faults-pg-{}", std::process::id())),
        port: std::env::var("MESHDECK_TEST_PG_RESTART_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(18530),
    };
    let _ = std::fs::remove_dir_all(&pg.dir);
    let url = pg.script("start");
    let helm = testworld::bin("helm").display().to_string();
    let chart = testworld::repo_path("testenv/charts/gloo-operator")
        .display()
        .to_string();
    let console = console(
        "faults-pg",
        Some(url),
        &["--helm", &helm, "--operator-chart", &chart],
    )
    .await;
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    common::register(&mut admin, &["c3"]).await;
    let a = admin
        .call_json(
            "start_setup",
            json!({"request": {
                "clusters": ["c3"], "istio_version": testworld::ISTIO_VERSION,
                "eastwest": "load-balancer", "peering": {"mode": "full-mesh"},
                "license": {"kind": "key", "key": "meshdeck-test-license"}
            }}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id: String = serde_json::from_str(&a.body).expect("job id");
    // Once a step runs, the database goes away for a few seconds, then comes back.
    testworld::wait_for(120, "a running step", || {
        let mut admin = admin.clone();
        let id = id.clone();
        async move {
            let d = job(&mut admin, &id).await;
            d.steps
                .iter()
                .any(|s| s.state == "running")
                .then_some(())
                .ok_or_else(|| format!("{:?}", d.steps))
        }
    })
    .await;
    pg.script("stop");
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.script("start");
    // The job was never dropped: it goes on (leases and progress retried) and succeeds, without being
    // taken over as an orphan (this console runs no orphan search at all).
    let d = testworld::wait_for(300, "the job to end", || {
        let mut admin = admin.clone();
        let id = id.clone();
        async move {
            let a = admin.call("get_job", &[("id", &id), ("after", "0")]).await;
            if a.status != StatusCode::OK {
                return Err(a.body);
            }
            let d: JobDetail = serde_json::from_str(&a.body).map_err(|e| e.to_string())?;
            if d.job.state == "running" {
                Err(format!("{:?}", d.steps))
            } else {
                Ok(d)
            }
        }
    })
    .await;
    assert_eq!(d.job.state, "succeeded", "{:#?}", d.events);
    assert!(d.steps.iter().all(|s| s.state == "done"), "{:?}", d.steps);
}

#[tokio::test]
async fn a_full_disk_under_sqlite_gives_a_clear_error_and_keeps_nothing_half_written() {
    // A 3 MiB file system of our own for the database (tmpfs: this needs root, as the test world does).
    let mnt = std::env::temp_dir().join(format!("meshdeck-faults-full-{}", std::process::id()));
    std::fs::create_dir_all(&mnt).expect("dir");
    let out = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=3m",
            "tmpfs",
            &mnt.display().to_string(),
        ])
        .output()
        .expect("mount");
    assert!(
        out.status.success(),
        "mounting a small tmpfs (needs root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .args(["-l", &self.0.display().to_string()])
                .output();
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _unmount = Unmount(mnt.clone());
    let url = format!("sqlite://{}/meshdeck.db", mnt.display());
    let console = console("faults-full", Some(url), &[]).await;
    let store = console.state.store.clone();
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;

    // Fill the disk: a file that takes every byte left.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
    }
    // Registering clusters (several rows, one per context) and creating a user both fail, saying why.
    let kubeconfig = std::fs::read_to_string(testworld::kubeconfig_path()).expect("kubeconfig");
    let big_labels: Vec<serde_json::Value> = ["c1", "c2", "c3"]
        .iter()
        .map(|c| json!({"context": c, "name": format!("full-{c}"), "network": "", "env": "x".repeat(60), "region": "", "allow_insecure": false}))
        .collect();
    let a = admin
        .call_json(
            "register_clusters",
            json!({"kubeconfig": kubeconfig, "clusters": big_labels}),
        )
        .await;
    let a2 = admin
        .call(
            "create_user",
            &[
                ("username", "newbie"),
                ("role", "viewer"),
                ("password", "a-long-password-1"),
            ],
        )
        .await;
    assert_eq!(a2.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a2.body);
    let AppError::Busy(m) = a2.error() else {
        panic!("{}", a2.body)
    };
    assert!(
        m.contains("database is full") && m.contains("free space"),
        "{m}"
    );
    // The registration answered per cluster; each failed one says the same.
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<app::model::RegisterOutcome> =
        serde_json::from_str(&a.body).expect("outcomes");
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert!(
        !failed.is_empty(),
        "a full disk refuses writes: {outcomes:?}"
    );
    for o in &failed {
        assert!(
            matches!(&o.result, Err(AppError::Busy(m)) if m.contains("database is full")),
            "{o:?}"
        );
    }

    // Space again: the console carries on, and nothing half-written is there.
    std::fs::remove_file(&filler).expect("free space");
    let users = store.list_users().await.expect("users");
    assert!(
        users.iter().all(|u| u.username != "newbie"),
        "the failed user is not there"
    );
    let a = admin
        .call(
            "create_user",
            &[
                ("username", "newbie"),
                ("role", "viewer"),
                ("password", "a-long-password-1"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for o in &failed {
        let a = admin.call("get_cluster", &[("name", &o.name)]).await;
        assert_eq!(
            a.status,
            StatusCode::NOT_FOUND,
            "{} was not half-registered",
            o.name
        );
    }
}
