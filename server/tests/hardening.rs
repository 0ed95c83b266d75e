//! The findings of the security review (issue "Hardening"), each reproduced against the console's router and
//! refused: YAML bombs at every door, bounded sign-in, cross-site state changes, redirects, sessions that end
//! everywhere, step-up for power, bounded live streams, and the headers every answer carries. (The
//! throttling counts and the root-of-trust race are in `app/tests/store.rs`, registration as a probe in
//! `app/tests/registry.rs`, helm's environment in `mesh::helm`.)

mod common;

use std::time::{Duration, Instant};

use app::model::{AppError, Role};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{ADMIN_PASSWORD, Client, add_user, console, next_chunk, stream_ends};
use serde_json::json;

/// The "billion laughs" in YAML: a few hundred bytes that expand to 9^9 strings.
fn yaml_bomb() -> String {
    let mut s = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..9 {
        let p = i - 1;
        s.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_that_expands_to_gigabytes_is_refused_at_every_door() {
    let console = console("yaml-bomb", None, &[]).await;
    let viewer_pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    common::register(&mut admin, &["c1"]).await;
    let mut viewer = Client::new(app);
    viewer.sign_in("vera", &viewer_pw).await;
    let bomb = yaml_bomb();
    assert!(bomb.len() < 1024);
    let start = Instant::now();

    // The extensions ConfigMap of a plan, which any viewer may ask for.
    let a = viewer
        .call_json(
            "plan_setup",
            json!({"request": {
                "clusters": ["c1"], "istio_version": "1.28.1", "eastwest": "load-balancer",
                "peering": {"mode": "full-mesh"}, "license": {"kind": "key", "key": "k"},
                "settings": {"extensions_yaml": format!("stable: |\n  {}", bomb.replace('\n', "\n  "))}
            }}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("expands to more than"), "{}", a.body);

    // A kubeconfig pasted for registration.
    let a = admin
        .call_json("read_kubeconfig", json!({"kubeconfig": bomb}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("expands to more than"), "{}", a.body);

    // Peer gateways sent by a cluster's owner.
    let a = admin
        .call_json("import_peers", json!({"into": ["c1"], "yaml": bomb}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("expands to more than"), "{}", a.body);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "each is refused at its budget, not after expanding: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn sign_in_stores_nothing_unbounded_and_throttles_per_address() {
    let console = console("sign-in-bounds", None, &[]).await;
    let store = console.state.store.clone();
    let app = server::router(console);
    let mut c = Client::new(app);
    // A megabyte of username: refused like any wrong password, and what is stored is bounded.
    let huge = "u".repeat(1024 * 1024);
    let a = c
        .call(
            "sign_in",
            &[("username", &huge), ("password", "whatever-password")],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        &a.body[..200.min(a.body.len())]
    );
    let locks = store
        .sign_in_locks(
            app::ssr::now(),
            &app::ssr::store::Limits {
                per_source: 1,
                ..Default::default()
            },
        )
        .await
        .expect("locks");
    assert!(
        locks
            .iter()
            .all(|l| l.username.len() <= 64 && l.source.len() <= 64),
        "{locks:?}"
    );
    // Spraying usernames from one address stops at the per-address limit.
    let mut last = StatusCode::OK;
    for i in 0..25 {
        last = c
            .call(
                "sign_in",
                &[
                    ("username", &format!("user{i}")),
                    ("password", "whatever-password"),
                ],
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_known_browser_is_never_locked_out_by_guesses_from_elsewhere_and_an_admin_can_unlock() {
    let console = console("device", None, &[]).await;
    let app = server::router(console);
    // The admin signs in once from their browser: it is known from now on (the device cookie).
    let mut mine = Client::new(app.clone());
    let a = mine.sign_in("admin", ADMIN_PASSWORD).await;
    let device = a
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("meshdeck_device="))
        .expect("a device cookie")
        .to_string();
    assert!(
        device.contains("HttpOnly")
            && device.contains("SameSite=Strict")
            && device.contains("Path=/api"),
        "{device}"
    );
    let device = device.split(';').next().expect("pair").to_string();
    // Someone guesses from the same address until the pair is locked.
    let mut guesser = Client::new(app.clone());
    for _ in 0..5 {
        guesser
            .call(
                "sign_in",
                &[("username", "admin"), ("password", "wrong-password-123")],
            )
            .await;
    }
    let a = guesser
        .call(
            "sign_in",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    // The admin's own browser still signs in.
    let mut again = Client::new(app.clone());
    let mut req = Request::post("/api/sign_in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(header::COOKIE, &device)
        .body(Body::from(common::form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])))
        .expect("request");
    req.headers_mut()
        .insert(header::HOST, "localhost".parse().expect("host"));
    let a = again.send(req).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // And an admin sees the lock and lifts it.
    let locks: Vec<app::model::SignInLock> =
        serde_json::from_str(&again.call("list_sign_in_locks", &[]).await.body).expect("locks");
    let lock = locks
        .iter()
        .find(|l| l.username == "admin" && l.kind == "user and source")
        .unwrap_or_else(|| panic!("{locks:?}"));
    let a = again
        .call(
            "unlock_sign_in",
            &[("username", "admin"), ("source", &lock.source)],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    guesser.sign_in("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn state_changes_from_another_origin_are_refused_and_no_get_starts_work() {
    let console = console("csrf", None, &[]).await;
    let store = console.state.store.clone();
    let app = server::router(console);
    let mut c = Client::new(app.clone());
    c.sign_in("admin", ADMIN_PASSWORD).await;
    let post = |origin: Option<&str>, site: Option<&str>, ct: &str, path: &str, body: &str| {
        let mut b = Request::post(path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, ct);
        if let Some(o) = origin {
            b = b.header(header::ORIGIN, o);
        }
        if let Some(s) = site {
            b = b.header("sec-fetch-site", s);
        }
        b.body(Body::from(body.to_string())).expect("request")
    };
    let form = "application/x-www-form-urlencoded";
    // Another port on the same host, a sibling subdomain, another site: all refused, sign-in included.
    for (origin, site) in [
        (Some("http://localhost:8080"), None),
        (Some("http://app.localhost"), None),
        (Some("https://evil.example"), None),
        (None, Some("same-site")),
        (None, Some("cross-site")),
    ] {
        let a = c
            .send(post(
                origin,
                site,
                form,
                "/api/create_user",
                "username=mallory&role=admin&password=a-long-password-1",
            ))
            .await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "{origin:?} {site:?}: {}",
            a.body
        );
        assert!(matches!(a.error(), AppError::Refused(_)), "{}", a.body);
        let a = c
            .send(post(
                origin,
                site,
                form,
                "/api/sign_in",
                "username=admin&password=x",
            ))
            .await;
        assert_eq!(
            a.status,
            StatusCode::FORBIDDEN,
            "sign-in from {origin:?} {site:?}"
        );
    }
    // JSON smuggled in a text/plain "simple request".
    let a = c
        .send(post(
            None,
            None,
            "text/plain",
            "/api/run_checks",
            r#"{"clusters": []}"#,
        ))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        store
            .list_users()
            .await
            .expect("users")
            .iter()
            .all(|u| u.username != "mallory"),
        "nothing was created"
    );
    // The console's own pages pass.
    let a = c
        .send(post(
            Some("http://localhost"),
            Some("same-origin"),
            "application/json",
            "/api/run_checks",
            r#"{"clusters": []}"#,
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // A GET of the checks page with the old run parameter runs nothing.
    let before = store.check_report("x").await.expect("read");
    assert!(before.is_none());
    let page = c.page("/checks?cluster=c1&run=1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("Ran at"), "no run from a GET");
}

#[tokio::test]
async fn redirects_are_real_and_next_is_one_of_our_pages() {
    let mut c = Client::new(server::router(console("redirects", None, &[]).await));
    // A probe or a browser without JavaScript: 3xx with Location, whatever it accepts.
    for accept in ["*/*", "text/html"] {
        let a = c
            .send(
                Request::get("/")
                    .header(header::ACCEPT, accept)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert!(a.status.is_redirection(), "GET / ({accept}): {}", a.status);
        assert!(a.location().is_some());
        let a = c
            .send(
                Request::get("/setup")
                    .header(header::ACCEPT, accept)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await;
        assert!(
            a.status.is_redirection(),
            "GET /setup ({accept}): {}",
            a.status
        );
        assert_eq!(a.location(), Some("/sign-in?next=/setup"));
    }
    // next= values a browser would read as another site, or that are not header values, go home.
    for next in [
        "//evil.example",
        "/\t/evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/clusters\r\nSet-Cookie: x=y",
        "/é",
        "/%2F%2Fevil.example",
    ] {
        let a = c
            .post_form(
                "sign_in",
                &[
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ],
                "http://localhost/sign-in",
            )
            .await;
        assert!(
            a.status.is_redirection(),
            "{next:?}: {} {}",
            a.status,
            a.body
        );
        assert_eq!(a.location(), Some("/clusters"), "{next:?}");
        // The sign-in page itself too (signed in: it redirects to next).
        let page = c
            .page(&format!("/sign-in?next={}", app::pages::encode_query(next)))
            .await;
        assert!(page.status.is_redirection(), "{next:?}: {}", page.status);
        assert_eq!(page.location(), Some("/clusters"), "{next:?}");
    }
}

#[tokio::test]
async fn a_password_change_a_reset_and_a_disable_end_every_session_of_the_user() {
    let console = console("revoke", None, &[]).await;
    let pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let signed_in = |n: usize| {
        let app = app.clone();
        let pw = pw.clone();
        async move {
            let mut out = vec![];
            for _ in 0..n {
                let mut c = Client::new(app.clone());
                c.sign_in("vera", &pw).await;
                out.push(c);
            }
            out
        }
    };
    let ok = |a: &common::Answer| a.status == StatusCode::OK;

    // Vera changes her password in one browser: that one continues, the other ends.
    let mut tabs = signed_in(2).await;
    let new_pw = "vera-new-password-123";
    let a = tabs[0]
        .call("change_password", &[("current", &pw), ("new", new_pw)])
        .await;
    assert!(ok(&a), "{}", a.body);
    assert!(
        ok(&tabs[0].call("list_clusters", &[]).await),
        "the changing session goes on"
    );
    assert_eq!(
        tabs[1].call("list_clusters", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // An admin resets it: every session of vera ends.
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let users: Vec<app::model::UserSummary> =
        serde_json::from_str(&admin.call("list_users", &[]).await.body).expect("users");
    let id = users
        .iter()
        .find(|u| u.username == "vera")
        .expect("vera")
        .id
        .to_string();
    let a = admin
        .call("reset_user_password", &[("id", &id), ("password", &pw)])
        .await;
    assert!(ok(&a), "{}", a.body);
    assert_eq!(
        tabs[0].call("list_clusters", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A disable ends them all at once, and re-enabling does not bring them back.
    let mut tabs = signed_in(2).await;
    let (status, body) = tabs[1].open_stream("/live/topology").await;
    assert_eq!(status, StatusCode::OK);
    let mut body = body.expect("stream");
    assert!(
        next_chunk(&mut body, Duration::from_secs(5))
            .await
            .is_some(),
        "the graph"
    );
    let a = admin
        .call("set_user_disabled", &[("id", &id), ("disabled", "true")])
        .await;
    assert!(ok(&a), "{}", a.body);
    assert!(
        stream_ends(&mut body, Duration::from_secs(5)).await,
        "the open stream ends at once"
    );
    let a = admin
        .call("set_user_disabled", &[("id", &id), ("disabled", "false")])
        .await;
    assert!(ok(&a), "{}", a.body);
    for t in &mut tabs {
        assert_eq!(
            t.call("list_clusters", &[]).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn live_streams_end_at_sign_out_and_idle_expiry() {
    let mut c = console("stream-end", None, &[]).await;
    c.state.sessions.idle = Duration::from_secs(2);
    let app = server::router(c);
    let mut tab = Client::new(app.clone());
    tab.sign_in("admin", ADMIN_PASSWORD).await;
    // Sign-out in another tab of the same browser (same cookie) ends the stream at once.
    let (_, body) = tab.open_stream("/live/topology").await;
    let mut body = body.expect("stream");
    next_chunk(&mut body, Duration::from_secs(5)).await;
    let mut other = tab.clone();
    let a = other.call("sign_out", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        stream_ends(&mut body, Duration::from_secs(5)).await,
        "ended at sign-out"
    );
    // Idle expiry: the stream's own session times out in the store, and the stream notices at its next
    // check (the check interval is 30 s; the session's idle limit is 2 s here).
    let mut tab = Client::new(app);
    tab.sign_in("admin", ADMIN_PASSWORD).await;
    let (_, body) = tab.open_stream("/live/topology").await;
    let mut body = body.expect("stream");
    next_chunk(&mut body, Duration::from_secs(5)).await;
    assert!(
        stream_ends(&mut body, Duration::from_secs(40)).await,
        "ended after idle expiry"
    );
}

#[tokio::test]
async fn giving_power_needs_a_recently_entered_password() {
    let mut c = console("step-up", None, &[]).await;
    c.state.sessions.reauth = Duration::from_secs(1);
    let pw = add_user(&c, "vera", Role::Viewer).await;
    let app = server::router(c);
    let mut admin = Client::new(app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let users: Vec<app::model::UserSummary> =
        serde_json::from_str(&admin.call("list_users", &[]).await.body).expect("users");
    let id = users
        .iter()
        .find(|u| u.username == "vera")
        .expect("vera")
        .id
        .to_string();
    let calls: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "create_user",
            vec![
                ("username", "mallory"),
                ("role", "admin"),
                ("password", "a-long-password-1"),
            ],
        ),
        ("set_user_role", vec![("id", &id), ("role", "admin")]),
        (
            "reset_user_password",
            vec![("id", &id), ("password", "another-password-1")],
        ),
        ("export_root", vec![("password", "not-the-password")]),
    ];
    for (name, args) in &calls[..3] {
        let a = admin.call(name, args).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{name}: {}", a.body);
        assert!(
            matches!(a.error(), AppError::ReauthRequired(_)),
            "{name}: {}",
            a.body
        );
    }
    // A viewer can still be made without it (no power given).
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
    // The root's key needs the password itself, every time.
    let a = admin.call(calls[3].0, &calls[3].1).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    // A wrong password does not confirm; the right one does, for the window.
    let a = admin
        .call("confirm_password", &[("password", "wrong-password-1")])
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let a = admin
        .call("confirm_password", &[("password", ADMIN_PASSWORD)])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = admin.call(calls[1].0, &calls[1].1).await;
    assert_eq!(a.status, StatusCode::OK, "after confirming: {}", a.body);
    let _ = pw;
}

#[tokio::test]
async fn live_streams_are_bounded_per_user() {
    let mut c = console("stream-limit", None, &[]).await;
    c.state.notifier = app::ssr::notify::Notifier::new(
        c.state.store.clone(),
        "limit-test".into(),
        app::ssr::notify::StreamLimits {
            per_user: 3,
            total: 5,
        },
    );
    let pw = add_user(&c, "vera", Role::Viewer).await;
    let app = server::router(c);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let mut open = vec![];
    for _ in 0..3 {
        let (s, b) = admin.open_stream("/live/topology").await;
        assert_eq!(s, StatusCode::OK);
        open.push(b);
    }
    let (s, _) = admin.open_stream("/live/topology").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "per user");
    let mut vera = Client::new(app);
    vera.sign_in("vera", &pw).await;
    for _ in 0..2 {
        let (s, b) = vera.open_stream("/live/topology").await;
        assert_eq!(s, StatusCode::OK);
        open.push(b);
    }
    let (s, _) = vera.open_stream("/live/topology").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "in total");
    // Closing one frees its slot.
    open.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, _) = vera.open_stream("/live/topology").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_its_security_headers() {
    let mut c = Client::new(server::router(console("headers", None, &[]).await));
    let page = c.page("/sign-in").await;
    let csp = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .expect("a page's policy")
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-"),
        "{csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("nonce");
    assert!(
        page.body.contains(&format!("nonce=\"{nonce}\"")),
        "the inline scripts carry the policy's nonce"
    );
    assert_eq!(
        page.headers.get(header::X_FRAME_OPTIONS).expect("xfo"),
        "DENY"
    );
    assert_eq!(
        page.headers.get(header::CACHE_CONTROL).expect("cache"),
        "no-store"
    );
    let a = c.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        a.headers.get(header::CACHE_CONTROL).expect("cache"),
        "no-store"
    );
    let a = c.call("export_root", &[("password", ADMIN_PASSWORD)]).await;
    assert_eq!(
        a.headers.get(header::CACHE_CONTROL).expect("cache"),
        "no-store"
    );
    assert!(
        a.headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("default-src 'none'")),
        "server-function answers allow nothing"
    );
}

#[tokio::test]
async fn every_answer_names_its_request_id_and_only_a_trusted_proxy_may_choose_it() {
    use axum::body::Body;
    use axum::http::Request;
    let get = |id: &str| {
        Request::get("/healthz")
            .header("x-request-id", id)
            .body(Body::empty())
            .expect("request")
    };
    let console = common::console("request-id", None, &[]).await;
    let mut c = common::Client::new(server::router(console));
    let a = c.send(get("from-the-client")).await;
    let id = a
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an id");
    assert_ne!(id, "from-the-client", "a client does not choose its id");
    assert_eq!(id.len(), 24);
    // The in-process client comes from 127.0.0.1: a trusted proxy here.
    let console = common::console(
        "request-id-proxy",
        None,
        &["--trusted-proxies", "127.0.0.1/32"],
    )
    .await;
    let mut c = common::Client::new(server::router(console));
    let a = c.send(get("edge-7f3a")).await;
    assert_eq!(
        a.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("edge-7f3a")
    );
    let a = c.send(get("bad id with spaces")).await;
    assert_ne!(
        a.headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("bad id with spaces")
    );
}
