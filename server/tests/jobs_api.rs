//! The job and root-of-trust endpoints, in-process: what a setup request must satisfy before anything
//! starts, and the root of trust's life — made once (generated RSA 4096 here), shown without its key to
//! everyone, exported with its key only to an admin who re-enters their password.

mod common;

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
async fn the_root_of_trust_is_made_once_shown_without_its_key_and_exported_only_to_an_admin() {
    let console = console("jobs-api-root", None, &[]).await;
    let viewer_pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    let mut viewer = Client::new(app);
    viewer.sign_in("vera", &viewer_pw).await;

    let a = viewer.call("get_root", &[]).await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "null"));
    let a = admin
        .call("export_root", &[("password", common::ADMIN_PASSWORD)])
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    let made = admin
        .call_json(
            "create_root",
            json!({"algorithm": "rsa-4096", "cert_pem": null, "key_pem": null}),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let made: RootSummary = serde_json::from_str(&made.body).expect("summary");
    assert_eq!(made.algorithm, app::model::RootAlgorithm::Rsa4096);
    assert!(made.subject.contains("CN=Root CA"), "{}", made.subject);
    assert_eq!((made.not_after - made.not_before) / 86400, 3650);
    assert_eq!(made.created_by, "admin");

    // Everyone sees it, nobody sees its key.
    let seen = viewer.call("get_root", &[]).await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.body.contains("PRIVATE KEY"), "{}", seen.body);
    let seen: Option<RootSummary> = serde_json::from_str(&seen.body).expect("summary");
    assert_eq!(
        seen.as_ref().map(|r| &r.fingerprint),
        Some(&made.fingerprint)
    );

    // A second root is refused while this one is in use.
    let again = admin
        .call_json(
            "create_root",
            json!({"algorithm": "ecdsa-p256", "cert_pem": null, "key_pem": null}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("already in use"), "{}", again.body);

    // Export: the viewer is refused, a wrong password is refused, the right one gets the matching key.
    let a = viewer
        .call("export_root", &[("password", &viewer_pw)])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = admin
        .call("export_root", &[("password", "not-my-password")])
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(!a.body.contains("PRIVATE KEY"));
    let a = admin
        .call("export_root", &[("password", common::ADMIN_PASSWORD)])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let export: RootExport = serde_json::from_str(&a.body).expect("export");
    assert!(export.key_pem.contains("BEGIN PRIVATE KEY"));
    let root = mesh::ca::RootCa::import(&export.cert_pem, &export.key_pem).expect("key matches");
    assert_eq!(
        mesh::ca::fingerprint(&root.cert_pem),
        Some(made.fingerprint)
    );
    assert_eq!(root.algorithm(), mesh::ca::KeyAlgorithm::Rsa4096);
}

#[tokio::test]
async fn an_imported_root_is_checked_and_used() {
    let console = console("jobs-api-import", None, &[]).await;
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    let theirs = mesh::ca::RootCa::generate(365).expect("root");
    let other = mesh::ca::RootCa::generate(365).expect("other");

    let a = admin
        .call_json(
            "create_root",
            json!({"algorithm": "ecdsa-p256", "cert_pem": theirs.cert_pem, "key_pem": other.key_pem()}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("does not belong"), "{}", a.body);

    let a = admin
        .call_json(
            "create_root",
            json!({"algorithm": "ecdsa-p256", "cert_pem": theirs.cert_pem, "key_pem": theirs.key_pem()}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let made: RootSummary = serde_json::from_str(&a.body).expect("summary");
    assert_eq!(
        Some(made.fingerprint),
        mesh::ca::fingerprint(&theirs.cert_pem)
    );
    assert_eq!((made.not_after - made.not_before) / 86400, 365);
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

#[tokio::test]
async fn control_plane_settings_are_checked_and_shape_the_plan() {
    let console = console("jobs-api-settings", None, &[]).await;
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;

    let with = |settings: serde_json::Value, per_cluster: serde_json::Value| {
        let mut body = request(
            &["c3"],
            testworld::ISTIO_VERSION,
            json!({"mode": "full-mesh"}),
        );
        body["request"]["settings"] = settings;
        body["request"]["per_cluster"] = per_cluster;
        body
    };
    // Refused before anything is read from a cluster, each problem named by form and field.
    let refused = [
        (
            with(
                json!({"trust_domain": "Not A Domain", "scaling_profile": "Huge"}),
                json!({}),
            ),
            vec![
                "shared.scaling_profile",
                "\"Huge\" is not one of Default, Demo, Large",
                "shared.trust_domain",
            ],
        ),
        (
            with(
                json!({}),
                json!({"c3": {"address_override": "not an address"}}),
            ),
            vec![
                "c3.address_override",
                "neither an IP address nor a DNS name",
            ],
        ),
        (
            with(json!({}), json!({"c1": {"mesh": {"distribution": "FIPS"}}})),
            vec!["c1.cluster", "not among the chosen clusters"],
        ),
        (
            with(
                json!({"istiod_env": {"PEERING_AUTOMATIC_LOCAL_GATEWAY": "true"}}),
                json!({}),
            ),
            vec!["set by Meshdeck from the linking choice"],
        ),
        (
            with(json!({"extensions_yaml": "beta: |\n  x: 1\n"}), json!({})),
            vec!["c3: extensions YAML: it may set stable and values.istio-ztunnel only; beta"],
        ),
        (
            with(
                json!({"traffic_capture_mode": "InitContainer", "cni_conf_dir": "etc/cni/net.d"}),
                json!({}),
            ),
            vec![
                "shared.traffic_capture_mode",
                "works only with the Sidecar data plane mode",
                "shared.cni_conf_dir",
                "not an absolute directory",
            ],
        ),
        (
            with(json!({"extensions_yaml": "stable: |\n  a: [\n"}), json!({})),
            vec!["the value of stable is not YAML"],
        ),
        (
            with(
                json!({"discovery_selectors": ["team=a"], "extensions_yaml": "stable: |\n  a: 1\n"}),
                json!({}),
            ),
            vec!["not both"],
        ),
    ];
    for (body, texts) in refused {
        let a = admin.call_json("plan_setup", body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.body
        );
        let AppError::Invalid { field, message } = a.error() else {
            panic!("{body}: {}", a.body)
        };
        assert_eq!(field, "settings");
        for t in texts {
            assert!(message.contains(t), "{body}: {message:?} lacks {t:?}");
        }
    }

    // Shared values, a per-cluster override, and the extensions' fields reach the objects planned.
    let body = with(
        json!({
            "scaling_profile": "Large", "distribution": "FIPS", "image_secrets": ["pull-secret"],
            "istiod_env": {"PILOT_TRACE_SAMPLING": "1.0"},
            "traffic_capture_mode": "Auto", "cni_bin_dir": "/home/kubernetes/bin",
            "discovery_selectors": ["istio-discovery=enabled"],
            "extensions_yaml": "values.istio-ztunnel: |\n  logLevel: debug\n"
        }),
        json!({"c3": {"mesh": {"scaling_profile": "Demo", "trust_domain": "c3.example", "cni_conf_dir": "/var/lib/rancher/k3s/agent/etc/cni/net.d"}, "address_override": "10.9.8.7"}}),
    );
    let a = admin.call_json("plan_setup", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plans: Vec<app::model::ClusterPlan> = serde_json::from_str(&a.body).expect("plan");
    let objects: Vec<&app::model::PlanObject> = plans[0]
        .steps
        .iter()
        .flat_map(|s| s.objects.iter())
        .collect();
    let yaml_of = |kind: &str, name: &str| -> serde_json::Value {
        let o = objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| panic!("{kind} {name} planned"));
        serde_yaml::from_str(&o.yaml).expect("yaml")
    };
    let smc = yaml_of("ServiceMeshController", "managed-istio");
    assert_eq!(smc["spec"]["scalingProfile"], "Demo", "c3's override wins");
    assert_eq!(smc["spec"]["distribution"], "FIPS", "shared value");
    assert_eq!(smc["spec"]["trustDomain"], "c3.example");
    assert_eq!(
        smc["spec"]["image"]["secrets"],
        json!([{"name": "pull-secret"}])
    );
    assert_eq!(smc["spec"]["dataplaneMode"], "Ambient");
    assert_eq!(smc["spec"]["trafficCaptureMode"], "Auto");
    let cm = yaml_of("ConfigMap", "gloo-extensions-config");
    let beta: serde_json::Value =
        serde_yaml::from_str(cm["data"]["beta"].as_str().expect("beta")).expect("beta yaml");
    assert_eq!(
        beta,
        json!({"serviceMeshController": {"cni": {
            "confDir": "/var/lib/rancher/k3s/agent/etc/cni/net.d",
            "binDir": "/home/kubernetes/bin"
        }}}),
        "the shared binDir and c3's own confDir"
    );
    let env: serde_json::Value =
        serde_yaml::from_str(cm["data"]["values.istiod"].as_str().expect("env")).expect("env yaml");
    assert_eq!(
        env["env"]["DISABLE_LEGACY_MULTICLUSTER"], "true",
        "set on fresh installs, as the guide advises: {env}"
    );
    let stable: serde_json::Value =
        serde_yaml::from_str(cm["data"]["stable"].as_str().expect("stable")).expect("stable yaml");
    assert_eq!(
        stable,
        json!({"serviceMeshController": {"istiod": {"discoverySelectors": [
            {"matchLabels": {"istio-discovery": "enabled"}}
        ]}}})
    );
    assert!(
        cm["data"]["values.istiod"]
            .as_str()
            .expect("env")
            .contains("PILOT_TRACE_SAMPLING")
    );
    assert_eq!(cm["data"]["values.istio-ztunnel"], "logLevel: debug\n");
    let ew = yaml_of("Gateway", "istio-eastwest");
    assert!(
        ew.to_string().contains("10.9.8.7"),
        "the address override: {ew}"
    );
}

#[tokio::test]
async fn a_clusters_own_eastwest_variant_shapes_its_gateway_and_its_preflight() {
    let console = console("jobs-api-eastwest", None, &[]).await;
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;

    // The shared choice is LoadBalancer; c3 alone goes through node ports.
    let mut body = request(
        &["c3"],
        testworld::ISTIO_VERSION,
        json!({"mode": "full-mesh"}),
    );
    body["request"]["per_cluster"] = json!({"c3": {"eastwest": "node-port"}});
    let mut unknown = body.clone();
    unknown["request"]["per_cluster"] = json!({"c3": {"eastwest": "ingress"}});
    let a = admin.call_json("plan_setup", unknown).await;
    assert!(
        a.status.is_client_error(),
        "an unknown variant is refused: {} {}",
        a.status,
        a.body
    );

    let a = admin.call_json("plan_setup", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plans: Vec<app::model::ClusterPlan> = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].error, None, "{:?}", plans[0].error);
    let step = plans[0]
        .steps
        .iter()
        .find(|s| s.title == "East-west gateway")
        .expect("east-west step");
    let gw = step
        .objects
        .iter()
        .find(|o| o.kind == "Gateway" && o.name == "istio-eastwest")
        .expect("the east-west Gateway planned");
    let gw: serde_json::Value = serde_yaml::from_str(&gw.yaml).expect("yaml");
    assert_eq!(
        gw["metadata"]["annotations"]["peering.solo.io/data-plane-service-type"], "NodePort",
        "c3's own variant, not the shared LoadBalancer: {gw}"
    );
    assert_eq!(gw["metadata"]["labels"]["topology.istio.io/cluster"], "c3");
    assert!(
        step.commands
            .iter()
            .any(|c| c.contains("peering.solo.io/data-plane-service-type=NodePort")),
        "the commands by hand make the NodePort variant: {:?}",
        step.commands
    );

    // The preflight probes for a load balancer only where LoadBalancer is chosen: c3 gets the node check.
    let a = admin.call_json("preflight_setup", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pre: Vec<app::model::PreflightView> = serde_json::from_str(&a.body).expect("preflight");
    let finding = |key: &str| {
        pre[0]
            .findings
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("finding {key}: {:?}", pre[0].findings))
    };
    let lb = finding("load-balancer");
    assert_eq!(lb.status, app::model::CheckStatus::Pass, "{lb:?}");
    assert!(lb.message.contains("NodePort"), "no probe for c3: {lb:?}");
    finding("node-addresses");
    // NodePort is alpha (a warning that says so) and needs 1.28: on 1.27 the preflight refuses it.
    let np = finding("nodeport");
    assert_eq!(np.status, app::model::CheckStatus::Warn, "{np:?}");
    assert!(np.message.contains("alpha"), "{np:?}");
    let mut old = body.clone();
    old["request"]["istio_version"] = json!("1.27.3");
    let a = admin.call_json("preflight_setup", old).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pre: Vec<app::model::PreflightView> = serde_json::from_str(&a.body).expect("preflight");
    let np = pre[0]
        .findings
        .iter()
        .find(|f| f.key == "nodeport")
        .expect("nodeport finding");
    assert_eq!(np.status, app::model::CheckStatus::Fail, "{np:?}");
    assert!(np.message.contains("1.28 or newer"), "{np:?}");
}

#[tokio::test]
async fn each_clusters_chain_is_shown_without_keys_and_judged_against_the_consoles_root() {
    let console = console("jobs-api-trust", None, &[]).await;
    let viewer_pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;
    let mut viewer = Client::new(app);
    viewer.sign_in("vera", &viewer_pw).await;
    let had_namespace = testworld::kubectl("c3", &["get", "namespace", "istio-system"], None)
        .await
        .ok;
    let drop_cacerts = || async {
        testworld::kubectl(
            "c3",
            &[
                "-n",
                "istio-system",
                "delete",
                "secret",
                "cacerts",
                "--ignore-not-found",
            ],
            None,
        )
        .await;
    };
    drop_cacerts().await;

    let chains = |body: &str| -> Vec<app::model::ClusterTrust> {
        serde_json::from_str(body).expect("chains")
    };
    let made = admin
        .call_json(
            "create_root",
            json!({"algorithm": "ecdsa-p256", "cert_pem": null, "key_pem": null}),
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let made: RootSummary = serde_json::from_str(&made.body).expect("summary");

    // No cacerts yet: what applying will write, from the engine's validity and the root's subject.
    let a = viewer
        .call_json("get_trust_chains", json!({"clusters": ["c3"]}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let c3 = &chains(&a.body)[0];
    assert_eq!(c3.error, None);
    assert!(c3.intermediate.is_none());
    let planned = c3.planned.as_deref().expect("planned");
    assert!(
        planned.starts_with(&format!(
            "will be minted at apply: intermediate valid {} days signed by",
            mesh::ca::DEFAULT_DAYS
        )) && planned.contains("CN=Root CA"),
        "{planned}"
    );

    // A cacerts from another root: shown, with the root named as different; never a key.
    let foreign = testworld::RootCa::new();
    if !had_namespace {
        testworld::kubectl("c3", &["create", "namespace", "istio-system"], None).await;
    }
    testworld::kubectl_ok(
        "c3",
        &["apply", "-f", "-"],
        Some(&foreign.cacerts_yaml("c3")),
    )
    .await;
    let a = viewer
        .call_json("get_trust_chains", json!({"clusters": ["c3"]}))
        .await;
    drop_cacerts().await;
    if !had_namespace {
        testworld::kubectl(
            "c3",
            &["delete", "namespace", "istio-system", "--wait=false"],
            None,
        )
        .await;
    }
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(!a.body.contains("PRIVATE KEY"), "{}", a.body);
    let c3 = &chains(&a.body)[0];
    let i = c3.intermediate.as_ref().expect("intermediate");
    assert!(i.subject.contains("L=c3"), "{}", i.subject);
    assert!(i.issuer.contains("CN=Root CA"), "{}", i.issuer);
    assert_eq!(i.key_algorithm, "ECDSA P-256");
    assert_eq!(i.pathlen, Some(0));
    assert!(!i.root_matches);
    assert_eq!(
        i.root_fingerprint.as_deref(),
        Some(testworld::pem_fingerprint(&foreign.cert_pem).as_str())
    );
    assert_ne!(
        i.root_fingerprint.as_deref(),
        Some(made.fingerprint.as_str())
    );
    assert!(i.chain_pem.contains(foreign.cert_pem.trim()));
    assert!(
        c3.problems.iter().any(|p| p.starts_with("root differs")),
        "{:?}",
        c3.problems
    );

    let a = viewer
        .call_json("get_trust_chains", json!({"clusters": ["nowhere"]}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(a.body.contains("cluster nowhere"), "{}", a.body);
}

#[tokio::test]
async fn peer_gateways_from_a_cluster_without_credentials_are_checked_then_applied() {
    let console = console("jobs-api-import", None, &[]).await;
    let viewer_pw = add_user(&console, "vera", Role::Viewer).await;
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;

    // What the owner of cluster zz-foreign sent: their peer gateway, as Meshdeck's export makes it.
    let theirs = mesh::objects::peer_gateway(
        &mesh::objects::PeerInfo {
            cluster: "zz-foreign".into(),
            network: "zz-net".into(),
            address_type: "IPAddress",
            address: "192.0.2.77".into(),
            trust_domain: "zz-foreign".into(),
            service_account: "istio-eastwest".into(),
            locality: Default::default(),
        },
        mesh::objects::DataPlane::LoadBalancer,
    );
    let yaml = serde_yaml::to_string(&theirs).expect("yaml");
    // c3 as a set-up cluster holds the Gateway API CRDs (a fresh test world's c3 has none yet).
    testworld::apply_gateway_api_crds("c3").await;
    // Left by an interrupted earlier run, if any.
    testworld::kubectl(
        "c3",
        &[
            "-n",
            "istio-eastwest",
            "delete",
            "--ignore-not-found",
            "gateways.gateway.networking.k8s.io",
            "istio-remote-peer-zz-foreign",
        ],
        None,
    )
    .await;

    let mut viewer = Client::new(app);
    viewer.sign_in("vera", &viewer_pw).await;
    let a = viewer
        .call_json("import_peers", json!({"into": ["c3"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);

    // A bad second document refuses the whole import, naming it; nothing is applied.
    let bad = format!("{yaml}---\n{}", yaml.replace("192.0.2.77", "''"));
    let a = admin
        .call_json("import_peers", json!({"into": ["c3"], "yaml": bad}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("document 2"), "{}", a.body);
    let gw = testworld::get_json(
        "c3",
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-remote-peer-zz-foreign",
    )
    .await;
    assert!(gw.is_none(), "nothing applied: {gw:?}");
    let a = admin
        .call_json("import_peers", json!({"into": ["nowhere"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);

    let a = admin
        .call_json("import_peers", json!({"into": ["c3"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<app::model::ImportOutcome> = serde_json::from_str(&a.body).expect("outcomes");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].error, None, "{outcomes:?}");
    assert_eq!(outcomes[0].applied, ["istio-remote-peer-zz-foreign"]);
    let gw = testworld::get_json(
        "c3",
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-remote-peer-zz-foreign",
    )
    .await
    .expect("applied in c3");
    assert_eq!(gw["spec"]["addresses"][0]["value"], "192.0.2.77");
    assert!(
        gw["metadata"]["managedFields"].as_array().is_some_and(|m| m
            .iter()
            .any(|f| f["manager"] == "meshdeck" && f["operation"] == "Apply")),
        "server-side apply by meshdeck: {}",
        gw["metadata"]["managedFields"]
    );
    // Again: the object is not changed (same generation; the simulated istiod keeps writing its status).
    let before = gw["metadata"]["generation"].clone();
    let a = admin
        .call_json("import_peers", json!({"into": ["c3"], "yaml": yaml}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let gw = testworld::get_json(
        "c3",
        &testworld::gateway_ar(),
        "istio-eastwest",
        "istio-remote-peer-zz-foreign",
    )
    .await
    .expect("still there");
    assert_eq!(
        gw["metadata"]["generation"], before,
        "re-import changes nothing"
    );
    testworld::kubectl_ok(
        "c3",
        &[
            "-n",
            "istio-eastwest",
            "delete",
            "gateways.gateway.networking.k8s.io",
            "istio-remote-peer-zz-foreign",
        ],
        None,
    )
    .await;

    // Export: refused for an unknown cluster, with the reason.
    let a = admin
        .call_json(
            "export_peers",
            json!({"clusters": ["nowhere"], "eastwest": "load-balancer"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert!(a.body.contains("cluster nowhere"), "{}", a.body);
}
