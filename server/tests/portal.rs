//! The team portal against the test world's clusters: a team enrols a namespace in three clusters and sees
//! the labels there; shares a service (waiting for an operator, who approves), sees the label, the address
//! and the warnings; a request outside the grant is refused before anything is written; one over the limit
//! waits and a rejected one writes nothing; a label removed with kubectl shows as drift and is re-applied;
//! both are undone; the audit lists it all in order. And who may do what, with teams.

mod common;

use std::collections::BTreeMap;

use app::model::{
    AppError, AuditRecord, JobDetail, PortalPlan, PortalRequestView, PortalSubmitted, Role,
    TeamOverview, TeamScope,
};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Client, add_user, console};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

const CLUSTERS: [&str; 3] = ["c1", "c2", "c3"];

async fn labels(
    context: &str,
    ns: &str,
    service: Option<&str>,
) -> Option<BTreeMap<String, String>> {
    let client = testworld::client(context).await;
    match service {
        None => Api::<Namespace>::all(client)
            .get_opt(ns)
            .await
            .expect("get namespace")
            .map(|n| n.labels().clone()),
        Some(s) => Api::<Service>::namespaced(client, ns)
            .get_opt(s)
            .await
            .expect("get service")
            .map(|n| n.labels().clone()),
    }
}

fn action(team: &str, kind: &str, ns: &str, service: Option<&str>, clusters: &[&str]) -> Value {
    json!({"action": {"team": team, "kind": kind, "namespace": ns, "service": service, "clusters": clusters}})
}

async fn submit(client: &mut Client, body: Value) -> PortalSubmitted {
    let a = client.call_json("submit_portal_request", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("submitted")
}

async fn requests(client: &mut Client, team: &str) -> Vec<PortalRequestView> {
    let a = client
        .call(
            "list_portal_requests",
            &[("team", team), ("pending_only", "false")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("requests")
}

/// Waits until request `id` is applied (or fails the test when its job fails).
async fn applied(client: &mut Client, team: &str, id: &str) -> PortalRequestView {
    let start = std::time::Instant::now();
    loop {
        let r = requests(client, team)
            .await
            .into_iter()
            .find(|r| r.id == id)
            .expect("listed");
        match r.state.as_str() {
            "applied" => return r,
            "failed" => panic!("request {id} failed: {r:?}"),
            _ if start.elapsed().as_secs() > 60 => panic!("request {id} still {}", r.state),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

async fn job(client: &mut Client, id: &str) -> JobDetail {
    let a = client.call("get_job", &[("id", id), ("after", "0")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    serde_json::from_str(&a.body).expect("job")
}

async fn overview(client: &mut Client, team: &str) -> TeamOverview {
    let a = client.call("team_overview", &[("team", team)]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let o: Option<TeamOverview> = serde_json::from_str(&a.body).expect("overview");
    o.expect("the team")
}

/// Waits (up to 30 s) for `f` to give something.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < until, "waited 30 s: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The one audit record of `kind` about `subject` in the team's audit (None while there is none; a second
/// one fails: a drift is recorded once).
async fn audit_of(mut c: Client, team: &str, kind: &str, subject: String) -> Option<AuditRecord> {
    let a = c
        .call_json(
            "list_audit",
            json!({"filter": {"team": team, "kind": kind}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mut found: Vec<AuditRecord> = serde_json::from_str::<Vec<AuditRecord>>(&a.body)
        .expect("audit")
        .into_iter()
        .filter(|r| r.subject == subject)
        .collect();
    assert!(found.len() <= 1, "recorded once: {found:?}");
    found.pop()
}

fn team_settings(name: &str, max_namespaces: u32) -> Value {
    json!({"team": {"name": name, "description": "Payments", "contact": "pay@example.com",
        "max_namespaces": max_namespaces, "max_services": 5,
        "rules": {"enrol": "auto", "leave": "auto", "share": "approval", "unshare": "auto"}}, "create": true})
}

#[tokio::test]
async fn a_team_enrols_shares_with_approval_sees_drift_and_undoes_within_its_grants() {
    let console = console("portal-flow", None, &[]).await;
    let ann_pw = add_user(&console, "ann", Role::Viewer).await;
    let olga_pw = add_user(&console, "olga", Role::Operator).await;
    // The topology's watches and the drift audit, as the console runs them.
    server::spawn_background(&console, std::time::Duration::from_secs(600));
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    let mut ann = Client::new(app.clone());
    ann.sign_in("ann", &ann_pw).await;
    let mut olga = Client::new(app.clone());
    olga.sign_in("olga", &olga_pw).await;
    common::register(&mut admin, &CLUSTERS).await;

    // The platform team makes the team: limits, members, grants (never a system namespace).
    let team = "payments";
    let a = admin.call_json("save_team", team_settings(team, 2)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = admin
        .call(
            "set_team_member",
            &[("team", team), ("username", "ann"), ("role", "member")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = admin
        .call(
            "set_team_grant",
            &[("team", team), ("cluster", "c1"), ("patterns[0]", "kube-*")],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("kube-system"), "{}", a.body);
    for c in CLUSTERS {
        let a = admin
            .call(
                "set_team_grant",
                &[("team", team), ("cluster", c), ("patterns[0]", "pay-*")],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    let ns = format!("pay-{}-web", std::process::id());

    // Outside the grant: refused, nothing written.
    let a = ann
        .call_json(
            "submit_portal_request",
            action(team, "enrol", "billing", None, &CLUSTERS),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert!(
        matches!(a.error(), AppError::Refused(m) if m.contains("namespace billing in cluster c1")),
        "{}",
        a.body
    );
    assert!(
        requests(&mut ann, team).await.is_empty(),
        "nothing recorded"
    );
    assert!(
        labels("c1", "billing", None).await.is_none(),
        "nothing written"
    );

    // Taking out a namespace the portal never enrolled writes nothing (and creates nothing).
    let never = format!("pay-{}-never", std::process::id());
    let s = submit(&mut ann, action(team, "leave", &never, None, &["c1"])).await;
    applied(&mut ann, team, &s.id).await;
    assert!(labels("c1", &never, None).await.is_none(), "not created");

    // The plan: one Namespace per cluster, created; the kubectl commands.
    let a = ann
        .call_json(
            "plan_portal_request",
            action(team, "enrol", &ns, None, &CLUSTERS),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plan: PortalPlan = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(plan.waits_for, None, "enrolment is automatic for this team");
    assert_eq!(plan.clusters.len(), 3);
    for c in &plan.clusters {
        assert_eq!(c.error, None, "{c:?}");
        let step = &c.steps[0];
        assert_eq!(step.objects[0].kind, "Namespace");
        assert_eq!(step.objects[0].change, "create");
        assert!(
            step.commands
                .iter()
                .any(|l| l.contains(&format!("create namespace {ns}"))),
            "{step:?}"
        );
    }

    // Enrol in three clusters: runs at once; the labels are there.
    let s = submit(&mut ann, action(team, "enrol", &ns, None, &CLUSTERS)).await;
    assert_eq!(s.waits_for, None);
    let r = applied(&mut ann, team, &s.id).await;
    assert_eq!(r.decided_by.as_deref(), Some("auto-approved"));
    for c in CLUSTERS {
        let l = labels(c, &ns, None).await.expect("namespace made");
        assert_eq!(
            l.get("meshdeck.io/team").map(String::as_str),
            Some(team),
            "{c}: {l:?}"
        );
        assert_eq!(mesh::portal::mode_of(&l), Some("sidecar"), "{c}: {l:?}");
    }
    // Again: nothing changes.
    let again = submit(&mut ann, action(team, "enrol", &ns, None, &CLUSTERS)).await;
    applied(&mut ann, team, &again.id).await;
    let d = job(&mut ann, again.job_id.as_deref().expect("job")).await;
    assert!(
        d.steps.iter().all(|s| s.changed == Some(false)),
        "{:?}",
        d.steps
    );

    // Over the limit (2 namespaces): waits; rejected, nothing written.
    let ns2 = format!("pay-{}-api", std::process::id());
    let ns3 = format!("pay-{}-extra", std::process::id());
    let s2 = submit(&mut ann, action(team, "enrol", &ns2, None, &["c1"])).await;
    applied(&mut ann, team, &s2.id).await;
    let s3 = submit(&mut ann, action(team, "enrol", &ns3, None, &["c1"])).await;
    let why = s3.waits_for.expect("waits");
    assert!(why.contains("at most 2 namespaces"), "{why}");
    let a = olga
        .call(
            "decide_portal_request",
            &[("id", &s3.id), ("approve", "false"), ("comment", "")],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a rejection says why: {}",
        a.body
    );
    let a = ann
        .call(
            "decide_portal_request",
            &[("id", &s3.id), ("approve", "true"), ("comment", "")],
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "a team member cannot approve: {}",
        a.body
    );
    let a = olga
        .call(
            "decide_portal_request",
            &[
                ("id", &s3.id),
                ("approve", "false"),
                ("comment", "two namespaces are enough"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let r: PortalRequestView = serde_json::from_str(&a.body).expect("view");
    assert_eq!(r.state, "rejected");
    assert!(labels("c1", &ns3, None).await.is_none(), "nothing written");

    // A service with differing ports, then shared: waits for an operator.
    for (c, port) in [("c1", 80), ("c2", 80), ("c3", 8080)] {
        let yaml = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  ports: [{{name: http, port: {port}}}]\n  selector: {{app: web}}\n"
        );
        testworld::kubectl_ok(c, &["apply", "-f", "-"], Some(&yaml)).await;
    }
    let share = || {
        let mut a = action(team, "share", &ns, Some("web"), &CLUSTERS);
        a["action"]["spread"] = json!(true);
        a
    };
    let a = ann.call_json("plan_portal_request", share()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plan: PortalPlan = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(
        plan.address.as_deref(),
        Some(format!("web.{ns}.mesh.internal").as_str())
    );
    assert!(
        plan.waits_for
            .as_deref()
            .is_some_and(|w| w.contains("rule")),
        "{plan:?}"
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("ports differ") && w.contains("c3: http/8080/TCP")),
        "{:?}",
        plan.warnings
    );
    assert!(
        plan.clusters
            .iter()
            .all(|c| c.steps[0].objects[0].change == "update"),
        "{plan:?}"
    );
    let s = submit(&mut ann, share()).await;
    assert!(s.waits_for.is_some() && s.job_id.is_none());
    assert!(
        !labels("c1", &ns, Some("web"))
            .await
            .expect("svc")
            .contains_key("solo.io/service-scope")
    );
    let a = olga
        .call("list_portal_requests", &[("pending_only", "true")])
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let queue: Vec<PortalRequestView> = serde_json::from_str(&a.body).expect("queue");
    assert!(queue.iter().any(|r| r.id == s.id), "{queue:?}");
    let a = olga.call("review_portal_request", &[("id", &s.id)]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = olga
        .call(
            "decide_portal_request",
            &[("id", &s.id), ("approve", "true"), ("comment", "ok")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    applied(&mut ann, team, &s.id).await;
    for c in CLUSTERS {
        let l = labels(c, &ns, Some("web")).await.expect("svc");
        assert_eq!(
            l.get("solo.io/service-scope").map(String::as_str),
            Some("global"),
            "{c}"
        );
    }
    let o = overview(&mut ann, team).await;
    let shared = o.shared.iter().find(|s| s.namespace == ns).expect("shared");
    assert_eq!(
        shared.address.as_deref(),
        Some(format!("web.{ns}.mesh.internal").as_str())
    );
    assert!(
        o.objects.iter().all(|o| o.drift.is_empty()),
        "{:?}",
        o.objects
    );

    // Drift: the label removed by hand shows, and is re-applied.
    testworld::kubectl_ok(
        "c2",
        &[
            "label",
            "service",
            "-n",
            &ns,
            "web",
            "solo.io/service-scope-",
        ],
        None,
    )
    .await;
    let o = overview(&mut ann, team).await;
    let drifted: Vec<_> = o.objects.iter().filter(|o| !o.drift.is_empty()).collect();
    assert_eq!(drifted.len(), 1, "{drifted:?}");
    assert_eq!(
        (drifted[0].cluster.as_str(), drifted[0].service.as_deref()),
        ("c2", Some("web"))
    );
    assert!(
        drifted[0].drift[0].contains("solo.io/service-scope=global was removed"),
        "{drifted:?}"
    );
    // The topology's team filter sees it from the watches, and the audit records it once it has lasted.
    let scope = eventually("the topology's team scope shows the drift", || {
        let mut ann = ann.clone();
        async move {
            let a = ann.call("topology_teams", &[]).await;
            let scopes: Vec<TeamScope> = serde_json::from_str(&a.body).ok()?;
            scopes
                .into_iter()
                .find(|s| s.team == "payments")
                .filter(|s| s.objects.iter().any(|o| !o.drift.is_empty()))
        }
    })
    .await;
    let drifted: Vec<_> = scope
        .objects
        .iter()
        .filter(|o| !o.drift.is_empty())
        .collect();
    assert_eq!(drifted.len(), 1, "{drifted:?}");
    assert_eq!(
        (drifted[0].cluster.as_str(), drifted[0].service.as_deref()),
        ("c2", Some("web"))
    );
    let subject = format!("service {ns}/web");
    let record = eventually("the drift is an audit record", || {
        audit_of(ann.clone(), team, "drift", subject.clone())
    })
    .await;
    assert_eq!(
        (record.actor.as_str(), record.cluster.as_str()),
        ("meshdeck", "c2")
    );
    assert!(
        record
            .detail
            .contains("solo.io/service-scope=global was removed"),
        "{record:?}"
    );
    let s = submit(&mut ann, action(team, "reapply", &ns, None, &["c2"])).await;
    applied(&mut ann, team, &s.id).await;
    eventually("back in step is an audit record", || {
        audit_of(ann.clone(), team, "in-step", subject.clone())
    })
    .await;
    assert_eq!(
        labels("c2", &ns, Some("web"))
            .await
            .expect("svc")
            .get("solo.io/service-scope")
            .map(String::as_str),
        Some("global")
    );

    // Undo both.
    let s = submit(
        &mut ann,
        action(team, "unshare", &ns, Some("web"), &CLUSTERS),
    )
    .await;
    applied(&mut ann, team, &s.id).await;
    let s = submit(&mut ann, action(team, "leave", &ns, None, &CLUSTERS)).await;
    applied(&mut ann, team, &s.id).await;
    for c in CLUSTERS {
        let svc = labels(c, &ns, Some("web")).await.expect("svc");
        assert!(!svc.contains_key("solo.io/service-scope"), "{c}: {svc:?}");
        let l = labels(c, &ns, None).await.expect("namespace kept");
        assert_eq!(mesh::portal::mode_of(&l), None, "{c}: {l:?}");
        assert_eq!(l.get("meshdeck.io/team").map(String::as_str), Some(team));
    }

    // The audit, in order, for the team; as a file too.
    let a = ann
        .call_json("list_audit", json!({"filter": {"team": team}}))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let audit: Vec<AuditRecord> = serde_json::from_str(&a.body).expect("audit");
    let kinds: Vec<&str> = audit.iter().map(|r| r.kind.as_str()).collect();
    let order = [
        "team-created",
        "member",
        "grant",
        "request",
        "job",
        "applied",
        "reject",
        "approve",
        "applied",
    ];
    let mut at = 0;
    for k in kinds.iter() {
        if at < order.len() && *k == order[at] {
            at += 1;
        }
    }
    assert_eq!(at, order.len(), "in order: {kinds:?}");
    let rejected = audit.iter().find(|r| r.kind == "reject").expect("reject");
    assert_eq!(
        (rejected.actor.as_str(), rejected.detail.as_str()),
        ("olga", "two namespaces are enough")
    );
    assert!(audit.iter().all(|r| r.team == team));
    let csv = ann
        .page(&format!("/export/audit?team={team}&format=csv"))
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert!(
        csv.body
            .starts_with("id,at,actor,source,team,cluster,kind,subject,detail")
    );
    assert_eq!(csv.body.lines().count(), audit.len() + 1);
    let all = ann.page("/export/audit?format=json").await;
    assert_eq!(
        all.status,
        StatusCode::FORBIDDEN,
        "a member sees only their team's: {}",
        all.body
    );

    for c in CLUSTERS {
        testworld::kubectl(
            c,
            &[
                "delete",
                "namespace",
                &ns,
                &ns2,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn who_may_do_what_with_teams() {
    let console = console("portal-roles", None, &[]).await;
    let mut passwords = BTreeMap::new();
    for (n, r) in [
        ("mia", Role::Viewer),
        ("tia", Role::Viewer),
        ("otis", Role::Viewer),
        ("vic", Role::Viewer),
        ("opal", Role::Operator),
    ] {
        passwords.insert(n, add_user(&console, n, r).await);
    }
    let app = server::router(console);
    let mut admin = Client::new(app.clone());
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    common::register(&mut admin, &["c1"]).await;
    for (t, member, role) in [
        ("team-a", "mia", "member"),
        ("team-a", "tia", "admin"),
        ("team-b", "otis", "member"),
    ] {
        let a = admin.call_json("save_team", team_settings(t, 5)).await;
        assert!(
            a.status == StatusCode::OK || a.status == StatusCode::CONFLICT,
            "{}",
            a.body
        );
        let a = admin
            .call(
                "set_team_member",
                &[("team", t), ("username", member), ("role", role)],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let a = admin
            .call(
                "set_team_grant",
                &[("team", t), ("cluster", "c1"), ("patterns[0]", "roles-*")],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
    // A request of team-a waiting for approval (a share), made by mia.
    let ns = format!("roles-{}", std::process::id());
    let mut mia = Client::new(app.clone());
    mia.sign_in("mia", &passwords["mia"]).await;
    let waiting = submit(&mut mia, action("team-a", "share", &ns, None, &["c1"])).await;
    assert!(waiting.waits_for.is_some());

    // (who, may plan/see team-a, may decide)
    let cases: [(&str, Option<&str>, bool, bool); 7] = [
        ("member of the team", Some("mia"), true, false),
        ("admin of the team", Some("tia"), true, false),
        ("member of another team", Some("otis"), false, false),
        ("no team (viewer)", Some("vic"), false, false),
        ("platform operator", Some("opal"), false, true),
        ("admin", Some("admin"), false, true),
        ("anonymous", None, false, false),
    ];
    for (label, user, member, operator) in cases {
        let mut c = Client::new(app.clone());
        if let Some(u) = user {
            let p = if u == "admin" {
                common::ADMIN_PASSWORD.to_string()
            } else {
                passwords[u].clone()
            };
            c.sign_in(u, &p).await;
        }
        let plan = c
            .call_json(
                "plan_portal_request",
                action("team-a", "enrol", &ns, None, &["c1"]),
            )
            .await;
        let look = c.call("team_overview", &[("team", "team-a")]).await;
        let scopes = c.call("topology_teams", &[]).await;
        let decide = c
            .call(
                "decide_portal_request",
                &[
                    ("id", &waiting.id),
                    ("approve", "false"),
                    ("comment", "checking roles"),
                ],
            )
            .await;
        if user.is_none() {
            for a in [&plan, &look, &scopes, &decide] {
                assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{label}: {}", a.body);
            }
            continue;
        }
        assert_eq!(
            plan.status == StatusCode::OK,
            member,
            "{label} plans: {}",
            plan.body
        );
        if !member {
            assert_eq!(plan.status, StatusCode::FORBIDDEN, "{label}: {}", plan.body);
        }
        assert_eq!(
            look.status == StatusCode::OK,
            member || operator,
            "{label} looks: {}",
            look.body
        );
        // The topology's team filter offers the teams one may look at, and no other.
        assert_eq!(scopes.status, StatusCode::OK, "{label}: {}", scopes.body);
        let offered: Vec<serde_json::Value> =
            serde_json::from_str(&scopes.body).expect("topology_teams answers a list");
        assert_eq!(
            offered.iter().any(|s| s["team"] == "team-a"),
            member || operator,
            "{label} is offered team-a on the topology: {}",
            scopes.body
        );
        // Deciding: operators only (and the first one to decide wins; the others are told it was decided).
        if operator {
            assert!(
                decide.status == StatusCode::OK || decide.status == StatusCode::CONFLICT,
                "{label}: {}",
                decide.body
            );
        } else {
            assert_eq!(
                decide.status,
                StatusCode::FORBIDDEN,
                "{label}: {}",
                decide.body
            );
        }
    }
    // A team admin may add plain members to their team, not to another, and may not make admins.
    let mut tia = Client::new(app.clone());
    tia.sign_in("tia", &passwords["tia"]).await;
    let a = tia
        .call(
            "set_team_member",
            &[("team", "team-a"), ("username", "vic"), ("role", "member")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = tia
        .call(
            "set_team_member",
            &[("team", "team-a"), ("username", "vic"), ("role", "admin")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let a = tia
        .call(
            "set_team_member",
            &[("team", "team-b"), ("username", "vic"), ("role", "member")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    // The plain request form (JavaScript off): a member's request is recorded and the browser sent to it; one
    // outside the grants goes back to the form; no one signed in goes to sign in; another site is refused.
    let plain = |origin: &str| {
        Request::post("/portal/request")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "text/html")
            .header(header::ORIGIN, origin)
            .body(Body::from(format!(
                "team=team-a&kind=share&namespace={ns}&service=web&cluster=c1&scope=global"
            )))
            .expect("request")
    };
    let location = |a: &common::Answer| {
        a.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut mia = Client::new(app.clone());
    mia.sign_in("mia", &passwords["mia"]).await;
    let a = mia.send(plain("http://localhost")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(
        location(&a).starts_with("/team?team=team-a&request="),
        "{}",
        location(&a)
    );
    let mut otis = Client::new(app.clone());
    otis.sign_in("otis", &passwords["otis"]).await;
    let a = otis.send(plain("http://localhost")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert!(
        location(&a).contains("namespace=") && location(&a).ends_with("&preview=1"),
        "{}",
        location(&a)
    );
    let a = Client::new(app.clone())
        .send(plain("http://localhost"))
        .await;
    assert_eq!(
        (a.status, location(&a).as_str()),
        (StatusCode::SEE_OTHER, "/sign-in?next=/team")
    );
    let a = mia.send(plain("https://evil.example")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);

    // Members of another team do not see team-a's audit.
    let a = otis
        .call_json("list_audit", json!({"filter": {"team": "team-a"}}))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
}
