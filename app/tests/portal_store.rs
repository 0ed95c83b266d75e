//! The portal's tables on a real SQLite file and a real Postgres: teams with members and grants, a request
//! decided once however many decide at the same moment, what the portal keeps applied, and an audit the
//! database itself keeps append-only.
#![cfg(feature = "ssr")]

mod common;

use app::model::{AuditFilter, PortalRules, TeamRole, TeamSettings};
use app::ssr::store::{Error, NewAudit, ObjectRow, Store};
use common::{postgres, sqlite};

fn team(name: &str) -> TeamSettings {
    TeamSettings {
        name: name.into(),
        description: "d".into(),
        contact: "c".into(),
        max_namespaces: 3,
        max_services: 2,
        rules: PortalRules::default(),
    }
}

async fn teams_requests_objects_and_audit(s: Store) {
    s.create_team(&team("pay"), "admin").await.expect("team");
    assert!(matches!(
        s.create_team(&team("pay"), "admin").await,
        Err(Error::Conflict(_))
    ));
    let mut changed = team("pay");
    changed.max_namespaces = 7;
    s.update_team(&changed).await.expect("update");
    assert_eq!(
        s.team("pay")
            .await
            .expect("read")
            .expect("there")
            .max_namespaces,
        7
    );
    s.set_member("pay", "ann", TeamRole::Member)
        .await
        .expect("member");
    s.set_member("pay", "ann", TeamRole::Admin)
        .await
        .expect("role changed");
    assert_eq!(
        s.teams_of("ann").await.expect("teams"),
        vec![("pay".to_string(), TeamRole::Admin)]
    );
    s.set_grant("pay", "c1", &["pay-*".into(), "shop".into()])
        .await
        .expect("grant");
    s.set_grant("pay", "c1", &["pay-*".into()])
        .await
        .expect("replaced");
    let g = s.grants("pay").await.expect("grants");
    assert_eq!(
        (g.len(), g[0].patterns.clone()),
        (1, vec!["pay-*".to_string()])
    );

    // Many decide at once: exactly one wins.
    s.insert_request("r1", "pay", "share", "{}", Some("rule"), "ann", "127.0.0.1")
        .await
        .expect("request");
    let tries = (0..8).map(|i| {
        let s = s.clone();
        async move {
            s.decide_request(
                "r1",
                if i % 2 == 0 { "started" } else { "rejected" },
                &format!("op{i}"),
                None,
            )
            .await
            .expect("decide")
        }
    });
    let won = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1);
    let listed = s.list_requests(Some("pay"), false, 10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert!(
        s.list_requests(None, true, 10)
            .await
            .expect("pending")
            .is_empty()
    );

    // What is kept applied; an empty set is forgotten.
    let mut row = ObjectRow {
        cluster: "c1".into(),
        namespace: "pay-web".into(),
        service: "".into(),
        team: "pay".into(),
        labels: r#"{"istio-injection":"enabled"}"#.into(),
        annotations: "{}".into(),
        job_id: "j".into(),
        updated_at: 0,
        drift: String::new(),
    };
    s.put_portal_object(&row).await.expect("put");
    s.put_portal_object(&row).await.expect("put again");
    assert_eq!(
        s.portal_objects(Some("pay")).await.expect("objects").len(),
        1
    );

    // A drift is recorded once, however many consoles see it at the same moment; its end once too; a
    // re-apply keeps what was recorded (only the drift audit changes it).
    let drift = "label istio-injection=enabled was removed";
    let record = NewAudit {
        actor: "meshdeck",
        team: "pay",
        cluster: "c1",
        kind: "drift",
        subject: "namespace pay-web",
        detail: drift,
        ..Default::default()
    };
    let racers = (0..8).map(|_| s.record_drift(&row, drift, &record));
    let won = futures::future::join_all(racers)
        .await
        .into_iter()
        .map(|r| r.expect("record"))
        .filter(|w| *w)
        .count();
    assert_eq!(won, 1, "one of 8 records the drift");
    s.put_portal_object(&row).await.expect("re-applied");
    let kept = s.portal_objects(Some("pay")).await.expect("objects");
    assert_eq!(kept[0].drift, drift);
    let back = NewAudit {
        kind: "in-step",
        detail: "in step again",
        ..record.clone()
    };
    assert!(s.record_drift(&row, "", &back).await.expect("in step"));
    assert!(!s.record_drift(&row, "", &back).await.expect("again"));
    let drift_records = s
        .audit_records(
            &AuditFilter {
                team: Some("pay".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("records");
    assert_eq!(
        drift_records
            .iter()
            .map(|r| r.kind.as_str())
            .collect::<Vec<_>>(),
        ["drift", "in-step"]
    );
    row.labels = "{}".into();
    s.put_portal_object(&row).await.expect("emptied");
    assert!(s.portal_objects(None).await.expect("objects").is_empty());

    // The audit: filtered, in order, and the database refuses to change or delete a record.
    for (kind, team) in [("request", "pay"), ("approve", "pay"), ("request", "shop")] {
        s.audit(&NewAudit {
            actor: "ann",
            kind,
            team,
            ..Default::default()
        })
        .await
        .expect("audit");
    }
    let pay = s
        .audit_records(
            &AuditFilter {
                team: Some("pay".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("records");
    assert_eq!(
        pay.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        vec!["drift", "in-step", "request", "approve"]
    );
    let kinds = s
        .audit_records(
            &AuditFilter {
                kind: Some("request".into()),
                user: Some("ann".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .expect("records");
    assert_eq!(kinds.len(), 2);
    assert!(
        s.tamper_with_audit("UPDATE audit SET actor = 'mallory'")
            .await
            .is_err()
    );
    assert!(s.tamper_with_audit("DELETE FROM audit").await.is_err());
    assert_eq!(
        s.audit_records(&AuditFilter::default(), 100)
            .await
            .expect("records")
            .len(),
        5,
        "nothing changed or deleted"
    );

    s.delete_team("pay").await.expect("delete");
    assert!(
        s.grants("pay").await.expect("grants").is_empty(),
        "grants go with the team"
    );
    assert!(
        s.teams_of("ann").await.expect("teams").is_empty(),
        "members too"
    );
}

#[tokio::test]
async fn sqlite_teams_requests_objects_and_audit() {
    teams_requests_objects_and_audit(sqlite().await).await;
}

#[tokio::test]
async fn postgres_teams_requests_objects_and_audit() {
    teams_requests_objects_and_audit(postgres().await).await;
}
