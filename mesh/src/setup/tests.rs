use super::*;

fn name(s: &str) -> ClusterName {
    ClusterName::new(s).expect("name")
}

#[test]
fn every_step_runs_once_and_after_what_it_needs() {
    let wave_of = |step: Step| {
        let waves: Vec<usize> = (0..Step::WAVES.len())
            .filter(|&w| Step::WAVES[w].contains(&step))
            .collect();
        assert_eq!(waves.len(), 1, "{step:?} is in exactly one wave");
        waves[0]
    };
    for step in Step::ALL {
        wave_of(step);
    }
    assert_eq!(
        Step::WAVES.iter().map(|w| w.len()).sum::<usize>(),
        Step::ALL.len()
    );
    // The control plane needs cacerts, the operator (its CRD) and the Gateway API CRDs (istiod watches
    // Gateways only when their CRDs exist as it starts); the east-west gateway needs istiod.
    for needed in [Step::RootOfTrust, Step::Operator, Step::GatewayApi] {
        assert!(wave_of(needed) < wave_of(Step::ControlPlane), "{needed:?}");
    }
    assert!(wave_of(Step::ControlPlane) < wave_of(Step::EastWest));
    // Independent steps share the first wave: the operator's pod starts while the CRDs are written.
    assert_eq!(wave_of(Step::Operator), wave_of(Step::GatewayApi));
}

#[test]
fn the_clusters_meant_to_hold_peer_gateways_follow_the_linking() {
    let all = [name("a"), name("b"), name("c")];
    let one_way = Peering::Manual {
        pairs: vec![(name("a"), name("b")), (name("a"), name("c"))],
    };
    assert_eq!(
        holders(&all, &one_way).into_iter().collect::<Vec<_>>(),
        [name("a")]
    );
    let full = Peering::Manual {
        pairs: full_mesh(&all),
    };
    assert_eq!(holders(&all, &full).len(), 3);
    let auto = Peering::Automatic {
        management: name("a"),
    };
    assert_eq!(holders(&all, &auto).len(), 3);
    assert!(
        holders(&all[..1], &auto).is_empty(),
        "alone: nothing to peer with"
    );
}

fn settings() -> Settings {
    Settings {
        istio_version: "1.28.1-patch0".into(),
        data_plane: DataPlane::LoadBalancer,
        peering: Peering::Manual { pairs: vec![] },
        operator: operator::Install {
            chart: operator::Chart::default(),
            license: operator::License::Key("k".into()),
            watch_namespaces: vec![],
            helm: "helm".into(),
        },
    }
}

#[test]
fn a_full_mesh_of_n_clusters_has_n_times_n_minus_one_pairs() {
    let cs: Vec<ClusterName> = ["a", "b", "c", "d"].iter().map(|s| name(s)).collect();
    let pairs = full_mesh(&cs);
    assert_eq!(pairs.len(), 12);
    assert!(pairs.iter().all(|(a, b)| a != b));
}

#[test]
fn the_mesh_spec_is_always_ambient_and_filled_from_the_setup() {
    let mut c = ClusterSetup::new(name("c1"), NetworkName::new("net1").expect("net"));
    c.mesh.dataplane_mode = Some("Sidecar".into());
    let m = c.mesh_spec(&settings());
    assert_eq!(m.dataplane_mode.as_deref(), Some("Ambient"));
    assert_eq!(m.cluster.as_ref().map(|c| c.as_str()), Some("c1"));
    assert_eq!(m.network.as_ref().map(|c| c.as_str()), Some("net1"));
    assert_eq!(m.version, "1.28.1-patch0");
    assert_eq!(m.install_namespace.as_deref(), Some("istio-system"));
}

#[test]
fn plan_objects_never_carry_keys() {
    let c = ClusterSetup::new(name("c1"), NetworkName::new("c1").expect("net"));
    for step in Step::ALL {
        let text = serde_json::to_string(&objects(step, &c, &settings())).expect("json");
        assert!(!text.contains("PRIVATE KEY"), "{step:?}");
        assert!(!text.contains("\"k\""), "{step:?} leaks the license");
    }
    assert_eq!(objects(Step::GatewayApi, &c, &settings()).len(), 6);
}

#[test]
fn commands_name_the_cluster_context() {
    let c = ClusterSetup::new(name("c7"), NetworkName::new("c7").expect("net"));
    for step in Step::ALL {
        for cmd in commands(step, &c, &settings()) {
            assert!(cmd.contains("c7"), "{step:?}: {cmd}");
        }
    }
}

#[test]
fn the_root_of_trust_by_hand_needs_no_openssl() {
    let c = ClusterSetup::new(name("c7"), NetworkName::new("c7").expect("net"));
    let cmds = commands(Step::RootOfTrust, &c, &settings()).join("\n");
    assert!(!cmds.contains("openssl"), "{cmds}");
    assert!(
            cmds.contains("step certificate create \"Intermediate CA\" c7/ca-cert.pem c7/ca-key.pem --profile intermediate-ca")
                && cmds.contains("--san istiod.istio-system.svc"),
            "{cmds}"
        );
    assert!(
        cmds.contains("cat c7/ca-cert.pem c7/root-cert.pem > c7/cert-chain.pem"),
        "cert-chain.pem is the intermediate then the root (§6.2): {cmds}"
    );
}

#[test]
fn imported_peer_gateways_are_validated() {
    let ok = objects::peer_gateway(
        &PeerInfo {
            cluster: "c2".into(),
            network: "c2".into(),
            address_type: "IPAddress",
            address: "192.0.2.10".into(),
            trust_domain: "c2".into(),
            service_account: "istio-eastwest".into(),
            locality: Locality::default(),
        },
        DataPlane::LoadBalancer,
    );
    let text = serde_yaml::to_string(&ok).expect("yaml");
    assert!(validate_peer_gateway(&text).is_ok());
    let bad = text.replace("istio-remote\n", "istio-eastwest\n");
    assert!(
        validate_peer_gateway(&bad)
            .expect_err("class")
            .contains("istio-remote")
    );
    let no_addr = text.replace("192.0.2.10", "''");
    assert!(
        validate_peer_gateway(&no_addr)
            .expect_err("address")
            .contains("addresses")
    );
    assert!(
        validate_peer_gateway("kind: [")
            .expect_err("yaml")
            .contains("YAML")
    );
    let wrong_name = text.replace("istio-remote-peer-c2", "peer-c2");
    assert!(validate_peer_gateway(&wrong_name).is_err());

    // Several documents (what an export holds): all are checked, and a bad one is named by position.
    let two = format!("# a comment\n{text}---\n{}---\n", text.replace("c2", "c4"));
    let gws = validate_peer_gateways(&two).expect("two valid documents");
    assert_eq!(gws.len(), 2);
    assert_eq!(gws[1]["metadata"]["name"], "istio-remote-peer-c4");
    let second_bad = format!("{text}---\n{no_addr}");
    assert!(
        validate_peer_gateways(&second_bad)
            .expect_err("second")
            .starts_with("document 2: spec.addresses is empty")
    );
    assert!(
        validate_peer_gateways("---\n")
            .expect_err("empty")
            .contains("no peer gateway")
    );
}

#[test]
fn step_keys_round_trip() {
    for s in Step::ALL {
        assert_eq!(Step::from_key(s.key()), Some(s));
    }
}

#[test]
fn normalizing_drops_server_fields() {
    let v = json!({"metadata": {"name": "x", "uid": "u", "resourceVersion": "1", "managedFields": []}, "status": {}, "spec": {"a": 1}});
    assert_eq!(
        normalize(v),
        json!({"metadata": {"name": "x"}, "spec": {"a": 1}})
    );
}

#[test]
fn a_condition_written_for_an_older_generation_does_not_count() {
    let gw = |generation: i64, observed: Option<i64>| {
        let mut c = json!({"type": "Programmed", "status": "True"});
        if let Some(o) = observed {
            c["observedGeneration"] = json!(o);
        }
        json!({"metadata": {"generation": generation}, "status": {"conditions": [c]}})
    };
    assert!(current_condition_true(&gw(2, Some(2)), "Programmed"));
    assert!(!current_condition_true(&gw(3, Some(2)), "Programmed"));
    assert!(current_condition_true(&gw(3, None), "Programmed"));
    assert!(!current_condition_true(&gw(1, Some(1)), "Accepted"));
}
