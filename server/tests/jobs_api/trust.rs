//! The root of trust: made once, shown without its key, exported only to an admin; an imported root
//! checked and used; each cluster's chain judged against it.

use super::*;

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
