use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("expected YAML")
}

fn c(name: &str) -> ClusterName {
    ClusterName::new(name).expect("name")
}

fn n(name: &str) -> NetworkName {
    NetworkName::new(name).expect("name")
}

#[test]
fn service_mesh_controller_is_the_guides() {
    // The guide's SMC (seed guide, "Deploy mesh components" step 4), with the namespace it is applied in.
    let want = yaml(
        "apiVersion: operator.gloo.solo.io/v1\nkind: ServiceMeshController\nmetadata:\n  name: managed-istio\n  namespace: gloo-mesh\n  labels:\n    \
         app.kubernetes.io/name: managed-istio\nspec:\n  cluster: cluster1\n  network: cluster1\n  dataplaneMode: Ambient\n  \
         installNamespace: istio-system\n  version: 1.28.1-patch0\n",
    );
    let got = service_mesh_controller(&MeshSpec {
        cluster: Some(c("cluster1")),
        network: Some(n("cluster1")),
        dataplane_mode: Some("Ambient".into()),
        install_namespace: Some("istio-system".into()),
        version: "1.28.1-patch0".into(),
        ..Default::default()
    });
    assert_eq!(got, want);
}

#[test]
fn every_smc_field_lands_where_the_reference_puts_it() {
    let got = service_mesh_controller(&MeshSpec {
        cluster: Some(c("c1")),
        distribution: Some("FIPS".into()),
        image_repository: Some("registry.example/istio".into()),
        image_secrets: vec!["pull".into()],
        on_conflict: Some("Force".into()),
        repository_secrets: vec!["charts".into()],
        repository_insecure_skip_verify: Some(false),
        scaling_profile: Some("Large".into()),
        traffic_capture_mode: Some("Auto".into()),
        trust_domain: Some("corp.example".into()),
        version: "1.28.1".into(),
        ..Default::default()
    });
    let s = &got["spec"];
    assert_eq!(
        s["image"],
        json!({"repository": "registry.example/istio", "secrets": [{"name": "pull"}]})
    );
    assert_eq!(
        s["repository"],
        json!({"secrets": [{"name": "charts"}], "insecureSkipVerify": false})
    );
    for (k, v) in [
        ("distribution", "FIPS"),
        ("onConflict", "Force"),
        ("scalingProfile", "Large"),
        ("trafficCaptureMode", "Auto"),
        ("trustDomain", "corp.example"),
    ] {
        assert_eq!(s[k], v, "{k}");
    }
    assert!(
        s.get("network").is_none(),
        "unset fields are left to the operator's defaults"
    );
}

#[test]
fn extensions_config_for_automatic_peering_is_the_guides() {
    let got = extensions_config(
        true,
        &CniDirs::default(),
        &BTreeMap::new(),
        &BTreeMap::new(),
    );
    assert_eq!(
        got["metadata"],
        json!({"name": "gloo-extensions-config", "namespace": "gloo-mesh"})
    );
    let beta: Value =
        serde_yaml::from_str(got["data"]["beta"].as_str().expect("beta")).expect("yaml");
    assert_eq!(
        beta,
        json!({"serviceMeshController": {"multiClusterMode": "Peering"}})
    );
    let values: Value =
        serde_yaml::from_str(got["data"]["values.istiod"].as_str().expect("values")).expect("yaml");
    assert_eq!(
        values,
        json!({"env": {"PEERING_AUTOMATIC_LOCAL_GATEWAY": "true"}})
    );
    assert_eq!(
        extensions_config(
            false,
            &CniDirs::default(),
            &BTreeMap::new(),
            &BTreeMap::new()
        )["data"],
        json!({})
    );
}

#[test]
fn cni_directories_share_the_beta_key_with_automatic_peering() {
    let cni = CniDirs {
        conf_dir: Some("/var/lib/rancher/k3s/agent/etc/cni/net.d".into()),
        bin_dir: Some("/opt/cni: bin".into()),
    };
    let got = extensions_config(true, &cni, &BTreeMap::new(), &BTreeMap::new());
    let beta: Value =
        serde_yaml::from_str(got["data"]["beta"].as_str().expect("beta")).expect("yaml");
    assert_eq!(
        beta,
        json!({"serviceMeshController": {
            "cni": {"confDir": "/var/lib/rancher/k3s/agent/etc/cni/net.d", "binDir": "/opt/cni: bin"},
            "multiClusterMode": "Peering",
        }})
    );
    let only = CniDirs {
        conf_dir: None,
        bin_dir: Some("/home/kubernetes/bin".into()),
    };
    let got = extensions_config(false, &only, &BTreeMap::new(), &BTreeMap::new());
    let beta: Value =
        serde_yaml::from_str(got["data"]["beta"].as_str().expect("beta")).expect("yaml");
    assert_eq!(
        beta,
        json!({"serviceMeshController": {"cni": {"binDir": "/home/kubernetes/bin"}}})
    );
}

#[test]
fn extensions_config_carries_the_extra_keys_and_parses_raw_yaml() {
    let extra = parse_extensions_yaml(
        "stable: |\n  serviceMeshController:\n    istiod:\n      discoverySelectors: []\nvalues.istio-ztunnel: \"logLevel: debug\"\n",
    )
    .expect("valid");
    assert_eq!(extra.len(), 2);
    let got = extensions_config(false, &CniDirs::default(), &BTreeMap::new(), &extra);
    let stable: Value =
        serde_yaml::from_str(got["data"]["stable"].as_str().expect("stable")).expect("yaml");
    assert_eq!(
        stable,
        json!({"serviceMeshController": {"istiod": {"discoverySelectors": []}}})
    );
    assert_eq!(
        got["data"]["values.istio-ztunnel"],
        json!("logLevel: debug")
    );
    assert!(
        parse_extensions_yaml("- a list")
            .expect_err("refused")
            .contains("mapping")
    );
    assert!(
        parse_extensions_yaml("stable: {a: 1}")
            .expect_err("refused")
            .contains("stable")
    );
    assert!(
        parse_extensions_yaml("stable: \"a: [\"")
            .expect_err("refused")
            .contains("stable"),
        "each value must itself be YAML"
    );
    assert_eq!(parse_extensions_yaml("  ").expect("empty"), BTreeMap::new());
}

#[test]
fn eastwest_gateway_is_what_expose_creates_plus_the_cluster_label() {
    // mesh-spec.md §1.1 (expose), with region/zone as detected.
    let want = yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: istio-eastwest\n  namespace: istio-eastwest\n  labels:\n    \
         istio.io/expose-istiod: \"15012\"\n    topology.istio.io/network: net1\n    topology.istio.io/cluster: cluster1\n    \
         topology.kubernetes.io/region: us-east-1\n    topology.kubernetes.io/zone: us-east-1a\nspec:\n  gatewayClassName: istio-eastwest\n  listeners:\n  \
         - name: cross-network\n    port: 15008\n    protocol: HBONE\n    tls:\n      mode: Passthrough\n  - name: xds-tls\n    port: 15012\n    protocol: TLS\n    \
         tls:\n      mode: Passthrough\n",
    );
    let loc = Locality {
        region: Some("us-east-1".into()),
        zone: Some("us-east-1a".into()),
    };
    assert_eq!(
        eastwest_gateway(
            &c("cluster1"),
            &n("net1"),
            DataPlane::LoadBalancer,
            None,
            &loc
        ),
        want
    );
}

#[test]
fn nodeport_eastwest_gateway_carries_the_annotation_and_an_override() {
    // mesh-spec.md §1.2 (NodePort variant) and §1.3 (address override).
    let got = eastwest_gateway(
        &c("cluster1"),
        &n("cluster1"),
        DataPlane::NodePort,
        Some("203.0.113.7"),
        &Locality::default(),
    );
    assert_eq!(
        got["metadata"]["annotations"],
        json!({"peering.solo.io/data-plane-service-type": "NodePort", "istio.io/expose-istiod-address": "203.0.113.7"})
    );
    assert_eq!(
        got["metadata"]["labels"]["topology.istio.io/cluster"],
        "cluster1"
    );
}

#[test]
fn peer_gateway_is_what_link_creates() {
    // mesh-spec.md §2.1.
    let want = yaml(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: istio-remote-peer-cluster2\n  namespace: istio-eastwest\n  annotations:\n    \
         gateway.istio.io/service-account: istio-eastwest\n    gateway.istio.io/trust-domain: cluster2\n  labels:\n    topology.istio.io/network: cluster2\n    \
         topology.istio.io/cluster: cluster2\n    topology.kubernetes.io/region: eu-west-1\nspec:\n  gatewayClassName: istio-remote\n  addresses:\n  - type: IPAddress\n    \
         value: 192.0.2.10\n  listeners:\n  - name: cross-network\n    port: 15008\n    protocol: HBONE\n    tls:\n      mode: Passthrough\n  - name: xds-tls\n    \
         port: 15012\n    protocol: TLS\n    tls:\n      mode: Passthrough\n",
    );
    let peer = PeerInfo {
        cluster: "cluster2".into(),
        network: "cluster2".into(),
        address_type: "IPAddress",
        address: "192.0.2.10".into(),
        trust_domain: "cluster2".into(),
        service_account: "istio-eastwest".into(),
        locality: Locality {
            region: Some("eu-west-1".into()),
            zone: None,
        },
    };
    assert_eq!(peer_gateway(&peer, DataPlane::LoadBalancer), want);
    let np = peer_gateway(&peer, DataPlane::NodePort);
    assert_eq!(
        np["metadata"]["annotations"]["peering.solo.io/preferred-data-plane-service-type"],
        "NodePort"
    );
}

#[test]
fn the_trust_domain_defaults_like_mesh_config_does() {
    assert_eq!(mesh_trust_domain("trustDomain: c1\n"), "c1");
    assert_eq!(
        mesh_trust_domain("rootNamespace: istio-system\n"),
        "cluster.local"
    );
}

#[test]
fn the_extensions_text_reads_back_as_the_same_keys() {
    let keys: BTreeMap<String, String> = [
        (
            "stable".to_string(),
            "serviceMeshController:\n  istiod:\n    discoverySelectors:\n    - matchLabels:\n        team: a\n".to_string(),
        ),
        ("values.istio-ztunnel".to_string(), "logLevel: debug\n".to_string()),
    ]
    .into();
    let text = extensions_yaml_text(&keys);
    assert!(text.contains("stable: |"), "{text}");
    assert_eq!(parse_extensions_yaml(&text), Ok(keys));
    assert_eq!(extensions_yaml_text(&BTreeMap::new()), "");
}
