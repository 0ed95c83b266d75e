//! Connectivity reports against the real clusters of the test world (`testenv/up`): a reachable admin, a
//! limited user whose missing verbs are listed, an unreachable address, a wrong CA and a wrong token.

use mesh::connect::{self, Problem};
use mesh::kubeconfig;

fn world_kubeconfig() -> String {
    let path = std::env::var("MESHDECK_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!("MESHDECK_TEST_KUBECONFIG is not set: run scripts/test, or export MESHDECK_TEST_KUBECONFIG=$(testenv/up 3)")
    });
    std::fs::read_to_string(path).expect("read the test kubeconfig")
}

fn creds(context: &str, edit: impl Fn(String) -> String) -> kubeconfig::Credentials {
    let kc = kubeconfig::parse(&edit(world_kubeconfig())).expect("parse");
    kubeconfig::extract(&kc, context, false).expect("extract")
}

#[tokio::test]
async fn an_admin_context_is_reachable_with_version_latency_and_every_verb_allowed() {
    let report = connect::probe(&creds("c1", |s| s)).await;
    assert_eq!(report.problem, None);
    assert!(report.reachable);
    assert_eq!(report.server_version.as_deref(), Some("v1.34.4"));
    assert!(
        report
            .latency
            .is_some_and(|l| l < std::time::Duration::from_secs(5))
    );
    assert_eq!(report.permissions.len(), connect::REQUIRED.len());
    assert!(report.missing().is_empty(), "{:?}", report.missing());
}

#[tokio::test]
async fn a_limited_user_is_reachable_and_told_which_verbs_to_grant() {
    let report = connect::probe(&creds("c1-limited", |s| s)).await;
    assert_eq!(report.problem, None);
    let missing: Vec<String> = report.missing().iter().map(|p| p.to_string()).collect();
    assert!(
        missing.contains(&"create namespaces (core) cluster-wide".to_string()),
        "{missing:?}"
    );
    assert!(
        missing.contains(
            &"create customresourcedefinitions gateways.gateway.networking.k8s.io (apiextensions.k8s.io) cluster-wide"
                .to_string()
        ),
        "{missing:?}"
    );
    assert!(
        missing.contains(&"create pods/portforward (core) in namespace istio-system".to_string()),
        "{missing:?}"
    );
    // Reading is allowed to the `view` role.
    assert!(
        !missing.iter().any(|m| m.starts_with("list pods")),
        "{missing:?}"
    );
}

#[tokio::test]
async fn an_unreachable_address_fails_fast_with_a_message_that_says_so() {
    // Port 1 on loopback: nothing listens there.
    let c = creds("c1", |s| {
        let port = s
            .split("https://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("port")
            .to_string();
        s.replace(
            &format!("https://127.0.0.1:{port}\""),
            "https://127.0.0.1:1\"",
        )
    });
    let start = std::time::Instant::now();
    let report = connect::probe(&c).await;
    assert!(start.elapsed() < connect::CONNECT_TIMEOUT + std::time::Duration::from_secs(3));
    assert!(!report.reachable);
    let p = report.problem.expect("problem");
    assert!(matches!(p, Problem::Unreachable(_)), "{p:?}");
    assert!(
        p.to_string().starts_with("cannot reach the API server"),
        "{p}"
    );
}

#[tokio::test]
async fn a_wrong_ca_is_reported_as_an_untrusted_certificate() {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = params.self_signed(&key).expect("ca").pem();
    use base64::Engine;
    let other = base64::engine::general_purpose::STANDARD.encode(other);
    let c = creds("c1", |s| {
        let start = s.find("certificate-authority-data: \"").expect("ca data")
            + "certificate-authority-data: \"".len();
        let end = start + s[start..].find('"').expect("end");
        format!("{}{other}{}", &s[..start], &s[end..])
    });
    let report = connect::probe(&c).await;
    let p = report.problem.expect("problem");
    assert!(matches!(p, Problem::Tls(_)), "{p:?}");
    assert!(p.to_string().contains("certificate-authority-data"), "{p}");
}

#[tokio::test]
async fn a_wrong_token_is_reported_as_refused_credentials() {
    let c = creds("c1", |s| {
        let start = s.find("c1-admin, user: {token: \"").expect("token")
            + "c1-admin, user: {token: \"".len();
        let end = start + s[start..].find('"').expect("end");
        format!("{}expired-or-wrong{}", &s[..start], &s[end..])
    });
    let report = connect::probe(&c).await;
    let p = report.problem.expect("problem");
    assert!(matches!(p, Problem::Unauthorized(_)), "{p:?}");
    assert!(report.reachable);
}
