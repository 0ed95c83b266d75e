//! The control plane the guide installs: its shape, taking over an existing Istio, a broken `cacerts`, and
//! istiod answering the license check.

use super::*;

fn env_of(d: &Deployment) -> std::collections::BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| &p.containers[0])
        .and_then(|c| c.env.as_ref())
        .map(|e| {
            e.iter()
                .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn guide_install_yields_a_ready_control_plane_shaped_as_the_spec_says() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    let root = RootCa::new();
    install(Install {
        context: "c1",
        root: Some(&root),
        license: "test-license",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let smc = wait_smc_succeeded("c1").await;
    // §4.2: the six conditions, all True, each with observedGeneration.
    for (t, reason) in [
        ("Initialized", "ManifestsInitialized"),
        ("CRDInstalled", "CRDInstalled"),
        ("ControlPlaneDeployed", "DeploymentSucceeded"),
        ("CNIDeployed", "DeploymentSucceeded"),
        ("WebhookDeployed", "DeploymentSucceeded"),
        ("Ready", "SystemReady"),
    ] {
        let c = condition(&smc, t).unwrap_or_else(|| panic!("condition {t} missing: {smc}"));
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("True"), Some(reason)),
            "{t}"
        );
        assert_eq!(c["observedGeneration"], smc["metadata"]["generation"]);
    }
    // The CRD defaulted the fields of §4.1.
    assert_eq!(smc["spec"]["onConflict"], "Abort");
    assert_eq!(smc["spec"]["scalingProfile"], "Default");

    let c = client("c1").await;
    let istiod = Api::<Deployment>::namespaced(c.clone(), "istio-system")
        .get("istiod-gloo")
        .await
        .expect("istiod-gloo");
    let labels = istiod
        .spec
        .as_ref()
        .expect("spec")
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    assert_eq!(labels.get("app").map(String::as_str), Some("istiod"));
    assert_eq!(labels.get("istio.io/rev").map(String::as_str), Some("gloo"));
    let env = env_of(&istiod);
    assert_eq!(env.get("CLUSTER_ID").map(String::as_str), Some("c1"));
    assert_eq!(
        env.get("ENABLE_PEERING_DISCOVERY").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        env.get("SOLO_LICENSE_KEY").map(String::as_str),
        Some("test-license")
    );
    assert_eq!(
        istiod
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].name.as_str()),
        Some("discovery")
    );
    for ds in ["ztunnel", "istio-cni-node"] {
        let d = Api::<DaemonSet>::namespaced(c.clone(), "istio-system")
            .get(ds)
            .await
            .expect("daemonset");
        let st = d.status.expect("status");
        assert!(
            st.number_ready >= 2 && st.number_ready == st.desired_number_scheduled,
            "{ds}: {st:?}"
        );
    }
    // §2.1 / §4.1: the trust domain is the bare cluster name; §4.2: the namespace carries the network.
    let mesh = Api::<ConfigMap>::namespaced(c.clone(), "istio-system")
        .get("istio-gloo")
        .await
        .expect("istio-gloo");
    let mesh: Value = serde_yaml::from_str(&mesh.data.expect("data")["mesh"]).expect("mesh yaml");
    assert_eq!(mesh["trustDomain"], "c1");
    let ns = Api::<Namespace>::all(c.clone())
        .get("istio-system")
        .await
        .expect("ns");
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("topology.istio.io/network")
            .map(String::as_str),
        Some("c1")
    );
    // §6.1: istiod took the plugged-in root.
    assert_eq!(
        root_fingerprint("c1").await,
        pem_fingerprint(&root.cert_pem)
    );
    // The operator pods of the guide's check are Running.
    let out = kubectl_ok(
        "c1",
        &[
            "get",
            "pods",
            "-n",
            "gloo-mesh",
            "-l",
            "app.kubernetes.io/name=gloo-operator",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ],
        None,
    )
    .await;
    assert_eq!(out.trim(), "Running");
}

#[tokio::test]
async fn on_conflict_abort_refuses_an_existing_istio_and_force_takes_over() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    kubectl_ok("c1", &["create", "namespace", "istio-system"], None).await;
    kubectl_ok(
        "c1",
        &[
            "-n",
            "istio-system",
            "create",
            "deployment",
            "istiod",
            "--image=docker.io/istio/pilot:1.27.0",
        ],
        None,
    )
    .await;
    kubectl_ok(
        "c1",
        &[
            "-n",
            "istio-system",
            "label",
            "deployment",
            "istiod",
            "app=istiod",
            "--overwrite",
        ],
        None,
    )
    .await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let smc = wait_smc_phase("c1", "FAILED").await;
    let cp = condition(&smc, "ControlPlaneDeployed").expect("cp");
    assert_eq!(cp["reason"], "ConflictDetected");
    assert!(
        cp["message"]
            .as_str()
            .expect("m")
            .contains("Deployment istio-system/istiod")
    );
    kubectl_ok(
        "c1",
        &[
            "-n",
            "gloo-mesh",
            "patch",
            "smc",
            "managed-istio",
            "--type=merge",
            "-p",
            "{\"spec\":{\"onConflict\":\"Force\"}}",
        ],
        None,
    )
    .await;
    wait_smc_succeeded("c1").await;
}

#[tokio::test]
async fn a_broken_cacerts_bundle_keeps_istiod_from_starting() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    let root = RootCa::new();
    let other = RootCa::new();
    // The intermediate is signed by `root` but the bundle names `other` as its root.
    let yaml = root.cacerts_yaml("c1");
    let b = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let bad = yaml
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("root-cert.pem:") {
                format!("  root-cert.pem: {}", b(&other.cert_pem))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    kubectl_ok("c1", &["create", "namespace", "istio-system"], None).await;
    kubectl_ok("c1", &["apply", "-f", "-"], Some(&bad)).await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    let c = client("c1").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "istio-system");
    let msg = wait_for(60, "istiod refuses the bundle", || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=istiod"))
                .await
                .map_err(|e| e.to_string())?;
            let p = l.items.first().ok_or("no pod")?;
            let c = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .ok_or("no Ready")?;
            if c.status == "False" {
                Ok(c.message.clone().unwrap_or_default())
            } else {
                Err("ready".into())
            }
        }
    })
    .await;
    assert!(msg.contains("unknown authority"), "{msg}");
    assert!(
        !kubectl(
            "c1",
            &["get", "cm", "-n", "istio-system", "istio-ca-root-cert"],
            None
        )
        .await
        .ok
    );
}

/// GET `path` on a pod's port through the apiserver's port-forward (kwok plays the kubelet's side).
async fn port_forward_get(pods: &Api<Pod>, pod: &str, port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut pf = pods.portforward(pod, &[port]).await.expect("port-forward");
    let mut stream = pf.take_stream(port).expect("stream");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    // Read one response by its Content-Length: the forwarded stream need not report the server's close.
    let mut resp = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await.expect("read");
            resp.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&resp);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .expect("response within 20s");
    drop(stream);
    pf.abort();
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test]
async fn istiod_answers_the_license_check_through_a_port_forward() {
    let _l = WORLD_LOCK.lock().await;
    reset("c1").await;
    install(Install {
        context: "c1",
        root: None,
        license: "k",
        extensions: None,
        smc_extra: "",
    })
    .await;
    wait_smc_succeeded("c1").await;
    let c = client("c1").await;
    let pods: Api<Pod> = Api::namespaced(c.clone(), "istio-system");
    let istiod_pod = || async {
        let l = pods
            .list(&ListParams::default().labels("app=istiod"))
            .await
            .expect("pods");
        l.items
            .into_iter()
            .find(|p| p.metadata.deletion_timestamp.is_none())
            .and_then(|p| p.metadata.name)
            .expect("istiod pod")
    };
    let body = |resp: String| -> Value {
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).expect("body")).expect("json")
    };
    // §3 check 2: valid = State OK/BYPASSED and a product that allows multicluster.
    let v = body(port_forward_get(&pods, &istiod_pod().await, 15014, "/debug/license").await);
    assert_eq!(
        (v["State"].as_str(), v["Product"].as_str()),
        (Some("OK"), Some("GlooMesh")),
        "{v}"
    );
    set_faults("c1", &[("license-invalid", "true")]).await;
    let v = body(port_forward_get(&pods, &istiod_pod().await, 15014, "/debug/license").await);
    assert_eq!(v["State"], "INVALID");
    set_faults("c1", &[]).await;
    // Istio before 1.27 has no license endpoint: 404, which the check counts as "not supported".
    kubectl_ok(
        "c1",
        &[
            "-n",
            "gloo-mesh",
            "patch",
            "smc",
            "managed-istio",
            "--type=merge",
            "-p",
            "{\"spec\":{\"version\":\"1.26.3\"}}",
        ],
        None,
    )
    .await;
    let resp = wait_for(60, "istiod rolled to 1.26", || {
        let pods = pods.clone();
        async move {
            let l = pods
                .list(&ListParams::default().labels("app=istiod"))
                .await
                .map_err(|e| e.to_string())?;
            let p = l
                .items
                .into_iter()
                .find(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.spec.as_ref().is_some_and(|s| {
                            s.containers[0]
                                .image
                                .as_deref()
                                .is_some_and(|i| i.ends_with(":1.26.3-solo"))
                        })
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .and_then(|p| p.metadata.name)
                .ok_or("no 1.26 pod yet")?;
            Ok(port_forward_get(&pods, &p, 15014, "/debug/license").await)
        }
    })
    .await;
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
}
