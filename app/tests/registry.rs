//! The cluster registry against the real clusters of the test world and a real SQLite store: register,
//! re-test, edit, remove; and every refusal leaves nothing stored.
#![cfg(feature = "ssr")]

use std::collections::BTreeMap;
use std::sync::Arc;

use app::ssr::registry::{Error, Registration, Registry};
use app::ssr::secrets::SecretBox;
use app::ssr::store::Store;
use mesh::ids::{ClusterName, NetworkName};

fn world_kubeconfig() -> String {
    let path = std::env::var("MESHDECK_TEST_KUBECONFIG")
        .unwrap_or_else(|_| panic!("MESHDECK_TEST_KUBECONFIG is not set: run scripts/test, or export MESHDECK_TEST_KUBECONFIG=$(testenv/up 3)"));
    std::fs::read_to_string(path).expect("read the test kubeconfig")
}

async fn registry() -> (Registry, Store) {
    let dir = std::env::temp_dir().join(format!(
        "meshdeck-registry-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::connect(&format!("sqlite://{}/meshdeck.db", dir.display()))
        .await
        .expect("store");
    let secrets = Arc::new(SecretBox::from_key(&[42u8; 32]).expect("key"));
    let reach = mesh::connect::Reach {
        networks: vec![],
        allow_loopback: true,
    };
    (Registry::new(store.clone(), secrets, reach), store)
}

fn reg(name: &str, context: &str, kubeconfig: String) -> Registration {
    Registration {
        name: ClusterName::new(name).expect("name"),
        network: None,
        labels: BTreeMap::from([
            ("env".into(), "test".into()),
            ("region".into(), "us-east-1".into()),
        ]),
        kubeconfig,
        context: context.into(),
        allow_insecure: false,
        onboard: false,
        by: "test".into(),
    }
}

#[tokio::test]
async fn a_cluster_registers_healthy_with_sealed_credentials_and_can_be_retested_edited_and_removed()
 {
    let (registry, store) = registry().await;
    let (record, conn) = registry
        .register(reg("east", "c1", world_kubeconfig()))
        .await
        .expect("register");
    assert!(conn.healthy(), "{conn:?}");
    assert_eq!(conn.server_version.as_deref(), Some("v1.34.4"));
    assert_eq!(
        record.network.as_str(),
        "east",
        "network defaults to the cluster name"
    );
    // What is stored does not contain the token in clear.
    let kc = world_kubeconfig();
    let token = kc
        .split("c1-admin, user: {token: \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token");
    let stored = store
        .cluster(&record.name)
        .await
        .expect("get")
        .expect("stored");
    assert!(
        !stored
            .credentials
            .windows(token.len())
            .any(|w| w == token.as_bytes())
    );
    // The server can open them and use them.
    let creds = registry
        .credentials(&record.name)
        .await
        .expect("credentials");
    assert_eq!(creds.server, record.server);
    let again = registry.retest(&record.name).await.expect("retest");
    assert!(again.healthy());
    registry
        .update(
            &record.name,
            &NetworkName::new("net-east").expect("net"),
            &BTreeMap::from([("env".into(), "prod".into())]),
        )
        .await
        .expect("update");
    let listed = registry.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0.network.as_str(), "net-east");
    assert!(listed[0].1.as_ref().is_some_and(|c| c.healthy()));
    registry.remove(&record.name).await.expect("remove");
    assert!(matches!(
        registry.remove(&record.name).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_limited_user_registers_with_the_verbs_to_grant() {
    let (registry, _) = registry().await;
    let (_, conn) = registry
        .register(reg("limited", "c1-limited", world_kubeconfig()))
        .await
        .expect("register");
    assert!(conn.reachable && conn.problem.is_none());
    assert!(!conn.healthy());
    assert!(
        conn.missing
            .iter()
            .any(|m| m.starts_with("create namespaces (core) cluster-wide — ")),
        "{:?}",
        conn.missing
    );
}

#[tokio::test]
async fn refused_registrations_store_nothing_and_say_why() {
    let (registry, store) = registry().await;
    registry
        .register(reg("dup", "c2", world_kubeconfig()))
        .await
        .expect("first");
    let dup = registry
        .register(reg("dup", "c3", world_kubeconfig()))
        .await
        .expect_err("duplicate");
    assert!(matches!(dup, Error::Duplicate(_)), "{dup}");

    // An unreachable address: named cluster and step, nothing stored.
    let kc = world_kubeconfig();
    let port = kc
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("port")
        .to_string();
    let closed = kc.replace(
        &format!("https://127.0.0.1:{port}\""),
        "https://127.0.0.1:1\"",
    );
    let err = registry
        .register(reg("gone", "c1", closed))
        .await
        .expect_err("unreachable");
    assert!(
        err.to_string()
            .starts_with("cluster \"gone\" (step: connectivity test): cannot reach the API server"),
        "{err}"
    );

    // A kubeconfig that would run a program on the server.
    let exec = "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {server: \"https://127.0.0.1:6443\"}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\nusers:\n- name: x\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, id]}\n";
    let err = registry
        .register(reg("exec", "x", exec.into()))
        .await
        .expect_err("exec");
    assert!(err.to_string().contains("exec plugin"), "{err}");
    // A missing context, a 5 MB paste, bad labels.
    let err = registry
        .register(reg("nocontext", "c9", world_kubeconfig()))
        .await
        .expect_err("context");
    assert!(err.to_string().contains("no context named \"c9\""), "{err}");
    let err = registry
        .register(reg("huge", "c1", "#".repeat(5 * 1024 * 1024)))
        .await
        .expect_err("size");
    assert!(err.to_string().contains("limit"), "{err}");
    let mut bad = reg("badlabels", "c1", world_kubeconfig());
    bad.labels.insert("env".into(), "has space".into());
    assert!(matches!(
        registry.register(bad).await,
        Err(Error::Invalid {
            field: "labels",
            ..
        })
    ));

    let names: Vec<String> = store
        .list_clusters()
        .await
        .expect("list")
        .into_iter()
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(names, ["dup"], "only the one good registration is stored");
}

#[tokio::test]
async fn registration_reaches_only_the_addresses_the_console_allows_and_echoes_nothing() {
    let dir = std::env::temp_dir().join(format!("meshdeck-registry-reach-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::connect(&format!("sqlite://{}/meshdeck.db", dir.display()))
        .await
        .expect("store");
    let secrets = Arc::new(SecretBox::from_key(&[42u8; 32]).expect("key"));
    // The default: loopback (this machine's own services) is not a cluster address unless asked for.
    let strict = Registry::new(
        store.clone(),
        secrets.clone(),
        mesh::connect::Reach::default(),
    );
    let err = strict
        .register(reg("local", "c1", world_kubeconfig()))
        .await
        .expect_err("loopback refused");
    assert!(
        matches!(&err, Error::NotAllowed { .. })
            && err.to_string().contains("--allow-loopback-clusters"),
        "{err}"
    );
    // Cloud metadata lives on link-local addresses: refused whatever else is allowed.
    let metadata = world_kubeconfig().replace("https://127.0.0.1:", "https://169.254.169.254:");
    let open = Registry::new(
        store.clone(),
        secrets.clone(),
        mesh::connect::Reach {
            networks: vec![],
            allow_loopback: true,
        },
    );
    let err = open
        .register(reg("metadata", "c1", metadata))
        .await
        .expect_err("link-local refused");
    assert!(err.to_string().contains("link-local"), "{err}");
    // Ranges set by the operator: only those (and loopback, when allowed).
    let ranged = Registry::new(
        store.clone(),
        secrets,
        mesh::connect::Reach {
            networks: vec!["10.0.0.0/8".parse().expect("net")],
            allow_loopback: false,
        },
    );
    let err = ranged
        .register(reg(
            "outside",
            "c1",
            world_kubeconfig().replace("https://127.0.0.1:", "https://192.0.2.10:"),
        ))
        .await
        .expect_err("outside the ranges");
    assert!(err.to_string().contains("10.0.0.0/8"), "{err}");
    assert!(
        store.list_clusters().await.expect("list").is_empty(),
        "nothing stored"
    );
}
