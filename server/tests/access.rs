//! Least-privilege access against a real cluster of the test world (c2): a cluster onboarded with admin
//! credentials keeps only a short-lived token of the console's own ServiceAccount, which cannot create a
//! ClusterRoleBinding (nor read Secrets outside the mesh's, nor widen its own role) yet can do the mesh's
//! reads and writes; the token is renewed; a token that cannot be renewed marks the cluster and what runs on
//! it fails naming the cluster; re-onboarding mends it; revoking deletes everything the console made for
//! itself there.

mod common;

use app::model::{AppError, ClusterPlan, ClusterSummary, RegisterOutcome};
use axum::http::StatusCode;
use common::{Client, console};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use mesh::ids::ClusterName;
use serde_json::json;

const CONTEXT: &str = "c2";

fn forbidden(r: Result<impl std::fmt::Debug, kube::Error>, what: &str) {
    match r {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{what}: {s:?}"),
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// What onboarding as `body` asks would do to Meshdeck's Role in namespace `ns` (the plan's change).
async fn planned_role(admin: &mut Client, body: serde_json::Value, ns: &str) -> String {
    let a = admin.call_json("plan_onboarding", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plan: ClusterPlan = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(plan.error, None);
    let step = &plan.steps[0];
    if let Some(o) = step
        .objects
        .iter()
        .find(|o| o.kind == "Role" && o.change == "delete")
    {
        let by_hand = format!(
            "-n {} delete role meshdeck",
            o.namespace.as_deref().unwrap_or("")
        );
        assert!(
            step.commands.iter().any(|c| c.contains(&by_hand)),
            "{:?}",
            step.commands
        );
    }
    step.objects
        .iter()
        .find(|o| o.kind == "Role" && o.namespace.as_deref() == Some(ns))
        .map(|o| o.change.clone())
        .unwrap_or_else(|| panic!("Role in {ns}: {:?}", step.objects))
}

async fn summary(admin: &mut Client) -> ClusterSummary {
    let a = admin.call("get_cluster", &[("name", CONTEXT)]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("summary")
}

/// A client with the credentials the console holds for cluster `name` now (its account's token).
async fn account_client(state: &server::AppState, name: &ClusterName) -> kube::Client {
    let creds = state.registry.credentials(name).await.expect("credentials");
    mesh::connect::client(&creds).await.expect("client")
}

#[tokio::test]
async fn an_onboarded_cluster_holds_only_a_short_lived_token_of_the_consoles_own_least_privileged_account()
 {
    let console = console("access", None, &[]).await;
    let state = console.state.clone();
    let mut admin = Client::new(server::router(console));
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    let kubeconfig = std::fs::read_to_string(testworld::kubeconfig_path()).expect("kubeconfig");
    let name = ClusterName::new(CONTEXT).expect("name");
    let world = testworld::client(CONTEXT).await;

    // The plan first: every object, nothing written.
    let a = admin
        .call_json(
            "plan_onboarding",
            json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": CONTEXT}),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "not registered yet: {}",
        a.body
    );

    // Registered with onboarding: the admin credentials are used once.
    let form = json!({"context": CONTEXT, "name": CONTEXT, "network": "", "env": "", "region": "",
                      "allow_insecure": false, "onboard": true});
    let a = admin
        .call_json(
            "register_clusters",
            json!({"kubeconfig": kubeconfig, "clusters": [form]}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let outcomes: Vec<RegisterOutcome> = serde_json::from_str(&a.body).expect("outcomes");
    let registered = outcomes[0].result.clone().expect("registered");
    let access = registered.access.clone().expect("onboarded");
    assert_eq!(access.account, "meshdeck-access/meshdeck");
    assert_eq!(access.onboarded_by, "admin");
    let life = access.token_expires_at - access.token_issued_at;
    assert!((3500..=3600).contains(&life), "a one-hour token: {life} s");
    let c = registered.connectivity.clone().expect("tested");
    assert!(
        c.missing.is_empty(),
        "every verb the flows need: {:?}",
        c.missing
    );
    assert_eq!(c.needs_admin.len(), 3, "{:?}", c.needs_admin);
    assert!(
        c.needs_admin
            .iter()
            .any(|m| m.contains("clusterrolebindings")),
        "{:?}",
        c.needs_admin
    );

    // What is stored is the account's token, not the admin's credentials.
    let creds = state
        .registry
        .credentials(&name)
        .await
        .expect("credentials");
    let yaml = creds.to_yaml();
    for line in kubeconfig.lines().filter(|l| l.contains("token:")) {
        let token = line
            .split("token:")
            .nth(1)
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        assert!(
            token.is_empty() || !yaml.contains(token),
            "an admin token is kept"
        );
    }
    let client = mesh::connect::client(&creds).await.expect("client");
    let review =
        Api::<k8s_openapi::api::authentication::v1::SelfSubjectReview>::all(client.clone())
            .create(&PostParams::default(), &Default::default())
            .await
            .expect("who am I");
    assert_eq!(
        review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .as_deref(),
        Some("system:serviceaccount:meshdeck-access:meshdeck")
    );

    // It cannot make itself (or anyone) an administrator, nor read Secrets outside the mesh's.
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "meshdeck-escalation-attempt"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "meshdeck", "namespace": "meshdeck-access"}]
    }))
    .expect("crb");
    forbidden(
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &crb)
            .await,
        "create a ClusterRoleBinding",
    );
    let mut view = crb.clone();
    view.metadata.name = Some("meshdeck-view-attempt".into());
    view.role_ref.name = "view".into();
    forbidden(
        Api::<ClusterRoleBinding>::all(client.clone())
            .create(&PostParams::default(), &view)
            .await,
        "create a ClusterRoleBinding to a harmless role",
    );
    forbidden(
        Api::<ClusterRole>::all(client.clone())
            .patch(
                "meshdeck",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
                ),
            )
            .await,
        "widen its own ClusterRole",
    );
    forbidden(
        Api::<Secret>::namespaced(client.clone(), "kube-system")
            .list(&Default::default())
            .await,
        "list Secrets in kube-system",
    );
    forbidden(
        Api::<ServiceAccount>::namespaced(client.clone(), "kube-system")
            .create_token_request("default", &PostParams::default(), &Default::default())
            .await,
        "mint a token for another account",
    );

    // It can do the mesh's own writes (server-side dry runs: authorized exactly as the real ones).
    let writes = [
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "istio-system", "labels": {"topology.istio.io/network": "c2"}}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": "istio-system"},
               "stringData": {"ca-cert.pem": "x"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "gloo-extensions-config", "namespace": "gloo-mesh"}, "data": {"stable": "{}"}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "meshdeck-lb-probe-test", "namespace": "istio-eastwest"},
               "spec": {"type": "LoadBalancer", "ports": [{"port": 15008}]}}),
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "team-payments", "labels": {"istio-injection": "enabled"}}}),
    ];
    let crds = mesh::gateway_api::bundle().expect("bundle");
    let crds = crds.iter().map(|c| serde_json::to_value(c).expect("crd"));
    for obj in writes.into_iter().chain(crds) {
        mesh::apply::apply(&client, &obj, true)
            .await
            .unwrap_or_else(|e| panic!("{} {}: {e}", obj["kind"], obj["metadata"]["name"]));
    }
    // What RBAC cannot say, the admission guard does: no ServiceAccount token Secret (a way to another
    // account's token, even under the one name it may write), no change to a Service's spec (only labels).
    // Under a name it may write that does not exist yet (in a shared world an earlier setup may have made
    // cacerts or the license Secret; a Secret's type cannot change, which refuses it too).
    let mut target = None;
    for (ns, name) in [
        ("istio-system", "cacerts"),
        ("gloo-mesh", "meshdeck-license"),
    ] {
        if Api::<Secret>::namespaced(world.clone(), ns)
            .get_opt(name)
            .await
            .expect("read")
            .is_none()
        {
            target = Some((ns, name));
            break;
        }
    }
    let (secret_ns, secret_name) = target.unwrap_or(("istio-system", "cacerts"));
    let token_secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": secret_name, "namespace": secret_ns,
                     "annotations": {"kubernetes.io/service-account.name": "default"}}});
    // An admission policy is in force once the API server has loaded it, moments after its write; onboarding
    // hands the token over only once the guard refuses the account (it waited for that), so asked at once.
    let e = mesh::apply::apply(&client, &token_secret, true)
        .await
        .expect_err("a token Secret, right after onboarding");
    if target.is_some() {
        assert!(e.to_string().contains("token Secrets"), "{e}");
    } else {
        assert!(e.to_string().contains("immutable"), "{e}");
    }
    let respec = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default"},
        "spec": {"ports": [{"name": "intercept", "port": 8443, "targetPort": 8443}]}});
    let e = mesh::apply::apply(&client, &respec, true)
        .await
        .expect_err("a Service's spec");
    assert!(e.to_string().contains("not change their spec"), "{e}");
    let label = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default",
        "labels": {"solo.io/service-scope": "global"}}});
    mesh::apply::apply(&client, &label, true)
        .await
        .expect("labelling a Service");
    // Namespaces it labels (the mesh's, the teams'), but never their Pod Security: not on a namespace it
    // makes, not lifted on one that has it, not taken away; its own labels next to them are fine.
    let psa_ns = "meshdeck-psa-test";
    testworld::kubectl(CONTEXT, &["create", "namespace", psa_ns], None).await;
    testworld::kubectl_ok(
        CONTEXT,
        &[
            "label",
            "--overwrite",
            "namespace",
            psa_ns,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    )
    .await;
    let ns_with = |name: &str, labels: serde_json::Value| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    mesh::apply::apply(
        &client,
        &ns_with(psa_ns, json!({"istio.io/dataplane-mode": "ambient"})),
        true,
    )
    .await
    .expect("labelling a namespace that has Pod Security labels");
    for (ns, labels, what) in [
        (
            psa_ns,
            json!({"pod-security.kubernetes.io/enforce": "privileged"}),
            "lift",
        ),
        (
            "team-psa",
            json!({"pod-security.kubernetes.io/enforce": "privileged"}),
            "create with",
        ),
        (
            "istio-system",
            json!({"pod-security.kubernetes.io/warn": "privileged"}),
            "add",
        ),
    ] {
        let e = mesh::apply::apply(&client, &ns_with(ns, labels), true)
            .await
            .expect_err(what);
        assert!(e.to_string().contains("Pod Security labels"), "{what}: {e}");
    }
    let e = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            psa_ns,
            &PatchParams {
                dry_run: true,
                ..Default::default()
            },
            &Patch::Merge(
                json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": null}}}),
            ),
        )
        .await
        .expect_err("remove");
    assert!(e.to_string().contains("Pod Security labels"), "remove: {e}");
    testworld::kubectl(
        CONTEXT,
        &["delete", "namespace", psa_ns, "--wait=false"],
        None,
    )
    .await;
    // Deployments and DaemonSets it may restart (their pod template's annotation), never change what they run:
    // a way to run code as a control plane namespace's ServiceAccounts.
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "meshdeck-guard-test", "namespace": "istio-eastwest"},
        "spec": {"selector": {"matchLabels": {"app": "meshdeck-guard-test"}},
                 "template": {"metadata": {"labels": {"app": "meshdeck-guard-test"}},
                              "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}});
    // Made by someone else (kubectl's own field manager), as istiod's and the gateways' are; anew.
    let delete_guard_test = |wait: &'static str| async move {
        let args = [
            "-n",
            "istio-eastwest",
            "delete",
            "deployment",
            "meshdeck-guard-test",
            wait,
        ];
        testworld::kubectl(CONTEXT, &args, None).await
    };
    delete_guard_test("--ignore-not-found").await;
    testworld::kubectl_ok(CONTEXT, &["apply", "-f", "-"], Some(&deploy.to_string())).await;
    // The console's own restart (mesh::restart) passes.
    let workload = mesh::restart::Workload {
        kind: "Deployment",
        namespace: "istio-eastwest".into(),
        name: "meshdeck-guard-test".into(),
    };
    mesh::apply::apply(
        &client,
        &workload.restart_object("2026-12-03T00:00:00Z"),
        true,
    )
    .await
    .expect("a restart");
    let swap = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "meshdeck-guard-test", "namespace": "istio-eastwest"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.example/evil:1"}]}}}});
    let e = mesh::apply::apply(&client, &swap, true)
        .await
        .expect_err("another image");
    assert!(
        e.to_string().contains("not change what their pods run"),
        "{e}"
    );
    delete_guard_test("--wait=false").await;
    // A Secret it has no business with stays out of reach even in the mesh's namespace.
    let other = json!({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "not-cacerts", "namespace": "istio-system"}});
    assert!(mesh::apply::apply(&client, &other, true).await.is_err());

    // The flows read what they need: preflight and plan name no refusal.
    let request = common::setup_request(&[CONTEXT], "1.28.1", json!({"mode": "full-mesh"}));
    let (view, permissions) = common::preflight_finding(&mut admin, &request, "permissions").await;
    assert!(!view.blocked, "{:?}", view.findings);
    assert_eq!(
        permissions.status,
        app::model::CheckStatus::Warn,
        "{permissions:?}"
    );
    assert!(
        permissions.message.contains("only an administrator"),
        "{permissions:?}"
    );
    for f in &view.findings {
        // Listing every Secret of istio-system (other clusters' credentials among them) is not granted.
        if f.key != "legacy-remote-secrets" {
            assert!(!f.message.contains("forbidden"), "{f:?}");
        }
    }
    let a = admin.call_json("plan_setup", request.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(!a.body.contains("forbidden"), "{}", a.body);
    let plans: Vec<ClusterPlan> = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(plans[0].error, None);

    // Renewed on demand (and on its own after two thirds of its life): a new token that works.
    let a = admin
        .call("renew_cluster_token", &[("name", CONTEXT)])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let renewed: ClusterSummary = serde_json::from_str(&a.body).expect("summary");
    let renewed_access = renewed.access.expect("onboarded");
    assert!(renewed_access.token_issued_at >= access.token_issued_at);
    assert_eq!(renewed_access.problem, None);
    let creds2 = state
        .registry
        .credentials(&name)
        .await
        .expect("credentials");
    assert_ne!(creds2.to_yaml(), creds.to_yaml(), "a new token");
    let client2 = mesh::connect::client(&creds2).await.expect("client");
    let a = admin.call("retest_cluster", &[("name", CONTEXT)]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // Onboarding again needs admin credentials: the console holds none.
    let a = admin
        .call_json("onboard_cluster", json!({"name": CONTEXT}))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("admin credentials"), "{}", a.body);
    // … and for the same API server.
    let a = admin
        .call_json(
            "onboard_cluster",
            json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": "c1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("registered at"), "{}", a.body);

    // The token cannot be renewed (its account deleted by someone): the cluster is marked, and what runs
    // on it fails naming the cluster and saying what to do.
    Api::<ServiceAccount>::namespaced(world.clone(), "meshdeck-access")
        .delete("meshdeck", &DeleteParams::default())
        .await
        .expect("delete the account");
    testworld::wait_for(30, "the deleted account's token refused", || {
        let client = client2.clone();
        async move {
            match Api::<k8s_openapi::api::authentication::v1::SelfSubjectReview>::all(client)
                .create(&PostParams::default(), &Default::default())
                .await
            {
                Err(kube::Error::Api(s)) if s.code == 401 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let a = admin
        .call("renew_cluster_token", &[("name", CONTEXT)])
        .await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.body);
    match a.error() {
        AppError::Cluster {
            cluster,
            step,
            message,
        } => {
            assert_eq!(cluster, CONTEXT);
            assert_eq!(step, "token renewal");
            assert!(message.contains("onboard the cluster again"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let marked = summary(&mut admin).await.access.expect("onboarded");
    assert!(marked.problem.is_some(), "the cluster says why");
    let a = admin
        .call_json("run_checks", json!({"clusters": [CONTEXT]}))
        .await;
    assert!(
        a.body.contains(CONTEXT) && a.body.to_lowercase().contains("credentials"),
        "{}",
        a.body
    );
    // Once the token has expired, nothing is tried with it: the message says to onboard again.
    let mut expired = marked.clone();
    expired.token_expires_at = app::ssr::now() - 1;
    state
        .store
        .set_cluster_access(&name, &serde_json::to_string(&expired).expect("json"))
        .await
        .expect("expire");
    let a = admin.call("retest_cluster", &[("name", CONTEXT)]).await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.body);
    assert!(
        a.body.contains("expired") && a.body.contains("onboard the cluster again"),
        "{}",
        a.body
    );

    // Onboarding again with admin credentials mends it.
    let a = admin
        .call_json(
            "plan_onboarding",
            json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": CONTEXT}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plan: ClusterPlan = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(plan.error, None);
    let objects = &plan.steps[0].objects;
    let change_of = |kind: &str, ns: Option<&str>| {
        objects
            .iter()
            .find(|o| o.kind == kind && o.namespace.as_deref() == ns)
            .map(|o| o.change.clone())
            .unwrap_or_else(|| panic!("{kind} planned: {objects:?}"))
    };
    assert_eq!(
        change_of("ServiceAccount", Some("meshdeck-access")),
        "create"
    );
    assert_eq!(change_of("ClusterRole", None), "unchanged");
    assert!(plan.steps[0].commands[0].contains("kubectl --context c2 apply --server-side"));
    let a = admin
        .call_json(
            "onboard_cluster",
            json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": CONTEXT}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mended: ClusterSummary = serde_json::from_str(&a.body).expect("summary");
    assert_eq!(mended.access.as_ref().and_then(|a| a.problem.clone()), None);
    assert!(mended.connectivity.expect("tested").missing.is_empty());

    // The guard is in force when onboarding hands the token over: taken away (its binding deleted by someone),
    // the account may again make what it forbids — the probe onboarding waits on sees that — and onboarding
    // again puts it back and answers only once it refuses again.
    let guarded = account_client(&state, &name).await;
    assert_eq!(
        mesh::access::probe(&guarded).await.expect("probe"),
        mesh::access::Probe::Refused
    );
    testworld::kubectl_ok(
        CONTEXT,
        &[
            "delete",
            "validatingadmissionpolicybinding",
            mesh::access::GUARD,
        ],
        None,
    )
    .await;
    testworld::wait_for(
        30,
        "the guard out of force once its binding is gone",
        || {
            let client = guarded.clone();
            async move {
                match mesh::access::probe(&client).await {
                    Ok(mesh::access::Probe::Accepted) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    let a = admin
        .call_json(
            "onboard_cluster",
            json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": CONTEXT}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let guarded = account_client(&state, &name).await;
    assert_eq!(
        mesh::access::probe(&guarded).await.expect("probe"),
        mesh::access::Probe::Refused,
        "the guard in force as soon as onboarding answered"
    );

    // A mesh installed in a namespace of its own: the preflight reviews the account's rights there, and
    // says to onboard again naming it; onboarding with it gives istio-system's rights there too (cacerts,
    // not another Secret); onboarding again without it takes them away.
    let cp = "meshdeck-cp-test";
    // An earlier run's namespace may still be going away (deleted without waiting at its end).
    testworld::kubectl(
        CONTEXT,
        &[
            "delete",
            "namespace",
            cp,
            "--ignore-not-found",
            "--wait=true",
        ],
        None,
    )
    .await;
    let mut elsewhere = request.clone();
    elsewhere["request"]["settings"] = json!({"install_namespace": cp});
    let (_, permissions) = common::preflight_finding(&mut admin, &elsewhere, "permissions").await;
    assert_eq!(
        permissions.status,
        app::model::CheckStatus::Fail,
        "{permissions:?}"
    );
    assert!(
        permissions
            .message
            .contains(&format!("create secrets cacerts (core) in namespace {cp}")),
        "{permissions:?}"
    );
    let fix = permissions.remediation.clone().unwrap_or_default();
    assert!(
        fix.contains("onboard it again") && fix.contains(cp),
        "{fix}"
    );
    let onboard_with = |planes: serde_json::Value| json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": CONTEXT, "control_planes": planes});
    let a = admin
        .call_json("onboard_cluster", onboard_with(json!(["kube-system"])))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("kube-system is taken"), "{}", a.body);
    assert_eq!(
        planned_role(&mut admin, onboard_with(json!([cp, "istio-system"])), cp).await,
        "create"
    );
    let a = admin
        .call_json("onboard_cluster", onboard_with(json!([cp, "istio-system"])))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let with_cp: ClusterSummary = serde_json::from_str(&a.body).expect("summary");
    assert_eq!(
        with_cp.access.as_ref().map(|a| a.control_planes.clone()),
        Some(vec![cp.to_string()])
    );
    let cp_client = mesh::connect::client(
        &state
            .registry
            .credentials(&name)
            .await
            .expect("credentials"),
    )
    .await
    .expect("client");
    let cacerts_in = |ns: &str, secret: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret, "namespace": ns},
               "stringData": {"ca-cert.pem": "x"}})
    };
    testworld::wait_for(
        30,
        "cacerts writable in the control plane's own namespace",
        || {
            let client = cp_client.clone();
            let obj = cacerts_in(cp, "cacerts");
            async move {
                mesh::apply::apply(&client, &obj, true)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await;
    let e = mesh::apply::apply(&cp_client, &cacerts_in(cp, "not-cacerts"), true)
        .await
        .expect_err("another Secret there");
    assert!(e.to_string().contains("forbidden"), "{e}");
    let (_, permissions) = common::preflight_finding(&mut admin, &elsewhere, "permissions").await;
    assert_ne!(
        permissions.status,
        app::model::CheckStatus::Fail,
        "nothing missing there now: {permissions:?}"
    );
    assert!(
        !permissions.message.contains(&format!("in namespace {cp}")),
        "{permissions:?}"
    );
    // Planning again without naming them keeps them.
    let unnamed = json!({"name": CONTEXT, "kubeconfig": kubeconfig, "context": CONTEXT});
    assert_eq!(planned_role(&mut admin, unnamed, cp).await, "unchanged");
    // Left out: the plan says its rights are taken away, and how by hand.
    assert_eq!(
        planned_role(&mut admin, onboard_with(json!([])), cp).await,
        "delete"
    );
    let a = admin
        .call_json("onboard_cluster", onboard_with(json!([])))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    testworld::wait_for(
        30,
        "the Role in the control plane's namespace taken away",
        || {
            let client = cp_client.clone();
            let obj = cacerts_in(cp, "cacerts");
            async move {
                match mesh::apply::apply(&client, &obj, true).await {
                    Err(e) if e.to_string().contains("forbidden") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;

    // Revoking deletes everything the console made for itself there, and the cluster leaves the registry.

    let a = admin.call("plan_revoke", &[("name", CONTEXT)]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plan: ClusterPlan = serde_json::from_str(&a.body).expect("plan");
    assert!(
        plan.steps[0]
            .objects
            .iter()
            .any(|o| o.kind == "ClusterRoleBinding" && o.change == "delete")
    );
    let a = admin
        .call(
            "revoke_cluster_access",
            &[("name", CONTEXT), ("confirm", "c3")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    let a = admin
        .call(
            "revoke_cluster_access",
            &[("name", CONTEXT), ("confirm", CONTEXT)],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = admin.call("get_cluster", &[("name", CONTEXT)]).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    common::wait_access_gone(CONTEXT).await;
    testworld::kubectl(
        CONTEXT,
        &["delete", "namespace", "meshdeck-cp-test", "--wait=false"],
        None,
    )
    .await;
}
