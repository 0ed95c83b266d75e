//! The control plane's settings and a cluster's own east-west variant: checked, and shaping the plan and
//! the preflight.

use super::*;

#[tokio::test]
async fn control_plane_settings_are_checked_and_shape_the_plan() {
    let console = console("jobs-api-settings", None, &[]).await;
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;

    let with = |settings: serde_json::Value, per_cluster: serde_json::Value| {
        let mut body = request(
            &["c3"],
            testworld::ISTIO_VERSION,
            json!({"mode": "full-mesh"}),
        );
        body["request"]["settings"] = settings;
        body["request"]["per_cluster"] = per_cluster;
        body
    };
    // Refused before anything is read from a cluster, each problem named by form and field.
    let refused = [
        (
            with(
                json!({"trust_domain": "Not A Domain", "scaling_profile": "Huge"}),
                json!({}),
            ),
            vec![
                "shared.scaling_profile",
                "\"Huge\" is not one of Default, Demo, Large",
                "shared.trust_domain",
            ],
        ),
        (
            with(
                json!({}),
                json!({"c3": {"address_override": "not an address"}}),
            ),
            vec![
                "c3.address_override",
                "neither an IP address nor a DNS name",
            ],
        ),
        (
            with(json!({}), json!({"c1": {"mesh": {"distribution": "FIPS"}}})),
            vec!["c1.cluster", "not among the chosen clusters"],
        ),
        (
            with(
                json!({"istiod_env": {"PEERING_AUTOMATIC_LOCAL_GATEWAY": "true"}}),
                json!({}),
            ),
            vec!["set by Meshdeck from the linking choice"],
        ),
        (
            with(json!({"extensions_yaml": "beta: |\n  x: 1\n"}), json!({})),
            vec!["c3: extensions YAML: it may set stable and values.istio-ztunnel only; beta"],
        ),
        (
            with(
                json!({"traffic_capture_mode": "InitContainer", "cni_conf_dir": "etc/cni/net.d"}),
                json!({}),
            ),
            vec![
                "shared.traffic_capture_mode",
                "works only with the Sidecar data plane mode",
                "shared.cni_conf_dir",
                "not an absolute directory",
            ],
        ),
        (
            with(json!({"extensions_yaml": "stable: |\n  a: [\n"}), json!({})),
            vec!["the value of stable is not YAML"],
        ),
        (
            with(
                json!({"discovery_selectors": ["team=a"], "extensions_yaml": "stable: |\n  a: 1\n"}),
                json!({}),
            ),
            vec!["not both"],
        ),
    ];
    for (body, texts) in refused {
        let a = admin.call_json("plan_setup", body.clone()).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            a.body
        );
        let AppError::Invalid { field, message } = a.error() else {
            panic!("{body}: {}", a.body)
        };
        assert_eq!(field, "settings");
        for t in texts {
            assert!(message.contains(t), "{body}: {message:?} lacks {t:?}");
        }
    }

    // Shared values, a per-cluster override, and the extensions' fields reach the objects planned.
    let body = with(
        json!({
            "scaling_profile": "Large", "distribution": "FIPS", "image_secrets": ["pull-secret"],
            "istiod_env": {"PILOT_TRACE_SAMPLING": "1.0"},
            "traffic_capture_mode": "Auto", "cni_bin_dir": "/home/kubernetes/bin",
            "discovery_selectors": ["istio-discovery=enabled"],
            "extensions_yaml": "values.istio-ztunnel: |\n  logLevel: debug\n"
        }),
        json!({"c3": {"mesh": {"scaling_profile": "Demo", "trust_domain": "c3.example", "cni_conf_dir": "/var/lib/rancher/k3s/agent/etc/cni/net.d"}, "address_override": "10.9.8.7"}}),
    );
    let a = admin.call_json("plan_setup", body).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plans: Vec<app::model::ClusterPlan> = serde_json::from_str(&a.body).expect("plan");
    let objects: Vec<&app::model::PlanObject> = plans[0]
        .steps
        .iter()
        .flat_map(|s| s.objects.iter())
        .collect();
    let yaml_of = |kind: &str, name: &str| -> serde_json::Value {
        let o = objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| panic!("{kind} {name} planned"));
        serde_yaml::from_str(&o.yaml).expect("yaml")
    };
    let smc = yaml_of("ServiceMeshController", "managed-istio");
    assert_eq!(smc["spec"]["scalingProfile"], "Demo", "c3's override wins");
    assert_eq!(smc["spec"]["distribution"], "FIPS", "shared value");
    assert_eq!(smc["spec"]["trustDomain"], "c3.example");
    assert_eq!(
        smc["spec"]["image"]["secrets"],
        json!([{"name": "pull-secret"}])
    );
    assert_eq!(smc["spec"]["dataplaneMode"], "Ambient");
    assert_eq!(smc["spec"]["trafficCaptureMode"], "Auto");
    let cm = yaml_of("ConfigMap", "gloo-extensions-config");
    let beta: serde_json::Value =
        serde_yaml::from_str(cm["data"]["beta"].as_str().expect("beta")).expect("beta yaml");
    assert_eq!(
        beta,
        json!({"serviceMeshController": {"cni": {
            "confDir": "/var/lib/rancher/k3s/agent/etc/cni/net.d",
            "binDir": "/home/kubernetes/bin"
        }}}),
        "the shared binDir and c3's own confDir"
    );
    let env: serde_json::Value =
        serde_yaml::from_str(cm["data"]["values.istiod"].as_str().expect("env")).expect("env yaml");
    assert_eq!(
        env["env"]["DISABLE_LEGACY_MULTICLUSTER"], "true",
        "set on fresh installs, as the guide advises: {env}"
    );
    let stable: serde_json::Value =
        serde_yaml::from_str(cm["data"]["stable"].as_str().expect("stable")).expect("stable yaml");
    assert_eq!(
        stable,
        json!({"serviceMeshController": {"istiod": {"discoverySelectors": [
            {"matchLabels": {"istio-discovery": "enabled"}}
        ]}}})
    );
    assert!(
        cm["data"]["values.istiod"]
            .as_str()
            .expect("env")
            .contains("PILOT_TRACE_SAMPLING")
    );
    assert_eq!(cm["data"]["values.istio-ztunnel"], "logLevel: debug\n");
    let ew = yaml_of("Gateway", "istio-eastwest");
    assert!(
        ew.to_string().contains("10.9.8.7"),
        "the address override: {ew}"
    );
}

#[tokio::test]
async fn a_clusters_own_eastwest_variant_shapes_its_gateway_and_its_preflight() {
    let console = console("jobs-api-eastwest", None, &[]).await;
    let app = server::router(console);
    let mut admin = Client::new(app);
    admin.sign_in("admin", common::ADMIN_PASSWORD).await;
    register_c3(&mut admin).await;

    // The shared choice is LoadBalancer; c3 alone goes through node ports.
    let mut body = request(
        &["c3"],
        testworld::ISTIO_VERSION,
        json!({"mode": "full-mesh"}),
    );
    body["request"]["per_cluster"] = json!({"c3": {"eastwest": "node-port"}});
    let mut unknown = body.clone();
    unknown["request"]["per_cluster"] = json!({"c3": {"eastwest": "ingress"}});
    let a = admin.call_json("plan_setup", unknown).await;
    assert!(
        a.status.is_client_error(),
        "an unknown variant is refused: {} {}",
        a.status,
        a.body
    );

    let a = admin.call_json("plan_setup", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let plans: Vec<app::model::ClusterPlan> = serde_json::from_str(&a.body).expect("plan");
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].error, None, "{:?}", plans[0].error);
    let step = plans[0]
        .steps
        .iter()
        .find(|s| s.title == "East-west gateway")
        .expect("east-west step");
    let gw = step
        .objects
        .iter()
        .find(|o| o.kind == "Gateway" && o.name == "istio-eastwest")
        .expect("the east-west Gateway planned");
    let gw: serde_json::Value = serde_yaml::from_str(&gw.yaml).expect("yaml");
    assert_eq!(
        gw["metadata"]["annotations"]["peering.solo.io/data-plane-service-type"], "NodePort",
        "c3's own variant, not the shared LoadBalancer: {gw}"
    );
    assert_eq!(gw["metadata"]["labels"]["topology.istio.io/cluster"], "c3");
    assert!(
        step.commands
            .iter()
            .any(|c| c.contains("peering.solo.io/data-plane-service-type=NodePort")),
        "the commands by hand make the NodePort variant: {:?}",
        step.commands
    );

    // The preflight probes for a load balancer only where LoadBalancer is chosen: c3 gets the node check.
    let a = admin.call_json("preflight_setup", body.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pre: Vec<app::model::PreflightView> = serde_json::from_str(&a.body).expect("preflight");
    let finding = |key: &str| {
        pre[0]
            .findings
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("finding {key}: {:?}", pre[0].findings))
    };
    let lb = finding("load-balancer");
    assert_eq!(lb.status, app::model::CheckStatus::Pass, "{lb:?}");
    assert!(lb.message.contains("NodePort"), "no probe for c3: {lb:?}");
    finding("node-addresses");
    // NodePort is alpha (a warning that says so) and needs 1.28: on 1.27 the preflight refuses it.
    let np = finding("nodeport");
    assert_eq!(np.status, app::model::CheckStatus::Warn, "{np:?}");
    assert!(np.message.contains("alpha"), "{np:?}");
    let mut old = body.clone();
    old["request"]["istio_version"] = json!("1.27.3");
    let a = admin.call_json("preflight_setup", old).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let pre: Vec<app::model::PreflightView> = serde_json::from_str(&a.body).expect("preflight");
    let np = pre[0]
        .findings
        .iter()
        .find(|f| f.key == "nodeport")
        .expect("nodeport finding");
    assert_eq!(np.status, app::model::CheckStatus::Fail, "{np:?}");
    assert!(np.message.contains("1.28 or newer"), "{np:?}");
}
