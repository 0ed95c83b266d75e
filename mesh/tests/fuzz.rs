//! Fuzzing every parser of outside input in `mesh`, on stable Rust: structure-aware generators (proptest
//! strategies) of YAML-like text with anchors, aliases, tags and deep nesting, random bytes, and random edits
//! of real documents (a kubeconfig, peer gateways, the extensions ConfigMap, a topology export). Each target
//! runs for a bounded time (`MESHDECK_FUZZ_SECS`, default 2 s; the test command keeps it short, a longer run
//! is `MESHDECK_FUZZ_SECS=600 cargo test -p mesh --test fuzz -- --nocapture`), must never panic, and must
//! answer within its budget; each prints its executions. A crash is shrunk to a small input and reported.

use proptest::prelude::*;
use testworld::fuzz::{bytes, edits_of, fuzz};

/// YAML-like text: keys, scalars, quotes, block scalars, flow collections, anchors, aliases, tags,
/// documents and indentation, in random order.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("a: ".to_string()),
        Just("- ".to_string()),
        Just("\n".to_string()),
        Just("\n  ".to_string()),
        Just("\n    ".to_string()),
        Just("---\n".to_string()),
        Just("&x ".to_string()),
        Just("*x".to_string()),
        Just("&y [*x, *x, *x, *x]".to_string()),
        Just("*y".to_string()),
        Just("!!str ".to_string()),
        Just("!custom ".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(", ".to_string()),
        Just("|\n  ".to_string()),
        Just(">-\n  ".to_string()),
        Just("\"quoted \\u00e9 \\\"\"".to_string()),
        Just("'single'".to_string()),
        Just("<<: *x\n".to_string()),
        Just("? complex\n: key\n".to_string()),
        Just("~".to_string()),
        Just("1e400".to_string()),
        Just("-0x1F".to_string()),
        "[a-z]{1,8}".prop_map(|s| s),
        "[\\x00-\\x7f]{1,4}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(token, 0..80).prop_map(|t| t.concat())
}

const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
contexts:
- name: c1
  context: {cluster: c1, user: admin, namespace: default}
users:
- name: admin
  user:
    token: abc.def.ghi
current-context: c1
"#;

const PEERS: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: istio-remote-peer-c2
  namespace: istio-eastwest
  annotations:
    gateway.istio.io/service-account: istio-eastwest
    gateway.istio.io/trust-domain: c2
  labels:
    topology.istio.io/network: c2
spec:
  gatewayClassName: istio-remote
  addresses:
  - type: IPAddress
    value: 192.0.2.10
  listeners:
  - name: cross-network
    port: 15008
    protocol: HBONE
    tls: {mode: Passthrough}
  - name: xds-tls
    port: 15012
    protocol: TLS
    tls: {mode: Passthrough}
---
"#;

const EXTENSIONS: &str =
    "stable: |\n  discoverySelectors:\n  - matchLabels: {team: a}\nbeta: |\n  x: 1\n";

fn text() -> impl Strategy<Value = String> {
    prop_oneof![yamlish(), bytes()]
}

#[test]
fn kubeconfigs() {
    fuzz(
        "kubeconfig",
        prop_oneof![text(), edits_of(KUBECONFIG)],
        |t| {
            if let Ok(kc) = mesh::kubeconfig::parse(t) {
                for c in mesh::kubeconfig::contexts(&kc) {
                    for insecure in [false, true] {
                        if let Ok(creds) = mesh::kubeconfig::extract(&kc, &c.name, insecure) {
                            assert!(creds.server.starts_with("https://"), "{}", creds.server);
                            let _ = creds.to_yaml();
                        }
                    }
                }
            }
        },
    );
}

#[test]
fn bounded_yaml() {
    fuzz("yaml", text(), |t| {
        let checked = mesh::yaml::check(t, &mesh::yaml::Limits::INPUT);
        let parsed = mesh::yaml::documents::<serde_json::Value>(t, &mesh::yaml::Limits::INPUT);
        // What the walk accepts, the parse accepts (and the other way round), up to value-shape errors
        // (a non-string map key, say).
        if parsed.is_ok() {
            assert!(checked.is_ok(), "{checked:?}");
        }
    });
}

#[test]
fn extensions_configmap() {
    fuzz(
        "extensions",
        prop_oneof![text(), edits_of(EXTENSIONS)],
        |t| {
            if let Ok(m) = mesh::objects::parse_extensions_yaml(t) {
                for v in m.values() {
                    assert!(mesh::yaml::check(v, &mesh::yaml::Limits::INPUT).is_ok());
                }
            }
        },
    );
}

#[test]
fn peer_gateway_imports() {
    fuzz("peers", prop_oneof![text(), edits_of(PEERS)], |t| {
        if let Ok(gws) = mesh::setup::validate_peer_gateways(t) {
            for g in gws {
                assert_eq!(g["spec"]["gatewayClassName"], "istio-remote");
                let name = g["metadata"]["name"].as_str().unwrap_or("");
                assert!(name.starts_with("istio-remote-peer-"), "{name}");
            }
        }
    });
}

#[test]
fn topology_exports() {
    let seed: &'static str = Box::leak(
        serde_json::to_string(&mesh::ids::graph::Graph::default())
            .expect("json")
            .into_boxed_str(),
    );
    fuzz("graph", prop_oneof![bytes(), edits_of(seed)], |t| {
        if let Ok(mut g) = serde_json::from_str::<mesh::ids::graph::Graph>(t) {
            g.sort();
            let other = mesh::ids::graph::Graph::default();
            let d = mesh::ids::graph::diff(&other, &g);
            let mut back = other.clone();
            mesh::ids::graph::apply(&mut back, d);
        }
    });
}

#[test]
fn names() {
    fuzz("names", prop_oneof!["[a-z0-9.-]{0,70}", bytes()], |t| {
        if let Ok(n) = mesh::ids::ClusterName::new(t) {
            let s = n.as_str();
            assert!(!s.is_empty() && s.len() <= 63, "{s:?}");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{s:?}"
            );
            assert!(!s.starts_with('-') && !s.ends_with('-'), "{s:?}");
        }
        let _ = mesh::ids::NetworkName::new(t);
        let _ = mesh::ids::version_rule(t);
        let _ = t.parse::<mesh::connect::IpNet>();
    });
}
