use super::*;

fn node(name: &str, labels: &[(&str, &str)], taint: Option<&str>) -> Node {
    serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "spec": {"taints": taint.map(|k| vec![serde_json::json!({"key": k, "effect": "NoSchedule"})]).unwrap_or_default()},
        }))
        .expect("node")
}

#[test]
fn fargate_and_virtual_nodes_are_named_and_a_cluster_of_only_them_fails() {
    let regular = node("n1", &[("kubernetes.io/os", "linux")], None);
    let fargate = node(
        "fargate-1",
        &[("eks.amazonaws.com/compute-type", "fargate")],
        None,
    );
    let aci = node("virtual-node-aci", &[("type", "virtual-kubelet")], None);
    let tainted = node("vk", &[], Some("virtual-kubelet.io/provider"));
    let f = virtual_nodes(std::slice::from_ref(&regular));
    assert_eq!(f.status, Status::Pass, "{f:?}");
    let f = virtual_nodes(&[regular, fargate.clone(), aci.clone()]);
    assert_eq!(f.status, Status::Warn, "{f:?}");
    assert!(f.message.starts_with("2 of 3 nodes"), "{}", f.message);
    assert!(
        f.message.contains("fargate-1 (Fargate)")
            && f.message.contains("virtual-node-aci (virtual)")
    );
    let f = virtual_nodes(&[fargate, aci, tainted]);
    assert_eq!(f.status, Status::Fail, "{f:?}");
    assert!(f.message.contains("vk (virtual)"), "{}", f.message);
    assert!(f.remediation.is_some());
}

#[test]
fn nodeport_is_alpha_and_needs_1_28() {
    let mut c = c("c1", "c1");
    c.data_plane = Some(DataPlane::NodePort);
    let mut s = settings();
    s.istio_version = "1.27.3".into();
    let f = fleet(std::slice::from_ref(&c), &s);
    let np = f[&c.name]
        .iter()
        .find(|f| f.key == "nodeport")
        .expect("nodeport");
    assert_eq!(np.status, Status::Fail, "{np:?}");
    s.istio_version = "1.28.1-patch0".into();
    let f = fleet(std::slice::from_ref(&c), &s);
    let np = f[&c.name]
        .iter()
        .find(|f| f.key == "nodeport")
        .expect("nodeport");
    assert_eq!(np.status, Status::Warn, "{np:?}");
    assert!(np.message.contains("alpha"), "{}", np.message);
    c.data_plane = Some(DataPlane::LoadBalancer);
    let f = fleet(std::slice::from_ref(&c), &s);
    assert!(f[&c.name].iter().all(|f| f.key != "nodeport"));
}
use crate::ids::NetworkName;

#[test]
fn istio_version_rules() {
    assert!(version_rule("1.28.1-patch0").is_ok());
    assert!(version_rule("1.24.3-solo").is_ok());
    assert!(version_rule("1.24.2").expect_err("old").contains("1.24.3"));
    assert!(
        version_rule("1.26.0")
            .expect_err("bad")
            .contains("1.26.1-patch0")
    );
    assert!(version_rule("1.26.0-patch3").is_err());
    assert!(version_rule("1.26.1").is_err());
    assert!(version_rule("1.26.1-solo").is_err());
    assert!(version_rule("1.26.1-patch0").is_ok(), "the guide allows it");
    assert!(version_rule("1.26.1-patch1").is_ok());
    assert!(version_rule("1.26.2").is_ok());
    assert!(upgrade_rule("1.27.3", "1.28.1-patch0").is_ok());
    assert!(upgrade_rule("1.28.1-patch0", "1.27.3").is_ok());
    assert!(
        upgrade_rule("1.26.2", "1.28.1")
            .expect_err("two minors")
            .contains("one minor at a time (e.g. 1.27.x first)")
    );
    assert!(upgrade_rule("1.27.3", "1.26.1").is_err());
    assert!(version_rule("latest").is_err());
    assert_eq!(istio_version("1.28.1-patch0"), Some((1, 28, 1)));
}

fn settings() -> Settings {
    Settings {
        istio_version: "1.28.1-patch0".into(),
        data_plane: DataPlane::LoadBalancer,
        peering: crate::setup::Peering::Manual { pairs: vec![] },
        operator: crate::operator::Install {
            chart: Default::default(),
            license: crate::operator::License::Key("k".into()),
            watch_namespaces: vec![],
            helm: "helm".into(),
        },
    }
}

fn c(name: &str, net: &str) -> ClusterSetup {
    ClusterSetup::new(
        ClusterName::new(name).expect("n"),
        NetworkName::new(net).expect("n"),
    )
}

#[test]
fn shared_networks_and_mixed_minors_are_found() {
    let mut clusters = vec![c("a", "n1"), c("b", "n1"), c("d", "n2")];
    clusters[2].mesh.version = "1.27.3".into();
    let f = fleet(&clusters, &settings());
    let a = &f[&ClusterName::new("a").expect("a")];
    let net = a.iter().find(|x| x.key == "network").expect("network");
    assert_eq!(net.status, Status::Fail);
    assert!(net.message.contains("a, b"));
    let ver = a
        .iter()
        .find(|x| x.key == "istio-version")
        .expect("version");
    assert_eq!(ver.status, Status::Warn);
    let d = &f[&ClusterName::new("d").expect("d")];
    assert_eq!(
        d.iter().find(|x| x.key == "network").map(|x| x.status),
        Some(Status::Pass)
    );
}

#[test]
fn a_bad_version_fails_for_every_cluster() {
    let mut s = settings();
    s.istio_version = "1.26.0".into();
    let f = fleet(&[c("a", "a")], &s);
    let v = f
        .values()
        .next()
        .expect("one")
        .iter()
        .find(|x| x.key == "istio-version")
        .expect("v")
        .clone();
    assert_eq!(v.status, Status::Fail);
    assert!(v.remediation.is_some());
}
