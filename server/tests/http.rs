//! HTTP tests: the router in-process, and the real `meshdeck serve` binary on a loopback port.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("meshdeck-server-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

#[tokio::test]
async fn health_and_readiness_answer_and_unknown_paths_are_404() {
    let dir = temp_dir("router");
    let args: Vec<String> = vec![
        "--database-url".into(),
        format!("sqlite://{}/db/meshdeck.db", dir.display()),
        "--key-file".into(),
        dir.join("secret.key").display().to_string(),
    ];
    let env =
        |k: &str| (k == "MESHDECK_ADMIN_PASSWORD").then(|| "a-long-admin-password".to_string());
    let config = server::Config::from_args(&args, env).expect("config");
    let console = server::start(&config, env).await.expect("start");
    assert_eq!(
        console.state.store.count_users().await.expect("users"),
        1,
        "first admin created"
    );
    let app = server::router(console);
    for (path, status, body) in [
        ("/healthz", StatusCode::OK, "ok\n"),
        ("/readyz", StatusCode::OK, "ok\n"),
    ] {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("req"))
            .await
            .expect("resp");
        assert_eq!(resp.status(), status, "{path}");
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], body.as_bytes());
    }
    let resp = app
        .oneshot(
            Request::get("/nope")
                .header("accept", "text/html")
                .body(Body::empty())
                .expect("req"),
        )
        .await
        .expect("resp");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(
        String::from_utf8_lossy(&bytes).contains("Page not found"),
        "an HTML page says so"
    );
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn meshdeck_serve_prints_where_it_listens_creates_the_first_admin_once_and_stops_on_sigterm() {
    let dir = temp_dir("binary");
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_meshdeck"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env(
                "MESHDECK_DATABASE_URL",
                format!("sqlite://{}/data/meshdeck.db", dir.display()),
            )
            .env("MESHDECK_KEY_FILE", dir.join("data/secret.key"))
            .env_remove("MESHDECK_ADMIN_PASSWORD")
            .env_remove("MESHDECK_SECRET_KEY")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn meshdeck")
    };
    let run = |first: bool| {
        let mut child = start();
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut saw_admin = false;
        let addr = loop {
            let line = lines
                .next()
                .expect("meshdeck exited before listening")
                .expect("line");
            if line.contains("created the first admin") {
                saw_admin = true;
            }
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("addr")
                    .trim_end_matches(|c: char| !c.is_ascii_digit())
                    .to_string();
            }
        };
        assert_eq!(
            saw_admin, first,
            "the generated admin password is logged on the first start only"
        );
        let resp = http_get(&addr, "/healthz");
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(http_get(&addr, "/readyz").starts_with("HTTP/1.1 200"));
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = child.wait().expect("wait");
        assert!(exit.success(), "graceful stop: {exit:?}");
    };
    run(true);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("data/secret.key"))
        .expect("key file")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let mode = std::fs::metadata(dir.join("data"))
        .expect("data folder")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "the data folder is private");
    run(false);
}

#[tokio::test]
async fn a_kubeconfig_given_at_start_registers_its_contexts() {
    let kubeconfig = std::env::var("MESHDECK_TEST_KUBECONFIG")
        .unwrap_or_else(|_| panic!("MESHDECK_TEST_KUBECONFIG is not set: run scripts/test, or export MESHDECK_TEST_KUBECONFIG=$(testenv/up 3)"));
    let dir = temp_dir("import");
    let args: Vec<String> = vec![
        "--database-url".into(),
        format!("sqlite://{}/meshdeck.db", dir.display()),
        "--key-file".into(),
        dir.join("secret.key").display().to_string(),
        "--allow-loopback-clusters".into(),
        "--import-kubeconfig".into(),
        kubeconfig,
    ];
    let env =
        |k: &str| (k == "MESHDECK_ADMIN_PASSWORD").then(|| "a-long-admin-password".to_string());
    let config = server::Config::from_args(&args, env).expect("config");
    let console = server::start(&config, env).await.expect("start");
    let clusters = console.state.registry.list().await.expect("list");
    let names: Vec<String> = clusters.iter().map(|(r, _)| r.name.to_string()).collect();
    for want in ["c1", "c1-limited", "c2", "c3"] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    let healthy = |n: &str| {
        clusters
            .iter()
            .find(|(r, _)| r.name.as_str() == n)
            .and_then(|(_, c)| c.as_ref())
            .is_some_and(|c| c.healthy())
    };
    assert!(healthy("c1") && !healthy("c1-limited"));
    // Starting again with the same file changes nothing (already registered contexts are skipped).
    let again = server::start(&config, env).await.expect("restart");
    assert_eq!(
        again.state.registry.list().await.expect("list").len(),
        clusters.len()
    );
}

#[tokio::test]
async fn the_store_is_backed_up_and_restored_from_the_command_line_and_the_version_names_the_commit()
 {
    let meshdeck = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshdeck"))
            .args(args)
            .env_remove("MESHDECK_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .output()
            .expect("run meshdeck")
    };
    let v = meshdeck(&["--version"]);
    assert!(v.status.success());
    let v = String::from_utf8_lossy(&v.stdout);
    assert!(
        v.starts_with(&format!("meshdeck {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );

    let dir = temp_dir("backup-cli");
    std::fs::create_dir_all(dir.join("live")).expect("dir");
    let live = format!("sqlite://{}/live/meshdeck.db", dir.display());
    let store = app::ssr::store::Store::connect(&live).await.expect("store");
    let hash = app::ssr::passwords::hash("a-long-password-for-ops").expect("hash");
    store
        .create_user("olga-ops", &hash, app::model::Role::Operator)
        .await
        .expect("user");
    let out = dir.join("meshdeck-backup.db");
    let b = meshdeck(&[
        "backup",
        &out.display().to_string(),
        "--database-url",
        &live,
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert!(
        String::from_utf8_lossy(&b.stdout).contains("secret key"),
        "reminds of the key"
    );
    let again = meshdeck(&[
        "backup",
        &out.display().to_string(),
        "--database-url",
        &live,
    ]);
    assert!(!again.status.success(), "never overwrites");
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let nowhere = format!("sqlite://{}/nowhere/meshdeck.db", dir.display());
    let none = meshdeck(&[
        "backup",
        &dir.join("x.db").display().to_string(),
        "--database-url",
        &nowhere,
    ]);
    assert!(!none.status.success(), "no store is made up to back up");
    assert!(String::from_utf8_lossy(&none.stderr).contains("there is no store"));

    let elsewhere = format!("sqlite://{}/restored/meshdeck.db", dir.display());
    let r = meshdeck(&[
        "restore",
        &out.display().to_string(),
        "--database-url",
        &elsewhere,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let restored = app::ssr::store::Store::connect(&elsewhere)
        .await
        .expect("open");
    assert!(
        restored
            .user_by_name("olga-ops")
            .await
            .expect("read")
            .is_some(),
        "the user is back"
    );
    let bad = meshdeck(&["restore", "/etc/hostname", "--database-url", &elsewhere]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
