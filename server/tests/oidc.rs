//! Single sign-on against the test world's real OpenID provider (Dex, started by testenv/up): the whole
//! authorization code flow with PKCE, group mappings (deny by default), a tampered state or code, a replayed
//! answer, the settings file and break-glass. The console runs in-process; Dex is reached over HTTP by the
//! console (discovery, keys, token exchange) and by the test, which plays the browser at Dex's login form.

mod common;

use std::path::PathBuf;

use axum::http::StatusCode;
use common::{ADMIN_PASSWORD, Client};
use serde_json::json;

/// The test world's provider: issuer, client secret file, and the public URL its client may redirect to.
struct Provider {
    issuer: String,
    secret_file: PathBuf,
    public_url: String,
}

fn provider() -> Provider {
    let state = std::env::var("MESHDECK_TESTENV_STATE")
        .map(PathBuf::from)
        .or_else(|_| {
            std::env::var("MESHDECK_TEST_KUBECONFIG")
                .map(|k| PathBuf::from(k).parent().expect("state").to_path_buf())
        })
        .expect("run scripts/test (it starts the test world with its OpenID provider)");
    let dir = state.join("oidc");
    let issuer = std::fs::read_to_string(dir.join("issuer"))
        .unwrap_or_else(|e| panic!("{}: {e}: start the test world (testenv/up)", dir.display()));
    let base: u16 = std::env::var("MESHDECK_TESTENV_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(17000);
    Provider {
        issuer: issuer.trim().to_string(),
        secret_file: dir.join("client-secret"),
        public_url: format!("http://127.0.0.1:{}", base + 460),
    }
}

async fn console(tag: &str, extra: &[&str]) -> (server::Console, Client) {
    let p = provider();
    let secret = p.secret_file.display().to_string();
    let mut args = vec![
        "--public-url",
        &p.public_url,
        "--oidc-issuer",
        &p.issuer,
        "--oidc-client-id",
        "meshdeck",
        "--oidc-client-secret-file",
        &secret,
        "--oidc-label",
        "Dex",
    ];
    args.extend_from_slice(extra);
    let console = common::console(tag, None, &args).await;
    let client = Client::new(server::router(console.clone()));
    (console, client)
}

/// A plain HTTP GET or form POST to the provider: status, Location, body.
async fn http(url: &str, form: Option<&[(&str, &str)]>) -> (StatusCode, Option<String>, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let req = match form {
        Some(f) => http
            .post(url)
            .body(common::form(f))
            .header("content-type", "application/x-www-form-urlencoded"),
        None => http.get(url),
    };
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = StatusCode::from_u16(resp.status().as_u16()).expect("status");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (status, location, resp.text().await.unwrap_or_default())
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        let origin = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        format!("{origin}{location}")
    }
}

/// Plays the browser at the provider: follows its redirects to the login form, posts the user's e-mail and
/// password, and returns where the provider sends the browser back (the console's callback, path and query).
async fn login_at_provider(auth_url: &str, email: &str) -> String {
    let mut url = auth_url.to_string();
    for _ in 0..5 {
        let (status, location, _) = http(&url, None).await;
        match location {
            Some(l) if status.is_redirection() => url = absolute(&url, &l),
            _ => break,
        }
    }
    assert!(url.contains("/auth/local/login"), "the login form: {url}");
    let password = format!("{}-pw", email.split('@').next().expect("name"));
    let (status, location, body) =
        http(&url, Some(&[("login", email), ("password", &password)])).await;
    let back = location.unwrap_or_else(|| panic!("login as {email}: {status} {body}"));
    let callback = "/auth/oidc/callback?";
    let at = back
        .find(callback)
        .unwrap_or_else(|| panic!("not sent back to the console: {back}"));
    back[at..].to_string()
}

/// Starts a single sign-on at the console and returns the provider's authorization URL.
async fn start(client: &mut Client, next: &str) -> String {
    let a = client.page(&format!("/auth/oidc/start?next={next}")).await;
    assert!(a.status.is_redirection(), "start: {} {}", a.status, a.body);
    let to = a.location().expect("to the provider").to_string();
    assert!(
        to.contains("code_challenge=") && to.contains("code_challenge_method=S256"),
        "PKCE: {to}"
    );
    assert!(
        to.contains("nonce=") && to.contains("state="),
        "nonce and state: {to}"
    );
    to
}

/// A whole sign-in; returns where the console sent the browser afterwards.
async fn sign_in_sso(client: &mut Client, email: &str, next: &str) -> String {
    let auth = start(client, next).await;
    let back = login_at_provider(&auth, email).await;
    let a = client.page(&back).await;
    assert!(
        a.status.is_redirection(),
        "callback: {} {}",
        a.status,
        a.body
    );
    a.location().expect("location").to_string()
}

async fn me(client: &mut Client) -> serde_json::Value {
    let a = client.call("get_me", &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("json")
}

async fn options(client: &mut Client) -> serde_json::Value {
    let a = client.call("sign_in_options", &[]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("json")
}

async fn map(admin: &mut Client, group: &str, grant: serde_json::Value, add: bool) -> StatusCode {
    let mut mapping = grant;
    mapping["group"] = json!(group);
    let name = if add {
        "add_group_mapping"
    } else {
        "remove_group_mapping"
    };
    let a = admin.call_json(name, json!({ "mapping": mapping })).await;
    a.status
}

#[tokio::test]
async fn oidc_mapped_groups_give_roles_and_an_unmapped_user_gets_no_access() {
    let (console, mut admin) = console("oidc-roles", &[]).await;
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(
        map(
            &mut admin,
            "platform-admins",
            json!({"kind": "role", "role": "admin"}),
            true
        )
        .await,
        StatusCode::OK
    );
    let o = options(&mut Client::new(server::router(console.clone()))).await;
    assert_eq!(
        o["provider"], "Dex",
        "the sign-in page offers the provider: {o}"
    );

    // alice is in platform-admins: an admin, sent on to the page she asked for.
    let mut alice = Client::new(server::router(console.clone()));
    assert_eq!(
        sign_in_sso(&mut alice, "alice@example.com", "/topology").await,
        "/topology"
    );
    let m = me(&mut alice).await;
    assert_eq!(
        (
            m["username"].as_str(),
            m["role"].as_str(),
            m["sso"].as_bool()
        ),
        (Some("alice@example.com"), Some("admin"), Some(true)),
        "{m}"
    );
    // Single sign-on accounts have no password here.
    let a = alice
        .call(
            "sign_in",
            &[("username", "alice@example.com"), ("password", "")],
        )
        .await;
    assert_ne!(a.status, StatusCode::OK);

    // olga's group is not mapped: no account, a "no access" page naming her groups.
    let mut olga = Client::new(server::router(console.clone()));
    assert_eq!(
        sign_in_sso(&mut olga, "olga@example.com", "/clusters").await,
        "/no-access"
    );
    assert!(me(&mut olga).await.is_null(), "not signed in");
    let o = options(&mut olga).await;
    assert_eq!(o["denied"]["groups"], json!(["platform-operators"]), "{o}");
    assert!(olga.call("list_clusters", &[]).await.status == StatusCode::UNAUTHORIZED);

    // Mapped now: olga is an operator, not an admin.
    assert_eq!(
        map(
            &mut admin,
            "platform-operators",
            json!({"kind": "role", "role": "operator"}),
            true
        )
        .await,
        StatusCode::OK
    );
    sign_in_sso(&mut olga, "olga@example.com", "/clusters").await;
    assert_eq!(me(&mut olga).await["role"], "operator");
    assert_eq!(
        olga.call("list_users", &[]).await.status,
        StatusCode::FORBIDDEN,
        "operators do not manage users"
    );
    let users = admin.call("list_users", &[]).await;
    assert!(
        users.body.contains("olga@example.com") && users.body.contains("platform-operators"),
        "{}",
        users.body
    );
    // Their roles follow the groups: an admin cannot set one by hand.
    let id = serde_json::from_str::<serde_json::Value>(&users.body)
        .expect("json")
        .as_array()
        .expect("list")
        .iter()
        .find(|u| u["username"] == "olga@example.com")
        .expect("olga")["id"]
        .to_string();
    let a = admin
        .call("set_user_role", &[("id", &id), ("role", "admin")])
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.body);

    // The mapping removed: olga's session ends at once.
    assert_eq!(
        map(
            &mut admin,
            "platform-operators",
            json!({"kind": "role", "role": "operator"}),
            false
        )
        .await,
        StatusCode::OK
    );
    assert!(
        me(&mut olga).await.is_null(),
        "olga's session ended with her last mapped group"
    );
    assert_eq!(me(&mut alice).await["role"], "admin", "alice keeps hers");

    // Every sign-in and refusal is in the audit.
    let audit = console
        .state
        .store
        .audit_records(&Default::default(), 100)
        .await
        .expect("audit");
    assert!(
        audit
            .iter()
            .any(|r| r.kind == "sign-in-refused" && r.actor == "olga@example.com")
    );
    assert!(
        audit
            .iter()
            .any(|r| r.kind == "group-mapping" && r.actor == "admin")
    );
}

#[tokio::test]
async fn oidc_a_tampered_state_or_code_or_a_replayed_answer_is_refused() {
    let (console, _) = console("oidc-tamper", &[]).await;
    console
        .state
        .store
        .add_group_mapping(
            &app::model::GroupMapping {
                group: "sre-viewers".into(),
                grant: app::model::Grant::Role {
                    role: app::model::Role::Viewer,
                },
            },
            "test",
        )
        .await
        .expect("map");
    let mut vic = Client::new(server::router(console.clone()));

    // A state the console did not send.
    let auth = start(&mut vic, "/clusters").await;
    let back = login_at_provider(&auth, "vic@example.com").await;
    let tampered = back.replace("state=", "state=x");
    let a = vic.page(&tampered).await;
    assert_eq!(a.location(), Some("/sign-in"));
    assert!(me(&mut vic).await.is_null());
    let o = options(&mut vic).await;
    assert!(
        o["failed"].as_str().is_some_and(|m| m.contains("state")),
        "{o}"
    );
    // The genuine answer comes too late: a started sign-in is used once.
    let a = vic.page(&back).await;
    assert_eq!(a.location(), Some("/sign-in"));
    assert!(
        options(&mut vic).await["failed"]
            .as_str()
            .is_some_and(|m| m.contains("used already"))
    );

    // A code the provider did not issue.
    let auth = start(&mut vic, "/clusters").await;
    let back = login_at_provider(&auth, "vic@example.com").await;
    let tampered = back.replace("code=", "code=zz");
    vic.page(&tampered).await;
    assert!(me(&mut vic).await.is_null());
    let o = options(&mut vic).await;
    assert!(
        o["failed"]
            .as_str()
            .is_some_and(|m| m.contains("refused the sign-in code")),
        "{o}"
    );

    // An answer started in another browser is not this browser's.
    let mut other = Client::new(server::router(console.clone()));
    let auth = start(&mut other, "/clusters").await;
    let back = login_at_provider(&auth, "vic@example.com").await;
    let a = vic.page(&back).await;
    assert_eq!(a.location(), Some("/sign-in"));
    assert!(me(&mut vic).await.is_null());

    // And the genuine flow works.
    assert_eq!(
        sign_in_sso(&mut vic, "vic@example.com", "/clusters").await,
        "/clusters"
    );
    assert_eq!(me(&mut vic).await["role"], "viewer");
}

#[tokio::test]
async fn oidc_settings_file_teams_and_break_glass() {
    let dir = common::temp_dir("oidc-file-maps");
    let file = dir.join("mappings.yaml");
    std::fs::write(
        &file,
        "mappings:\n  - group: payments-devs\n    team: payments\n  - group: platform-admins\n    role: admin\n",
    )
    .expect("write");
    let path = file.display().to_string();
    let (console, mut admin) = console(
        "oidc-file",
        &["--oidc-mappings", &path, "--break-glass", "admin"],
    )
    .await;
    let store = &console.state.store;
    store
        .create_team(
            &app::model::TeamSettings {
                name: "payments".into(),
                description: String::new(),
                contact: String::new(),
                max_namespaces: 5,
                max_services: 5,
                rules: Default::default(),
            },
            "test",
        )
        .await
        .expect("team");
    common::add_user(&console, "lou", app::model::Role::Operator).await;

    // Break-glass: only admin signs in with a password.
    let mut lou = Client::new(server::router(console.clone()));
    let a = lou
        .call(
            "sign_in",
            &[("username", "lou"), ("password", "not-checked-at-all")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("break-glass"), "{}", a.body);
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(options(&mut lou).await["break_glass_only"], true);

    // The file's mappings are in force and read-only.
    let m = admin.call("list_group_mappings", &[]).await;
    assert!(
        m.body.contains("payments-devs") && m.body.contains(&path),
        "{}",
        m.body
    );
    assert_eq!(
        map(
            &mut admin,
            "sre-viewers",
            json!({"kind": "role", "role": "viewer"}),
            true
        )
        .await,
        StatusCode::CONFLICT
    );

    // bob's team group makes him a member of the team (and a viewer, to reach the portal).
    let mut bob = Client::new(server::router(console.clone()));
    sign_in_sso(&mut bob, "bob@example.com", "/team").await;
    assert_eq!(me(&mut bob).await["role"], "viewer");
    let teams = store.teams_of("bob@example.com").await.expect("teams");
    assert_eq!(
        teams,
        vec![("payments".to_string(), app::model::TeamRole::Member)]
    );

    // dave has no groups at all: refused.
    let mut dave = Client::new(server::router(console.clone()));
    assert_eq!(
        sign_in_sso(&mut dave, "dave@example.com", "/").await,
        "/no-access"
    );
    assert_eq!(options(&mut dave).await["denied"]["groups"], json!([]));
}

#[test]
fn oidc_flags_are_checked() {
    let p = provider();
    let env = |_: &str| None;
    let args = |extra: &[&str]| extra.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let e = server::Config::from_args(
        &args(&["--oidc-issuer", &p.issuer, "--oidc-client-id", "x"]),
        env,
    )
    .expect_err("refused");
    assert!(e.to_string().contains("--public-url"), "{e}");
    let e = server::Config::from_args(
        &args(&[
            "--public-url",
            "https://md.example.com",
            "--oidc-issuer",
            "http://idp.example.com",
            "--oidc-client-id",
            "x",
        ]),
        env,
    )
    .expect_err("refused");
    assert!(e.to_string().contains("https://"), "{e}");
    let e =
        server::Config::from_args(&args(&["--break-glass", "admin"]), env).expect_err("refused");
    assert!(e.to_string().contains("single sign-on"), "{e}");
    // A secret file others may read is refused.
    let dir = common::temp_dir("oidc-flags");
    let f = dir.join("secret");
    std::fs::write(&f, "s3cret").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let f = f.display().to_string();
    let e = server::Config::from_args(
        &args(&[
            "--public-url",
            "https://md.example.com",
            "--oidc-issuer",
            "https://idp.example.com",
            "--oidc-client-id",
            "x",
            "--oidc-client-secret-file",
            &f,
        ]),
        env,
    )
    .expect_err("refused");
    assert!(e.to_string().contains("chmod 600"), "{e}");
    // The secret never shows in the settings' debug form.
    let ok = server::Config::from_args(
        &args(&[
            "--public-url",
            "https://md.example.com/",
            "--oidc-issuer",
            "https://idp.example.com/",
            "--oidc-client-id",
            "x",
        ]),
        |k| (k == "MESHDECK_OIDC_CLIENT_SECRET").then(|| "s3cret".to_string()),
    )
    .expect("config");
    let o = ok.oidc.expect("oidc");
    assert_eq!(o.redirect_url, "https://md.example.com/auth/oidc/callback");
    assert_eq!(o.scopes, vec!["openid", "email", "profile", "groups"]);
    assert!(!format!("{o:?}").contains("s3cret"));
}

/// Maps platform-admins to Admin and sre-viewers to Viewer.
async fn map_admins_and_viewers(console: &server::Console) {
    for (group, role) in [
        ("platform-admins", app::model::Role::Admin),
        ("sre-viewers", app::model::Role::Viewer),
    ] {
        console
            .state
            .store
            .add_group_mapping(
                &app::model::GroupMapping {
                    group: group.into(),
                    grant: app::model::Grant::Role { role },
                },
                "test",
            )
            .await
            .expect("map");
    }
}

#[tokio::test]
async fn oidc_per_user_rights_act_as_the_user_so_the_clusters_rbac_decides() {
    let (console, mut admin) = console("oidc-impersonate", &["--oidc-impersonate"]).await;
    map_admins_and_viewers(&console).await;
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    common::register(&mut admin, &["c2"]).await;
    let checks = |c: &mut Client| {
        let mut c = c.clone();
        async move {
            let a = c.call_json("run_checks", json!({"clusters": ["c2"]})).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            a.body
        }
    };
    // The local admin acts as the console itself.
    let own = checks(&mut admin).await;
    assert!(!own.contains("example.com"), "{own}");

    // vic (a console viewer) reads c2 as vic: the cluster has granted vic nothing.
    let mut vic = Client::new(server::router(console.clone()));
    sign_in_sso(&mut vic, "vic@example.com", "/checks").await;
    let as_vic = checks(&mut vic).await;
    assert!(
        as_vic.contains("User \\\"vic@example.com\\\" cannot"),
        "the cluster refused vic by name: {as_vic}"
    );

    // Granted through vic's group in the cluster, vic reads what the grant allows.
    let binding = "meshdeck-test-sre-viewers";
    let out = testworld::kubectl(
        "c2",
        &[
            "create",
            "clusterrolebinding",
            binding,
            "--clusterrole=view",
            "--group=sre-viewers",
        ],
        None,
    )
    .await;
    assert!(
        out.ok || out.stderr.contains("already exists"),
        "{}",
        out.stderr
    );
    let granted = checks(&mut vic).await;
    let refusals = |s: &str| s.matches("cannot").count();
    testworld::kubectl(
        "c2",
        &[
            "delete",
            "clusterrolebinding",
            binding,
            "--ignore-not-found",
        ],
        None,
    )
    .await;
    assert!(
        refusals(&granted) < refusals(&as_vic),
        "the group's grant counts: before {as_vic}\nafter {granted}"
    );
}

#[tokio::test]
async fn oidc_per_user_rights_onboard_an_account_that_only_reads_and_asserts_only_mapped_groups() {
    use kube::api::{Api, PostParams};
    const CONTEXT: &str = "c4";
    let (console, mut admin) = console("oidc-impersonate-onboard", &["--oidc-impersonate"]).await;
    map_admins_and_viewers(&console).await;
    admin.sign_in("admin", ADMIN_PASSWORD).await;
    let kubeconfig = std::fs::read_to_string(testworld::kubeconfig_path()).expect("kubeconfig");
    let form = json!({"context": CONTEXT, "name": CONTEXT, "network": "", "env": "", "region": "",
                      "allow_insecure": false, "onboard": true});
    let a = admin
        .call_json(
            "register_clusters",
            json!({"kubeconfig": kubeconfig, "clusters": [form]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<app::model::RegisterOutcome> =
        serde_json::from_str(&a.body).expect("outcomes");
    let registered = outcomes[0].result.clone().expect("registered");
    // The cluster records what its account was given: the groups mapped now, and that it only reads.
    assert_eq!(
        registered.access.as_ref().and_then(|a| a.per_user.clone()),
        Some(app::model::PerUser {
            groups: Some(vec!["platform-admins".into(), "sre-viewers".into()]),
            reads_only: true
        })
    );
    // Kubernetes' own groups are never mapped, so never asserted.
    assert_eq!(
        map(
            &mut admin,
            "system:masters",
            json!({"kind": "role", "role": "admin"}),
            true
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The report: nothing the account should hold is missing; the writes go out as the user.
    let c = registered.connectivity.clone().expect("tested");
    assert!(c.missing.is_empty(), "{:?}", c.missing);
    assert!(
        c.as_user
            .iter()
            .any(|m| m.contains("create") || m.contains("patch")),
        "{:?}",
        c.as_user
    );

    let name = mesh::ids::ClusterName::new(CONTEXT).expect("name");
    let creds = console
        .state
        .registry
        .credentials(&name)
        .await
        .expect("credentials");
    let own = mesh::connect::client(&creds).await.expect("client");
    let refused = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403, "{what}: {s:?}");
            s.message
        }
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    };
    // As itself it reads (the topology's watches) and writes nothing, not even the mesh's own objects.
    Api::<k8s_openapi::api::core::v1::Service>::all(own.clone())
        .list(&Default::default())
        .await
        .expect("reading services");
    let cacerts = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "cacerts", "namespace": "istio-system"}, "stringData": {"ca-cert.pem": "x"}});
    match mesh::apply::apply(&own, &cacerts, true).await {
        Err(e) => assert!(e.to_string().contains("forbidden"), "{e}"),
        Ok(_) => panic!("the account wrote cacerts as itself"),
    }
    let crb: k8s_openapi::api::rbac::v1::ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "meshdeck-escalation-attempt"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "meshdeck", "namespace": "meshdeck-access"}]
    }))
    .expect("crb");
    refused(
        Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(own.clone())
            .create(&PostParams::default(), &crb)
            .await
            .map(|_| ()),
        "create a ClusterRoleBinding",
    );
    // It acts as a person with a mapped group (the cluster then decides: vic holds nothing here) ...
    let as_vic = mesh::connect::client(
        &creds.impersonating("vic@example.com", &["sre-viewers".to_string()]),
    )
    .await
    .expect("client");
    let message = refused(
        Api::<k8s_openapi::api::core::v1::Pod>::all(as_vic)
            .list(&Default::default())
            .await
            .map(|_| ()),
        "vic lists pods",
    );
    assert!(message.contains("User \"vic@example.com\""), "{message}");
    // ... and never with a group no mapping names: system:masters would be cluster-admin.
    let as_masters =
        mesh::connect::client(&creds.impersonating("mallory", &["system:masters".to_string()]))
            .await
            .expect("client");
    let message = refused(
        Api::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>::all(as_masters)
            .create(&PostParams::default(), &crb)
            .await
            .map(|_| ()),
        "impersonate system:masters",
    );
    assert!(message.contains("impersonate"), "{message}");

    // The local (break-glass) admin cannot change the cluster: the console acts as itself for them, and its
    // account only reads here — refused at once, saying why, not at the job's first write.
    let request = common::setup_request(&[CONTEXT], "1.28.1", json!({"mode": "full-mesh"}));
    let a = admin.call_json("start_setup", request).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(
        a.body.contains("reads only") && a.body.contains("admin is not one"),
        "{}",
        a.body
    );

    // Onboarding again without per-user rights (the flag turned off) takes impersonation away: an account
    // that writes as itself must not keep it.
    let world = testworld::client(CONTEXT).await;
    mesh::access::onboard(&world, mesh::access::Grant::default(), &[])
        .await
        .expect("onboarding without per-user rights");
    for kind in ["clusterrole", "clusterrolebinding"] {
        let out = testworld::kubectl(CONTEXT, &["get", kind, "meshdeck-impersonate"], None).await;
        assert!(
            !out.ok && out.stderr.contains("NotFound"),
            "{kind}: {}",
            out.stderr
        );
    }

    // Revoked as usual: the account deletes its own namespace.
    let a = admin
        .call(
            "revoke_cluster_access",
            &[("name", CONTEXT), ("confirm", CONTEXT)],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    common::wait_access_gone(CONTEXT).await;
}
