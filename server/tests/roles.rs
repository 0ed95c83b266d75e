//! The role × server-function matrix: every server function called as nobody, viewer, operator and admin.
//! Each answer is checked: refused with 401/403 when the role is too low, otherwise the function's own
//! answer (for arguments chosen to be harmless: unknown ids, invalid input). A server function without a
//! row here fails the test, so a new endpoint cannot ship unchecked.

mod common;

use app::model::{AppError, Role};
use axum::http::StatusCode;
use common::{Client, add_user, console};
use serde_json::json;

enum Args {
    Form(Vec<(&'static str, &'static str)>),
    Json(serde_json::Value),
}

struct Row {
    name: &'static str,
    /// None: public.
    needs: Option<Role>,
    args: Args,
    /// The status when allowed.
    allowed: StatusCode,
}

fn rows() -> Vec<Row> {
    use Args::*;
    let row = |name, needs, args, allowed| Row {
        name,
        needs,
        args,
        allowed,
    };
    vec![
        row("get_me", None, Form(vec![]), StatusCode::OK),
        row(
            "sign_in",
            None,
            Form(vec![
                ("username", "nobody-here"),
                ("password", "wrong-password-x"),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "change_password",
            Some(Role::Viewer),
            Form(vec![
                ("current", "not-the-password"),
                ("new", "a-new-password-123"),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "list_clusters",
            Some(Role::Viewer),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "get_cluster",
            Some(Role::Viewer),
            Form(vec![("name", "no-such-cluster")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "read_kubeconfig",
            Some(Role::Operator),
            Json(json!({"kubeconfig": "not: [yaml"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "register_clusters",
            Some(Role::Operator),
            Json(json!({"kubeconfig": "", "clusters": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "retest_cluster",
            Some(Role::Operator),
            Form(vec![("name", "no-such-cluster")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "update_cluster",
            Some(Role::Operator),
            Form(vec![
                ("name", "no-such-cluster"),
                ("network", "net1"),
                ("env", ""),
                ("region", ""),
            ]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "remove_cluster",
            Some(Role::Admin),
            Form(vec![
                ("name", "no-such-cluster"),
                ("confirm", "no-such-cluster"),
            ]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_onboarding",
            Some(Role::Operator),
            Json(json!({"name": "no-such-cluster"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "onboard_cluster",
            Some(Role::Operator),
            Json(json!({"name": "no-such-cluster"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "renew_cluster_token",
            Some(Role::Operator),
            Form(vec![("name", "no-such-cluster")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_revoke",
            Some(Role::Admin),
            Form(vec![("name", "no-such-cluster")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "revoke_cluster_access",
            Some(Role::Admin),
            Form(vec![
                ("name", "no-such-cluster"),
                ("confirm", "no-such-cluster"),
            ]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "list_users",
            Some(Role::Admin),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "create_user",
            Some(Role::Admin),
            Form(vec![
                ("username", "Not Valid"),
                ("role", "viewer"),
                ("password", "a-long-password-1"),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "set_user_role",
            Some(Role::Admin),
            Form(vec![("id", "999999"), ("role", "viewer")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "set_user_disabled",
            Some(Role::Admin),
            Form(vec![("id", "999999"), ("disabled", "true")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "reset_user_password",
            Some(Role::Admin),
            Form(vec![("id", "999999"), ("password", "a-long-password-1")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_setup",
            Some(Role::Operator),
            Json(json!({"request": {
                "clusters": [], "istio_version": "1.28.1", "eastwest": "load-balancer",
                "peering": {"mode": "full-mesh"}, "license": {"kind": "key", "key": "k"}
            }})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "preflight_setup",
            Some(Role::Operator),
            Json(json!({"request": {
                "clusters": [], "istio_version": "1.28.1", "eastwest": "load-balancer",
                "peering": {"mode": "full-mesh"}, "license": {"kind": "key", "key": "k"}
            }})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "export_peers",
            Some(Role::Operator),
            Json(json!({"clusters": [], "eastwest": "load-balancer"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "import_peers",
            Some(Role::Operator),
            Json(json!({"into": ["c1"], "yaml": "kind: ["})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "plan_setup",
            Some(Role::Viewer),
            Json(json!({"request": {
                "clusters": [], "istio_version": "1.28.1", "eastwest": "load-balancer",
                "peering": {"mode": "full-mesh"}, "license": {"kind": "key", "key": "k"}
            }})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "list_meshes",
            Some(Role::Viewer),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "list_operator_charts",
            Some(Role::Viewer),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "upload_operator_chart",
            Some(Role::Admin),
            Json(json!({"file_name": "chart.tgz", "data": "bm90IGEgY2hhcnQ="})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "use_operator_chart",
            Some(Role::Admin),
            Json(json!({"sha256": "0000"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "delete_operator_chart",
            Some(Role::Admin),
            Json(json!({"sha256": "0000"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "preflight_grow",
            Some(Role::Operator),
            Json(json!({"request": {"mesh": "no-such-job", "clusters": ["c9"]}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_grow",
            Some(Role::Viewer),
            Json(json!({"request": {"mesh": "no-such-job", "clusters": ["c9"]}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_grow",
            Some(Role::Operator),
            Json(
                json!({"request": {"mesh": "no-such-job", "clusters": ["c9"], "links": {"mode": "both-ways"}}}),
            ),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_remove",
            Some(Role::Viewer),
            Json(json!({"request": {"mesh": "no-such-job", "cluster": "c9"}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_remove",
            Some(Role::Operator),
            Json(json!({"request": {"mesh": "no-such-job", "cluster": "c9", "cacerts": true}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_unlink",
            Some(Role::Viewer),
            Json(json!({"request": {"mesh": "no-such-job", "pairs": [["c1", "c2"]]}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_unlink",
            Some(Role::Operator),
            Json(json!({"request": {"mesh": "no-such-job", "pairs": [["c1", "c2"]]}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_upgrade",
            Some(Role::Viewer),
            Json(json!({"request": {"mesh": "no-such-job", "version": "1.28.1-patch0"}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_upgrade",
            Some(Role::Operator),
            Json(
                json!({"request": {"mesh": "no-such-job", "version": "1.28.1-patch0", "batch": 1}}),
            ),
            StatusCode::NOT_FOUND,
        ),
        row(
            "cluster_drift",
            Some(Role::Viewer),
            Json(json!({"cluster": "c9"})),
            StatusCode::OK,
        ),
        row(
            "start_reapply",
            Some(Role::Operator),
            Json(json!({"cluster": "c9"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_reissue",
            Some(Role::Viewer),
            Json(json!({"cluster": "c9"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_reissue",
            Some(Role::Operator),
            Json(json!({"cluster": "c9"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_rotation",
            Some(Role::Viewer),
            Json(json!({"mesh": "no-such-mesh"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_rotation",
            Some(Role::Operator),
            Json(json!({"mesh": "no-such-mesh"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "current_settings",
            Some(Role::Viewer),
            Json(json!({"mesh": "no-such-mesh"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_settings_change",
            Some(Role::Viewer),
            Json(json!({"request": {"mesh": "no-such-mesh", "eastwest": "load-balancer"}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "start_settings_change",
            Some(Role::Operator),
            Json(json!({"request": {"mesh": "no-such-mesh", "eastwest": "load-balancer"}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "list_jobs",
            Some(Role::Viewer),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "get_job",
            Some(Role::Viewer),
            Form(vec![("id", "no-such-job"), ("after", "0")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "retry_job",
            Some(Role::Operator),
            Form(vec![("id", "no-such-job")]),
            StatusCode::NOT_FOUND,
        ),
        row("get_root", Some(Role::Viewer), Form(vec![]), StatusCode::OK),
        row(
            "get_trust_chains",
            Some(Role::Viewer),
            Json(json!({"clusters": ["no-such-cluster"]})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "run_checks",
            Some(Role::Viewer),
            Json(json!({"clusters": ["no-such-cluster"]})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "create_root",
            Some(Role::Admin),
            Json(
                json!({"algorithm": "ecdsa-p256", "cert_pem": "only a certificate", "key_pem": null}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "export_root",
            Some(Role::Admin),
            Form(vec![("password", "not-the-password")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "topology_graph",
            Some(Role::Viewer),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "topology_objects",
            Some(Role::Viewer),
            Json(json!({"cluster": "no-such-cluster", "peer": null})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "relink",
            Some(Role::Operator),
            Json(json!({"from": "no-such-cluster", "to": "other"})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "confirm_password",
            Some(Role::Viewer),
            Form(vec![("password", "not-the-password")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row("sign_in_options", None, Form(vec![]), StatusCode::OK),
        row(
            "list_group_mappings",
            Some(Role::Admin),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "add_group_mapping",
            Some(Role::Admin),
            Json(json!({"mapping": {"group": " padded", "kind": "role", "role": "viewer"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "remove_group_mapping",
            Some(Role::Admin),
            Json(json!({"mapping": {"group": "no-such-group", "kind": "role", "role": "viewer"}})),
            StatusCode::NOT_FOUND,
        ),
        row(
            "list_sign_in_locks",
            Some(Role::Admin),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "unlock_sign_in",
            Some(Role::Admin),
            Form(vec![("username", ""), ("source", "")]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "start_checks",
            Some(Role::Viewer),
            Form(vec![("clusters[0]", "no-such-cluster")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "get_check_report",
            Some(Role::Viewer),
            Form(vec![("id", "nosuchreport")]),
            StatusCode::NOT_FOUND,
        ),
        row("my_teams", Some(Role::Viewer), Form(vec![]), StatusCode::OK),
        row(
            "topology_teams",
            Some(Role::Viewer),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "team_overview",
            Some(Role::Viewer),
            Form(vec![("team", "no-such-team")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "plan_portal_request",
            Some(Role::Viewer),
            Json(
                json!({"action": {"team": "no-such-team", "kind": "enrol", "namespace": "x", "clusters": ["c1"]}}),
            ),
            StatusCode::FORBIDDEN,
        ),
        row(
            "submit_portal_request",
            Some(Role::Viewer),
            Json(
                json!({"action": {"team": "no-such-team", "kind": "enrol", "namespace": "x", "clusters": ["c1"]}}),
            ),
            StatusCode::FORBIDDEN,
        ),
        row(
            "withdraw_portal_request",
            Some(Role::Viewer),
            Form(vec![("id", "nosuchrequest")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "retry_portal_request",
            Some(Role::Viewer),
            Form(vec![("id", "nosuchrequest")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "list_portal_requests",
            Some(Role::Viewer),
            Form(vec![("team", "no-such-team"), ("pending_only", "false")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "review_portal_request",
            Some(Role::Viewer),
            Form(vec![("id", "nosuchrequest")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "decide_portal_request",
            Some(Role::Operator),
            Form(vec![
                ("id", "nosuchrequest"),
                ("approve", "false"),
                ("comment", ""),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "list_teams",
            Some(Role::Operator),
            Form(vec![]),
            StatusCode::OK,
        ),
        row(
            "save_team",
            Some(Role::Admin),
            Json(
                json!({"team": {"name": "Not A Name", "description": "", "contact": "", "max_namespaces": 1, "max_services": 1,
                "rules": {"enrol": "auto", "leave": "auto", "share": "approval", "unshare": "auto"}}, "create": true}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        row(
            "delete_team",
            Some(Role::Admin),
            Form(vec![("name", "no-such-team")]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "set_team_member",
            Some(Role::Viewer),
            Form(vec![
                ("team", "no-such-team"),
                ("username", "vera"),
                ("role", "member"),
            ]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "set_team_grant",
            Some(Role::Admin),
            Form(vec![
                ("team", "no-such-team"),
                ("cluster", "c1"),
                ("patterns[0]", "x-*"),
            ]),
            StatusCode::NOT_FOUND,
        ),
        row(
            "list_audit",
            Some(Role::Viewer),
            Json(json!({"filter": {"team": "no-such-team"}})),
            StatusCode::NOT_FOUND,
        ),
        // Last: it ends the session.
        row("sign_out", None, Form(vec![]), StatusCode::OK),
    ]
}

#[tokio::test]
async fn every_server_function_answers_each_role_as_its_rules_say() {
    let console = console("roles", None, &[]).await;
    let viewer_pw = add_user(&console, "vera", Role::Viewer).await;
    let operator_pw = add_user(&console, "otto", Role::Operator).await;
    let app = server::router(console);

    // Every registered server function has a row, and every row is a registered server function.
    let mut registered: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, _)| p.trim_start_matches("/api/").to_string())
        .collect();
    registered.sort();
    let mut covered: Vec<String> = rows().iter().map(|r| r.name.to_string()).collect();
    covered.sort();
    assert_eq!(
        registered, covered,
        "the matrix covers exactly the server functions"
    );

    let who: [(Option<Role>, &str, &str); 4] = [
        (None, "", ""),
        (Some(Role::Viewer), "vera", &viewer_pw),
        (Some(Role::Operator), "otto", &operator_pw),
        (Some(Role::Admin), "admin", common::ADMIN_PASSWORD),
    ];
    let mut checked = 0;
    for (role, user, password) in who {
        for row in rows() {
            let mut client = Client::new(app.clone());
            if role.is_some() {
                client.sign_in(user, password).await;
            }
            let a = match &row.args {
                Args::Form(pairs) => client.call(row.name, pairs).await,
                Args::Json(v) => client.call_json(row.name, v.clone()).await,
            };
            let label = format!("{} as {}", row.name, role.map_or("nobody", Role::as_str));
            match (row.needs, role) {
                (Some(_), None) => {
                    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{label}: {}", a.body);
                    assert_eq!(a.error(), AppError::Unauthenticated, "{label}");
                }
                (Some(needed), Some(have)) if have < needed => {
                    assert_eq!(a.status, StatusCode::FORBIDDEN, "{label}: {}", a.body);
                    assert_eq!(a.error(), AppError::Forbidden { needed, have }, "{label}");
                }
                _ => {
                    assert_eq!(a.status, row.allowed, "{label}: {}", a.body);
                    if row.allowed != StatusCode::OK {
                        let e = a.error();
                        assert!(
                            !matches!(e, AppError::Unauthenticated | AppError::Forbidden { .. }),
                            "{label}: {e:?}"
                        );
                    }
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 4 * rows().len());
}
