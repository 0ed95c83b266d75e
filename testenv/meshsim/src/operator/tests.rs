use super::*;

#[test]
fn trust_domain_defaults_to_cluster_then_cluster_local() {
    let s =
        MeshSettings::from_spec(&json!({"cluster": "cluster1", "network": "n1"})).expect("valid");
    assert_eq!(s.trust_domain, "cluster1");
    let s = MeshSettings::from_spec(&json!({})).expect("valid");
    assert_eq!(s.trust_domain, "cluster.local");
    let s = MeshSettings::from_spec(&json!({"cluster": "c", "trustDomain": "corp.example"}))
        .expect("valid");
    assert_eq!(s.trust_domain, "corp.example");
}

#[test]
fn versions_follow_the_documented_shape() {
    for ok in ["1.28.1", "1.28.1-patch0", "1.24.3"] {
        assert!(valid_version(ok), "{ok}");
    }
    for bad in ["1.28", "1.28.1-solo", "v1.28.1", "1.28.x", ""] {
        assert!(!valid_version(bad), "{bad}");
    }
}

#[test]
fn init_container_capture_needs_sidecar_mode() {
    let err = MeshSettings::from_spec(
        &json!({"dataplaneMode": "Ambient", "trafficCaptureMode": "InitContainer"}),
    );
    assert!(err.is_err());
    assert!(
        MeshSettings::from_spec(
            &json!({"dataplaneMode": "Sidecar", "trafficCaptureMode": "InitContainer"})
        )
        .is_ok()
    );
}
