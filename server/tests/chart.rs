//! The Helm chart (`charts/meshdeck`) against the real test world: lint; settings that cannot work are refused
//! with the reason; rendered objects pass the API server's server-side dry run; installed into a cluster
//! (kwok plays the pod) it becomes available with the securities and probes it promises; an upgrade keeps
//! the secret key; an uninstall keeps the key and the database's volume. And the environment the chart gives
//! the container starts the real console binary, whose first admin signs in with the chart's password.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

const CONTEXT: &str = "c3";
const NS: &str = "meshdeck-chart";

fn chart() -> String {
    testworld::repo_path("charts/meshdeck")
        .display()
        .to_string()
}

async fn helm_ok(args: &[&str]) -> String {
    let out = testworld::helm(CONTEXT, args).await;
    assert!(out.ok, "helm {args:?}: {}", out.stderr);
    out.stdout
}

/// The documents of a rendered chart, by kind and name.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter_map(|d| serde_yaml::from_str::<Value>(d).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} is rendered"))
}

#[tokio::test]
async fn the_chart_installs_upgrades_and_uninstalls_keeping_the_key_and_the_database() {
    let chart = chart();
    helm_ok(&["lint", &chart]).await;
    helm_ok(&[
        "lint",
        &chart,
        "--set",
        "database.type=postgres,database.postgres.existingSecret=pg,replicaCount=3",
    ])
    .await;

    // Settings that cannot work are refused, saying why.
    for (set, why) in [
        ("replicaCount=2", "needs database.type=postgres"),
        ("database.type=postgres", "existingSecret"),
        ("database.type=mysql", "sqlite or postgres"),
        ("persistence.enabled=false", "lost with the pod"),
        (
            "metrics.serviceMonitor.enabled=true",
            "metrics.existingSecret",
        ),
        ("oidc.enabled=true", "needs oidc.issuer and oidc.clientId"),
        (
            "oidc.enabled=true,oidc.issuer=https://idp.example.com,oidc.clientId=md",
            "needs config.publicUrl",
        ),
        ("oidc.breakGlassUser=admin", "only for oidc.enabled=true"),
    ] {
        let out = testworld::helm(CONTEXT, &["template", "t", &chart, "--set", set]).await;
        assert!(!out.ok, "{set} is refused");
        assert!(out.stderr.contains(why), "{set}: {}", out.stderr);
    }

    // Rendered with everything on, each object passes the API server's validation (server-side dry run).
    let everything = helm_ok(&[
        "template",
        "md",
        &chart,
        "-n",
        "default",
        "--set",
        "database.type=postgres,database.postgres.existingSecret=pg,replicaCount=2,ingress.enabled=true,\
         config.publicUrl=https://meshdeck.example.com,config.clusterNetworks=10.0.0.0/8,\
         oidc.enabled=true,oidc.issuer=https://idp.example.com,oidc.clientId=md,oidc.existingSecret=oidc,\
         oidc.caConfigMap=corp-ca,oidc.breakGlassUser=admin,oidc.label=Acme,oidc.impersonate=true",
        "--set-json",
        r#"oidc.mappings=[{"group":"platform-admins","role":"admin"},{"group":"payments-devs","team":"payments"}]"#,
    ])
    .await;
    let out = testworld::kubectl(
        CONTEXT,
        &["apply", "--dry-run=server", "-n", "default", "-f", "-"],
        Some(&everything),
    )
    .await;
    assert!(out.ok, "server-side dry run: {}", out.stderr);
    let docs = documents(&everything);
    let deploy = find(&docs, "Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(
        docs.iter().all(|d| d["kind"] != "PersistentVolumeClaim"),
        "no volume with Postgres"
    );

    // Single sign-on: the client secret is a file only the console reads, the mappings a settings file.
    let pod = &deploy["spec"]["template"]["spec"];
    let oidc_volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "oidc")
        .expect("the client secret's volume");
    assert_eq!(oidc_volume["secret"]["defaultMode"], 0o400);
    let mappings = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "md-meshdeck-oidc-mappings")
        .expect("the mappings ConfigMap");
    let file = mappings["data"]["mappings.yaml"].as_str().expect("file");
    assert!(
        file.contains("platform-admins") && file.contains("team: payments"),
        "{file}"
    );
    let set = |name: &str| {
        pod["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(String::from)
    };
    assert_eq!(
        set("MESHDECK_OIDC_ISSUER").as_deref(),
        Some("https://idp.example.com")
    );
    assert_eq!(
        set("MESHDECK_OIDC_CLIENT_SECRET_FILE").as_deref(),
        Some("/etc/meshdeck/oidc/client-secret")
    );
    assert_eq!(
        set("MESHDECK_OIDC_MAPPINGS").as_deref(),
        Some("/etc/meshdeck/mappings/mappings.yaml")
    );
    assert_eq!(set("MESHDECK_BREAK_GLASS").as_deref(), Some("admin"));
    assert_eq!(set("MESHDECK_OIDC_IMPERSONATE").as_deref(), Some("1"));
    // The rendered file is one the console reads.
    app::ssr::oidc::mappings::parse_file(file).expect("the console reads the chart's mappings");

    // Every variable the chart sets is one the console reads.
    let env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .clone();
    for e in &env {
        let name = e["name"].as_str().expect("name");
        if name.starts_with("MESHDECK_") {
            assert!(
                server::USAGE.contains(name)
                    || [
                        "MESHDECK_SECRET_KEY",
                        "MESHDECK_ADMIN_PASSWORD",
                        "MESHDECK_METRICS_TOKEN",
                        "MESHDECK_LOG"
                    ]
                    .contains(&name),
                "{name} is not a setting of the console"
            );
        }
    }

    // In-cluster mode grants the pod's account exactly the verbs of least-privilege onboarding.
    let incluster = helm_ok(&[
        "template",
        "md",
        &chart,
        "-n",
        NS,
        "--set",
        "inCluster.enabled=true,inCluster.name=mgmt,inCluster.controlPlaneNamespaces={istio-prod,istio-system}",
    ])
    .await;
    let docs = documents(&incluster);
    let rules_of = |kind: &str, ns: Option<&str>| -> Value {
        docs.iter()
            .find(|d| {
                d["kind"] == kind
                    && d["metadata"]["name"] == "md-meshdeck-in-cluster"
                    && d["metadata"]["namespace"].as_str() == ns
            })
            .unwrap_or_else(|| panic!("{kind} in {ns:?}"))["rules"]
            .clone()
    };
    use mesh::access;
    assert_eq!(
        rules_of("ClusterRole", None),
        access::rules_json(&access::in_cluster_rules())
    );
    for (ns, rules) in [
        ("istio-system", access::ISTIO_RULES),
        // Another control plane's namespace: the same Role, as onboarding gives (mesh::access::roles).
        ("istio-prod", access::ISTIO_RULES),
        ("gloo-mesh", access::OPERATOR_RULES),
        ("istio-eastwest", access::EASTWEST_RULES),
    ] {
        assert_eq!(
            rules_of("Role", Some(ns)),
            access::rules_json(rules),
            "{ns}"
        );
    }
    // The chart's admission guard says what onboarding's does (mesh::access::guard), for its own account.
    let guard = docs
        .iter()
        .find(|d| d["kind"] == "ValidatingAdmissionPolicy")
        .expect("the in-cluster guard");
    let [onboarding, _] = access::guard("uid");
    for key in ["validations", "matchConstraints", "failurePolicy"] {
        assert_eq!(guard["spec"][key], onboarding["spec"][key], "{key}");
    }
    // Per-user rights in-cluster: users, and only the groups named (the mappings' and the extra ones).
    let impersonating = helm_ok(&[
        "template",
        "md",
        &chart,
        "-n",
        NS,
        "--set",
        "inCluster.enabled=true,inCluster.name=mgmt,config.publicUrl=https://md.example.com,oidc.enabled=true,\
         oidc.issuer=https://idp.example.com,oidc.clientId=md,oidc.impersonate=true,\
         oidc.impersonateGroups={sre-viewers,platform-admins,system:masters}",
        "--set-json",
        r#"oidc.mappings=[{"group":"platform-admins","role":"admin"},{"group":"payments-devs","team":"payments"}]"#,
    ])
    .await;
    let role = documents(&impersonating)
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "md-meshdeck-impersonate")
        .expect("the impersonation role");
    assert_eq!(
        role["rules"],
        access::impersonation_rules(&[
            "payments-devs".into(),
            "platform-admins".into(),
            "sre-viewers".into()
        ])
    );
    assert_eq!(
        docs.iter()
            .filter(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "istio-system")
            .count(),
        1,
        "istio-system named twice, one Role"
    );
    let env_of = |docs: &[Value], name: &str| -> Option<Value> {
        find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        env_of(&docs, "MESHDECK_IN_CLUSTER_CONTROL_PLANES"),
        Some(serde_json::json!("istio-prod,istio-system"))
    );
    let out = testworld::helm(
        CONTEXT,
        &[
            "template",
            "t",
            &chart,
            "--set",
            "inCluster.enabled=true,inCluster.name=mgmt,inCluster.controlPlaneNamespaces={kube-system}",
        ],
    )
    .await;
    assert!(
        !out.ok && out.stderr.contains("cannot hold a control plane"),
        "{}",
        out.stderr
    );
    let out = testworld::helm(
        CONTEXT,
        &["template", "t", &chart, "--set", "inCluster.enabled=true"],
    )
    .await;
    assert!(
        !out.ok && out.stderr.contains("inCluster.name"),
        "{}",
        out.stderr
    );

    // Installed (SQLite on a volume; in-cluster mode on): a static volume stands in for a provisioner.
    let _ = testworld::kubectl(CONTEXT, &["delete", "namespace", NS, "--wait=true"], None).await;
    let _ = testworld::kubectl(CONTEXT, &["delete", "pv", "meshdeck-chart-test"], None).await;
    let pv = r#"{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "meshdeck-chart-test"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
        "hostPath": {"path": "/tmp/meshdeck-chart-test"}}}"#;
    testworld::kubectl_ok(CONTEXT, &["apply", "-f", "-"], Some(pv)).await;
    let mut had = vec![];
    for ns in ["istio-system", "gloo-mesh", "istio-eastwest"] {
        if testworld::kubectl(CONTEXT, &["get", "namespace", ns], None)
            .await
            .ok
        {
            had.push(ns);
        }
    }
    helm_ok(&[
        "install",
        "md",
        &chart,
        "-n",
        NS,
        "--create-namespace",
        "--set",
        "inCluster.enabled=true,inCluster.name=mgmt",
        "--wait",
        "--timeout",
        "120s",
    ])
    .await;
    let get = |kind: &'static str, name: &'static str| async move {
        let out =
            testworld::kubectl_ok(CONTEXT, &["-n", NS, "get", kind, name, "-o", "json"], None)
                .await;
        serde_json::from_str::<Value>(&out).expect("json")
    };
    let deploy = get("deployment", "md-meshdeck").await;
    assert_eq!(deploy["status"]["availableReplicas"], 1, "available");
    assert_eq!(deploy["spec"]["replicas"], 1);
    assert_eq!(
        deploy["spec"]["strategy"]["type"], "Recreate",
        "one process owns the SQLite file"
    );
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["automountServiceAccountToken"], true,
        "in-cluster mode needs the pod's token"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // A stop gives running jobs their grace to finish a step, and the pod time beyond it to close.
    let grace = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "MESHDECK_SHUTDOWN_GRACE")
        .and_then(|e| e["value"].as_str()?.parse::<i64>().ok())
        .expect("the chart sets the shutdown grace");
    assert_eq!(pod["terminationGracePeriodSeconds"], grace + 15);
    let pvc = get("pvc", "md-meshdeck-data").await;
    assert_eq!(pvc["status"]["phase"], "Bound");
    let secret = get("secret", "md-meshdeck").await;
    let key = secret["data"]["secret-key"]
        .as_str()
        .expect("key")
        .to_string();

    // The container's environment runs the real console: it starts and its first admin signs in.
    let secret_value = |k: &str| {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(secret["data"][k].as_str().expect("value"))
            .expect("base64");
        String::from_utf8(b).expect("utf-8")
    };
    let dir = common::temp_dir("chart");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshdeck"));
    cmd.arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for e in c["env"].as_array().expect("env") {
        let name = e["name"].as_str().expect("name");
        let value = match (&e["value"], &e["valueFrom"]["secretKeyRef"]["key"]) {
            (Value::String(v), _) if v == "/tmp" => dir.display().to_string(),
            (Value::String(v), _) => v
                .replace("/data/", &format!("{}/", dir.display()))
                .replace("0.0.0.0:3000", "127.0.0.1:0"),
            (_, Value::String(k)) => secret_value(k),
            _ => panic!("{e}"),
        };
        cmd.env(name, value);
    }
    // What Kubernetes gives every pod: the ServiceAccount's token and CA, and where the API server is.
    let sa = dir.join("serviceaccount");
    std::fs::create_dir_all(&sa).expect("dir");
    let token =
        testworld::kubectl_ok(CONTEXT, &["-n", NS, "create", "token", "md-meshdeck"], None).await;
    std::fs::write(sa.join("token"), token.trim()).expect("token");
    std::fs::write(sa.join("namespace"), NS).expect("namespace");
    let kc: Value = serde_yaml::from_str(
        &std::fs::read_to_string(testworld::kubeconfig_path()).expect("kubeconfig"),
    )
    .expect("yaml");
    let cluster = kc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .find(|c| c["name"] == CONTEXT)
        .expect("c3")["cluster"]
        .clone();
    {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(cluster["certificate-authority-data"].as_str().expect("ca"))
            .expect("base64");
        std::fs::write(sa.join("ca.crt"), ca).expect("ca");
    }
    let server = cluster["server"].as_str().expect("server");
    let (host, port) = server
        .trim_start_matches("https://")
        .rsplit_once(':')
        .expect("host:port");
    cmd.env("MESHDECK_SERVICEACCOUNT_DIR", &sa)
        .env("KUBERNETES_SERVICE_HOST", host)
        .env("KUBERNETES_SERVICE_PORT", port)
        .env(
            "MESHDECK_IN_CLUSTER_CONTROL_PLANES",
            "istio-prod,istio-system",
        );
    // The test world's API servers are on loopback; nothing else differs from the pod.
    cmd.env("MESHDECK_ALLOW_LOOPBACK_CLUSTERS", "1");
    cmd.env("MESHDECK_SITE_ROOT", testworld::repo_path("target/site"));
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start meshdeck");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let a: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return a.parse::<std::net::SocketAddr>().expect("address");
            }
        }
        panic!("the console exited before listening")
    })
    .await
    .expect("listening within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut client = common::Client::remote(addr);
    let a = client.page("/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
    let a = client
        .sign_in("admin", &secret_value("admin-password"))
        .await;
    assert!(
        a.status.is_success() || a.status.is_redirection(),
        "{}",
        a.body
    );
    assert!(
        dir.join("meshdeck.db").exists(),
        "the database is on the volume's path"
    );
    let a = client.call("get_cluster", &[("name", "mgmt")]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let mgmt: app::model::ClusterSummary = serde_json::from_str(&a.body).expect("summary");
    assert_eq!(
        mgmt.access.map(|a| a.control_planes),
        Some(vec!["istio-prod".to_string()]),
        "the control planes the chart tells it (MESHDECK_IN_CLUSTER_CONTROL_PLANES), as the cluster page shows them"
    );
    drop(child);

    // An upgrade changes the settings and keeps the key.
    helm_ok(&[
        "upgrade",
        "md",
        &chart,
        "-n",
        NS,
        "--set",
        "config.publicUrl=https://meshdeck.example.com,inCluster.enabled=true,inCluster.name=mgmt",
        "--wait",
        "--timeout",
        "120s",
    ])
    .await;
    assert_eq!(
        get("secret", "md-meshdeck").await["data"]["secret-key"],
        key.as_str(),
        "the key survives an upgrade"
    );
    let deploy = get("deployment", "md-meshdeck").await;
    assert!(
        deploy.to_string().contains("https://meshdeck.example.com"),
        "the new setting reached the pod"
    );

    // Uninstalled: the workload goes, the key and the database's volume stay.
    helm_ok(&["uninstall", "md", "-n", NS]).await;
    let gone = testworld::kubectl(
        CONTEXT,
        &["-n", NS, "get", "deployment", "md-meshdeck"],
        None,
    )
    .await;
    assert!(!gone.ok, "the Deployment is gone");
    assert_eq!(
        get("secret", "md-meshdeck").await["data"]["secret-key"],
        key.as_str()
    );
    assert_eq!(
        get("pvc", "md-meshdeck-data").await["status"]["phase"],
        "Bound"
    );
    let _ = testworld::kubectl(CONTEXT, &["delete", "namespace", NS, "--wait=false"], None).await;
    // The mesh's namespaces the chart made (kept by helm) go too, if they were not there before.
    for ns in ["istio-system", "gloo-mesh", "istio-eastwest"] {
        if !had.contains(&ns) {
            let _ = testworld::kubectl(CONTEXT, &["delete", "namespace", ns, "--wait=false"], None)
                .await;
        }
    }
    let _ = testworld::kubectl(
        CONTEXT,
        &["delete", "pv", "meshdeck-chart-test", "--wait=false"],
        None,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
