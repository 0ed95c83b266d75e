//! The job and root-of-trust endpoints, in-process: what a setup request must satisfy before anything
//! starts, a job streamed live, and the preflight's override (here); the root of trust's life — made once
//! (generated RSA 4096 here), shown without its key to everyone, exported with its key only to an admin who
//! re-enters their password — and each cluster's chain (`trust`); the control plane's and a cluster's own
//! settings shaping the plan (`settings`); peer gateways for a cluster without credentials (`peers`).

#[path = "../common/mod.rs"]
mod common;
mod peers;
mod settings;
mod trust;

use app::model::{AppError, Role, RootExport, RootSummary};
use axum::http::StatusCode;
use common::{Client, add_user, console, setup_request as request};
use serde_json::json;

/// Registers the test world's cluster c3 under its own name.
async fn register_c3(admin: &mut Client) {
    common::register(admin, &["c3"]).await;
}

#[tokio::test]
async fn a_setup_request_is_checked_before_anything_starts() {
    let console = console("jobs-api-requests", None, &[]).await;
    let store = console.state.store.clone();
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;

    let cases = [
        (
            request(&["nowhere"], "1.28.1", json!({"mode": "full-mesh"})),
            "clusters",
            "cluster nowhere is not registered",
        ),
        (
            request(&["Bad_Name"], "1.28.1", json!({"mode": "full-mesh"})),
            "request",
            "",
        ),
        (
            request(&[], "1.28.1", json!({"mode": "full-mesh"})),
            "clusters",
            "pick at least one cluster",
        ),
    ];
    for (body, field, text) in cases {
        let a = admin.call_json("start_setup", body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.body
        );
        match a.error() {
            AppError::Invalid { field: f, message } => {
                assert_eq!(f, field, "{body}: {message}");
                assert!(message.contains(text), "{body}: {message}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    assert!(
        store.list_jobs(10).await.expect("jobs").is_empty(),
        "nothing started"
    );
    let a = admin.call("list_jobs", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, "[]");
}

#[tokio::test]
async fn a_job_is_streamed_live_to_signed_in_users_and_picks_up_progress_made_elsewhere() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    // Two replicas on one Postgres: this one serves the stream, the other runs the job.
    let url = common::fresh_database("jobs_live").await;
    let (console, other) = tokio::join!(
        console("jobs-api-live", Some(url.clone()), &[]),
        console("jobs-api-live-other", Some(url), &[])
    );
    console.state.notifier.start();
    other.state.notifier.start();
    let store = other.state.store.clone();
    // A job run by another replica: only its rows are here, no task of this console touches it.
    let steps = vec![("c1".to_string(), "operator".to_string())];
    store
        .create_job(&app::ssr::store::NewJob {
            id: "job-elsewhere",
            kind: "setup",
            spec: "{}",
            secret: None,
            started_by: "admin",
            steps: &steps,
            clusters: &["c1".to_string()],
            lease_owner: "another-replica",
            lease_until: app::ssr::now() + 3600,
        })
        .await
        .expect("store")
        .expect("created");
    store
        .add_event(
            "job-elsewhere",
            Some("c1"),
            Some("operator"),
            "info",
            "first event",
        )
        .await
        .expect("event");
    let app = server::router(console);

    let mut nobody = Client::new(app.clone());
    let a = nobody
        .send(
            Request::get("/live/jobs/job-elsewhere")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);

    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    let a = admin
        .send(
            Request::get("/live/jobs/no-such-job")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    let req = Request::get("/live/jobs/job-elsewhere")
        .header(header::COOKIE, admin.cookie.clone().expect("cookie"))
        .body(Body::empty())
        .expect("req");
    let resp = app.oneshot(req).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/event-stream",
        "an SSE stream"
    );
    let mut body = resp.into_body();
    let mut next = async || loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("frame");
        if let Ok(data) = frame.into_data() {
            let text = String::from_utf8_lossy(&data).into_owned();
            if text.starts_with("event: job") {
                return text;
            }
        }
    };
    let first = next().await;
    assert!(
        first.contains("first event") && first.contains("\"state\":\"running\""),
        "{first}"
    );
    // Progress written by the other replica reaches the stream at once — its notice travels through
    // Postgres (LISTEN/NOTIFY), nothing polls — and old events are not sent again.
    store
        .add_event(
            "job-elsewhere",
            Some("c1"),
            Some("operator"),
            "info",
            "second event",
        )
        .await
        .expect("event");
    other
        .state
        .notifier
        .publish(app::ssr::notify::Notice::Job {
            id: "job-elsewhere".into(),
        })
        .await;
    let second = next().await;
    assert!(
        second.contains("second event") && !second.contains("first event"),
        "{second}"
    );
}

#[tokio::test]
async fn going_on_despite_a_failed_preflight_is_an_admins_call_and_the_server_knows_the_preflight()
{
    let console = console("jobs-api-override", None, &[]).await;
    let operator_pw = add_user(&console, "otto", Role::Operator).await;
    let app = server::router(console);
    let mut operator = Client::new(app.clone());
    operator.sign_in("otto", &operator_pw).await;
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;

    // A cluster reached through the view-only user: its preflight fails (permissions).
    common::register_as(&mut admin, &[("c1-limited", "limited")]).await;
    let mut body = request(&["limited"], "1.28.1", json!({"mode": "full-mesh"}));

    // The browser's word is not enough: the server runs (or finds) the preflight of this exact request, and
    // an operator without an override is refused, with what failed. Nothing starts.
    let a = operator.call_json("start_setup", body.clone()).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);
    let AppError::Conflict(m) = a.error() else {
        panic!("{}", a.body)
    };
    assert!(
        m.contains("preflight of this setup failed") && m.contains("limited: Permissions"),
        "{m}"
    );
    let jobs = operator.call("list_jobs", &[]).await;
    assert_eq!(jobs.body, "[]", "nothing started");

    // Going on anyway is an admin's call.
    body["request"]["override_reason"] =
        json!("the verbs are granted by a policy the review cannot see");
    let a = operator.call_json("start_setup", body.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(
        a.error(),
        AppError::Forbidden {
            needed: Role::Admin,
            have: Role::Operator
        }
    );
    let a = admin.call_json("start_setup", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let id: String = serde_json::from_str(&a.body).expect("job id");
    let job = admin.call("get_job", &[("id", &id), ("after", "0")]).await;
    let detail: app::model::JobDetail = serde_json::from_str(&job.body).expect("job");
    let note = detail
        .events
        .iter()
        .find(|e| e.message.contains("overridden"))
        .unwrap_or_else(|| panic!("the override is recorded: {:?}", detail.events));
    assert!(
        note.message
            .contains("overridden by admin: the verbs are granted")
            && note.message.contains("limited: Permissions"),
        "{}",
        note.message
    );
    assert_eq!(note.level, "warn");

    // Unknown clusters are still the request's own mistake, found before any preflight.
    let mut unknown = request(&["nowhere"], "1.28.1", json!({"mode": "full-mesh"}));
    unknown["request"]["override_reason"] = json!("x");
    let a = admin.call_json("start_setup", unknown).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("not registered"), "{}", a.body);
}
