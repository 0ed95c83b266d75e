//! Sign-in, sessions and server-rendered pages over HTTP, in-process: what a browser with JavaScript off
//! gets, cookie flags, session id rotation, sign-out, idle and absolute expiry, and a disabled user.

mod common;

use std::time::Duration;

use app::model::{Me, Role};
use axum::http::StatusCode;
use common::{ADMIN_PASSWORD, Client, add_user, console};

fn me(a: &common::Answer) -> Option<Me> {
    serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("get_me answer ({e}): {}", a.body))
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_works_without_javascript() {
    let mut c = Client::new(server::router(console("pages", None, &[]).await));
    let a = c.page("/clusters").await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    assert_eq!(a.location(), Some("/sign-in?next=/clusters"));

    let a = c.page("/sign-in?next=/clusters").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("Sign in to Meshdeck") && a.body.contains(r#"name="password""#));

    // A wrong password, as a plain form post: back to the sign-in page, with the reason.
    let a = c
        .post_form(
            "sign_in",
            &[
                ("username", "admin"),
                ("password", "wrong-password-123"),
                ("next", "/clusters"),
            ],
            "http://localhost/sign-in",
        )
        .await;
    assert_eq!(a.status, StatusCode::FOUND);
    let back = a.location().expect("location").to_string();
    assert!(back.starts_with("/sign-in?error="), "{back}");
    assert!(
        a.session_cookie().is_none(),
        "no session for a failed sign-in"
    );
    let page = c.page(&back).await;
    assert!(
        page.body.contains("wrong username or password"),
        "{}",
        page.body
    );

    // The right one: a session cookie with safe flags, and on to where the user was going.
    let a = c
        .post_form(
            "sign_in",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", "/clusters"),
            ],
            "http://localhost/sign-in",
        )
        .await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_eq!(a.location(), Some("/clusters"));
    let cookie = a.session_cookie().expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http: not Secure: {cookie}"
    );

    let page = c.page("/clusters").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No clusters yet"), "{}", page.body);
    assert!(
        page.body.contains("admin · admin"),
        "who is signed in is shown"
    );
    for nav in [
        "Clusters", "Setup", "Topology", "Checks", "Activity", "Users",
    ] {
        assert!(page.body.contains(&format!(">{nav}<")), "nav {nav}");
    }

    // Sign-out as a plain form: the session is gone from the store, the cookie cleared.
    let old = c.cookie.clone();
    let a = c
        .post_form("sign_out", &[], "http://localhost/clusters")
        .await;
    assert_eq!(a.status, StatusCode::FOUND);
    assert_eq!(a.location(), Some("/sign-in"));
    c.cookie = old;
    assert_eq!(
        c.page("/clusters").await.status,
        StatusCode::FOUND,
        "the old cookie no longer works"
    );
}

#[tokio::test]
async fn signing_in_rotates_the_session_id_and_the_old_one_stops_working() {
    let app = server::router(console("rotate", None, &[]).await);
    let mut c = Client::new(app.clone());
    c.sign_in("admin", ADMIN_PASSWORD).await;
    let first = c.cookie.clone().expect("cookie");
    c.sign_in("admin", ADMIN_PASSWORD).await;
    let second = c.cookie.clone().expect("cookie");
    assert_ne!(first, second, "a new id at sign-in");
    let mut stale = Client::new(app);
    stale.cookie = Some(first);
    assert_eq!(me(&stale.call("get_me", &[]).await), None);
    assert_eq!(
        me(&c.call("get_me", &[]).await).map(|m| m.username),
        Some("admin".into())
    );
}

#[tokio::test]
async fn the_cookie_is_secure_behind_https() {
    let mut c = Client::new(server::router(
        console(
            "secure",
            None,
            &["--public-url", "https://meshdeck.example.com"],
        )
        .await,
    ));
    let a = c.sign_in("admin", ADMIN_PASSWORD).await;
    let cookie = a.session_cookie().expect("cookie");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn sessions_expire_when_idle_and_after_the_absolute_limit() {
    let mut idle = console("idle", None, &[]).await;
    idle.state.sessions.idle = Duration::from_secs(1);
    let mut c = Client::new(server::router(idle));
    c.sign_in("admin", ADMIN_PASSWORD).await;
    assert!(me(&c.call("get_me", &[]).await).is_some());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(me(&c.call("get_me", &[]).await), None, "idle expiry");

    let mut absolute = console("absolute", None, &[]).await;
    absolute.state.sessions.absolute = Duration::from_secs(1);
    let mut c = Client::new(server::router(absolute));
    c.sign_in("admin", ADMIN_PASSWORD).await;
    // Activity does not extend the absolute limit.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        c.call("get_me", &[]).await;
    }
    assert_eq!(me(&c.call("get_me", &[]).await), None, "absolute expiry");
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_at_the_next_request() {
    let console = console("disable", None, &[]).await;
    let pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let mut vera = Client::new(app.clone());
    vera.sign_in("vera", &pw).await;
    assert_eq!(vera.call("list_clusters", &[]).await.status, StatusCode::OK);
    let mut admin = Client::new(app);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let users: Vec<app::model::UserSummary> =
        serde_json::from_str(&admin.call("list_users", &[]).await.body).expect("users");
    let id = users
        .iter()
        .find(|u| u.username == "vera")
        .expect("vera")
        .id;
    let a = admin
        .call(
            "set_user_disabled",
            &[("id", &id.to_string()), ("disabled", "true")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        vera.call("list_clusters", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    // And cannot sign in again.
    let a = vera
        .call("sign_in", &[("username", "vera"), ("password", &pw)])
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled() {
    let mut c = Client::new(server::router(console("last-admin", None, &[]).await));
    c.sign_in("admin", ADMIN_PASSWORD).await;
    let users: Vec<app::model::UserSummary> =
        serde_json::from_str(&c.call("list_users", &[]).await.body).expect("users");
    let id = users[0].id.to_string();
    let a = c
        .call("set_user_role", &[("id", &id), ("role", "viewer")])
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let a = c
        .call("set_user_disabled", &[("id", &id), ("disabled", "true")])
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled() {
    let mut c = Client::new(server::router(console("throttle", None, &[]).await));
    for _ in 0..5 {
        let a = c
            .call(
                "sign_in",
                &[("username", "admin"), ("password", "wrong-password-123")],
            )
            .await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let a = c
        .call(
            "sign_in",
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.body);
    assert!(a.body.contains("try again in"), "{}", a.body);
}
