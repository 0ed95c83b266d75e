//! Fuzzing every parser of outside input in `mesh`, on stable Rust: structure-aware generators (proptest
//! strategies) of YAML-like text with anchors, aliases, tags and deep nesting, random bytes, and random edits
//! of real documents (a kubeconfig, peer gateways, the extensions ConfigMap, a topology export). Each target
//! runs for a bounded time (`MESHDECK_FUZZ_SECS`, default 2 s; the test command keeps it short, a longer run
//! is `MESHDECK_FUZZ_SECS=600 cargo test -p mesh --test fuzz -- --nocapture`), must never panic, and must
//! answer within its budget; each prints its executions. A crash is shrunk to a small input and reported.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

fn budget() -> Duration {
    let secs = std::env::var("MESHDECK_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

thread_local! {
    /// Set while a check runs: its panics are expected findings, not noise for the log.
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `check` on generated inputs until the budget is spent; on a panic, shrinks the input and fails.
fn fuzz<T: Debug + Clone>(name: &str, strategy: impl Strategy<Value = T>, check: impl Fn(&T)) {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(|f| f.get()) {
                default(info);
            }
        }));
    });
    let fails = |v: &T| {
        FUZZING.with(|f| f.set(true));
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(v))).is_err();
        FUZZING.with(|f| f.set(false));
        failed
    };
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let deadline = Instant::now() + budget();
    let mut executions = 0u64;
    let mut slowest = Duration::ZERO;
    while Instant::now() < deadline {
        let mut tree = strategy.new_tree(&mut runner).expect("a generated input");
        let value = tree.current();
        executions += 1;
        let start = Instant::now();
        let failed = fails(&value);
        slowest = slowest.max(start.elapsed());
        if failed {
            // Shrink: simplify while it still fails, step back when it stops failing.
            let mut smallest = value;
            loop {
                let v = tree.current();
                if fails(&v) {
                    smallest = v;
                    if !tree.simplify() {
                        break;
                    }
                } else if !tree.complicate() {
                    break;
                }
            }
            panic!(
                "fuzz {name}: a crash after {executions} executions; smallest input: {smallest:?}"
            );
        }
    }
    eprintln!(
        "fuzz {name}: executions={executions} crashes=0 slowest_ms={}",
        slowest.as_millis()
    );
    assert!(executions > 0);
    assert!(
        slowest < Duration::from_secs(5),
        "fuzz {name}: one input took {slowest:?}: parsing must stay within its budget"
    );
}

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

/// Random edits (insert, delete, replace) of a real document.
fn edits_of(seed: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((any::<usize>(), 0u8..3, any::<char>(), 1usize..6), 0..10).prop_map(
        move |edits| {
            let mut s: Vec<char> = seed.chars().collect();
            for (at, kind, c, n) in edits {
                let at = at % (s.len() + 1);
                match kind {
                    0 => s.insert(at, c),
                    1 => {
                        let end = (at + n).min(s.len());
                        s.drain(at..end);
                    }
                    _ => {
                        if at < s.len() {
                            s[at] = c;
                        }
                    }
                }
            }
            s.into_iter().collect()
        },
    )
}

/// Text from bytes, as a browser or a file upload may send it.
fn bytes() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..2000)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
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
